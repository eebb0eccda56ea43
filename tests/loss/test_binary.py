"""bce and gbce against a float64 hand-written loop, gSASRec's calibration, and the presets' refusals."""
import math

import pytest
import torch

from recbole_croloss.errors import ConfigError
from recbole_croloss.loss import GeneralisedBCE, build_loss, get_preset


def reference(pos, neg, mask, n_items, t):
    """gSASRec's loss as written in its paper, one row at a time in float64."""
    rows = []
    for b in range(len(pos)):
        valid = [j for j in range(neg.shape[1]) if mask is None or mask[b, j]]
        if not valid:
            continue
        alpha = len(valid) / (n_items - 1)
        beta = alpha * (t * (1 - 1 / alpha) + 1 / alpha)
        sigma = 1 / (1 + math.exp(-float(pos[b])))
        total = math.log(sigma ** beta) + sum(math.log(1 - 1 / (1 + math.exp(-float(neg[b, j])))) for j in valid)
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
    assert float(loss(pos, neg, mask)) == pytest.approx(reference(pos, neg, mask, n_items, t), rel=1e-12)
    assert float(loss(pos, neg)) == pytest.approx(reference(pos, neg, None, n_items, t), rel=1e-12)


def test_gbce_beta_is_gsasrec_s_calibration():
    """beta = alpha (t (1 - 1/alpha) + 1/alpha), alpha = M / (|I| - 1): 256 negatives of 10,001
    items at t = 0.75 give beta = 0.25 + 0.75 * 0.0256."""
    loss = GeneralisedBCE(10_001, t=0.75)
    assert float(loss.beta(torch.tensor([256.0]))) == pytest.approx(0.0256 * (0.75 * (1 - 1 / 0.0256) + 1 / 0.0256))
    assert float(loss.beta(torch.tensor([10_000.0]))) == pytest.approx(1.0)  # every item: plain BCE


def test_finite_for_scores_far_beyond_the_sigmoid_s_range():
    loss = GeneralisedBCE(100, 0.5)
    pos = torch.tensor([-500.0, 500.0], requires_grad=True)
    neg = torch.tensor([[500.0, -500.0], [80.0, 0.0]], requires_grad=True)
    value = loss(pos, neg)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(pos.grad).all() and torch.isfinite(neg.grad).all()


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
