"""Chunked top-N equals a full sort: ties, N larger than a chunk, masks, several interests."""
import itertools

import pytest
import torch

from recbole_croloss.evaluation.topk import BLOCK, Exclusions, block_topk, chunked_topk
from tests.devices import on_devices

#: (n, chunk, interests, ties): with 3000 items, n = 1 and 5 take block_topk's two-level path
#: for chunks of at least 4 n BLOCK items, n = 64 plain torch.topk.
CASES = list(itertools.product([1, 5, 64], [1, 7, 50, 1500, 3000], [0, 3], [False, True]))


def reference(queries, keys, rows, items):
    """Float64 scores, the masked ones -inf, sorted best first: ``[U, N]``."""
    q, k = queries.double(), keys.double()
    scores = (q @ k.T).amax(1) if q.dim() == 3 else q @ k.T
    scores[:, 0] = -torch.inf
    scores[rows, items] = -torch.inf
    return scores


@on_devices
@pytest.mark.parametrize("n,chunk,interests,ties", CASES)
def test_chunked_topk_equals_full_sort(n, chunk, interests, ties, device):
    """On CUDA too: the inputs, the exclusions and the results on the device, against the same
    float64 reference computed on the CPU."""
    gen = torch.Generator().manual_seed(n * 1000 + chunk + interests)
    U, N, d = 9, 3000, 8
    shape = (U, interests, d) if interests else (U, d)
    queries, keys = torch.randn(shape, generator=gen), torch.randn(N, d, generator=gen)
    if ties:  # few distinct scores: many exact ties, also across chunks
        queries, keys = queries.round(), keys.round().clamp(-1, 1)
    rows, items = torch.tensor([0, 0, 4, 8]), torch.tensor([3, N - 1, 17, 200])
    full = reference(queries, keys, rows, items)
    exclusions = Exclusions(rows.to(device), items.to(device), always=(0,))
    top, ids = chunked_topk(queries.to(device), keys.to(device), n, chunk, exclusions)
    assert top.device.type == ids.device.type == device
    top, ids = top.cpu(), ids.cpu()
    expected = full.sort(dim=1, descending=True).values[:, :n]
    torch.testing.assert_close(top.double(), expected, rtol=1e-5, atol=1e-5)
    # The ids carry those scores (under ties any of the tied items), each item once per row.
    torch.testing.assert_close(full.gather(1, ids), expected, rtol=1e-5, atol=1e-5)
    assert all(len(set(row.tolist())) == n for row in ids)
    assert not (ids == 0).any()  # the padding item is masked and n < N - 3


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


@on_devices
@pytest.mark.parametrize("C", [4 * 30 * BLOCK, 10_000, 10_037])
@pytest.mark.parametrize("ties", [False, True])
def test_block_topk_is_exact(C, ties, device):
    """Two levels (block maxima, then the best blocks' items), the tail included; on CUDA the
    device's result against the CPU's torch.topk values."""
    gen = torch.Generator().manual_seed(C)
    scores = torch.randn(6, C, generator=gen)
    if ties:
        scores = scores.round()
    scores[0, -1] = 100.0  # the best item of row 0 is in the tail (C mod BLOCK items) or last block
    scores[1, :BLOCK] = 50.0  # a whole block of equal best items
    values, cols = block_topk(scores.to(device), 30)
    assert values.device.type == cols.device.type == device
    values, cols = values.cpu(), cols.cpu()
    assert torch.equal(values, scores.topk(30, dim=1).values)
    assert torch.equal(scores.gather(1, cols), values)
    assert all(len(set(row.tolist())) == 30 for row in cols) and cols[0, 0] == C - 1


@pytest.mark.parametrize("n,chunk", [(0, 10), (11, 10), (3, 0)])
def test_bad_arguments(n, chunk):
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError):
        chunked_topk(torch.randn(2, 3, generator=g), torch.randn(10, 3, generator=g), n, chunk)
