"""The alpha: auto searches in FOLDER (``targetN-seedSEED.json``, from ``alpha_auto_one.sh``)
against the full sweep's TwoTower cells (CROLoss over the kernels and alphas the search draws from,
FOLDER/config.yaml's alpha_search_kernels and alpha_grid) and ce in a grid's result store:
``python benchmarks/compare_alpha_auto.py benchmarks/results/alpha-auto-ml-100k benchmarks/results/ml-100k [SEED]``
(one seed's table, rungs and sweep), or ``... all`` (every seed with searches, paired: auto
against ce and against the sweep's cell chosen on validation Recall@N, with the two-stage
bootstrap over seeds and test users where every record has its per-user hits)."""
import glob, json, os, sys

import yaml

from recbole_croloss.benchmark.paired import PairedDifference, first_best
from recbole_croloss.io import load_per_user_hits

NS = (50, 100, 200, 500)
if not 3 <= len(sys.argv) <= 4:
    sys.exit(__doc__)
HERE = os.path.abspath(sys.argv[1])
CELLS = os.path.join(os.path.abspath(sys.argv[2]), "cells")
SEED_ARG = sys.argv[3] if len(sys.argv) > 3 else "2020"
if SEED_ARG != "all" and not SEED_ARG.isdigit():
    sys.exit(f"SEED must be a seed (an integer, e.g. 2020) or 'all', not {SEED_ARG!r}")
with open(os.path.join(HERE, "config.yaml"), encoding="utf-8") as fh:
    SEARCH = yaml.safe_load(fh)
KERNELS, ALPHAS = SEARCH["alpha_search_kernels"], SEARCH["alpha_grid"]


def sweep_and_ce(seed):
    """(kernel, alpha) -> the sweep cell's record, and ce's record, of ``seed``; each record is
    the cell's ``run`` with the path of its per-user hits added as ``hits_path``."""
    sweep, ce = {}, None
    for path in glob.glob(f"{CELLS}/*.json"):
        rec = json.load(open(path))
        cell, run = rec["cell"], dict(rec["run"], hits_path=path[:-len(".json")] + ".hits.npz")
        if cell["seed"] != seed or cell["model"] != "TwoTower":
            continue
        m = cell["method_settings"]
        if m.get("loss") == "ce":
            ce = run
        elif m.get("loss") == "croloss" and m.get("kernel") in KERNELS and m.get("alpha") in ALPHAS:
            sweep[(m["kernel"], m["alpha"])] = run
    grid_order = [(kernel, alpha) for kernel in KERNELS for alpha in ALPHAS]  # the search's candidates' order
    return {key: sweep[key] for key in grid_order if key in sweep}, ce


def search_record(n, seed):
    path = os.path.join(HERE, f"target{n}-seed{seed}.json")
    if not os.path.exists(path):
        return None
    return dict(json.load(open(path)), hits_path=path[:-len(".json")] + ".hits.npz")


def best_on(sweep, n, split):
    """The sweep's key with the best ``split`` (test_result or best_valid_result) Recall@n; of
    equal ones, the first in the grid's order."""
    return first_best(sweep, lambda key: sweep[key][split].get(f"recall@{n}", -1))


