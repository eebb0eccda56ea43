r"""Cross-batch memory (``neg_memory: K``): the negatives of the last K batches join this batch's.

What is kept is the *draws* (item ids, their ``log p`` and counts), never their vectors: the
adapter looks every id up in the current item table at each step, so a memory negative is scored
with the model as it is now, not as it was when it was drawn (a stale vector would bias the rank
estimate as the table moves). The ids are masked against this batch's positives and weighted by
the sampler's own proposal (:meth:`~recbole_croloss.sampler.base.NegativeSampler.complete`), so
M grows to ``(K + 1) x`` the sampler's at the cost of scoring them, with no extra draws.

The idea is pytorch-metric-learning's ``CrossBatchMemory`` (Wang et al., "Cross-Batch Memory for
Embedding Learning", CVPR 2020), with ids re-read instead of stored embeddings. The memory is not
part of a resume checkpoint: a resumed run starts with it empty.
"""
from __future__ import annotations

from collections import deque

import torch

from ..errors import check_int
from .base import Draws, Negatives


def concat_draws(parts: list[Draws]) -> Draws:
    """The columns of ``parts`` side by side (their ``log_p`` is all given or all ``None``)."""
    items = torch.cat([d.items for d in parts])
    log_p = None if parts[0].log_p is None else torch.cat([d.log_p for d in parts])
    if all(d.counts is None for d in parts):
        return Draws(items, log_p)
    counts = torch.cat([torch.ones_like(d.items) if d.counts is None else d.counts for d in parts])
    return Draws(items, log_p, counts)


class CrossBatchMemory:
    """``sampler`` (any, or a :class:`~recbole_croloss.distributed.GatheredNegatives`), whose
    draws are those of this batch followed by those of the last ``batches`` batches, newest first."""

    def __init__(self, sampler, batches: int):
        self.sampler, self.batches = sampler, check_int("neg_memory", batches, 1)
        self.name, self.catalogue_size = sampler.name, sampler.catalogue_size
        self.weighted = sampler.weighted
        self._queue: deque[Draws] = deque(maxlen=self.batches)

    def draw(self, pos_items: torch.Tensor) -> Draws:
        fresh = self.sampler.draw(pos_items)
        merged = concat_draws([fresh, *self._queue])
        self._queue.appendleft(Draws(*(None if t is None else t.detach() for t in fresh)))
        return merged

    def complete(self, pos_items: torch.Tensor, draws: Draws) -> Negatives:
        return self.sampler.complete(pos_items, draws)

    def mask(self, pos_items, neg_items):
        return self.sampler.mask(pos_items, neg_items)

    def __call__(self, pos_items: torch.Tensor) -> Negatives:
        return self.complete(pos_items, self.draw(pos_items))

    def __repr__(self) -> str:
        return f"CrossBatchMemory({self.sampler!r}, batches={self.batches})"
