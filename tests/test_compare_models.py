"""benchmarks/compare_models.py on a committed result store: the paired differences it prints
against the cells' own test Recall, and the errors for a store or model that is not there."""
import glob
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STORE = ROOT / "benchmarks" / "results" / "timirec-ml-100k"
SCRIPT = ROOT / "benchmarks" / "compare_models.py"


def compare(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], cwd=ROOT, capture_output=True, text=True)


def mean_recall(model: str, method: str, n: int) -> dict:
    """seed -> test Recall@n in points, read straight from the cells."""
    recall = {}
    for path in glob.glob(str(STORE / "cells" / "*.json")):
        cell = json.load(open(path))
        if cell["cell"]["model"] == model and cell["cell"]["method"] == method:
            recall[cell["cell"]["seed"]] = 100 * cell["run"]["test_result"][f"recall@{n}"]
    return recall


def test_each_row_is_the_seed_paired_difference_of_the_cells_recall():
    result = compare(STORE, "--pair", "TiMiRec+", "ComiRec+", "--ns", 50, 500)
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| TiMiRec+ | ComiRec+ |")]
    assert len(rows) == 3  # ce and CROLoss at two alphas
    for row in rows:
        method, seeds, *deltas = [field.strip() for field in row.strip("|").split("|")][2:]
        assert seeds == "3"
        for n, delta in zip((50, 500), deltas):
            x, y = mean_recall("TiMiRec+", method, n), mean_recall("ComiRec+", method, n)
            expected = sum(x[s] - y[s] for s in x) / len(x)
            mean, wins = delta.split(" (")[0], int(delta.split("(")[1].split("/")[0])
            assert float(mean) == pytest.approx(expected, abs=0.006)
            assert wins == sum(x[s] > y[s] for s in x)


@pytest.mark.parametrize("args, message", [
    (["--pair", "TiMiRec", "NoSuchModel"], "model='NoSuchModel' is not in store="),
    ([], "holds no model 'X-cos10' beside a model 'X'"),
])
def test_a_pair_it_cannot_form_is_named(args, message):
    result = compare(STORE, *args)
    assert result.returncode != 0 and message in result.stderr


def test_a_folder_without_cells_is_refused(tmp_path):
    result = compare(tmp_path)
    assert result.returncode != 0 and "holds no cells/ folder" in result.stderr
