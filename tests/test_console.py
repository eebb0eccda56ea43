"""What a run prints: a short header, the epochs' progress and the result on the console, every
line RecBole logs in the log file; ``verbose`` (or a ``state`` the user sets) gives RecBole's
console; RecBole's known deprecation warnings are silenced by name."""
import io
import json
import logging
import os
import warnings

import pytest

from recbole_croloss import compat
from recbole_croloss.glue.progress import CONSOLE, EpochProgress, duration
from recbole_croloss.quick_start import main, prepare_run


def quiet_tiny(tiny, **settings):
    """TINY without its ``state`` (the user setting one makes the console RecBole's)."""
    return {**{k: v for k, v in tiny.items() if k != "state"}, **settings}


def test_the_console_shows_a_header_the_epochs_and_the_result_and_the_log_keeps_every_line(tiny, tmp_path, capsys):
    record_file = tmp_path / "run.json"
    args = [f"--{k}={v}" for k, v in quiet_tiny(tiny, epochs=2).items()]
    assert main(["--model=GRU4Rec", *args, f"--record={record_file}"]) == 0
    captured = capsys.readouterr()
    record = json.loads(record_file.read_text())
    model_file = os.path.abspath(record["files"]["model"])
    err = captured.err.splitlines()
    assert err[0].startswith("dataset ml-100k: ") and " users, " in err[0] and " interactions (" in err[0], err
    run = [line for line in err if line.startswith("GRU4Rec on ml-100k, loss croloss: kernel softplus, alpha 1, ")]
    assert len(run) == 1 and run[0].endswith(", score dot; protocol: RecBole leave-one-out; device: cpu"), err
    assert "training: at most 2 epochs, stopping after 3 validations without a better Recall@50" in err
    assert f"log:    {record['files']['log']} (every setting and every line)" in err
    assert f"record: {record['files']['result']} and {record_file}" in err
    assert f"model:  {model_file}" in err
    epochs = [line for line in err if line.startswith("epoch ")]
    assert [line.split(",")[0] for line in epochs] == ["epoch 0 done (1/2)", "epoch 1 done (2/2)"]
    assert "valid Recall@50 0." in epochs[0] and "at most" in epochs[0] and "left" not in epochs[1]
    assert sum(line.startswith("the first epoch took ") for line in err) == 1
    assert len(err) < 15 and "General Hyper Parameters" not in captured.err and "Warning" not in captured.err
    out = captured.out.splitlines()
    assert f"model: {model_file}" in out and os.path.isfile(model_file)
    assert f"  python -m recbole_croloss.recommend --checkpoint {model_file} --input histories.txt --k 10" in out
    assert out[-1] == f"config and metrics: {record['files']['result']}"
    log = open(record["files"]["log"]).read()
    for line in ("General Hyper Parameters", "epoch 1 training", "valid result", "the first epoch took",
                 "GRU4Rec on ml-100k, loss croloss"):
        assert line in log
    assert "epoch 0 done" not in log  # the progress is the console's only


@pytest.mark.parametrize("settings, full", [({}, False), ({"verbose": True}, True), ({"state": "INFO"}, True)])
def test_verbose_or_a_state_set_by_the_user_gives_recbole_s_console(tiny, capsys, settings, full):
    prepare_run("GRU4Rec", "ml-100k", config_dict=quiet_tiny(tiny, **settings))
    err = capsys.readouterr().err
    assert ("General Hyper Parameters" in err) == full and "GRU4Rec on ml-100k, loss croloss" in err


def test_a_verbose_that_is_not_true_or_false_stops_the_cli(tiny, capsys):
    assert main(["--model=GRU4Rec", *[f"--{k}={v}" for k, v in tiny.items()], "--verbose=maybe"]) == 2
    assert "verbose='maybe' is not valid; choose one of: true, false" in capsys.readouterr().err
    assert not os.path.exists("log")


def test_recbole_s_deprecation_warnings_are_silenced_by_name_and_only_from_recbole(tiny):
    with warnings.catch_warnings(record=True) as caught:
        prepared = prepare_run("GRU4Rec", "ml-100k", config_dict={**tiny, "MAX_ITEM_LIST_LENGTH": 5})
        prepared.trainer._train_epoch(prepared.train_data, 0)  # RecBole builds its GradScaler here
        warnings.warn(compat.RECBOLE_DEPRECATIONS["pandas_chained_fillna"][1] + ".", FutureWarning)
    from_recbole = [str(w.message)[:60] for w in caught if f"{os.sep}recbole{os.sep}" in w.filename]
    assert from_recbole == []
    assert [w.filename for w in caught if issubclass(w.category, FutureWarning)] == [__file__]  # others' are shown
    assert sorted(compat.RECBOLE_DEPRECATIONS) == ["pandas_chained_fillna", "torch_cuda_amp_grad_scaler"]


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("stream", [io.StringIO(), Terminal()])
def test_the_epoch_progress_is_a_bar_on_a_terminal_and_a_line_an_epoch_elsewhere(stream, caplog):
    logger = logging.getLogger("progress-test")
    progress = EpochProgress(stream, 0, 3, logger, stopping_step=10)
    with caplog.at_level(logging.INFO, logger="progress-test"):
        for epoch in range(3):
            progress.epoch_done(epoch, 0.5, "valid Recall@50 0.1000")
    progress.close()
    text = stream.getvalue()
    if isinstance(stream, Terminal):
        assert "Epochs" in text and "3/3" in text and "\r" in text and "epoch 0 done" not in text
    else:
        assert [line.split(",")[0] for line in text.splitlines()] == [f"epoch {e} done ({e + 1}/3)" for e in range(3)]
        assert "loss 0.5000, valid Recall@50 0.1000" in text
    estimates = [r for r in caplog.records if r.getMessage().startswith("the first epoch took")]
    assert len(estimates) == 1 and estimates[0].console is CONSOLE["console"]
    assert "the 2 epochs left take at most" in estimates[0].getMessage()
    assert "early stopping ends it sooner after 10 validations" in estimates[0].getMessage()


def test_durations_read_as_a_person_says_them():
    assert [duration(s) for s in (8.24, 125, 6 * 3600 + 300)] == ["8.2 s", "2 min 05 s", "6 h 05 min"]
