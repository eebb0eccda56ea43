"""Named loss presets: the one registry the YAML ``loss`` key maps to.

A preset pins some settings (``fixed``: e.g. ``bpr`` is softplus with alpha 0) and gives
defaults for the ones a user may change. Sampled softmax, BPR and triplet are CROLoss special
cases (paper section 3.5), so every preset trains on exactly the same negatives, and under a
weighted sampler they take its log q the same way (``sampled_softmax`` is then the log-q
corrected one; ``logq_correction: false`` trains the uncorrected one). ``bce`` and ``gbce``
(:class:`BinaryPreset`, :mod:`.binary`) are the binary cross-entropies on those negatives.

``preset.resolve(**options)`` checks every setting it ``reads`` and returns its settings
(:class:`LossSettings`: the kernels, alpha, estimator as objects, no catalogue size yet);
``settings.build(n_items)`` is the loss. A setting a preset does not read is refused.
:func:`register_preset` adds a preset of the user's own.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from ..errors import ConfigError
from .binary import GeneralisedBCE, check_t
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
    #: The loss weighs negatives by the sampler's log q (the adapter passes it).
    reads_log_q = True

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
    #: The settings :meth:`resolve` takes (the fixed ones too: a different value is refused).
    reads = LOSS_OPTIONS

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
                free = " or ".join(repr(p) for p, preset in PRESETS.items()
                                   if key in preset.reads and key not in getattr(preset, "fixed", {}))
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


@dataclass(frozen=True)
class BinaryLossSettings:
    """A binary cross-entropy's settings: its calibration ``t`` (0: plain BCE)."""

    preset: str
    t: float
    reads_log_q = False

    def build(self, n_items: int) -> GeneralisedBCE:
        return GeneralisedBCE(n_items, self.t)


@dataclass(frozen=True)
class BinaryPreset:
    """``bce`` (t fixed at 0) or ``gbce`` (reads ``gbce_t``, default 0.75): no kernel, alpha or
    rank estimate, so every CROLoss setting is refused."""

    name: str
    description: str
    reads: tuple = ()
    default_t: float = 0.0

    def resolve(self, **options) -> BinaryLossSettings:
        for key, value in options.items():
            if key not in self.reads and value is not None:
                raise ConfigError(key, value, f"loss={self.name!r} is {self.description}, which has no {key}; "
                                  f"unset {key} or use loss='croloss'")
        t = options.get("gbce_t")
        return BinaryLossSettings(self.name, check_t(self.default_t if t is None else t))

    def build(self, n_items: int, **options) -> GeneralisedBCE:
        return self.resolve(**options).build(n_items)


#: Name -> preset: what the key ``loss`` can name (besides ``ce``, the model's own loss).
PRESETS: dict[str, LossPreset | BinaryPreset] = {p.name: p for p in (
    LossPreset("croloss", "CROLoss with kernel phi and weight exponent alpha",
               fixed={"lambda_kernel": None}, defaults={"kernel": "softplus", "alpha": 1.0}),
    LossPreset("croloss_lambda", "CROLoss, Lambda method: phi_1 = lambda_kernel, phi_2 = kernel",
               defaults={"kernel": "softplus", "lambda_kernel": "sigmoid", "alpha": 1.0}),
    LossPreset("sampled_softmax", "sampled softmax (log-q corrected under a weighted sampler): exponential "
               "kernel, alpha 1", fixed={"kernel": "exp", "alpha": 1.0, "lambda_kernel": None}),
    LossPreset("bpr", "BPR summed over negatives: softplus kernel, alpha 0",
               fixed={"kernel": "softplus", "alpha": 0.0, "lambda_kernel": None}),
    LossPreset("triplet", "triplet loss: hinge kernel, alpha 0",
               fixed={"kernel": "hinge", "alpha": 0.0, "lambda_kernel": None}),
    BinaryPreset("bce", "binary cross-entropy on each score (SASRec's loss)"),
    BinaryPreset("gbce", "gSASRec's generalised binary cross-entropy (calibration gbce_t)",
                 reads=("gbce_t",), default_t=0.75),
)}


def loss_keys() -> tuple[str, ...]:
    """Every setting some preset reads."""
    return tuple(dict.fromkeys(key for preset in PRESETS.values() for key in preset.reads))


def register_preset(preset: LossPreset) -> LossPreset:
    """Make ``preset`` nameable by the key ``loss``. Its name must be new (``ce`` is taken: it
    is the model's own loss)."""
    if not isinstance(preset, (LossPreset, BinaryPreset)):
        raise TypeError(f"register_preset takes a LossPreset; got {preset!r}")
    if preset.name == "ce" or (preset.name in PRESETS and PRESETS[preset.name] != preset):
        raise ValueError(f"a loss named {preset.name!r} already exists")
    PRESETS[preset.name] = preset
    return preset


def get_preset(name: str) -> LossPreset | BinaryPreset:
    preset = PRESETS.get(name) if isinstance(name, str) else None
    if preset is None:
        raise ConfigError("loss", name, PRESETS)
    return preset


def build_loss(name: str, n_items: int, **options) -> CROLoss | GeneralisedBCE:
    """``build_loss('croloss', n_items=1000, kernel='sigmoid', alpha=1.2)``; ``build_loss('gbce',
    n_items=1000, gbce_t=0.9)``."""
    return get_preset(name).build(n_items, **options)
