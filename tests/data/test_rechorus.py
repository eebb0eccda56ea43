"""ReChorus's layout: the importer keeps its split and its negatives exactly, and
``sampled_negatives_dir`` evaluates every case on its own fixed negatives."""
import json
import os

import numpy as np
import pytest
import torch

from recbole_croloss.data.importer import main as importer_main
from recbole_croloss.data.rechorus import import_rechorus, parse_neg_items
from recbole_croloss.data.import_parsing import MalformedInputError
from recbole_croloss.errors import ConfigError
from recbole_croloss.glue.trainer import _candidate_scores
from recbole_croloss.quick_start import prepare_run
from tests.test_spec import spec_of
from tests.doc_blocks import read_page

N_NEG = 9
SAMPLED = {"protocol": "sampled", "topk": [1, 5, 10], "metrics": ["Hit", "NDCG"], "valid_metric": "NDCG@5"}


def write_rechorus(folder, n_users=40, n_items=60, seed=3, negatives=True, n_neg=N_NEG, sep="\t", newline="\n"):
    """A small dataset in ReChorus's layout: 5-9 training rows per user (with tied times), then
    one dev and one test case each, whose negatives avoid the user's items (and, as in ReChorus's
    densely numbered data, are items the interactions name). Returns the cases as
    ``{file: {user: (item, negatives)}}``. ``sep``/``newline``: tab and LF are the CIKM22-era
    layout; ReChorus's current release writes ``","``, ``"\\r\\n"`` and no ``neg_items`` (a
    comma-separated ``neg_items`` list is quoted, as pandas writes it)."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    histories = {}
    for user in range(1, n_users + 1):
        items = rng.choice(np.arange(1, n_items + 1), size=int(rng.integers(7, 12)), replace=False)
        times = np.sort(rng.integers(1000, 1100, size=len(items)))
        times[1] = times[0]  # a tie: the file order decides
        histories[user] = (items, times)
    named = np.unique(np.concatenate([items for items, _ in histories.values()]))
    train, cases = [], {"dev.csv": {}, "test.csv": {}}
    for user, (items, times) in histories.items():
        train += [f"{user}\t{item}\t{t}" for item, t in zip(items[:-2], times[:-2])]
        pool = np.setdiff1d(named, items)
        for name, item, t in (("dev.csv", items[-2], times[-2]), ("test.csv", items[-1], times[-1])):
            cases[name][str(user)] = (str(item), [str(i) for i in rng.choice(pool, n_neg)], int(t))
    rng.shuffle(train)
    quote = '"' if sep == "," else ""
    with open(os.path.join(folder, "train.csv"), "w", newline="") as f:
        f.write(newline.join(["user_id\titem_id\ttime", *train]).replace("\t", sep) + newline)
    for name, rows in cases.items():
        with open(os.path.join(folder, name), "w", newline="") as f:
            f.write(sep.join(["user_id", "item_id", "time", *(["neg_items"] if negatives else [])]) + newline)
            for user, (item, negs, t) in rows.items():
                negs = [f"{quote}[{', '.join(negs)}]{quote}"] if negatives else []
                f.write(sep.join([str(user), item, str(t), *negs]) + newline)
    return {name: {u: (i, n) for u, (i, n, _) in rows.items()} for name, rows in cases.items()}


@pytest.fixture
def imported(tmp_path):
    cases = write_rechorus(tmp_path / "src")
    summary = import_rechorus(str(tmp_path / "src"), "rc", str(tmp_path / "data"))
    return tmp_path, cases, summary


def _config(tmp_path, **extra):
    return {"data_path": str(tmp_path / "data"), "epochs": 1, "train_batch_size": 64, "embedding_size": 8,
            "show_progress": False, "state": "WARNING", "checkpoint_dir": str(tmp_path / "saved"),
            "sampled_negatives_dir": str(tmp_path / "data" / "rc"), **SAMPLED, **extra}


def test_neg_items_lists_parse_and_anything_else_is_refused():
    assert parse_neg_items(" [12, 7,301] ") == ["12", "7", "301"]
    assert parse_neg_items("12, 7") is None and parse_neg_items("[]") is None and parse_neg_items("[1, x]") is None


def test_the_import_keeps_the_split_and_the_negatives(imported):
    tmp_path, cases, summary = imported
    assert summary["cases"] == {"dev": 40, "test": 40} and summary["negatives_per_case"] == N_NEG
    prepared = prepare_run("TwoTower", "rc", config_dict=_config(tmp_path))
    dataset = prepared.train_data._dataset
    for loader, name in ((prepared.valid_data, "dev.csv"), (prepared.test_data, "test.csv")):
        seen = 0
        for interaction, candidates in loader:
            users = dataset.id2token(dataset.uid_field, interaction[dataset.uid_field].numpy())
            for row, user in enumerate(users):
                item, negatives = cases[name][user]
                tokens = dataset.id2token(dataset.iid_field, candidates[row].numpy()).tolist()
                assert tokens == [item, *negatives]  # the positive, then ReChorus's negatives in order
                seen += 1
        assert seen == 40
    assert "ReChorus's fixed negatives" in prepared.spec.protocol.label


def test_hr_and_ndcg_on_fixed_negatives_equal_a_hand_computation(imported):
    tmp_path, cases, _ = imported
    prepared = prepare_run("TwoTower", "rc", config_dict=_config(tmp_path))
    trainer = prepared.trainer
    trainer.fit(prepared.train_data, prepared.valid_data, saved=True, show_progress=False)
    result = trainer.evaluate(prepared.test_data, load_best_model=True)
    trainer.model.eval()
    ranks = []
    with torch.no_grad():
        for interaction, candidates in prepared.test_data:
            scores = _candidate_scores(trainer.model, interaction, candidates).double()
            for row in scores:  # ties against the positive: every negative at least as high
                ranks.append(sum(1 for s in row[1:].tolist() if s >= row[0].item()))
    ranks = np.array(ranks)
    for k in (1, 5, 10):
        assert result[f"hit@{k}"] == pytest.approx(np.mean(ranks < k), abs=1e-4)
        assert result[f"ndcg@{k}"] == pytest.approx(np.mean((ranks < k) / np.log2(ranks + 2)), abs=1e-4)


def test_ties_count_against_the_positive(imported):
    tmp_path, _, _ = imported
    prepared = prepare_run("TwoTower", "rc", config_dict=_config(tmp_path))
    with torch.no_grad():  # an untrained model that scores every item the same
        prepared.adapter.model.item_embedding.weight.fill_(1.0)
    result = prepared.trainer.evaluate(prepared.test_data, load_best_model=False)
    assert result["hit@5"] == 0.0 and result["hit@10"] == 1.0  # rank N_NEG = 9 for every case


def test_the_cli_imports_and_an_inconsistent_split_writes_nothing(tmp_path, capsys):
    write_rechorus(tmp_path / "src")
    assert importer_main(["--format", "rechorus", "--src", str(tmp_path / "src"), "--name", "rc",
                          "--out", str(tmp_path / "data")]) == 0
    assert "fixed negatives each" in capsys.readouterr().out
    with open(tmp_path / "src" / "test.csv", "a") as f:
        f.write("1\t5\t2000\t[1, 2, 3, 4, 5, 6, 7, 8, 9]\n")  # user 1's second test case
    with pytest.raises(MalformedInputError, match="user 1 has a second case"):
        import_rechorus(str(tmp_path / "src"), "rc2", str(tmp_path / "data"))
    assert not os.path.exists(tmp_path / "data" / "rc2")
    with open(tmp_path / "src" / "dev.csv", "a") as f:
        f.write("1\tx\t2000\t[1]\n")
    assert importer_main(["--format", "rechorus", "--src", str(tmp_path / "src"), "--name", "rc2",
                          "--out", str(tmp_path / "data")]) == 2
    assert "item_id is not a non-negative integer" in capsys.readouterr().err


def test_without_neg_items_the_negatives_are_drawn_and_old_ones_removed(tmp_path):
    write_rechorus(tmp_path / "src")
    import_rechorus(str(tmp_path / "src"), "rc", str(tmp_path / "data"))
    assert os.path.exists(tmp_path / "data" / "rc" / "dev.csv")
    write_rechorus(tmp_path / "src", negatives=False)
    summary = import_rechorus(str(tmp_path / "src"), "rc", str(tmp_path / "data"))
    assert summary["negatives_per_case"] == 0 and not os.path.exists(tmp_path / "data" / "rc" / "dev.csv")
    with open(tmp_path / "data" / "rc" / "rc.import.json") as f:
        assert "dev.csv" not in json.load(f)["outputs"]


def test_a_case_file_that_does_not_match_the_split_is_refused(imported):
    tmp_path, _, _ = imported
    path = tmp_path / "data" / "rc" / "test.csv"
    lines = path.read_text().splitlines()
    user, item, t, negatives = lines[1].split("\t")
    lines[1] = "\t".join((user, str(int(item) % 60 + 1) if int(item) % 60 + 1 != int(item) else "1", t, negatives))
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match="the split's cases; test.csv differs for 1 users"):
        prepare_run("TwoTower", "rc", config_dict=_config(tmp_path))


def test_a_negative_the_dataset_does_not_know_is_refused(imported):
    tmp_path, _, _ = imported
    path = tmp_path / "data" / "rc" / "dev.csv"
    lines = path.read_text().splitlines()
    lines[2] = lines[2].rsplit("[", 1)[0] + "[" + ", ".join(["9999"] * N_NEG) + "]"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match=r"dev.csv names 1 it does not have: \['9999'\]"):
        prepare_run("TwoTower", "rc", config_dict=_config(tmp_path))


@pytest.mark.parametrize("settings, fragment", [
    ({"sampled_seed": 3}, "gives the negatives, which reads no sampled_seed"),
    ({"sampled_exclude_history": False}, "which reads no sampled_exclude_history"),
    ({"sampled_negatives": 99}, "9, the number of negatives per case"),
    ({"topk": [5, 20]}, "at most 1 + sampled_negatives = 10"),
])
def test_settings_the_fixed_negatives_contradict_are_refused(imported, settings, fragment):
    tmp_path, _, _ = imported
    with pytest.raises(ConfigError) as caught:
        spec_of(dataset="rc", **{**_config(tmp_path), **settings})
    assert fragment in str(caught.value)


def test_a_folder_without_case_files_is_refused_before_any_data(tmp_path):
    with pytest.raises(ConfigError, match="sampled_negatives_dir"):
        spec_of(**{**SAMPLED, "sampled_negatives_dir": str(tmp_path)})


def test_the_readme_commands_import_and_train_timirec_on_fixed_negatives(tmp_path):
    """The README's two ReChorus commands, as written, in a folder holding ``data/Grocery``
    (only ``--epochs`` and ``--record`` added)."""
    import re
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    text = read_page("docs/evaluation.md")
    start = text.index("python -m recbole_croloss.data.importer --format rechorus")
    lines = text[start:text.index("```", start)].replace("\\\n", " ").split("\n")
    commands = [line.split() for line in lines if line.strip()]
    assert len(commands) == 2
    write_rechorus(tmp_path / "data" / "Grocery", n_items=150, n_neg=99)  # ReChorus's 99 negatives
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": root}
    importer = [sys.executable, *commands[0][1:]]
    assert subprocess.run(importer, cwd=tmp_path, env=env, capture_output=True, text=True).returncode == 0
    script, *args = commands[1][1:]
    args = [re.sub(r'^(--\w+=)"(.*)"$', r"\1\2", a) for a in args]  # the shell's quote removal
    proc = subprocess.run([sys.executable, os.path.join(root, script), *args, "--epochs=1", "--embedding_size=8",
                           f"--record={tmp_path / 'record.json'}", "--show_progress=False"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(tmp_path / "record.json") as fh:
        record = json.load(fh)
    assert "ReChorus's fixed negatives" in record["protocol_label"]
    assert 0.0 <= record["test_result"]["ndcg@5"] <= record["test_result"]["hit@5"] <= 1.0
