"""Seconds per training epoch of RecBole sequential models: the model's own CE against CROLoss.

    python benchmarks/bench_epoch.py                          # GRU4Rec and SASRec, 2 rounds
    python benchmarks/bench_epoch.py --models SASRec --rounds 5 --threads 2
    python benchmarks/bench_epoch.py --models GRU4Rec --losses "ce,croloss,croloss fused"

Every run is prepared by :func:`recbole_croloss.quick_start.prepare_run`, the CLI's own code path, on the
bundled ml-100k (full dataset, RecBole's leave-one-out split) with the paper's batch size 256,
history length 20 and ``neg_per_pos`` 10 (M = 2560 shared negatives), and RecBole's default model
sizes. Losses: ``ce`` (the model's own cross-entropy over the whole item table, [B, n_items]
logits), ``sampled_softmax`` and ``croloss`` (softplus, alpha 1.0; and alpha 1.2) on the adapter's
[B, M] scores, and ``croloss fused`` (alpha 1.0, ``loss_engine: fused``: its first epoch includes
the compile). Only ``trainer._train_epoch`` is timed (batches, forward, loss, backward, optimiser
step), not building, data loading or evaluation.

Each run is prepared once; then each round runs one epoch of every (model, loss) run, one after the
other, the order rotated from round to round, so that noise from other work on a shared machine
hits all runs alike. The table gives the median epoch over rounds and its ratio to ``ce`` of the
same model (the target is judged on it), and the fastest round with its ratio.
Target: croloss <= 1.05x ce, per model.
"""
from __future__ import annotations

import argparse
import datetime
import gc
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import device_name  # noqa: E402
import raw_output  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from recbole_croloss.quick_start import prepare_run  # noqa: E402

# RecBole 1.2.1's own deprecation noise (pandas chained fillna, torch.cuda.amp.GradScaler), once
# per build and per epoch; it does not change what is measured.
warnings.filterwarnings("ignore", category=FutureWarning, module=r"recbole\.")

TARGET = 1.05
BASELINE = "ce"
#: (label, plugin settings). The croloss rows are the ones the target is judged on.
LOSSES = [
    ("ce", {"loss": "ce"}),
    # the sampled losses on M = 10 x 256 drawn negatives (more than ml-100k's items, where the
    # default would score every item once instead)
    ("sampled_softmax", {"loss": "sampled_softmax", "negatives": "uniform"}),
    ("croloss", {"loss": "croloss", "negatives": "uniform"}),  # softplus, alpha 1.0 (the preset's defaults)
    ("croloss a=1.2", {"loss": "croloss", "alpha": 1.2, "negatives": "uniform"}),
    ("croloss fused", {"loss": "croloss", "loss_engine": "fused", "negatives": "uniform"}),
]
TARGET_ROWS = ("croloss", "croloss a=1.2", "croloss fused")
SETTINGS = {
    "train_batch_size": 256,        # the paper's
    "MAX_ITEM_LIST_LENGTH": 20,     # the paper's Amazon setting
    # neg_per_pos: the default 10 (M = 2560); not set here, as ce reads no negatives and refuses it
    "show_progress": False,
    "state": "WARNING",
}


def time_epoch(prepared, epoch_idx: int) -> float:
    device = prepared.config["device"]
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    gc.collect()
    sync()
    t0 = time.perf_counter()
    prepared.trainer._train_epoch(prepared.train_data, epoch_idx)
    sync()
    return time.perf_counter() - t0


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="GRU4Rec,SASRec", help="comma-separated model names")
    parser.add_argument("--rounds", type=int, default=2, help="epochs per run, interleaved (median over them)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--losses", default=",".join(label for label, _ in LOSSES),
                        help="comma-separated loss rows (ce, the baseline, always runs)")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be >= 1")
    args.losses = [BASELINE] + [label for label in args.losses.split(",") if label and label != BASELINE]
    unknown = set(args.losses) - {label for label, _ in LOSSES}
    if unknown:
        parser.error(f"--losses: unknown {sorted(unknown)}; choose from {[label for label, _ in LOSSES]}")
    return args


def print_header(rounds: int) -> None:
    """The run's date, command, platform and device, as comment lines."""
    command = " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(f"# bench_epoch  {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(f"# command: cd {shlex.quote(os.getcwd())} && {command}")
    print(f"# platform={platform.platform()}  python={platform.python_version()}  cpus={os.cpu_count()}  "
          f"torch={torch.__version__}  threads={torch.get_num_threads()}")
    print(f"# device={device}: {device_name(device)}")
    print(f"# ml-100k (full, leave-one-out), batch 256, history 20, neg_per_pos 10 (M=2560), "
          f"RecBole default model sizes; rounds={rounds}; target: croloss <= {TARGET}x ce", flush=True)


