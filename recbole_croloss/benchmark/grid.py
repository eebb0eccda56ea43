"""A benchmark grid: YAML -> the list of cells, each one training + evaluation run.

A grid file::

    name: ml-100k                      # names the results folder's reports
    datasets: [ml-100k]
    models: [TwoTower, {name: ComiRec-SA, model: ComiRec, interest_extractor: sa}]
    seeds: [2020, 2021, 2022]
    config: {epochs: 10, topk: [10, 20, 50, 100, 200, 500, 1000]}   # every cell
    methods:                           # blocks; a list value is an axis of the block's product
      - {loss: [ce, bpr, triplet, sampled_softmax]}
      - {loss: croloss, kernel: [sigmoid, softplus], alpha: [0.8, 1.0, 1.2]}
      - {loss: croloss_lambda, lambda_kernel: [step, sigmoid], kernel: softplus, alpha: 1.0}
    report: {figure_kernel: sigmoid}   # optional
    pinned_defaults: {negatives: uniform}   # optional, below

``pinned_defaults`` writes out a setting the grid's stored cells were measured under as a plugin
default that the plugin no longer takes: every cell whose loss reads it (not ``ce``) runs with it,
and it is left out of the cell keys, so the stored cells keep theirs and a rerun trains what they
measured.

The cells are datasets x models x (the union of the blocks' products, duplicates removed) x
seeds. :func:`load_grid` checks everything before any cell runs: unknown top-level or method
keys, a seed or dataset given twice (the same cell twice), unknown models, losses, kernels and
any value the CLI would refuse (each method's settings go through the same
:class:`~recbole_croloss.settings.spec.RunSpec` checks as a run), naming what is wrong.
"""
from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import os
import re
from dataclasses import dataclass, field

import yaml

from ..errors import BAD_INPUT, ConfigError, check_int
from ..io import check_dataset_name

GRID_KEYS = ("name", "datasets", "models", "seeds", "config", "pinned_defaults", "methods", "report")
REPORT_KEYS = ("figure_kernel",)
#: Keys a cell sets itself; a grid that sets them is refused.
CELL_KEYS = ("model", "dataset", "seed", "checkpoint_dir", "gpu_id")


class GridError(ValueError):
    """A grid file that cannot run; the message names the file, the place and what is wrong."""

    exit_status = BAD_INPUT


@dataclass(frozen=True)
class ModelSpec:
    """A model of the grid: its label (``ComiRec-SA``), RecBole model name and own settings."""

    label: str
    model: str
    settings: tuple = ()  # ((key, value), ...), sorted

    @property
    def settings_dict(self) -> dict:
        return dict(self.settings)


@dataclass(frozen=True)
class Method:
    """One loss setting: ``loss`` plus its options (kernel, alpha, lambda_kernel, ...)."""

    settings: tuple  # ((key, value), ...), in the grid's key order, loss first

    @property
    def settings_dict(self) -> dict:
        return dict(self.settings)

    @property
    def loss(self) -> str:
        return self.settings_dict["loss"]

    @property
    def searches_alpha(self) -> bool:
        """Whether the cell chooses its alpha itself (``alpha: auto``)."""
        return self.settings_dict.get("alpha") == "auto"

    @property
    def label(self) -> str:
        """``croloss(kernel=sigmoid, alpha=1.2)``; ``ce``."""
        return self.label_without()

    def label_without(self, *keys) -> str:
        """The label without the settings ``keys``: ``croloss(kernel=sigmoid)`` without alpha."""
        rest = [f"{k}={_fmt(v)}" for k, v in self.settings if k not in ("loss", *keys)]
        return self.loss + (f"({', '.join(rest)})" if rest else "")


@dataclass(frozen=True)
class Cell:
    dataset: str
    model: ModelSpec
    method: Method
    seed: int
    config: tuple = ()  # the grid's ``config``, sorted items
    pinned: tuple = ()  # the grid's ``pinned_defaults``, sorted items

    def keyed_settings(self) -> dict:
        """The keys this cell sets itself (later keys win): what its key hashes."""
        return {**dict(self.config), **self.model.settings_dict, **self.method.settings_dict,
                "seed": self.seed}

    def settings(self) -> dict:
        """Every key this cell runs with, as the run's YAML holds them: its own settings over the
        grid's pinned defaults (which ``ce``, the model's own loss, does not read)."""
        pinned = {} if self.method.loss == "ce" else dict(self.pinned)
        return {**pinned, **self.keyed_settings()}

    @property
    def key(self) -> str:
        """Stable id: readable parts plus a hash of the settings the cell gives; the grid's
        ``pinned_defaults`` are not among them, so writing a default out keeps the key."""
        payload = json.dumps([self.dataset, self.model.model, self.keyed_settings()], sort_keys=True, default=str)
        digest = hashlib.sha1(payload.encode()).hexdigest()[:10]
        return "__".join([_slug(self.dataset), _slug(self.model.label), _slug(self.method.label),
                          f"seed{self.seed}", digest])

    def describe(self) -> dict:
        return {"key": self.key, "dataset": self.dataset, "model": self.model.label,
                "model_class": self.model.model, "method": self.method.label,
                "method_settings": self.method.settings_dict, "seed": self.seed,
                "settings": self.settings()}


