"""Named loss presets: the one registry the YAML ``loss`` key maps to.

A preset pins some settings (``fixed``: e.g. ``bpr`` is softplus with alpha 0) and gives
defaults for the ones a user may change. Sampled softmax, BPR and triplet are CROLoss special
cases (paper section 3.5), so every preset trains on exactly the same negatives.

``preset.resolve(**options)`` checks every setting and returns :class:`LossSettings` (the
kernels, alpha, estimator as objects, no catalogue size yet); ``settings.build(n_items)`` is the
loss. :func:`register_preset` adds a preset of the user's own.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from ..errors import ConfigError
from .croloss import CROLoss, resolve_kernels
from .estimators import RankEstimator, get_rank_estimator
from .kernels import Kernel
from .weights import check_alpha

#: Settings a preset can fix or default (the CROLoss constructor's arguments but n_items).
LOSS_OPTIONS = ("kernel", "alpha", "lambda_kernel", "margin", "rank_estimator")


@dataclass(frozen=True)
class LossSettings:
    """Every CROLoss setting but the catalogue size, resolved and checked."""

    preset: str
    kernel: Kernel
    alpha: float
    lambda_kernel: Kernel | None
    margin: float
    rank_estimator: RankEstimator

    def build(self, n_items: int, engine: str = "eager") -> CROLoss:
        """The loss over a catalogue of ``n_items`` items, computed by ``engine``."""
        return CROLoss(kernel=self.kernel, alpha=self.alpha, n_items=n_items,
                       lambda_kernel=self.lambda_kernel, margin=self.margin,
                       rank_estimator=self.rank_estimator, engine=engine)


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
        out = {"margin": 5.0, "rank_estimator": "paper", "lambda_kernel": None, **self.defaults}
        for key, value in options.items():
            if value is None:
                continue
            if key in self.fixed and value != self.fixed[key]:
                # Point to the presets that let the user set this key (lambda_kernel: croloss_lambda).
                free = " or ".join(repr(p) for p, preset in PRESETS.items() if key not in preset.fixed)
                raise ConfigError(key, value, f"loss={self.name!r} fixes {key}={self.fixed[key]!r} "
                                  f"({self.description}); leave {key} unset or use loss={free}")
            out[key] = value
        out.update(self.fixed)
        return out

    def resolve(self, **options) -> LossSettings:
        """:meth:`settings`, each checked and turned into the object the loss uses."""
        values = self.settings(**options)
        for key in ("kernel", "alpha"):
            if values.get(key) is None:
                raise ConfigError(key, None, f"loss={self.name!r} has no default {key}; set {key}")
        kernel, lambda_kernel = resolve_kernels(values["kernel"], values["lambda_kernel"], values["margin"])
        return LossSettings(self.name, kernel, check_alpha(values["alpha"]), lambda_kernel,
                            float(values["margin"]), get_rank_estimator(values["rank_estimator"]))

    def build(self, n_items: int, **options) -> CROLoss:
        return self.resolve(**options).build(n_items)


#: Name -> preset: what the key ``loss`` can name (besides ``ce``, the model's own loss).
PRESETS: dict[str, LossPreset] = {p.name: p for p in (
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
)}


def register_preset(preset: LossPreset) -> LossPreset:
    """Make ``preset`` nameable by the key ``loss``. Its name must be new (``ce`` is taken: it
    is the model's own loss)."""
    if not isinstance(preset, LossPreset):
        raise TypeError(f"register_preset takes a LossPreset; got {preset!r}")
    if preset.name == "ce" or (preset.name in PRESETS and PRESETS[preset.name] != preset):
        raise ValueError(f"a loss named {preset.name!r} already exists")
    PRESETS[preset.name] = preset
    return preset


def get_preset(name: str) -> LossPreset:
    preset = PRESETS.get(name) if isinstance(name, str) else None
    if preset is None:
        raise ConfigError("loss", name, PRESETS)
    return preset


def build_loss(name: str, n_items: int, **options) -> CROLoss:
    """``build_loss('croloss', n_items=1000, kernel='sigmoid', alpha=1.2)``."""
    return get_preset(name).build(n_items, **options)
