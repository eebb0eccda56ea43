"""The alpha: auto searches in FOLDER (``targetN-seedSEED.json``, from ``alpha_auto_one.sh``)
against the full sweep's TwoTower cells (CROLoss over the kernels and alphas the search draws from,
FOLDER/config.yaml's alpha_search_kernels and alpha_grid) and ce in a grid's result store:
``python benchmarks/compare_alpha_auto.py benchmarks/results/alpha-auto-ml-100k benchmarks/results/ml-100k [SEED]``."""
import glob, json, os, sys

import yaml

if not 3 <= len(sys.argv) <= 4:
    sys.exit(__doc__)
HERE = os.path.abspath(sys.argv[1])
CELLS = os.path.join(os.path.abspath(sys.argv[2]), "cells")
SEED = int(sys.argv[3]) if len(sys.argv) > 3 else 2020
with open(os.path.join(HERE, "config.yaml"), encoding="utf-8") as fh:
    SEARCH = yaml.safe_load(fh)
KERNELS, ALPHAS = SEARCH["alpha_search_kernels"], SEARCH["alpha_grid"]
sweep, ce = {}, None
for path in glob.glob(f"{CELLS}/*.json"):
    rec = json.load(open(path))
    cell, run = rec["cell"], rec["run"]
    if cell["seed"] != SEED or cell["model"] != "TwoTower":
        continue
    m = cell["method_settings"]
    if m.get("loss") == "ce":
        ce = run
    elif m.get("loss") == "croloss" and m.get("kernel") in KERNELS and m.get("alpha") in ALPHAS:
        sweep[(m["kernel"], m["alpha"])] = run
print(f"seed {SEED}: {len(sweep)} sweep cells (croloss {'/'.join(KERNELS)} x alpha {min(ALPHAS):g}-{max(ALPHAS):g}), ce: {ce is not None}")
print(f"| N | auto: chosen | auto test R@N | best fixed on test (oracle) | best fixed on valid R@N | ce | search epochs (x one run of winner) | train s (x) | search epochs / {len(KERNELS) * len(ALPHAS)}-cell sweep epochs |")
print("|---|---|---|---|---|---|---|---|---|")
for n in (50, 100, 200, 500):
    path = os.path.join(HERE, f"target{n}-seed{SEED}.json")
    if not os.path.exists(path):
        print(f"| {n} | (not run) |"); continue
    rec = json.load(open(path)); s = rec["alpha_search"]; c = s["cost"]; k = f"recall@{n}"
    oracle = max(sweep, key=lambda key: sweep[key]["test_result"][k]) if sweep else None
    by_valid = max(sweep, key=lambda key: sweep[key]["best_valid_result"].get(k, -1)) if sweep else None
    sweep_epochs = sum(r["epochs_run"] for r in sweep.values())
    fmt = lambda key: f"{key[0]} {key[1]:g}: {100 * sweep[key]['test_result'][k]:.2f}" if key else "-"
    print(f"| {n} | {s['chosen']['kernel']} {s['chosen']['alpha']:g} | {100 * rec['test_result'][k]:.2f} | {fmt(oracle)} | "
          f"{fmt(by_valid)} | {100 * ce['test_result'][k]:.2f} | {c['epochs']} ({c['epochs_vs_one_run']:g}x of {c['winner_epochs']}) | "
          f"{c['train_wall_s']:.0f} ({c['wall_vs_one_run']:g}x) | {c['epochs']}/{sweep_epochs} = {c['epochs'] / sweep_epochs:.2f} |")
if sweep:
    print("\nsweep cells' test Recall@N (%), seed", SEED)
    for key in sorted(sweep):
        r = sweep[key]
        print(f"  {key[0]:8s} {key[1]:g}: " + "  ".join(f"R@{n} {100 * r['test_result'][f'recall@{n}']:.2f}" for n in (50, 100, 200, 500))
              + f"  (epochs {r['epochs_run']}, best {r['best_epoch']})")
print(f"  ce: " + "  ".join(f"R@{n} {100 * ce['test_result'][f'recall@{n}']:.2f}" for n in (50, 100, 200, 500)))
for n in (50, 100, 200, 500):
    path = os.path.join(HERE, f"target{n}-seed{SEED}.json")
    if os.path.exists(path):
        s = json.load(open(path))["alpha_search"]
        print(f"\nN={n} rungs:")
        for r in s["rungs"]:
            print(f"  to epoch {r['budget_epochs']}: " + ", ".join(f"{l} {v:.4f}" for l, v in r["scores"].items()) + f"; kept {r['kept']}")
