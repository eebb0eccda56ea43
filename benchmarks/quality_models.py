"""Quality check of the plugin's models: ml-100k Recall@N with ``ce`` and with ``croloss``.

Each cell (model, loss setting, seed) is one run of ``run_recbole_croloss.py`` in its own
process, exactly as a user runs it (RecBole leave-one-out protocol, best validation epoch on the
test split). A finished cell's record is copied to ``OUT/<cell>.json`` atomically, so re-running
skips finished cells and a killed run loses at most the cells in flight. The report (mean, std
over seeds, and the paired difference of each CROLoss setting against ``ce`` seed by seed) is
printed and written to ``OUT/summary.md``.

    python benchmarks/quality_models.py --jobs 2 [--alphas 0.8 1.0 1.2] [--seeds 2020 2021 2022]

Superseded by the benchmark runner (``python -m recbole_croloss.benchmark
benchmarks/grids/models-ml-100k.yaml``, the same cells); kept because the records in
``benchmarks/results/models-ml-100k/`` were produced by this script.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
sys.path.insert(0, ROOT)
from machine import device_name  # noqa: E402
from recbole_croloss.io import atomic_write_json  # noqa: E402

#: model label -> command-line settings of the model.
MODELS = {
    "TwoTower": ["--model=TwoTower"],
    "ComiRec-SA": ["--model=ComiRec", "--interest_extractor=sa"],
    "ComiRec-DR": ["--model=ComiRec", "--interest_extractor=dr"],
    "MIND": ["--model=MIND"],
}
NS = (50, 100, 200, 500)


def loss_settings(alphas):
    """``[(label, args)]``: the model's own ``ce``, then CROLoss (softplus) at each alpha."""
    cells = [("ce", ["--loss=ce"])]
    cells += [(f"croloss a={a:g}", ["--loss=croloss", "--kernel=softplus", f"--alpha={a:g}"]) for a in alphas]
    return cells


def cell_name(model, loss, seed) -> str:
    return f"{model}__{loss.replace(' ', '_').replace('=', '')}__seed{seed}"


def run_cell(out, model, loss, args, seed, threads):
    path = os.path.join(out, cell_name(model, loss, seed) + ".json")
    if os.path.exists(path):
        return path, "cached", 0.0
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    with tempfile.TemporaryDirectory() as work:
        cmd = [sys.executable, os.path.join(ROOT, "run_recbole_croloss.py"), *MODELS[model], *args,
               "--dataset=ml-100k", f"--seed={seed}", "--show_progress=False",
               f"--checkpoint_dir={os.path.join(work, 'saved')}"]
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
        record = json.load(open(proc.stdout.split("config and metrics: ")[1].strip()))
    record["cell"] = {"model": model, "loss": loss, "seed": seed, "command": " ".join(cmd[1:]),
                      "seconds": round(elapsed, 1), "threads": threads}
    atomic_write_json(path, record)
    return path, "ran", elapsed


def fmt(values):
    mean = statistics.fmean(values)
    spread = statistics.stdev(values) if len(values) > 1 else float("nan")
    return f"{100 * mean:.2f} ± {100 * spread:.2f}"


def report(out, models, losses, seeds) -> str:
    lines = [f"Recall@N (%) on ml-100k, RecBole leave-one-out protocol (Recall@N = Hit@N), test split, "
             f"mean ± std over seeds {list(seeds)}; Δ = CROLoss − ce, paired by seed (mean ± std; "
             "wins = seeds where CROLoss is higher).", ""]
    for model in models:
        recs = {}
        for loss, _ in losses:
            for seed in seeds:
                path = os.path.join(out, cell_name(model, loss, seed) + ".json")
                if os.path.exists(path):
                    recs[loss, seed] = json.load(open(path))["test_result"]
        lines += [f"### {model}", "", "| loss | " + " | ".join(f"R@{n}" for n in NS) + " |",
                  "|---|" + "---|" * len(NS)]
        for loss, _ in losses:
            got = [recs[loss, s] for s in seeds if (loss, s) in recs]
            if got:
                lines.append(f"| {loss} (n={len(got)}) | " + " | ".join(
                    fmt([r[f"recall@{n}"] for r in got]) for n in NS) + " |")
        for loss, _ in losses[1:]:
            paired = [s for s in seeds if (loss, s) in recs and ("ce", s) in recs]
            if not paired:
                continue
            cells = []
            for n in NS:
                diffs = [recs[loss, s][f"recall@{n}"] - recs["ce", s][f"recall@{n}"] for s in paired]
                wins = sum(d > 0 for d in diffs)
                cells.append(f"{100 * statistics.fmean(diffs):+.2f} ± "
                             f"{100 * statistics.stdev(diffs) if len(diffs) > 1 else float('nan'):.2f} "
                             f"({wins}/{len(diffs)})")
            lines.append(f"| Δ {loss} − ce | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--alphas", nargs="+", type=float, default=[0.8, 1.0, 1.2])
    parser.add_argument("--seeds", nargs="+", type=int, default=[2020, 2021, 2022])
    parser.add_argument("--jobs", type=int, default=1, help="cells run at once")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per cell")
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "models-ml-100k"))
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    losses = loss_settings(args.alphas)
    os.makedirs(args.out, exist_ok=True)
    if not args.report_only:
        print(f"{datetime.date.today()} {platform.node()} {device_name(torch.device('cpu'))}, "
              f"torch {torch.__version__}, jobs {args.jobs} x threads {args.threads}", flush=True)
        cells = [(m, loss, a, s) for s in args.seeds for m in args.models for loss, a in losses]
        with ThreadPoolExecutor(args.jobs) as pool:
            futures = [pool.submit(run_cell, args.out, m, loss, a, s, args.threads) for m, loss, a, s in cells]
            for i, future in enumerate(futures, 1):
                path, how, seconds = future.result()
                print(f"[{i}/{len(cells)}] {os.path.basename(path)} {how} {seconds:.0f}s", flush=True)
    text = report(args.out, args.models, losses, args.seeds)
    print(text)
    with open(os.path.join(args.out, ".summary.tmp"), "w", encoding="utf-8") as fh:
        fh.write(text + "\n")
    os.replace(os.path.join(args.out, ".summary.tmp"), os.path.join(args.out, "summary.md"))


if __name__ == "__main__":
    main()
