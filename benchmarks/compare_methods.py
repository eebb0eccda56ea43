"""Two methods of one result store, paired by seed at every N the cells measured.

``python benchmarks/compare_methods.py GRID STORE X Y`` prints, per N, the test Recall@N (%) of
X and of Y (mean over seeds) and X − Y paired by seed, with the seed-level t-interval and, where
the cells stored per-user hits, the two-stage bootstrap over seeds and users (the runner's
report's statistics). X and Y are method labels as the report writes them, e.g.
``"croloss(kernel=softplus, alpha=1, sparse_item_updates=True)"``; a wrong one lists the labels.
"""
import sys

from recbole_croloss.benchmark.grid import load_grid
from recbole_croloss.benchmark.report import collect_results, group_by_model
from recbole_croloss.benchmark.store import ResultStore


def main(grid_path: str, store_path: str, x: str, y: str) -> None:
    for results in group_by_model(collect_results(load_grid(grid_path, check=False), ResultStore(store_path))):
        missing = [label for label in (x, y) if label not in results.by_method]
        if missing:
            sys.exit(f"{store_path}, {results.title}: no method {missing[0]!r}; "
                     f"its methods: {', '.join(sorted(results.by_method))}")
        print(f"{results.title}: X = {x}, Y = {y}\n")
        print("| N | X | Y | X − Y (points) | verdict |\n|---|---|---|---|---|")
        for n in results.ns:
            difference = results.difference(x, y, n)
            print(f"| {n} | {100 * results.test_stats(x, n)[0]:.2f} | {100 * results.test_stats(y, n)[0]:.2f} | "
                  f"{difference.text()} | {difference.verdict('X', 'Y')} |")


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    main(*sys.argv[1:])
