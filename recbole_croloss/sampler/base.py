r"""The sampler interface, the registry the key ``negatives`` names, and the log q a row sees.

A sampler works in two steps, so that a wrapper can share or keep the draws between them
(:class:`~recbole_croloss.distributed.GatheredNegatives` gathers them across ranks,
:class:`~recbole_croloss.sampler.memory.CrossBatchMemory` keeps the last K batches'):

- ``draw(pos_items [B]) -> Draws(items [M], log_p [M] | None, counts [M] | None)``: the
  negative ids, the log-probability of each under the sampler's proposal p (``None``: uniform
  over the catalogue, where the rank estimators need no weights), and how many draws each column
  stands for (``None``: one each; in-batch negatives are the batch's positives de-duplicated);
- ``complete(pos_items, draws) -> Negatives(items [M], mask [B, M] | None, log_q)``: the
  accidental-hit mask (True = counts) against this batch's positives, and the ``log q`` the loss
  weighs each negative by (:func:`row_log_q`).

``sampler(pos_items)`` does both. Item id 0 is RecBole's padding item and is never drawn.
"""
from __future__ import annotations

import math
from typing import Mapping, NamedTuple

import torch

from ..errors import ConfigError, check_bool, check_int


class Draws(NamedTuple):
    """One batch's draws: ``items [M]``; ``log_p [M]`` under the proposal or ``None`` (uniform);
    ``counts [M]`` draws per column or ``None`` (one each)."""

    items: torch.Tensor
    log_p: torch.Tensor | None = None
    counts: torch.Tensor | None = None


class Negatives(NamedTuple):
    """What the loss reads: ``items [M]``, ``mask [B, M]`` bool or ``None`` (all count), and
    ``log_q`` (``[M]`` or ``[B, M]``, see :func:`row_log_q`) or ``None`` (uniform draws)."""

    items: torch.Tensor
    mask: torch.Tensor | None
    log_q: torch.Tensor | None = None


def row_log_q(draws: Draws, mask: torch.Tensor | None, log_p_pos: torch.Tensor | None) -> torch.Tensor:
    r"""``log q_bj`` such that the loss's ``R_b = 1 + (1 / M_b) sum_j mask_bj phi_bj / q_bj``
    (``M_b`` = the row's valid columns) is the importance-weighted estimate of
    ``1 + sum_{i != pos_b} phi_i`` from the draws.

    The valid draws of row b are draws from p conditioned on not being the row's positive, i.e.
    from ``p_j / (1 - p(pos_b))`` over the other items; a column standing for ``c_j`` draws
    counts ``c_j`` times among the row's ``V_b = sum_j mask_bj c_j`` valid draws:

        log q_bj = log p_j - log(1 - p(pos_b)) - log c_j + log V_b - log M_b.

    With one draw per column ``V_b = M_b``; without a mask nothing is conditioned (``[M]``).
    ``draws.log_p [M]``, ``mask [B, M]`` or ``None``, ``log_p_pos [B]`` -> ``[B, M]`` (or ``[M]``).
    """
    log_p = draws.log_p
    counts = None if draws.counts is None else draws.counts.to(log_p.dtype)
    if mask is None:
        if counts is None:
            return log_p
        return log_p - counts.log() + (counts.sum().log() - math.log(len(counts)))
    log_q = log_p.unsqueeze(0) - torch.log1p(-log_p_pos.exp()).unsqueeze(1)
    if counts is not None:
        valid = mask.to(log_p.dtype)
        n_draws = (valid * counts).sum(dim=1).clamp(min=1.0)
        n_columns = valid.sum(dim=1).clamp(min=1.0)
        log_q = log_q - counts.log() + (n_draws.log() - n_columns.log()).unsqueeze(1)
    return log_q


