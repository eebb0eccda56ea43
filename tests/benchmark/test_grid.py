"""Grid files: expansion into cells, stable keys, and bad grids refused before any cell runs."""
import os

import pytest

from recbole_croloss.benchmark import GridError, ResultStore, load_grid, parse_grid
from recbole_croloss.benchmark.grid import check_grid
from recbole_croloss.benchmark.__main__ import main as benchmark_main

BASE = {
    "datasets": ["ml-100k"],
    "models": ["TwoTower", {"name": "ComiRec-SA", "model": "ComiRec", "interest_extractor": "sa"}],
    "seeds": [1, 2, 3],
    "config": {"epochs": 1},
    "methods": [
        {"loss": ["ce", "bpr"]},
        {"loss": "croloss", "kernel": ["sigmoid", "softplus"], "alpha": [0.8, 1.2]},
        {"loss": "croloss", "kernel": "sigmoid", "alpha": 0.8},  # a duplicate of the block above
        {"loss": "croloss_lambda", "lambda_kernel": ["step", "sigmoid"], "kernel": "exp", "alpha": 1.4},
    ],
}


def write(tmp_path, text, name="grid.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_expansion_is_the_product_of_each_block_without_duplicates():
    grid = parse_grid(BASE)
    labels = [m.label for m in grid.methods]
    assert labels == ["ce", "bpr",
                      "croloss(kernel=sigmoid, alpha=0.8)", "croloss(kernel=sigmoid, alpha=1.2)",
                      "croloss(kernel=softplus, alpha=0.8)", "croloss(kernel=softplus, alpha=1.2)",
                      "croloss_lambda(lambda_kernel=step, kernel=exp, alpha=1.4)",
                      "croloss_lambda(lambda_kernel=sigmoid, kernel=exp, alpha=1.4)"]
    cells = grid.cells()
    assert len(cells) == 1 * 2 * 8 * 3
    assert [c.seed for c in cells[:16]] == [1] * 16  # seed-major: every method of seed 1 first
    assert len({c.key for c in cells}) == len(cells)
    sa = next(c for c in cells if c.model.label == "ComiRec-SA" and c.method.label == "bpr" and c.seed == 2)
    assert sa.settings() == {"epochs": 1, "interest_extractor": "sa", "loss": "bpr", "seed": 2}
    assert sa.model.model == "ComiRec"


def test_keys_are_stable_and_change_with_any_setting():
    a, b = parse_grid(BASE).cells(), parse_grid(BASE).cells()
    assert [c.key for c in a] == [c.key for c in b]
    changed = parse_grid({**BASE, "config": {"epochs": 2}}).cells()
    assert not {c.key for c in a} & {c.key for c in changed}


def test_pinned_defaults_run_with_every_cell_that_reads_them_but_leave_the_keys_as_they_were():
    plain = parse_grid(BASE).cells()
    pinned = parse_grid({**BASE, "pinned_defaults": {"negatives": "uniform"}}).cells()
    assert [c.key for c in pinned] == [c.key for c in plain]
    settings = {c.method.label: c.settings() for c in pinned if c.seed == 1 and c.model.label == "TwoTower"}
    assert "negatives" not in settings["ce"]  # the model's own loss reads no negatives
    assert settings["bpr"]["negatives"] == "uniform"
    assert settings["croloss(kernel=sigmoid, alpha=0.8)"]["negatives"] == "uniform"
    own = parse_grid({**BASE, "pinned_defaults": {"negatives": "uniform"},
                      "methods": [{"loss": "croloss", "negatives": "popularity"}]}).cells()
    assert own[0].settings()["negatives"] == "popularity"  # a cell's own setting wins


def test_every_committed_grid_keys_its_stored_cells():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "benchmarks"
    for path in sorted((root / "grids").glob("*.yaml")):
        grid = load_grid(str(path), check=False)
        cells = root / "results" / grid.name / "cells"
        stored = {p.stem for p in cells.glob("*.json")} if cells.is_dir() else set()
        unknown = stored - {c.key for c in grid.cells()}
        assert not unknown, f"{path.name}: stored cells its grid no longer names: {sorted(unknown)[:3]}"


@pytest.mark.parametrize("change, words", [
    ({"epoch": 3}, ["unknown top-level key 'epoch'"]),
    ({"pinned_defaults": {"seed": 3}}, ["pinned_defaults", "'seed'"]),
    ({"seeds": []}, ["'seeds' is missing or empty"]),
    ({"seeds": [1, "x"]}, ["seeds", "'x'"]),
    ({"methods": [{"kernel": "sigmoid"}]}, ["methods[0]", "'loss'"]),
    ({"config": {"seed": 3}}, ["config", "'seed'"]),
    ({"models": ["TwoTower", "TwoTower"]}, ["duplicate label"]),
    ({"seeds": [2020, 2021, 2020]}, ["seeds", "2020 more than once"]),
    ({"datasets": ["ml-100k", "ml-1m", "ml-100k"]}, ["datasets", "'ml-100k' more than once"]),
    ({"report": {"figure_kernal": "exp"}}, ["unknown report key 'figure_kernal'", "figure_kernel"]),
    ({"report": {"figure_kernel": "sigmod"}}, ["report: figure_kernel='sigmod' is not a kernel of the grid's "
                                               "croloss methods (sigmoid, softplus)"]),
    ({"name": "../../elsewhere"}, ["name='../../elsewhere' is not valid; a plain folder name"]),
    ({"datasets": [None]}, ["datasets: None is not a dataset name"]),
])
def test_bad_shapes_are_refused_naming_what_is_wrong(change, words):
    with pytest.raises(GridError) as err:
        parse_grid({**BASE, **change})
    for word in words:
        assert word in str(err.value)


@pytest.mark.parametrize("change, words", [
    ({"models": ["TwoTowr"]}, ["models", "'TwoTowr'", "TwoTower"]),
    ({"methods": [{"loss": ["ce", "softmax"]}]}, ["method softmax", "loss", "'softmax'", "sampled_softmax"]),
    ({"methods": [{"loss": "croloss", "kernel": "gauss"}]}, ["kernel", "'gauss'", "sigmoid"]),
    ({"methods": [{"loss": "croloss", "alfa": 1.2}]}, ["unknown key 'alfa'", "did you mean alpha"]),
    ({"config": {"eval_engine": "fast"}}, ["eval_engine", "'fast'", "chunked"]),
    ({"datasets": ["no-such-data"]}, ["no-such-data", "never downloads"]),
    ({"seeds": [-1]}, ["seeds: seed=-1 is not valid; seed must be an integer from 0 to 4294967295"]),
    ({"seeds": [2 ** 32]}, ["seeds: seed=4294967296 is not valid"]),
    ({"config": {"learner": "adm"}}, ["learner='adm' is not valid; choose one of RecBole's optimizers"]),
])
def test_bad_values_fail_before_any_cell_runs(tmp_path, capsys, change, words):
    import yaml

    grid = {**BASE, "models": ["TwoTower"], **change}
    path = write(tmp_path, yaml.safe_dump(grid))
    with pytest.raises(GridError) as err:
        load_grid(path)
    for word in words:
        assert word in str(err.value)
    out = tmp_path / "out"
    assert benchmark_main([path, "--out", str(out), "--no-progress"]) == 2
    assert "error: grid" in capsys.readouterr().err
    assert not out.exists()  # nothing ran, nothing was written


def test_a_duplicate_seed_is_refused_naming_the_file(tmp_path, capsys):
    path = write(tmp_path, """
datasets: [ml-100k]
models: [TwoTower]
seeds: [2020, 2020]
methods:
  - {loss: ce}
""")
    with pytest.raises(GridError, match=f"grid {path}: seeds: 2020 more than once"):
        load_grid(path, check=False)
    out = tmp_path / "out"
    assert benchmark_main([path, "--out", str(out), "--no-progress"]) == 2
    assert "seeds: 2020 more than once" in capsys.readouterr().err
    assert not out.exists()


def test_grid_file_and_dry_run_list_every_cell(tmp_path, capsys):
    path = write(tmp_path, """
name: small
datasets: [ml-100k]
models: [TwoTower]
seeds: [7, 8]
config: {epochs: 1}
methods:
  - {loss: [ce, croloss]}
""")
    grid = load_grid(path)
    assert grid.name == "small" and len(grid.cells()) == 4
    store = ResultStore(str(tmp_path / "out"))
    assert benchmark_main([path, "--out", store.out, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.count("pending ") == 4 and "4 cells: 0 done, 4 to run" in out
    assert "estimated cost: unknown" in out
    assert not os.path.exists(store.cells_dir)


AUTO_METHOD = {"loss": "croloss", "kernel": "sigmoid", "alpha": "auto", "target_n": 100}


def test_a_method_with_alpha_auto_is_a_cell_like_any_other():
    grid = parse_grid({**BASE, "models": ["TwoTower"], "methods": [{**AUTO_METHOD, "alpha_grid": [[0.8, 1.2]]}]})
    check_grid(grid)
    (method,) = grid.methods
    assert method.searches_alpha and method.settings_dict["alpha_grid"] == [0.8, 1.2]
    assert method.label == "croloss(kernel=sigmoid, alpha=auto, target_n=100, alpha_grid=[0.8, 1.2])"


def test_a_grid_s_valid_metric_other_than_recall_at_target_n_is_refused():
    grid = parse_grid({**BASE, "models": ["TwoTower"], "config": {"valid_metric": "Recall@50"},
                       "methods": [AUTO_METHOD]})
    with pytest.raises(GridError, match="valid_metric='Recall@50' is not valid; Recall@100 or unset"):
        check_grid(grid)
