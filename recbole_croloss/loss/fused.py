r"""The fused engine: CROLoss compiled into one pass over ``[B, M]`` forward and one backward.

For row b, the shifted gaps ``x_bj = t_bj + (offset - s_b)`` (``-inf`` where ``mask_bj`` is
False) give, in one loop over the row,

    T_b   = sum_j phi(x_bj - c_b)       the kernel's row sum, scaled by e^{-c_b}       [B]
    D_bj  = phi'(x_bj - c_b)            its slope (:meth:`Kernel.terms`), kept          [B, M]
    T1_b  = sum_j phi_1(x_bj - c1_b)    the Lambda method's phi_1 sum (no gradient)     [B]
    n_b   = sum_j mask_bj               the valid negatives                             [B]

with ``c_b = max(0, max_j x_bj)`` for the exponential kernel (``sum_j e^{x_bj} = e^{c_b} T_b``,
no overflow) and ``c_b = 0`` for the others; then, on ``[B]``, ``log R_b = c_b + log(a_b e^{-c_b}
+ b_b T_b)`` and the loss exactly as the eager engine (:class:`~.croloss.CROLoss` shares that
code). The backward is one more loop: ``d t_bj = g_b D_bj``, ``d s_b = -sum_j d t_bj`` for
``g_b = dL/dT_b``, from the kept slopes (:class:`RowSums`; autograd of the kernel itself would
differentiate through its arithmetic; eager autograd makes three or four passes each way).

``torch.compile`` (inductor) builds the loops on first use: C++ on the CPU, Triton on a GPU; a
new shape compiles once more, with symbolic sizes. Where compiling fails (no compiler), the
first call warns and :attr:`FusedLoss.available` turns False: the loss then computes eagerly.
"""
from __future__ import annotations

import types
import warnings

import torch

from .kernels import Kernel


def fresh_function(fn):
    """A copy of ``fn`` with its own code object. torch.compile keeps its compiled graphs per code
    object and stops compiling one after ``recompile_limit`` (8) of them: a copy per loss leaves
    that budget to the shapes and dtypes of one loss, however many losses a process builds."""
    return types.FunctionType(fn.__code__.replace(), fn.__globals__, fn.__name__, fn.__defaults__,
                              fn.__closure__)


def _shifted_gaps(kernel: Kernel, pos, neg, mask):
    """``(x - c [B, M], c [B] or None)`` for ``kernel`` (module docstring)."""
    x = neg + (kernel.offset - pos).unsqueeze(1)
    if mask is not None:
        x = torch.where(mask, x, float("-inf"))  # masked scores, NaN ones included, do not count
    if not kernel.exponential:
        return x, None
    shift = x.amax(dim=1).clamp(min=0.0)  # 0 where every negative of the row is masked
    return x - shift.unsqueeze(1), shift


class RowSums(torch.autograd.Function):
    r"""``(pos [B], neg [B, M], mask | None, phi, phi_1 | None) -> (T, D, c?, T1?, c1?, n?)``.

    Only ``T`` has a gradient: ``d neg = g D``, ``d pos = -sum_j g D``. The optional outputs are
    present where they exist (``c`` for an exponential phi, ``T1`` with phi_1, ``c1`` for an
    exponential phi_1, ``n`` with a mask), in that order: :func:`row_sums` names them.
    ``D`` is returned too (a constant output): the caller keeps it alive, so that the compiler
    saves it for the backward instead of computing the kernel a second time there.
    """

    @staticmethod
    def forward(ctx, pos, neg, mask, phi, phi_1):
        x, shift = _shifted_gaps(phi, pos, neg, mask)
        value, slope = phi.terms(x)
        outputs = [value.sum(dim=1), slope, shift]
        if phi_1 is not None:
            x_1, shift_1 = _shifted_gaps(phi_1, pos, neg, mask)
            outputs += [phi_1.terms(x_1)[0].sum(dim=1), shift_1]
        outputs.append(None if mask is None else mask.sum(dim=1))
        outputs = [t for t in outputs if t is not None]
        ctx.save_for_backward(slope)
        ctx.mark_non_differentiable(*outputs[1:])
        return tuple(outputs)

    @staticmethod
    def backward(ctx, grad_total, *constants):
        (slope,) = ctx.saved_tensors
        grad_neg = slope * grad_total.unsqueeze(1)
        return -grad_neg.sum(dim=1), grad_neg, None, None, None


def row_sums(pos, neg, mask, phi: Kernel, phi_1: Kernel | None) -> dict:
    """:class:`RowSums` as a dict: ``total, slope, shift, total_1, shift_1, count`` (None where
    absent: ``shift`` for a non-exponential phi, ``total_1`` without phi_1, ...)."""
    outputs = list(RowSums.apply(pos, neg, mask, phi, phi_1))
    present = {"total": True, "slope": True, "shift": phi.exponential,
               "total_1": phi_1 is not None, "shift_1": phi_1 is not None and phi_1.exponential,
               "count": mask is not None}
    return {name: outputs.pop(0) if there else None for name, there in present.items()}


def log_affine(a: torch.Tensor, b: torch.Tensor, total: torch.Tensor, shift: torch.Tensor | None):
    r"""``log(a + b e^{c} T) = c + log(a e^{-c} + b T)`` per row (``c`` None: 0), ``[B] -> [B]``."""
    if shift is None:
        return torch.log(a + b * total)
    return shift + torch.log(a * torch.exp(-shift) + b * total)


class FusedLoss:
    """``body(owner, pos, neg, mask) -> (loss, n_rows, kept)`` compiled for one ``owner`` (the
    loss module) on the first call; ``kept`` is to be dropped once the loss is out (see
    :class:`RowSums`). Pickles without its compiled code (it compiles again where it is loaded)."""

    def __init__(self, body, owner):
        self._body, self._owner = body, owner
        self._compiled = None
        self.failure: str | None = None

    @property
    def available(self) -> bool:
        """False once compiling failed (no C++ compiler, no Triton): compute eagerly instead."""
        return self.failure is None

    def __call__(self, *args):
        """The compiled body's outputs, or None (with a warning, once) where it cannot compile."""
        if self._compiled is None:
            self._compiled = torch.compile(fresh_function(self._body))
        try:
            return self._compiled(self._owner, *args)
        except torch._dynamo.exc.BackendCompilerFailed as error:  # torch.compile imported it
            self.failure = f"{type(error).__name__}: {str(error).strip().splitlines()[0]}"
            warnings.warn(f"loss_engine=fused: compiling CROLoss failed ({self.failure}); "
                          "computing it eagerly", RuntimeWarning, stacklevel=3)
            return None

    def __getstate__(self):
        return {**self.__dict__, "_compiled": None}
