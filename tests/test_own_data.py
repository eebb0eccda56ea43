"""A new user's own data, the way docs/own-data.md says: write it with the synthetic generator or import
a CSV with the importer, then run its "Your own data" command on it. The command is
taken from the page as it is; the tests add only ``--epochs=2`` (RecBole's default is 300) and
``--record`` to read the result, no key that makes the data load.)"""
import json
import os
import re
import subprocess
import sys

from tests.doc_blocks import page_section

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def readme_command(name: str, data: str) -> list[str]:
    """The page's own-data command, with its NAME and DATA filled in."""
    section = page_section("docs/own-data.md", "Your own data")
    line = re.search(r"^python run_recbole_croloss\.py .*$", section, flags=re.M).group(0)
    script, *args = line.replace("NAME", name).replace("DATA", data).split()[1:]
    return [sys.executable, os.path.join(ROOT, script), *args]  # run from the user's own folder


def run_readme_command(name, data, cwd, *extra):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ROOT}
    command = readme_command(name, data) + [f"--record={cwd / 'record.json'}", *extra]
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(cwd / "record.json") as fh:
        return json.load(fh), proc


def test_generated_dataset_runs_the_readme_command_unchanged(tmp_path):
    data = tmp_path / "data"
    subprocess.run([sys.executable, "-m", "recbole_croloss.data.synthetic", "--name", "synth", "--out", str(data),
                    "--users", "400", "--items", "600", "--mean-length", "12", "--interests", "10",
                    "--seed", "1"], check=True, cwd=ROOT, capture_output=True)
    record, proc = run_readme_command("synth", str(data), tmp_path, "--epochs=2")
    assert "epoch 0 done (1/2)" in proc.stderr and "epoch 1 done (2/2)" in proc.stderr  # the console's progress
    assert "the first epoch took " in proc.stderr and ": the epoch left takes at most " in proc.stderr
    assert record["dataset"] == "synth" and record["loss"] == "croloss_lambda"
    assert record["config"]["train_batch_size"] == 256 and record["config"]["MAX_ITEM_LIST_LENGTH"] == 20
    assert "timestamp" in record["config"]["load_col"]["inter"]
    assert 0.0 < record["test_result"]["recall@500"] <= 1.0
    log = open(record["files"]["log"]).read()
    assert "has a time field 'timestamp': it is loaded" in log
    assert "has no YAML of the plugin's: train_batch_size=256, MAX_ITEM_LIST_LENGTH=20, stopping_step=10 (" in log
    assert record["config"]["stopping_step"] == 10 and "the first epoch took " in log


def test_imported_csv_runs_the_readme_command(tmp_path):
    csv = tmp_path / "clicks.csv"
    rows = ["user,item,time"] + [f"{u},{(u * 7 + k * 13) % 620},{1000 + k}" for u in range(120) for k in range(10)]
    csv.write_text("\n".join(rows) + "\n")
    data = tmp_path / "data"
    subprocess.run([sys.executable, "-m", "recbole_croloss.data.importer", "--format", "csv", "--src", str(csv),
                    "--name", "clicks", "--out", str(data), "--user-col", "user", "--item-col", "item",
                    "--time-col", "time"], check=True, cwd=ROOT, capture_output=True)
    record, _ = run_readme_command("clicks", str(data), tmp_path, "--epochs=2")
    assert record["dataset"] == "clicks" and 0.0 <= record["test_result"]["recall@50"] <= 1.0
    assert record["best_valid_result"]  # validated on the imported data


def test_a_dataset_without_a_time_field_is_ordered_by_line(tmp_path):
    """No timestamp column: each user's interactions in file order (the line number is the time)."""
    folder = tmp_path / "data" / "plain"
    folder.mkdir(parents=True)
    lines = ["user_id:token\titem_id:token"]
    lines += [f"{u}\t{(u * 11 + k * 17) % 650 + 1}" for u in range(1, 301) for k in range(8)]
    (folder / "plain.inter").write_text("\n".join(lines) + "\n")
    record, _ = run_readme_command("plain", str(tmp_path / "data"), tmp_path, "--epochs=1")
    assert 0.0 <= record["test_result"]["recall@50"] <= 1.0
    log = open(record["files"]["log"]).read()
    assert "has no time field 'timestamp': each user's interactions are taken in the order of the file's lines" in log


def test_line_order_is_the_file_s_order(tmp_path, monkeypatch):
    from recbole_croloss.settings.config import PluginConfig
    from recbole_croloss.data.line_order import LineOrderDataset
    from recbole_croloss.glue import get_model

    folder = tmp_path / "plain"
    folder.mkdir()
    rows = [(1, 5), (2, 3), (1, 2), (1, 9), (2, 1)]
    (folder / "plain.inter").write_text("user_id:token\titem_id:token\n" + "".join(f"{u}\t{i}\n" for u, i in rows))
    monkeypatch.chdir(tmp_path)
    config = PluginConfig(get_model("GRU4Rec"), "plain", config_dict={"data_path": str(tmp_path)})
    dataset = LineOrderDataset(config)
    ordered = dataset.inter_feat.sort_values([dataset.uid_field, dataset.time_field])  # as RecBole sorts
    users = dataset.id2token(dataset.uid_field, ordered[dataset.uid_field].to_numpy())
    items = dataset.id2token(dataset.iid_field, ordered[dataset.iid_field].to_numpy())
    assert list(zip(users.tolist(), items.tolist())) == [("1", "5"), ("1", "2"), ("1", "9"), ("2", "3"), ("2", "1")]


def write_plain(folder, users=300):
    """A dataset ``plain`` without a YAML of the plugin's: ``users`` users of 8 interactions."""
    (folder / "plain").mkdir(parents=True)
    lines = ["user_id:token\titem_id:token"]
    lines += [f"{u}\t{(u * 11 + k * 17) % 650 + 1}" for u in range(1, users + 1) for k in range(8)]
    (folder / "plain" / "plain.inter").write_text("\n".join(lines) + "\n")


def test_own_data_trains_for_a_budget_a_user_can_wait_for(tmp_path, monkeypatch):
    from recbole_croloss.settings.config import PluginConfig
    from recbole_croloss.glue import get_model

    write_plain(tmp_path)
    monkeypatch.chdir(tmp_path)
    gru = get_model("GRU4Rec")
    own = PluginConfig(gru, "plain", config_dict={"data_path": str(tmp_path)})
    assert (own["epochs"], own["stopping_step"]) == (100, 10)  # not RecBole's 300 epochs
    chosen = PluginConfig(gru, "plain", config_dict={"data_path": str(tmp_path)}, cmd_args={"epochs": "7"})
    assert (chosen["epochs"], chosen["stopping_step"]) == (7, 10)
    assert PluginConfig(gru, "ml-100k")["epochs"] == 10  # a dataset with a YAML keeps its own


def test_the_own_data_budget_is_said_on_the_console(tmp_path, monkeypatch, capsys):
    from recbole_croloss.quick_start import prepare_run

    write_plain(tmp_path)
    monkeypatch.chdir(tmp_path)
    prepare_run("GRU4Rec", "plain", config_dict={"data_path": str(tmp_path), "show_progress": False,
                                                 "embedding_size": 8, "hidden_size": 8})
    err = capsys.readouterr().err
    assert ("dataset 'plain' has no YAML of the plugin's: train_batch_size=256, MAX_ITEM_LIST_LENGTH=20, "
            "epochs=100, stopping_step=10 (the defaults for data of your own") in err
    assert "dataset plain: 300 users, " in err and "General Hyper Parameters" not in err
