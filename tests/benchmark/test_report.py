"""Reports from a small synthetic result store, checked against means computed by hand."""
import csv
import math
import os
import statistics

import pytest

from recbole_croloss.benchmark import ResultStore, parse_grid
from recbole_croloss.benchmark.report import PairedDifference, write_reports

GRID = {
    "name": "synthetic",
    "datasets": ["ml-100k"],
    "models": ["TwoTower"],
    "seeds": [1, 2, 3],
    "methods": [
        {"loss": ["ce", "bpr"]},
        {"loss": "croloss", "kernel": "sigmoid", "alpha": [0.8, 1.2]},
        {"loss": "croloss_lambda", "lambda_kernel": ["step", "sigmoid"], "kernel": "sigmoid", "alpha": 1.2},
    ],
}
NS = (10, 50, 100)
# test Recall@N by method label and seed (N = 10, 50, 100)
TEST = {
    "ce": {1: (0.10, 0.30, 0.50), 2: (0.12, 0.32, 0.52), 3: (0.11, 0.31, 0.54)},
    "bpr": {1: (0.08, 0.29, 0.55), 2: (0.09, 0.30, 0.56), 3: (0.07, 0.28, 0.57)},
    "croloss(kernel=sigmoid, alpha=0.8)": {1: (0.10, 0.33, 0.60), 2: (0.11, 0.34, 0.61), 3: (0.12, 0.35, 0.62)},
    "croloss(kernel=sigmoid, alpha=1.2)": {1: (0.14, 0.34, 0.58), 2: (0.15, 0.35, 0.58), 3: (0.16, 0.36, 0.60)},
    "croloss_lambda(lambda_kernel=step, kernel=sigmoid, alpha=1.2)":
        {1: (0.13, 0.30, 0.50), 2: (0.13, 0.30, 0.50), 3: (0.13, 0.30, 0.50)},
    "croloss_lambda(lambda_kernel=sigmoid, kernel=sigmoid, alpha=1.2)":
        {1: (0.15, 0.36, 0.61), 2: (0.17, 0.36, 0.62)},  # seed 3 did not finish
}
# validation picks bpr over ce at every N although ce is better on test at N = 10, 50
VALID = {"ce": 0.2, "bpr": 0.3}


#: The one cell whose best validation is its last, at the epoch budget: "may be undertrained".
STILL_RISING = ("bpr", 2)


def history(cell):
    """Validation scores: rising to the budget for STILL_RISING, else a peak and 3 worse."""
    rising = (cell.method.label, cell.seed) == STILL_RISING
    scores = [0.1, 0.2, 0.3, 0.35] if rising else [0.1, 0.3, 0.25, 0.24, 0.2]
    entries = [{"epoch": i, "step": 10 * (i + 1), "epochs_done": i + 1.0, "train_loss": 1.0 / (i + 1),
                "valid_score": v, "valid_result": {"recall@50": v}, "wall_s": float(i)} for i, v in enumerate(scores)]
    best = entries[-1] if rising else entries[1]
    return {"history": entries, "best_epoch": best["epoch"], "best_step": best["step"],
            "stopped": "max_epochs" if rising else "early_stop", "epochs_run": len(entries),
            "steps_run": 10 * len(entries), "config": {"stopping_step": 3}}


def record(cell, test):
    valid = VALID.get(cell.method.label, 0.25)
    return {"cell": {**cell.describe(), "seconds": 1.0},
            "run": {"protocol": "loo", "protocol_label": "RecBole leave-one-out",
                    "test_result": {f"recall@{n}": v for n, v in zip(NS, test)} | {"ndcg@10": 0.5},
                    "best_valid_result": {f"recall@{n}": valid for n in NS}, **history(cell)}}


@pytest.fixture
def reports(tmp_path):
    grid = parse_grid(GRID)
    store = ResultStore(str(tmp_path))
    for cell in grid.cells():
        test = TEST[cell.method.label].get(cell.seed)
        if test is not None:
            store.put(cell.key, record(cell, test))
    return write_reports(grid, store)


