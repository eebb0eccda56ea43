"""Training epoch time with 1 and 2 (or more) processes: the distributed path's cost and scaling.

Each configuration trains the same model on the same data with the same global batch
(RecBole gives each of W ranks train_batch_size / W rows per step, so the step count per epoch
is the same); the figure is the mean wall time of an epoch after one warm-up epoch, measured on
rank 0 between barriers. CPU runs use Gloo, with the machine's cores split evenly between the
processes; a CUDA run uses one process per GPU (NCCL). Ratios are printed side by side.

    python benchmarks/bench_distributed.py [--nprocs 1 2] [--device cpu] [--epochs 2] [--model TwoTower]
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import socket
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
sys.path.insert(0, ROOT)
from machine import device_name  # noqa: E402
import raw_output  # noqa: E402
from recbole_croloss import distributed  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def epoch_times(local_rank, settings, epochs, threads):
    """Build the run as this rank, train ``1 + epochs`` epochs, return rank 0's timings."""
    from recbole_croloss.quick_start import prepare_run

    torch.set_num_threads(threads)
    prepared = prepare_run(settings.pop("model"), settings.pop("dataset"),
                cmd_args={**settings, **({"local_rank": local_rank} if "world_size" in settings else {})})
    trainer, train = prepared.trainer, prepared.train_data
    times = []
    for epoch in range(1 + epochs):
        if distributed.active():
            torch.distributed.barrier()
        if prepared.config["device"].type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        trainer._train_epoch(train, epoch)
        if prepared.config["device"].type == "cuda":
            torch.cuda.synchronize()
        if distributed.active():
            torch.distributed.barrier()
        times.append(time.perf_counter() - start)
    return {"epoch_s": sum(times[1:]) / epochs, "steps": len(train), "rows_per_step": train.step,
            "device": str(prepared.config["device"])}


def measure(nproc, base, epochs, device):
    cores = os.cpu_count() or 1
    threads = max(1, cores // nproc)  # the machine's cores split between the processes
    settings = {**base, "gpu_id": "" if device == "cpu" else ",".join(map(str, range(nproc)))}
    if nproc == 1:
        return distributed.launch(epoch_times, 1, args=(settings, epochs, threads))  # fresh process too
    settings.update(nproc=nproc, world_size=nproc, ip="localhost", port=free_port())
    return distributed.launch(epoch_times, nproc, args=(settings, epochs, threads))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nprocs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--model", default="TwoTower")
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--batch", type=int, default=512)
    args = parser.parse_args(argv)
    dev = torch.device("cuda" if args.device == "cuda" else "cpu")
    started = datetime.datetime.now()
    print(f"{datetime.date.today()} {platform.node()}: {device_name(dev)}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}; {args.model} on {args.dataset}, global batch {args.batch}, "
          f"mean of {args.epochs} epochs after 1 warm-up", flush=True)
    rows = []
    for loss, gather in (("ce", False), ("croloss", False), ("croloss", True)):
        base = {"model": args.model, "dataset": args.dataset, "loss": loss, "train_batch_size": args.batch,
                "show_progress": False, "state": "WARNING", "epochs": 1,
                "checkpoint_dir": os.path.join("/tmp", "bench-distributed-saved"),
                # both croloss rows draw their negatives (ml-100k's default would score every item)
                # ce reads no negatives, and refuses settings about them
                **({} if loss == "ce" else {"negatives": "uniform", "gather_negatives": gather})}
        for nproc in args.nprocs:
            if gather and nproc == 1:
                continue
            got = measure(nproc, dict(base), args.epochs, args.device)
            rows.append((loss + (" gather" if gather else ""), nproc, got))
            print(f"{loss + (' gather' if gather else ''):16} nproc {nproc}: epoch {got['epoch_s']:7.2f} s, "
                  f"{got['steps']} steps of {got['rows_per_step']} rows per rank, {got['device']}", flush=True)
    base_times = {label: got["epoch_s"] for label, n, got in rows if n == min(args.nprocs)}
    print("\nepoch time relative to the fewest processes of the same loss (lower = faster):")
    records = []
    for label, nproc, got in rows:
        ref = base_times.get(label) or base_times.get(label.replace(" gather", ""))
        print(f"  {label:16} nproc {nproc}: {got['epoch_s'] / ref:.2f}x")
        records.append({"loss": label, "nproc": nproc, **{k: plain(v) for k, v in got.items()},
                        "relative_to_fewest": got["epoch_s"] / ref})
    figures = {"model": args.model, "dataset": args.dataset, "global_batch": args.batch, "epochs": args.epochs,
               "device": args.device, "rows": records}
    raw_output.write("bench_distributed", figures, argv=argv, device=dev, started=started)


def plain(value):
    """A value JSON can hold: numbers and strings as they are, anything else as its text."""
    return value if isinstance(value, (int, float, str, bool, type(None))) else str(value)


if __name__ == "__main__":
    main()
