r"""Negatives drawn from a proposal other than uniform, each with its ``log p``.

Every proposal here is a fixed table over the items 1..n-1 (never the padding item 0), made from
``item_counts [n_items]``: how often each item is a training positive (the target of a training
sample), counted by the RecBole glue on the training split only. An item that is never a
training positive counts as once, so every real item can be drawn (an importance-weighted
estimate needs ``p > 0`` wherever ``phi`` may be).

- ``popularity``: ``p_j`` proportional to ``count_j ** neg_popularity_power`` (0.75 by default,
  word2vec's), ``neg_per_pos * B`` draws with replacement;
- ``mixed``: each of the ``neg_per_pos * B`` draws from the popularity proposal with probability
  ``neg_mix``, else uniformly: ``p = neg_mix * popularity + (1 - neg_mix) * uniform``;
- ``in_batch``: the batch's other positives, de-duplicated (each column counts as the number of
  rows that have it), plus ``in_batch_uniform * B`` uniform draws.

**The in-batch approximation.** The batch's positives are treated as B independent draws from
``f_j = count_j / sum count``, the item's frequency as a training positive (the probability that
a batch slot holds it): true when each slot is a training sample drawn at random (RecBole's
shuffled ``prefixes`` samples; an epoch draws them without replacement, a difference of order
B / samples). Under ``train_sampling: users`` the slots are drawn by user, so ``f`` is only an
approximation of their frequency. With the uniform extras the proposal is the fixed mixture
``(f + k / |I|) / (1 + k)`` of the batch's B slots and its ``k B`` uniform draws; the row's own
slot is not one of its draws (its positive is masked), so the mixture weights are those of
``B`` slots where the row sees ``B - 1``. With ``in_batch_uniform: 0`` an item is never a
negative unless it is some training sample's positive.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import ConfigError
from .base import Draws, NegativeSampler, hit_mask, register_sampler


def training_frequencies(item_counts: torch.Tensor) -> torch.Tensor:
    """``[n_items]`` float64: each real item's count (at least 1) over their sum; 0 at item 0."""
    counts = torch.as_tensor(item_counts, dtype=torch.float64).clone()
    if counts.dim() != 1 or len(counts) < 2 or bool((counts < 0).any()) or not bool(torch.isfinite(counts).all()):
        raise ConfigError("item_counts", tuple(counts.shape), "one finite count >= 0 per item id (padding 0 first)")
    counts[0] = 0.0
    counts[1:] = counts[1:].clamp(min=1.0)
    return counts / counts.sum()


def popularity_proposal(item_counts: torch.Tensor, power: float) -> torch.Tensor:
    """``[n_items]`` float64: ``count_j ** power`` normalised over the real items."""
    weights = training_frequencies(item_counts).pow(power)
    weights[0] = 0.0
    return weights / weights.sum()


def uniform_proposal(n_items: int) -> torch.Tensor:
    p = torch.full((n_items,), 1.0 / (n_items - 1), dtype=torch.float64)
    p[0] = 0.0
    return p


class ProposalNegatives(NegativeSampler):
    """Draws with replacement from a fixed proposal ``p [n_items]`` (float64, 0 at item 0):
    inverse-CDF sampling, ``O(M log |I|)`` a batch. ``log_prob`` is the table's log."""

    weighted = True
    needs_item_counts = True

    def __init__(self, n_items: int, proposal: torch.Tensor, neg_per_pos: int, mask_accidental_hits: bool = True):
        if n_items < 2 or len(proposal) != n_items:
            raise ConfigError("item_counts", len(proposal), f"one count per item id ({n_items})")
        self.n_items, self.neg_per_pos = n_items, neg_per_pos
        self.mask_accidental_hits = bool(mask_accidental_hits)
        self.catalogue_size = n_items - 1
        self.proposal = proposal
        cdf = torch.cumsum(proposal[1:], 0)
        cdf[-1] = 1.0  # a draw u < 1 always lands on a real item
        self._tables = {"cpu": (cdf, proposal.log().float())}

    def _table(self, device) -> tuple[torch.Tensor, torch.Tensor]:
        """``(cdf [n-1] float64, log p [n] float32)`` on ``device`` (moved once)."""
        key = str(device)
        if key not in self._tables:
            self._tables[key] = tuple(t.to(device) for t in self._tables["cpu"])
        return self._tables[key]

    def sample(self, m: int, device) -> torch.Tensor:
        """``m`` items drawn from the proposal, ``[m]`` int64."""
        cdf, _ = self._table(device)
        u = torch.rand(m, dtype=torch.float64, device=device)
        if u.device.type == "cpu":
            # numpy's search runs in this thread; torch's hands even a few hundred lookups to its
            # thread pool, which costs milliseconds a batch on a busy machine
            at = torch.from_numpy(np.searchsorted(cdf.numpy(), u.numpy(), side="right"))
        else:
            at = torch.searchsorted(cdf, u, right=True)
        return at.clamp(max=len(cdf) - 1) + 1

    def log_prob(self, items):
        return self._table(items.device)[1][items]

    def draw(self, pos_items):
        items = self.sample(self.neg_per_pos * pos_items.shape[0], pos_items.device)
        return Draws(items, self.log_prob(items))

    def mask(self, pos_items, neg_items):
        return hit_mask(pos_items, neg_items) if self.mask_accidental_hits else None


