"""Resuming a run from its resume checkpoint: a CLI run killed (SIGKILL) after epoch 2 of 4 and
resumed with ``--resume=auto`` reports exactly what an uninterrupted 4-epoch run reports."""
import glob
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from recbole_croloss.errors import ConfigError
from recbole_croloss.glue.checkpoint import resume_header
from recbole_croloss.quick_start import configure, main
from tests.conftest import TINY

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: GRU4Rec draws from every source a resume restores: dropout (torch), the uniform negatives
#: (torch; set, as the slice's 981 items would otherwise train on every item) and the train
#: loader's shuffle (its own generator). INFO: the resume log lines.
SETTINGS = {**TINY, "epochs": 4, "seed": 7, "dropout_prob": 0.3, "state": "INFO", "negatives": "uniform"}


def cli(folder, *extra):
    """The CLI command of a run in ``folder`` (its checkpoints in folder/saved, its record in
    folder/record.json), and how to start it: this checkout's code, one thread."""
    folder.mkdir(exist_ok=True)
    command = [sys.executable, "-m", "recbole_croloss", "--model=GRU4Rec",
               *[f"--{k}={v}" for k, v in SETTINGS.items()], f"--checkpoint_dir={folder / 'saved'}",
               f"--record={folder / 'record.json'}", *extra]
    path = os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": path}
    return command, {"cwd": folder, "env": env}


