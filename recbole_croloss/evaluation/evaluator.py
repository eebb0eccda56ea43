r"""The full-ranking evaluator: many users per step, the catalogue in chunks, memory set by a budget.

For a batch of users (queries ``[U, d]``, or ``[U, K, d]`` for multi-interest users) and the
item keys ``[N, d]``, :class:`FullRankingEvaluator` finds every user's exact top ``n = max(ks)``
items with :func:`~recbole_croloss.evaluation.topk.chunked_topk` and adds the users' metrics
(:mod:`~recbole_croloss.evaluation.metrics`). Rows are taken ``plan.rows`` at a time and items
``plan.chunk`` at a time, chosen by :func:`plan_memory` so that the evaluator's working memory
stays within ``eval_memory_budget``:

    ``rows x (chunk x cell_bytes + row_bytes) <= budget``,

``cell_bytes`` = one score (two with several interests: the running max and the next product)
plus two bytes of block maxima and temporaries; ``row_bytes`` = the block top-k's candidates,
the running top-n and its merge buffers.
The catalogue size enters only through ``chunk <= N``. Not counted: the model, the item keys
``[N, d]`` and the users' forward pass, which every evaluator holds.

RecBole's own full-sort path instead holds ``eval_batch_size x N`` float scores plus an int32
``pos_matrix`` of the same shape (``Collector.eval_batch_collect``).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch

from ..errors import ConfigError
from .metrics import MetricAccumulator, check_metrics, target_counts, target_hits
from .topk import BLOCK, Exclusions, Workspace, chunked_topk

#: ``recall_targets``: how Recall counts a target item given several times for one user.
RECALL_TARGETS = ("unique", "all")

#: A chunk this long or longer keeps the matrix products efficient; rows are cut before chunks.
GOOD_CHUNK = 1 << 16
#: Fewest items in a chunk (or the whole catalogue, if smaller).
MIN_CHUNK = 1024
#: Most rows per step.
MAX_ROWS = 1024

_UNITS = {"": 1, "b": 1, "k": 1e3, "kb": 1e3, "kib": 2**10, "m": 1e6, "mb": 1e6, "mib": 2**20,
          "g": 1e9, "gb": 1e9, "gib": 2**30, "t": 1e12, "tb": 1e12, "tib": 2**40}


def parse_bytes(key: str, value) -> int:
    """``"2GiB"``, ``"512MB"``, ``"1.5 g"``, ``1073741824`` -> bytes (> 0), else a ConfigError."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if math.isfinite(value) and value > 0:
            return int(value)
    elif isinstance(value, str):
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][0-9]+)?)\s*([a-zA-Z]*)\s*", value)
        if match and match.group(2).lower() in _UNITS and float(match.group(1)) > 0:
            return int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    raise ConfigError(key, value, "a size in bytes > 0, e.g. 2GiB, 512MiB, 1e9")


def format_bytes(n: float) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{int(n)} B"


@dataclass(frozen=True)
class MemoryPlan:
    """``rows`` users x ``chunk`` items per step; ``bytes``: the working memory it needs."""

    rows: int
    chunk: int
    bytes: int


def cell_bytes(interests: int, element_size: int = 4) -> int:
    """Working bytes per (user, item) of a chunk: the scores, a second product buffer with
    several interests, and two bytes for the block maxima and the selection's temporaries."""
    return element_size * (2 if interests > 1 else 1) + 2


def row_bytes(n: int, element_size: int = 4, n_items: int | None = None) -> int:
    """Working bytes per user besides its chunk: the ``min(N, n x BLOCK)`` candidate scores of
    :func:`~recbole_croloss.evaluation.topk.block_topk` and their selection (two copies), and
    the running top-n (score + int64 id) with the merge's buffers (about six copies)."""
    candidates = n * BLOCK if n_items is None else min(n_items, n * BLOCK)
    return 2 * candidates * element_size + 6 * n * (element_size + 8)


