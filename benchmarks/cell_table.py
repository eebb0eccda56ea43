"""Every cell of a result store, one row each, and what each model's cells cost.

``python benchmarks/cell_table.py STORE``: per cell its model, method, seed, best epoch, epochs
run, how it stopped, seconds and minutes, best validation score and test Recall@N (%, each N it measured);
per model the cell-hours and the range of minutes and of best epochs; for staged models each
stage's test Recall@N (mean ± std over seeds) and best epochs. The figures a results section
quotes about single cells (an early peak's validation score, a run's cost, a first stage's
test) come from here.
"""
import glob
import json
import os
import statistics
import sys
from collections import defaultdict


def cells(store: str) -> list[dict]:
    """The store's cell records, in file-name order (the key names model, method and seed)."""
    paths = sorted(glob.glob(os.path.join(glob.escape(store), "cells", "*.json")))
    return [json.load(open(path, encoding="utf-8")) for path in paths]


def recall(run: dict) -> dict[int, float]:
    """Test Recall@N (Hit@N where only Hit was measured) in %, by N."""
    result = run["test_result"] or {}
    name = "recall@" if any(k.startswith("recall@") for k in result) else "hit@"
    return {int(k.split("@")[1]): 100 * v for k, v in result.items() if k.startswith(name)}


def cell_rows(records: list[dict]) -> list[str]:
    rows = ["| model | method | seed | best epoch | epochs | stop | seconds | minutes | best valid | test Recall@N (%) |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for record in records:
        cell, run = record["cell"], record["run"]
        tests = ", ".join(f"{n}: {value:.2f}" for n, value in sorted(recall(run).items()))
        rows.append(f"| {cell['model']} | {cell['method']} | {cell['seed']} | {run['best_epoch']} | "
                    f"{run['epochs_run']} | {run['stopped']} | {cell['seconds']:.0f} | {cell['seconds'] / 60:.1f} | "
                    f"{run['best_valid_score']:.4f} | {tests} |")
    return rows


def cost_rows(records: list[dict]) -> list[str]:
    by_model = defaultdict(list)
    for record in records:
        by_model[record["cell"]["model"]].append(record)
    rows = ["| model | cells | cell-hours | minutes a cell | best epochs |", "|---|---|---|---|---|"]
    for model, group in sorted(by_model.items()):
        minutes = [r["cell"]["seconds"] / 60 for r in group]
        best = [r["run"]["best_epoch"] for r in group]
        rows.append(f"| {model} | {len(group)} | {sum(minutes) / 60:.2f} | {min(minutes):.1f}-{max(minutes):.1f} "
                    f"| {min(best)}-{max(best)} |")
    hours = sum(r["cell"]["seconds"] for r in records) / 3600
    rows.append(f"| all | {len(records)} | {hours:.2f} | | |")
    return rows


def stage_rows(records: list[dict]) -> list[str]:
    """Per model, method and stage of a staged run: test Recall@N mean ± std over seeds."""
    by_stage = defaultdict(list)
    for record in records:
        for stage, result in (record["run"].get("stages") or {}).items():
            by_stage[record["cell"]["model"], record["cell"]["method"], stage].append(result)
    if not by_stage:
        return []
    rows = ["| model | method | stage | seeds | best epochs | test Recall@N (%) |", "|---|---|---|---|---|---|"]
    for (model, method, stage), results in sorted(by_stage.items()):
        by_n = defaultdict(list)
        for result in results:
            for n, value in recall(result).items():
                by_n[n].append(value)
        tests = ", ".join(f"{n}: {statistics.mean(v):.2f} ± {statistics.stdev(v) if len(v) > 1 else 0:.2f}"
                          for n, v in sorted(by_n.items()))
        best = sorted(r["best_epoch"] for r in results)
        rows.append(f"| {model} | {method} | {stage} | {len(results)} | {best[0]}-{best[-1]} | {tests} |")
    return rows


def main(store: str) -> None:
    records = cells(store)
    if not records:
        sys.exit(f"{store}: no cells/*.json (not a result store, or nothing finished)")
    tables = [cell_rows(records), cost_rows(records), stage_rows(records)]
    print("\n\n".join("\n".join(rows) for rows in tables if rows))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
