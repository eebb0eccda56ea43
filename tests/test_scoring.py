"""Scores: multi-interest users rank by their best interest, which is ComiRec's search and merge."""
import pytest
import torch

from recbole_croloss.scoring import get_score, search_and_merge


@pytest.mark.parametrize("name,scale", [("dot", 1.0), ("cosine", 10.0)])
def test_multi_interest_all_and_pairs_take_the_best_interest(name, scale):
    torch.manual_seed(0)
    score = get_score(name, scale)
    users, items = torch.randn(5, 3, 8, dtype=torch.float64), torch.randn(40, 8, dtype=torch.float64)
    got = score.all(users, items)
    assert got.shape == (5, 40)
    ref = torch.stack([score.all(users[:, k], items) for k in range(3)]).amax(0)
    torch.testing.assert_close(got, ref)
    torch.testing.assert_close(score.pairs(users, items[:5]), got.diagonal())
    single = users[:, 0]
    torch.testing.assert_close(score.all(single[:, None], items), score.all(single, items))


@pytest.mark.parametrize("n", [1, 7, 50, 200])
@pytest.mark.parametrize("name,scale", [("dot", 1.0), ("cosine", 10.0)])
def test_max_over_interests_top_n_equals_per_interest_search_and_merge(name, scale, n):
    score = get_score(name, scale)
    gen = torch.Generator().manual_seed(n)
    users = torch.randn(16, 4, 12, generator=gen, dtype=torch.float64)
    items = torch.randn(300, 12, generator=gen, dtype=torch.float64)
    merged_scores, merged_ids = search_and_merge(score, users, items, n)
    full_scores, full_ids = score.all(users, items).topk(n, dim=-1)
    torch.testing.assert_close(merged_scores, full_scores)
    assert torch.equal(merged_ids, full_ids)  # continuous random scores: no ties
    # ... and merging by hand, one interest at a time, gives the same lists.
    for b in range(16):
        pool = {}
        for k in range(4):
            s, i = score.all(users[b, k][None], items)[0].topk(n)
            for value, item in zip(s.tolist(), i.tolist()):
                pool[item] = max(value, pool.get(item, -float("inf")))
        top = sorted(pool, key=pool.get, reverse=True)[:n]
        assert top == full_ids[b].tolist()
