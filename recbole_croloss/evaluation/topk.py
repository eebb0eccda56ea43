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

Speed. Each chunk's top n is found in two levels (:func:`block_topk`): the maximum of every
block of :data:`BLOCK` items (one vectorised pass), the n blocks with the largest maxima, and
the top n among those ``n x BLOCK`` items. An item outside those blocks has n block maxima of n
other items at least as large, so it is not needed: the result is exact, and the costly
selection runs on ``1 / BLOCK`` of the scores plus ``n x BLOCK`` per row instead of all of them.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

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


#: Items per block of :func:`block_topk`.
BLOCK = 64


def block_topk(scores: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The exact top ``n`` of each row of ``scores [U, C]``: ``(values [U, n'], cols [U, n'])``,
    best first, ``n' = min(n, C)``.

    With ``m_b`` the maximum of block b (items ``b BLOCK .. (b+1) BLOCK - 1``), the top n items
    lie in the n blocks of largest ``m_b``: an item x of another block is beaten by those n
    maxima, n distinct items scoring at least x. So the selection runs on the block maxima
    ``[U, C / BLOCK]`` and on ``[U, n x BLOCK]`` gathered scores; the last ``C mod BLOCK`` items
    join the candidates as they are. Small chunks (``C < 4 n BLOCK``) use ``torch.topk``.
    """
    U, C = scores.shape
    k = min(n, C)
    n_blocks = C // BLOCK
    if n_blocks < 4 * k:
        return scores.topk(k, dim=1)
    whole = n_blocks * BLOCK
    blocks = scores[:, :whole].view(U, n_blocks, BLOCK)
    top_blocks = blocks.amax(dim=2).topk(k, dim=1).indices                  # [U, k]
    candidates = blocks.gather(1, top_blocks[..., None].expand(U, k, BLOCK)).view(U, k * BLOCK)
    if whole < C:
        candidates = torch.cat([candidates, scores[:, whole:]], dim=1)
    values, pos = candidates.topk(k, dim=1)
    in_block = pos < k * BLOCK
    block_of = top_blocks.gather(1, (pos // BLOCK).clamp(max=k - 1))
    cols = torch.where(in_block, block_of * BLOCK + pos % BLOCK, whole + pos - k * BLOCK)
    return values, cols


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


@torch.no_grad()
def chunked_topk(queries: torch.Tensor, keys: torch.Tensor, n: int, chunk: int,
                 exclusions: Exclusions | None = None, workspace: Workspace | None = None):
    r"""The exact top ``n`` items of every row, scanning ``keys`` ``chunk`` items at a time.

    Shapes: ``queries [U, d]`` or ``[U, K, d]`` (max over the K interests), ``keys [N, d]`` ->
    ``(scores [U, n], ids [U, n])``, best first (``n <= N``; ids index ``keys``). ``queries``
    and ``keys`` are used as given: apply the score's scale and normalisation before. No
    gradient flows (a top-N has none). Each chunk's top n (:func:`block_topk`) is merged into
    the running top n.
    """
    U, N = queries.shape[0], keys.shape[0]
    if not 1 <= n <= N:
        raise ValueError(f"top n={n} must be between 1 and the number of items {N}")
    if chunk < 1:
        raise ValueError(f"chunk={chunk} must be >= 1")
    exclusions = exclusions or Exclusions()
    workspace = workspace or Workspace()
    chunk = min(chunk, N)
    buf = workspace.get(0, U * chunk, queries)  # flat: a short chunk is a contiguous view
    work = workspace.get(1, U * chunk, queries) if queries.dim() == 3 else None
    run_scores = run_ids = None
    for lo in range(0, N, chunk):
        hi = min(lo + chunk, N)
        size = U * (hi - lo)
        scores = score_chunk(queries, keys[lo:hi].T, buf[:size].view(U, hi - lo),
                             None if work is None else work[:size].view(U, hi - lo))
        exclusions.apply(scores, lo)
        top, ids = block_topk(scores, n)
        ids = ids + lo
        if run_scores is None:
            run_scores, run_ids = top, ids
        else:  # cut to n once n items have been seen
            run_scores, run_ids = merge_topk(run_scores, run_ids, top, ids,
                                             min(n, run_scores.shape[1] + top.shape[1]))
    return run_scores, run_ids
