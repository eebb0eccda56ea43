"""recbole_croloss.load: a run reloaded from its best-model file reproduces the run."""
import subprocess
import sys
import warnings

import pytest
import torch

import recbole_croloss
from recbole_croloss.errors import ConfigError
from recbole_croloss.glue import CROLossAdapter, get_model
from recbole_croloss.loading import load, trainer_for

#: Every key RecBole's trainer writes into its best-model file (``Trainer._save_checkpoint``).
RECBOLE_KEYS = {"config", "epoch", "cur_step", "best_valid_score", "state_dict", "other_parameter", "optimizer"}


@pytest.mark.parametrize("model", ["GRU4Rec", "ComiRec"])  # a RecBole model and a plugin one
def test_a_reloaded_run_reproduces_its_test_metrics_exactly(trained_run, tiny, model):
    record = trained_run(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # the rebuilt config is the run's
        config, adapter, dataset, train_data, valid_data, test_data = recbole_croloss.load(record["files"]["model"])
    assert isinstance(adapter, CROLossAdapter) and type(adapter.model).__name__ == model
    assert not adapter.training and adapter.loss is not None  # trained and ranked as the run was
    assert config["loss"] == record["loss"] == "croloss" and config["MAX_ITEM_LIST_LENGTH"] == 25
    assert config["faiss_index"] == "none"  # a reloaded run serves nothing by itself
    assert trainer_for(config, adapter).evaluate(test_data, load_best_model=False) == record["test_result"]
    assert len(train_data) and len(valid_data) and dataset.item_num == test_data._dataset.item_num


def test_an_alpha_auto_run_reloads_as_the_plain_run_its_search_chose(tiny, tmp_path, monkeypatch):
    """The winner's checkpoint rebuilds as a run with the chosen alpha and kernel, judged and
    tested on the topk and valid_metric the search set, and reproduces the run's test metrics."""
    from recbole_croloss.quick_start import run

    monkeypatch.chdir(tmp_path)
    record = run("TwoTower", "ml-100k", config_dict={
        **tiny, "alpha": "auto", "target_n": 20, "alpha_grid": [0.8, 1.2], "alpha_search_kernels": ["sigmoid", "exp"],
        "alpha_search_epochs": 1, "topk": [10, 50], "checkpoint_dir": str(tmp_path / "saved")})
    chosen = record["alpha_search"]["chosen"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # the rebuilt config is the run's
        config, adapter, _, _, _, test_data = load(record["files"]["model"])
    assert (config["alpha"], config["kernel"]) == (chosen["alpha"], chosen["kernel"])
    assert config["topk"] == [10, 20, 50] and config["valid_metric"] == "Recall@20" and config["target_n"] is None
    assert trainer_for(config, adapter).evaluate(test_data, load_best_model=False) == record["test_result"]


def test_a_run_on_a_generated_dataset_with_a_relative_data_path_reloads_without_a_warning(synthetic, tmp_path):
    """A user's own dataset (no dataset YAML: the run loads its time field itself) under a
    relative data_path: the rebuilt config is the run's, and the test metrics are reproduced."""
    import shutil

    from recbole_croloss.quick_start import run

    shutil.copytree(synthetic["data_path"], tmp_path / "DATA")
    record = run("TwoTower", "syn", config_dict={**synthetic, "data_path": "DATA"})
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        config, adapter, _, _, _, test_data = load(record["files"]["model"])
    assert config["TIME_FIELD"] in config["load_col"]["inter"]
    assert trainer_for(config, adapter).evaluate(test_data, load_best_model=False) == record["test_result"]


def test_the_best_model_file_is_what_recbole_reads(trained_run, tiny):
    record = trained_run("GRU4Rec")
    state = torch.load(record["files"]["model"], weights_only=True)
    assert RECBOLE_KEYS <= set(state) and state["config"]["model"] == "GRU4Rec"
    assert state["best_valid_score"] == record["best_valid_score"]
    config, adapter, _, train_data, _, test_data = load(record["files"]["model"])
    # RecBole's own GRU4Rec, built as load_data_and_model builds it, takes the state dict as is.
    recbole_model = get_model("GRU4Rec")(config, train_data._dataset)
    recbole_model.load_state_dict(state["state_dict"])
    recbole_model.eval()
    interaction = next(iter(test_data))[0]
    with torch.no_grad():
        torch.testing.assert_close(recbole_model.full_sort_predict(interaction),
                                   adapter.full_sort_predict(interaction), rtol=0, atol=0)


def test_a_setting_the_rebuilt_config_reads_otherwise_is_named(trained_run, tiny, tmp_path):
    state = torch.load(trained_run("GRU4Rec")["files"]["model"], weights_only=True)
    del state["run_settings"]["embedding_size"]  # as if the default had been the run's
    torch.save(state, tmp_path / "changed.pth")
    with pytest.warns(RuntimeWarning, match="embedding_size: 16 in the checkpoint, 64 now"):
        with pytest.raises(ValueError, match="not those of GRU4Rec"):
            load(str(tmp_path / "changed.pth"))


def test_a_file_that_is_no_run_checkpoint_is_refused(tmp_path):
    (tmp_path / "text.pth").write_text("not a checkpoint")
    torch.save({"config": {}, "state_dict": {}}, tmp_path / "old.pth")
    torch.save({"config": ConfigError("k", 1, "x")}, tmp_path / "pickled.pth")  # an object a safe load refuses
    for name, message in (("missing.pth", "no such file"), ("text.pth", r"not a zip archive, the format torch.save "
                                                                         r"writes: its first bytes are b'not a chec"),
                          ("pickled.pth", r"Python objects \(recbole_croloss.errors.ConfigError\).*pickles its Config"),
                          ("old.pth", "run_settings")):
        with pytest.raises(ConfigError, match=message):
            load(str(tmp_path / name))


def _what_each_file_is(tmp_path) -> dict:
    """Files that are not a run's checkpoint, each with what the refusal says it is."""
    import zipfile

    (tmp_path / "empty.pth").write_bytes(b"")
    (tmp_path / "random.pth").write_bytes(bytes(range(7, 250, 3)) * 20)
    (tmp_path / "dot.pth").write_text(".")  # torch's unpickler: IndexError: pop from empty list
    torch.save({"weights": torch.ones(2)}, tmp_path / "plain.pth")
    torch.save([1, 2], tmp_path / "list.pth")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
        archive.writestr("notes.txt", "hello")
    torch.save({"config": {}, "state_dict": {}, "run_settings": {}}, tmp_path / "whole.pth")
    (tmp_path / "cut.pth").write_bytes((tmp_path / "whole.pth").read_bytes()[:200])
    (tmp_path / "folder").mkdir()
    return {"empty.pth": r"is an empty file \(0 bytes\), not a checkpoint$",
            "random.pth": r"is not a zip archive, the format torch.save writes: its first bytes are b'\\x07\\n",
            "dot.pth": "is not a zip archive, the format torch.save writes: its first bytes are b'.'$",
            "plain.pth": r"is not a run's checkpoint: it lacks config, state_dict, run_settings \(its keys: weights\)",
            "list.pth": "is a torch file of a list, not of a run's config, state_dict, run_settings",
            "other.zip": r"is a zip archive that torch.save did not write \(no data.pkl; it holds \['notes.txt'\]\)",
            "cut.pth": r"is the start of a zip archive without its end",
            "folder": "is a directory, not a checkpoint file"}


def test_a_refusal_says_what_the_file_is_and_never_suggests_unsafe_loading(tmp_path):
    for name, message in _what_each_file_is(tmp_path).items():
        with pytest.raises(ConfigError, match=message) as refused:
            load(str(tmp_path / name))
        text = str(refused.value)
        assert "give a run's best-model file (its record's files.model); this one " in text
        assert "weights_only" not in text and "Re-running" not in text and "pop from" not in text, text


def test_importing_the_package_loads_neither_torch_nor_recbole():
    code = "import sys, recbole_croloss; heavy = [m for m in ('torch', 'recbole') if m in sys.modules]; assert not heavy, heavy"
    subprocess.run([sys.executable, "-c", code], check=True)
    assert recbole_croloss.load is load and recbole_croloss.Recommender.__module__ == "recbole_croloss.serving.recommender"
