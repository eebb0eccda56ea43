"""CROLoss in pure PyTorch: kernels, rank weights, rank estimators, the loss and its presets
(the binary cross-entropy baselines among them).

Imports torch only (no RecBole), so it can be used in any training loop::

    from recbole_croloss.loss import CROLoss
    loss_fn = CROLoss(kernel="softplus", alpha=1.2, n_items=313966)
    loss = loss_fn(pos_score, neg_score)          # [B], [B, M] -> scalar
"""
from .croloss import ENGINES, CROLoss, LossOverflowError, check_scores, NonFiniteLossError, NonFiniteScoreError, hard_rank_percentile, resolve_kernels
from .estimators import ESTIMATORS, PaperEstimator, RankEstimator, UnbiasedEstimator, get_rank_estimator
from .kernels import KERNELS, Exponential, Hinge, Kernel, Sigmoid, Softplus, Step, get_kernel, register_kernel
from .binary import GeneralisedBCE, check_t
from .presets import (LOSS_OPTIONS, PRESETS, BinaryLossSettings, BinaryPreset, LossPreset, LossSettings, build_loss,
                      get_preset, loss_keys, register_preset)
from .weights import PowerRankWeight, check_alpha

__all__ = [
    "ENGINES", "CROLoss", "LossOverflowError", "check_scores", "NonFiniteLossError", "NonFiniteScoreError", "hard_rank_percentile", "resolve_kernels",
    "ESTIMATORS", "RankEstimator", "PaperEstimator", "UnbiasedEstimator", "get_rank_estimator",
    "KERNELS", "Kernel", "Sigmoid", "Softplus", "Exponential", "Hinge", "Step", "get_kernel", "register_kernel",
    "GeneralisedBCE", "check_t",
    "LOSS_OPTIONS", "PRESETS", "BinaryLossSettings", "BinaryPreset", "LossPreset", "LossSettings", "build_loss",
    "get_preset", "loss_keys", "register_preset",
    "PowerRankWeight", "check_alpha",
]
