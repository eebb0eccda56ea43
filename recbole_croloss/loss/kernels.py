r"""Comparison kernels phi(g): smooth stand-ins for the unit step of the rank (paper section 3.4).

A kernel maps the gap of a negative, ``g = S(u, v_neg) - S(u, v_pos)``, to its contribution to
the rank estimate ``R = a + b * sum_j phi(g_j)`` (see :mod:`.estimators` for ``a`` and ``b``).
Every kernel offers :meth:`Kernel.log_affine_sum`, which returns ``log(a + b * sum_j phi(g_j))``
over the valid negatives of each row, and :meth:`Kernel.log_weighted_sum`, the same with a
weight per term (importance weights, ``log w [B, M]``); the exponential kernel overrides both
with log-sum-exp so that scores of any magnitude give a finite log-rank.

Shapes: ``pos [B]``, ``neg`` and ``mask`` ``[B, M]`` (mask bool, True = the negative counts, or
``None``); ``a > 0`` and ``b >= 0`` are ``[B]`` tensors; the result is ``[B]``.

:meth:`Kernel.terms` gives ``phi`` and its slope ``phi'`` of each element in one expression, for
the fused engine (:mod:`.fused`), which sums the one and saves the other in a single pass.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from numpy.polynomial import Chebyshev, Polynomial

from ..errors import ConfigError


class Kernel:
    """Base class. ``differentiable`` is False for kernels with no useful gradient (the step)."""

    name: str = ""
    differentiable: bool = True
    #: True when phi grows like e^g, so that a loss built on it can exceed the float range.
    exponential: bool = False
    #: Options the constructor accepts (:func:`get_kernel` passes only these).
    options: tuple[str, ...] = ()
    #: ``shifted(g + offset) == phi(g)``: lets the hinge fold its margin into the gap.
    offset: float = 0.0

    def shifted(self, x: torch.Tensor) -> torch.Tensor:
        """phi(x - offset)."""
        return self(x)

    def __call__(self, gaps: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def terms(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        r"""``(phi(x - offset), phi'(x - offset))`` elementwise, ``[B, M] -> [B, M], [B, M]``.

        ``x`` is the shifted gap (``-inf`` where masked: both are 0 there). Written in plain
        elementwise ops, so that the fused engine compiles them into one loop; a kernel without
        it (the default) is computed by the eager engine. ``None`` slope: no gradient (step).
        """
        raise NotImplementedError

    @property
    def fusable(self) -> bool:
        """True when the kernel has :meth:`terms` for its own phi, i.e. the fused engine can
        compute it: a subclass that redefines ``__call__`` or ``shifted`` but not ``terms`` is not."""
        def owner(name):
            return next(cls for cls in type(self).__mro__ if name in cls.__dict__)
        terms = owner("terms")
        return terms is not Kernel and all(issubclass(terms, owner(name)) for name in ("__call__", "shifted"))

    def log_affine_sum(self, pos, neg, mask, a, b):
        r"""``log(a + b * sum_j mask_bj * phi(t_bj - s_b))`` per row, from the scores.

        ``pos [B]``, ``neg [B, M]``, ``mask [B, M]`` bool or ``None`` (all count), ``a, b [B]``
        -> ``[B]``. The gaps are formed as ``neg + (offset - pos)`` (no [B, M] negation in the
        backward); masked entries become -inf, where every kernel is 0 with zero gradient, even
        if the masked score itself is inf or NaN.
        """
        x = neg + (self.offset - pos).unsqueeze(1)
        if mask is not None:
            x.masked_fill_(~mask, float("-inf"))  # x is a fresh tensor: fill it in place
        return torch.log(a + b * self.shifted(x).sum(dim=1))

    def log_weighted_sum(self, pos, neg, mask, log_a, log_w):
        r"""``log(e^{log_a_b} + sum_j mask_bj * phi(t_bj - s_b) * e^{log_w_bj})`` per row.

        ``log_a [B]``, ``log_w [B, M]`` (or ``[1, M]``) -> ``[B]``. The weights are scaled by
        their row maximum c_b (``e^{log_w - c_b} <= 1``) and ``log a`` joined by ``logaddexp``,
        so neither a weight of e^200 nor one of e^-200 leaves the float range; a row whose terms
        are all 0 is ``log a`` with a zero gradient.
        """
        x = neg + (self.offset - pos).unsqueeze(1)
        log_w = log_w.expand_as(x)
        if mask is not None:
            x = x.masked_fill(~mask, float("-inf"))
            log_w = log_w.masked_fill(~mask, float("-inf"))
        top = log_w.detach().amax(dim=1, keepdim=True)
        top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))  # a row with no valid term
        total = (self.shifted(x) * torch.exp(log_w - top)).sum(dim=1)
        positive = total > 0
        log_total = torch.where(positive, torch.log(torch.where(positive, total, torch.ones_like(total))),
                                torch.full_like(total, float("-inf")))
        return torch.logaddexp(log_a, top.squeeze(1) + log_total)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.options)
        return f"{type(self).__name__}({args})"

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and all(
            getattr(self, k) == getattr(other, k) for k in self.options)

    def __hash__(self) -> int:
        return hash((type(self), tuple(getattr(self, k) for k in self.options)))


class Sigmoid(Kernel):
    r"""phi(g) = 1 / (1 + e^{-g}); bounded, the closest smooth rank (paper's phi_1)."""

    name = "sigmoid"

    def __call__(self, gaps):
        return torch.sigmoid(gaps)

    def terms(self, x):
        # From e = exp(-|x|) in (0, 1]: no overflow, and the expressions the softplus kernel
        # uses, so that a Lambda pair of the two computes them once.
        e = torch.exp(-x.abs())
        r = 1.0 / (1.0 + e)
        return torch.where(x >= 0, r, e * r), e * r * r  # sigmoid, e^-|x| / (1 + e^-|x|)^2


def _log1p_over_x(e: np.ndarray) -> np.ndarray:
    safe = np.where(e > 0, e, 1.0)
    return np.where(e > 0, np.log1p(safe) / safe, 1.0)


#: ``log1p(e) ~= e * sum_k C_k e^k`` on ``[0, 1]``: the Chebyshev interpolant of degree 9 of
#: ``log1p(e) / e``, within about 1.6e-7 relative in float32 arithmetic (torch.log1p's float32:
#: about 1.9e-7), and cheaper in a compiled loop (the fused softplus forward at B=512, M=5120:
#: 3.4 ms against 5.6 ms with torch.log1p, one CPU thread).
LOG1P_COEFFICIENTS = tuple(float(c) for c in Chebyshev.interpolate(
    _log1p_over_x, 9, domain=[0, 1]).convert(kind=Polynomial).coef)


def log1p_unit(e: torch.Tensor) -> torch.Tensor:
    """``log1p(e)`` for ``e`` in ``[0, 1]``: :data:`LOG1P_COEFFICIENTS` in float32, and
    ``torch.log1p`` in float64, whose 53 bits the polynomial does not reach."""
    if e.dtype == torch.float64:
        return torch.log1p(e)
    total = LOG1P_COEFFICIENTS[-1]
    for coefficient in LOG1P_COEFFICIENTS[-2::-1]:  # Horner
        total = total * e + coefficient
    return e * total


class Softplus(Kernel):
    r"""phi(g) = log(1 + e^g); convex, grows linearly (the paper's best phi on Amazon Books)."""

    name = "softplus"

    def __call__(self, gaps):
        return F.softplus(gaps)

    def terms(self, x):
        e = torch.exp(-x.abs())
        r = 1.0 / (1.0 + e)
        return torch.relu(x) + log1p_unit(e), torch.where(x >= 0, r, e * r)  # softplus, sigmoid


class Exponential(Kernel):
    r"""phi(g) = e^g. With alpha = 1 and the exact rank, CROLoss is softmax cross-entropy.

    ``log(a + b * sum_j e^{g_j})`` through the fused cross-entropy (log-sum-exp): finite for
    any finite scores.
    """

    name = "exp"
    exponential = True

    def __call__(self, gaps):
        return torch.exp(gaps)

    def terms(self, x):
        # The fused engine subtracts each row's largest gap (at least 0) first: no overflow.
        e = torch.exp(x)
        return e, e

    def log_affine_sum(self, pos, neg, mask, a, b):
        # log(a + b sum_j e^{t_j - s}) = log a + CE([s + log(a/b), t_1..t_M], target 0): the
        # fused log-softmax kernel. Column 0 is finite, so a row whose negatives are all masked
        # (-inf) stays finite with zero gradient; b = 0 (|I| = 1, unbiased) is clamped to tiny.
        if mask is not None:
            neg = neg.masked_fill(~mask, float("-inf"))
        log_a = a.log()
        first = pos + (log_a - b.clamp(min=torch.finfo(b.dtype).tiny).log())
        logits = torch.cat([first.unsqueeze(1), neg], dim=1)
        target = torch.zeros(pos.shape[0], dtype=torch.long, device=pos.device)
        return log_a + F.cross_entropy(logits, target, reduction="none")

    def log_weighted_sum(self, pos, neg, mask, log_a, log_w):
        # log(a + sum_j w_j e^{t_j - s}) = logsumexp([log a, t_j - s + log w_j]): the sampled
        # softmax with its logits corrected by log w = -log(M q); column 0 is finite.
        logits = neg - pos.unsqueeze(1) + log_w
        if mask is not None:
            logits = logits.masked_fill(~mask, float("-inf"))
        return torch.logsumexp(torch.cat([log_a.unsqueeze(1), logits], dim=1), dim=1)


def check_margin(margin) -> float:
    """The hinge margin as a float; a finite number >= 0, else :class:`ConfigError`."""
    try:
        value = float(margin)
    except (TypeError, ValueError):
        value = float("nan")
    if not (0 <= value < float("inf")):
        raise ConfigError("margin", margin, "the hinge margin must be a finite number >= 0")
    return value


class Hinge(Kernel):
    r"""phi(g) = max(0, g + m) with margin m (paper: m = 5). With alpha = 0: the triplet loss."""

    name = "hinge"
    options = ("margin",)

    def __init__(self, margin: float = 5.0):
        self.margin = check_margin(margin)

    def __call__(self, gaps):
        return torch.relu(gaps + self.margin)

    @property
    def offset(self):
        return self.margin

    def shifted(self, x):
        return torch.relu(x)

    def terms(self, x):
        return torch.relu(x), (x > 0).to(x.dtype)  # relu's gradient: 0 at the kink


class Step(Kernel):
    r"""psi(g) = 1 if g >= 0 else 0: the hard rank. No gradient: only for the Lambda method's
    phi_1 and for diagnostics."""

    name = "step"
    differentiable = False

    def __call__(self, gaps):
        return (gaps >= 0).to(gaps.dtype)

    def terms(self, x):
        return (x >= 0).to(x.dtype), None


#: Name -> kernel class: the kernels the key ``kernel`` (and ``lambda_kernel``) can name.
KERNELS: dict[str, type[Kernel]] = {k.name: k for k in (Sigmoid, Softplus, Exponential, Hinge, Step)}


def register_kernel(cls: type[Kernel]) -> type[Kernel]:
    """Make a :class:`Kernel` subclass nameable by ``kernel``/``lambda_kernel`` (usable as a
    class decorator). Its ``name`` must be new: a built-in kernel is never replaced."""
    if not (isinstance(cls, type) and issubclass(cls, Kernel)) or not cls.name:
        raise TypeError(f"register_kernel takes a Kernel subclass with a name; got {cls!r}")
    if cls.name in KERNELS and KERNELS[cls.name] is not cls:
        raise ValueError(f"a kernel named {cls.name!r} is already registered ({KERNELS[cls.name].__name__})")
    KERNELS[cls.name] = cls
    return cls


def get_kernel(kernel: str | Kernel, key: str = "kernel", **options) -> Kernel:
    """A kernel from its name (or a ready :class:`Kernel`, returned as is).

    ``options`` (e.g. ``margin``) are passed to the kernels that take them and ignored by the
    others. ``key`` names the setting in error messages.
    """
    if isinstance(kernel, Kernel):
        return kernel
    cls = KERNELS.get(kernel) if isinstance(kernel, str) else None
    if cls is None:
        raise ConfigError(key, kernel, KERNELS)
    return cls(**{k: v for k, v in options.items() if k in cls.options and v is not None})
