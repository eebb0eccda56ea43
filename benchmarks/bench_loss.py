"""Forward + backward time of CROLoss against sampled softmax on the same random scores.

    python benchmarks/bench_loss.py                       # CPU, and CUDA when available
    python benchmarks/bench_loss.py --device cpu --repeats 40 --threads 2
    python benchmarks/bench_loss.py --engines fused --clock thread

Every method runs on the same ``pos [B]`` / ``neg [B, M]`` score tensors (requires_grad).
Measurements are interleaved: each round runs every method (``--inner`` calls in a row, their
median kept) in an order rotated from round to round, so that noise from other work on a shared
machine hits all methods alike. The table gives the median over rounds and its ratio to the
baseline's median (the target is judged on it), and the fastest round with its ratio (less
sensitive to a loaded machine). Sampled softmax is ``F.cross_entropy`` on the ``[B, 1 + M]``
logits ``cat([pos, neg])`` with target 0 (with a mask: masked negatives set to -inf first).
Each CROLoss runs with both engines (``--engines``): ``eager`` (plain autograd) and ``fused``
(the compiled one-pass kernels, :mod:`recbole_croloss.loss.fused`; compiled during the warm-up,
whose first call per method is printed as its compile time).
Targets: ratio <= 1.0 for every plain kernel, <= 1.2 for the Lambda method.
``--clock thread`` times the calling thread's CPU time instead of the wall clock: on a machine
shared with other work it leaves out the time the process waits for a core.

On CPU much of the run-to-run noise is glibc handing [B, M] buffers back to the OS and faulting
them in again; for steadier numbers keep freed memory in the process:

    MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=4294967296 python benchmarks/bench_loss.py
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import device_name  # noqa: E402
import raw_output  # noqa: E402
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from recbole_croloss.loss import CROLoss  # noqa: E402

#: group -> the largest ratio to sampled softmax it may take.
TARGETS = {"plain": 1.0, "lambda": 1.2}
SETTINGS = [(256, 2560), (512, 5120)]
N_ITEMS = 313_966  # Amazon Books' catalogue; it does not change the cost


def sampled_softmax(pos, neg, mask=None):
    if mask is not None:
        neg = neg.masked_fill(~mask, float("-inf"))
    logits = torch.cat([pos.unsqueeze(1), neg], dim=1)
    return F.cross_entropy(logits, torch.zeros(pos.shape[0], dtype=torch.long, device=pos.device))


def methods(engines):
    """(name, loss fn(pos, neg, mask), uses mask, target group or None, baseline)."""
    losses = [(f"{kernel} a={alpha}", dict(kernel=kernel, alpha=alpha), "plain")
              for alpha in (1.2, 1.0) for kernel in ("sigmoid", "softplus", "exp", "hinge")]
    losses += [(f"lambda sigmoid+{phi2} a=1.2", dict(kernel=phi2, alpha=1.2, lambda_kernel="sigmoid"), "lambda")
               for phi2 in ("softplus", "exp")]
    # With an accidental-hit mask, as in training (informative; not part of the target lines).
    masked = [(f"{kernel} a=1.2 +mask", dict(kernel=kernel, alpha=1.2), None) for kernel in ("softplus", "exp")]
    out = [("sampled_softmax", sampled_softmax, False, None, None)]
    out += [(f"{name} {engine}", CROLoss(n_items=N_ITEMS, engine=engine, **kwargs), False, group, "sampled_softmax")
            for name, kwargs, group in losses for engine in engines]
    out.append(("sampled_softmax +mask", sampled_softmax, True, None, None))
    out += [(f"{name} {engine}", CROLoss(n_items=N_ITEMS, engine=engine, **kwargs), True, group,
             "sampled_softmax +mask") for name, kwargs, group in masked for engine in engines]
    return out


def bench_setting(device, b, m, args):
    gen = torch.Generator().manual_seed(0)
    pos = (torch.randn(b, generator=gen) * 3).to(device).requires_grad_()
    neg = (torch.randn(b, m, generator=gen) * 3).to(device).requires_grad_()
    mask = (torch.rand(b, m, generator=gen) > 0.001).to(device)  # ~0.1% accidental hits
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    clock = time.thread_time if args.clock == "thread" else time.perf_counter
    table = methods(args.engines)

    def run_once(fn, use_mask):
        pos.grad = neg.grad = None
        sync()
        t0 = clock()
        loss = fn(pos, neg, mask if use_mask else None)
        loss.backward()
        sync()
        return clock() - t0

    first, first_wall = {}, {}
    for name, fn, use_mask, _, _ in table:  # fused: the compile, on --clock and on the wall clock
        t0 = time.perf_counter()
        first[name] = run_once(fn, use_mask)
        first_wall[name] = time.perf_counter() - t0
    for _ in range(args.warmup):
        for _, fn, use_mask, _, _ in table:
            run_once(fn, use_mask)
    times = {name: [] for name, *_ in table}
    for r in range(args.repeats):
        k = r % len(table)
        for name, fn, use_mask, _, _ in table[k:] + table[:k]:
            # a few calls in a row, so each method runs against its own allocator state
            times[name].append(statistics.median(run_once(fn, use_mask) for _ in range(args.inner)))
    med = {name: statistics.median(ts) * 1e3 for name, ts in times.items()}
    rows = []
    for name, _, _, group, base in table:
        ratio = med[name] / med[base] if base else 1.0
        best = min(times[name]) * 1e3
        best_ratio = best / (min(times[base]) * 1e3) if base else 1.0
        rows.append((name, med[name], best, ratio, best_ratio, group, first[name]))
    return rows, first_wall


def print_rows(rows) -> None:
    print(f"{'method':<36} {'median ms':>10} {'ratio':>7} {'min ms':>9} {'ratio(min)':>10} {'first s':>8}")
    for name, med, best, ratio, best_ratio, group, first in rows:
        flag = "" if group is None else ("  ok" if ratio <= TARGETS[group] else "  ABOVE TARGET")
        print(f"{name:<36} {med:>10.3f} {ratio:>7.2f} {best:>9.3f} {best_ratio:>10.2f} {first:>8.2f}{flag}")


def verdicts(rows, engines, records=None) -> list[str]:
    """Per engine and target group: met or not, with the worst median (and min) ratio; each
    verdict also appended to ``records`` as a dict."""
    lines = []
    for engine in engines:
        for group, target in TARGETS.items():
            mine = [(n, r, rm) for n, _, _, r, rm, g, _ in rows if g == group and n.endswith(f" {engine}")]
            if not mine:
                continue
            worst = max(mine, key=lambda x: x[1])
            worst_min = max(mine, key=lambda x: x[2])
            if records is not None:
                records.append({"engine": engine, "group": group, "target": target, "met": worst[1] <= target,
                                "worst_median": {"method": worst[0], "ratio": worst[1]},
                                "worst_min": {"method": worst_min[0], "ratio": worst_min[2]}})
            lines.append(f"{engine}: every {group} <= {target}x sampled softmax: "
                         f"{'YES' if worst[1] <= target else 'NO'} (worst median {worst[0]} {worst[1]:.2f}x; "
                         f"worst min {worst_min[0]} {worst_min[2]:.2f}x)")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=30, help="interleaved rounds (median over them)")
    parser.add_argument("--inner", type=int, default=3,
                        help="consecutive calls per method and round (their median is the round's time)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="auto", help="cpu, cuda, or auto (cpu, and cuda if available)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--settings", default=None, help="e.g. 256x2560,512x5120 (B x M)")
    parser.add_argument("--engines", default="eager,fused", type=lambda v: v.split(","),
                        help="CROLoss engines to time, comma-separated: eager, fused")
    parser.add_argument("--clock", choices=("wall", "thread"), default="wall",
                        help="wall: elapsed time; thread: the calling thread's CPU time")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = SETTINGS if not args.settings else [tuple(int(v) for v in s.split("x")) for s in args.settings.split(",")]
    if args.device == "auto":
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    else:
        devices = [args.device]

    started = datetime.datetime.now()
    load_start = os.getloadavg()
    print(f"# bench_loss  {started.isoformat(timespec='seconds')}  "
          f"platform={platform.platform()}  python={platform.python_version()}  cpus={os.cpu_count()}  "
          f"torch={torch.__version__}  threads={torch.get_num_threads()}  repeats={args.repeats}x{args.inner}  "
          f"clock={args.clock}  malloc_env={'set' if 'MALLOC_MMAP_THRESHOLD_' in os.environ else 'default'}  "
          f"load average={' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    summary, tables = [], []
    for dev in devices:
        device = torch.device(dev)
        print(f"# device={dev}: {device_name(device)}")
        for b, m in settings:
            rows, first_wall = bench_setting(device, b, m, args)
            print(f"\n## {dev}  B={b}  M={m}")
            print_rows(rows)
            records = []
            summary += [f"{dev} B={b} M={m}: {line}" for line in verdicts(rows, args.engines, records)]
            tables.append(table_record(dev, device, b, m, rows, records, first_wall))
    print()
    for line in summary:
        print(line)
    print(f"# load average at the end={' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    figures = {"settings": {"repeats": args.repeats, "inner": args.inner, "warmup": args.warmup, "clock": args.clock,
                            "engines": args.engines, "threads": torch.get_num_threads(),
                            "malloc_env": "MALLOC_MMAP_THRESHOLD_" in os.environ},
               "load_average_start": [round(v, 2) for v in load_start], "tables": tables, "verdicts": summary}
    raw_output.write("bench_loss", figures, argv=argv, device="cuda" if "cuda" in devices else None, started=started)


def table_record(dev, device, b, m, rows, records, first_wall) -> dict:
    """One setting's table as it is printed, with the fused engine's compile (first call) times;
    ``first_wall_s``: the first call on the wall clock, which counts the compiler's own processes
    that ``--clock thread`` leaves out."""
    fused_first = [first_wall[name] for name, *_ in rows if name.endswith(" fused")]
    return {"device": dev, "device_name": device_name(device), "B": b, "M": m,
            "rows": [{"method": name, "median_ms": med, "ratio": ratio, "min_ms": best, "ratio_min": best_ratio,
                      "first_s": first, "first_wall_s": first_wall[name], "group": group,
                      "target_met": None if group is None else ratio <= TARGETS[group]}
                     for name, med, best, ratio, best_ratio, group, first in rows],
            "verdicts": records,
            "fused_first_call_wall_s": {"max": max(fused_first), "min": min(fused_first)} if fused_first else None}


if __name__ == "__main__":
    main()
