r"""The rank weight of CROLoss (paper eq. 12-13), for any real alpha >= 0.

``w_alpha(x) = x^{-alpha} / Z`` on ``[1, |I| + 1)``, normalised, with CDF

    W_alpha(x) = log(x) / L                                   if alpha = 1
    W_alpha(x) = (1 - x^{1-alpha}) / (1 - (|I|+1)^{1-alpha})  otherwise,     L = log(|I| + 1).

The loss uses the CDF scaled by L (the official code's normalisation: at alpha = 1 it reads
``log R``, the scale of cross-entropy, and it is continuous in alpha):

    L * W_alpha(x) = L * expm1((1-alpha) log x) / expm1((1-alpha) L)

and the Lambda method uses the scaled density ``L * w_alpha(x) = K_alpha * x^{-alpha}`` with
``K_alpha = L (1-alpha) / expm1((1-alpha) L)`` (``K_1 = 1``, so ``L w_1(x) = 1/x``).
Both are computed from ``log x`` so that huge ranks (exponential kernel) stay finite.
"""
from __future__ import annotations

import math

import torch

from ..errors import ConfigError


#: The largest catalogue: the rank estimate's coefficients are float64 counts.
MAX_ITEMS = 2 ** 53


def check_alpha(alpha) -> float:
    """``alpha`` as a float; a finite real number >= 0 (not a bool), else :class:`ConfigError`."""
    if isinstance(alpha, bool):
        raise ConfigError("alpha", alpha, "alpha must be a real number >= 0, not true/false")
    try:
        value = float(alpha)
    except (TypeError, ValueError):
        raise ConfigError("alpha", alpha, "alpha must be a real number >= 0") from None
    if not (value >= 0 and math.isfinite(value)):
        raise ConfigError("alpha", alpha, "alpha must be a real number >= 0")
    return value


def check_n_items(n_items) -> int:
    """The catalogue size |I|: an integer from 2 to 2**53, else :class:`ConfigError`."""
    if isinstance(n_items, bool) or not isinstance(n_items, int) or not 2 <= n_items <= MAX_ITEMS:
        raise ConfigError("n_items", n_items, "n_items must be an integer >= 2 (a catalogue of one item "
                          "has nothing to rank) and at most 2**53 (a float64 holds every count up to "
                          "there exactly)")
    return n_items


class PowerRankWeight:
    """``w_alpha`` for a catalogue of ``n_items`` items. Larger alpha favours small N."""

    def __init__(self, alpha: float, n_items: int):
        alpha = check_alpha(alpha)
        check_n_items(n_items)
        self.alpha, self.n_items = alpha, n_items
        self.log_catalogue = math.log(n_items + 1.0)  # L
        t = (1.0 - alpha) * self.log_catalogue
        # log K_alpha, computed in float64: log(L) + log((1 - alpha) / expm1((1 - alpha) L)).
        self.log_density_scale = 0.0 if t == 0 else math.log(self.log_catalogue * (1.0 - alpha) / math.expm1(t))
        self._denominator = math.expm1(t)

    def scaled_cdf(self, log_rank: torch.Tensor) -> torch.Tensor:
        r"""``L * W_alpha(R)`` from ``log R``: ``[B] -> [B]``."""
        if self.alpha == 1.0:
            return log_rank
        exponent = (1.0 - self.alpha) * log_rank
        value = torch.expm1(exponent)
        if self.alpha > 1.0:
            # Autograd's expm1 backward forms expm1(t) + 1, which rounds to 0 once R^(1 - alpha)
            # falls below the dtype's epsilon (huge ranks or importance weights) and would stop
            # the gradient; its exact slope is exp(t), which cannot overflow for t <= 0.
            slope = torch.exp(exponent)
            value = value.detach() + (slope - slope.detach())
        return value * (self.log_catalogue / self._denominator)

    def log_scaled_density(self, log_rank: torch.Tensor) -> torch.Tensor:
        r"""``log(L * w_alpha(R)) = log K_alpha - alpha * log R``: ``[B] -> [B]``."""
        return self.log_density_scale - self.alpha * log_rank

    def __repr__(self) -> str:
        return f"PowerRankWeight(alpha={self.alpha}, n_items={self.n_items})"
