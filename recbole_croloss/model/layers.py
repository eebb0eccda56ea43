r"""Building blocks shared by the plugin's models: masked pooling, the two interest extractors'
pieces (self-attention, capsule routing), and the training-time readouts of multi-interest models.

Conventions: a behaviour sequence is ``item_seq [B, L]`` left-aligned with padding id 0 after
``item_seq_len [B]`` entries (RecBole's layout); ``emb [B, L, d]`` its embeddings; a
multi-interest user is ``interests [B, K, d]``. Padding positions never contribute to a pooled,
attended or routed vector: their weights are exactly zero.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError, check_int

#: Activation layers of the dense towers, by the name the YAML gives.
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "leakyrelu": nn.LeakyReLU,
    "gelu": nn.GELU, "none": nn.Identity,
}


def int_setting(config, key: str, low: int = 1) -> int:
    """``config[key]`` as an int >= ``low``, or a :class:`ConfigError` naming the key."""
    return check_int(key, config[key], low)


def choice(config, key: str, choices) -> str:
    """``config[key]`` if it is one of ``choices``, else a :class:`ConfigError`."""
    value = config[key]
    if value not in choices:
        raise ConfigError(key, value, choices)
    return value


def padding_mask(item_seq_len: torch.Tensor, length: int) -> torch.Tensor:
    """``mask [B, L]``: True at the ``item_seq_len[b]`` real positions of each row."""
    return torch.arange(length, device=item_seq_len.device)[None, :] < item_seq_len[:, None]


def masked_mean(emb: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``sum_l mask_bl e_bl / max(1, sum_l mask_bl)``: ``[B, L, d], [B, L] -> [B, d]``."""
    weights = mask.to(emb.dtype)
    return (weights[..., None] * emb).sum(1) / weights.sum(1, keepdim=True).clamp_min(1.0)


def dense_tower(sizes: list[int], activation: str, dropout: float) -> nn.Sequential:
    """``Linear -> activation -> Dropout`` for each step of ``sizes`` (``[in, h1, ..., out]``),
    the last Linear without activation (``[in, out]``: one linear layer)."""
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(fan_in, fan_out))
        if i < len(sizes) - 2:
            layers += [ACTIVATIONS[activation](), nn.Dropout(dropout)]
    return nn.Sequential(*layers)


def squash(s: torch.Tensor, eps: float = 1e-9) -> torch.Tensor:
    r"""Capsule squash along the last axis: ``|s|^2 / (1 + |s|^2) * s / sqrt(|s|^2 + eps)``."""
    norm2 = (s * s).sum(-1, keepdim=True)
    return norm2 / (1.0 + norm2) / torch.sqrt(norm2 + eps) * s


def self_attentive_interests(att_logits: torch.Tensor, emb: torch.Tensor,
                             mask: torch.Tensor) -> torch.Tensor:
    r"""ComiRec-SA's pooling: ``A = softmax_l(att_logits)`` over the real positions,
    ``interests = A^T emb``.

    Shapes: ``att_logits [B, L, K]``, ``emb [B, L, d]``, ``mask [B, L]`` -> ``[B, K, d]``.
    """
    att = att_logits.masked_fill(~mask[..., None], -torch.inf).softmax(dim=1)  # [B, L, K]
    return att.transpose(1, 2) @ emb


def dynamic_routing(item_hat: torch.Tensor, mask: torch.Tensor, iterations: int,
                    logits: torch.Tensor) -> torch.Tensor:
    r"""Behaviour-to-interest dynamic routing (ComiRec-DR, MIND).

    ``item_hat [B, K, L, d]`` are the behaviours as seen by each interest (one bilinear map per
    interest in ComiRec-DR, one shared map broadcast over K in MIND), ``logits [B, K, L]`` the
    initial routing logits b. Each of ``iterations`` rounds:

    - ``w = softmax_k(b)`` (each behaviour spreads one unit over the interests), zeroed at padding;
    - ``z_k = squash(sum_l w_kl * item_hat_kl)``;
    - ``b_kl += item_hat_kl . z_k`` (skipped after the last round).

    As in ComiRec's official code, the rounds before the last see ``item_hat`` through a stop-
    gradient; the last round carries the gradient. Returns ``z [B, K, d]``.
    """
    detached = item_hat.detach()
    keep = mask[:, None, :].to(item_hat.dtype)  # [B, 1, L]
    for i in range(iterations):
        w = logits.softmax(dim=1) * keep  # [B, K, L]
        if i == iterations - 1:
            return squash((w[..., None] * item_hat).sum(2))
        z = squash((w[..., None] * detached).sum(2))  # [B, K, d]
        logits = logits + (detached @ z[..., None]).squeeze(-1)
    raise ValueError("dynamic routing needs at least one iteration")


def hard_readout(interests: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    r"""ComiRec's training readout: the interest most aligned with the target,
    ``u_b = interests[b, argmax_k interests_bk . target_b]``.

    Shapes: ``interests [B, K, d]``, ``target [B, d]`` -> ``[B, d]`` (the gradient flows to the
    selected interest only).
    """
    best = (interests @ target[..., None]).squeeze(-1).argmax(dim=1)  # [B]
    return interests[torch.arange(len(best), device=best.device), best]


def label_aware_readout(interests: torch.Tensor, target: torch.Tensor, power: int) -> torch.Tensor:
    r"""MIND's label-aware attention: ``u_b = sum_k softmax_k((interests_bk . target_b)^p)
    interests_bk``; p = 0 averages the interests, large p tends to the hard readout.

    Shapes: ``interests [B, K, d]``, ``target [B, d]`` -> ``[B, d]``.
    """
    att = (interests @ target[..., None]).squeeze(-1).pow(power).softmax(dim=1)  # [B, K]
    return (att[..., None] * interests).sum(1)