def rows(path, **match):
    with open(path, newline="") as fh:
        return [r for r in csv.DictReader(fh) if all(r[k] == str(v) for k, v in match.items())]


@pytest.mark.parametrize("label", list(TEST))
@pytest.mark.parametrize("i, n", list(enumerate(NS[1:], 1)))
def test_table_means_are_the_hand_computed_ones(reports, label, i, n):
    values = [t[i] for t in TEST[label].values()]
    found = rows(reports["table2.csv"], setting=label, N=n) + rows(reports.get("table3.csv"), setting=label, N=n) \
        + rows(reports["table4.csv"], setting=label, N=n)
    if label.startswith("croloss("):
        assert rows(reports["table3.csv"], setting=label, N=n)
    for row in found:
        assert float(row["recall_mean"]) == pytest.approx(statistics.fmean(values), abs=1e-12)
        assert float(row["recall_std"]) == pytest.approx(statistics.stdev(values), abs=1e-12)
        assert int(row["seeds"]) == len(values)


def test_best_settings_are_chosen_on_validation_not_test(reports):
    loss_rows = rows(reports["table2.csv"])
    assert {r["row"] for r in loss_rows} == {"ce", "bpr", "CROLoss (best on valid)", "CROLoss-lambda (best on valid)"}
    text = open(reports["report.md"]).read()
    # all croloss settings tie on validation (0.25): the first in grid order is kept
    assert "CROLoss (best on valid): R@50: croloss(kernel=sigmoid, alpha=0.8)" in text
    b = rows(reports["comparisons.csv"], claim="b", N=50)[0]
    assert b["y"] == "bpr"  # the best conventional on validation, though ce is better on test


def test_kernel_alpha_table_marks_the_best_of_each_column_and_row(reports):
    text = open(reports["report.md"]).read()
    line = next(ln for ln in text.splitlines() if ln.startswith("| croloss(kernel=sigmoid) |"))
    cells = [c.strip() for c in line.strip("|").split("|")][1:]
    # columns: R@50 a=0.8, R@50 a=1.2, R@100 a=0.8, R@100 a=1.2; one row of plain CROLoss
    assert cells[0] == "**34.00 ± 1.00**" and cells[1] == "**<u>35.00 ± 1.00</u>**"
    assert cells[2] == "**<u>61.00 ± 1.00</u>**" and cells[3] == "**58.67 ± 1.15**"


def test_lambda_kernel_table_lists_phi1_phi2_pairs(reports):
    pair_rows = rows(reports["table4.csv"], N=100)
    assert {r["row"] for r in pair_rows} == {"step + sigmoid", "sigmoid + sigmoid"}
    assert {r["row"]: int(r["seeds"]) for r in pair_rows} == {"step + sigmoid": 3, "sigmoid + sigmoid": 2}


def test_paired_comparisons_are_computed_seed_by_seed(reports):
    a = rows(reports["comparisons.csv"], claim="a", N=50)[0]
    assert a["x"] == "croloss(kernel=sigmoid, alpha=1.2)" and a["y"] == "croloss(kernel=sigmoid, alpha=0.8)"
    assert float(a["mean_diff"]) == pytest.approx(0.01) and float(a["std_diff"]) == pytest.approx(0.0, abs=1e-12)
    assert a["wins"] == "3" and a["verdict"] == "croloss(kernel=sigmoid, alpha=1.2) beats croloss(kernel=sigmoid, alpha=0.8)"
    a100 = rows(reports["comparisons.csv"], claim="a", N=100)[0]
    diffs = [-0.02, -0.03, -0.02]
    half = 4.302652729911275 * statistics.stdev(diffs) / math.sqrt(3)
    assert float(a100["mean_diff"]) == pytest.approx(statistics.fmean(diffs))
    assert float(a100["ci_high"]) == pytest.approx(statistics.fmean(diffs) + half)
    assert a100["verdict"] == "croloss(kernel=sigmoid, alpha=0.8) beats croloss(kernel=sigmoid, alpha=1.2)"
    matched = rows(reports["comparisons.csv"], claim="c-matched", N=50)
    pair = next(r for r in matched if r["x"].startswith("croloss_lambda(lambda_kernel=sigmoid"))
    assert pair["seeds"] == "2" and pair["y"] == "croloss(kernel=sigmoid, alpha=1.2)"
    assert float(pair["mean_diff"]) == pytest.approx(0.015)


