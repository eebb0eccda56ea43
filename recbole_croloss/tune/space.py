"""The search-space file of ``python -m recbole_croloss.tune``, parsed and checked once.

::

    model: TwoTower                 # required: a plugin or RecBole model
    dataset: ml-100k                # default ml-100k
    fixed:                          # the settings of every trial (any key the CLI takes)
      loss: croloss
      epochs: 20
    search:                         # at least one key; each takes one distribution
      learning_rate: {loguniform: [0.0005, 0.02]}
      alpha: {uniform: [0.4, 1.6]}
      kernel: {choice: [sigmoid, softplus, exp]}
      neg_per_pos: {int: [2, 20]}   # both ends included; {int: [16, 128], step: 16}
    pruner: {startup_trials: 5, warmup_validations: 0}   # median pruning; "pruner: none" turns it off
    sampler: {startup_trials: 10, seed: 0}               # TPE: random trials first; seed (default none)

A ``choice`` may list any YAML values (``[[64], [128, 64]]`` too). The target metric
(``--target``) becomes every trial's ``valid_metric``, so ``fixed`` may not set it. Every error
is a :class:`~recbole_croloss.errors.ConfigError` naming the key (``search.alpha``), the value
and what is allowed; the settings themselves are checked against the run spec by
:func:`recbole_croloss.tune.study.check_space`, before any trial.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from ..errors import ConfigError, check_int
from ..settings.config import read_yaml

#: The top-level keys of a space file.
SPACE_KEYS = ("model", "dataset", "fixed", "search", "pruner", "sampler")
#: Settings every trial gets unless ``fixed`` sets them: no per-epoch progress bars under the
#: study's, and warnings only on the console (the record, curves and TensorBoard keep the rest).
TRIAL_DEFAULTS = {"show_progress": False, "state": "WARNING"}
#: Values Optuna stores as they are; a choice of anything else is stored as its JSON text.
SCALARS = (type(None), bool, int, float, str)

DISTRIBUTIONS: dict[str, type["Distribution"]] = {}


def register_distribution(cls):
    DISTRIBUTIONS[cls.kind] = cls
    return cls


class Distribution:
    """One searched setting: ``kind`` names it in the file, ``options`` its extra keys."""

    kind: str
    options: tuple[str, ...] = ()

    def __init__(self, name: str, value, options: dict):
        self.name, self.key = name, f"search.{name}"

    def suggest(self, trial):
        raise NotImplementedError

    def decode(self, stored):
        """The setting's value from what the study stored for it."""
        return stored

    def check_values(self) -> list:
        """Values that together show every way the run spec could refuse this setting."""
        raise NotImplementedError

    def _pair(self, value, kind) -> tuple:
        if not isinstance(value, list) or len(value) != 2 or not all(
                isinstance(v, kind) and not isinstance(v, bool) and math.isfinite(v) for v in value):
            raise ConfigError(self.key, {self.kind: value}, f"{self.kind}: [low, high], two finite "
                              f"{'integers' if kind is int else 'numbers'}")
        if value[0] >= value[1]:
            raise ConfigError(self.key, {self.kind: value}, f"{self.kind}: [low, high] with low < high")
        return value[0], value[1]


@register_distribution
class Choice(Distribution):
    kind = "choice"

    def __init__(self, name, value, options):
        super().__init__(name, value, options)
        if not isinstance(value, list) or not value:
            raise ConfigError(self.key, {self.kind: value}, "choice: a non-empty list of values")
        texts = [json.dumps(v, sort_keys=True) for v in value]
        if len(set(texts)) < len(texts):
            raise ConfigError(self.key, {self.kind: value}, "choice: each value once")
        self.values = value
        self.encoded = not all(isinstance(v, SCALARS) for v in value)
        self.stored = texts if self.encoded else value

    def suggest(self, trial):
        return self.decode(trial.suggest_categorical(self.name, self.stored))

    def decode(self, stored):
        return json.loads(stored) if self.encoded else stored

    def check_values(self):
        return list(self.values)


@register_distribution
class Uniform(Distribution):
    kind = "uniform"

    def __init__(self, name, value, options):
        super().__init__(name, value, options)
        self.low, self.high = (float(v) for v in self._pair(value, (int, float)))

    def suggest(self, trial):
        return trial.suggest_float(self.name, self.low, self.high)

    def check_values(self):
        return [self.low, self.high]


@register_distribution
class LogUniform(Uniform):
    kind = "loguniform"

    def __init__(self, name, value, options):
        super().__init__(name, value, options)
        if self.low <= 0:
            raise ConfigError(self.key, {self.kind: value}, "loguniform: [low, high] with 0 < low < high")

    def suggest(self, trial):
        return trial.suggest_float(self.name, self.low, self.high, log=True)


@register_distribution
class IntRange(Distribution):
    kind, options = "int", ("step",)

    def __init__(self, name, value, options):
        super().__init__(name, value, options)
        self.low, self.high = self._pair(value, int)
        self.step = check_int(f"{self.key}.step", options.get("step", 1), 1)
        if (self.high - self.low) % self.step:
            raise ConfigError(f"{self.key}.step", self.step, f"a step that goes from {self.low} to {self.high}")

    def suggest(self, trial):
        return trial.suggest_int(self.name, self.low, self.high, step=self.step)

    def check_values(self):
        return [self.low, self.high]


