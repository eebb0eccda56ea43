r"""Binary cross-entropy on the shared negatives: the BCE and gBCE baselines.

For row b with positive score ``s_b`` and the scores ``t_bj`` of its ``M_b`` valid negatives,

    L_b  = -(1 / (M_b + 1)) [ beta_b log sigma(s_b) + sum_j log(1 - sigma(t_bj)) ]
         =  (1 / (M_b + 1)) [ beta_b softplus(-s_b) + sum_j softplus(t_bj) ]
    loss = mean of L_b over the rows with a valid negative,

the mean over the M_b + 1 labels of gSASRec's formulation. ``beta_b = 1`` is plain BCE; gBCE
raises the positive's probability to the power

    beta_b = alpha_b (t (1 - 1 / alpha_b) + 1 / alpha_b) = 1 + t (alpha_b - 1),
    alpha_b = M_b / (|I| - 1)   (the negative sampling rate),

with the calibration parameter t in [0, 1] (t = 0: BCE; t = 1: beta = alpha, the fully
calibrated model of gSASRec's theorem). The calibration is derived for uniform negatives, so
these losses read no log q. Computed with ``softplus`` (finite for any finite score); float16 and
bfloat16 scores in float32.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .croloss import LOW_PRECISION, NonFiniteScoreError, check_scores
from .weights import check_n_items


def check_t(value) -> float:
    """gBCE's calibration parameter t: a real number from 0 to 1."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and 0 <= value <= 1
    if not ok:
        raise ConfigError("gbce_t", value, "gBCE's calibration t, a number from 0 (plain BCE) to 1 "
                          "(beta = the sampling rate: fully calibrated)")
    return float(value)


class GeneralisedBCE(nn.Module):
    r"""gBCE (Petrov and Macdonald, "gSASRec: Reducing Overconfidence in Sequential
    Recommendation Trained with Negative Sampling", RecSys 2023); with ``t = 0`` the binary
    cross-entropy SASRec is trained with (Kang and McAuley, "Self-Attentive Sequential
    Recommendation", ICDM 2018), here over the batch's shared negatives.

    ``forward(pos_score [B], neg_score [B, M], neg_mask bool [B, M] | None) -> scalar``; the
    formula is in the module docstring.
    """

    #: The adapter passes no log q (the calibration assumes uniform negatives).
    reads_log_q = False

    def __init__(self, n_items: int, t: float = 0.0):
        super().__init__()
        self.n_items = check_n_items(n_items)
        self.t = check_t(t)

    def beta(self, n_valid: torch.Tensor) -> torch.Tensor:
        """``[B]``: ``1 + t (alpha_b - 1)`` with ``alpha_b = M_b / (|I| - 1)``."""
        return 1.0 + self.t * (n_valid / (self.n_items - 1) - 1.0)

    def forward(self, pos_score: torch.Tensor, neg_score: torch.Tensor,
                neg_mask: torch.Tensor | None = None, neg_log_q: torch.Tensor | None = None) -> torch.Tensor:
        if neg_log_q is not None:
            raise ValueError("binary cross-entropy takes no neg_log_q: its calibration assumes uniform negatives")
        check_scores(pos_score, neg_score, neg_mask)
        if pos_score.dtype in LOW_PRECISION or neg_score.dtype in LOW_PRECISION:
            pos_score, neg_score = pos_score.float(), neg_score.float()
        negative_terms = F.softplus(neg_score)
        if neg_mask is None:
            n_valid = torch.full_like(pos_score, neg_score.shape[1])
        else:
            negative_terms = negative_terms.masked_fill(~neg_mask, 0.0)
            n_valid = neg_mask.sum(dim=1).to(pos_score.dtype)
        rows = n_valid > 0
        if not bool(rows.any()):
            raise ValueError("no row of neg_mask has a valid negative; the loss is undefined")
        per_row = (self.beta(n_valid) * F.softplus(-pos_score) + negative_terms.sum(dim=1)) / (n_valid + 1)
        loss = per_row.masked_fill(~rows, 0.0).sum() / rows.sum()
        if not bool(torch.isfinite(loss)):
            raise NonFiniteScoreError(
                f"binary cross-entropy is {float(loss)}: some scores are NaN or infinite (or beyond the "
                f"{neg_score.dtype} range); use a smaller learning_rate, or score=cosine to bound them")
        return loss

    def extra_repr(self) -> str:
        return f"n_items={self.n_items}, t={self.t}"