def plan_memory(budget: int, n_items: int, n: int, interests: int = 1, max_rows: int = MAX_ROWS,
                element_size: int = 4, key: str = "eval_memory_budget") -> MemoryPlan:
    """The largest step (rows, then chunk) whose working memory fits ``budget`` bytes.

    Chunks of at least :data:`GOOD_CHUNK` items (or the whole catalogue) are preferred; rows are
    halved before chunks are shortened. Raises :class:`ConfigError` on ``key`` if even one row
    with a chunk of ``min(N, max(n, MIN_CHUNK))`` items does not fit.
    """
    cell, per_row = cell_bytes(interests, element_size), row_bytes(n, element_size, n_items)
    min_chunk = min(n_items, max(n, MIN_CHUNK))
    need_one = per_row + min_chunk * cell
    if budget < need_one:
        raise ConfigError(key, format_bytes(budget),
                          f"one user's row needs at least {format_bytes(need_one)} (its running "
                          f"top-{n} and a chunk of {min_chunk} items); raise {key}")
    rows = max(1, min(max_rows, MAX_ROWS))
    while True:
        chunk = min(n_items, (budget // rows - per_row) // cell) if budget // rows > per_row else 0
        if chunk >= min(n_items, GOOD_CHUNK) or (rows == 1 and chunk >= min_chunk):
            break
        if rows == 1:  # pragma: no cover - excluded by need_one
            raise AssertionError("plan_memory: no plan within the budget")
        rows //= 2
    if chunk == n_items:  # the whole catalogue fits: as many rows as the budget allows
        rows = max(rows, min(max_rows, budget // (per_row + n_items * cell)))
    return MemoryPlan(rows, chunk, rows * (per_row + chunk * cell))


class FullRankingEvaluator:
    """Exact full-ranking metrics at every k of ``ks``, within a memory budget.

    Args:
        metrics: names among Recall, NDCG, Hit, MRR, Precision.
        ks: cut-offs N; the running top-n has ``n = max(ks)``.
        memory_budget: bytes of working memory (see the module docstring), a number or a size
            as the key ``eval_memory_budget`` takes it (``"1GiB"``).
        recall_targets: ``unique`` (a target item given twice for a user counts once, as
            RecBole's ``pos_matrix``) or ``all`` (Recall counts every occurrence, as the paper's
            official code; the other metrics count distinct targets either way).
    """

    def __init__(self, metrics, ks, memory_budget: int, recall_targets: str = "unique"):
        if recall_targets not in RECALL_TARGETS:
            raise ConfigError("recall_targets", recall_targets, RECALL_TARGETS)
        self.recall_targets = recall_targets
        self.metrics, self.ks = check_metrics(metrics, ks)
        self.n = max(self.ks)
        self.memory_budget = parse_bytes("eval_memory_budget", memory_budget)  # "1GiB" as the key takes it
        self.workspace = Workspace()  # the working buffers, reused batch after batch

    def plan(self, n_items: int, interests: int = 1, rows: int = MAX_ROWS, element_size: int = 4) -> MemoryPlan:
        return plan_memory(self.memory_budget, n_items, min(self.n, n_items), interests, rows, element_size)

    def topk(self, queries: torch.Tensor, keys: torch.Tensor,
             exclusions: Exclusions | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(scores [U, n], ids [U, n])``, best first, for ``queries [U, d]`` / ``[U, K, d]``
        against ``keys [N, d]``, taken ``plan.rows`` rows at a time."""
        n_items, n = keys.shape[0], self.n
        if n > n_items:
            raise ConfigError("topk", list(self.ks), f"at most the number of items ({n_items})")
        if keys.dim() != 2 or queries.dim() not in (2, 3) or queries.shape[-1] != keys.shape[1]:
            raise ValueError(f"queries [U, d] or [U, K, d] and keys [N, d] must share d; got queries "
                             f"{tuple(queries.shape)} and keys {tuple(keys.shape)}")
        if queries.shape[0] == 0:
            return queries.new_zeros(0, n), torch.zeros(0, n, dtype=torch.long, device=queries.device)
        finite = torch.isfinite(queries).flatten(1).all(1)
        if not bool(finite.all()):  # NaN scores would rank anywhere and report a silent Recall
            raise ValueError(f"{int((~finite).sum())} of {len(finite)} query rows (the model's user "
                             "vectors) are NaN or infinite; the model cannot be ranked")
        interests = queries.shape[1] if queries.dim() == 3 else 1
        plan = self.plan(n_items, interests, queries.shape[0], queries.element_size())
        exclusions = exclusions or Exclusions()
        parts = [chunked_topk(queries[lo:lo + plan.rows], keys, n, plan.chunk,
                              exclusions.block(lo, lo + plan.rows), self.workspace)
                 for lo in range(0, queries.shape[0], plan.rows)]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    def accumulator(self, keep_per_user: bool = False) -> MetricAccumulator:
        return MetricAccumulator(self.metrics, self.ks, keep_per_user)

    def add(self, acc: MetricAccumulator, top_ids: torch.Tensor, target_rows: torch.Tensor,
            target_items: torch.Tensor, n_items: int, user_ids: torch.Tensor | None = None) -> None:
        """Add the users of ``top_ids [U, n]`` (ids ``user_ids [U]``, kept for per-user hits)
        with their targets ``(rows [T], items [T])``."""
        hits, n_pos = target_hits(top_ids, target_rows, target_items, n_items)
        repeats = target_counts(top_ids, target_rows, target_items, n_items) \
            if self.recall_targets == "all" else None
        acc.add(hits, n_pos, repeats, user_ids)

    def evaluate(self, queries, keys, target_rows, target_items, exclusions=None,
                 decimals: int | None = None) -> dict[str, float]:
        """Metrics of one set of users: ``{"recall@50": ..., ...}`` (means over users)."""
        acc = self.accumulator()
        _, ids = self.topk(queries, keys, exclusions)
        self.add(acc, ids, target_rows, target_items, keys.shape[0])
        return acc.result(decimals)
