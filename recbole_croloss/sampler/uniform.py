"""The paper's negatives (uniform, shared by the batch) and the exact rank (every item once).

Both return no ``log q``: the rank estimators' own coefficients are their weights.
"""
from __future__ import annotations

import torch

from ..errors import ConfigError
from .base import Draws, NegativeSampler, hit_mask, register_sampler


@register_sampler
class UniformNegatives(NegativeSampler):
    """``neg_per_pos * B`` items drawn uniformly with replacement from the real items 1..n-1.

    Never the padding item 0; |I| = n_items - 1. With ``mask_accidental_hits`` a negative equal
    to the row's positive is masked out (the estimator then counts M per row without it).
    """

    name = "uniform"
    description = "draws uniformly"
    options = ("neg_per_pos", "mask_accidental_hits")

    def __init__(self, n_items: int, neg_per_pos: int = 10, mask_accidental_hits: bool = True):
        if n_items < 2:
            raise ConfigError("n_items", n_items, "uniform negatives need at least one real item")
        self.n_items, self.neg_per_pos = n_items, neg_per_pos
        self.mask_accidental_hits = bool(mask_accidental_hits)
        self.catalogue_size = n_items - 1

    def draw(self, pos_items):
        m = self.neg_per_pos * pos_items.shape[0]
        return Draws(torch.randint(1, self.n_items, (m,), device=pos_items.device))

    def mask(self, pos_items, neg_items):
        return hit_mask(pos_items, neg_items) if self.mask_accidental_hits else None


@register_sampler
class FullNegatives(NegativeSampler):
    """Every other item of the model's item table once: the exact rank (no sampling).

    These are exactly the candidates RecBole's own cross-entropy scores (padding row 0 included),
    so with ``kernel=exp, alpha=1, rank_estimator=unbiased`` CROLoss *is* that cross-entropy.
    The row's own positive is always left out; |I| = n_items (the table size).
    """

    name = "full"
    description = "scores every other item once, the row's positive left out"

    def __init__(self, n_items: int):
        if n_items < 2:
            raise ConfigError("n_items", n_items, "full negatives need at least two items")
        self.n_items = n_items
        self.catalogue_size = n_items

    def draw(self, pos_items):
        return Draws(torch.arange(self.n_items, device=pos_items.device))

    def mask(self, pos_items, neg_items):
        return hit_mask(pos_items, neg_items)
