"""Named loss presets: the one registry the YAML ``loss`` key maps to.

A preset pins some settings (``fixed``: e.g. ``bpr`` is softplus with alpha 0) and gives
defaults for the ones a user may change. Sampled softmax, BPR and triplet are CROLoss special
cases (paper section 3.5), so every preset trains on exactly the same negatives.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from ..errors import ConfigError
from .croloss import CROLoss

#: Settings a preset can fix or default (the CROLoss constructor's arguments but n_items).
LOSS_OPTIONS = ("kernel", "alpha", "lambda_kernel", "margin", "rank_estimator")


@dataclass(frozen=True)
class LossPreset:
    name: str
    description: str
    fixed: Mapping[str, object] = field(default_factory=dict)
    defaults: Mapping[str, object] = field(default_factory=dict)

    def settings(self, **options) -> dict:
        """The CROLoss arguments for this preset; ``None`` options take the preset's default.

        A value given for a fixed setting that disagrees with it is an error, not overridden.
        """
        unknown = set(options) - set(LOSS_OPTIONS)
        if unknown:
            raise ConfigError(sorted(unknown)[0], options[sorted(unknown)[0]], LOSS_OPTIONS)
        out = {"margin": 5.0, "rank_estimator": "paper", **self.defaults}
        for key, value in options.items():
            if value is None:
                continue
            if key in self.fixed and value != self.fixed[key]:
                raise ConfigError(key, value, f"loss={self.name!r} fixes {key}={self.fixed[key]!r} "
                                  f"({self.description}); leave {key} unset or use loss='croloss'")
            out[key] = value
        out.update(self.fixed)
        return out

    def build(self, n_items: int, **options) -> CROLoss:
        return CROLoss(n_items=n_items, **self.settings(**options))


PRESETS: Mapping[str, LossPreset] = MappingProxyType({p.name: p for p in (
    LossPreset("croloss", "CROLoss with kernel phi and weight exponent alpha",
               fixed={"lambda_kernel": None}, defaults={"kernel": "softplus", "alpha": 1.0}),
    LossPreset("croloss_lambda", "CROLoss, Lambda method: phi_1 = lambda_kernel, phi_2 = kernel",
               defaults={"kernel": "softplus", "lambda_kernel": "sigmoid", "alpha": 1.0}),
    LossPreset("sampled_softmax", "sampled softmax: exponential kernel, alpha 1",
               fixed={"kernel": "exp", "alpha": 1.0, "lambda_kernel": None}),
    LossPreset("bpr", "BPR summed over negatives: softplus kernel, alpha 0",
               fixed={"kernel": "softplus", "alpha": 0.0, "lambda_kernel": None}),
    LossPreset("triplet", "triplet loss: hinge kernel, alpha 0",
               fixed={"kernel": "hinge", "alpha": 0.0, "lambda_kernel": None}),
)})


def get_preset(name: str) -> LossPreset:
    preset = PRESETS.get(name) if isinstance(name, str) else None
    if preset is None:
        raise ConfigError("loss", name, PRESETS)
    return preset


def build_loss(name: str, n_items: int, **options) -> CROLoss:
    """``build_loss('croloss', n_items=1000, kernel='sigmoid', alpha=1.2)``."""
    return get_preset(name).build(n_items, **options)
