"""The rank weight w_alpha and its scaled CDF (eq. 13), against the formulas."""
from __future__ import annotations

import math

import pytest
import torch

from recbole_croloss.loss import PowerRankWeight

from .reference import ref_density_scale, ref_scaled_cdf, ref_scaled_density

ALPHAS = [0.0, 0.6, 0.8, 1.0, 1.2, 1.6, 3.0]
N = 1000
RANKS = [1.0, 1.5, 2.0, 10.0, 137.0, 1000.0, 1001.0]


@pytest.mark.parametrize("alpha", ALPHAS)
def test_scaled_cdf_formula(alpha):
    w = PowerRankWeight(alpha, N)
    log_r = torch.tensor(RANKS, dtype=torch.float64).log()
    torch.testing.assert_close(w.scaled_cdf(log_r), ref_scaled_cdf(log_r, alpha, N), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_scaled_cdf_ends(alpha):
    """L * W(1) = 0 and L * W(N + 1) = L."""
    w = PowerRankWeight(alpha, N)
    ends = w.scaled_cdf(torch.tensor([0.0, math.log(N + 1)], dtype=torch.float64))
    torch.testing.assert_close(ends, torch.tensor([0.0, math.log(N + 1)], dtype=torch.float64))


@pytest.mark.parametrize("alpha", ALPHAS)
def test_scaled_density_formula(alpha):
    w = PowerRankWeight(alpha, N)
    log_r = torch.tensor(RANKS, dtype=torch.float64).log()
    want = ref_scaled_density(log_r, alpha, N)
    torch.testing.assert_close(w.log_scaled_density(log_r).exp(), want, rtol=1e-12, atol=0)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_density_is_the_derivative_of_the_cdf(alpha):
    """d/dR (L W(R)) = L w(R): what makes the Lambda gradient equal the plain one."""
    w = PowerRankWeight(alpha, N)
    r = torch.tensor(RANKS, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(w.scaled_cdf(r.log()).sum(), r)
    torch.testing.assert_close(grad, w.log_scaled_density(r.detach().log()).exp(), rtol=1e-9, atol=0)


@pytest.mark.parametrize("alpha", [0.0, 0.8, 1.0, 1.6])
def test_density_integrates_to_log_n_plus_1(alpha):
    """int_1^{N+1} L w(x) dx = L (w is a normalised density on [1, N+1))."""
    n = 50
    w = PowerRankWeight(alpha, n)
    x = torch.linspace(0.0, math.log(n + 1), 200001, dtype=torch.float64)  # integrate in log x
    integrand = w.log_scaled_density(x).exp() * x.exp()
    assert float(torch.trapezoid(integrand, x)) == pytest.approx(math.log(n + 1), rel=1e-8)


@pytest.mark.parametrize("delta", [1e-7, -1e-7, 1e-12])
def test_continuous_at_alpha_1(delta):
    log_r = torch.tensor(RANKS, dtype=torch.float64).log()
    a, b = PowerRankWeight(1.0, N), PowerRankWeight(1.0 + delta, N)
    torch.testing.assert_close(b.scaled_cdf(log_r), a.scaled_cdf(log_r), rtol=1e-5, atol=1e-9)
    torch.testing.assert_close(b.log_scaled_density(log_r), a.log_scaled_density(log_r), rtol=1e-5, atol=1e-6)


def test_alpha_1_reads_log_rank():
    w = PowerRankWeight(1.0, N)
    assert w.log_density_scale == 0.0
    log_r = torch.tensor([0.3, 2.0])
    assert torch.equal(w.scaled_cdf(log_r), log_r)


@pytest.mark.parametrize("alpha", [1.0, 1.2, 1.6])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_huge_log_rank_matches_the_formula_for_alpha_at_least_1(alpha, dtype):
    """log R of 1e4 and 1e30 (the exponential kernel's ranks): L W_alpha(R) and its slope in
    log R (K_alpha R^(1-alpha) >= 0, the weight never falls with the rank), and
    log(L w_alpha(R)) = log K_alpha - alpha log R, as the float64 formulas give them."""
    n = 10 ** 6
    w = PowerRankWeight(alpha, n)
    log_r = torch.tensor([1e4, 1e30], dtype=dtype, requires_grad=True)
    out = w.scaled_cdf(log_r)
    (slope,) = torch.autograd.grad(out.sum(), log_r)
    exact = log_r.detach().double().requires_grad_()
    want = ref_scaled_cdf(exact, alpha, n)
    (want_slope,) = torch.autograd.grad(want.sum(), exact)
    tol = dict(rtol=1e-6, atol=0) if dtype == torch.float32 else dict(rtol=1e-12, atol=0)
    torch.testing.assert_close(out.detach().double(), want.detach(), **tol)
    torch.testing.assert_close(slope.double(), want_slope, **tol)
    assert bool((slope >= 0).all())
    want_log_density = math.log(ref_density_scale(alpha, n)) - alpha * exact.detach()
    torch.testing.assert_close(w.log_scaled_density(log_r.detach()).double(), want_log_density, **tol)


@pytest.mark.parametrize("alpha,match", [
    (-1.0, r"alpha=-1\.0"), (float("nan"), r"alpha=nan"), (float("inf"), r"alpha=inf"),
    ("x", r"alpha='x'"), (None, r"alpha=None"),
])
def test_bad_alpha(alpha, match):
    with pytest.raises(ValueError, match=match):
        PowerRankWeight(alpha, N)


@pytest.mark.parametrize("n_items", [0, 1, -3, 2.0, True, "100"])
def test_bad_n_items(n_items):
    with pytest.raises(ValueError, match=r"n_items=.*integer >= 2"):
        PowerRankWeight(1.0, n_items)


def test_accepts_integer_alpha_and_repr():
    w = PowerRankWeight(1, 10)
    assert w.alpha == 1.0 and isinstance(w.alpha, float)
    assert repr(w) == "PowerRankWeight(alpha=1.0, n_items=10)"
