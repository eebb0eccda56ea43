"""The training regime: a history entry per validation and the stop reason in every record,
step-based validation at the configured steps, the paper's user sampling, the last weights on
request, and a resumed step-based run equal to an uninterrupted one."""
import pytest

from recbole_croloss.errors import ConfigError
from recbole_croloss.quick_start import run
from tests.conftest import TINY
from tests.test_spec import spec_of

ENTRY_KEYS = {"epoch", "step", "epochs_done", "train_loss", "valid_score", "valid_result", "wall_s"}
#: A learning rate high enough that validation Recall@50 of the tiny slice wavers (seed 2020, one
#: thread: 0.347 0.418 0.408 0.432 0.437 0.421 0.416): early stopping with patience 1 ends the
#: run after epoch 6, the best being epoch 4.
WAVERING = {"learning_rate": 0.05, "stopping_step": 1}


def check_history(record, steps):
    history = record["history"]
    assert [e["step"] for e in history] == steps and all(set(e) == ENTRY_KEYS for e in history)
    assert all(e["train_loss"] > 0 and e["valid_result"]["recall@50"] == e["valid_score"] for e in history)
    assert [e["wall_s"] for e in history] == sorted(e["wall_s"] for e in history)
    best = [e for e in history if e["valid_score"] == record["best_valid_score"]][-1]
    assert (record["best_epoch"], record["best_step"]) == (best["epoch"], best["step"])


def test_epoch_regime_records_every_validation_and_the_budget_stop(tiny):
    record = run("TwoTower", "ml-100k", config_dict={**tiny, "epochs": 3})
    batches = record["steps_run"] // 3
    check_history(record, [batches, 2 * batches, 3 * batches])
    assert [e["epoch"] for e in record["history"]] == [0, 1, 2]
    assert [e["epochs_done"] for e in record["history"]] == [1.0, 2.0, 3.0]
    assert (record["stopped"], record["epochs_run"], record["test_weights"]) == ("max_epochs", 3, "best")


@pytest.fixture(scope="module")
def wavering(tmp_path_factory):
    """One early-stopped run, tested on its best weights and, run again, on its last ones."""
    folder = tmp_path_factory.mktemp("wavering")
    settings = {**TINY, "checkpoint_dir": str(folder / "saved"), "epochs": 10, **WAVERING}
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        return {weights: run("TwoTower", "ml-100k", config_dict={**settings, "test_weights": weights})
                for weights in ("best", "last")}


def test_early_stopping_is_recorded_as_such(wavering):
    record = wavering["best"]
    scores = [e["valid_score"] for e in record["history"]]
    assert record["stopped"] == "early_stop" and record["epochs_run"] == len(scores) < 10
    best = scores.index(max(scores))
    assert record["best_epoch"] == best == len(scores) - 3  # patience 1: two worse validations
    check_history(record, [record["history"][0]["step"] * (i + 1) for i in range(len(scores))])


@pytest.mark.parametrize("sampling", ["prefixes", "users"])
def test_step_based_validation_happens_at_the_configured_steps(tiny, sampling):
    settings = {**tiny, "train_sampling": sampling, "eval_every_steps": 15, "max_steps": 40}
    record = run("TwoTower", "ml-100k", config_dict=settings)
    check_history(record, [15, 30, 40])
    assert [e["epoch"] for e in record["history"]] == [0, 1, 2]
    assert record["stopped"] == "max_steps" and record["steps_run"] == 40
    per_epoch = 40 / record["history"][-1]["epochs_done"]
    assert record["epochs_run"] == 1 and 40 < per_epoch < 50  # 42 steps an epoch in the tiny slice


def test_user_sampling_per_epoch_takes_as_many_steps_as_prefixes(tiny):
    prefixes = run("TwoTower", "ml-100k", config_dict={**tiny, "epochs": 2})
    users = run("TwoTower", "ml-100k", config_dict={**tiny, "epochs": 2, "train_sampling": "users",
                                                     "train_min_history": 4})
    assert users["steps_run"] == prefixes["steps_run"] and users["stopped"] == "max_epochs"
    assert users["test_result"] != prefixes["test_result"]  # other samples, another model


def test_the_last_weights_are_tested_when_asked(wavering):
    best, last = wavering["best"], wavering["last"]
    assert best["best_epoch"] < best["epochs_run"] - 1
    assert last["test_weights"] == "last" and best["test_weights"] == "best"
    assert last["test_result"] != best["test_result"]
    assert last["history"] == [dict(e, wall_s=w["wall_s"]) for e, w in zip(best["history"], last["history"])]


def test_a_resumed_step_based_run_equals_an_uninterrupted_one(tiny):
    settings = {**tiny, "train_sampling": "users", "eval_every_steps": 10, "stopping_step": 10}
    whole = run("TwoTower", "ml-100k", config_dict={**settings, "max_steps": 40})
    run("TwoTower", "ml-100k", config_dict={**settings, "max_steps": 20})
    resumed = run("TwoTower", "ml-100k", config_dict={**settings, "max_steps": 40, "resume": "auto"})

    def without_time(record):
        return [{k: v for k, v in e.items() if k != "wall_s"} for e in record["history"]]

    assert without_time(resumed) == without_time(whole) and resumed["test_result"] == whole["test_result"]
    assert resumed["steps_run"] == 40 and resumed["stopped"] == "max_steps"


@pytest.mark.parametrize("settings, fragment", [
    ({"train_sampling": "user"}, "train_sampling='user' is not valid; choose one of: prefixes, users"),
    ({"train_min_history": 4}, "only train_sampling='users' draws target positions"),
    ({"train_sampling": "users", "train_min_history": 30}, "at most MAX_ITEM_LIST_LENGTH (20)"),
    ({"train_sampling": "users", "train_min_history": 0}, "train_min_history must be an integer >= 1"),
    ({"eval_every_steps": 0}, "eval_every_steps must be an integer >= 1"),
    ({"eval_every_steps": 100, "eval_step": 2}, "eval_step=2 is not valid; 1 with eval_every_steps"),
    ({"max_steps": "many"}, "max_steps must be an integer >= 1"),
    ({"test_weights": "final"}, "test_weights='final' is not valid; choose one of: best, last"),
])
def test_bad_regime_settings_are_refused_before_any_data(settings, fragment):
    with pytest.raises(ConfigError) as caught:
        spec_of(**settings)
    assert fragment in str(caught.value)
