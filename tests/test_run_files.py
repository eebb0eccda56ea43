"""Each run's files are its own: two runs started together in one folder keep two models, each
named like its run's log and record, written atomically and never over another run's file."""
import json
import os
import subprocess
import sys

import pytest
import torch

from recbole_croloss.glue import checkpoint
from tests.conftest import TINY

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: A run whose clock is held at one second (RecBole names its files to the second): two of them
#: are two runs started in the same second, whenever their trainers are built.
SAME_SECOND = ("import sys, recbole.utils.logger as logger, recbole.trainer.trainer as trainer; "
               "logger.get_local_time = trainer.get_local_time = lambda: 'Jan-01-2030_00-00-00'; "
               "from recbole_croloss.quick_start import main; sys.exit(main(sys.argv[1:]))")


def start_run(folder, seed: int) -> subprocess.Popen:
    """A one-epoch CLI run in ``folder`` (its checkpoints in folder/saved), started now."""
    settings = {**TINY, "seed": seed, "checkpoint_dir": "saved"}
    command = [sys.executable, "-c", SAME_SECOND, "--model=GRU4Rec",
               *[f"--{k}={v}" for k, v in settings.items()], f"--record=record-{seed}.json"]
    path = os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": path}
    return subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def test_two_runs_started_together_in_one_folder_keep_two_models(tmp_path):
    runs = [start_run(tmp_path, seed) for seed in (1, 2)]
    for run in runs:
        output = run.communicate(timeout=600)[0]
        assert run.returncode == 0, output[-3000:]
    records = [json.loads((tmp_path / f"record-{seed}.json").read_text()) for seed in (1, 2)]
    models = [record["files"]["model"] for record in records]
    assert sorted(os.listdir(tmp_path / "saved")) == sorted(
        name for model in models for name in (os.path.basename(model), os.path.basename(model)[:-4] + "-last.pth"))
    assert len(set(models)) == 2 and all(os.path.isabs(model) for model in models)
    for record, model in zip(records, models):  # the model, the log and the record share the run's name
        stem = os.path.splitext(os.path.basename(record["files"]["log"]))[0]
        assert os.path.basename(model) == f"{stem}.pth" and record["files"]["result"].endswith(f"{stem}.json")
        assert record["config"]["seed"] == checkpoint.load(model)["config"]["seed"]
    weights = [checkpoint.load(model)["state_dict"] for model in models]
    assert any(not torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_a_first_save_never_replaces_a_file_that_is_there(tmp_path):
    other = tmp_path / "GRU4Rec-ml-100k-run.pth"
    other.write_bytes(b"another run's model")
    with pytest.raises(checkpoint.CheckpointExistsError, match="already exists, written by another run"):
        checkpoint.save_new({"x": torch.ones(2)}, str(other))
    assert other.read_bytes() == b"another run's model" and os.listdir(tmp_path) == [other.name]
    mine = tmp_path / "mine.pth"
    checkpoint.save_new({"x": torch.ones(2)}, str(mine))
    assert torch.equal(checkpoint.load(str(mine))["x"], torch.ones(2))


def test_a_trainer_under_a_log_whose_files_exist_names_its_own(tmp_path, monkeypatch):
    import logging

    log = tmp_path / "GRU4Rec-ml-100k-Jan-01-2030_00-00-00-abc123-def456.log"
    log.write_text("")
    handler = logging.FileHandler(log)
    monkeypatch.setattr(logging.getLogger(), "handlers", [handler])
    try:
        first = checkpoint.model_file_for(str(tmp_path / "saved"), "GRU4Rec")
        assert first == str(tmp_path / "saved" / f"{log.stem}.pth")
        os.makedirs(tmp_path / "saved")
        open(first, "wb").close()
        second = checkpoint.model_file_for(str(tmp_path / "saved"), "GRU4Rec")
        assert second != first and os.path.basename(second).startswith(log.stem + "-")
    finally:
        handler.close()
