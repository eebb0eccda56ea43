"""What a run shows its user: every validation metric and the training loss in TensorBoard at
each validation's step, the validation curves as a PNG beside the record, and wandb untouched
without ``log_wandb``. The run is docs/configuration.md's "Logging" command (its settings for ml-100k
replaced by the synthetic dataset's), read back with TensorBoard's own EventAccumulator."""
import contextlib
import glob
import importlib.util
import io
import json
import os
import shlex
import sys
import types

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from recbole_croloss.errors import ConfigError
from recbole_croloss.quick_start import configure, main
from recbole_croloss.flow.run_log import close_log_handlers
from tests.conftest import SYNTHETIC
from tests.doc_blocks import code_blocks


class Tripwire(types.ModuleType):
    """Stands in for wandb: any use of it is recorded (and fails the use)."""

    def __init__(self):
        super().__init__("wandb")
        self.uses = []

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        self.uses.append(name)
        raise AssertionError(f"wandb.{name} used without log_wandb")


def readme_run_args(overrides: dict) -> list[str]:
    """The docs' Logging command as CLI arguments, with ``overrides`` replacing its values."""
    command = code_blocks("docs/configuration.md", "Logging", "bash")[0].strip()
    words = shlex.split(command)
    assert words[:2] == ["python", "run_recbole_croloss.py"]
    settings = dict(word[2:].split("=", 1) for word in words[2:])
    settings.update({k: str(v).replace(" ", "") for k, v in overrides.items()})
    return [f"--{k}={v}" for k, v in settings.items()]


@pytest.fixture(scope="module")
def logged_run(synthetic_data, tmp_path_factory):
    """The docs' command in a fresh folder, with wandb replaced by a tripwire."""
    folder = tmp_path_factory.mktemp("logging")
    overrides = {**SYNTHETIC, "dataset": "syn", "data_path": synthetic_data, "epochs": 3}
    tripwire, old_cwd, old_wandb = Tripwire(), os.getcwd(), sys.modules.get("wandb")
    os.chdir(folder)
    sys.modules["wandb"] = tripwire
    try:
        close_log_handlers()  # this run's own log file and TensorBoard folder
        assert main(readme_run_args(overrides)) == 0
    finally:
        os.chdir(old_cwd)
        if old_wandb is None:
            sys.modules.pop("wandb", None)
        else:
            sys.modules["wandb"] = old_wandb
    with open(folder / "runs" / "twotower.json") as fh:
        record = json.load(fh)
    return folder, record, tripwire


def test_tensorboard_holds_every_validation_metric_and_the_loss_at_each_step(logged_run):
    folder, record, _ = logged_run
    (run_dir,) = glob.glob(str(folder / "log_tensorboard" / "TwoTower-*"))
    events = EventAccumulator(run_dir)
    events.Reload()
    history = record["history"]
    assert len(history) == 3 and len({e["step"] for e in history}) == 3
    for metric in history[0]["valid_result"]:  # every metric at every cut-off
        scalars = events.Scalars(f"valid/{metric}")
        assert [s.step for s in scalars] == [e["step"] for e in history]
        assert [s.value for s in scalars] == pytest.approx([e["valid_result"][metric] for e in history], abs=1e-6)
    assert {f"{m}@{k}" for m in ("recall", "ndcg", "hit", "mrr") for k in (10, 100)} <= set(history[0]["valid_result"])
    assert [s.value for s in events.Scalars("valid/score")] == pytest.approx([e["valid_score"] for e in history], abs=1e-6)
    losses = events.Scalars("train/loss")
    assert [s.value for s in losses] == pytest.approx([e["train_loss"] for e in history], rel=1e-6)
    assert "Vaild_score" in events.Tags()["scalars"]  # RecBole's own scalar is still written


def test_the_readme_snippet_reads_the_recall_curve_back(logged_run):
    folder, record, _ = logged_run
    (snippet,) = code_blocks("docs/configuration.md", "Logging", "python")
    printed, cwd = io.StringIO(), os.getcwd()
    os.chdir(folder)
    try:
        with contextlib.redirect_stdout(printed):
            exec(snippet, {})
    finally:
        os.chdir(cwd)
    expected = [(e["step"], round(e["valid_result"]["recall@100"], 4)) for e in record["history"]]
    assert eval(printed.getvalue()) == expected


def test_the_curves_png_lies_beside_the_record(logged_run):
    folder, record, _ = logged_run
    assert record["files"]["curves"] == "runs/twotower.curves.png"
    with open(folder / "runs" / "twotower.curves.png", "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    assert sorted(os.listdir(folder / "runs")) == ["twotower.curves.png", "twotower.hits.npz", "twotower.json"]
    assert record["valid_score_bigger"] is True


def test_wandb_is_never_touched_without_log_wandb(logged_run):
    _, record, tripwire = logged_run
    assert record["config"]["log_wandb"] is False and tripwire.uses == []


@pytest.mark.skipif(importlib.util.find_spec("wandb") is not None, reason="wandb is installed here")
def test_log_wandb_without_wandb_stops_before_any_data(synthetic):
    with pytest.raises(ConfigError, match="log_wandb=True is not valid; wandb is not installed"):
        configure("TwoTower", "syn", config_dict={**synthetic, "log_wandb": True})