class NegativeSampler:
    """Base class: ``draw`` (and ``log_prob`` where ``weighted``) and ``mask``; ``sampler(pos)``
    returns :class:`Negatives`."""

    name: str = ""
    #: What it draws, for messages: ``negatives='full' scores every other item once, ...``.
    description: str = ""
    catalogue_size: int
    #: Settings the constructor takes besides ``n_items`` (:func:`build_sampler` passes only these).
    options: tuple[str, ...] = ()
    #: The constructor also takes ``item_counts`` ([n_items]: how often each item is a training
    #: positive), which the RecBole glue counts on the training split.
    needs_item_counts: bool = False
    #: ``draw`` gives ``log_p`` (a proposal other than uniform); ``log_prob`` is its table.
    weighted: bool = False

    def draw(self, pos_items: torch.Tensor) -> Draws:
        raise NotImplementedError  # pragma: no cover

    def mask(self, pos_items: torch.Tensor, neg_items: torch.Tensor) -> torch.Tensor | None:
        """``mask [B, M]`` of ``neg_items [M]`` against ``pos_items [B]`` (also for negatives
        gathered from other ranks or kept from earlier batches)."""
        raise NotImplementedError  # pragma: no cover

    def log_prob(self, items: torch.Tensor) -> torch.Tensor:
        """``log p`` of ``items`` under the proposal (weighted samplers)."""
        raise NotImplementedError  # pragma: no cover

    def complete(self, pos_items: torch.Tensor, draws: Draws) -> Negatives:
        mask = self.mask(pos_items, draws.items)
        if draws.log_p is None:
            return Negatives(draws.items, mask, None)
        log_p_pos = None if mask is None else self.log_prob(pos_items)
        return Negatives(draws.items, mask, row_log_q(draws, mask, log_p_pos))

    def __call__(self, pos_items: torch.Tensor) -> Negatives:
        return self.complete(pos_items, self.draw(pos_items))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(catalogue_size={self.catalogue_size})"


def hit_mask(pos_items: torch.Tensor, neg_items: torch.Tensor) -> torch.Tensor:
    """``[B, M]``: True where the negative is not the row's positive."""
    return neg_items.unsqueeze(0) != pos_items.unsqueeze(1)


# The checks of every setting a sampler reads; the run spec applies them before any data.
def check_neg_per_pos(value) -> int:
    return check_int("neg_per_pos", value, 1)


def check_in_batch_uniform(value) -> int:
    return check_int("in_batch_uniform", value, 0)


def check_mask_accidental_hits(value) -> bool:
    return check_bool("mask_accidental_hits", value)


def check_popularity_power(value) -> float:
    """``neg_popularity_power``: a finite real number >= 0 (0 draws uniformly)."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) and value >= 0
    if not ok:
        raise ConfigError("neg_popularity_power", value, "a finite number >= 0: items are drawn with "
                          "probability proportional to (training frequency) ** power (0.75: word2vec's)")
    return float(value)


def check_neg_mix(value) -> float:
    """``neg_mix``: the share of popularity draws, strictly between 0 and 1."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and 0 < value < 1
    if not ok:
        raise ConfigError("neg_mix", value, "a share strictly between 0 and 1 of the draws taken from the "
                          "popularity proposal, the rest uniform (0 or 1: use negatives=uniform or popularity)")
    return float(value)


#: Setting -> its check, for every setting a sampler of this package reads.
SAMPLER_SETTINGS = {"neg_per_pos": check_neg_per_pos, "in_batch_uniform": check_in_batch_uniform,
                    "mask_accidental_hits": check_mask_accidental_hits,
                    "neg_popularity_power": check_popularity_power, "neg_mix": check_neg_mix}


#: Name -> sampler class: what the key ``negatives`` can name.
NEGATIVES: dict[str, type[NegativeSampler]] = {}


def register_sampler(cls: type[NegativeSampler]) -> type[NegativeSampler]:
    """Make a :class:`NegativeSampler` subclass nameable by ``negatives`` (a class decorator).
    Its ``name`` must be new."""
    if not (isinstance(cls, type) and issubclass(cls, NegativeSampler)) or not cls.name:
        raise TypeError(f"register_sampler takes a NegativeSampler subclass with a name; got {cls!r}")
    if NEGATIVES.get(cls.name, cls) is not cls:
        raise ValueError(f"a sampler named {cls.name!r} is already registered")
    NEGATIVES[cls.name] = cls
    return cls


def check_sampler_name(name) -> type[NegativeSampler]:
    cls = NEGATIVES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ConfigError("negatives", name, NEGATIVES)
    return cls


def check_sampler_settings(cls: type[NegativeSampler], settings: Mapping) -> dict:
    """The settings of ``settings`` that ``cls`` reads, each checked (a setting of a sampler of
    the user's own, with no check here, is passed as it is)."""
    return {key: SAMPLER_SETTINGS.get(key, _as_given)(settings[key]) for key in cls.options if key in settings}


def _as_given(value):
    return value


def build_sampler(name: str, n_items: int, item_counts: torch.Tensor | None = None, **settings) -> NegativeSampler:
    """The sampler ``name`` over ``n_items`` item ids, given the settings it takes of
    ``settings`` (the others are for other samplers), checked; ``item_counts`` for a sampler
    that ``needs_item_counts``."""
    cls = check_sampler_name(name)
    options = check_sampler_settings(cls, settings)
    if cls.needs_item_counts:
        if item_counts is None:
            raise ValueError(f"negatives={name!r} draws by training frequency: give item_counts")
        return cls(n_items, item_counts, **options)
    return cls(n_items, **options)
