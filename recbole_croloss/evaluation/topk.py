r"""Exact top-N over a whole catalogue, in item chunks, with a running top-N merged across chunks.

:func:`chunked_topk` scores ``queries`` against ``keys`` chunk by chunk,

    ``S[u, i] = q_u . k_i``                  (``q [U, d]``)
    ``S[u, i] = max_k q_uk . k_i``           (multi-interest, ``q [U, K, d]``),

and keeps, for every row, the ``n`` best items seen so far: ``(scores [U, n], ids [U, n])``,
best first. Memory is ``U x chunk`` scores (twice that for several interests) plus the running
top-N, whatever the catalogue size: the caller picks ``U`` and ``chunk`` from a memory budget
(:mod:`recbole_croloss.evaluation.evaluator`).

Masked items score ``-inf`` (:class:`Exclusions`: the padding item, a user's history). Ties: two
items with exactly equal scores may come in either order (as with ``torch.topk``, which RecBole
uses); the scores returned are always the exact top-N scores.

Speed. After the first chunk each row has a threshold ``t_u`` = its current n-th best score; an
item of a later chunk can enter the top-N only if ``S[u, i] > t_u``. Instead of a top-k
selection over every later chunk (a partial sort of ``U x chunk`` values), the chunk is compared
with the thresholds and only the survivors (typically a few per row) are merged. When too many
survive (an early chunk, masked rows) the chunk goes through ``torch.topk`` instead.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

#: A chunk goes through ``torch.topk`` when more than this fraction of its scores beat the rows'
#: thresholds (merging survivors one by one then costs more than the selection).
PRUNE_MAX_FRACTION = 1 / 16


@dataclass
class Exclusions:
    """Items a row may not recommend: ``(rows [P], items [P])`` pairs (RecBole's
    ``history_index`` layout) and, for every row, the items ``always [A]`` (the padding item 0)."""

    rows: torch.Tensor | None = None
    items: torch.Tensor | None = None
    always: tuple[int, ...] = ()

    def block(self, row_lo: int, row_hi: int) -> "Exclusions":
        """The exclusions of rows ``row_lo:row_hi``, renumbered from 0."""
        if self.rows is None:
            return self
        keep = (self.rows >= row_lo) & (self.rows < row_hi)
        return Exclusions(self.rows[keep] - row_lo, self.items[keep], self.always)

    def apply(self, scores: torch.Tensor, lo: int) -> None:
        """Set ``-inf`` in ``scores [U, C]`` (items ``lo .. lo + C - 1``) where excluded."""
        hi = lo + scores.shape[1]
        for item in self.always:
            if lo <= item < hi:
                scores[:, item - lo] = -torch.inf
        if self.rows is not None and self.rows.numel():
            keep = (self.items >= lo) & (self.items < hi)
            scores[self.rows[keep], self.items[keep] - lo] = -torch.inf


def score_chunk(queries: torch.Tensor, keys_t: torch.Tensor, out: torch.Tensor,
                work: torch.Tensor | None = None) -> torch.Tensor:
    """``out [U, C] = q @ keys_t`` for ``q [U, d]``, or ``max_k q[:, k] @ keys_t`` for
    ``q [U, K, d]`` (one ``[U, C]`` product at a time into ``work``: no ``[U, K, C]`` tensor)."""
    if queries.dim() == 2:
        return torch.matmul(queries, keys_t, out=out)
    torch.matmul(queries[:, 0], keys_t, out=out)
    for k in range(1, queries.shape[1]):
        torch.maximum(out, torch.matmul(queries[:, k], keys_t, out=work), out=out)
    return out


def merge_topk(scores_a, ids_a, scores_b, ids_b, n: int):
    """The best ``n`` of two candidate lists per row: ``[U, a] + [U, b] -> [U, n]`` (a + b >= n)."""
    scores = torch.cat([scores_a, scores_b], dim=1)
    ids = torch.cat([ids_a, ids_b], dim=1)
    best, order = scores.topk(n, dim=1)
    return best, ids.gather(1, order)


def merge_survivors(run_scores, run_ids, rows, items, values, n: int):
    r"""Merge flat candidates ``(rows [S], items [S], values [S])``, sorted by row (as
    ``nonzero`` returns them), into the running top-N ``[U, n]``: they are laid out as a
    ``[U, m]`` block (``m`` = most candidates of one row, -inf padding) and merged by one top-k."""
    U = run_scores.shape[0]
    counts = torch.bincount(rows, minlength=U)
    m = int(counts.max())
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(len(rows), device=rows.device) - starts[rows]
    cand_scores = torch.full((U, m), -torch.inf, dtype=run_scores.dtype, device=run_scores.device)
    cand_ids = torch.zeros((U, m), dtype=run_ids.dtype, device=run_ids.device)
    cand_scores[rows, rank] = values
    cand_ids[rows, rank] = items
    return merge_topk(run_scores, run_ids, cand_scores, cand_ids, n)


class Workspace:
    """Flat buffers kept between calls, so that a CPU evaluation does not page-fault a fresh
    ``[U, chunk]`` block for every batch (GPU allocators cache blocks by themselves)."""

    def __init__(self):
        self._buffers: dict = {}

    def get(self, slot: int, numel: int, like: torch.Tensor) -> torch.Tensor:
        key = (slot, like.device, like.dtype)
        buf = self._buffers.get(key)
        if buf is None or buf.numel() < numel:
            self._buffers.pop(key, None)
            buf = self._buffers[key] = like.new_empty(numel)
        return buf[:numel]


def first_chunk_size(n: int, chunk: int) -> int:
    """The first chunk sets the rows' thresholds: ``32 n`` items (at most ``chunk``), so that
    about 1/32 of a later chunk survives the threshold at first, fewer as it rises."""
    return max(1, min(chunk, 32 * n))


@torch.no_grad()
def chunked_topk(queries: torch.Tensor, keys: torch.Tensor, n: int, chunk: int,
                 exclusions: Exclusions | None = None, prune: bool = True,
                 workspace: Workspace | None = None):
    r"""The exact top ``n`` items of every row, scanning ``keys`` ``chunk`` items at a time.

    Shapes: ``queries [U, d]`` or ``[U, K, d]`` (max over the K interests), ``keys [N, d]`` ->
    ``(scores [U, n], ids [U, n])``, best first (``n <= N``; ids index ``keys``). ``queries``
    and ``keys`` are used as given: apply the score's scale and normalisation before. No
    gradient flows (a top-N has none). With ``prune`` the first chunk has
    :func:`first_chunk_size` items and sets the thresholds the later chunks are filtered by.
    """
    U, N = queries.shape[0], keys.shape[0]
    if not 1 <= n <= N:
        raise ValueError(f"top n={n} must be between 1 and the number of items {N}")
    if chunk < 1:
        raise ValueError(f"chunk={chunk} must be >= 1")
    exclusions = exclusions or Exclusions()
    workspace = workspace or Workspace()
    chunk = min(chunk, N)
    bounds = [0, first_chunk_size(n, chunk)] if prune else [0]
    bounds += list(range(bounds[-1] + chunk, N, chunk)) if bounds[-1] < N else []
    bounds = sorted(set(b for b in bounds if b < N)) + [N]
    buf = workspace.get(0, U * chunk, queries)  # flat: a short chunk is a contiguous view
    work = workspace.get(1, U * chunk, queries) if queries.dim() == 3 else None
    run_scores = run_ids = None
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        size = U * (hi - lo)
        scores = score_chunk(queries, keys[lo:hi].T, buf[:size].view(U, hi - lo),
                             None if work is None else work[:size].view(U, hi - lo))
        exclusions.apply(scores, lo)
        full = run_scores is not None and run_scores.shape[1] == n
        if full and prune:
            survivors = (scores > run_scores[:, -1:]).nonzero()    # can enter the top-N
            if len(survivors) <= PRUNE_MAX_FRACTION * scores.numel():
                if len(survivors):
                    r, c = survivors.unbind(1)
                    run_scores, run_ids = merge_survivors(run_scores, run_ids, r, c + lo,
                                                          scores[r, c], n)
                continue
        top, ids = scores.topk(min(n, hi - lo), dim=1)
        ids = ids + lo
        if run_scores is None:
            run_scores, run_ids = top, ids
        else:  # sorted, and cut to n once n items have been seen
            run_scores, run_ids = merge_topk(run_scores, run_ids, top, ids,
                                             min(n, run_scores.shape[1] + top.shape[1]))
    return run_scores, run_ids
