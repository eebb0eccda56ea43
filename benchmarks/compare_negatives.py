"""Each sampler and loss of the negatives grid: test Recall@N per method (mean ± std over seeds),
what an epoch costs (training and validation, seconds, from the record's history, and as a
multiple of the reference method's), when the best
validation came, and each method's paired difference from CROLoss on uniform negatives (the
paper's setting; or the method named as the second argument) with its seed-level 95% t-interval,
from the cells of a negatives grid's result store:
``python benchmarks/compare_negatives.py benchmarks/results/negatives-ml-100k ["sampled_softmax, uniform"]``."""
import glob
import json
import os
import statistics
import sys
from collections import defaultdict

from scipy import stats

NS = (10, 50, 100, 200, 500)
REFERENCE = "croloss, uniform"


def label(settings: dict) -> str:
    name = f"{settings['loss']}, {settings['negatives']}"
    if settings.get("logq_correction") is False:
        name += ", no log q"
    if settings.get("neg_memory"):
        name += f", memory {settings['neg_memory']}"
    return name


def methods(store: str) -> dict:
    by_method = defaultdict(dict)
    for path in glob.glob(os.path.join(glob.escape(store), "cells", "*.json")):
        record = json.load(open(path))
        run = record["run"]
        last = run["history"][-1]
        by_method[label(record["cell"]["method_settings"])][record["cell"]["seed"]] = {
            "recall": {n: 100 * run["test_result"][f"recall@{n}"] for n in NS},
            "epoch_s": last["wall_s"] / last["epochs_done"], "best_epoch": run["best_epoch"],
            "stopped": run["stopped"]}
    return by_method


def mean_sd(values) -> str:
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}" if len(values) > 1 else f"{values[0]:.2f}"


def paired(cells: dict, reference: dict, n: int) -> str:
    seeds = sorted(set(cells) & set(reference))
    diff = [cells[s]["recall"][n] - reference[s]["recall"][n] for s in seeds]
    if len(diff) < 2:
        return "n/a"
    mean, sd = statistics.mean(diff), statistics.stdev(diff)
    half = stats.t.ppf(0.975, len(diff) - 1) * sd / len(diff) ** 0.5
    return f"{mean:+.2f} [{mean - half:+.2f}, {mean + half:+.2f}]"


def main(store: str, reference_name: str = REFERENCE):
    by_method = methods(store)
    reference = by_method[reference_name]
    reference_epoch_s = statistics.median(cell["epoch_s"] for cell in reference.values())
    print("| method | seeds | " + " | ".join(f"R@{n}" for n in NS) + " | s / epoch | x reference | best epochs | stops |")
    print("|---" * (len(NS) + 6) + "|")
    for name, cells in sorted(by_method.items()):
        seeds = sorted(cells)
        recalls = [mean_sd([cells[s]["recall"][n] for s in seeds]) for n in NS]
        epoch_s = statistics.median(cells[s]["epoch_s"] for s in seeds)
        stops = sorted({cells[s]["stopped"] for s in seeds})
        print(f"| {name} | {len(seeds)} | " + " | ".join(recalls) + f" | {epoch_s:.1f} | {epoch_s / reference_epoch_s:.2f} | "
              f"{', '.join(str(cells[s]['best_epoch']) for s in seeds)} | {', '.join(stops)} |")
    print(f"\nPaired difference from {reference_name} (points), mean [95% t CI over seeds]:\n")
    print("| method | " + " | ".join(f"R@{n}" for n in NS) + " |\n" + "|---" * (len(NS) + 1) + "|")
    for name, cells in sorted(by_method.items()):
        if name != reference_name:
            print(f"| {name} | " + " | ".join(paired(cells, reference, n) for n in NS) + " |")


if __name__ == "__main__":
    if not 2 <= len(sys.argv) <= 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])
