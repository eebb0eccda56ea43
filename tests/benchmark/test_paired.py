"""Paired comparisons: per-user differences matched by user id, the two-stage bootstrap against
the normal approximation where that is exact enough, and verdicts from the bootstrap interval."""
import math

import numpy as np
import pytest

from recbole_croloss.benchmark.paired import PairedDifference, bootstrap_interval, user_differences


def hits_of(users, hits_at_10, targets):
    return {"users": np.asarray(users), "targets": np.asarray(targets),
            "hits": np.asarray(hits_at_10)[:, None], "ks": np.array([10])}


def test_user_differences_match_users_by_id_whatever_their_order():
    x = hits_of([5, 1, 9], [1, 0, 2], [1, 1, 4])      # recall: u5 1.0, u1 0.0, u9 0.5
    y = hits_of([9, 5, 7], [4, 0, 1], [4, 1, 1])      # recall: u9 1.0, u5 0.0 (u7: only in y)
    assert user_differences(x, y, 10).tolist() == [1.0, -0.5]  # users 5 and 9, in id order


@pytest.mark.parametrize("shift", [0.0, 0.1, -0.25])
def test_a_constant_difference_has_a_degenerate_interval(shift):
    low, high = bootstrap_interval([np.full(50, shift), np.full(80, shift)])
    assert low == pytest.approx(shift) and high == pytest.approx(shift)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_with_one_seed_the_interval_is_the_normal_one_over_users(seed):
    d = np.random.default_rng(seed).normal(0.03, 0.2, size=2000)
    low, high = bootstrap_interval([d])
    half = 1.959964 * d.std(ddof=1) / math.sqrt(len(d))
    assert low == pytest.approx(d.mean() - half, abs=0.15 * half)
    assert high == pytest.approx(d.mean() + half, abs=0.15 * half)


def test_seeds_that_disagree_widen_the_interval_beyond_the_users_alone():
    rng = np.random.default_rng(4)
    agreeing = [rng.normal(0.02, 0.1, 1000) for _ in range(3)]
    disagreeing = [d + shift for d, shift in zip(agreeing, (-0.03, 0.0, 0.03))]
    width = [np.diff(bootstrap_interval(ds))[0] for ds in (agreeing, disagreeing)]
    assert width[1] > 3 * width[0]


def test_the_verdict_follows_the_bootstrap_interval_where_there_is_one():
    x, y = {1: 0.31, 2: 0.32, 3: 0.30}, {1: 0.30, 2: 0.31, 3: 0.29}  # seed level: always +0.01
    assert PairedDifference.of(x, y).verdict("X", "Y") == "X beats Y"
    # ... but over 20 users each, one user's hit more or less: the users say inconclusive
    rng = np.random.default_rng(0)
    x_hits, y_hits = {}, {}
    for s in (1, 2, 3):
        base = rng.integers(0, 2, 20)
        flip = base.copy()
        flip[rng.integers(0, 20)] ^= 1
        x_hits[s], y_hits[s] = hits_of(range(20), flip, [1] * 20), hits_of(range(20), base, [1] * 20)
    difference = PairedDifference.of(x, y, x_hits, y_hits, 10)
    assert difference.bootstrapped and difference.users == 20
    assert difference.verdict("X", "Y") == "inconclusive" and "bootstrap 95% CI" in difference.text()


@pytest.mark.parametrize("seeds", [1, 2, 3])
def test_the_text_prints_a_seed_spread_only_where_there_are_two_seeds_or_more(seeds):
    x = {s: 0.30 + 0.01 * s for s in range(seeds)}
    y = {s: 0.29 for s in range(seeds)}
    text = PairedDifference.of(x, y).text()
    assert "nan" not in text and text.startswith("+")
    assert ("±" in text) == (seeds > 1) and ("t 95% CI" in text) == (seeds > 1)
    assert f"wins {seeds}/{seeds}" in text


def test_of_equal_scores_the_first_in_the_given_order_is_the_best():
    from recbole_croloss.benchmark.paired import first_best

    scores = {"sigmoid 0.6": 0.3913, "softplus 0.6": 0.3913, "softplus 0.8": 0.39}
    assert first_best(["sigmoid 0.6", "softplus 0.6", "softplus 0.8"], scores.get) == "sigmoid 0.6"
    assert first_best(["softplus 0.6", "sigmoid 0.6", "softplus 0.8"], scores.get) == "softplus 0.6"
    assert first_best([], scores.get) is None
