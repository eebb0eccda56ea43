"""The fused engine against the float64 reference and the eager engine.

Most tests run the fused engine's code uncompiled (``torch.compiler.set_stance("force_eager")``:
the same functions, the same custom backward, without the compile); a few compile it, since each
compile costs seconds.
"""
from __future__ import annotations

import pickle
import warnings

import pytest
import torch

from recbole_croloss.errors import ConfigError
from recbole_croloss.loss import CROLoss, Kernel, LossOverflowError, NonFiniteScoreError, Softplus, get_kernel
from recbole_croloss.loss.kernels import log1p_unit

from tests.devices import on_devices

from .reference import MARGIN, ref_value_and_grads
from .test_croloss import (ESTIMATORS, GRADCHECK_CASES, KERNELS, LAMBDA_PAIRS, MASKS, N_ITEMS, assert_close_to_ref,
                           assert_huge_scores_match_reference, far_from_kinks, huge_scores, lib_value_and_grads,
                           make_scores)


@pytest.fixture
def uncompiled():
    with torch.compiler.set_stance("force_eager"):
        yield


def fused(kernel, alpha, **options):
    return CROLoss(kernel, alpha, options.pop("n_items", N_ITEMS), engine="fused", **options)


# --------------------------------------------------------------------------------------------
# The elementwise terms
# --------------------------------------------------------------------------------------------
#: phi and phi' in float64, written apart from the kernels (softplus as logaddexp: F.softplus
#: returns x itself above 20).
REFERENCE_TERMS = {
    "sigmoid": (torch.sigmoid, lambda x: torch.sigmoid(x) * torch.sigmoid(-x)),
    "softplus": (lambda x: torch.logaddexp(x, torch.zeros_like(x)), torch.sigmoid),
    "exp": (torch.exp, torch.exp),
    "hinge": (torch.relu, lambda x: (x > 0).double()),
    "step": (lambda x: (x >= 0).double(), None),
}


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name", list(REFERENCE_TERMS))
def test_terms_are_the_kernel_and_its_derivative(name, dtype):
    """``terms(x)`` of the shifted gap x (the hinge's margin already added: phi(x - m))."""
    x = torch.cat([torch.linspace(-30, 30, 601, dtype=torch.float64), torch.tensor([-1e4, 1e4])])
    if name == "exp":
        x = x.clamp(max=0.0)  # the engine passes x - max(x, 0) <= 0
    x = x.to(dtype)
    value, slope = get_kernel(name, margin=MARGIN).terms(x)
    want_value, want_slope = REFERENCE_TERMS[name]
    tol = dict(rtol=5e-7, atol=1e-30) if dtype == torch.float32 else dict(rtol=1e-14, atol=1e-300)
    torch.testing.assert_close(value.double(), want_value(x.double()), **tol)
    if want_slope is None:
        assert slope is None
    else:
        torch.testing.assert_close(slope.double(), want_slope(x.double()), **tol)
    masked = get_kernel(name, margin=MARGIN).terms(torch.tensor([float("-inf")], dtype=dtype))
    assert all(t is None or t.item() == 0 for t in masked)  # a masked entry adds 0, slope 0


def test_log1p_polynomial_is_as_accurate_as_torch_in_float32():
    e = torch.cat([torch.rand(200_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64) ** 6,
                   torch.logspace(-37, 0, 2000, dtype=torch.float64), torch.tensor([0.0, 1.0], dtype=torch.float64)])
    e32 = e.float()
    want = torch.log1p(e32.double())
    got = log1p_unit(e32).double()
    assert got[-2] == 0
    relative = ((got - want) / want.clamp(min=1e-300)).abs()
    assert float(relative.max()) < 2.5e-7
    assert torch.equal(log1p_unit(e), torch.log1p(e))  # float64: the library's own


