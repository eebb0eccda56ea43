"""Comparison kernels phi(g) and their log_affine_sum, against plain formulas."""
from __future__ import annotations

import math

import pytest
import torch

from recbole_croloss.loss import KERNELS, Exponential, Hinge, Kernel, Sigmoid, Softplus, Step, get_kernel

GAPS = [-30.0, -5.0, -1.0, -0.25, 0.0, 0.25, 1.0, 5.0, 30.0]


def formula(name, g, margin=5.0):
    return {
        "sigmoid": lambda: 1.0 / (1.0 + math.exp(-g)),
        "softplus": lambda: math.log1p(math.exp(g)),
        "exp": lambda: math.exp(g),
        "hinge": lambda: max(0.0, g + margin),
        "step": lambda: 1.0 if g >= 0 else 0.0,
    }[name]()


def test_registry_names():
    assert sorted(KERNELS) == ["exp", "hinge", "sigmoid", "softplus", "step"]
    assert KERNELS["exp"] is Exponential and KERNELS["step"] is Step


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_values(name):
    kernel = get_kernel(name)
    gaps = torch.tensor(GAPS, dtype=torch.float64)
    want = torch.tensor([formula(name, g) for g in GAPS], dtype=torch.float64)
    torch.testing.assert_close(kernel(gaps), want, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("margin", [0.0, 0.5, 5.0])
def test_hinge_margin(margin):
    kernel = get_kernel("hinge", margin=margin)
    assert kernel == Hinge(margin) and kernel.margin == margin
    gaps = torch.tensor(GAPS, dtype=torch.float64)
    want = torch.tensor([formula("hinge", g, margin) for g in GAPS], dtype=torch.float64)
    torch.testing.assert_close(kernel(gaps), want)


def test_differentiable_and_exponential_flags():
    assert [k for k, c in KERNELS.items() if not c.differentiable] == ["step"]
    assert [k for k, c in KERNELS.items() if c.exponential] == ["exp"]


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_log_affine_sum(name):
    kernel = get_kernel(name, margin=1.0)
    gen = torch.Generator().manual_seed(0)
    gaps = torch.randn(4, 6, generator=gen, dtype=torch.float64) * 2
    mask = torch.rand(4, 6, generator=gen) > 0.3
    mask[:, 0] = True
    a = torch.tensor([1.0, 2.0, 0.5, 7.0], dtype=torch.float64)
    b = torch.tensor([3.0, 0.1, 1.0, 0.0], dtype=torch.float64)
    want = []
    for r in range(4):
        total = sum(formula(name, float(gaps[r, j]), 1.0) for j in range(6) if mask[r, j])
        want.append(math.log(float(a[r]) + float(b[r]) * total))
    got = kernel.log_affine_sum(torch.zeros(4, dtype=torch.float64), gaps, mask, a, b)  # pos 0: neg = gaps
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("gap", [1e4, -1e4, 1e30])
def test_exp_log_affine_sum_is_finite_for_huge_gaps(gap, dtype):
    gaps = torch.tensor([[gap, gap - 1.0, 0.0]], dtype=dtype, requires_grad=True)
    mask = torch.tensor([[True, True, False]])
    a = torch.tensor([2.0], dtype=dtype)
    b = torch.tensor([3.0], dtype=dtype)
    out = Exponential().log_affine_sum(torch.zeros(1, dtype=dtype), gaps, mask, a, b)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(gaps.grad).all()
    if gap > 0:  # log(b) + logsumexp = log 3 + gap + log(1 + e^-1)
        want = math.log(3.0) + gap + math.log1p(math.exp(-1.0))
        assert float(out.detach()) == pytest.approx(want, rel=1e-6)
        assert float(gaps.grad[0, 2]) == 0.0
    else:
        assert float(out.detach()) == pytest.approx(math.log(2.0), rel=1e-6)


def test_get_kernel_passes_instances_through_and_filters_options():
    k = Hinge(2.0)
    assert get_kernel(k) is k
    assert isinstance(get_kernel("sigmoid", margin=3.0), Sigmoid)  # margin ignored
    assert get_kernel("hinge", margin=None) == Hinge(5.0)           # None -> default
    assert isinstance(get_kernel("softplus"), Softplus)


@pytest.mark.parametrize("bad", ["sigmod", "", None, 3, "Sigmoid"])
@pytest.mark.parametrize("key", ["kernel", "lambda_kernel"])
def test_get_kernel_unknown(bad, key):
    with pytest.raises(ValueError, match=rf"^{key}={bad!r} is not valid; choose one of: "
                                         r"exp, hinge, sigmoid, softplus, step$".replace("(", r"\(")):
        get_kernel(bad, key)


@pytest.mark.parametrize("margin", [-0.1, float("inf"), float("nan"), "wide", None])
def test_hinge_bad_margin(margin):
    with pytest.raises(ValueError, match=rf"^margin={margin!r} is not valid; the hinge margin must be a finite number >= 0$"):
        Hinge(margin)


def test_equality_hash_repr():
    assert Hinge(1.0) == Hinge(1.0) and Hinge(1.0) != Hinge(2.0)
    assert Sigmoid() == Sigmoid() and Sigmoid() != Softplus()
    assert len({Hinge(1.0), Hinge(1.0), Sigmoid(), Sigmoid()}) == 2
    assert repr(Hinge(1.5)) == "Hinge(margin=1.5)" and repr(Step()) == "Step()"
    assert all(issubclass(c, Kernel) for c in KERNELS.values())
