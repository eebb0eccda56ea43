"""The loss at the edges of floating point: never a silent NaN, low precision computed in float32,
impossible sizes refused. Each case against a float64 reference where there is a value."""
import pytest
import torch

from recbole_croloss.errors import ConfigError
from recbole_croloss.loss import CROLoss, LossOverflowError, NonFiniteScoreError

from .reference import ref_value_and_grads

KERNELS = ["sigmoid", "softplus", "exp", "hinge"]


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("where", ["pos", "neg"])
def test_a_nan_score_that_counts_is_named_not_returned(kernel, where):
    loss = CROLoss(kernel=kernel, alpha=1.2, n_items=100)
    pos, neg = torch.zeros(4, dtype=torch.float64), torch.zeros(4, 6, dtype=torch.float64)
    (pos if where == "pos" else neg)[1] = float("nan")
    with pytest.raises(NonFiniteScoreError, match="1 of 4 positive scores" if where == "pos" else
                       "0 of 4 positive scores and 6 negative scores"):
        loss(pos, neg)


def value_and_grads(loss_fn, pos, neg, mask=None):
    p, n = pos.detach().clone().requires_grad_(), neg.detach().clone().requires_grad_()
    loss = loss_fn(p, n, mask)
    return (loss.detach(), *torch.autograd.grad(loss, (p, n)))


