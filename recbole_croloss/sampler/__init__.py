r"""Negatives for CROLoss and the losses compared with it, shared by the whole mini-batch.

A sampler turns the positives of a batch ``pos_items [B]`` into
``Negatives(items [M], mask [B, M] | None, log_q [M] | [B, M] | None)``: one set of M negative
item ids scored against every row, the mask (bool, True = counts) that removes a row's own
positive ("accidental hit"), and the log-probability the loss weighs each negative by (``None``
for uniform draws, where the rank estimators' own coefficients apply). ``catalogue_size`` is
|I|, the number of candidates the rank is estimated over. Item id 0 (RecBole's padding item) is
never a negative.

The key ``negatives`` names a sampler of :data:`NEGATIVES`: ``uniform`` and ``full``
(:mod:`.uniform`), ``popularity``, ``mixed`` and ``in_batch`` (:mod:`.weighted`, from the
training split's item counts); :class:`CrossBatchMemory` (``neg_memory``) adds the last K
batches' draws to any of them. :func:`register_sampler` adds one of the user's own, and
:func:`build_sampler` makes one from its settings. In a distributed run
:class:`recbole_croloss.distributed.GatheredNegatives` wraps any sampler.
"""
from .base import (NEGATIVES, SAMPLER_SETTINGS, Draws, Negatives, NegativeSampler, build_sampler, check_sampler_name,
                   check_sampler_settings, hit_mask, register_sampler, row_log_q)
from .memory import CrossBatchMemory, concat_draws
from .uniform import FullNegatives, UniformNegatives
from .weighted import (InBatchNegatives, MixedNegatives, PopularityNegatives, ProposalNegatives, popularity_proposal,
                       training_frequencies, uniform_proposal)

__all__ = ["NEGATIVES", "SAMPLER_SETTINGS", "Draws", "Negatives", "NegativeSampler", "build_sampler",
           "check_sampler_name", "check_sampler_settings", "hit_mask", "register_sampler", "row_log_q",
           "CrossBatchMemory", "concat_draws", "FullNegatives", "UniformNegatives", "InBatchNegatives",
           "MixedNegatives", "PopularityNegatives", "ProposalNegatives", "popularity_proposal",
           "training_frequencies", "uniform_proposal"]