def test_paired_verdicts():
    assert PairedDifference.of({1: 0.30, 2: 0.31, 3: 0.33}, {1: 0.20, 2: 0.22, 3: 0.22}).verdict("X", "Y") == "X beats Y"
    assert PairedDifference.of({1: 0.1, 2: 0.3}, {1: 0.2, 2: 0.2}).verdict("X", "Y") == "inconclusive"
    assert PairedDifference.of({1: 0.1}, {1: 0.2}).verdict("X", "Y") == "inconclusive (n=1)"


def test_recall_by_n_figure_is_a_png_with_content(reports):
    path = reports["figure4_ml-100k_TwoTower.png"]
    with open(path, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    assert os.path.getsize(path) > 20_000
    assert "![figure 4" in open(reports["report.md"]).read()
    assert not [f for f in os.listdir(os.path.dirname(path)) if f.startswith(".")]


def test_the_report_flags_the_cell_that_may_be_undertrained_and_draws_the_curves(reports):
    text = open(reports["report.md"]).read()
    assert "**1 of 17 finished cells may be undertrained**" in text
    assert "| bpr | 2 | max_epochs | 3 | 4 |" in text
    assert "Stops: early_stop 16, max_epochs 1." in text
    path = reports["curves_ml-100k_TwoTower.png"]
    with open(path, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    assert "![training curves" in text


def test_each_claim_gets_a_verdict_line(reports):
    text = open(reports["report.md"]).read()
    assert "- (a) larger alpha favours small N (largest vs smallest alpha, per kernel row): holds for 1 of 1 rows" in text
    assert "- (b) the best CROLoss beats the best conventional loss: holds at N = " in text


def test_an_alpha_auto_method_is_its_own_row_of_table_2_with_the_alphas_chosen(tmp_path):
    grid = parse_grid({**GRID, "methods": [{"loss": "croloss", "kernel": "sigmoid", "alpha": [0.8, 1.2, "auto"],
                                            "target_n": 100}]})
    store = ResultStore(str(tmp_path))
    for cell in grid.cells():
        base = "croloss(kernel=sigmoid, alpha=0.8)" if cell.method.searches_alpha else \
            cell.method.label.replace(", target_n=100", "")
        cell_record = record(cell, TEST[base][cell.seed])
        if cell.method.searches_alpha:
            cell_record["run"]["alpha_search"] = {"chosen": {"label": f"alpha={0.8 if cell.seed < 3 else 1.2}"}}
        store.put(cell.key, cell_record)
    reports = write_reports(grid, store)
    auto = "croloss(kernel=sigmoid, alpha=auto, target_n=100)"
    (row,) = rows(reports["table2.csv"], setting=auto, N=50)
    assert float(row["recall_mean"]) == pytest.approx(statistics.fmean([0.33, 0.34, 0.35]), abs=1e-12)
    text = open(reports["report.md"]).read()
    assert f"{auto}: chose seed 1: alpha=0.8; seed 2: alpha=0.8; seed 3: alpha=1.2" in text
    assert not rows(reports["table3.csv"], setting=auto)  # kernel x alpha: fixed alphas only
    assert "CROLoss (best on valid): R@50: croloss(kernel=sigmoid, alpha=0.8" in text