@dataclass
class Grid:
    name: str
    path: str | None
    datasets: list[str]
    models: list[ModelSpec]
    seeds: list[int]
    config: dict
    methods: list[Method]
    report: dict = field(default_factory=dict)
    pinned: dict = field(default_factory=dict)

    def cells(self) -> list[Cell]:
        """Seed-major order: a run interrupted half-way has every method for the first seeds."""
        config, pinned = tuple(sorted(self.config.items())), tuple(sorted(self.pinned.items()))
        return [Cell(d, m, meth, s, config, pinned) for s in self.seeds for d in self.datasets
                for m in self.models for meth in self.methods]


def _fmt(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", text).strip("-")


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _where(path) -> str:
    return f"grid {path}" if path else "grid"


def _unknown(kind: str, key, known, where: str) -> GridError:
    close = difflib.get_close_matches(str(key), [str(k) for k in known], n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return GridError(f"{where}: unknown {kind} {key!r}{hint}; allowed: {', '.join(map(str, known))}")


def parse_grid(raw: dict, path: str | None = None) -> Grid:
    """Shape checks only (no RecBole): keys, types, non-empty axes."""
    where = _where(path)
    if not isinstance(raw, dict):
        raise GridError(f"{where}: expected a mapping with keys {', '.join(GRID_KEYS)}")
    for key in raw:
        if key not in GRID_KEYS:
            raise _unknown("top-level key", key, GRID_KEYS, where)
    for key in ("datasets", "models", "seeds", "methods"):
        if not raw.get(key):
            raise GridError(f"{where}: {key!r} is missing or empty; give a list")
    datasets = _as_list(raw["datasets"])
    for dataset in datasets:
        if not isinstance(dataset, str):  # str(None) would look for a dataset named 'None'
            raise GridError(f"{where}: datasets: {dataset!r} is not a dataset name")
    seeds = []
    for seed in _as_list(raw["seeds"]):
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise GridError(f"{where}: seeds: {seed!r} is not an integer")
        seeds.append(seed)
    _refuse_duplicates("seeds", seeds, where)  # the same cell twice: one key, trained twice
    _refuse_duplicates("datasets", datasets, where)
    config = _settings_mapping(raw, "config", where)
    pinned = _settings_mapping(raw, "pinned_defaults", where)
    models = [_parse_model(m, where) for m in _as_list(raw["models"])]
    labels = [m.label for m in models]
    if len(set(labels)) != len(labels):
        raise GridError(f"{where}: models: duplicate label in {labels}; give each a distinct name")
    methods: list[Method] = []
    for i, block in enumerate(_as_list(raw["methods"])):
        for method in _expand_block(block, f"{where}: methods[{i}]"):
            if method not in methods:
                methods.append(method)
    report = raw.get("report") or {}
    if not isinstance(report, dict):
        raise GridError(f"{where}: 'report' must be a mapping")
    for key in report:
        if key not in REPORT_KEYS:
            raise _unknown("report key", key, REPORT_KEYS, f"{where}: report")
    _check_figure_kernel(report, methods, where)
    name = str(raw.get("name") or (os.path.splitext(os.path.basename(path))[0] if path else "grid"))
    try:
        check_dataset_name(name)  # it names the default result folder, benchmark-results/<name>
    except ConfigError as err:
        raise GridError(f"{where}: {err}") from None
    return Grid(name, path, datasets, models, seeds, dict(config), methods, dict(report), dict(pinned))


def _settings_mapping(raw: dict, section: str, where: str) -> dict:
    """``config`` or ``pinned_defaults``: a mapping of RecBole/plugin keys the grid does not set
    per cell."""
    settings = raw.get(section) or {}
    if not isinstance(settings, dict):
        raise GridError(f"{where}: {section!r} must be a mapping of RecBole/plugin keys, got {settings!r}")
    for key in settings:
        if key in CELL_KEYS or key in ("loss",):
            raise GridError(f"{where}: {section}: {key!r} is set per cell by the grid ("
                            f"{'methods' if key == 'loss' else 'datasets/models/seeds'}), not in {section}")
    return settings


def _check_figure_kernel(report: dict, methods: list[Method], where: str) -> None:
    """figure 4 plots the plain CROLoss methods of one kernel: one the grid has, or the report
    would leave the figure out after every cell ran."""
    if "figure_kernel" not in report:
        return
    kernels = sorted({str(m.settings_dict["kernel"]) for m in methods
                      if m.loss == "croloss" and "kernel" in m.settings_dict})
    if report["figure_kernel"] not in kernels:
        raise GridError(f"{where}: report: figure_kernel={report['figure_kernel']!r} is not a kernel of the "
                        f"grid's croloss methods ({', '.join(kernels) or 'none names a kernel'})")


def _refuse_duplicates(key: str, values: list, where: str) -> None:
    seen = set()
    for value in values:
        if value in seen:
            shown = repr(value) if isinstance(value, str) else value
            raise GridError(f"{where}: {key}: {shown} more than once in {values}; give each once")
        seen.add(value)


def _parse_model(entry, where) -> ModelSpec:
    if isinstance(entry, str):
        return ModelSpec(entry, entry)
    if isinstance(entry, dict) and "model" in entry:
        settings = {k: v for k, v in entry.items() if k not in ("name", "model")}
        for key in settings:
            if key in CELL_KEYS or key == "loss":
                raise GridError(f"{where}: models: {key!r} cannot be a model setting")
        label = str(entry.get("name") or entry["model"])
        return ModelSpec(label, str(entry["model"]), tuple(sorted(settings.items())))
    raise GridError(f"{where}: models: {entry!r} is neither a model name nor a mapping with 'model' "
                    "(and optionally 'name' and the model's own settings)")


def _expand_block(block, where) -> list[Method]:
    if not isinstance(block, dict) or "loss" not in block:
        raise GridError(f"{where}: a method block is a mapping with 'loss' and loss settings, got {block!r}")
    for key in block:
        if key in CELL_KEYS:
            raise GridError(f"{where}: {key!r} is set per cell by the grid, not in methods")
    keys = ["loss"] + [k for k in block if k != "loss"]
    axes = [_as_list(block[k]) for k in keys]
    for key, axis in zip(keys, axes):
        if not axis:
            raise GridError(f"{where}: {key!r} is an empty list")
    return [Method(tuple(zip(keys, values))) for values in itertools.product(*axes)]


def load_grid(path: str, check: bool = True) -> Grid:
    """Read and check a grid file. Raises :class:`GridError` before any cell could run."""
    if not os.path.isfile(path):
        raise GridError(f"grid file {path!r} not found")
    with open(path, encoding="utf-8") as fh:
        try:
            raw = yaml.safe_load(fh)
        except yaml.YAMLError as err:
            raise GridError(f"grid {path}: not valid YAML: {err}") from None
    grid = parse_grid(raw, path)
    if check:
        check_grid(grid)
    return grid


def check_grid(grid: Grid) -> None:
    """Every model, dataset and method through the checks a run makes before it loads data
    (:meth:`~recbole_croloss.settings.spec.RunSpec.from_config`): the model exists, the dataset's files
    are there, every key is one RecBole or the plugin knows and every value and every rule
    between values is accepted."""
    from ..settings.config import PluginConfig
    from ..glue import get_model
    from ..loss import loss_keys
    from ..settings.spec import RunSpec

    from ..settings.settings_checks import INTEGER_SETTINGS

    where = _where(grid.path)
    for seed in grid.seeds:  # a cell sets its seed itself: the same rule as the run's
        try:
            check_int("seed", seed, *INTEGER_SETTINGS["seed"])
        except ConfigError as err:
            raise GridError(f"{where}: seeds: {err}") from None
    for dataset in grid.datasets:
        for model in grid.models:
            try:
                model_class = get_model(model.model)
            except ConfigError as err:
                raise GridError(f"{where}: models: {err}") from None
            base = PluginConfig(model_class, dataset)
            known = sorted(set(base.final_config_dict) | set(loss_keys()))
            for key in [*grid.config, *grid.pinned, *model.settings_dict]:
                if key not in known:
                    raise _unknown("key", key, known, f"{where}: config/models")
            for method in grid.methods:
                for key in method.settings_dict:
                    if key not in known:
                        raise _unknown("key", key, known, f"{where}: methods ({method.label})")
                pinned = {} if method.loss == "ce" else grid.pinned
                settings = {**pinned, **grid.config, **model.settings_dict, **method.settings_dict}
                try:
                    RunSpec.from_config(PluginConfig(model_class, dataset, config_dict=settings), model_class)
                except (ConfigError, FileNotFoundError) as err:
                    raise GridError(f"{where}: dataset {dataset}, model {model.label}, "
                                    f"method {method.label}: {err}") from None