# --------------------------------------------------------------------------------------------
# Against the float64 reference (uncompiled)
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("mask_name", list(MASKS))
@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("alpha", [0.0, 0.8, 1.0, 1.6])
@pytest.mark.parametrize("kernel", KERNELS)
def test_plain_matches_reference(uncompiled, kernel, alpha, estimator, mask_name, dtype):
    pos, neg = make_scores()
    mask = MASKS[mask_name]
    want = ref_value_and_grads(pos, neg, mask, kernel=kernel, alpha=alpha, n_items=N_ITEMS, estimator=estimator)
    got = lib_value_and_grads(fused(kernel, alpha, margin=MARGIN, rank_estimator=estimator), pos, neg, mask, dtype)
    assert_close_to_ref(got, want, dtype)
    if mask is not None:
        assert (got[2][~mask] == 0).all() and got[1][2] == 0


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("mask_name,estimator", [("nomask", "paper"), ("mask", "unbiased")])
@pytest.mark.parametrize("alpha", [0.0, 1.0, 1.6])
@pytest.mark.parametrize("phi1,phi2", LAMBDA_PAIRS)
def test_lambda_matches_reference(uncompiled, phi1, phi2, alpha, estimator, mask_name, dtype):
    pos, neg = make_scores(5)
    mask = MASKS[mask_name]
    want = ref_value_and_grads(pos, neg, mask, kernel=phi2, alpha=alpha, n_items=N_ITEMS, estimator=estimator,
                               lambda_kernel=phi1)
    loss_fn = fused(phi2, alpha, lambda_kernel=phi1, margin=MARGIN, rank_estimator=estimator)
    assert_close_to_ref(lib_value_and_grads(loss_fn, pos, neg, mask, dtype), want, dtype)


@pytest.mark.parametrize("with_mask", [False, True])
@pytest.mark.parametrize("kernel,alpha,lambda_kernel,estimator", GRADCHECK_CASES)
def test_gradcheck(uncompiled, kernel, alpha, lambda_kernel, estimator, with_mask):
    """The hand-written backward is the derivative of the forward."""
    pos, neg = far_from_kinks(7)
    mask = None
    if with_mask:
        mask = torch.ones_like(neg, dtype=torch.bool)
        mask[0, 1:] = False
        mask[2] = False
    loss_fn = fused(kernel, alpha, lambda_kernel=lambda_kernel, margin=MARGIN, rank_estimator=estimator)
    assert torch.autograd.gradcheck(lambda p, n: loss_fn(p, n, mask), (pos.requires_grad_(), neg.requires_grad_()))


# --------------------------------------------------------------------------------------------
# Edges: the eager engine's guarantees hold (uncompiled)
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("lambda_kernel", [None, "step"])
@pytest.mark.parametrize("kernel", KERNELS)
def test_nan_scores_at_masked_entries_are_ignored(uncompiled, kernel, lambda_kernel):
    pos, neg = make_scores(11)
    mask = MASKS["mask"]
    loss_fn = fused(kernel, 0.8, lambda_kernel=lambda_kernel, margin=MARGIN)
    want = lib_value_and_grads(loss_fn, pos, neg, mask, torch.float64)
    got = lib_value_and_grads(loss_fn, pos, neg.masked_fill(~mask, float("nan")), mask, torch.float64)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=0, atol=0)


@pytest.mark.parametrize("direction", ["lose", "win"])
@pytest.mark.parametrize("alpha", [0.0, 0.6, 1.0, 1.6])
@pytest.mark.parametrize("kernel", KERNELS)
def test_huge_scores_match_the_reference_or_raise_overflow(uncompiled, kernel, alpha, direction):
    loss_fn = fused(kernel, alpha, n_items=100_000)
    if kernel == "exp" and alpha < 1 and direction == "lose":
        with pytest.raises(LossOverflowError, match=rf"alpha={alpha}"):
            loss_fn(*huge_scores(direction))
        return
    assert_huge_scores_match_reference(loss_fn, kernel, alpha, direction)
    pos, neg = huge_scores(direction)
    torch.testing.assert_close(loss_fn(pos, neg), CROLoss(kernel, alpha, 100_000)(pos, neg), rtol=1e-6, atol=0)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("where", ["pos", "neg"])
def test_a_nan_score_that_counts_is_named(uncompiled, kernel, where):
    pos, neg = torch.zeros(4), torch.zeros(4, 6)
    (pos if where == "pos" else neg)[1] = float("nan")
    with pytest.raises(NonFiniteScoreError, match="1 of 4 positive" if where == "pos" else "6 negative scores"):
        fused(kernel, 1.2, n_items=100)(pos, neg)


