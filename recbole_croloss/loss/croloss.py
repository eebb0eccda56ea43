r"""CROLoss and its Lambda method (paper eq. 16, 21-24), a pure function of scores.

For row b with positive score ``s_b`` and negative scores ``t_bj`` (valid where ``mask_bj``):

    g_bj   = t_bj - s_b                                  gaps,            [B, M]
    R_b    = a_b + b_b * sum_j mask_bj * phi(g_bj)       rank estimate,   [B]  (see estimators)
    plain  : loss = mean_b  L * W_alpha(R_b)                                  (L = log(|I| + 1))
    Lambda : loss = mean_b  SG(L * w_alpha(R_b^{phi_1})) * R_b^{phi_2}

The mean runs over rows with at least one valid negative. With ``neg_log_q`` (negatives drawn
from a proposal other than uniform, :mod:`.estimators`) each term of R_b is weighted by
``1 / (M_b q_bj)``, summed in log space (log-sum-exp of ``log phi - log q``). With phi_1 = phi_2 the Lambda
gradient equals the plain one (d/dR of L W_alpha(R) is L w_alpha(R)). Every quantity is
computed from ``log R`` (log-sum-exp for the exponential kernel), so the loss and its gradient
are finite wherever the loss itself is; where it is not (the exponential kernel with alpha < 1,
or as phi_2 of the Lambda method, at gaps of hundreds), :class:`LossOverflowError` says so, and
a NaN or infinite score that counts raises :class:`NonFiniteScoreError`: a non-finite loss is
never returned. float16 and bfloat16 scores are computed in float32 (the loss is float32; the
gradients flow back in the scores' dtype).
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from .estimators import RankEstimator, get_rank_estimator
from .fused import FusedLoss, log_affine, row_sums
from .kernels import Kernel, check_margin, get_kernel
from .weights import PowerRankWeight


class LossOverflowError(FloatingPointError):
    """The loss value exceeds the floating-point range (not a bug of the computation)."""


class NonFiniteScoreError(ValueError):
    """A score that counts (not masked out) is NaN or infinite: the loss would be NaN."""


class NonFiniteLossError(FloatingPointError):
    """The loss is NaN although every score is finite (a kernel returned NaN)."""


#: ``engine`` (the key ``loss_engine``): plain autograd, or the compiled one-pass kernels.
ENGINES = ("eager", "fused")


def _with_loss(value: float, error: Exception) -> Exception:
    error.loss = value  # the non-finite loss value, for a caller's report
    return error


#: Score dtypes the loss is computed in float32 from: at catalogue sizes of 10^5 and more,
#: float16 rounds the rank weights' gradients of most positives to exactly 0.
LOW_PRECISION = (torch.float16, torch.bfloat16)


def _check_tensors(pos_score, neg_score, neg_mask, neg_log_q=None) -> None:
    """Tensors of real scores on one device: anything else fails deep in the kernels, with
    torch's words for a subtraction or a device it did not expect."""
    named = {"pos_score": pos_score, "neg_score": neg_score, "neg_mask": neg_mask, "neg_log_q": neg_log_q}
    for name, value in named.items():
        if value is not None and not isinstance(value, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor; got {type(value).__name__}")
    for name in ("pos_score", "neg_score", "neg_log_q"):
        if named[name] is not None and (named[name].dtype == torch.bool or named[name].is_complex()):
            raise TypeError(f"{name} must hold real numbers (e.g. float32); got {named[name].dtype}")
    devices = {name: value.device for name, value in named.items() if value is not None}
    if len(set(devices.values())) > 1:
        raise ValueError("pos_score, neg_score and neg_mask must be on one device; got "
                         + ", ".join(f"{name} on {device}" for name, device in devices.items()))


def check_scores(pos_score: torch.Tensor, neg_score: torch.Tensor, neg_mask, neg_log_q=None) -> None:
    """The loss inputs' types, shapes and devices (``[B]``, ``[B, M]``, bool ``[B, M]``, ``[M]``
    or ``[B, M]``), each named where it is wrong."""
    _check_tensors(pos_score, neg_score, neg_mask, neg_log_q)
    if pos_score.dim() != 1:
        raise ValueError(f"pos_score must have shape [B]; got {tuple(pos_score.shape)}")
    if pos_score.shape[0] == 0:
        raise ValueError("pos_score has no positives (B = 0); the loss is undefined")
    if neg_score.dim() != 2 or neg_score.shape[0] != pos_score.shape[0]:
        raise ValueError(
            f"neg_score must have shape [B, M] with B = {pos_score.shape[0]} (from pos_score); "
            f"got {tuple(neg_score.shape)}")
    if neg_score.shape[1] == 0:
        raise ValueError("neg_score has no negatives (M = 0)")
    if neg_mask is not None:
        if neg_mask.shape != neg_score.shape:
            raise ValueError(
                f"neg_mask must have the shape of neg_score {tuple(neg_score.shape)}; "
                f"got {tuple(neg_mask.shape)}")
        if neg_mask.dtype != torch.bool:
            raise ValueError(f"neg_mask must be a bool tensor; got {neg_mask.dtype}")
    if neg_log_q is not None and neg_log_q.shape not in (neg_score.shape[1:], neg_score.shape):
        raise ValueError(f"neg_log_q must have shape [M] = {tuple(neg_score.shape[1:])} or [B, M] = "
                         f"{tuple(neg_score.shape)}; got {tuple(neg_log_q.shape)}")


def resolve_kernels(kernel: str | Kernel, lambda_kernel: str | Kernel | None,
                    margin: float) -> tuple[Kernel, Kernel | None]:
    """``(phi_2, phi_1 or None)`` from names or kernels, checked: phi_2 must have a gradient
    (``step`` is allowed only as ``lambda_kernel``); the margin is checked whatever the kernel."""
    margin = check_margin(margin)
    phi = get_kernel(kernel, "kernel", margin=margin)
    if not phi.differentiable:
        raise ConfigError("kernel", phi.name, "it has no gradient; use it only as lambda_kernel (phi_1)")
    phi_1 = None if lambda_kernel is None else get_kernel(lambda_kernel, "lambda_kernel", margin=margin)
    return phi, phi_1


class CROLoss(nn.Module):
    r"""Customizable Recall@N Optimization Loss.

    Args:
        kernel: phi (phi_2 for the Lambda method): ``sigmoid | softplus | exp | hinge`` or a
            :class:`Kernel`. ``step`` has no gradient and is refused here.
        alpha: weight exponent >= 0; larger alpha optimises Recall@N at smaller N.
        n_items: |I|, the catalogue size the rank is estimated over (an integer >= 2; required).
        lambda_kernel: phi_1 of the Lambda method (``step`` allowed); ``None`` for plain CROLoss.
        margin: m of the hinge kernel.
        rank_estimator: ``paper`` (eq. 24) or ``unbiased``.
        engine: ``eager`` (plain autograd, the reference) or ``fused`` (one compiled pass over
            ``[B, M]`` forward and one backward, :mod:`.fused`; same values and gradients; the
            eager engine computes kernels without :meth:`Kernel.terms`, importance-weighted (``neg_log_q``) losses and wherever compiling fails).

    ``forward(pos_score [B], neg_score [B, M], neg_mask bool [B, M] | None,
    neg_log_q [M] | [B, M] | None) -> scalar``; ``neg_log_q`` is the log-probability of each
    negative under the proposal it was drawn from, over the row's other items (``None``: uniform).
    """

    def __init__(self, kernel: str | Kernel = "softplus", alpha: float = 1.0, n_items: int | None = None,
                 lambda_kernel: str | Kernel | None = None, margin: float = 5.0,
                 rank_estimator: str | RankEstimator = "paper", engine: str = "eager"):
        super().__init__()
        self.kernel, self.lambda_kernel = resolve_kernels(kernel, lambda_kernel, margin)
        self.weight = PowerRankWeight(alpha, n_items)
        self.estimator = get_rank_estimator(rank_estimator)
        if engine not in ENGINES:
            raise ConfigError("loss_engine", engine, ENGINES)
        self.engine = engine
        kernels = [k for k in (self.kernel, self.lambda_kernel) if k is not None]
        self._fused = FusedLoss(type(self)._fused_body, self) if (
            engine == "fused" and all(k.fusable for k in kernels)) else None
        # Only these settings can push the loss past the float range; the check costs a sync.
        if self.lambda_kernel is None:
            self._may_overflow = self.kernel.exponential and self.alpha < 1
        else:
            self._may_overflow = self.kernel.exponential and not (
                self.lambda_kernel.exponential and self.alpha >= 1)

    @property
    def alpha(self) -> float:
        return self.weight.alpha

    @property
    def n_items(self) -> int:
        return self.weight.n_items

    def log_rank(self, kernel: Kernel, pos, neg, mask, n_valid, log_q=None) -> torch.Tensor:
        """``log R_hat`` per row ``[B]`` for ``kernel`` from the scores (``mask`` False = skip),
        importance-weighted by ``log_q`` where given."""
        if log_q is None:
            a, b = self.estimator.coefficients(self.n_items, n_valid)
            return kernel.log_affine_sum(pos, neg, mask, a, b)
        log_a, log_w = self.estimator.log_weights(self.n_items, n_valid, log_q)
        return kernel.log_weighted_sum(pos, neg, mask, log_a, log_w)

    def forward(self, pos_score: torch.Tensor, neg_score: torch.Tensor,
                neg_mask: torch.Tensor | None = None, neg_log_q: torch.Tensor | None = None) -> torch.Tensor:
        check_scores(pos_score, neg_score, neg_mask, neg_log_q)
        if pos_score.dtype in LOW_PRECISION or neg_score.dtype in LOW_PRECISION:
            pos_score, neg_score = pos_score.float(), neg_score.float()
        outputs = None
        # The fused pass sums uniform draws only; importance weights (log q) take the eager path.
        if neg_log_q is None and self._fused is not None and self._fused.available:
            outputs = self._fused(pos_score, neg_score, neg_mask)  # None: it failed to compile
        if outputs is None:
            outputs = self._eager_loss(pos_score, neg_score, neg_mask, neg_log_q)
        loss, n_rows = outputs[:2]  # the fused engine's kept slopes (outputs[2]) go with `outputs`
        # One scalar read per call (RecBole reads the loss per batch anyway): a non-finite loss
        # is never returned, it is explained.
        if not bool(torch.isfinite(loss)):
            if n_rows is not None and not bool(n_rows):
                raise ValueError("no row of neg_mask has a valid negative; the loss is undefined")
            raise self._non_finite(float(loss.detach()), pos_score.detach(), neg_score.detach(), neg_mask, neg_log_q)
        return loss

    def _reduce(self, log_r, log_r1, rows, n_rows) -> torch.Tensor:
        """The loss from ``log R`` of phi (and of phi_1, Lambda method) over the valid ``rows``
        (None: every row), both engines alike."""
        if self.lambda_kernel is None:
            per_row = self.weight.scaled_cdf(log_r)
        else:
            per_row = torch.exp(self.weight.log_scaled_density(log_r1) + log_r)
        if rows is not None:
            per_row = per_row.masked_fill(~rows, 0.0)
        return per_row.sum() / (log_r.shape[0] if n_rows is None else n_rows)

    def _eager_loss(self, pos_score, neg_score, neg_mask, neg_log_q=None):
        """``(loss, number of valid rows or None without a mask)`` by plain autograd."""
        rows = n_rows = None
        if neg_mask is None:
            n_valid = torch.full_like(pos_score, neg_score.shape[1])
        else:
            n_valid_int = neg_mask.sum(dim=1)
            rows = n_valid_int > 0
            n_rows = rows.sum()
            n_valid = n_valid_int.clamp(min=1).to(pos_score.dtype)
        log_r = self.log_rank(self.kernel, pos_score, neg_score, neg_mask, n_valid, neg_log_q)
        log_r1 = None
        if self.lambda_kernel is not None:
            with torch.no_grad():
                log_r1 = self.log_rank(self.lambda_kernel, pos_score, neg_score, neg_mask, n_valid, neg_log_q)
        return self._reduce(log_r, log_r1, rows, n_rows), n_rows

    def _fused_body(self, pos_score, neg_score, neg_mask):
        """:meth:`_eager_loss` from the fused row sums (compiled by :class:`FusedLoss`), and the
        kept slopes."""
        sums = row_sums(pos_score, neg_score, neg_mask, self.kernel, self.lambda_kernel)
        rows = n_rows = None
        if sums["count"] is None:
            n_valid = torch.full_like(pos_score, neg_score.shape[1])
        else:
            rows = sums["count"] > 0
            n_rows = rows.sum()
            n_valid = sums["count"].clamp(min=1).to(pos_score.dtype)
        a, b = self.estimator.coefficients(self.n_items, n_valid)
        log_r = log_affine(a, b, sums["total"], sums["shift"])
        log_r1 = None if self.lambda_kernel is None else log_affine(a, b, sums["total_1"], sums["shift_1"])
        return self._reduce(log_r, log_r1, rows, n_rows), n_rows, sums["slope"]

    def _non_finite(self, value: float, pos_score, neg_score, neg_mask, neg_log_q=None) -> ArithmeticError | ValueError:
        """The error that explains a non-finite loss ``value``: :class:`NonFiniteScoreError`
        naming the scores (or log q) that are not finite, :class:`LossOverflowError` when finite
        scores overflow it, or :class:`NonFiniteLossError` (a kernel gave NaN). Each carries ``loss``."""
        if neg_log_q is not None:
            bad_q = ~torch.isfinite(neg_log_q.expand_as(neg_score))
            bad_q = bad_q if neg_mask is None else bad_q & neg_mask
            if bool(bad_q.any()):
                return _with_loss(value, NonFiniteScoreError(
                    f"CROLoss got neg_log_q that is NaN or infinite for {int(bad_q.sum())} valid negatives: "
                    "a negative drawn with probability 0 (log q = -inf) cannot be weighted by 1/q; the "
                    "sampler's proposal must give every negative it draws a probability > 0"))
        bad_pos = ~torch.isfinite(pos_score)
        bad_neg = ~torch.isfinite(neg_score) if neg_mask is None else ~torch.isfinite(neg_score) & neg_mask
        if bool(bad_pos.any()) or bool(bad_neg.any()):
            return _with_loss(value, NonFiniteScoreError(
                f"CROLoss got scores that are NaN or infinite: {int(bad_pos.sum())} of {len(pos_score)} "
                f"positive scores and {int(bad_neg.sum())} negative scores (masked ones do not count). "
                "The model's vectors have diverged or overflowed: use a smaller learning_rate, or "
                "score=cosine to bound the scores."))
        if value != value:  # NaN from finite scores: no built-in kernel does that
            return _with_loss(value, NonFiniteLossError(
                f"CROLoss is NaN from finite scores: kernel {self.kernel!r} or lambda_kernel "
                f"{self.lambda_kernel!r} returned NaN"))
        gap = float((neg_score - pos_score.unsqueeze(1)).max())
        if self._may_overflow:
            return _with_loss(value, LossOverflowError(
                f"CROLoss overflowed: with kernel={self.kernel.name!r}, alpha={self.alpha} "
                f"(lambda_kernel={getattr(self.lambda_kernel, 'name', None)!r}) the loss grows like "
                f"exp(gap) and the gaps in this batch reach {gap:.4g}, "
                f"beyond the {neg_score.dtype} range. Use alpha >= 1, a bounded kernel "
                f"(sigmoid, softplus, hinge), or smaller scores (e.g. score=cosine with a smaller scale)."))
        return _with_loss(value, LossOverflowError(
            f"CROLoss overflowed: kernel={self.kernel.name!r}, alpha={self.alpha}, gaps up to {gap:.4g} in "
            f"{neg_score.dtype}; use smaller scores (e.g. score=cosine with a smaller scale)."))

    def extra_repr(self) -> str:
        lam = "" if self.lambda_kernel is None else f", lambda_kernel={self.lambda_kernel!r}"
        return (f"kernel={self.kernel!r}, alpha={self.alpha}, n_items={self.n_items}{lam}, "
                f"rank_estimator={self.estimator.name!r}, engine={self.engine!r}")


@torch.no_grad()
def hard_rank_percentile(pos_score: torch.Tensor, neg_score: torch.Tensor,
                         neg_mask: torch.Tensor | None = None) -> torch.Tensor:
    r"""Mean hard rank of the positives among their negatives, in percent (a logging diagnostic).

    ``100 * mean_b (sum_j mask_bj [t_bj >= s_b]) / M_b`` over rows with a valid negative:
    0 when every positive outscores all its negatives, 50 for random scores.
    """
    check_scores(pos_score, neg_score, neg_mask)
    above = neg_score >= pos_score.unsqueeze(1)
    if neg_mask is None:
        return above.float().mean() * 100.0
    n_valid = neg_mask.sum(dim=1)
    rows = n_valid > 0
    frac = (above & neg_mask).sum(dim=1).float() / n_valid.clamp(min=1)
    return frac[rows].mean() * 100.0
