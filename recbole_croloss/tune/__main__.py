"""``python -m recbole_croloss.tune SPACE.yaml --target Recall@100 --trials N [--storage URL]
[--study NAME] [--out DIR] [--no-progress]``: search the space with Optuna (:mod:`.study`)."""
from __future__ import annotations

import argparse
import os
import sys

from ..errors import ConfigError, check_int, reporting_errors
from .space import load_space
from .study import StudySettings, run_study


def parse_args(argv) -> StudySettings:
    parser = argparse.ArgumentParser(
        prog="python -m recbole_croloss.tune",
        description="Search a space of settings with Optuna (TPE, median pruning on the validation "
                    "curves); resumable, and shareable by several machines through one storage.")
    parser.add_argument("space", help="the search-space YAML (model, dataset, fixed, search, pruner, sampler)")
    parser.add_argument("--target", required=True, help="the validation metric to optimise, e.g. Recall@100")
    parser.add_argument("--trials", required=True, type=int, help="finished trials the study should hold")
    parser.add_argument("--study", default=None, help="the study's name (default: the space file's name)")
    parser.add_argument("--out", default=None, help="trial records and best.yaml (default: tune/<study>)")
    parser.add_argument("--storage", default=None, help="an SQLAlchemy URL (default: sqlite:///<out>/study.db)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    check_int("--trials", args.trials, 1)
    study = args.study or os.path.splitext(os.path.basename(args.space))[0]
    out = os.path.abspath(args.out or os.path.join("tune", study))
    storage = args.storage or f"sqlite:///{os.path.join(out, 'study.db')}"
    try:
        space = load_space(args.space)
    except ConfigError as err:  # the file named with the key
        raise ConfigError(f"{args.space}: {err.key}", err.value, err.allowed) from None
    return StudySettings(space, args.target, args.trials, storage, study, out,
                         progress=not args.no_progress)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    return reporting_errors(lambda: study_and_report(argv))  # bad settings or data: 2


def study_and_report(argv) -> int:
    """Run the study the arguments describe; print its trials and write the best config."""
    try:
        settings = parse_args(argv)
        os.makedirs(settings.out, exist_ok=True)
        study = run_study(settings)
    except ModuleNotFoundError as err:
        if err.name not in ("optuna", "sqlalchemy"):
            raise
        print(f"error: {err.name} is not installed: pip install 'recbole-croloss[tune]'", file=sys.stderr)
        return 2
    complete = [t for t in study.trials if t.value is not None and t.state.name == "COMPLETE"]
    states = {}
    for trial in study.trials:
        states[trial.state.name.lower()] = states.get(trial.state.name.lower(), 0) + 1
    print(f"study {settings.study!r}: " + ", ".join(f"{n} {s}" for s, n in sorted(states.items())))
    if not complete:
        print("no trial completed", file=sys.stderr)
        return 1
    best = study.best_trial
    print(f"best: trial {best.number}, {settings.target} = {best.value} (validation), {best.params}")
    print(f"its settings: {settings.best_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