def test_rows_without_valid_negatives(uncompiled):
    pos, neg = make_scores(3)
    loss_fn = fused("exp", 1.2, lambda_kernel="sigmoid")
    keep = MASKS["mask"].any(1)
    torch.testing.assert_close(loss_fn(pos, neg, MASKS["mask"]), loss_fn(pos[keep], neg[keep], MASKS["mask"][keep]),
                               rtol=1e-12, atol=0)
    with pytest.raises(ValueError, match="no row of neg_mask has a valid negative"):
        loss_fn(pos, neg, torch.zeros_like(neg, dtype=torch.bool))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_scores_are_computed_in_float32(uncompiled, dtype):
    g = torch.Generator().manual_seed(0)
    pos = torch.randn(64, generator=g).to(dtype).requires_grad_()
    neg = (torch.randn(64, 640, generator=g) * 3).to(dtype).requires_grad_()
    loss = fused("softplus", 1.0, n_items=313966, lambda_kernel="sigmoid")(pos, neg)
    loss.backward()
    assert loss.dtype == torch.float32 and pos.grad.dtype == dtype and bool((pos.grad != 0).all())
    reference = CROLoss("softplus", 1.0, 313966, lambda_kernel="sigmoid")(pos.detach().double(), neg.detach().double())
    assert float(loss) == pytest.approx(float(reference), rel=1e-5)


def test_a_kernel_without_terms_is_computed_eagerly():
    class Cube(Kernel):
        name = "cube"

        def __call__(self, gaps):
            return torch.relu(gaps) ** 3

    loss_fn = CROLoss(Cube(), 1.0, 100, engine="fused")
    pos, neg = make_scores(2)
    assert loss_fn._fused is None and not Cube().fusable
    torch.testing.assert_close(loss_fn(pos, neg), CROLoss(Cube(), 1.0, 100)(pos, neg), rtol=0, atol=0)


def test_a_kernel_that_redefines_phi_but_not_its_terms_is_computed_eagerly():
    class Steeper(Softplus):
        def __call__(self, gaps):
            return super().__call__(2.0 * gaps)

    loss_fn = CROLoss(Steeper(), 1.0, 100, engine="fused")
    assert Softplus().fusable and not Steeper().fusable and loss_fn._fused is None


def test_a_fused_loss_pickles_and_compiles_again_where_loaded(uncompiled):
    loss_fn = fused("softplus", 1.2, lambda_kernel="sigmoid")
    pos, neg = make_scores(6)
    want = loss_fn(pos, neg)
    loaded = pickle.loads(pickle.dumps(loss_fn))
    assert loaded.engine == "fused" and loaded._fused._owner is loaded
    torch.testing.assert_close(loaded(pos, neg), want, rtol=0, atol=0)


@pytest.mark.parametrize("lambda_kernel", [None, "sigmoid"])
def test_importance_weighted_losses_take_the_eager_path(lambda_kernel):
    """With ``neg_log_q`` the fused engine computes exactly what the eager engine does (it sums
    uniformly weighted negatives only), and never calls the compiled pass."""
    pos, neg = make_scores(7)
    log_q = torch.log_softmax(torch.randn(neg.shape[1], generator=torch.Generator().manual_seed(7),
                                          dtype=torch.float64), dim=0)
    fused_fn = fused("softplus", 1.2, lambda_kernel=lambda_kernel)
    fused_fn._fused = _Unreachable()
    got = value_and_grads(fused_fn, pos, neg, None, log_q)
    want = value_and_grads(CROLoss("softplus", 1.2, N_ITEMS, lambda_kernel=lambda_kernel), pos, neg, None, log_q)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=0, atol=0)


class _Unreachable:
    available = True

    def __call__(self, *args):
        raise AssertionError("the fused pass was called with importance weights")


def test_an_unknown_engine_is_refused():
    with pytest.raises(ConfigError, match=r"loss_engine='compiled'.*eager, fused"):
        CROLoss("softplus", 1.0, 100, engine="compiled")