@register_sampler
class PopularityNegatives(ProposalNegatives):
    """``neg_per_pos * B`` draws with replacement, ``p_j`` proportional to the item's training
    frequency ** ``neg_popularity_power`` (word2vec's unigram ** 0.75; Mikolov et al., 2013)."""

    name = "popularity"
    description = "draws by training frequency ** neg_popularity_power"
    options = ("neg_per_pos", "mask_accidental_hits", "neg_popularity_power")

    def __init__(self, n_items: int, item_counts: torch.Tensor, neg_per_pos: int = 10,
                 mask_accidental_hits: bool = True, neg_popularity_power: float = 0.75):
        self.power = neg_popularity_power
        super().__init__(n_items, popularity_proposal(item_counts, neg_popularity_power), neg_per_pos,
                         mask_accidental_hits)


@register_sampler
class MixedNegatives(ProposalNegatives):
    """``neg_per_pos * B`` draws, each from the popularity proposal with probability ``neg_mix``
    and uniform otherwise: the mixture ``neg_mix * popularity + (1 - neg_mix) * uniform``, which
    keeps every item's probability at least ``(1 - neg_mix) / |I|``."""

    name = "mixed"
    description = "draws from popularity and uniform proposals mixed by neg_mix"
    options = ("neg_per_pos", "mask_accidental_hits", "neg_popularity_power", "neg_mix")

    def __init__(self, n_items: int, item_counts: torch.Tensor, neg_per_pos: int = 10,
                 mask_accidental_hits: bool = True, neg_popularity_power: float = 0.75, neg_mix: float = 0.5):
        self.power, self.share = neg_popularity_power, neg_mix
        proposal = neg_mix * popularity_proposal(item_counts, neg_popularity_power) + \
            (1.0 - neg_mix) * uniform_proposal(n_items)
        super().__init__(n_items, proposal, neg_per_pos, mask_accidental_hits)


@register_sampler
class InBatchNegatives(ProposalNegatives):
    """The batch's other positives, de-duplicated, plus ``in_batch_uniform * B`` uniform draws
    (the module docstring states the approximation its ``log p`` makes).

    ``draw``: ``items = unique(pos) ++ extras``, ``counts`` = how many rows have each unique
    positive (1 for an extra), ``log p`` under ``(f + k / |I|) / (1 + k)``. Every row's own
    positive is always masked (it is one of the columns), whatever ``mask_accidental_hits`` says
    elsewhere.
    """

    name = "in_batch"
    description = "takes the batch's other positives (plus in_batch_uniform uniform draws per positive)"
    options = ("in_batch_uniform",)

    def __init__(self, n_items: int, item_counts: torch.Tensor, in_batch_uniform: int = 0):
        self.extras = in_batch_uniform
        k = float(in_batch_uniform)
        proposal = (training_frequencies(item_counts) + k * uniform_proposal(n_items)) / (1.0 + k)
        super().__init__(n_items, proposal, in_batch_uniform, mask_accidental_hits=True)

    def draw(self, pos_items):
        positives, counts = torch.unique(pos_items, return_counts=True)
        keep = positives > 0  # a padding "positive" is no negative
        positives, counts = positives[keep], counts[keep]
        n_extras = self.extras * pos_items.shape[0]
        extras = torch.randint(1, self.n_items, (n_extras,), device=pos_items.device)
        log_p = self.log_prob(torch.cat([positives, extras]))
        if len(positives) < 2 and not n_extras:
            # Every row has the same positive (a last batch of one row): no row would have a
            # negative. B uniform draws instead, weighted as what they are.
            extras = torch.randint(1, self.n_items, (pos_items.shape[0],), device=pos_items.device)
            log_p = torch.cat([self.log_prob(positives), torch.full(extras.shape, -math.log(self.catalogue_size),
                                                                   device=extras.device)])
        return Draws(torch.cat([positives, extras]), log_p, torch.cat([counts, torch.ones_like(extras)]))
