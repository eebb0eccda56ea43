"""The folders a run writes in (checkpoint_dir, RecBole's ./log/<model> and ./log_tensorboard) are
checked before any data is loaded: one that cannot be made stops the CLI with an error naming it,
not RecBole's NotADirectoryError traceback mid-run."""
import os

import pytest

from recbole_croloss.quick_start import main

from .conftest import TINY

ARGS = ["--model=GRU4Rec", *[f"--{k}={v}" for k, v in TINY.items()]]


@pytest.mark.parametrize("in_the_way, fragment", [
    ("log", "log folder='{tmp}/log/GRU4Rec' is not valid; {tmp}/log is a file, not a directory; RecBole "
            "writes the run's log file there, in the folder the run starts in (no setting moves it)"),
    ("log_tensorboard", "TensorBoard folder='{tmp}/log_tensorboard' is not valid; {tmp}/log_tensorboard is a "
                        "file, not a directory; RecBole writes the run's TensorBoard events there"),
    ("saved", "checkpoint_dir='saved/run' is not valid; {tmp}/saved is a file, not a directory"),
])
def test_a_run_folder_under_a_file_stops_before_any_data(in_the_way, fragment, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / in_the_way).write_text("a file where the run makes a folder\n")
    assert main([*ARGS, "--checkpoint_dir=saved/run"]) == 2
    err = capsys.readouterr().err
    assert fragment.format(tmp=tmp_path) in err, err
    assert "Traceback" not in err
    assert sorted(os.listdir(tmp_path)) == [in_the_way]  # no log, no checkpoint folder: stopped before RecBole


def test_a_run_started_in_a_folder_it_cannot_write_stops_before_any_data(tmp_path, monkeypatch, capsys):
    """/proc refuses new folders even to root, as a read-only folder would."""
    monkeypatch.chdir("/proc")
    assert main([*ARGS, f"--checkpoint_dir={tmp_path / 'saved'}"]) == 2
    err = capsys.readouterr().err
    assert "log folder='/proc/log/GRU4Rec' is not valid; a folder that can be written (/proc: " in err, err
    assert not os.path.exists(tmp_path / "saved")
