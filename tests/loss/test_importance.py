"""The importance-weighted rank estimate: uniform proposals give today's values, any proposal an
unbiased rank, log space keeps it finite, and the log-q sampled softmax is the textbook one."""
import math

import pytest
import torch

from recbole_croloss.loss import CROLoss, build_loss, get_kernel
from recbole_croloss.sampler import ProposalNegatives, popularity_proposal

from .reference import assert_gradient_close, ref_value_and_grads

KERNELS = ["sigmoid", "softplus", "exp", "hinge"]
N_ITEMS = 500


def scores(seed, b=6, m=40, hits=True):
    g = torch.Generator().manual_seed(seed)
    pos = torch.randn(b, generator=g, dtype=torch.float64, requires_grad=True)
    neg = torch.randn(b, m, generator=g, dtype=torch.float64, requires_grad=True)
    mask = torch.rand(b, m, generator=g) > 0.2 if hits else None
    return pos, neg, mask


@pytest.mark.parametrize("estimator, log_q", [("unbiased", -math.log(N_ITEMS - 1)), ("paper", -math.log(N_ITEMS))])
@pytest.mark.parametrize("kernel, alpha, lambda_kernel", [
    ("sigmoid", 1.0, None), ("softplus", 0.6, None), ("exp", 1.0, None), ("hinge", 0.0, None),
    ("exp", 1.4, None), ("softplus", 1.2, "sigmoid"), ("exp", 1.0, "step")])
@pytest.mark.parametrize("shape, hits", [("row", True), ("matrix", True), ("row", False)])
def test_a_uniform_log_q_gives_today_s_loss_and_gradient(estimator, log_q, kernel, alpha, lambda_kernel, shape, hits):
    """Unbiased: q uniform over the |I| - 1 other items; paper (eq. 24): q = 1 / |I|."""
    preset = "croloss" if lambda_kernel is None else "croloss_lambda"
    options = {"kernel": kernel, "alpha": alpha, "rank_estimator": estimator, "margin": 1.0 if kernel == "hinge" else None}
    if lambda_kernel:
        options["lambda_kernel"] = lambda_kernel
    loss = build_loss(preset, N_ITEMS, **options)
    pos, neg, mask = scores(1, hits=hits)
    today = loss(pos, neg, mask)
    grads = torch.autograd.grad(today, (pos, neg))
    q = torch.full(neg.shape if shape == "matrix" else neg.shape[1:], log_q, dtype=torch.float64)
    weighted = loss(pos, neg, mask, q)
    torch.testing.assert_close(weighted, today, rtol=1e-12, atol=1e-12)
    for got, expected in zip(torch.autograd.grad(weighted, (pos, neg)), grads):
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kernel", KERNELS + ["step"])
def test_the_importance_weighted_rank_is_unbiased_under_a_skewed_proposal(kernel):
    """1,000 items, a proposal with a 100x spread (popularity ** 0.75 of a long tail), the
    positive among the drawn-from items (hits masked, the rest weighted by the row's
    conditioned log q): the mean of R_hat over 1,500 draws of M = 200 is the exact rank
    within 2% (the spread of each R_hat is measured, and the 2% is over 5 standard errors)."""
    torch.manual_seed(11)
    n = 1001
    g = torch.Generator().manual_seed(12)
    counts = torch.cat([torch.zeros(1), (1000.0 / torch.arange(1, n) ** 1.2).ceil()])[torch.cat(
        [torch.zeros(1, dtype=torch.long), 1 + torch.randperm(n - 1, generator=g)])]
    sampler = ProposalNegatives(n, popularity_proposal(counts, 0.75), neg_per_pos=200)
    item_score = torch.randn(n, generator=g, dtype=torch.float64)
    positive = 17
    phi = get_kernel(kernel, margin=1.0)
    others = torch.cat([torch.arange(1, positive), torch.arange(positive + 1, n)])
    exact = 1 + float(phi(item_score[others] - item_score[positive]).sum())
    loss = CROLoss(kernel if kernel != "step" else "sigmoid", 1.0, n - 1, rank_estimator="unbiased", margin=1.0)
    estimates = []
    pos_items = torch.tensor([positive])
    for _ in range(1500):
        neg = sampler(pos_items)
        n_valid = neg.mask.sum(1).double()
        s_pos, s_neg = item_score[pos_items], item_score[neg.items].unsqueeze(0)
        estimates.append(float(loss.log_rank(phi, s_pos, s_neg, neg.mask, n_valid, neg.log_q).exp()))
    estimates = torch.tensor(estimates, dtype=torch.float64)
    standard_error = float(estimates.std()) / math.sqrt(len(estimates))
    assert 5 * standard_error < 0.02 * exact  # the test can tell a 2% bias
    assert abs(float(estimates.mean()) - exact) < 0.02 * exact, (float(estimates.mean()), exact)


def test_uniform_weights_are_not_enough_under_the_same_proposal():
    """The same draws weighed as if uniform are far off: the correction is what is tested."""
    torch.manual_seed(11)
    n = 1001
    counts = torch.cat([torch.zeros(1), (1000.0 / torch.arange(1, n) ** 1.2).ceil()])
    sampler = ProposalNegatives(n, popularity_proposal(counts, 0.75), neg_per_pos=100)
    item_score = torch.log(counts.clamp(min=1)).double()  # popular items score high, as they often do
    loss = CROLoss("sigmoid", 1.0, n - 1, rank_estimator="unbiased")
    phi = get_kernel("sigmoid")
    others = torch.cat([torch.arange(1, 200), torch.arange(201, n)])
    exact = 1 + float(phi(item_score[others] - item_score[200]).sum())
    pos = torch.tensor([200])
    naive, weighted = [], []
    for _ in range(300):
        neg = sampler(pos)
        args = (item_score[pos], item_score[neg.items].unsqueeze(0), neg.mask, neg.mask.sum(1).double())
        naive.append(float(loss.log_rank(phi, *args).exp()))
        weighted.append(float(loss.log_rank(phi, *args, neg.log_q).exp()))
    assert abs(sum(weighted) / 300 - exact) < 0.05 * exact < abs(sum(naive) / 300 - exact)


