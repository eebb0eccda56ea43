"""An Optuna study of real runs, through docs/tuning.md's command: SQLite storage in a temporary
folder, two trials then resumed to three, the second trial constructed to be pruned (a learning
rate that leaves the model untrained, against the median pruner after one trial), and the best
trial's YAML rerun to the same validation score. The example space runs on the synthetic
dataset, its fixed settings made tiny and its learning-rate range widened to hold that trial."""
import json
import os
import shlex

import pytest
import yaml

optuna = pytest.importorskip("optuna")

from recbole_croloss.errors import ConfigError
from recbole_croloss.quick_start import main as cli_main
from recbole_croloss.tune.__main__ import main
from recbole_croloss.tune.space import load_space
from recbole_croloss.tune.study import StudySettings, open_study
from tests.conftest import SYNTHETIC
from tests.doc_blocks import ROOT, code_blocks

GOOD_LR, BAD_LR = 0.02, 1e-7


def readme_command(space: str, trials: int) -> list[str]:
    """The docs' tune command as arguments: its space file and --trials replaced."""
    (command,) = [b for b in code_blocks("docs/tuning.md", "Hyper-parameter search", "bash") if "recbole_croloss.tune" in b]
    words = shlex.split(command)
    assert words[:3] == ["python", "-m", "recbole_croloss.tune"]
    args = words[3:]
    assert args[0] == "benchmarks/spaces/ml-100k-croloss.yaml" and "--trials" in args
    args[0] = space
    args[args.index("--trials") + 1] = str(trials)
    return args


@pytest.fixture(scope="module")
def study_run(synthetic_data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tune")
    with open(os.path.join(ROOT, "benchmarks", "spaces", "ml-100k-croloss.yaml")) as fh:
        source = yaml.safe_load(fh)
    tiny = {k: v for k, v in SYNTHETIC.items()
            if k not in ("valid_metric", "show_progress", "state", *source["search"])}
    source.update(dataset="syn", pruner={"startup_trials": 1, "warmup_validations": 0}, sampler={"seed": 0})
    source["fixed"] = {**source["fixed"], **tiny, "data_path": synthetic_data, "epochs": 1}
    source["search"]["learning_rate"] = {"loguniform": [BAD_LR, 0.05]}
    space = folder / "space.yaml"
    space.write_text(yaml.safe_dump(source))
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        first = readme_command(str(space), 2)
        settings = dict(zip(first[1::2], first[2::2]))
        storage, name = settings["--storage"], settings["--study"]
        queued = optuna.create_study(storage=storage, study_name=name, direction="maximize")
        queued.enqueue_trial({"learning_rate": GOOD_LR, "kernel": "softplus"})
        queued.enqueue_trial({"learning_rate": BAD_LR, "kernel": "softplus"})
        assert main(first) == 0
        after_two = [(t.number, t.state, t.value) for t in optuna.load_study(study_name=name, storage=storage).trials]
        assert main(readme_command(str(space), 3) + ["--no-progress"]) == 0
        assert main(readme_command(str(space), 3) + ["--no-progress"]) == 0  # nothing left to run
    finally:
        os.chdir(cwd)
    study = optuna.load_study(study_name=name, storage=storage.replace("sqlite:///", f"sqlite:///{folder}/"))
    return folder, space, settings, study, after_two


def test_the_resumed_study_holds_the_trials_asked_for(study_run):
    _, _, _, study, after_two = study_run
    assert len(after_two) == 2
    assert [t.number for t in study.trials] == [0, 1, 2]
    assert [(t.number, t.state, t.value) for t in study.trials[:2]] == after_two  # kept as they were
    assert study.trials[2].state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def test_the_untrained_trial_is_pruned_at_its_first_validation(study_run):
    folder, _, settings, study, _ = study_run
    good, bad = study.trials[:2]
    assert good.state == optuna.trial.TrialState.COMPLETE and good.params["learning_rate"] == GOOD_LR
    assert good.intermediate_values == {0: good.value}  # one validation, reported at index 0
    assert bad.state == optuna.trial.TrialState.PRUNED and bad.params["learning_rate"] == BAD_LR
    assert list(bad.intermediate_values) == [0] and bad.intermediate_values[0] < good.intermediate_values[0]
    trials = os.path.join(folder, settings["--out"], "trials")
    assert not os.path.exists(os.path.join(trials, "1.json"))  # training stopped: no test, no record
    for name in ("0.json", "0.curves.png", "0.hits.npz"):
        assert os.path.exists(os.path.join(trials, name))
    assert good.user_attrs["record"] == os.path.join(trials, "0.json") and "recall@100" in good.user_attrs["test_result"]


def test_the_best_yaml_reruns_to_the_best_trial_s_score(study_run):
    """The docs' command for the best trial's file, on the synthetic dataset."""
    folder, _, settings, study, _ = study_run
    best_file = os.path.join(folder, settings["--out"], "best.yaml")
    with open(best_file) as fh:
        text = fh.read()
    best = yaml.safe_load(text)
    assert best["valid_metric"] == "Recall@100" and best["learning_rate"] == study.best_params["learning_rate"]
    assert f"--config_files={best_file}" in text and not [n for n in os.listdir(os.path.dirname(best_file)) if n.startswith(".tmp-")]
    (command,) = [b for b in code_blocks("docs/tuning.md", "Hyper-parameter search", "bash") if "best.yaml" in b]
    words = shlex.split(command)
    assert words[:2] == ["python", "run_recbole_croloss.py"] and "--dataset=ml-100k" in words
    args = [w.replace("--dataset=ml-100k", "--dataset=syn") for w in words[2:]] + ["--record=rerun.json"]
    cwd = os.getcwd()
    os.chdir(folder)  # where the study's --out is
    try:
        assert cli_main(args) == 0
        with open("rerun.json") as fh:
            record = json.load(fh)
    finally:
        os.chdir(cwd)
    assert record["best_valid_score"] == study.best_value


def test_a_study_with_another_target_is_refused(study_run):
    folder, space, settings, study, _ = study_run
    storage = settings["--storage"].replace("sqlite:///", f"sqlite:///{folder}/")
    other = StudySettings(load_space(str(space)), "Recall@10", 3, storage, settings["--study"], str(folder))
    with pytest.raises(ConfigError, match="has another target"):
        open_study(other, True)
