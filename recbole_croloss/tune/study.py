r"""An Optuna study over a search space (:mod:`.space`): TPE sampling, median pruning on the
validation curves, an RDB storage several machines can share, resumable, and the best trial's
settings written as a config file.

- **One trial** is one run of the CLI's flow (:mod:`recbole_croloss.flow`) in this
  process, with the space's ``fixed`` settings, the trial's point and ``valid_metric`` = the
  target; its record goes to ``OUT/trials/<number>.json`` (curves beside it). Its value is the
  run's best validation score (RecBole's ``best_valid_score``), maximised or minimised as
  ``valid_metric_bigger`` says.
- **Pruning**: after each validation the trainer calls :class:`PruningReport` (one of its
  validation listeners), which reports the score at the validation's index and raises
  ``optuna.TrialPruned`` when the pruner says so; training stops there.
- **Storage and resuming**: the study lives in ``--storage`` (default ``sqlite:///OUT/study.db``)
  under ``--study``; running the same command again continues it until it holds ``--trials``
  finished (complete or pruned) trials, counting every machine's. A trial whose process died is
  failed by Optuna's heartbeat and retried once. The space and the target are stored with the
  study: a command with other ones is refused.
- **Best trial**: ``OUT/best.yaml`` (atomically, after each trial that is the best so far, and at
  the end) holds its settings as a config file for ``run_recbole_croloss.py --config_files``.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from logging import getLogger

import yaml

from ..errors import ConfigError, TrainingDiverged
from ..io import atomic_write
from ..flow.build import configure, prepare
from ..flow.single import train_and_test
from ..flow.stages import stage_plan
from ..flow.run_log import close_log_handlers
from .space import SearchSpace

#: Seconds between a running trial's heartbeats, and without one before it counts as dead.
HEARTBEAT_S, GRACE_S = 60, 180


@dataclass(frozen=True)
class StudySettings:
    space: SearchSpace
    target: str
    trials: int
    storage: str
    study: str
    out: str
    progress: bool = True

    @property
    def best_file(self) -> str:
        return os.path.join(self.out, "best.yaml")


class PruningReport:
    """A validation listener: reports each validation's score to ``trial`` at the validation's
    index and stops the trial (``optuna.TrialPruned``) when its pruner says so."""

    def __init__(self, trial):
        self.trial = trial

    def __call__(self, index: int, entry: dict) -> None:
        import optuna

        self.trial.report(entry["valid_score"], index)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"validation {index} (step {entry['step']}): "
                                     f"{entry['valid_score']} against the earlier trials' median")


def check_space(space: SearchSpace, target: str) -> bool:
    """Every point of :meth:`SearchSpace.check_points` through the run spec (no data is
    loaded); an error names the space's key. Returns whether the target is maximised."""
    bigger = True
    for point in space.check_points():
        try:
            config, spec = configure(space.model, space.dataset, config_dict=space.trial_settings(point, target))
        except ConfigError as err:
            where = "--target" if err.key == "valid_metric" else \
                f"search.{err.key}" if err.key in point else f"fixed.{err.key}" if err.key in space.fixed else err.key
            raise ConfigError(where, err.value, err.allowed) from None
        if stage_plan(config, spec.model_class) or spec.distributed.distributed:
            key = "train_stage" if "train_stage" in space.fixed else "nproc"
            raise ConfigError(f"fixed.{key}", space.fixed.get(key), "a trial is one stage in one process")
        bigger = bool(config["valid_metric_bigger"])
    return bigger


def open_study(settings: StudySettings, bigger: bool):
    """The study in its storage, created or loaded; one with another space or target is refused."""
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    try:
        storage = optuna.storages.RDBStorage(
            settings.storage, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
            failed_trial_callback=optuna.storages.RetryFailedTrialCallback(max_retry=1))
    except (SQLAlchemyError, ValueError) as err:  # a URL SQLAlchemy cannot parse, or a database it cannot open
        raise ConfigError("--storage", settings.storage, f"an SQLAlchemy URL Optuna can open, e.g. "
                          f"sqlite:///tune.db or postgresql://user@host/db ({err})") from None
    space = settings.space
    sampler = optuna.samplers.TPESampler(n_startup_trials=space.sampler.startup_trials,
                                         seed=space.sampler.seed, constant_liar=True)
    pruner = optuna.pruners.NopPruner() if space.pruner is None else optuna.pruners.MedianPruner(
        n_startup_trials=space.pruner.startup_trials, n_warmup_steps=space.pruner.warmup_validations)
    study = optuna.create_study(storage=storage, study_name=settings.study, sampler=sampler, pruner=pruner,
                                direction="maximize" if bigger else "minimize", load_if_exists=True)
    identity = {"space": json.loads(json.dumps(space.source, sort_keys=True, default=str)), "target": settings.target}
    for key, value in identity.items():
        stored = study.user_attrs.get(key)
        if stored is None:
            study.set_user_attr(key, value)
        elif stored != value:
            raise ConfigError("--study", settings.study, f"study {settings.study!r} in this storage has "
                              f"another {key} ({stored}); give a new --study, or its own {key}")
    return study


def finished(study) -> int:
    """The study's complete and pruned trials, every machine's."""
    import optuna

    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return len(study.get_trials(deepcopy=False, states=states))


def objective(settings: StudySettings):
    """The function Optuna calls for each trial."""
    space = settings.space

    def run_trial(trial) -> float:
        point = space.suggest(trial)
        close_log_handlers()  # each trial its own log file and TensorBoard folder
        prepared = prepare(*configure(space.model, space.dataset, config_dict=space.trial_settings(point, settings.target)))
        prepared.trainer.validation_listeners.append(PruningReport(trial))
        record_file = os.path.join(settings.out, "trials", f"{trial.number}.json")
        record = train_and_test(prepared, saved=True, record_file=record_file)
        trial.set_user_attr("record", record_file)
        trial.set_user_attr("test_result", record["test_result"])
        return float(record["best_valid_score"])

    return run_trial


def write_best(settings: StudySettings, study) -> str | None:
    """The best trial's settings as ``OUT/best.yaml`` (atomically); None before any trial completes."""
    try:
        best = study.best_trial
    except ValueError:  # no complete trial yet
        return None
    space = settings.space
    body = yaml.safe_dump(space.best_settings(space.decode(best.params), settings.target), sort_keys=False)
    header = (f"# Best trial of study {settings.study!r}: trial {best.number}, {settings.target} = {best.value} "
              f"on the validation split.\n# Run it: python run_recbole_croloss.py --model={space.model} "
              f"--dataset={space.dataset} --config_files={settings.best_file}\n")
    atomic_write(settings.best_file, lambda f: f.write(header + body), suffix=".yaml")
    return settings.best_file


def run_study(settings: StudySettings):
    """Run the study until it holds ``settings.trials`` finished trials; returns it."""
    import optuna

    bigger = check_space(settings.space, settings.target)
    study = open_study(settings, bigger)
    todo = settings.trials - finished(study)
    if todo <= 0:
        getLogger().warning(f"study {settings.study!r} already holds {finished(study)} finished trials")
    else:
        def best_so_far(study, trial):
            if trial.state == optuna.trial.TrialState.COMPLETE and study.best_trial.number == trial.number:
                write_best(settings, study)

        states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
        study.optimize(objective(settings), n_trials=todo, catch=(ConfigError, TrainingDiverged),
                       callbacks=[optuna.study.MaxTrialsCallback(settings.trials, states=states), best_so_far],
                       show_progress_bar=settings.progress)
    write_best(settings, study)
    return study