def one_seed(seed):
    sweep, ce = sweep_and_ce(seed)
    print(f"seed {seed}: {len(sweep)} sweep cells (croloss {'/'.join(KERNELS)} x alpha {min(ALPHAS):g}-{max(ALPHAS):g}), ce: {ce is not None}")
    print(f"| N | auto: chosen | auto test R@N | best fixed on test (oracle) | best fixed on valid R@N | ce | search epochs (x one run of winner) | train s (x) | search epochs / {len(KERNELS) * len(ALPHAS)}-cell sweep epochs |")
    print("|---|---|---|---|---|---|---|---|---|")
    sweep_epochs = sum(r["epochs_run"] for r in sweep.values())
    for n in NS:
        rec = search_record(n, seed)
        if rec is None:
            print(f"| {n} | (not run) |"); continue
        s, k = rec["alpha_search"], f"recall@{n}"
        c = s["cost"]
        fmt = lambda key: f"{key[0]} {key[1]:g}: {100 * sweep[key]['test_result'][k]:.2f}" if key else "-"
        print(f"| {n} | {s['chosen']['kernel']} {s['chosen']['alpha']:g} | {100 * rec['test_result'][k]:.2f} | "
              f"{fmt(best_on(sweep, n, 'test_result'))} | {fmt(best_on(sweep, n, 'best_valid_result'))} | "
              f"{100 * ce['test_result'][k]:.2f} | {c['epochs']} ({c['epochs_vs_one_run']:.2f}x of {c['winner_epochs']}) | "
              f"{c['train_wall_s']:.0f} ({c['wall_vs_one_run']:.2f}x) | {c['epochs']}/{sweep_epochs} = {c['epochs'] / sweep_epochs:.2f} |")
    differences(seed, sweep, ce)
    print("\nsweep cells' test Recall@N (%), seed", seed)
    for key in sorted(sweep):
        r = sweep[key]
        print(f"  {key[0]:8s} {key[1]:g}: " + "  ".join(f"R@{n} {100 * r['test_result'][f'recall@{n}']:.2f}" for n in NS)
              + f"  (epochs {r['epochs_run']}, best {r['best_epoch']}; valid "
              + "  ".join(f"R@{n} {r['best_valid_result'][f'recall@{n}']:.4f}" for n in NS) + ")")
    print(f"  ce: " + "  ".join(f"R@{n} {100 * ce['test_result'][f'recall@{n}']:.2f}" for n in NS))
    for n in NS:
        rec = search_record(n, seed)
        if rec is not None:
            print(f"\nN={n} rungs:")
            for r in rec["alpha_search"]["rungs"]:
                print(f"  to epoch {r['budget_epochs']}: " + ", ".join(f"{l} {v:.4f}" for l, v in r["scores"].items()) + f"; kept {r['kept']}")


def differences(seed, sweep, ce):
    """Auto's test Recall@N minus the oracle's, the validation pick's and ce's, in points."""
    print(f"\nseed {seed}, auto's test Recall@N minus (points):\n| N | best fixed on test | best fixed on valid R@N | ce |\n|---|---|---|---|")
    for n in NS:
        rec, k = search_record(n, seed), f"recall@{n}"
        if rec is not None:
            others = [sweep[best_on(sweep, n, "test_result")], sweep[best_on(sweep, n, "best_valid_result")], ce]
            print(f"| {n} | " + " | ".join(f"{100 * (rec['test_result'][k] - o['test_result'][k]):+.2f}" for o in others) + " |")


def paired(pairs, n):
    """``pairs``: seed -> (X's record, Y's record); the paired difference of their test Recall@n."""
    k = f"recall@{n}"
    x = {s: a["test_result"][k] for s, (a, b) in pairs.items()}
    y = {s: b["test_result"][k] for s, (a, b) in pairs.items()}
    if all(os.path.exists(r["hits_path"]) for pair in pairs.values() for r in pair):
        x_hits = {s: load_per_user_hits(a["hits_path"]) for s, (a, b) in pairs.items()}
        y_hits = {s: load_per_user_hits(b["hits_path"]) for s, (a, b) in pairs.items()}
        return PairedDifference.of(x, y, x_hits, y_hits, n)
    return PairedDifference.of(x, y)


def all_seeds():
    seeds = sorted({int(p.rsplit("seed", 1)[1][:-len(".json")]) for p in glob.glob(f"{HERE}/target*-seed*.json")})
    cells = {seed: sweep_and_ce(seed) for seed in seeds}
    print(f"seeds {seeds}; test Recall@N difference in points, paired over seeds (and users)")
    print("| N | searches | auto chose | auto - ce | auto - sweep's best on valid R@N |")
    print("|---|---|---|---|---|")
    for n in NS:
        records = {s: r for s in seeds if (r := search_record(n, s)) is not None and cells[s][1] is not None}
        chose = ", ".join(f"{r['alpha_search']['chosen']['kernel']} {r['alpha_search']['chosen']['alpha']:g}" for r in records.values())
        vs_ce = paired({s: (r, cells[s][1]) for s, r in records.items()}, n)
        vs_valid = paired({s: (r, cells[s][0][best_on(cells[s][0], n, "best_valid_result")])
                           for s, r in records.items() if cells[s][0]}, n)
        print(f"| {n} | {len(records)} | {chose} | {vs_ce.text()}: {vs_ce.verdict('auto', 'ce')} | "
              f"{vs_valid.text()}: {vs_valid.verdict('auto', 'the sweep')} |")


if SEED_ARG == "all":
    all_seeds()
else:
    one_seed(int(SEED_ARG))