# --------------------------------------------------------------------------------------------
# Compiled (a few: each compile costs seconds)
# --------------------------------------------------------------------------------------------
def value_and_grads(loss_fn, pos, neg, mask, log_q=None):
    """Every call with both scores requiring a gradient: the compiled loss keeps one graph."""
    p, n = pos.detach().clone().requires_grad_(), neg.detach().clone().requires_grad_()
    loss = loss_fn(p, n, mask, log_q)
    loss.backward()
    return loss.detach(), p.grad, n.grad


#: Compiled against eager, float32: C++ loops on the CPU sum as eager does; a GPU's Triton
#: reductions sum in another order.
COMPILED_RTOL = {"cpu": 2e-6, "cuda": 1e-5}


@on_devices
def test_compiled_lambda_matches_eager_also_in_low_precision(device):
    kwargs = dict(kernel="softplus", alpha=1.2, n_items=313966, lambda_kernel="sigmoid")
    loss_fn = CROLoss(**kwargs, engine="fused")
    g = torch.Generator().manual_seed(1)
    pos, neg = torch.randn(16, generator=g) * 3, torch.randn(16, 96, generator=g) * 3
    mask = torch.rand(16, 96, generator=g) > 0.1
    mask[3] = False
    pos, neg, mask = pos.to(device), neg.to(device), mask.to(device)
    want = value_and_grads(CROLoss(**kwargs), pos, neg, mask)
    got = value_and_grads(loss_fn, pos, neg, mask)
    for w, v in zip(want, got):
        assert v.device.type == device
        torch.testing.assert_close(v, w, rtol=COMPILED_RTOL[device], atol=1e-9)
    assert (got[2][~mask] == 0).all() and got[1][3] == 0 and loss_fn._fused.available
    low = value_and_grads(loss_fn, pos.bfloat16(), neg.bfloat16(), mask)  # computed in float32
    assert low[0].dtype == torch.float32 and low[2].dtype == torch.bfloat16
    assert float(low[0]) == pytest.approx(float(want[0]), rel=1e-2)
    with pytest.raises(NonFiniteScoreError, match="1 of 16 positive"):
        value_and_grads(loss_fn, pos.index_fill(0, torch.tensor([0], device=device), float("nan")), neg, mask)


@on_devices
def test_compiled_exp_matches_eager_and_raises_overflow(device):
    kwargs = dict(kernel="exp", alpha=0.6, n_items=1000, rank_estimator="unbiased")
    loss_fn = CROLoss(**kwargs, engine="fused")
    g = torch.Generator().manual_seed(2)
    pos, neg = torch.randn(8, generator=g) * 30, torch.randn(8, 64, generator=g) * 30  # gaps to ~100
    pos, neg = pos.to(device), neg.to(device)
    want = value_and_grads(CROLoss(**kwargs), pos, neg, None)
    for w, v in zip(want, value_and_grads(loss_fn, pos, neg, None)):
        assert v.device.type == device
        torch.testing.assert_close(v, w, rtol=10 * COMPILED_RTOL[device], atol=1e-9)
    assert loss_fn._fused.available  # computed by the compiled pass, not the eager fallback
    with pytest.raises(LossOverflowError, match="alpha=0.6"):
        value_and_grads(loss_fn, pos, neg + 300.0, None)


def test_compiling_that_fails_warns_and_computes_eagerly(tmp_path, monkeypatch):
    """A machine without a C++ compiler: the first call warns, every call computes eagerly."""
    import torch._inductor.config as inductor_config

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))  # nothing compiled to reuse
    loss_fn = CROLoss("hinge", 0.8, 100, margin=0.37, engine="fused")
    pos, neg = make_scores(4)
    with inductor_config.patch({"cpp.cxx": (str(tmp_path / "no-such-c++"),)}), \
            pytest.warns(RuntimeWarning, match="loss_engine=fused: compiling CROLoss failed.*eagerly"):
        loss = loss_fn(pos, neg)
    assert not loss_fn._fused.available
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = loss_fn(pos, neg)
    want = CROLoss("hinge", 0.8, 100, margin=0.37)(pos, neg)
    assert float(loss) == float(again) == float(want)
