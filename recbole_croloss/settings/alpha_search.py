r"""``alpha: auto``: the run chooses alpha (and, when asked, the kernel) for the Recall@N the user
names, by successive halving on the validation split. This module parses and checks the keys
(part of the run spec, before any data loads) and holds the halving schedule as pure
functions; :mod:`.alpha_search_run` trains the candidates.

Keys, read only with ``alpha: auto`` (a user who sets one with a fixed alpha is refused):

- ``target_n``: the N of the Recall@N chosen for, an integer >= 1; added to ``topk`` where
  missing. ``valid_metric`` becomes ``Recall@<target_n>``: each candidate's best epoch and early
  stop are judged by what the search chooses by (another ``valid_metric`` set by the user is
  refused);
- ``alpha_grid``: the candidate alphas (default 0.4 to 1.6 by 0.2, the span of the paper's);
- ``alpha_search_kernels``: kernels searched with them, e.g. ``[sigmoid, softplus]`` (default:
  the configured kernel only);
- ``alpha_search_epochs`` (b) and ``alpha_search_eta`` (eta): the first rung's budget in
  epochs, and the halving rate.

Successive halving (Jamieson and Talwalkar, 2016) over the n candidates: rung r trains its
n_r candidates until each has b * eta^r epochs in all (capped at the run's ``epochs``; a
candidate RecBole's early stopping has stopped trains no further), ranks them by their best
validation Recall@target_n so far and keeps the best ceil(n_r / eta). A rung at the run's
budget keeps one; a candidate whose training diverged never goes on. The last candidate
standing trains on to the run's budget with the usual early stopping, and only it is tested.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

from ..errors import ConfigError, check_int
from ..loss import PRESETS, get_preset
from .settings_checks import refuse_unread

#: The value of ``alpha`` that asks for the search.
AUTO = "auto"
#: The keys only the search reads.
SEARCH_KEYS = ("target_n", "alpha_grid", "alpha_search_kernels", "alpha_search_epochs", "alpha_search_eta")


@dataclass(frozen=True)
class Candidate:
    """One setting the search tries: an alpha, with a kernel where kernels are searched too
    (``None``: the run's configured kernel)."""

    alpha: float
    kernel: str | None = None

    @property
    def options(self) -> dict:
        """The loss options this candidate sets (over the run's own)."""
        return {"alpha": self.alpha} if self.kernel is None else {"alpha": self.alpha, "kernel": self.kernel}

    @property
    def label(self) -> str:
        return f"alpha={self.alpha:g}" if self.kernel is None else f"kernel={self.kernel}, alpha={self.alpha:g}"

    @property
    def slug(self) -> str:
        """For file names: ``alpha0.8``, ``sigmoid-alpha0.8``."""
        return f"alpha{self.alpha:g}" if self.kernel is None else f"{self.kernel}-alpha{self.alpha:g}"


@dataclass(frozen=True)
class Rung:
    """One round of the halving: it trains ``candidates`` candidates until each has ``budget``
    epochs in all, then keeps the best ``keep``."""

    budget: int
    candidates: int
    keep: int


def halving_rungs(n_candidates: int, eta: int, first_epochs: int, max_epochs: int) -> tuple[Rung, ...]:
    """The rungs of successive halving: rung r has budget min(first_epochs * eta^r, max_epochs)
    and keeps ceil(n_r / eta) of its n_r candidates (one at ``max_epochs``), until one is kept.

    >>> [(r.budget, r.candidates, r.keep) for r in halving_rungs(7, 2, 2, 150)]
    [(2, 7, 4), (4, 4, 2), (8, 2, 1)]
    """
    if n_candidates < 1 or eta < 2 or first_epochs < 1 or max_epochs < 1:
        raise ValueError(f"halving_rungs({n_candidates}, {eta}, {first_epochs}, {max_epochs}): needs "
                         "n_candidates >= 1, eta >= 2, first_epochs >= 1, max_epochs >= 1")
    rungs, alive, budget = [], n_candidates, first_epochs
    while alive > 1:
        budget = min(budget, max_epochs)
        keep = 1 if budget == max_epochs else math.ceil(alive / eta)
        rungs.append(Rung(budget, alive, keep))
        alive, budget = keep, budget * eta
    return tuple(rungs)


def survivors(scores: Sequence[float], keep: int) -> list[int]:
    """The indices of the ``keep`` best ``scores``, best first; of equal scores the earlier
    index (the grid's order) goes first."""
    return sorted(range(len(scores)), key=lambda i: (-scores[i], i))[:keep]


@dataclass(frozen=True)
class AlphaSearchSpec:
    """The search ``alpha: auto`` asks for: its candidates (alphas x kernels), the rung
    schedule's settings, and ``notes``, the lines the run logs about settings it adapted."""

    target_n: int
    alphas: tuple[float, ...]
    kernels: tuple[str, ...] | None
    first_epochs: int
    eta: int
    notes: tuple[str, ...] = ()

    @property
    def metric(self) -> str:
        """The validation metric the search chooses by, as RecBole's results name it."""
        return f"recall@{self.target_n}"

    @property
    def candidates(self) -> tuple[Candidate, ...]:
        return tuple(Candidate(a, k) for k in (self.kernels or (None,)) for a in self.alphas)

    @classmethod
    def from_config(cls, config) -> "AlphaSearchSpec | None":
        """The search, or ``None`` for a fixed alpha. Sets ``valid_metric`` (and ``topk`` where
        it lacks target_n) on ``config``, before the evaluation spec reads them."""
        if config["alpha"] != AUTO:
            refuse_unread(config, SEARCH_KEYS, f"a run with a fixed alpha (alpha={config['alpha']!r}; "
                          "alpha: auto searches one)")
            return None
        preset = searchable_preset(config["loss"])
        if config["target_n"] is None:
            raise ConfigError("target_n", None, "alpha: auto needs the N of the Recall@N it chooses alpha "
                              "for, an integer >= 1, e.g. target_n: 100")
        target_n = check_int("target_n", config["target_n"], 1)
        alphas = parse_alpha_grid(config["alpha_grid"])
        kernels = parse_kernels(config, preset)
        if len(alphas) * len(kernels or (None,)) < 2:
            raise ConfigError("alpha_grid", list(alphas), "at least two candidates (alphas x "
                              "alpha_search_kernels); for one alpha set alpha to it")
        first = check_int("alpha_search_epochs", config["alpha_search_epochs"], 1)
        eta = check_int("alpha_search_eta", config["alpha_search_eta"], 2)
        notes = adapt_evaluation(config, target_n)
        return cls(target_n, alphas, kernels, first, eta, notes)

    def candidate_trainings(self, training_for: Callable[[dict], object]) -> tuple:
        """Each candidate's training spec, ``training_for(options)`` (so each is checked); a
        value the loss refuses is named by the search key that holds it."""
        given = {"alpha": ("alpha_grid", list(self.alphas)),
                 "kernel": ("alpha_search_kernels", list(self.kernels or ()))}
        out = []
        for candidate in self.candidates:
            try:
                out.append(training_for(candidate.options))
            except ConfigError as err:
                if err.key not in given or (err.key == "kernel" and self.kernels is None):
                    raise
                key, value = given[err.key]
                raise ConfigError(key, value, f"its {err.key} {err.value!r} is refused: {err.allowed}") from None
        return tuple(out)

    def check_run(self, config, distributed: bool, model_class) -> None:
        """The rules between the search and the rest of the run."""
        if distributed or not config["single_spec"]:
            raise ConfigError("alpha", AUTO, "a fixed alpha in a distributed run: the search trains its "
                              "candidates one after another in one process")
        refuse_unread(config, ("resume",), "alpha: auto (its search continues each candidate from "
                      "the candidate's own checkpoints)")
        if getattr(model_class, "TRAIN_STAGES", None):
            raise ConfigError("alpha", AUTO, f"a fixed alpha for {model_class.__name__}, which trains in "
                              f"stages {tuple(model_class.TRAIN_STAGES)}")
        if self.first_epochs % config["eval_step"]:
            raise ConfigError("alpha_search_epochs", self.first_epochs, f"a multiple of eval_step="
                              f"{config['eval_step']}: each rung ends on a validation")


def _alpha_is_free(preset) -> bool:
    """The preset reads alpha and does not fix it (bce and gbce have no alpha at all)."""
    return "alpha" in preset.reads and "alpha" not in getattr(preset, "fixed", {})


def searchable_preset(loss):
    """The loss preset ``loss`` names, if alpha is free in it."""
    free = ", ".join(name for name, p in PRESETS.items() if _alpha_is_free(p))
    if loss == "ce":  # the model's own loss
        raise ConfigError("alpha", AUTO, f"loss='ce' is the model's own cross-entropy and has no alpha; "
                          f"alpha: auto searches the alpha of {free}")
    preset = get_preset(loss)
    if not _alpha_is_free(preset):
        fixed = getattr(preset, "fixed", {})
        what = f"fixes alpha={fixed['alpha']!r}" if "alpha" in fixed else "has no alpha"
        raise ConfigError("alpha", AUTO, f"loss={loss!r} {what} ({preset.description}); "
                          f"alpha: auto searches the alpha of {free}")
    return preset


def parse_alpha_grid(value) -> tuple[float, ...]:
    """``alpha_grid``: distinct finite alphas >= 0, in increasing order."""
    allowed = "a list of distinct alphas >= 0, e.g. [0.6, 0.8, 1.0, 1.2]"
    if not isinstance(value, (list, tuple)) or not value:
        raise ConfigError("alpha_grid", value, allowed)
    for alpha in value:
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha) or alpha < 0:
            raise ConfigError("alpha_grid", value, f"{allowed} ({alpha!r} is not one)")
    if len(set(value)) < len(value):
        raise ConfigError("alpha_grid", value, f"{allowed} (one is given twice)")
    return tuple(sorted(float(a) for a in value))


