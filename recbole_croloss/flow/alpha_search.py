r"""The run of ``alpha: auto``: successive halving over the candidates of
:class:`~recbole_croloss.settings.alpha_search.AlphaSearchSpec` on the validation split, then the
winner trained on to convergence and tested, as one run.

The dataset is loaded once. Each candidate is a model and trainer of its own
(:func:`~recbole_croloss.flow.build.build_trainer`, seeded as every run is, with the train
loader's shuffling generator at its first state), writing its own checkpoints
(the run's model file name with ``-<candidate>`` added, and its ``-last.pth``); a rung continues a survivor from its resume
checkpoint, which holds every random state. So each candidate trains exactly as a run of its own
with that alpha would, and the winner's record (history, test metrics) is the record such a run
writes; only one candidate's model is in memory at a time. The dropped candidates' checkpoints
are removed; the test split is evaluated for the winner only.

The record gains ``alpha_search``: the target, the grid, the chosen candidate, every rung
(budget, scores, kept), every candidate (epochs, steps, training seconds, best validation
Recall@target_n, how it stopped, where it was dropped, its validation curve), and the cost:
epochs and training seconds of the whole search against the winner's alone (one run's).
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from logging import getLogger

from ..settings.alpha_search import AlphaSearchSpec, Candidate, halving_rungs, summary_text, survivors
from ..errors import TrainingDiverged
from ..glue.progress import CONSOLE
from ..glue.train_loader import rounds
from .build import PreparedRun, build_trainer, load_data
from .single import train_and_test


@dataclass
class CandidateRun:
    """Where one candidate stands: its files, its best validation Recall@target_n so far
    (``score``), what it has trained, and how it stopped (``None``: at its rung's budget)."""

    candidate: Candidate
    best_file: str | None = None
    resume_file: str | None = None
    score: float = -math.inf
    epochs_run: int = 0
    steps_run: int = 0
    train_wall_s: float = 0.0
    stopped: str | None = None
    curve: list = field(default_factory=list)
    dropped_at_rung: int | None = None
    failure: TrainingDiverged | None = None

    def update(self, trainer, metric: str) -> None:
        """Read the candidate's state off ``trainer`` after a fit."""
        summary = trainer.training_summary
        self.score = float(trainer.best_valid_score)
        self.epochs_run, self.steps_run = summary["epochs_run"], summary["steps_run"]
        self.train_wall_s = round(trainer.history.wall_offset + trainer.elapsed(), 3)
        self.stopped = "early_stop" if summary["stopped"] == "early_stop" else None
        self.curve = [[e["epoch"], e["valid_result"].get(metric)] for e in summary["history"]]

    def record(self) -> dict:
        return {"label": self.candidate.label, "alpha": self.candidate.alpha, "kernel": self.candidate.kernel,
                "best_valid": self.score if math.isfinite(self.score) else None,
                "epochs_run": self.epochs_run, "steps_run": self.steps_run, "train_wall_s": self.train_wall_s,
                "stopped": self.stopped, "dropped_at_rung": self.dropped_at_rung, "valid_curve": self.curve,
                **({"error": str(self.failure)} if self.failure else {})}


def search_and_train(config, spec, saved: bool = True, record_file: str | None = None) -> dict:
    """Choose alpha (and the kernel, when asked) for Recall@target_n on the validation split, train
    the winner to convergence and test it; returns (and writes) the winner's record with its
    ``alpha_search`` section."""
    search: AlphaSearchSpec = spec.alpha_search
    data = load_data(config, spec)
    logger = getLogger()
    for note in search.notes:
        logger.info(note)
    generator = getattr(data[0], "generator", None)
    first_order = None if generator is None else generator.get_state()
    started = time.monotonic()
    runs = [CandidateRun(c) for c in search.candidates]
    rung_records = halve(config, spec, data, runs, first_order)
    winner = next(r for r in runs if r.dropped_at_rung is None)
    prepared = candidate_run(config, spec, data, winner, first_order)

    def section(record: dict) -> dict:
        winner.update(prepared.trainer, search.metric)
        kernel = prepared.spec.training.loss_settings.kernel.name
        return {"alpha_search": search_record(search, runs, rung_records, winner, kernel,
                                              time.monotonic() - started)}

    record = train_and_test(prepared, saved, record_file, sections=section)
    if not saved:  # a run that saves nothing leaves no checkpoints behind
        remove_checkpoints(winner)
    logger.info(summary_text(record["alpha_search"]))
    return record


def halve(config, spec, data, runs: list[CandidateRun], first_order) -> list[dict]:
    """Successive halving over ``runs`` (in the grid's order); the dropped ones get
    ``dropped_at_rung`` and lose their checkpoints. Returns the rungs' records."""
    search, logger = spec.alpha_search, getLogger()
    budget = rounds(data[0]) or config["epochs"]
    alive, records = list(runs), []
    rungs = halving_rungs(len(runs), search.eta, search.first_epochs, budget)
    for index, rung in enumerate(rungs):
        for run in alive:
            logger.info(f"alpha search, rung {index + 1} of {len(rungs)}: {run.candidate.label}, "
                        f"training to epoch {rung.budget}", extra=CONSOLE)
            train_rung(config, spec, data, run, rung.budget, first_order)
        best = set(survivors([r.score for r in alive], rung.keep))
        # in the grid's order, which breaks ties; a diverged candidate never goes on
        kept = [r for i, r in enumerate(alive) if i in best and math.isfinite(r.score)]
        if not kept:  # all diverged: the run fails as one that diverges
            raise next(r.failure for r in alive if r.failure is not None)
        records.append({"rung": index, "budget_epochs": rung.budget,
                        "scores": {r.candidate.label: r.score if math.isfinite(r.score) else None for r in alive},
                        "kept": [r.candidate.label for r in kept]})
        logger.info(f"alpha search, rung {index + 1} of {len(rungs)} (to epoch {rung.budget}), validation "
                    f"{search.metric}: " + ", ".join(f"{r.candidate.label} {r.score:.4f}" for r in alive)
                    + "; kept: " + ", ".join(r.candidate.label for r in kept), extra=CONSOLE)
        for run in alive:
            if run not in kept:
                run.dropped_at_rung = index
                remove_checkpoints(run)
        alive = kept
    return records


def train_rung(config, spec, data, run: CandidateRun, budget: int, first_order) -> None:
    """Train ``run`` until it has ``budget`` epochs in all (or stops early, or diverges: then
    its score is -inf and it is dropped)."""
    prepared = candidate_run(config, spec, data, run, first_order)
    prepared.trainer.epoch_limit = budget
    try:
        prepared.trainer.fit(prepared.train_data, prepared.valid_data, saved=True,
                             show_progress=config["show_progress"])
    except TrainingDiverged as err:
        getLogger().warning(f"alpha search: {run.candidate.label} diverged, dropped: {err}")
        run.score, run.stopped, run.failure = -math.inf, "diverged", err
        return
    run.update(prepared.trainer, spec.alpha_search.metric)


def candidate_run(config, spec, data, run: CandidateRun, first_order) -> PreparedRun:
    """The candidate's model and trainer: new (the first epoch's random state, files of its
    own) or continued from its resume checkpoint. ``config`` takes its alpha (and kernel), so
    that its checkpoints hold the settings they were trained with."""
    for key, value in run.candidate.options.items():
        config[key] = value
    candidate_spec = spec.for_candidate(config, run.candidate)
    adapter, trainer = build_trainer(config, candidate_spec, data[0])
    if run.resume_file is None:
        if first_order is not None:
            data[0].generator.set_state(first_order)
        trainer.name_checkpoints(run.candidate.slug)
        run.best_file, run.resume_file = trainer.saved_model_file, trainer.resume_file
    else:
        trainer.resume_checkpoint(run.resume_file)
    return PreparedRun(config, candidate_spec, *data, adapter, trainer)


def remove_checkpoints(run: CandidateRun) -> None:
    for path in (run.best_file, run.resume_file):
        if path and os.path.isfile(path):
            os.remove(path)


def search_record(search: AlphaSearchSpec, runs: list[CandidateRun], rung_records: list[dict],
                  winner: CandidateRun, kernel: str, wall_s: float) -> dict:
    """The record's ``alpha_search`` section."""
    epochs, steps = sum(r.epochs_run for r in runs), sum(r.steps_run for r in runs)
    train_wall = sum(r.train_wall_s for r in runs)
    return {
        "target_n": search.target_n, "metric": search.metric, "alpha_grid": list(search.alphas),
        "kernels": list(search.kernels) if search.kernels else None, "eta": search.eta,
        "first_epochs": search.first_epochs,
        "chosen": {"alpha": winner.candidate.alpha, "kernel": kernel, "label": winner.candidate.label,
                   "best_valid": winner.score},
        "rungs": rung_records,
        "candidates": [r.record() for r in runs],
        "cost": {"epochs": epochs, "winner_epochs": winner.epochs_run,
                 "epochs_vs_one_run": round(epochs / max(winner.epochs_run, 1), 3),
                 "steps": steps, "winner_steps": winner.steps_run,
                 "steps_vs_one_run": round(steps / max(winner.steps_run, 1), 3),
                 "train_wall_s": round(train_wall, 3), "winner_train_wall_s": winner.train_wall_s,
                 "wall_vs_one_run": round(train_wall / winner.train_wall_s, 3) if winner.train_wall_s else None,
                 "wall_s": round(wall_s, 3)},
    }