@pytest.mark.parametrize("alpha", [1.0, 1.5])
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("log_q", [-300.0, 300.0, -30.0])
def test_log_space_keeps_any_finite_input_finite(kernel, log_q, alpha):
    """Weights of e^300 / M or e^-300 / M (beyond float32) with scores up to 1e4, in float32 and
    in float64: the loss and gradient of the float64 reference (the rank weight's slope included
    where R^(1 - alpha) is below the dtype's epsilon), and a gradient that points its way: a higher positive or a lower negative never raises the loss."""
    g = torch.Generator().manual_seed(21)
    pos, neg = torch.randn(4, generator=g) * 1e4, torch.randn(4, 30, generator=g) * 1e4
    q = torch.full((30,), log_q) + torch.randn(30, generator=g)
    mask = torch.rand(4, 30, generator=g) > 0.3
    loss = CROLoss(kernel, alpha, 10 ** 6)
    ref = dict(kernel=kernel, alpha=alpha, n_items=10 ** 6, estimator="paper", margin=5.0, log_q=q.double())
    want = ref_value_and_grads(pos, neg, mask, **ref)
    for dtype, rtol in ((torch.float32, 1e-5), (torch.float64, 1e-9)):
        value, grad_pos, grad_neg = value_and_grads(loss, pos.to(dtype), neg.to(dtype), mask, q.to(dtype))
        assert value.dtype == dtype
        torch.testing.assert_close(value.double(), want[0], rtol=rtol, atol=0)
        for got, expected in zip((grad_pos, grad_neg), want[1:]):
            assert_gradient_close(got, expected, rtol=10 * rtol)
        assert bool((grad_pos <= 0).all()) and bool((grad_neg >= 0).all())


def value_and_grads(loss_fn, pos, neg, mask, log_q):
    p, n = pos.clone().requires_grad_(), neg.clone().requires_grad_()
    value = loss_fn(p, n, mask, log_q)
    return (value.detach(), *torch.autograd.grad(value, (p, n)))


def test_a_negative_drawn_with_probability_zero_is_named():
    loss = CROLoss("sigmoid", 1.0, 100)
    q = torch.zeros(5)
    q[2] = -math.inf
    with pytest.raises(ValueError, match="neg_log_q that is NaN or infinite for 2 valid negatives"):
        loss(torch.zeros(2), torch.zeros(2, 5), None, q)
    assert torch.isfinite(loss(torch.zeros(2), torch.zeros(2, 5), torch.tensor([[1, 1, 0, 1, 1]] * 2).bool(), q))
    with pytest.raises(ValueError, match=r"neg_log_q must have shape \[M\] = \(5,\) or \[B, M\]"):
        loss(torch.zeros(2), torch.zeros(2, 5), None, torch.zeros(4))


@pytest.mark.parametrize("corrected", [True, False])
@pytest.mark.parametrize("estimator", ["unbiased", "paper"])
def test_log_q_sampled_softmax_equals_a_hand_computation(estimator, corrected):
    """sampled_softmax (exp kernel, alpha 1) with log q: -log of the positive's softmax against
    negatives whose logits are corrected by -log(M q_j), written as a float64 loop; without log q
    the uniform q of each estimator (1 / (|I| - 1) unbiased, 1 / |I| paper) is the correction."""
    n_items = 300
    pos, neg, mask = scores(5, b=4, m=12)
    g = torch.Generator().manual_seed(6)
    log_q = torch.log(torch.rand(4, 12, generator=g, dtype=torch.float64) / 50)
    loss = build_loss("sampled_softmax", n_items, rank_estimator=estimator)
    got = loss(pos, neg, mask, log_q) if corrected else loss(pos, neg, mask)
    if not corrected:
        log_q = torch.full_like(log_q, -math.log(n_items - 1 if estimator == "unbiased" else n_items))
    total = 0.0
    for b in range(4):
        valid = [j for j in range(12) if mask[b, j]]
        m = len(valid)
        s = float(pos[b])
        # The positive's own term: 1 (unbiased) or |I| / M (paper, eq. 24), times e^s.
        partition = (1.0 if estimator == "unbiased" else n_items / m) * math.exp(s)
        for j in valid:
            partition += math.exp(float(neg[b, j]) - math.log(m) - float(log_q[b, j]))
        total += -(s - math.log(partition))
    assert float(got) == pytest.approx(total / 4, rel=1e-12)


@pytest.mark.parametrize("kernel", ["softplus", "exp", "sigmoid"])
def test_with_log_q_the_lambda_gradient_with_phi1_equal_phi2_is_the_plain_one(kernel):
    pos, neg, mask = scores(8)
    log_q = torch.log(torch.rand(neg.shape[1], generator=torch.Generator().manual_seed(9), dtype=torch.float64) / 100)
    plain = build_loss("croloss", N_ITEMS, kernel=kernel, alpha=1.3)(pos, neg, mask, log_q)
    lam = build_loss("croloss_lambda", N_ITEMS, kernel=kernel, lambda_kernel=kernel, alpha=1.3)(pos, neg, mask, log_q)
    for a, b in zip(torch.autograd.grad(plain, (pos, neg)), torch.autograd.grad(lam, (pos, neg))):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
