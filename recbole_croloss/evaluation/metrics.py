r"""Top-N ranking metrics from a hit matrix, as RecBole 1.2.1 defines them.

Input: ``hits [U, n]`` (bool: the item at rank r of user u is one of u's targets), ``n_pos [U]``
(the number of distinct targets of u) and the cut-offs ``ks`` (each <= n). Per user, with
``h_r = hits[u, r - 1]`` and ``P = n_pos[u]``:

- ``Recall@k    = sum_{r<=k} h_r / P``        (several targets: hits / targets; with repeated
  targets counted as often as they occur, ``c_r / C``: ``c_r`` the occurrences of the item at
  rank r among u's targets, ``C`` their number, as the paper's official code counts)
- ``Precision@k = sum_{r<=k} h_r / k``
- ``Hit@k       = [sum_{r<=k} h_r > 0]``
- ``MRR@k       = 1 / r*`` for the first hit at rank ``r* <= k``, else 0
- ``NDCG@k      = sum_{r<=k} h_r / log2(r + 1)  /  sum_{r<=min(P, k)} 1 / log2(r + 1)``

A metric is a :class:`Metric` of :data:`METRICS` (:func:`register_metric` adds one); each is
the mean over users (float64). :class:`MetricAccumulator` adds users batch by
batch, so nothing of size ``[U, n_items]`` is ever held. Users without targets are not counted
(RecBole's full-sort flows have none; its formulas would divide by zero).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import ConfigError

@dataclass(frozen=True)
class RankedHits:
    """What every metric is computed from, for U users over n ranks (float64 where a value).

    ``hits [U, n]``, ``cum_hits [U, n]`` (hits within the first r ranks), ``n_pos [U]``,
    ``first [U]`` (index of the first hit, n if none), ``dcg [U, n]`` (cumulative discounted
    hits), ``ideal [n]`` (the cumulative discount of a perfect list), and what Recall counts:
    ``recall_hits [U, n]`` (cumulative) over ``recall_pos [U]`` (the hits and the distinct
    targets, or the occurrences of repeated targets).
    """

    hits: torch.Tensor
    cum_hits: torch.Tensor
    n_pos: torch.Tensor
    first: torch.Tensor
    dcg: torch.Tensor
    ideal: torch.Tensor
    recall_hits: torch.Tensor
    recall_pos: torch.Tensor

    @classmethod
    def of(cls, hits: torch.Tensor, n_pos: torch.Tensor,
           repeats: "TargetCounts | None" = None) -> "RankedHits":
        hits = hits.to(torch.float64)
        n = hits.shape[1]
        ranks = torch.arange(1, n + 1, dtype=torch.float64, device=hits.device)
        discount = 1.0 / torch.log2(ranks + 1)                       # [n]
        first = torch.where(hits.any(1), hits.argmax(1), n)
        cum_hits = hits.cumsum(1)
        recall_hits, recall_pos = (cum_hits, n_pos) if repeats is None else \
            (repeats.counts.to(torch.float64).cumsum(1), repeats.n_targets)
        return cls(hits, cum_hits, n_pos, first, (hits * discount).cumsum(1), discount.cumsum(0),
                   recall_hits, recall_pos)


class Metric:
    """A top-k metric: ``metric(ranked, k) -> [U]`` per-user values; ``name`` is how the key
    ``metrics`` spells it (RecBole's spelling), ``key`` its prefix in results (``recall@50``)."""

    name: str = ""
    key: str = ""

    def __call__(self, ranked: RankedHits, k: int) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class Recall(Metric):
    name, key = "Recall", "recall"

    def __call__(self, ranked, k):
        return ranked.recall_hits[:, k - 1] / ranked.recall_pos.to(torch.float64)


class Precision(Metric):
    name, key = "Precision", "precision"

    def __call__(self, ranked, k):
        return ranked.cum_hits[:, k - 1] / k


class Hit(Metric):
    name, key = "Hit", "hit"

    def __call__(self, ranked, k):
        return (ranked.cum_hits[:, k - 1] > 0).to(torch.float64)


class MRR(Metric):
    name, key = "MRR", "mrr"

    def __call__(self, ranked, k):
        return torch.where(ranked.first < k, 1.0 / (ranked.first + 1).to(torch.float64), 0.0)


class NDCG(Metric):
    name, key = "NDCG", "ndcg"

    def __call__(self, ranked, k):
        return ranked.dcg[:, k - 1] / ranked.ideal[(torch.clamp(ranked.n_pos, max=k) - 1).clamp_min(0)]


#: Metric name (RecBole's spelling) -> metric: what the key ``metrics`` can name.
METRICS: dict[str, Metric] = {m.name: m() for m in (Recall, NDCG, Hit, MRR, Precision)}


def register_metric(metric: Metric) -> Metric:
    """Make ``metric`` (a :class:`Metric` instance) nameable by the key ``metrics``. Its name
    must be new."""
    if not isinstance(metric, Metric) or not metric.name or not metric.key:
        raise TypeError(f"register_metric takes a Metric with a name and a key; got {metric!r}")
    if METRICS.get(metric.name, metric) is not metric:
        raise ValueError(f"a metric named {metric.name!r} is already registered")
    METRICS[metric.name] = metric
    return metric


def check_metrics(metrics, ks) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Validated ``(metrics, ks)``: every metric one of :data:`METRICS` (any case), every k an
    integer >= 1. Raises :class:`ConfigError` naming the key."""
    if isinstance(metrics, str):
        metrics = [metrics]
    if not metrics:  # the results would be empty, and valid_metric never found
        raise ConfigError("metrics", metrics, "at least one of: " + ", ".join(METRICS))
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


def per_user_metrics(hits: torch.Tensor, n_pos: torch.Tensor, metrics, ks,
                     repeats: "TargetCounts | None" = None) -> dict[str, torch.Tensor]:
    """``{"recall@50": [U] float64, ...}`` for each metric and k: per-user values."""
    return per_user_values(RankedHits.of(hits, n_pos, repeats), metrics, ks)


def per_user_values(ranked: RankedHits, metrics, ks) -> dict[str, torch.Tensor]:
    if max(ks) > ranked.hits.shape[1]:
        raise ValueError(f"the hit matrix has {ranked.hits.shape[1]} ranks but k={max(ks)} was asked")
    return {f"{METRICS[m].key}@{k}": METRICS[m](ranked, k) for k in ks for m in metrics}


class MetricAccumulator:
    """Sums of per-user metrics over batches; :meth:`result` gives the means.

    ``add(hits [U, n], n_pos [U])`` per batch of users (users with ``n_pos == 0`` are skipped).
    With ``keep_per_user``, it also keeps each user's Recall hits at every k
    (:meth:`per_user_hits`), from which every Recall@k mean is computed again exactly.
    """

    def __init__(self, metrics, ks, keep_per_user: bool = False):
        self.metrics, self.ks = check_metrics(metrics, ks)
        self.sums: dict[str, float] = {}
        self.users = 0
        self._per_user = [] if keep_per_user else None

    def add(self, hits: torch.Tensor, n_pos: torch.Tensor, repeats: "TargetCounts | None" = None,
            user_ids: torch.Tensor | None = None) -> None:
        keep = n_pos > 0
        if not bool(keep.all()):
            hits, n_pos = hits[keep], n_pos[keep]
            repeats = None if repeats is None else repeats.rows(keep)
            user_ids = None if user_ids is None else user_ids[keep]
        ranked = RankedHits.of(hits, n_pos, repeats)
        for key, values in per_user_values(ranked, self.metrics, self.ks).items():
            self.sums[key] = self.sums.get(key, 0.0) + float(values.sum())
        self.users += int(n_pos.numel())
        if self._per_user is not None:
            at_ks = ranked.recall_hits[:, [k - 1 for k in self.ks]]
            ids = torch.full_like(n_pos, -1) if user_ids is None else user_ids
            self._per_user.append((ids.cpu(), ranked.recall_pos.cpu(), at_ks.round().long().cpu()))

    def per_user_hits(self) -> dict[str, torch.Tensor] | None:
        """``users [U]`` (ids, -1 where unknown), ``targets [U]`` (what Recall divides by),
        ``hits [U, K]`` (Recall's hits within each k of ``ks [K]``); ``None`` unless kept.
        ``(hits[:, j] / targets).mean()`` is Recall@ks[j]."""
        if self._per_user is None:
            return None
        if not self._per_user:
            empty = torch.zeros(0, dtype=torch.long)
            return {"users": empty, "targets": empty, "hits": torch.zeros(0, len(self.ks), dtype=torch.long),
                    "ks": torch.tensor(self.ks)}
        users, targets, hits = (torch.cat(parts) for parts in zip(*self._per_user))
        return {"users": users.long(), "targets": targets.long(), "hits": hits.long(),
                "ks": torch.tensor(self.ks)}

    def result(self, decimals: int | None = None) -> dict[str, float]:
        """``{"recall@50": mean, ...}`` in RecBole's key order (metric, then k), rounded to
        ``decimals`` places as RecBole's ``metric_decimal_place`` does, or unrounded."""
        if not self.users:
            raise ValueError("no user with a target was evaluated")
        out = {}
        for m in self.metrics:
            for k in self.ks:
                key = f"{METRICS[m].key}@{k}"
                value = self.sums[key] / self.users
                out[key] = round(value, decimals) if decimals is not None else value
        return out


def target_hits(top_ids: torch.Tensor, target_rows: torch.Tensor, target_items: torch.Tensor,
                n_items: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(hits [U, n] bool, n_pos [U])`` for ``top_ids [U, n]`` and the targets as
    ``(rows [T], items [T])`` pairs (RecBole's ``positive_u``, ``positive_i``); a pair given
    twice counts once, as in RecBole's ``pos_matrix``."""
    U = top_ids.shape[0]
    # A target outside the users or the items would be counted for another user (keys mix them).
    outside = ((target_rows < 0) | (target_rows >= U)).any() | \
        ((target_items < 0) | (target_items >= n_items)).any()
    if bool(outside):
        raise ValueError(f"targets must be (row, item) pairs with rows in 0..{U - 1} (the users of "
                         f"top_ids) and items in 0..{n_items - 1} (the catalogue)")
    keys = torch.unique(target_rows.to(top_ids.device).long() * n_items + target_items.to(top_ids.device).long())
    n_pos = torch.bincount(torch.div(keys, n_items, rounding_mode="floor"), minlength=U)
    if not len(keys):
        return torch.zeros_like(top_ids, dtype=torch.bool), n_pos
    query = torch.arange(U, device=top_ids.device)[:, None] * n_items + top_ids   # [U, n]
    # membership by binary search in the sorted target keys (O(U n log T), no [U, n] sort)
    found = keys[torch.searchsorted(keys, query).clamp_(max=len(keys) - 1)]
    return found == query, n_pos


@dataclass(frozen=True)
class TargetCounts:
    """Repeated targets counted as often as they occur: ``counts [U, n]`` (occurrences of the
    item at each rank among the user's targets) and ``n_targets [U]`` (all occurrences)."""

    counts: torch.Tensor
    n_targets: torch.Tensor

    def rows(self, keep: torch.Tensor) -> "TargetCounts":
        return TargetCounts(self.counts[keep], self.n_targets[keep])


def target_counts(top_ids: torch.Tensor, target_rows: torch.Tensor, target_items: torch.Tensor,
                  n_items: int) -> TargetCounts:
    """:class:`TargetCounts` of ``top_ids [U, n]`` for the ``(rows [T], items [T])`` pairs,
    each pair counted as often as it is given."""
    U = top_ids.shape[0]
    pairs = target_rows.to(top_ids.device).long() * n_items + target_items.to(top_ids.device).long()
    keys, occurrences = torch.unique(pairs, return_counts=True)
    n_targets = torch.bincount(torch.div(pairs, n_items, rounding_mode="floor"), minlength=U)
    if not len(keys):
        return TargetCounts(torch.zeros_like(top_ids), n_targets)
    query = torch.arange(U, device=top_ids.device)[:, None] * n_items + top_ids
    at = torch.searchsorted(keys, query).clamp_(max=len(keys) - 1)
    return TargetCounts(torch.where(keys[at] == query, occurrences[at], 0), n_targets)


#: The order of the rows of :func:`results_table` (other metrics follow).
TABLE_ORDER = ("recall", "ndcg", "hit", "mrr", "precision")


def results_table(results: dict) -> str:
    """``{"recall@50": 0.41, ...}`` as a compact text table: ``metric | @50 | @100 ...``."""
    rows: dict[str, dict[int, float]] = {}
    for key, value in results.items():
        metric, _, k = key.partition("@")
        rows.setdefault(metric.lower(), {})[int(k)] = float(value)
    ks = sorted({k for r in rows.values() for k in r})
    lines = ["metric    " + "".join(f"{'@' + str(k):>9}" for k in ks)]
    for metric in sorted(rows, key=lambda m: TABLE_ORDER.index(m) if m in TABLE_ORDER else 99):
        lines.append(f"{metric:<10}" + "".join(f"{rows[metric].get(k, float('nan')):>9.4f}" for k in ks))
    return "\n".join(lines)