@pytest.mark.parametrize("alpha", [0.5, 1.0, 1.4])
@pytest.mark.parametrize("kernel, where, raising_alphas", [
    # phi(-inf) = 0 and the sigmoid's phi(inf) = 1: R stays finite, the loss is its limit
    ("sigmoid", "pos", ()), ("sigmoid", "neg", ()), ("softplus", "pos", ()), ("hinge", "pos", ()),
    # phi(inf) = inf, so R = inf: L W_alpha(R) is infinite for alpha <= 1, finite above
    ("softplus", "neg", (0.5, 1.0)), ("hinge", "neg", (0.5, 1.0)),
    # the exponential kernel's log-sum-exp meets inf - inf whatever the limit
    ("exp", "pos", (0.5, 1.0, 1.4)), ("exp", "neg", (0.5, 1.0, 1.4)),
])
def test_an_infinite_score_gives_its_limit_or_the_named_error(kernel, where, raising_alphas, alpha):
    """Row 1's positive (or all its negatives) at +inf: either the loss and gradient of the
    float64 reference (its limit), or NonFiniteScoreError naming the infinite scores."""
    loss = CROLoss(kernel=kernel, alpha=alpha, n_items=100)
    pos, neg = torch.zeros(4, dtype=torch.float64), torch.zeros(4, 6, dtype=torch.float64)
    (pos if where == "pos" else neg)[1] = float("inf")
    if alpha in raising_alphas:
        counts = "1 of 4 positive scores and 0 negative" if where == "pos" else "0 of 4 positive scores and 6 negative"
        with pytest.raises(NonFiniteScoreError, match=f"NaN or infinite: {counts} scores"):
            loss(pos, neg)
        return
    want = ref_value_and_grads(pos, neg, None, kernel=kernel, alpha=alpha, n_items=100, estimator="paper", margin=5.0)
    assert torch.isfinite(want[0])
    for got, expected in zip(value_and_grads(loss, pos, neg), want):
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("kernel", KERNELS)
def test_a_non_finite_score_that_is_masked_out_does_not_count(kernel, bad):
    """The loss and gradient are those of the same batch without that negative: each row as a
    batch of its own (the loss is the mean over rows), row 0 with the entry left out."""
    loss = CROLoss(kernel=kernel, alpha=1.2, n_items=100)
    g = torch.Generator().manual_seed(3)
    pos, neg = torch.randn(3, generator=g, dtype=torch.float64), torch.randn(3, 5, generator=g, dtype=torch.float64)
    mask = torch.ones(3, 5, dtype=torch.bool)
    mask[0, 2] = False
    spoilt = neg.clone()
    spoilt[0, 2] = bad
    got = value_and_grads(loss, pos, spoilt, mask)
    p, n = pos.clone().requires_grad_(), neg.clone().requires_grad_()
    without = sum(loss(p[b:b + 1], n[b][mask[b]].unsqueeze(0)) for b in range(3)) / 3
    want = (without.detach(), *torch.autograd.grad(without, (p, n)))
    assert want[2][0, 2] == 0
    for got_part, want_part in zip(got, want):
        torch.testing.assert_close(got_part, want_part, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_scores_are_computed_in_float32_at_paper_scale(kernel, dtype):
    """At |I| = 313,966 float16 arithmetic rounded 253 of 256 positives' gradients to 0."""
    g = torch.Generator().manual_seed(0)
    pos = torch.randn(256, generator=g).to(dtype).requires_grad_()
    neg = (torch.randn(256, 2560, generator=g) * 3).to(dtype).requires_grad_()
    loss_fn = CROLoss(kernel=kernel, alpha=1.0, n_items=313966)
    loss = loss_fn(pos, neg)
    loss.backward()
    assert loss.dtype == torch.float32 and pos.grad.dtype == dtype
    assert bool((pos.grad != 0).all()) and bool(torch.isfinite(neg.grad).all())
    reference = loss_fn(pos.detach().double(), neg.detach().double())
    assert float(loss) == pytest.approx(float(reference), rel=1e-5)


@pytest.mark.parametrize("kernel", ["hinge", "softplus"])
def test_large_gaps_in_float16_give_a_finite_loss(kernel):
    pos = torch.full((8,), -60.0, dtype=torch.float16)
    neg = torch.full((8, 2560), 60.0, dtype=torch.float16)  # 2560 x (120 + 5) overflows float16
    loss = CROLoss(kernel=kernel, alpha=0.0, n_items=10000)(pos, neg)
    reference = CROLoss(kernel=kernel, alpha=0.0, n_items=10000)(pos.double(), neg.double())
    assert torch.isfinite(loss) and float(loss) == pytest.approx(float(reference), rel=1e-5)


def test_finite_scores_that_overflow_the_loss_raise_overflow():
    with pytest.raises(LossOverflowError, match="overflowed"):
        CROLoss(kernel="exp", alpha=0.5, n_items=100)(torch.zeros(2), torch.full((2, 3), 500.0))


@pytest.mark.parametrize("masked", [False, True])
def test_an_empty_batch_is_refused_masked_or_not(masked):
    mask = torch.ones(0, 3, dtype=torch.bool) if masked else None
    with pytest.raises(ValueError, match="no positives|no row of neg_mask"):
        CROLoss(n_items=10)(torch.zeros(0), torch.zeros(0, 3), mask)


@pytest.mark.parametrize("n_items", [10 ** 30, 2 ** 53 + 1, 0, 1, None, 2.5])
def test_an_impossible_catalogue_size_is_refused(n_items):
    with pytest.raises(ConfigError, match="n_items"):
        CROLoss(n_items=n_items)


@pytest.mark.parametrize("kernel", ["sigmoid", "softplus", "hinge", "exp"])
def test_more_negatives_than_items_keeps_the_paper_gradient(kernel):
    """M > |I|: the paper's R_hat may fall below 1 (the loss below 0); the gradient still
    ranks every positive up, and the unbiased estimate stays >= 1."""
    g = torch.Generator().manual_seed(0)
    pos = torch.randn(8, generator=g, dtype=torch.float64, requires_grad=True)
    neg = torch.randn(8, 40, generator=g, dtype=torch.float64) - 20  # every positive far ahead: phi ~ 0
    loss = CROLoss(kernel, 1.2, n_items=10)(pos, neg)
    loss.backward()
    assert loss.item() < 0 and (pos.grad <= 0).all() and torch.isfinite(pos.grad).all()
    unbiased = CROLoss(kernel, 1.2, n_items=10, rank_estimator="unbiased")(pos.detach(), neg)
    assert unbiased.item() >= 0
