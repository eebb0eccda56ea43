r"""Sampled-candidate evaluation (ReChorus's protocol): each case ranks its positive among a
fixed set of sampled negatives.

``scores [U, 1 + n]`` with the positive in column 0. Ties count against the positive (the
pessimistic rank): ``r_u = #{j >= 1 : scores[u, j] >= scores[u, 0]}``, 0 = ranked first. The
metrics are those of a hit list with one target at rank ``r_u``, so ``Hit@K = [r_u < K]``,
``NDCG@K = [r_u < K] / log2(r_u + 2)``, ``MRR@K = [r_u < K] / (r_u + 1)`` and ``Recall@K =
Hit@K``, exactly as :class:`~.metrics.MetricAccumulator` computes them for full ranking.
"""
from __future__ import annotations

import torch

from .metrics import MetricAccumulator


def pessimistic_ranks(scores: torch.Tensor) -> torch.Tensor:
    """``[U, 1 + n] -> [U]``: how many negatives score at least as high as the positive."""
    return (scores[:, 1:] >= scores[:, :1]).sum(dim=1)


def add_sampled(acc: MetricAccumulator, scores: torch.Tensor) -> None:
    """Add the cases of ``scores [U, 1 + n]`` (positive first) to ``acc`` (its ks <= 1 + n)."""
    ranks = pessimistic_ranks(scores)
    hits = torch.zeros_like(scores, dtype=torch.bool)
    hits[torch.arange(len(ranks), device=scores.device), ranks] = True
    acc.add(hits, torch.ones_like(ranks))
