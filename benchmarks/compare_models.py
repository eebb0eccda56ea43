"""Two models of one result store against each other, per loss: test Recall@N (points) of model X
minus that of model Y, paired by seed, with the seeds X is ahead on and the report's two-stage
bootstrap over seeds and test users (95%; both models must share the test users, as two models of
one grid on one dataset do).

``python benchmarks/compare_models.py STORE`` pairs every model label ``X-cos10`` with ``X`` (the
paper's scoring, cosine x 10, against the dot product); ``--pair X Y`` (repeatable) names the
pairs instead; ``--ns`` the cut-offs (default 50 100 200 500), which the cells' per-user hits
must hold (under ``protocol: sampled``, Hit@K is the Recall@K of one target:
``--ns 5 10 20 50``)."""
import argparse
import glob
import json
import os
import sys
from collections import defaultdict

from recbole_croloss.benchmark.paired import PairedDifference
from recbole_croloss.io import load_per_user_hits, per_user_hits_file

SUFFIX = "-cos10"


def cells_by_model_and_method(store: str, ns) -> dict:
    """(model label, method label) -> seed -> (test Recall@N by N in %, per-user hits)."""
    cells = defaultdict(dict)
    for path in glob.glob(os.path.join(glob.escape(store), "cells", "*.json")):
        record = json.load(open(path))
        cell, result = record["cell"], record["run"]["test_result"]
        name = "recall" if f"recall@{ns[0]}" in result else "hit"
        recall = {n: 100 * result[f"{name}@{n}"] for n in ns}
        cells[cell["model"], cell["method"]][cell["seed"]] = (recall, load_per_user_hits(per_user_hits_file(path)))
    return cells


def delta_cells(x: dict, y: dict, ns) -> list[str]:
    """``x``, ``y``: seed -> (Recall@N by N, per-user hits); one ``mean (wins/seeds; [low,
    high])`` text per N."""
    row = []
    for n in ns:
        diff = PairedDifference.of({s: r[n] for s, (r, _) in x.items()}, {s: r[n] for s, (r, _) in y.items()},
                                   {s: h for s, (_, h) in x.items()}, {s: h for s, (_, h) in y.items()}, n_at=n)
        row.append(f"{diff.mean:+.2f} ({diff.wins}/{diff.n}; [{100 * diff.boot_low:+.2f}, {100 * diff.boot_high:+.2f}])")
    return row


def main(store: str, pairs: list | None, ns: list) -> None:
    if not os.path.isdir(os.path.join(store, "cells")):
        sys.exit(f"store={store!r} holds no cells/ folder; give a result store's --out folder")
    cells = cells_by_model_and_method(store, ns)
    models = sorted({model for model, _ in cells})
    if pairs is None:
        pairs = [(m, m[:-len(SUFFIX)]) for m in models if m.endswith(SUFFIX) and m[:-len(SUFFIX)] in models]
        if not pairs:
            sys.exit(f"store={store!r} holds no model 'X{SUFFIX}' beside a model 'X'; name pairs with --pair X Y")
    for x, y in pairs:
        for label in (x, y):
            if label not in models:
                sys.exit(f"--pair: model={label!r} is not in store={store!r}; its models: {models}")
    print("| X | Y | loss | seeds | " + " | ".join(f"Δ R@{n}" for n in ns) + " |")
    print("|---|---|---|---|" + "---|" * len(ns))
    for x, y in pairs:
        for method in sorted({m for model, m in cells if model == x} & {m for model, m in cells if model == y}):
            x_cells, y_cells = cells[x, method], cells[y, method]
            print(f"| {x} | {y} | {method} | {len(set(x_cells) & set(y_cells))} | "
                  + " | ".join(delta_cells(x_cells, y_cells, ns)) + " |")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("store", help="a benchmark result store (the runner's --out folder)")
    parser.add_argument("--pair", nargs=2, action="append", metavar=("X", "Y"),
                        help="compare model label X with Y (repeatable; default: every X-cos10 with X)")
    parser.add_argument("--ns", nargs="+", type=int, default=[50, 100, 200, 500], help="the cut-offs N")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args(sys.argv[1:])
    main(args.store, [tuple(p) for p in args.pair] if args.pair else None, args.ns)
