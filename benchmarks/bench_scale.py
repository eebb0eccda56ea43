"""The paper's scale end to end: data preparation (load, samples, split, loaders, model), peak
resident memory, a fixed number of training steps (with the extrapolated epoch) and the full
evaluation of the held-out users, for the plugin's data path against RecBole's.

    python -m recbole_croloss.data.synthetic --name books-synth --out /work/data --users 459133 \\
        --items 313966 --mean-length 19.4 --seed 1
    python benchmarks/bench_scale.py --dataset books-synth --data_path /work/data --steps 50

Each variant runs in its own process (so each peak RSS is its own), through the CLI's own code
path (:mod:`recbole_croloss.quick_start`'s ``configure``, ``load_dataset``, the protocol's
split and ``build_adapter``, each stage timed apart) under ``protocol: paper``,
TwoTower, batch 256, M = 2560 (history ``--history``, 20 by default; the paper's Taobao: 50).
Variants (``--variants``, all by default):

- ``lean``: the defaults: the lean ``.inter`` loader and windowed histories;
- ``recbole_loader``: windowed histories, RecBole's own ``.inter`` loader
  (``lean_inter_loader: false``);
- ``recbole``: RecBole's loader and its materialised augmentation (``history_windows: false``
  too), where it still fits.

Every stage is timed in wall-clock seconds and in the process's CPU seconds (user + system, all
its threads): on a machine shared with other jobs the wall time grows with the load, the CPU
time much less, so both are printed.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import raw_output  # noqa: E402
VARIANTS = {"lean": {}, "recbole_loader": {"lean_inter_loader": False},
            "recbole": {"lean_inter_loader": False, "history_windows": False}}


class Stopwatch:
    """Wall and CPU seconds of each stage, in order."""

    def __init__(self):
        self.wall, self.cpu = {}, {}
        self._marks = (time.perf_counter(), time.process_time())

    def stage(self, name: str) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        self.wall[name], self.cpu[name] = wall - self._marks[0], cpu - self._marks[1]
        self._marks = (wall, cpu)


def measure(dataset: str, data_path: str, settings: dict, steps: int, evaluate: bool, history: int) -> dict:
    """One variant, in this process: seconds per stage, peak RSS, steps and evaluation."""
    import torch
    from recbole.data import data_preparation  # noqa: F401  (RecBole imported before timing)
    from recbole_croloss.glue.trainer import CROLossTrainer
    from recbole_croloss.quick_start import build_adapter, configure, load_dataset, log_dataset_settings

    work = tempfile.mkdtemp(prefix="bench-scale-")
    os.chdir(work)
    config_dict = {"protocol": "paper", "MAX_ITEM_LIST_LENGTH": history, "train_batch_size": 256,
                   "eval_batch_size": 4096, "neg_per_pos": 10, "epochs": 1, "show_progress": False,
                   "state": "WARNING", "data_path": data_path, "checkpoint_dir": os.path.join(work, "saved"),
                   **settings}
    watch = Stopwatch()
    config, spec = configure("TwoTower", dataset, config_dict=config_dict)
    log_dataset_settings(config, spec)
    data = load_dataset(config, spec)
    watch.stage("load")
    train_data, valid_data, test_data = spec.protocol.prepare(config, data)
    del data  # the splits hold what training and evaluation read
    watch.stage("samples_and_split")
    adapter = build_adapter(config, spec, train_data)  # seeded: the same model in every variant
    trainer = CROLossTrainer(config, adapter, spec.evaluation.evaluator, spec.evaluation.mask)
    watch.stage("model_and_trainer")
    out = {"samples": len(train_data._dataset), "steps_per_epoch": len(train_data),
           "peak_rss_gib_prepared": peak_rss_gib()}
    adapter.train()
    done = 0
    for interaction in train_data:
        loss = adapter.calculate_loss(interaction.to(config["device"]))
        trainer.optimizer.zero_grad()
        loss.backward()
        trainer.optimizer.step()
        done += 1
        if done == steps:
            break
    watch.stage("steps")
    out.update(step_s=watch.wall["steps"] / max(done, 1), step_cpu_s=watch.cpu["steps"] / max(done, 1))
    out.update(epoch_s_extrapolated=out["step_s"] * len(train_data))
    if evaluate:
        with torch.no_grad():
            result = trainer.evaluate(test_data, load_best_model=False)
        watch.stage("evaluation")
        out.update(test_users=test_data.sample_size, test_recall_at_50=result.get("recall@50"))
    preparation = ("load", "samples_and_split", "model_and_trainer")
    out["seconds"] = {**watch.wall, "preparation": sum(watch.wall[k] for k in preparation)}
    out["cpu_seconds"] = {**watch.cpu, "preparation": sum(watch.cpu[k] for k in preparation)}
    out["peak_rss_gib"] = peak_rss_gib()
    return out


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20  # KiB on Linux


def guard_rss(limit_gib: float) -> None:
    """End this process (exit 3, with a line on stderr) once its resident memory passes
    ``limit_gib``: a variant that cannot fit stops before it crowds out the machine's other jobs."""
    page = os.sysconf("SC_PAGE_SIZE")

    def watch():
        while True:
            with open("/proc/self/statm") as handle:
                rss = int(handle.read().split()[1]) * page / 2 ** 30
            if rss > limit_gib:
                print(f"resident memory {rss:.2f} GiB passed --rss-limit-gib {limit_gib}", file=sys.stderr, flush=True)
                os._exit(3)
            time.sleep(0.05)

    threading.Thread(target=watch, daemon=True).start()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--data_path", default="dataset")
    parser.add_argument("--steps", type=int, default=50, help="training steps timed per variant")
    parser.add_argument("--history", type=int, default=20, help="MAX_ITEM_LIST_LENGTH")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-eval", action="store_true", help="skip the full evaluation")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--rss-limit-gib", type=float, help="stop a variant whose resident memory passes it")
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)  # one child process
    args = parser.parse_args(argv)
    names = args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"--variants: {', '.join(unknown)} unknown; choose from {', '.join(VARIANTS)}")
    if args.variant:
        import torch

        if args.rss_limit_gib:
            guard_rss(args.rss_limit_gib)
        torch.set_num_threads(args.threads)
        print(json.dumps(measure(args.dataset, os.path.abspath(args.data_path), VARIANTS[args.variant],
                                 args.steps, not args.no_eval, args.history)))
        return 0
    results = {}
    started = datetime.datetime.now()
    given = sys.argv[1:] if argv is None else list(argv)
    for name in names:
        command = [sys.executable, __file__, *given, "--variant", name]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(args.threads)}
        proc = subprocess.run(command, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            results[name] = {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
            continue
        results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    report(args, given, results)
    figures = {"dataset": args.dataset, "history": args.history, "steps": args.steps, "threads": args.threads,
               "variants": results}
    raw_output.write("bench_scale", figures, argv=given, started=started)
    return 0


STAGES = ("load", "samples_and_split", "model_and_trainer", "preparation", "steps", "evaluation")
FIGURES = (("peak_rss_gib_prepared", "peak RSS after preparation (GiB)"), ("peak_rss_gib", "peak RSS overall (GiB)"),
           ("step_s", "training step (s)"), ("step_cpu_s", "training step, CPU (s)"),
           ("epoch_s_extrapolated", "epoch, extrapolated (s)"))


def report(args, given, results: dict) -> None:
    print(f"# bench_scale: {args.dataset} ({datetime.date.today()}, {platform.node()}, "
          f"{os.cpu_count()} CPUs, {args.threads} threads, load average {os.getloadavg()[0]:.1f} at the end)")
    print(f"command: python benchmarks/bench_scale.py {shlex.join(given)}")
    good = [n for n in results if "error" not in results[n]]
    others = good[1:]
    print("| figure | " + " | ".join(good) + "".join(f" | {n} / {good[0]}" for n in others) + " |")
    print("|---|" + "---|" * (len(good) + len(others)))

    def line(label, values):
        ratios = "".join(f" {v / values[0]:.2f}x |" if values[0] else " - |" for v in values[1:])
        print(f"| {label} | " + " | ".join(f"{v:.2f}" for v in values) + " |" + ratios)

    for stage in STAGES:
        for key, unit in (("seconds", "s"), ("cpu_seconds", "CPU s")):
            if all(stage in results[n][key] for n in good):
                line(f"{stage} ({unit})", [results[n][key][stage] for n in good])
    for key, label in FIGURES:
        if all(key in results[n] for n in good):
            line(label, [results[n][key] for n in good])
    for n in results:
        print(f"{n}: " + json.dumps(results[n]))


if __name__ == "__main__":
    sys.exit(main())
