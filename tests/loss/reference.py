"""An independent float64 reference for CROLoss, written from the paper's formulas (DESIGN.md
section 1) with a loop over rows; it calls nothing from :mod:`recbole_croloss`.

The rank is kept as ``log R`` and each kernel written in a form that stays finite in float64
(the exponential kernel's sum as a log-sum-exp), so the same reference gives the loss and its
gradient for gaps of 1e-3 and of 1e4, with importance weights of e^300 (``log_q``), and the
limit the loss tends to for infinite scores.
"""
from __future__ import annotations

import math

import torch

MARGIN = 1.0  # small hinge margin, so that some hinge terms are exactly 0


def ref_phi(kernel, g, margin=MARGIN):
    """phi(g) elementwise in float64, with no overflow or NaN on the way for any g (+-inf too)."""
    if kernel == "sigmoid":
        up, down = torch.where(g >= 0, g, 0.0), torch.where(g < 0, g, 0.0)  # no exp of a large gap
        return torch.where(g >= 0, 1.0 / (1.0 + torch.exp(-up)), torch.exp(down) / (1.0 + torch.exp(down)))
    if kernel == "softplus":
        return torch.logaddexp(g, torch.zeros_like(g))  # log(1 + e^g)
    if kernel == "exp":
        return torch.exp(g)
    if kernel == "hinge":
        return torch.clamp(g + margin, min=0.0)
    if kernel == "step":
        return (g >= 0).to(torch.float64)
    raise AssertionError(kernel)


def ref_log_ranks(kernel, pos, neg, mask, n_items, estimator, margin=MARGIN, log_q=None):
    """log R_hat of every row with >= 1 valid negative (rows without one are skipped).

    ``R_hat = a + sum_j w_j phi(g_j)``: paper (eq. 24) ``a = |I| / M``, unbiased ``a = 1``;
    ``w_j = b`` (``|I| / M`` or ``(|I| - 1) / M``) or, with ``log_q``, ``1 / (M q_j)``.
    """
    log_ranks = []
    for b in range(pos.shape[0]):
        valid = [j for j in range(neg.shape[1]) if mask is None or bool(mask[b, j])]
        if not valid:
            continue
        m = len(valid)
        gaps = torch.stack([neg[b, j] - pos[b] for j in valid])
        if estimator not in ("paper", "unbiased"):
            raise AssertionError(estimator)
        a = n_items / m if estimator == "paper" else 1.0
        if log_q is None:
            log_w = torch.full((m,), math.log((n_items if estimator == "paper" else n_items - 1) / m),
                               dtype=torch.float64)
        else:
            row_q = log_q if log_q.dim() == 1 else log_q[b]
            log_w = -math.log(m) - torch.stack([row_q[j] for j in valid]).double()
        if kernel == "exp":  # log(a + sum_j e^{g_j + log w_j})
            log_ranks.append(torch.logaddexp(torch.tensor(math.log(a), dtype=torch.float64),
                                             torch.logsumexp(gaps + log_w, dim=0)))
        else:
            log_ranks.append(torch.log(a + (ref_phi(kernel, gaps, margin) * torch.exp(log_w)).sum()))
    return log_ranks


def ref_ranks(kernel, pos, neg, mask, n_items, estimator, margin=MARGIN):
    """R_hat of every row with >= 1 valid negative."""
    return [r.exp() for r in ref_log_ranks(kernel, pos, neg, mask, n_items, estimator, margin)]


def ref_scaled_cdf(log_x, alpha, n_items):
    """log(N+1) * W_alpha(x) from log x, eq. 13 (x^(1-alpha) = e^{(1-alpha) log x})."""
    big_l = math.log(n_items + 1)
    if alpha == 1:
        return big_l * log_x / big_l
    return big_l * (1.0 - torch.exp((1.0 - alpha) * log_x)) / (1.0 - (n_items + 1) ** (1.0 - alpha))


def ref_density_scale(alpha, n_items):
    """K_alpha: log(N+1) * w_alpha(x) = K_alpha x^-alpha."""
    if alpha == 1:
        return 1.0
    big_l = math.log(n_items + 1)
    return (1.0 - alpha) * big_l / ((n_items + 1) ** (1.0 - alpha) - 1.0)


def ref_scaled_density(log_x, alpha, n_items):
    """log(N+1) * w_alpha(x) from log x."""
    return ref_density_scale(alpha, n_items) * torch.exp(-alpha * log_x)


def ref_loss(pos, neg, mask, kernel, alpha, n_items, estimator, lambda_kernel=None, margin=MARGIN, log_q=None):
    """Plain: mean_b L W_alpha(R_b); Lambda: mean_b SG(L w_alpha(R1_b)) R_b."""
    log_ranks = ref_log_ranks(kernel, pos, neg, mask, n_items, estimator, margin, log_q)
    if lambda_kernel is None:
        terms = [ref_scaled_cdf(r, alpha, n_items) for r in log_ranks]
    else:
        log_ranks1 = ref_log_ranks(lambda_kernel, pos.detach(), neg.detach(), mask, n_items, estimator, margin, log_q)
        # K R2 R1^-alpha as one exponential: R2 may be e^20000 where R1^-alpha is e^-20000
        terms = [ref_density_scale(alpha, n_items) * torch.exp(r2 - alpha * r1.detach())
                 for r1, r2 in zip(log_ranks1, log_ranks)]
    return sum(terms) / len(terms)


def ref_value_and_grads(pos, neg, mask, **kw):
    """``(loss, d loss / d pos, d loss / d neg)`` of :func:`ref_loss` in float64."""
    p = pos.detach().double().requires_grad_()
    n = neg.detach().double().requires_grad_()
    loss = ref_loss(p, n, mask, **kw)
    gp, gn = torch.autograd.grad(loss, (p, n))
    return loss.detach(), gp, gn


def assert_gradient_close(got, want, rtol):
    """``got`` (any float dtype) within ``rtol`` of the float64 ``want``, plus ``rtol`` of the
    largest entry and the smallest normal float of ``got``'s dtype (float64 entries below it
    cannot be matched)."""
    floor = rtol * float(want.abs().max()) + torch.finfo(got.dtype).tiny
    excess = (got.double() - want).abs() - (rtol * want.abs() + floor)
    assert bool((excess <= 0).all()), f"gradient off the reference by up to {float(excess.max()):.3g} beyond tolerance"