def parse_kernels(config, preset) -> tuple[str, ...] | None:
    """``alpha_search_kernels``: ``None`` (the configured kernel), or distinct kernel names (a
    list, or from the command line ``[sigmoid,softplus]``); each is checked as a candidate's."""
    value = config["alpha_search_kernels"]
    if value is None:
        return None
    if "kernel" in preset.fixed:
        raise ConfigError("alpha_search_kernels", value, f"unset: loss={preset.name!r} fixes "
                          f"kernel={preset.fixed['kernel']!r}")
    refuse_unread(config, ("kernel",), f"alpha_search_kernels={value!r} (it sets every candidate's kernel)")
    names = value.strip("[] ").split(",") if isinstance(value, str) else value
    names = [n.strip() if isinstance(n, str) else n for n in (names if isinstance(names, (list, tuple)) else [])]
    if not names or not all(isinstance(n, str) and n for n in names) or len(set(names)) < len(names):
        raise ConfigError("alpha_search_kernels", value, "a list of distinct kernels, e.g. [sigmoid, softplus]")
    return tuple(names)


def adapt_evaluation(config, target_n: int) -> tuple[str, ...]:
    """Make the run validate by Recall@target_n (and report it): the lines to log."""
    metrics = config["metrics"] if isinstance(config["metrics"], list) else [config["metrics"]]
    if "recall" not in {str(m).lower() for m in metrics}:
        raise ConfigError("metrics", config["metrics"], "metrics with Recall: alpha: auto chooses by "
                          f"Recall@{target_n}")
    if config["valid_metric_bigger"] is False:
        raise ConfigError("valid_metric_bigger", False, "true (or unset): alpha: auto chooses the "
                          "highest Recall")
    notes = []
    topk = config["topk"] if isinstance(config["topk"], list) else [config["topk"]]
    if target_n not in topk:
        config["topk"] = sorted([*topk, target_n]) if all(isinstance(k, int) for k in topk) else [*topk, target_n]
        notes.append(f"alpha: auto: target_n={target_n} added to topk ({config['topk']})")
    wanted = f"Recall@{target_n}"
    given = getattr(config, "user_settings", {}).get("valid_metric")
    if given is not None and str(given).lower() != wanted.lower():
        raise ConfigError("valid_metric", given, f"{wanted} or unset: alpha: auto judges each candidate's "
                          f"best epoch and early stop by the Recall@target_n it chooses for")
    if config["valid_metric"] != wanted:
        notes.append(f"alpha: auto: valid_metric={wanted} (was {config['valid_metric']})")
        config["valid_metric"] = wanted
    return tuple(notes)


def summary_text(section: dict) -> str:
    """The line the log and the CLI print about a record's ``alpha_search`` section."""
    chosen, cost = section["chosen"], section["cost"]
    ratio = f"{cost['epochs_vs_one_run']:g}x the epochs"
    if cost["wall_vs_one_run"] is not None:
        ratio += f" and {cost['wall_vs_one_run']:g}x the training time"
    return (f"alpha: auto chose alpha={chosen['alpha']:g} (kernel {chosen['kernel']}) for Recall@"
            f"{section['target_n']} out of {len(section['candidates'])} candidates in {len(section['rungs'])} "
            f"rungs (validation {section['metric']} {chosen['best_valid']:.4f}); the search cost "
            f"{cost['epochs']} epochs, {cost['train_wall_s']:.1f} s of training: {ratio} of one run of "
            f"the winner ({cost['winner_epochs']} epochs, {cost['winner_train_wall_s']:.1f} s)")