def prepare_runs(models: list[str], losses: list[str]) -> dict:
    """(model, loss label) -> the run prepared by the CLI's own code path."""
    runs = {}
    for model in models:
        for label, settings in LOSSES:
            if label not in losses:
                continue
            t0 = time.perf_counter()
            prepared = prepare_run(model, "ml-100k", config_dict={**SETTINGS, **settings})
            runs[(model, label)] = prepared
            print(f"# built {model:<8} {label:<16} device={prepared.config['device']}  "
                  f"batches/epoch={len(prepared.train_data)}  {time.perf_counter() - t0:.1f}s", flush=True)
    return runs


def run_rounds(runs: dict, rounds: int) -> dict:
    """(model, loss label) -> seconds of each round's epoch; the run order rotates per round."""
    keys = list(runs)
    times = {key: [] for key in keys}
    for r in range(rounds):
        k = r % len(keys)
        for key in keys[k:] + keys[:k]:
            seconds = time_epoch(runs[key], r)
            times[key].append(seconds)
            print(f"# round {r + 1}/{rounds}  {key[0]:<8} {key[1]:<16} {seconds:8.2f}s", flush=True)
    return times


def measure(models: list[str], losses: list[str], rounds: int, threads: int) -> tuple[dict, dict]:
    """(runs, times), built and run in a scratch folder."""
    with tempfile.TemporaryDirectory(prefix="bench_epoch-") as workdir:
        home = os.getcwd()
        os.chdir(workdir)  # RecBole writes log/, log_tensorboard/ and saved/ here
        try:
            runs = prepare_runs(models, losses)
            if torch.get_num_threads() != threads:
                print(f"# note: torch threads changed to {torch.get_num_threads()} while building")
            return runs, run_rounds(runs, rounds)
        finally:
            os.chdir(home)


def print_model_rows(model: str, runs: dict, times: dict, records: list | None = None) -> str:
    """Print one model's table rows (each also appended to ``records`` as a dict); returns its
    target verdict line."""
    labels = [label for label, _ in LOSSES if (model, label) in times]
    base_med = statistics.median(times[(model, BASELINE)])
    base_min = min(times[(model, BASELINE)])
    ratios = {}
    for label in labels:
        ts = times[(model, label)]
        med, best = statistics.median(ts), min(ts)
        ratios[label] = med / base_med
        n_batches = len(runs[(model, label)].train_data)
        flag = "" if label not in TARGET_ROWS else ("  ok" if ratios[label] <= TARGET else "  ABOVE TARGET")
        if records is not None:
            records.append({"model": model, "loss": label, "median_s": med, "ratio": med / base_med, "min_s": best,
                            "ratio_min": best / base_min, "ms_per_batch": 1e3 * med / n_batches,
                            "batches": n_batches, "rounds_s": ts,
                            "target_met": None if label not in TARGET_ROWS else ratios[label] <= TARGET})
        print(f"{model:<8} {label:<16} {med:>9.2f} {med / base_med:>6.2f} {best:>8.2f} "
              f"{best / base_min:>10.2f} {1e3 * med / n_batches:>9.1f}  "
              + " ".join(f"{t:.2f}" for t in ts) + flag)
    judged = [label for label in TARGET_ROWS if label in ratios]
    parts = [f"{label} {ratios[label]:.2f}x {'YES' if ratios[label] <= TARGET else 'NO'}" for label in judged]
    ok = all(ratios[label] <= TARGET for label in judged)
    return f"{model}: croloss <= {TARGET}x ce: {'YES' if ok else 'NO'} ({'; '.join(parts)})"


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    started, started_at = time.perf_counter(), datetime.datetime.now()
    print_header(args.rounds)
    runs, times = measure(models, args.losses, args.rounds, threads)
    print()
    print(f"{'model':<8} {'loss':<16} {'median s':>9} {'ratio':>6} {'min s':>8} {'ratio(min)':>10} "
          f"{'ms/batch':>9}  rounds (s)")
    rows = []
    summary = [print_model_rows(model, runs, times, rows) for model in models]
    print()
    for line in summary:
        print(line)
    total = time.perf_counter() - started
    print(f"# total wall time {total:.0f}s")
    figures = {"dataset": "ml-100k", "rounds": args.rounds, "threads": threads, "target": TARGET, "rows": rows,
               "verdicts": summary, "total_wall_s": total}
    device = "cuda" if torch.cuda.is_available() else None
    raw_output.write("bench_epoch", figures, argv=argv, device=device, started=started_at)


if __name__ == "__main__":
    main()
