r"""Top-N ranking metrics from a hit matrix, as RecBole 1.2.1 defines them.

Input: ``hits [U, n]`` (bool: the item at rank r of user u is one of u's targets), ``n_pos [U]``
(the number of distinct targets of u) and the cut-offs ``ks`` (each <= n). Per user, with
``h_r = hits[u, r - 1]`` and ``P = n_pos[u]``:

- ``Recall@k    = sum_{r<=k} h_r / P``        (several targets: hits / targets)
- ``Precision@k = sum_{r<=k} h_r / k``
- ``Hit@k       = [sum_{r<=k} h_r > 0]``
- ``MRR@k       = 1 / r*`` for the first hit at rank ``r* <= k``, else 0
- ``NDCG@k      = sum_{r<=k} h_r / log2(r + 1)  /  sum_{r<=min(P, k)} 1 / log2(r + 1)``

Each metric is the mean over users (float64). :class:`MetricAccumulator` adds users batch by
batch, so nothing of size ``[U, n_items]`` is ever held. Users without targets are not counted
(RecBole's full-sort flows have none; its formulas would divide by zero).
"""
from __future__ import annotations

import torch

from ..errors import ConfigError

#: Metric name (RecBole's spelling) -> key prefix in results (RecBole's: lower case).
METRICS = {"Recall": "recall", "NDCG": "ndcg", "Hit": "hit", "MRR": "mrr", "Precision": "precision"}


def check_metrics(metrics, ks) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Validated ``(metrics, ks)``: every metric one of :data:`METRICS` (any case), every k an
    integer >= 1. Raises :class:`ConfigError` naming the key."""
    if isinstance(metrics, str):
        metrics = [metrics]
    by_lower = {m.lower(): m for m in METRICS}
    names = []
    for m in metrics:
        if not isinstance(m, str) or m.lower() not in by_lower:
            raise ConfigError("metrics", m, "the full-ranking evaluator computes: "
                              + ", ".join(METRICS) + " (eval_engine='recbole' computes RecBole's others)")
        names.append(by_lower[m.lower()])
    if isinstance(ks, int):
        ks = [ks]
    if not ks or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in ks):
        raise ConfigError("topk", ks, "a list of integers >= 1, e.g. [50, 100, 200, 500]")
    return tuple(names), tuple(sorted(set(ks)))


def per_user_metrics(hits: torch.Tensor, n_pos: torch.Tensor, metrics, ks) -> dict[str, torch.Tensor]:
    """``{"recall@50": [U] float64, ...}`` for each metric and k: per-user values."""
    hits = hits.to(torch.float64)
    n = hits.shape[1]
    if max(ks) > n:
        raise ValueError(f"the hit matrix has {n} ranks but k={max(ks)} was asked")
    ranks = torch.arange(1, n + 1, dtype=torch.float64, device=hits.device)
    discount = 1.0 / torch.log2(ranks + 1)                       # [n]
    cum_hits = hits.cumsum(1)                                     # [U, n]
    pos = n_pos.to(torch.float64)
    first = torch.where(hits.any(1), hits.argmax(1), n)           # index of the first hit, n if none
    dcg = (hits * discount).cumsum(1)
    ideal = discount.cumsum(0)                                    # [n]
    out = {}
    for k in ks:
        got = cum_hits[:, k - 1]
        values = {
            "Recall": got / pos,
            "Precision": got / k,
            "Hit": (got > 0).to(torch.float64),
            "MRR": torch.where(first < k, 1.0 / (first + 1).to(torch.float64), 0.0),
            "NDCG": dcg[:, k - 1] / ideal[(torch.clamp(n_pos, max=k) - 1).clamp_min(0)],
        }
        for m in metrics:
            out[f"{METRICS[m]}@{k}"] = values[m]
    return out


class MetricAccumulator:
    """Sums of per-user metrics over batches; :meth:`result` gives the means.

    ``add(hits [U, n], n_pos [U])`` per batch of users (users with ``n_pos == 0`` are skipped).
    """

    def __init__(self, metrics, ks):
        self.metrics, self.ks = check_metrics(metrics, ks)
        self.sums: dict[str, float] = {}
        self.users = 0

    def add(self, hits: torch.Tensor, n_pos: torch.Tensor) -> None:
        keep = n_pos > 0
        if not bool(keep.all()):
            hits, n_pos = hits[keep], n_pos[keep]
        for key, values in per_user_metrics(hits, n_pos, self.metrics, self.ks).items():
            self.sums[key] = self.sums.get(key, 0.0) + float(values.sum())
        self.users += int(n_pos.numel())

    def result(self, decimals: int | None = None) -> dict[str, float]:
        """``{"recall@50": mean, ...}`` in RecBole's key order (metric, then k), rounded to
        ``decimals`` places as RecBole's ``metric_decimal_place`` does, or unrounded."""
        if not self.users:
            raise ValueError("no user with a target was evaluated")
        out = {}
        for m in self.metrics:
            for k in self.ks:
                key = f"{METRICS[m]}@{k}"
                value = self.sums[key] / self.users
                out[key] = round(value, decimals) if decimals is not None else value
        return out


def target_hits(top_ids: torch.Tensor, target_rows: torch.Tensor, target_items: torch.Tensor,
                n_items: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(hits [U, n] bool, n_pos [U])`` for ``top_ids [U, n]`` and the targets as
    ``(rows [T], items [T])`` pairs (RecBole's ``positive_u``, ``positive_i``); a pair given
    twice counts once, as in RecBole's ``pos_matrix``."""
    U = top_ids.shape[0]
    keys = torch.unique(target_rows.to(top_ids.device).long() * n_items + target_items.to(top_ids.device).long())
    n_pos = torch.bincount(torch.div(keys, n_items, rounding_mode="floor"), minlength=U)
    if not len(keys):
        return torch.zeros_like(top_ids, dtype=torch.bool), n_pos
    query = torch.arange(U, device=top_ids.device)[:, None] * n_items + top_ids   # [U, n]
    # membership by binary search in the sorted target keys (O(U n log T), no [U, n] sort)
    found = keys[torch.searchsorted(keys, query).clamp_(max=len(keys) - 1)]
    return found == query, n_pos
