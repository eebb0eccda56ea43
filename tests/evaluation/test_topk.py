"""Chunked top-N equals a full sort: ties, N larger than a chunk, masks, several interests."""
import itertools

import pytest
import torch

from recbole_croloss.evaluation.topk import Exclusions, chunked_topk, merge_survivors

CASES = list(itertools.product([1, 5, 64], [1, 7, 50, 400], [0, 3], [False, True], [True, False]))


def reference(queries, keys, rows, items):
    """Float64 scores, the masked ones -inf, sorted best first: ``[U, N]``."""
    q, k = queries.double(), keys.double()
    scores = (q @ k.T).amax(1) if q.dim() == 3 else q @ k.T
    scores[:, 0] = -torch.inf
    scores[rows, items] = -torch.inf
    return scores


@pytest.mark.parametrize("n,chunk,interests,ties,prune", CASES)
def test_chunked_topk_equals_full_sort(n, chunk, interests, ties, prune):
    gen = torch.Generator().manual_seed(n * 1000 + chunk + interests)
    U, N, d = 9, 400, 8
    shape = (U, interests, d) if interests else (U, d)
    queries, keys = torch.randn(shape, generator=gen), torch.randn(N, d, generator=gen)
    if ties:  # few distinct scores: many exact ties, also across chunks
        queries, keys = queries.round(), keys.round().clamp(-1, 1)
    rows, items = torch.tensor([0, 0, 4, 8]), torch.tensor([3, N - 1, 17, 200])
    full = reference(queries, keys, rows, items)
    top, ids = chunked_topk(queries, keys, n, chunk, Exclusions(rows, items, always=(0,)), prune)
    expected = full.sort(dim=1, descending=True).values[:, :n]
    torch.testing.assert_close(top.double(), expected, rtol=1e-5, atol=1e-5)
    # The ids carry those scores (under ties any of the tied items), each item once per row.
    torch.testing.assert_close(full.gather(1, ids), expected, rtol=1e-5, atol=1e-5)
    assert all(len(set(row.tolist())) == n for row in ids)
    assert not torch.isin(ids, torch.tensor([0])).any() or n > N - 3


def test_without_ties_ids_equal_torch_topk():
    gen = torch.Generator().manual_seed(0)
    queries, keys = torch.randn(33, 16, generator=gen), torch.randn(5000, 16, generator=gen)
    for chunk in (100, 999, 5000):
        top, ids = chunked_topk(queries, keys, 500, chunk)
        ref_top, ref_ids = (queries @ keys.T).topk(500, dim=1)
        assert torch.equal(ids, ref_ids)
        torch.testing.assert_close(top, ref_top)


def test_every_item_masked_but_n_still_returns_the_unmasked_first():
    queries, keys = torch.ones(2, 2), torch.arange(20.0).reshape(10, 2)
    top, ids = chunked_topk(queries, keys, 10, 3, Exclusions(torch.tensor([1] * 8), torch.arange(1, 9), (0,)))
    assert ids[1, :1].tolist() == [9] and torch.isinf(top[1, 1:]).all()
    assert ids[0, :9].tolist() == list(range(9, 0, -1))


def test_merge_survivors_keeps_each_rows_best():
    run_scores = torch.tensor([[5.0, 3.0], [2.0, 1.0]])
    run_ids = torch.tensor([[10, 11], [20, 21]])
    rows, items, values = torch.tensor([0, 1, 1]), torch.tensor([31, 30, 32]), torch.tensor([4.0, 9.0, 1.5])
    scores, ids = merge_survivors(run_scores, run_ids, rows, items, values, 2)
    assert scores.tolist() == [[5.0, 4.0], [9.0, 2.0]] and ids.tolist() == [[10, 31], [30, 20]]


@pytest.mark.parametrize("n,chunk", [(0, 10), (11, 10), (3, 0)])
def test_bad_arguments(n, chunk):
    with pytest.raises(ValueError):
        chunked_topk(torch.randn(2, 3), torch.randn(10, 3), n, chunk)
