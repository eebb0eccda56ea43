r"""Negatives for CROLoss, shared by the whole mini-batch (paper section 4.1).

A sampler turns the positives of a batch ``pos_items [B]`` into ``(neg_items [M], mask)``:
one set of M negative item ids scored against every row, and ``mask [B, M]`` (bool, True =
counts) that removes a row's own positive ("accidental hit"), or ``None`` when nothing is masked.
``catalogue_size`` is |I|, the number of candidates the rank is estimated over.

Item id 0 is RecBole's padding item. The key ``negatives`` names a sampler of
:data:`NEGATIVES`; :func:`register_sampler` adds one of the user's own, and
:func:`build_sampler` makes one from its settings. In a distributed run
:class:`recbole_croloss.distributed.GatheredNegatives` wraps any sampler.
"""
from __future__ import annotations

import torch

from .errors import ConfigError


class NegativeSampler:
    """Base class: ``sampler(pos_items [B]) -> (neg_items [M], mask [B, M] | None)``."""

    name: str = ""
    catalogue_size: int
    #: Settings the constructor takes besides ``n_items`` (:func:`build_sampler` passes only these).
    options: tuple[str, ...] = ()

    def __call__(self, pos_items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        raise NotImplementedError  # pragma: no cover

    def mask(self, pos_items: torch.Tensor, neg_items: torch.Tensor) -> torch.Tensor | None:
        """``mask [B, M]`` of ``neg_items [M]`` against ``pos_items [B]`` (also for negatives
        gathered from other ranks)."""
        raise NotImplementedError  # pragma: no cover


class UniformNegatives(NegativeSampler):
    """``neg_per_pos * B`` items drawn uniformly with replacement from the real items 1..n-1.

    Never the padding item 0; |I| = n_items - 1. With ``mask_accidental_hits`` a negative equal
    to the row's positive is masked out (the estimator then counts M per row without it).
    """

    name = "uniform"
    options = ("neg_per_pos", "mask_accidental_hits")

    def __init__(self, n_items: int, neg_per_pos: int = 10, mask_accidental_hits: bool = True):
        if n_items < 2:
            raise ConfigError("n_items", n_items, "uniform negatives need at least one real item")
        if isinstance(neg_per_pos, bool) or not isinstance(neg_per_pos, int) or neg_per_pos < 1:
            raise ConfigError("neg_per_pos", neg_per_pos, "neg_per_pos must be an integer >= 1")
        self.n_items, self.neg_per_pos = n_items, neg_per_pos
        self.mask_accidental_hits = bool(mask_accidental_hits)
        self.catalogue_size = n_items - 1

    def __call__(self, pos_items):
        m = self.neg_per_pos * pos_items.shape[0]
        neg = torch.randint(1, self.n_items, (m,), device=pos_items.device)
        return neg, self.mask(pos_items, neg)

    def mask(self, pos_items, neg_items):
        return neg_items.unsqueeze(0) != pos_items.unsqueeze(1) if self.mask_accidental_hits else None


class FullNegatives(NegativeSampler):
    """Every other item of the model's item table once: the exact rank (no sampling).

    These are exactly the candidates RecBole's own cross-entropy scores (padding row 0 included),
    so with ``kernel=exp, alpha=1, rank_estimator=unbiased`` CROLoss *is* that cross-entropy.
    The row's own positive is always left out; |I| = n_items (the table size).
    """

    name = "full"

    def __init__(self, n_items: int):
        if n_items < 2:
            raise ConfigError("n_items", n_items, "full negatives need at least two items")
        self.n_items = n_items
        self.catalogue_size = n_items

    def __call__(self, pos_items):
        neg = torch.arange(self.n_items, device=pos_items.device)
        return neg, self.mask(pos_items, neg)

    def mask(self, pos_items, neg_items):
        return neg_items.unsqueeze(0) != pos_items.unsqueeze(1)


#: Name -> sampler class: what the key ``negatives`` can name.
NEGATIVES: dict[str, type[NegativeSampler]] = {s.name: s for s in (UniformNegatives, FullNegatives)}


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


def build_sampler(name: str, n_items: int, **settings) -> NegativeSampler:
    """The sampler ``name`` over ``n_items`` item ids, given the settings it takes of
    ``settings`` (the others are for other samplers)."""
    cls = check_sampler_name(name)
    return cls(n_items, **{k: v for k, v in settings.items() if k in cls.options})
