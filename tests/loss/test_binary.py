"""bce and gbce against a float64 hand-written loop, gSASRec's calibration, and the presets' refusals."""
import pytest
import torch

from recbole_croloss.errors import ConfigError
from recbole_croloss.loss import GeneralisedBCE, build_loss, get_preset


def log_sigmoid(x):
    """log(1 / (1 + e^-x)) in float64, finite for any finite x (no e^-x of a large -x)."""
    return -torch.logaddexp(torch.zeros_like(x), -x)


def reference(pos, neg, mask, n_items, t):
    """gSASRec's loss as written in its paper, one row at a time in float64 (a tensor: autograd
    gives its gradient)."""
    rows = []
    for b in range(len(pos)):
        valid = [j for j in range(neg.shape[1]) if mask is None or mask[b, j]]
        if not valid:
            continue
        alpha = len(valid) / (n_items - 1)
        beta = alpha * (t * (1 - 1 / alpha) + 1 / alpha)
        # log(sigma(s)^beta) + sum_j log(1 - sigma(t_j)), with 1 - sigma(t) = sigma(-t)
        total = beta * log_sigmoid(pos[b].double()) + sum(log_sigmoid(-neg[b, j].double()) for j in valid)
        rows.append(-total / (len(valid) + 1))
    return sum(rows) / len(rows)


@pytest.mark.parametrize("name, t", [("bce", 0.0), ("gbce", 0.75), ("gbce", 0.0), ("gbce", 1.0)])
@pytest.mark.parametrize("n_items", [30, 5000])  # sampling rate above and below 1
def test_against_the_reference(name, t, n_items):
    g = torch.Generator().manual_seed(0)
    pos, neg = torch.randn(5, generator=g, dtype=torch.float64) * 3, torch.randn(5, 40, generator=g, dtype=torch.float64) * 3
    mask = torch.rand(5, 40, generator=g) > 0.3
    mask[2] = False  # a row with no valid negative is left out of the mean
    loss = build_loss(name, n_items, **({"gbce_t": t} if name == "gbce" else {}))
    pos.requires_grad_(), neg.requires_grad_()
    for row_mask in (mask, None):
        got, want = loss(pos, neg, row_mask), reference(pos, neg, row_mask, n_items, t)
        torch.testing.assert_close(got, want, rtol=1e-12, atol=0)
        for g_got, g_want in zip(torch.autograd.grad(got, (pos, neg)), torch.autograd.grad(want, (pos, neg))):
            torch.testing.assert_close(g_got, g_want, rtol=1e-12, atol=1e-15)


def test_gbce_beta_is_gsasrec_s_calibration():
    """beta = alpha (t (1 - 1/alpha) + 1/alpha), alpha = M / (|I| - 1): 256 negatives of 10,001
    items at t = 0.75 give beta = 0.25 + 0.75 * 0.0256."""
    loss = GeneralisedBCE(10_001, t=0.75)
    assert float(loss.beta(torch.tensor([256.0]))) == pytest.approx(0.0256 * (0.75 * (1 - 1 / 0.0256) + 1 / 0.0256))
    assert float(loss.beta(torch.tensor([10_000.0]))) == pytest.approx(1.0)  # every item: plain BCE


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_scores_far_beyond_the_sigmoid_s_range_match_the_reference(dtype):
    """Scores of +-500 (e^500 overflows float32): the float64 reference's loss and gradient, the
    gradient raising the positive and lowering the negatives (d pos <= 0, d neg >= 0)."""
    loss = GeneralisedBCE(100, 0.5)
    pos = torch.tensor([-500.0, 500.0], dtype=dtype, requires_grad=True)
    neg = torch.tensor([[500.0, -500.0], [80.0, 0.0]], dtype=dtype, requires_grad=True)
    value = loss(pos, neg)
    value.backward()
    exact_pos, exact_neg = pos.detach().double().requires_grad_(), neg.detach().double().requires_grad_()
    want = reference(exact_pos, exact_neg, None, 100, 0.5)
    want_grads = torch.autograd.grad(want, (exact_pos, exact_neg))
    rtol = 1e-6 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(value.detach().double(), want.detach(), rtol=rtol, atol=0)
    for got, expected in zip((pos.grad, neg.grad), want_grads):
        torch.testing.assert_close(got.double(), expected, rtol=rtol, atol=1e-30)
    assert bool((pos.grad <= 0).all()) and bool((neg.grad >= 0).all())


def test_bce_takes_no_log_q():
    with pytest.raises(ValueError, match="takes no neg_log_q"):
        GeneralisedBCE(100)(torch.zeros(2), torch.zeros(2, 3), None, torch.zeros(3))


@pytest.mark.parametrize("name, options, fragment", [
    ("bce", {"kernel": "sigmoid"}, "kernel='sigmoid' is not valid; loss='bce' is binary cross-entropy"),
    ("bce", {"gbce_t": 0.5}, "gbce_t=0.5 is not valid; loss='bce'"),
    ("gbce", {"alpha": 1.0}, "alpha=1.0 is not valid; loss='gbce'"),
    ("gbce", {"rank_estimator": "unbiased"}, "rank_estimator='unbiased' is not valid; loss='gbce'"),
    ("gbce", {"gbce_t": 1.5}, "gbce_t=1.5 is not valid; gBCE's calibration t, a number from 0"),
    ("gbce", {"gbce_t": True}, "gbce_t=True is not valid"),
    ("sampled_softmax", {"kernel": "sigmoid"}, "kernel='sigmoid' is not valid; loss='sampled_softmax' fixes "
                                               "kernel='exp'"),
])
def test_presets_refuse_settings_that_contradict_them(name, options, fragment):
    with pytest.raises(ConfigError) as err:
        get_preset(name).resolve(**options)
    assert fragment in str(err.value)
