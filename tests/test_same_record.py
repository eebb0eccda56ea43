"""The same command gives the same record: a run on the ml-100k slice, against the record the
same command wrote at commit ceffdd5, before the run flow moved into ``flow/`` and the command
line into ``cli.py`` (tests/fixtures/gru4rec-ml-100k-2-epochs.record.json; its file paths, the
bundled dataset's path and wall times left out, as they differ between any two installs or runs)."""
import json
from pathlib import Path

import pytest
import torch

from recbole_croloss.cli import main

FIXTURE = Path(__file__).parent / "fixtures" / "gru4rec-ml-100k-2-epochs.record.json"
COMMAND = ["--model=GRU4Rec", "--dataset=ml-100k", "--epochs=2", "--user_inter_num_interval=[0,50]",
           "--MAX_ITEM_LIST_LENGTH=20", "--embedding_size=16", "--hidden_size=16", "--threads=1",
           "--show_progress=False"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="the stored record is a CPU run's; with a GPU the run trains there")
def test_the_same_command_writes_the_same_record(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main([*COMMAND, f"--record={tmp_path / 'record.json'}"]) == 0
    record = json.loads((tmp_path / "record.json").read_text())
    assert record.pop("files")["model"].startswith(str(tmp_path))
    assert all(entry.pop("wall_s") > 0 for entry in record["history"])
    assert record["config"].pop("data_path").endswith("dataset_example/ml-100k")  # RecBole's bundled copy
    expected = json.loads(FIXTURE.read_text())
    assert record["test_result"] == expected["test_result"]  # the figure first, then everything
    assert record == expected
