"""Named presets: documented settings, fixed settings enforced, errors."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from recbole_croloss.loss import (LOSS_OPTIONS, PRESETS, CROLoss, Exponential, Hinge, Kernel, PaperEstimator,
                                  Sigmoid, Softplus, UnbiasedEstimator, build_loss, get_preset)


def test_preset_names():
    assert sorted(PRESETS) == ["bce", "bpr", "croloss", "croloss_lambda", "gbce", "sampled_softmax", "triplet"]


@pytest.mark.parametrize("name,kernel,alpha,lambda_kernel", [
    ("croloss", Softplus(), 1.0, None),
    ("croloss_lambda", Softplus(), 1.0, Sigmoid()),
    ("sampled_softmax", Exponential(), 1.0, None),
    ("bpr", Softplus(), 0.0, None),
    ("triplet", Hinge(5.0), 0.0, None),
])
def test_documented_settings(name, kernel, alpha, lambda_kernel):
    loss = build_loss(name, 1234)
    assert isinstance(loss, CROLoss)
    assert loss.kernel == kernel and loss.alpha == alpha and loss.lambda_kernel == lambda_kernel
    assert loss.n_items == 1234 and loss.estimator == PaperEstimator()


def test_options_are_passed():
    loss = build_loss("croloss", 10, kernel="hinge", alpha=1.6, margin=2.0, rank_estimator="unbiased")
    assert loss.kernel == Hinge(2.0) and loss.alpha == 1.6 and loss.estimator == UnbiasedEstimator()
    loss = build_loss("croloss_lambda", 10, kernel="exp", lambda_kernel="step", alpha=1.2)
    assert loss.kernel == Exponential() and loss.lambda_kernel.name == "step" and loss.alpha == 1.2
    loss = build_loss("triplet", 10, margin=0.5)
    assert loss.kernel == Hinge(0.5)


def test_none_options_take_the_default():
    assert get_preset("croloss").settings(kernel=None, alpha=None) == {
        "margin": 5.0, "rank_estimator": "paper", "kernel": "softplus", "alpha": 1.0, "lambda_kernel": None}


@pytest.mark.parametrize("name,key,value", [
    ("bpr", "alpha", 1.2), ("bpr", "kernel", "sigmoid"), ("sampled_softmax", "alpha", 0.5),
    ("sampled_softmax", "kernel", "softplus"), ("triplet", "kernel", "softplus"), ("triplet", "alpha", 1.0),
    ("croloss", "lambda_kernel", "sigmoid"), ("bpr", "lambda_kernel", "sigmoid"),
])
def test_contradicting_a_fixed_setting_raises(name, key, value):
    with pytest.raises(ValueError, match=rf"^{key}={value!r} is not valid; loss={name!r} fixes {key}="):
        build_loss(name, 100, **{key: value})


@pytest.mark.parametrize("name,key,value", [("bpr", "alpha", 0), ("bpr", "kernel", "softplus"),
                                            ("sampled_softmax", "alpha", 1)])
def test_repeating_a_fixed_setting_is_fine(name, key, value):
    """The loss built with the preset's own value is the preset's loss: the same settings, and
    the same value and gradient on fixed scores."""
    repeated, plain = build_loss(name, 100, **{key: value}), build_loss(name, 100)
    assert type(repeated) is type(plain) is CROLoss
    assert (repeated.kernel, repeated.alpha, repeated.lambda_kernel, repeated.estimator, repeated.n_items) == (
        plain.kernel, plain.alpha, plain.lambda_kernel, plain.estimator, plain.n_items)
    assert repr(repeated) == repr(plain)
    gen = torch.Generator().manual_seed(4)
    pos = torch.randn(3, generator=gen, dtype=torch.float64, requires_grad=True)
    neg = torch.randn(3, 8, generator=gen, dtype=torch.float64, requires_grad=True)
    got, want = repeated(pos, neg), plain(pos, neg)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    for g_got, g_want in zip(torch.autograd.grad(got, (pos, neg)), torch.autograd.grad(want, (pos, neg))):
        torch.testing.assert_close(g_got, g_want, rtol=0, atol=0)


def test_unknown_option():
    with pytest.raises(ValueError, match=r"temperature=2.*choose one of: alpha, kernel, lambda_kernel, margin"):
        build_loss("croloss", 100, temperature=2)
    assert set(LOSS_OPTIONS) == {"kernel", "alpha", "lambda_kernel", "margin", "rank_estimator"}


@pytest.mark.parametrize("bad", ["softmax", "", None, "CROLoss"])
def test_unknown_preset(bad):
    match = rf"loss={bad!r} is not valid; choose one of: bce, bpr, croloss, croloss_lambda, gbce, sampled_softmax, triplet"
    with pytest.raises(ValueError, match=match):
        get_preset(bad)
    with pytest.raises(ValueError, match=match):
        build_loss(bad, 100)


def test_options_validated_by_the_loss():
    with pytest.raises(ValueError, match=r"alpha=-1"):
        build_loss("croloss", 100, alpha=-1)
    with pytest.raises(ValueError, match=r"n_items=0"):
        build_loss("bpr", 0)


def test_sampled_softmax_preset_is_cross_entropy_in_the_exact_setting():
    n, b = 11, 4
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(b, n, generator=gen, dtype=torch.float64)
    target = torch.randint(0, n, (b,), generator=gen)
    is_pos = F.one_hot(target, n).bool()
    loss = build_loss("sampled_softmax", n, rank_estimator="unbiased")(logits[is_pos], logits[~is_pos].view(b, n - 1))
    torch.testing.assert_close(loss, F.cross_entropy(logits, target), rtol=0, atol=1e-12)
    bpr = build_loss("bpr", n, rank_estimator="unbiased")(logits[is_pos], logits[~is_pos].view(b, n - 1))
    want = math.log(n + 1) / n * F.softplus(logits[~is_pos].view(b, n - 1) - logits[is_pos][:, None]).sum(1).mean()
    torch.testing.assert_close(bpr, want, rtol=1e-12, atol=0)


def test_a_registered_kernel_and_preset_are_nameable(monkeypatch):
    from recbole_croloss.loss import KERNELS, LossPreset, register_kernel, register_preset

    monkeypatch.setattr("recbole_croloss.loss.kernels.KERNELS", dict(KERNELS))
    monkeypatch.setattr("recbole_croloss.loss.presets.PRESETS", dict(PRESETS))

    class Cube(Kernel):
        name = "cube"

        def __call__(self, gaps):
            return torch.sigmoid(gaps) ** 3

    from recbole_croloss.loss import kernels, presets

    assert register_kernel(Cube) is Cube and kernels.KERNELS["cube"] is Cube
    register_preset(LossPreset("cube_auc", "cube kernel, alpha 0", fixed={"kernel": "cube", "alpha": 0.0}))
    loss = presets.get_preset("cube_auc").build(50)
    pos, neg = torch.zeros(1, dtype=torch.float64), torch.zeros(1, 4, dtype=torch.float64)
    # alpha 0: L * W_0(R) = L (R - 1) / |I|, R = (|I| / M)(1 + 4 / 8) with M = 4
    r = 50 / 4 * (1 + 4 * 0.125)
    assert float(loss(pos, neg)) == pytest.approx(math.log(51) * (r - 1) / 50, rel=1e-12)
    with pytest.raises(ValueError, match="already registered"):
        register_kernel(type("Other", (Kernel,), {"name": "cube"}))
    with pytest.raises(ValueError, match="already exists"):
        register_preset(LossPreset("ce", "the model's own"))


@pytest.mark.parametrize("name, key, value, advice", [
    ("croloss", "lambda_kernel", "step", "leave lambda_kernel unset or use loss='croloss_lambda'"),
    ("sampled_softmax", "kernel", "sigmoid", "leave kernel unset or use loss='croloss' or 'croloss_lambda'"),
])
def test_a_fixed_setting_points_to_the_presets_that_take_it(name, key, value, advice):
    """croloss refused lambda_kernel with "use loss='croloss'", the preset it was."""
    with pytest.raises(ValueError, match=advice.replace("(", r"\(")):
        PRESETS[name].resolve(**{key: value})
