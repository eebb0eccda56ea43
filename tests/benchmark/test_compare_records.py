"""compare_records on records shaped as the CLI writes them (record JSON + per-user hits beside it):
pairing by seed, the verdict from the users' bootstrap, and a sentence for records that cannot
be paired."""
import json

import numpy as np
import pytest

from recbole_croloss.benchmark import compare_records
from recbole_croloss.io import per_user_hits_file, save_per_user_hits


def write_run(folder, name, seed, per_user_hits_at_10, dataset="mine", protocol="loo"):
    """A record and its hits: 200 users, one target each, Recall@10 = the given 0/1 hits."""
    hits = np.asarray(per_user_hits_at_10)
    path = folder / f"{name}-{seed}.json"
    record = {"model": "SASRec", "dataset": dataset, "protocol": protocol, "loss": name,
              "config": {"seed": seed, "kernel": None},
              "test_result": {"recall@10": float(hits.mean()), "ndcg@10": 0.1}}
    path.write_text(json.dumps(record))
    save_per_user_hits(per_user_hits_file(str(path)), {
        "users": np.arange(1, len(hits) + 1), "targets": np.ones(len(hits), dtype=np.int64),
        "hits": hits[:, None], "ks": np.array([10])})
    return str(path)


def runs(folder, name, rate, seeds=(1, 2, 3)):
    rng = np.random.default_rng(sum(seeds) + int(100 * rate))
    return [write_run(folder, name, s, (rng.random(400) < rate).astype(int)) for s in seeds]


def test_a_clearly_better_method_is_said_to_beat_the_other(tmp_path, capsys):
    better, worse = runs(tmp_path, "croloss", 0.6), runs(tmp_path, "ce", 0.3)
    assert compare_records.main([*better, "--against", *worse]) == 0
    out = capsys.readouterr().out
    assert "@10: +" in out and "wins 3/3" in out and "X beats Y" in out


def test_the_same_runs_on_both_sides_are_inconclusive_with_a_zero_difference(tmp_path):
    paths = runs(tmp_path, "ce", 0.4)
    name, rows = compare_records.compare(compare_records.read_side(paths), compare_records.read_side(paths))
    assert name == "recall" and rows[10].mean == 0 and rows[10].verdict("X", "Y") == "inconclusive"


def test_only_the_seeds_both_sides_hold_are_paired(tmp_path):
    x = compare_records.read_side(runs(tmp_path, "croloss", 0.5, seeds=(1, 2, 3)))
    y = compare_records.read_side(runs(tmp_path, "ce", 0.5, seeds=(2, 3, 4)))
    _, rows = compare_records.compare(x, y)
    assert rows[10].n == 2


@pytest.mark.parametrize("problem, words", [
    ("other dataset", "differ in dataset"),
    ("no hits", "per-user hits"),
    ("same seed twice", "seed 1 is already given"),
    ("not a record", "not a run record"),
    ("no common seed", "no seed in common"),
])
def test_records_that_cannot_be_paired_are_refused_with_a_sentence(tmp_path, capsys, problem, words):
    x = runs(tmp_path, "croloss", 0.5, seeds=(1,))
    y = runs(tmp_path, "ce", 0.5, seeds=(1,))
    if problem == "other dataset":
        y = [write_run(tmp_path, "other", 1, np.ones(10, dtype=int), dataset="theirs")]
    elif problem == "no hits":
        (tmp_path / "ce-1.hits.npz").unlink()
    elif problem == "same seed twice":
        x = x + [write_run(tmp_path, "croloss-again", 1, np.ones(10, dtype=int))]
    elif problem == "not a record":
        (tmp_path / "ce-1.json").write_text("[1, 2]")
    elif problem == "no common seed":
        y = runs(tmp_path, "ce", 0.5, seeds=(7,))
    assert compare_records.main([*x, "--against", *y]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and words in err and len(err.strip().splitlines()) == 1


def test_the_readme_recipe_s_compare_command_reads_the_records_its_loop_writes(tmp_path, monkeypatch, capsys):
    import glob
    import re
    import shlex

    from tests.doc_blocks import code_blocks

    (block,) = [b for b in code_blocks("docs/comparing-losses.md", "Compare CROLoss with cross-entropy on your data", "bash") if "compare_records" in b]
    seeds = re.search(r"for seed in ([\d ]+);", block).group(1).split()
    written = re.findall(r"--record=(\S+)", block)
    assert sorted(written) == ["runs/ce-$seed.json", "runs/croloss-$seed.json"]
    (tmp_path / "runs").mkdir()
    for seed in seeds:
        write_run(tmp_path / "runs", "ce", int(seed), np.r_[np.zeros(300), np.ones(100)].astype(int))
        write_run(tmp_path / "runs", "croloss", int(seed), np.r_[np.zeros(100), np.ones(300)].astype(int))
    (command,) = [line for line in block.splitlines() if "compare_records" in line]
    words = shlex.split(command)
    assert words[:3] == ["python", "-m", "recbole_croloss.benchmark.compare_records"]
    monkeypatch.chdir(tmp_path)
    args = [path for word in words[3:] for path in (sorted(glob.glob(word)) if "*" in word else [word])]
    assert compare_records.main(args) == 0
    assert f"wins {len(seeds)}/{len(seeds)}" in capsys.readouterr().out
