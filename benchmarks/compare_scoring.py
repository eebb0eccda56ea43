"""The paper's scoring (cosine x 10) against a model's default dot product, per model and loss,
from the models grid's result store: every model label ``X-cos10`` is paired with ``X`` by seed,
test Recall@N (points) of the cos10 cell minus that of the dot cell, with the seed-level t-interval and
the report's two-stage bootstrap over seeds and test users (95%):
``python benchmarks/compare_scoring.py benchmarks/results/models-ml-100k``."""
import glob
import json
import os
import sys
from collections import defaultdict

from recbole_croloss.benchmark.paired import PairedDifference
from recbole_croloss.io import load_per_user_hits, per_user_hits_file

NS = (50, 100, 200, 500)
SUFFIX = "-cos10"


def cells_by_model_and_method(store: str) -> dict:
    """(model label, method label) -> seed -> (test recall by N in %, per-user hits)."""
    cells = defaultdict(dict)
    for path in glob.glob(os.path.join(glob.escape(store), "cells", "*.json")):
        record = json.load(open(path))
        cell, result = record["cell"], record["run"]["test_result"]
        recall = {n: 100 * result[f"recall@{n}"] for n in NS}
        cells[cell["model"], cell["method"]][cell["seed"]] = (recall, load_per_user_hits(per_user_hits_file(path)))
    return cells


def main(store: str) -> None:
    if not os.path.isdir(os.path.join(store, "cells")):
        sys.exit(f"store={store!r} holds no cells/ folder; give a result store's --out folder")
    cells = cells_by_model_and_method(store)
    pairs = [(model, method) for model, method in cells
             if model.endswith(SUFFIX) and (model[:-len(SUFFIX)], method) in cells]
    if not pairs:
        sys.exit(f"store={store!r} holds no model 'X{SUFFIX}' beside a model 'X' with the same loss")
    print("| model | loss | seeds | " + " | ".join(f"Δ R@{n}" for n in NS) + " |")
    print("|---|---|---|" + "---|" * len(NS))
    for model, method in sorted(pairs):
        cos, dot = cells[model, method], cells[model[:-len(SUFFIX)], method]
        row = []
        for n in NS:
            diff = PairedDifference.of({s: r[n] for s, (r, _) in cos.items()}, {s: r[n] for s, (r, _) in dot.items()},
                                       {s: h for s, (_, h) in cos.items()}, {s: h for s, (_, h) in dot.items()}, n_at=n)
            row.append(f"{diff.mean:+.2f} ({diff.wins}/{diff.n}; [{100 * diff.boot_low:+.2f}, {100 * diff.boot_high:+.2f}])")
        print(f"| {model[:-len(SUFFIX)]} | {method} | {len(set(cos) & set(dot))} | " + " | ".join(row) + " |")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python benchmarks/compare_scoring.py STORE (a models grid's result store)")
    main(sys.argv[1])
