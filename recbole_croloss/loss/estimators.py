r"""Rank estimators: the rank of the positive among all |I| items from M sampled negatives.

Both have the affine form ``R_hat = a + b * sum_j phi(g_j)`` over the M valid negatives of a row:

- ``paper`` (eq. 24): ``R_hat = (|I| / M) (1 + sum_j phi(g_j))``, i.e. ``a = b = |I| / M``;
- ``unbiased``: ``R_hat = 1 + ((|I| - 1) / M) sum_j phi(g_j)``, i.e. ``a = 1, b = (|I|-1)/M``.
  With every other item once as a negative (M = |I| - 1) it is the exact rank of eq. 15.

The paper's estimate is at least ``|I| / M`` (every phi 0). With more negatives than items
(``M > |I|``, sampling with replacement, as ml-100k's default M = 2560 > 1,682 items does) that
floor is below 1, so the loss value can be negative; the gradient is still that of eq. 24 (the
weight ``w_alpha(R) = R**-alpha`` is positive for every R > 0), and the run's log states the
floor. ``unbiased`` never falls below 1.

``M`` counts the valid negatives of each row (``neg_mask``), so padding and accidental hits do
not shift the estimate.

**Importance weights.** Negatives drawn from a proposal other than uniform come with ``log q_bj``
(``[M]`` or ``[B, M]``): the probability of negative j under the distribution row b's valid
negatives were drawn from, over the row's other items. Each term is then weighted by
``1 / (M q_bj)`` in place of the uniform ``(|I| - 1) / M``:

- ``unbiased``: ``R_hat = 1 + (1 / M) sum_j phi(g_j) / q_j``, unbiased for
  ``1 + sum_{i != pos} phi(g_i)`` whatever the proposal (so long as q > 0 wherever phi is);
- ``paper``: ``R_hat = |I| / M + (1 / M) sum_j phi(g_j) / q_j``, eq. 24 with its sum re-weighted.

With q uniform over the other items (``log q = -log(|I| - 1)``) the first is exactly the uniform
``unbiased``; with q = 1 / |I| (eq. 24's view: draws over all |I| items) the second is exactly
``paper``. :meth:`RankEstimator.log_weights` gives ``log a`` and the per-term ``log w`` of
``R_hat = a + sum_j w_bj phi(g_bj)``, so the kernels sum in log space.
"""
from __future__ import annotations

import torch

from ..errors import ConfigError


class RankEstimator:
    name: str = ""

    def coefficients(self, n_items: int, n_valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(a, b)`` per row, each ``[B]``, from the number of valid negatives ``n_valid`` ``[B]``."""
        raise NotImplementedError  # pragma: no cover

    def log_weights(self, n_items: int, n_valid: torch.Tensor,
                    neg_log_q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(log a [B], log w [B, M])`` with ``w_bj = 1 / (M_b q_bj)``, from ``n_valid [B]`` and
        ``neg_log_q`` (``[M]`` or ``[B, M]``); ``a`` as :meth:`coefficients` gives it."""
        a, _ = self.coefficients(n_items, n_valid)
        log_m = n_valid.log().unsqueeze(1)
        return a.log(), -(log_m + neg_log_q.to(n_valid.dtype))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __eq__(self, other) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))


class PaperEstimator(RankEstimator):
    """``(|I| / M) * (1 + sum phi)``: the paper's eq. 24 (biased upwards by |I|/M at the top)."""

    name = "paper"

    def coefficients(self, n_items, n_valid):
        a = n_items / n_valid
        return a, a


class UnbiasedEstimator(RankEstimator):
    """``1 + ((|I| - 1) / M) * sum phi``: unbiased for uniform negatives, exact when M = |I| - 1."""

    name = "unbiased"

    def coefficients(self, n_items, n_valid):
        return torch.ones_like(n_valid), (n_items - 1) / n_valid


ESTIMATORS: dict[str, type[RankEstimator]] = {e.name: e for e in (PaperEstimator, UnbiasedEstimator)}


def get_rank_estimator(estimator: str | RankEstimator) -> RankEstimator:
    """An estimator from its name (or a ready :class:`RankEstimator`, returned as is)."""
    if isinstance(estimator, RankEstimator):
        return estimator
    cls = ESTIMATORS.get(estimator) if isinstance(estimator, str) else None
    if cls is None:
        raise ConfigError("rank_estimator", estimator, ESTIMATORS)
    return cls()
