"""CROLoss against the independent float64 reference (:mod:`.reference`), its special cases,
stability and errors."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from recbole_croloss.loss import CROLoss, LossOverflowError, hard_rank_percentile

from .reference import MARGIN, assert_gradient_close, ref_log_ranks, ref_scaled_density, ref_value_and_grads

KERNELS = ["sigmoid", "softplus", "exp", "hinge"]
ALPHAS = [0.0, 0.6, 0.8, 1.0, 1.2, 1.6]
ESTIMATORS = ["paper", "unbiased"]
N_ITEMS = 50


def lib_value_and_grads(loss_fn, pos, neg, mask, dtype):
    p = pos.detach().to(dtype).requires_grad_()
    n = neg.detach().to(dtype).requires_grad_()
    loss = loss_fn(p, n, mask)
    assert loss.dtype == dtype and loss.dim() == 0
    gp, gn = torch.autograd.grad(loss, (p, n))
    return loss.detach(), gp, gn


TOL = {torch.float64: dict(rtol=1e-9, atol=1e-11), torch.float32: dict(rtol=2e-4, atol=2e-5)}


def assert_close_to_ref(got, want, dtype):
    for g, w in zip(got, want):
        torch.testing.assert_close(g.double(), w, **TOL[dtype])


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------
B, M = 6, 7


def make_scores(seed=0, b=B, m=M, scale=1.0):
    gen = torch.Generator().manual_seed(seed)
    pos = torch.randn(b, generator=gen, dtype=torch.float64) * scale
    neg = torch.randn(b, m, generator=gen, dtype=torch.float64) * scale
    return pos, neg


def make_mask():
    """Row 0 all valid, row 2 no valid negative, the others partly masked."""
    gen = torch.Generator().manual_seed(123)
    mask = torch.rand(B, M, generator=gen) > 0.35
    mask[0] = True
    mask[2] = False
    mask[4, :] = False
    mask[4, 3] = True  # a single valid negative
    mask[5, 0] = False
    return mask


MASKS = {"nomask": None, "mask": make_mask()}


def test_fixture_is_what_the_tests_assume():
    mask = MASKS["mask"]
    counts = mask.sum(1)
    assert counts[2] == 0 and counts[0] == M and counts[4] == 1
    assert ((counts > 0) & (counts < M)).sum() >= 2
    pos, neg = make_scores()
    gaps = neg - pos[:, None]
    # hinge kinks: some terms active, some not, none within 1e-3 of the kink
    assert ((gaps + MARGIN) < 0).any() and ((gaps + MARGIN) > 0).any()
    assert (gaps + MARGIN).abs().min() > 1e-3


# --------------------------------------------------------------------------------------------
# Plain CROLoss against the reference
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("mask_name", list(MASKS))
@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("kernel", KERNELS)
def test_plain_matches_reference(kernel, alpha, estimator, mask_name, dtype):
    pos, neg = make_scores()
    mask = MASKS[mask_name]
    loss_fn = CROLoss(kernel, alpha, N_ITEMS, margin=MARGIN, rank_estimator=estimator)
    want = ref_value_and_grads(pos, neg, mask, kernel=kernel, alpha=alpha, n_items=N_ITEMS,
                               estimator=estimator)
    got = lib_value_and_grads(loss_fn, pos, neg, mask, dtype)
    assert_close_to_ref(got, want, dtype)
    if mask is not None:
        # masked entries and the row with no valid negative get exactly zero gradient
        assert (got[2][~mask] == 0).all()
        assert got[1][2] == 0


@pytest.mark.parametrize("kernel", KERNELS)
def test_masked_entries_do_not_matter(kernel):
    pos, neg = make_scores(1)
    mask = MASKS["mask"]
    loss_fn = CROLoss(kernel, 0.8, N_ITEMS, margin=MARGIN)
    noise = torch.randn(neg.shape, generator=torch.Generator().manual_seed(12), dtype=torch.float64)
    other = torch.where(mask, neg, neg + 3.0 * noise)
    torch.testing.assert_close(loss_fn(pos, neg, mask), loss_fn(pos, other, mask), rtol=0, atol=1e-12)


@pytest.mark.parametrize("kernel", KERNELS)
def test_all_true_mask_equals_no_mask(kernel):
    pos, neg = make_scores(2)
    loss_fn = CROLoss(kernel, 1.2, N_ITEMS, margin=MARGIN)
    full = torch.ones_like(neg, dtype=torch.bool)
    torch.testing.assert_close(loss_fn(pos, neg, full), loss_fn(pos, neg), rtol=1e-12, atol=0)


def test_row_without_valid_negative_is_left_out_of_the_mean():
    pos, neg = make_scores(3)
    mask = MASKS["mask"]
    keep = mask.any(1)
    loss_fn = CROLoss("softplus", 1.2, N_ITEMS)
    torch.testing.assert_close(loss_fn(pos, neg, mask), loss_fn(pos[keep], neg[keep], mask[keep]),
                               rtol=1e-12, atol=0)


@pytest.mark.parametrize("lambda_kernel", [None, "sigmoid"])
@pytest.mark.parametrize("kernel,alpha", [("exp", 1.0), ("exp", 0.0), ("softplus", 0.6), ("sigmoid", 1.2)])
def test_rows_masked_out_with_inf_scores_give_zero_gradient(kernel, alpha, lambda_kernel):
    """Masked negatives scored -inf (a common way to drop padding) and a row whose negatives are
    all masked (huge or -inf scores) must not leak NaN into the gradient."""
    pos = torch.tensor([0.0, 1.0, -1e4, 0.5], requires_grad=True)
    inf = float("inf")
    neg = torch.tensor([[1.0, -inf, 0.2], [-inf, -inf, -inf], [1e4, 1e4, 1e4], [0.3, -0.4, 2.0]],
                       requires_grad=True)
    mask = torch.isfinite(neg) & (neg.abs() < 1e3)
    loss_fn = CROLoss(kernel, alpha, N_ITEMS, lambda_kernel=lambda_kernel)
    loss = loss_fn(pos, neg, mask)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(pos.grad).all() and torch.isfinite(neg.grad).all()
    assert (pos.grad[1:3] == 0).all() and (neg.grad[~mask] == 0).all()
    keep = torch.tensor([0, 3])
    torch.testing.assert_close(loss, loss_fn(pos[keep], neg[keep], mask[keep]))


@pytest.mark.parametrize("lambda_kernel", [None, "step"])
@pytest.mark.parametrize("kernel", KERNELS)
def test_nan_scores_at_masked_entries_are_ignored(kernel, lambda_kernel):
    pos, neg = make_scores(11)
    mask = MASKS["mask"]
    loss_fn = CROLoss(kernel, 0.8, N_ITEMS, lambda_kernel=lambda_kernel, margin=MARGIN)
    want = lib_value_and_grads(loss_fn, pos, neg, mask, torch.float64)
    got = lib_value_and_grads(loss_fn, pos, neg.masked_fill(~mask, float("nan")), mask, torch.float64)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=0, atol=0)


# --------------------------------------------------------------------------------------------
# Lambda method
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("kernel", KERNELS)
def test_lambda_with_same_kernels_has_the_plain_gradient(kernel, alpha, estimator):
    pos, neg = make_scores(4)
    mask = MASKS["mask"]
    plain = CROLoss(kernel, alpha, N_ITEMS, margin=MARGIN, rank_estimator=estimator)
    lam = CROLoss(kernel, alpha, N_ITEMS, lambda_kernel=kernel, margin=MARGIN, rank_estimator=estimator)
    _, gp1, gn1 = lib_value_and_grads(plain, pos, neg, mask, torch.float64)
    _, gp2, gn2 = lib_value_and_grads(lam, pos, neg, mask, torch.float64)
    torch.testing.assert_close(gp2, gp1, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(gn2, gn1, rtol=1e-10, atol=1e-12)
    assert gp1.abs().sum() > 0


LAMBDA_PAIRS = [("step", "sigmoid"), ("step", "softplus"), ("step", "exp"), ("step", "hinge"),
                ("sigmoid", "softplus"), ("sigmoid", "exp"), ("sigmoid", "hinge"), ("softplus", "exp")]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("mask_name", list(MASKS))
@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("alpha", [0.0, 0.8, 1.0, 1.6])
@pytest.mark.parametrize("phi1,phi2", LAMBDA_PAIRS)
def test_lambda_matches_reference(phi1, phi2, alpha, estimator, mask_name, dtype):
    pos, neg = make_scores(5)
    mask = MASKS[mask_name]
    loss_fn = CROLoss(phi2, alpha, N_ITEMS, lambda_kernel=phi1, margin=MARGIN, rank_estimator=estimator)
    want = ref_value_and_grads(pos, neg, mask, kernel=phi2, alpha=alpha, n_items=N_ITEMS,
                               estimator=estimator, lambda_kernel=phi1)
    got = lib_value_and_grads(loss_fn, pos, neg, mask, dtype)
    assert_close_to_ref(got, want, dtype)


def test_lambda_weight_is_a_constant():
    """Lambda's gradient differs from the plain one when phi_1 != phi_2 (lambda is not differentiated
    through) -- checks the stop-gradient is on phi_1 and not phi_2."""
    pos, neg = make_scores(6)
    lam = CROLoss("softplus", 1.2, N_ITEMS, lambda_kernel="sigmoid")
    _, gp, _ = lib_value_and_grads(lam, pos, neg, None, torch.float64)
    # reference where lambda is NOT detached: must differ
    p = pos.clone().requires_grad_()
    ranks1 = ref_log_ranks("sigmoid", p, neg, None, N_ITEMS, "paper")
    ranks2 = ref_log_ranks("softplus", p, neg, None, N_ITEMS, "paper")
    wrong = sum(ref_scaled_density(r1, 1.2, N_ITEMS) * r2.exp() for r1, r2 in zip(ranks1, ranks2)) / B
    (g_wrong,) = torch.autograd.grad(wrong, p)
    assert not torch.allclose(gp, g_wrong, rtol=1e-3)


# --------------------------------------------------------------------------------------------
# gradcheck (float64)
# --------------------------------------------------------------------------------------------
def far_from_kinks(seed, b=4, m=5, margin=MARGIN):
    """Scores whose gaps stay >= 0.2 away from 0 and from -margin (step and hinge kinks)."""
    gen = torch.Generator().manual_seed(seed)
    pos = torch.randn(b, generator=gen, dtype=torch.float64)
    centres = torch.tensor([-margin - 1.0, -margin / 2, 1.0], dtype=torch.float64)
    pick = torch.randint(0, 3, (b, m), generator=gen)
    gaps = centres[pick] + (torch.rand(b, m, generator=gen, dtype=torch.float64) - 0.5) * 0.6
    assert (gaps.abs().min() > 0.2) and ((gaps + margin).abs().min() > 0.2)
    return pos, pos[:, None] + gaps


GRADCHECK_CASES = [
    ("sigmoid", 0.6, None, "paper"), ("softplus", 1.2, None, "unbiased"), ("exp", 1.0, None, "paper"),
    ("exp", 0.0, None, "unbiased"), ("hinge", 1.6, None, "paper"), ("hinge", 0.0, None, "unbiased"),
    ("softplus", 0.8, "step", "paper"), ("exp", 1.2, "step", "unbiased"), ("hinge", 0.6, "step", "paper"),
    ("sigmoid", 1.0, "step", "unbiased"),
]


@pytest.mark.parametrize("with_mask", [False, True])
@pytest.mark.parametrize("kernel,alpha,lambda_kernel,estimator", GRADCHECK_CASES)
def test_gradcheck(kernel, alpha, lambda_kernel, estimator, with_mask):
    # finite differences see lambda change unless phi_1 is locally constant: step only
    pos, neg = far_from_kinks(7)
    mask = None
    if with_mask:
        mask = torch.ones_like(neg, dtype=torch.bool)
        mask[0, 1:] = False
        mask[2] = False
    loss_fn = CROLoss(kernel, alpha, N_ITEMS, lambda_kernel=lambda_kernel, margin=MARGIN,
                      rank_estimator=estimator)
    assert torch.autograd.gradcheck(lambda p, n: loss_fn(p, n, mask),
                                    (pos.requires_grad_(), neg.requires_grad_()))


# --------------------------------------------------------------------------------------------
# Special cases: exact rank (every other item once as a negative, unbiased estimator)
# --------------------------------------------------------------------------------------------
def exact_setting(seed, b=5, n=17, dtype=torch.float64, scale=2.0):
    gen = torch.Generator().manual_seed(seed)
    logits = (torch.randn(b, n, generator=gen, dtype=torch.float64) * scale).to(dtype).requires_grad_()
    target = torch.randint(0, n, (b,), generator=gen)
    is_pos = F.one_hot(target, n).bool()
    pos = logits[is_pos]                      # [b]
    neg = logits[~is_pos].view(b, n - 1)      # [b, n-1]: every other item once
    return logits, target, pos, neg


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-6)], ids=["f64", "f32"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exp_alpha1_is_softmax_cross_entropy(seed, dtype, tol):
    n = 17
    logits, target, pos, neg = exact_setting(seed, n=n, dtype=dtype)
    loss = CROLoss("exp", 1.0, n, rank_estimator="unbiased")(pos, neg)
    (grad,) = torch.autograd.grad(loss, logits)
    logits2 = logits.detach().clone().requires_grad_()
    ce = F.cross_entropy(logits2, target)
    (grad_ce,) = torch.autograd.grad(ce, logits2)
    torch.testing.assert_close(loss, ce.detach(), rtol=0, atol=tol)
    torch.testing.assert_close(grad, grad_ce, rtol=0, atol=tol)


def test_exp_alpha1_cross_entropy_at_large_logits():
    n = 17
    logits, target, pos, neg = exact_setting(3, n=n, dtype=torch.float32, scale=300.0)
    loss = CROLoss("exp", 1.0, n, rank_estimator="unbiased")(pos, neg)
    ce = F.cross_entropy(logits.detach(), target)
    torch.testing.assert_close(loss.detach(), ce, rtol=1e-6, atol=1e-3)


@pytest.mark.parametrize("kernel,pairwise", [
    ("softplus", lambda g: F.softplus(g)),                # BPR: -log sigmoid(s_pos - s_neg)
    ("hinge", lambda g: torch.clamp(g + MARGIN, min=0)),  # triplet: max(0, s_neg - s_pos + m)
])
def test_alpha0_is_summed_pairwise_loss_times_log_n_plus_1_over_n(kernel, pairwise):
    n = 17
    factor = math.log(n + 1) / n
    ratios = []
    for seed in range(4):
        logits, _, pos, neg = exact_setting(seed, n=n)
        loss = CROLoss(kernel, 0.0, n, margin=MARGIN, rank_estimator="unbiased")(pos, neg)
        pair = pairwise(neg - pos[:, None]).sum(dim=1).mean()
        g_loss, = torch.autograd.grad(loss, logits, retain_graph=True)
        g_pair, = torch.autograd.grad(pair, logits)
        torch.testing.assert_close(loss, factor * pair, rtol=1e-12, atol=0)
        torch.testing.assert_close(g_loss, factor * g_pair, rtol=1e-12, atol=1e-15)
        ratios.append(float(loss.detach() / pair.detach()))
    assert max(ratios) - min(ratios) < 1e-12
    if kernel == "hinge":  # the margin actually clips some terms in these inputs
        assert ((neg - pos[:, None] + MARGIN) < 0).any()


# --------------------------------------------------------------------------------------------
# Continuity in alpha at 1
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("lambda_kernel", [None, "sigmoid"])
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("delta", [1e-7, -1e-7])
def test_continuous_in_alpha_at_1(kernel, delta, lambda_kernel):
    pos, neg = make_scores(8)
    mask = MASKS["mask"]
    at1 = lib_value_and_grads(CROLoss(kernel, 1.0, N_ITEMS, lambda_kernel=lambda_kernel),
                              pos, neg, mask, torch.float64)
    near = lib_value_and_grads(CROLoss(kernel, 1.0 + delta, N_ITEMS, lambda_kernel=lambda_kernel),
                               pos, neg, mask, torch.float64)
    for a, b in zip(near, at1):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-8)


def test_alpha_orders_the_weights():
    """Larger alpha puts more weight on top ranks: for a positive already near the top, the loss
    gradient relative to one at a low rank grows with alpha."""
    pos = torch.tensor([3.0, -3.0], dtype=torch.float64)
    neg = torch.zeros(2, 20, dtype=torch.float64)
    ratios = []
    for alpha in ALPHAS:
        _, gp, _ = lib_value_and_grads(CROLoss("sigmoid", alpha, 1000), pos, neg, None, torch.float64)
        ratios.append(float(gp[0] / gp[1]))
    assert all(b > a for a, b in zip(ratios, ratios[1:]))


# --------------------------------------------------------------------------------------------
# Stability: scores of magnitude 1e4 in float32
# --------------------------------------------------------------------------------------------
def huge_scores(direction, b=3, m=4):
    sign = 1.0 if direction == "lose" else -1.0  # lose: every negative far above the positive
    pos = torch.full((b,), -sign * 1e4, dtype=torch.float32, requires_grad=True)
    neg = torch.full((b, m), sign * 1e4, dtype=torch.float32)
    neg = (neg + torch.arange(m, dtype=torch.float32)).requires_grad_()
    return pos, neg


def assert_huge_scores_match_reference(loss_fn, kernel, alpha, direction, lambda_kernel=None):
    """The loss of :func:`huge_scores` and its gradient are the float64 reference's (the loss
    and its gradient within 1e-5, the rank weight's slope included however small), and the
    gradient points the way the rank weight does: a higher positive or a lower negative never raises the loss (W_alpha, w_alpha
    and phi are nondecreasing)."""
    pos, neg = huge_scores(direction)
    loss = loss_fn(pos, neg)
    loss.backward()
    ref = dict(kernel=kernel, alpha=alpha, n_items=loss_fn.n_items, estimator="paper", margin=5.0)
    want, want_pos, want_neg = ref_value_and_grads(pos, neg, None, lambda_kernel=lambda_kernel, **ref)
    assert torch.isfinite(want)
    torch.testing.assert_close(loss.detach().double(), want, rtol=1e-5, atol=0)
    for got, expected in zip((pos.grad, neg.grad), (want_pos, want_neg)):
        assert_gradient_close(got, expected, rtol=1e-5)
    assert bool((pos.grad <= 0).all()) and bool((neg.grad >= 0).all())


@pytest.mark.parametrize("direction", ["lose", "win"])
@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("kernel", KERNELS)
def test_huge_scores_match_the_reference_or_raise_overflow(kernel, alpha, direction):
    loss_fn = CROLoss(kernel, alpha, 100_000)
    if kernel == "exp" and alpha < 1 and direction == "lose":
        with pytest.raises(LossOverflowError, match=rf"alpha={alpha}"):
            loss_fn(*huge_scores(direction))
        return
    assert_huge_scores_match_reference(loss_fn, kernel, alpha, direction)


@pytest.mark.parametrize("alpha", [0.6, 1.0])
def test_huge_scores_exp_float64_overflow_also_caught(alpha):
    pos = torch.tensor([0.0], dtype=torch.float64)
    neg = torch.tensor([[5000.0, 0.0]], dtype=torch.float64)
    loss_fn = CROLoss("exp", alpha, 1000)
    if alpha < 1:
        with pytest.raises(LossOverflowError, match="alpha"):
            loss_fn(pos, neg)
    else:
        want = ref_value_and_grads(pos, neg, None, kernel="exp", alpha=alpha, n_items=1000, estimator="paper")
        assert_close_to_ref(lib_value_and_grads(loss_fn, pos, neg, None, torch.float64), want, torch.float64)


@pytest.mark.parametrize("direction", ["lose", "win"])
@pytest.mark.parametrize("alpha", [1.0, 1.2, 1.6])
def test_huge_scores_lambda_exp_exp_match_the_reference(alpha, direction):
    loss_fn = CROLoss("exp", alpha, 100_000, lambda_kernel="exp")
    assert_huge_scores_match_reference(loss_fn, "exp", alpha, direction, lambda_kernel="exp")


@pytest.mark.parametrize("direction", ["lose", "win"])
@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("phi1,phi2", [("sigmoid", "softplus"), ("step", "hinge"), ("softplus", "sigmoid")])
def test_huge_scores_lambda_bounded_kernels_match_the_reference(phi1, phi2, alpha, direction):
    loss_fn = CROLoss(phi2, alpha, 100_000, lambda_kernel=phi1)
    assert_huge_scores_match_reference(loss_fn, phi2, alpha, direction, lambda_kernel=phi1)


@pytest.mark.parametrize("alpha", [0.0, 1.0, 1.6])
def test_huge_scores_lambda_sigmoid_exp_overflows_with_error(alpha):
    pos, neg = huge_scores("lose")
    with pytest.raises(LossOverflowError, match="alpha"):
        CROLoss("exp", alpha, 100_000, lambda_kernel="sigmoid")(pos, neg)


# --------------------------------------------------------------------------------------------
# hard_rank_percentile
# --------------------------------------------------------------------------------------------
def test_hard_rank_percentile_extremes():
    pos, neg = make_scores(9)
    assert float(hard_rank_percentile(pos + 100, neg)) == 0.0
    assert float(hard_rank_percentile(pos - 100, neg)) == 100.0


def test_hard_rank_percentile_by_hand():
    pos = torch.tensor([0.0, 0.0, 1.0, 5.0])
    neg = torch.tensor([[1.0, -1.0, 0.0, -2.0],   # >= 0: 1, 0 (ties count) -> 2 / 4
                        [-1.0, -1.0, -1.0, 3.0],  # 1 / 4
                        [2.0, 2.0, 0.0, 0.0],     # 2 / 4
                        [9.0, 9.0, 9.0, 9.0]])    # 4 / 4
    assert float(hard_rank_percentile(pos, neg)) == pytest.approx(100 * (0.5 + 0.25 + 0.5 + 1.0) / 4)
    mask = torch.tensor([[True, True, False, True],    # 1 / 3
                         [False, False, False, True],  # 1 / 1
                         [False, True, True, True],    # 1 / 3
                         [False, False, False, False]])  # no valid negative: left out
    want = 100 * (1 / 3 + 1 + 1 / 3) / 3
    assert float(hard_rank_percentile(pos, neg, mask)) == pytest.approx(want)


def test_hard_rank_percentile_no_grad():
    pos, neg = make_scores(10)
    out = hard_rank_percentile(pos.requires_grad_(), neg.requires_grad_())
    assert not out.requires_grad


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,match", [
    (dict(kernel="sigmod"), r"kernel='sigmod'.*exp, hinge, sigmoid, softplus, step"),
    (dict(kernel="step"), r"kernel='step'.*gradient"),
    (dict(kernel="sigmoid", lambda_kernel="sigmod"), r"lambda_kernel='sigmod'.*exp, hinge, sigmoid"),
    (dict(alpha=-0.5), r"alpha=-0\.5.*>= 0"),
    (dict(alpha=float("nan")), r"alpha=nan"),
    (dict(alpha=float("inf")), r"alpha=inf"),
    (dict(alpha="high"), r"alpha='high'"),
    (dict(n_items=0), r"n_items=0.*integer >= 2"),
    (dict(n_items=2.5), r"n_items=2\.5"),
    (dict(n_items=True), r"n_items=True"),
    (dict(rank_estimator="exact"), r"rank_estimator='exact'.*paper, unbiased"),
    (dict(kernel="hinge", margin=-1.0), r"margin=-1\.0.*>= 0"),
    (dict(kernel="sigmoid", lambda_kernel="hinge", margin=-1.0), r"margin=-1\.0"),
    (dict(kernel="hinge", margin=float("nan")), r"margin=nan"),
    (dict(kernel="hinge", margin="wide"), r"margin='wide'.*finite number >= 0"),
    (dict(kernel="sigmoid", margin=-1.0), r"margin=-1\.0"),  # refused whatever the kernel
])
def test_bad_settings(kwargs, match):
    kwargs = {"n_items": 100, **kwargs}
    with pytest.raises(ValueError, match=match):
        CROLoss(**kwargs)


def _bad_inputs():
    pos, neg = torch.zeros(3), torch.zeros(3, 4)
    return [
        ("pos 2-d", pos[:, None], neg, None, r"pos_score must have shape \[B\]; got \(3, 1\)"),
        ("B mismatch", pos, torch.zeros(4, 4), None, r"B = 3.*got \(4, 4\)"),
        ("neg 1-d", pos, torch.zeros(3), None, r"neg_score must have shape \[B, M\]"),
        ("M = 0", pos, torch.zeros(3, 0), None, r"no negatives"),
        ("mask shape", pos, neg, torch.ones(3, 5, dtype=torch.bool), r"neg_mask must have the shape.*\(3, 5\)"),
        ("mask dtype", pos, neg, torch.ones(3, 4), r"neg_mask must be a bool tensor; got torch.float32"),
        ("mask uint8", pos, neg, torch.ones(3, 4, dtype=torch.uint8), r"bool tensor; got torch.uint8"),
        ("all masked", pos, neg, torch.zeros(3, 4, dtype=torch.bool), r"no row of neg_mask has a valid negative"),
    ]


@pytest.mark.parametrize("lambda_kernel", [None, "sigmoid"])
@pytest.mark.parametrize("case", _bad_inputs(), ids=lambda c: c[0])
def test_bad_inputs(case, lambda_kernel):
    _, pos, neg, mask, match = case
    with pytest.raises(ValueError, match=match):
        CROLoss("softplus", 1.0, 100, lambda_kernel=lambda_kernel)(pos, neg, mask)


@pytest.mark.parametrize("case", [c for c in _bad_inputs() if c[0] != "all masked"], ids=lambda c: c[0])
def test_hard_rank_percentile_bad_inputs(case):
    _, pos, neg, mask, match = case
    with pytest.raises(ValueError, match=match):
        hard_rank_percentile(pos, neg, mask)


@pytest.mark.parametrize("pos, neg, mask, error, match", [
    ([0.0, 1.0], torch.zeros(2, 3), None, TypeError, "pos_score must be a torch.Tensor; got list"),
    (torch.zeros(2), np.zeros((2, 3)), None, TypeError, "neg_score must be a torch.Tensor; got ndarray"),
    (torch.zeros(2, dtype=torch.bool), torch.zeros(2, 3, dtype=torch.bool), None, TypeError,
     r"pos_score must hold real numbers \(e.g. float32\); got torch.bool"),
    (torch.zeros(2), torch.zeros(2, 3, dtype=torch.complex64), None, TypeError,
     r"neg_score must hold real numbers \(e.g. float32\); got torch.complex64"),
    (torch.zeros(2), torch.zeros(2, 3, device="meta"), None, ValueError,
     "pos_score, neg_score and neg_mask must be on one device; got pos_score on cpu, neg_score on meta"),
    (torch.zeros(2), torch.zeros(2, 3), torch.ones(2, 3, dtype=torch.bool, device="meta"), ValueError,
     "must be on one device; got pos_score on cpu, neg_score on cpu, neg_mask on meta"),
], ids=["a list", "a numpy array", "bool scores", "complex scores", "scores on two devices", "a mask elsewhere"])
def test_scores_that_are_not_real_tensors_on_one_device_are_named(pos, neg, mask, error, match):
    """Such scores failed deep in the kernel, in torch's words (a bool subtraction, a device)."""
    with pytest.raises(error, match=match):
        CROLoss("softplus", 1.0, 100)(pos, neg, mask)


def test_overflow_error_is_a_floating_point_error():
    assert issubclass(LossOverflowError, FloatingPointError)


def test_module_attributes_and_repr():
    loss_fn = CROLoss("hinge", 1.2, 1000, lambda_kernel="step", margin=2.0, rank_estimator="unbiased")
    assert loss_fn.alpha == 1.2 and loss_fn.n_items == 1000
    text = repr(loss_fn)
    for part in ("Hinge(margin=2.0)", "alpha=1.2", "n_items=1000", "lambda_kernel=Step()", "'unbiased'"):
        assert part in text
    assert list(loss_fn.parameters()) == []
