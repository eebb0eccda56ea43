r"""TiMiRec (Wang et al., CIKM 2022, "Target Interest Distillation for Multi-Interest
Recommendation"): a multi-interest extractor, and an interest predictor distilled from it that
mixes the interests into one user vector.

Shapes: ``B`` batch, ``L`` history (padding after the real items, as RecBole pads), ``d``
embedding size, ``K`` interests.

- **Extractor** (the ComiRec-SA family): ``h_l = e_l (+ p_l)`` with ``add_pos``, where the
  position embedding numbers the history from its newest item (1 = newest, 0 = padding); with
  ``add_trm``, one transformer layer over ``h`` (:class:`InterestTransformer`); attention
  ``A = softmax_L(W_2 tanh(W_1 h))`` over the real positions (``W_1: d -> attn_size``,
  ``W_2: attn_size -> K``); interests ``U = A^T h`` ``[B, K, d]``.
- **Predictor**: its own item table and a one-layer GRU over the history; the hidden state at
  the last real position, through ``n_layers - 1`` blocks of Linear(d, d), Dropout(0.5), ReLU,
  then Linear(d, K): logits ``z [B, K]``.
- ``train_stage: pretrain``: the extractor alone, ``forward -> U [B, K, d]``; training reads out
  the interest with the largest dot product with the positive (hard readout), evaluation scores
  an item by its best interest.
- ``train_stage: finetune``: ``forward -> u = sum_k softmax(z)_k U_k [B, d]`` for training and
  evaluation; every loss gains ``T^2 KL(softmax(t / T) || softmax(z / T))`` (batch mean) with
  ``t_k = cos(U_k, e_pos)``, ``e_pos`` the extractor's embedding of the positive, ``t``
  detached (its gradient flows through ``z`` only), ``T = temperature``. The extractor's weights
  come from the pretrain run's checkpoint (``pre_model_path``; the keys both stages have),
  which the run flow reads and hands to :meth:`TiMiRec.load_pretrained` (a model reads no
  file); ``pre_model_path: none`` trains from scratch, on request only. Nothing is frozen.

Weights and biases of Linear and Embedding layers start N(0, 0.01), as ReChorus initialises.
Variants of the ReChorus README: ComiRec+ = pretrain with ``add_trm``; TiMiRec = both stages
without it; TiMiRec+ = both stages with it.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .abstract import PluginSequentialModel
from .layers import choice, hard_readout, int_setting, padding_mask

STAGES = ("pretrain", "finetune")
#: ``pre_model_path`` that asks for a finetune stage from scratch (no pretrained extractor).
FROM_SCRATCH = "none"


def newest_first_positions(item_seq_len: torch.Tensor, length: int) -> torch.Tensor:
    """``[B], L -> [B, L]``: 1 for the newest real item, 2 for the one before, ..., 0 for padding."""
    index = torch.arange(length, device=item_seq_len.device)
    positions = item_seq_len.view(-1, 1) - index
    return positions.clamp(min=0)


class InterestTransformer(nn.Module):
    """One transformer layer as ReChorus writes it: one head, no output projection, post-norm
    residuals, a ReLU feed-forward of width d, padding keys masked, no causal mask."""

    def __init__(self, d: int, dropout: float):
        super().__init__()
        self.q, self.k, self.v = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.ff1, self.ff2 = nn.Linear(d, d), nn.Linear(d, d)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        scores = self.q(x) @ self.k(x).transpose(1, 2) / math.sqrt(x.shape[-1])   # [B, L, L]
        scores = scores.masked_fill(~mask[:, None, :], float("-inf"))
        context = torch.nan_to_num(scores.softmax(-1)) @ self.v(x)   # an all-padding row: 0
        context = self.norm1(x + self.dropout(context))
        return self.norm2(context + self.dropout(self.ff2(self.ff1(context).relu())))


class InterestExtractor(nn.Module):
    """``item_seq [B, L], item_seq_len [B] -> (interests [B, K, d], emb [B, L, d])``."""

    def __init__(self, n_items: int, d: int, max_len: int, num_interest: int, attn_size: int,
                 add_pos: bool, add_trm: bool, dropout: float):
        super().__init__()
        self.item_embedding = nn.Embedding(n_items, d, padding_idx=0)
        self.position_embedding = nn.Embedding(max_len + 1, d, padding_idx=0) if add_pos else None
        self.transformer = InterestTransformer(d, dropout) if add_trm else None
        self.attention = nn.Sequential(nn.Linear(d, attn_size), nn.Tanh(), nn.Linear(attn_size, num_interest))

    def forward(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        mask = padding_mask(item_seq_len, item_seq.shape[1])                     # [B, L]
        h = self.item_embedding(item_seq)
        if self.position_embedding is not None:
            h = h + self.position_embedding(newest_first_positions(item_seq_len, item_seq.shape[1]))
        if self.transformer is not None:
            h = self.transformer(h, mask)
        logits = self.attention(h).masked_fill(~mask[..., None], float("-inf"))  # [B, L, K]
        weights = torch.nan_to_num(logits.softmax(dim=1))
        return weights.transpose(1, 2) @ h                                       # [B, K, d]


class InterestPredictor(nn.Module):
    """``item_seq [B, L], item_seq_len [B] -> z [B, K]``: a GRU over its own item table."""

    def __init__(self, n_items: int, d: int, num_interest: int, n_layers: int):
        super().__init__()
        self.item_embedding = nn.Embedding(n_items, d, padding_idx=0)
        self.gru = nn.GRU(d, d, batch_first=True)
        blocks = [m for _ in range(n_layers - 1) for m in (nn.Linear(d, d), nn.Dropout(0.5), nn.ReLU())]
        self.head = nn.Sequential(*blocks, nn.Linear(d, num_interest))

    def forward(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        states, _ = self.gru(self.item_embedding(item_seq))                     # [B, L, d]
        last = states[torch.arange(len(item_seq), device=item_seq.device), (item_seq_len - 1).clamp(min=0)]
        return self.head(last)


class TiMiRec(PluginSequentialModel):
    #: Its stages, in order (``train_stage: pretrain_finetune`` runs both, the second from the first).
    TRAIN_STAGES = tuple(STAGES)

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        d = self.embedding_size = int_setting(config, "embedding_size")
        self.num_interest = int_setting(config, "num_interest")
        self.stage = choice(config, "train_stage", STAGES)
        self.temperature = float(config["temperature"])
        if not self.temperature > 0:
            raise ConfigError("temperature", config["temperature"], "a number > 0")
        self.extractor = InterestExtractor(
            self.n_items, d, self.max_seq_length, self.num_interest, int_setting(config, "attn_size"),
            bool(config["add_pos"]), bool(config["add_trm"]), float(config["dropout_prob"]))
        self.item_embedding = self.extractor.item_embedding  # the items are scored by the extractor's
        self.predictor = InterestPredictor(self.n_items, d, self.num_interest, int_setting(config, "n_layers")) \
            if self.stage == "finetune" else None
        self.apply(_init_weights)
        self._parts = None  # (interests, logits) of the last training forward, for loss_terms

    @property
    def wants_pretrained(self) -> bool:
        """Whether the run flow should hand this model the weights ``pre_model_path`` names."""
        return self.stage == "finetune"

    def load_pretrained(self, state: dict) -> None:
        """Start from the pretrain run's extractor: the ``extractor.*`` entries of its best
        checkpoint's ``state_dict``. A ValueError names what does not fit this model."""
        saved = {k.removeprefix("model."): v for k, v in state.items() if k.removeprefix("model.").startswith("extractor.")}
        own = self.state_dict()
        wrong = [k for k, v in saved.items() if k not in own or own[k].shape != v.shape]
        if not saved or wrong:
            raise ValueError("a TiMiRec pretrain checkpoint with this run's sizes and add_pos/add_trm "
                             f"(mismatched: {wrong[:3] or 'no extractor keys'})")
        self.load_state_dict(saved, strict=False)

    def forward(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        """pretrain: interests ``[B, K, d]``; finetune: their mixture by the predictor ``[B, d]``."""
        interests = self.extractor(item_seq, item_seq_len)
        if self.predictor is None:
            return interests
        logits = self.predictor(item_seq, item_seq_len)
        self._parts = (interests, logits) if self.training else None
        return (logits.softmax(-1)[..., None] * interests).sum(1)

    def readout(self, query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        """pretrain's hard readout: the interest with the largest score with the positive."""
        return hard_readout(query, key)

    def loss_terms(self, interaction, user: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.predictor is None or self._parts is None:
            return {}
        interests, logits = self._parts
        self._parts = None
        target = self.extractor.item_embedding(interaction[self.POS_ITEM_ID])
        return {"distillation": distillation_loss(interests, logits, target, self.temperature)}


def distillation_loss(interests: torch.Tensor, logits: torch.Tensor, target: torch.Tensor,
                      temperature: float) -> torch.Tensor:
    r"""``T^2 KL(softmax(t / T) || softmax(z / T))``, mean over the batch, with
    ``t_k = cos(U_k, e_pos)`` detached: ``interests [B, K, d], logits [B, K], target [B, d]``."""
    with torch.no_grad():
        teacher = F.cosine_similarity(interests, target[:, None, :], dim=-1) / temperature   # [B, K]
    log_p, log_q = teacher.log_softmax(-1), (logits / temperature).log_softmax(-1)
    return temperature ** 2 * (log_p.exp() * (log_p - log_q)).sum(-1).mean()


def _init_weights(module) -> None:
    """N(0, 0.01) for Linear and Embedding weights and biases, as ReChorus."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, 0.0, 0.01)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.normal_(module.bias, 0.0, 0.01)
