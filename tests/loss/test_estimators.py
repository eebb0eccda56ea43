"""Rank estimators R_hat = a + b * sum phi: coefficients and exactness."""
from __future__ import annotations

import pytest
import torch

from recbole_croloss.loss import (ESTIMATORS, PaperEstimator, UnbiasedEstimator, get_kernel,
                                  get_rank_estimator)


def test_registry():
    assert sorted(ESTIMATORS) == ["paper", "unbiased"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_coefficients(dtype):
    n_valid = torch.tensor([1.0, 4.0, 10.0], dtype=dtype)
    a, b = PaperEstimator().coefficients(100, n_valid)
    torch.testing.assert_close(a, torch.tensor([100.0, 25.0, 10.0], dtype=dtype))
    torch.testing.assert_close(b, a)
    a, b = UnbiasedEstimator().coefficients(100, n_valid)
    torch.testing.assert_close(a, torch.ones(3, dtype=dtype))
    torch.testing.assert_close(b, torch.tensor([99.0, 99 / 4, 9.9], dtype=dtype))


@pytest.mark.parametrize("kernel", ["sigmoid", "softplus", "exp", "hinge", "step"])
def test_unbiased_is_the_exact_rank_with_every_item_once(kernel):
    """M = N - 1: R_hat = 1 + sum over all other items of phi."""
    n = 9
    gen = torch.Generator().manual_seed(0)
    gaps = torch.randn(3, n - 1, generator=gen, dtype=torch.float64)
    mask = torch.ones_like(gaps, dtype=torch.bool)
    phi = get_kernel(kernel)
    n_valid = torch.full((3,), float(n - 1), dtype=torch.float64)
    a, b = UnbiasedEstimator().coefficients(n, n_valid)
    got = phi.log_affine_sum(torch.zeros(3, dtype=torch.float64), gaps, mask, a, b).exp()
    torch.testing.assert_close(got, 1 + phi(gaps).sum(1))


def test_unbiased_is_unbiased_over_uniform_draws():
    """E over all size-M subsets of the other items of R_hat_u equals the exact rank (M = 2, N = 5)."""
    from itertools import combinations
    phis = torch.tensor([0.1, 0.7, 0.3, 0.9], dtype=torch.float64)  # the N - 1 = 4 other items
    exact = 1 + phis.sum()
    est = UnbiasedEstimator()
    vals = []
    for pair in combinations(range(4), 2):
        a, b = est.coefficients(5, torch.tensor([2.0], dtype=torch.float64))
        vals.append(a + b * phis[list(pair)].sum())
    torch.testing.assert_close(torch.cat(vals).mean(), exact, rtol=1e-14, atol=0)
    # while the paper's estimator is biased upwards
    pa, pb = PaperEstimator().coefficients(5, torch.tensor([2.0], dtype=torch.float64))
    assert float((pa + pb * 2 * phis.mean()).squeeze()) > float(exact) + 1


def test_get_rank_estimator():
    est = UnbiasedEstimator()
    assert get_rank_estimator(est) is est
    assert get_rank_estimator("paper") == PaperEstimator()
    assert PaperEstimator() != UnbiasedEstimator()
    assert len({PaperEstimator(), PaperEstimator()}) == 1
    assert repr(est) == "UnbiasedEstimator()"


@pytest.mark.parametrize("bad", ["exact", "", None, 1])
def test_unknown_estimator(bad):
    with pytest.raises(ValueError, match=rf"rank_estimator={bad!r} is not valid; choose one of: paper, unbiased"):
        get_rank_estimator(bad)