def finished(folder, *extra):
    command, options = cli(folder, *extra)
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600, **options)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def killed_after_epoch(folder, epoch: int) -> str:
    """Start a run, SIGKILL it as soon as its resume checkpoint says ``epoch`` is done; the
    checkpoint's path."""
    command, options = cli(folder)
    with open(folder / "output.txt", "w") as output:
        proc = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, **options)
        deadline = time.monotonic() + 600
        try:
            while time.monotonic() < deadline and proc.poll() is None:
                files = glob.glob(str(folder / "saved" / "*-last.pth"))
                header = resume_header(files[0]) if files else None
                if header is not None and header["epoch"] >= epoch:
                    proc.send_signal(signal.SIGKILL)
                    break
                time.sleep(0.02)
        finally:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL, (folder / "output.txt").read_text()[-3000:]
    return files[0]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An uninterrupted run (resume=auto in an empty checkpoint_dir), and a run killed after
    epoch 2 (index 1) then resumed with resume=auto."""
    root = tmp_path_factory.mktemp("resume")
    start = time.monotonic()
    whole = finished(root / "whole", "--resume=auto")
    last = killed_after_epoch(root / "killed", 1)
    killed_header = resume_header(last)
    resumed = finished(root / "killed", "--resume=auto")
    return {"root": root, "whole": whole, "last": last, "killed_header": killed_header,
            "resumed": resumed, "seconds": time.monotonic() - start}


def valid_scores(log: str) -> list[str]:
    """Each evaluated epoch's ``(epoch, valid_score)`` in a run's log (colours removed)."""
    return re.findall(r"epoch (\d+) evaluating \[time: [0-9.]+s, valid_score: ([0-9.]+)\]",
                      re.sub(r"\x1b\[[0-9;]*m", "", log))


def record(folder):
    with open(folder / "record.json") as f:
        return json.load(f)


def test_a_run_killed_after_epoch_2_and_resumed_equals_the_uninterrupted_run(runs):
    root = runs["root"]
    assert runs["killed_header"]["epoch"] == 1  # killed after epoch 2 of 4, before epoch 3's end
    assert "Resuming from" in runs["resumed"].stderr and "training from epoch 2" in runs["resumed"].stderr
    whole, resumed = record(root / "whole"), record(root / "killed")
    assert resumed["test_result"] == whole["test_result"]
    assert resumed["best_valid_result"] == whole["best_valid_result"]
    assert resumed["best_valid_score"] == whole["best_valid_score"]
    # The validation history, epoch by epoch, and the training losses agree too.
    whole_scores, resumed_scores = valid_scores(runs["whole"].stderr), valid_scores(runs["resumed"].stderr)
    assert len(whole_scores) == 4 and resumed_scores == whole_scores[2:]
    states = [torch.load(glob.glob(str(root / name / "saved" / "*-last.pth"))[0], weights_only=True)
              for name in ("whole", "killed")]
    assert states[0]["train_loss"] == states[1]["train_loss"] and len(states[0]["train_loss"]) == 4
    assert resumed["files"]["model"] == os.path.join(str(root / "killed" / "saved"),
                                                     runs["killed_header"]["best_model_file"])


def test_auto_without_a_checkpoint_starts_from_epoch_0_and_says_so(runs):
    assert "resume=auto: no resume checkpoint to continue from" in runs["whole"].stderr
    assert "training from epoch 0" in runs["whole"].stderr


def test_the_checkpoints_hold_plain_values_and_the_full_config(runs):
    saved = runs["root"] / "whole" / "saved"
    best = [p for p in glob.glob(str(saved / "*.pth")) if not p.endswith("-last.pth")]
    for path in best + glob.glob(str(saved / "*-last.pth")):
        state = torch.load(path, weights_only=True)
        assert state["config"]["seed"] == 7 and state["config"]["dropout_prob"] == 0.3
        json.dumps(state["config"])  # JSON-safe, every key
    last = torch.load(glob.glob(str(saved / "*-last.pth"))[0], weights_only=True)
    assert (last["epoch"], sorted(last["rng"])) == (3, ["cuda", "numpy", "python", "torch", "train_loader"])
    assert last["best_valid_result"] == record(runs["root"] / "whole")["best_valid_result"]


def test_an_explicit_checkpoint_with_other_settings_is_refused_naming_the_keys(runs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = {**SETTINGS, "checkpoint_dir": str(runs["root"] / "killed" / "saved")}
    config, spec = configure("GRU4Rec", "ml-100k", config_dict={**settings, "resume": runs["last"], "epochs": 6})
    assert spec.resume.path == runs["last"]  # epochs may differ: a longer run continues
    with pytest.raises(ConfigError, match=r"alpha: None in the checkpoint, 1\.5 now.*seed: 7 in the checkpoint, 8 now"):
        configure("GRU4Rec", "ml-100k", config_dict={**settings, "resume": runs["last"], "alpha": 1.5, "seed": 8})
    best = os.path.join(os.path.dirname(runs["last"]), runs["killed_header"]["best_model_file"])
    with pytest.raises(ConfigError, match="not a resume checkpoint"):
        configure("GRU4Rec", "ml-100k", config_dict={**settings, "resume": best})
    _, spec = configure("GRU4Rec", "ml-100k", config_dict={**settings, "resume": "auto", "alpha": 1.5})
    assert (spec.resume.path, spec.resume.passed_over) == (None, 1)


def test_a_checkpoint_of_drawn_negatives_is_not_continued_on_every_item(runs, tmp_path, monkeypatch):
    from recbole_croloss.quick_start import prepare_run

    monkeypatch.chdir(tmp_path)
    unset = {k: v for k, v in SETTINGS.items() if k != "negatives"}  # the slice's default: every item
    settings = {**unset, "checkpoint_dir": str(runs["root"] / "killed" / "saved"), "resume": runs["last"], "epochs": 6}
    with pytest.raises(ConfigError, match="it trained on 'uniform' negatives and this run would train on 'full'"):
        prepare_run("GRU4Rec", "ml-100k", config_dict=settings)


def test_a_missing_resume_file_stops_the_cli_before_any_data(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    missing = str(tmp_path / "saved" / "GRU4Rec-gone-last.pth")
    args = ["--model=GRU4Rec", *[f"--{k}={v}" for k, v in TINY.items()], f"--resume={missing}"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"resume={missing!r} is not valid; no such file" in err
    assert not os.path.exists(tmp_path / "log")  # RecBole's logger, set up before the data, never ran
    with pytest.raises(ConfigError, match="resume"):
        configure("GRU4Rec", "ml-100k", config_dict={**TINY, "resume": 3})
