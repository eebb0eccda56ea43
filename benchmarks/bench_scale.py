"""The paper's scale end to end: data preparation (load, samples, split, loaders, model), peak
resident memory, a fixed number of training steps (with the extrapolated epoch) and the full
evaluation of the held-out users, with windowed histories against RecBole's materialised ones.

    python -m recbole_croloss.data.synthetic --name books-synth --out dataset --users 459133 \\
        --items 313966 --mean-length 19.4 --seed 1
    python benchmarks/bench_scale.py --dataset books-synth --data_path dataset --steps 50

Each variant runs in its own process (so each peak RSS is its own), through the CLI's own code
path (:func:`recbole_croloss.quick_start.configure` and ``prepare``) under ``protocol: paper``,
TwoTower, history 20, batch 256, M = 2560. Variants: ``windows`` (the default) and
``materialised`` (``history_windows: false``, RecBole's augmentation), the latter skipped with
``--skip-materialised`` where it cannot fit. Stages are read from the run's own log times.
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
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {"windows": {"history_windows": True}, "materialised": {"history_windows": False}}


def measure(dataset: str, data_path: str, settings: dict, steps: int, evaluate: bool) -> dict:
    """One variant, in this process: seconds per stage, peak RSS, steps and evaluation."""
    import torch
    from recbole.data import data_preparation  # noqa: F401  (RecBole imported before timing)

    from recbole_croloss.quick_start import configure, load_dataset, log_dataset_settings

    work = tempfile.mkdtemp(prefix="bench-scale-")
    os.chdir(work)
    config_dict = {"protocol": "paper", "MAX_ITEM_LIST_LENGTH": 20, "train_batch_size": 256,
                   "eval_batch_size": 4096, "neg_per_pos": 10, "epochs": 1, "show_progress": False,
                   "state": "WARNING", "data_path": data_path, "checkpoint_dir": os.path.join(work, "saved"),
                   **settings}
    times, start = {}, time.perf_counter()
    config, spec = configure("TwoTower", dataset, config_dict=config_dict)
    log_dataset_settings(config, spec)
    data = load_dataset(config, spec)
    times["load"] = time.perf_counter() - start
    mark = time.perf_counter()
    train_data, valid_data, test_data = spec.protocol.prepare(config, data)
    times["samples_and_split"] = time.perf_counter() - mark
    mark = time.perf_counter()
    from recbole.utils import init_seed

    from recbole_croloss.glue.trainer import CROLossTrainer

    init_seed(config["seed"], config["reproducibility"])  # the same model in every variant

    adapter = spec.training.adapter(spec.model_class(config, train_data._dataset).to(config["device"]))
    trainer = CROLossTrainer(config, adapter, spec.evaluation.evaluator, spec.evaluation.mask)
    times["model_and_trainer"] = time.perf_counter() - mark
    times["preparation"] = time.perf_counter() - start
    prepared_rss = peak_rss_gib()
    out = {"samples": len(train_data._dataset), "steps_per_epoch": len(train_data), "seconds": times,
           "peak_rss_gib_prepared": prepared_rss}
    adapter.train()
    mark, done = time.perf_counter(), 0
    for interaction in train_data:
        loss = adapter.calculate_loss(interaction.to(config["device"]))
        trainer.optimizer.zero_grad()
        loss.backward()
        trainer.optimizer.step()
        done += 1
        if done == steps:
            break
    step_seconds = (time.perf_counter() - mark) / max(done, 1)
    out.update(step_s=step_seconds, epoch_s_extrapolated=step_seconds * len(train_data))
    if evaluate:
        mark = time.perf_counter()
        with torch.no_grad():
            result = trainer.evaluate(test_data, load_best_model=False)
        out.update(eval_s=time.perf_counter() - mark, test_users=test_data.sample_size,
                   test_recall_at_50=result.get("recall@50"))
    out["peak_rss_gib"] = peak_rss_gib()
    return out


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20  # KiB on Linux


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--data_path", default="dataset")
    parser.add_argument("--steps", type=int, default=50, help="training steps timed per variant")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-eval", action="store_true", help="skip the full evaluation")
    parser.add_argument("--skip-materialised", action="store_true")
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)  # one child process
    args = parser.parse_args(argv)
    if args.variant:
        import torch

        torch.set_num_threads(args.threads)
        print(json.dumps(measure(args.dataset, os.path.abspath(args.data_path), VARIANTS[args.variant],
                                 args.steps, not args.no_eval)))
        return 0
    results = {}
    for name in VARIANTS:
        if name == "materialised" and args.skip_materialised:
            continue
        given = sys.argv[1:] if argv is None else list(argv)
        command = [sys.executable, __file__, *given, "--variant", name]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(args.threads)}
        proc = subprocess.run(command, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            results[name] = {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
            continue
        results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    report(args, results)
    return 0


def report(args, results: dict) -> None:
    print(f"# bench_scale: {args.dataset} ({datetime.date.today()}, {platform.node()}, "
          f"{os.cpu_count()} CPUs, {args.threads} threads)")
    print(f"command: python benchmarks/bench_scale.py {shlex.join(sys.argv[1:])}")
    rows = ["load", "samples_and_split", "model_and_trainer", "preparation"]
    names = list(results)
    print("| figure | " + " | ".join(names) + (" | materialised / windows |" if len(names) == 2 else " |"))
    print("|---|" + "---|" * (len(names) + (len(names) == 2)))

    def line(label, values):
        ratio = f" {values[1] / values[0]:.2f}x |" if len(values) == 2 and values[0] else ""
        print(f"| {label} | " + " | ".join(f"{v:.2f}" for v in values) + " |" + ratio)

    good = [n for n in names if "error" not in results[n]]
    for stage in rows:
        line(f"{stage} (s)", [results[n]["seconds"][stage] for n in good])
    for key, label in (("peak_rss_gib_prepared", "peak RSS after preparation (GiB)"),
                       ("peak_rss_gib", "peak RSS overall (GiB)"), ("step_s", "training step (s)"),
                       ("epoch_s_extrapolated", "epoch, extrapolated (s)"), ("eval_s", "full test evaluation (s)")):
        if all(key in results[n] for n in good):
            line(label, [results[n][key] for n in good])
    for n in names:
        print(f"{n}: " + json.dumps(results[n]))


if __name__ == "__main__":
    sys.exit(main())