def parse_distribution(name: str, spec) -> Distribution:
    kinds = [k for k in (spec if isinstance(spec, dict) else {}) if k in DISTRIBUTIONS]
    if len(kinds) != 1:
        raise ConfigError(f"search.{name}", spec, "one distribution: {choice: [...]}, {uniform: [low, high]}, "
                          "{loguniform: [low, high]} or {int: [low, high]}")
    cls = DISTRIBUTIONS[kinds[0]]
    extra = sorted(set(spec) - {cls.kind, *cls.options})
    if extra:
        raise ConfigError(f"search.{name}", spec, f"{cls.kind} takes no {', '.join(extra)}"
                          + (f"; only {', '.join(cls.options)}" if cls.options else ""))
    return cls(name, spec[cls.kind], {k: spec[k] for k in cls.options if k in spec})


@dataclass(frozen=True)
class PrunerSettings:
    """Optuna's median pruning: a trial stops at a validation whose score is worse than the
    median of the earlier trials' at that validation, once ``startup_trials`` trials finished
    and from validation ``warmup_validations`` (counted from 0) on."""

    startup_trials: int = 5
    warmup_validations: int = 0


@dataclass(frozen=True)
class SamplerSettings:
    """The TPE sampler: ``startup_trials`` random trials first; ``seed`` None draws afresh
    (several machines sharing a study should not share a seed)."""

    startup_trials: int = 10
    seed: int | None = None


def _settings(key: str, value, cls, low: dict):
    if value is None:
        return cls()
    if not isinstance(value, dict) or set(value) - set(low):
        raise ConfigError(key, value, f"a mapping of {', '.join(low)}")
    for name, bound in low.items():
        if value.get(name) is not None:
            check_int(f"{key}.{name}", value[name], bound)
    return cls(**value)


@dataclass(frozen=True)
class SearchSpace:
    model: str
    dataset: str
    fixed: dict
    params: tuple[Distribution, ...]
    pruner: PrunerSettings | None = field(default_factory=PrunerSettings)
    sampler: SamplerSettings = field(default_factory=SamplerSettings)
    source: dict = field(default_factory=dict)  # the file's mapping, as loaded

    def suggest(self, trial) -> dict:
        return {p.name: p.suggest(trial) for p in self.params}

    def decode(self, stored: dict) -> dict:
        """A trial's settings from the parameters the study stored for it."""
        return {p.name: p.decode(stored[p.name]) for p in self.params}

    def best_settings(self, point: dict, target: str) -> dict:
        """The settings of a trial at ``point``, as a config file holds them."""
        return {**self.fixed, **point, "valid_metric": target}

    def trial_settings(self, point: dict, target: str) -> dict:
        """What a trial at ``point`` runs with (:data:`TRIAL_DEFAULTS` under everything)."""
        return {**TRIAL_DEFAULTS, **self.best_settings(point, target)}

    def check_points(self) -> list[dict]:
        """Points that take every setting through each of its :meth:`~Distribution.check_values`."""
        values = {p.name: p.check_values() for p in self.params}
        return [{name: v[i % len(v)] for name, v in values.items()}
                for i in range(max(len(v) for v in values.values()))]


def parse_space(source) -> SearchSpace:
    """A :class:`SearchSpace` from a space file's mapping."""
    if not isinstance(source, dict):
        raise ConfigError("space", source, "a YAML mapping with model, fixed and search")
    unknown = sorted(set(source) - set(SPACE_KEYS))
    if unknown:
        raise ConfigError(unknown[0], source[unknown[0]], "choose the space's keys from: " + ", ".join(SPACE_KEYS))
    model, dataset = source.get("model"), source.get("dataset", "ml-100k")
    fixed, search = source.get("fixed") or {}, source.get("search")
    for key, value in (("model", model), ("dataset", dataset)):
        if not isinstance(value, str) or not value:
            raise ConfigError(key, value, f"a {key} name, e.g. {key}: {'TwoTower' if key == 'model' else 'ml-100k'}")
    if not isinstance(fixed, dict):
        raise ConfigError("fixed", fixed, "a mapping of settings (key: value)")
    if not isinstance(search, dict) or not search:
        raise ConfigError("search", search, "a mapping of at least one setting to its distribution")
    for key in sorted(set(fixed) & set(search)) + [k for k in ("valid_metric",) if k in fixed]:
        raise ConfigError(f"fixed.{key}", fixed[key], "set it in one place: searched settings are not "
                          "fixed, and --target sets valid_metric")
    pruner = None if source.get("pruner", {}) in ("none", False) else _settings(
        "pruner", source.get("pruner"), PrunerSettings, {"startup_trials": 0, "warmup_validations": 0})
    sampler = _settings("sampler", source.get("sampler"), SamplerSettings, {"startup_trials": 0, "seed": 0})
    params = tuple(parse_distribution(str(name), spec) for name, spec in search.items())
    return SearchSpace(model, dataset, dict(fixed), params, pruner, sampler, dict(source))


def load_space(path: str) -> SearchSpace:
    """Read and check a space file; a file that cannot be read or parsed is a ConfigError."""
    return parse_space(read_yaml(path, "space"))
