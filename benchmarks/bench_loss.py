"""Forward + backward time of CROLoss against sampled softmax on the same random scores.

    python benchmarks/bench_loss.py                       # CPU, and CUDA when available
    python benchmarks/bench_loss.py --device cpu --repeats 40 --threads 2

Every method runs on the same ``pos [B]`` / ``neg [B, M]`` score tensors (requires_grad).
Measurements are interleaved: each round runs every method (``--inner`` calls in a row, their
median kept) in an order rotated from round to round, so that noise from other work on a shared
machine hits all methods alike. The table gives the median over rounds and its ratio to the
baseline's median (the target is judged on it), and the fastest round with its ratio (less
sensitive to a loaded machine). Sampled softmax is ``F.cross_entropy`` on the ``[B, 1 + M]``
logits ``cat([pos, neg])`` with target 0 (with a mask: masked negatives set to -inf first).
Target: ratio <= 1.2 for every plain kernel.

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
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from recbole_croloss.loss import CROLoss  # noqa: E402

TARGET = 1.2
SETTINGS = [(256, 2560), (512, 5120)]
N_ITEMS = 313_966  # Amazon Books' catalogue; it does not change the cost


def sampled_softmax(pos, neg, mask=None):
    if mask is not None:
        neg = neg.masked_fill(~mask, float("-inf"))
    logits = torch.cat([pos.unsqueeze(1), neg], dim=1)
    return F.cross_entropy(logits, torch.zeros(pos.shape[0], dtype=torch.long, device=pos.device))


def methods():
    """(name, loss fn(pos, neg, mask), uses mask, is a plain kernel counted in the target, baseline)."""
    out = [("sampled_softmax", sampled_softmax, False, False, None)]
    for alpha in (1.2, 1.0):
        for kernel in ("sigmoid", "softplus", "exp", "hinge"):
            out.append((f"{kernel} a={alpha}", CROLoss(kernel, alpha, N_ITEMS), False, True, "sampled_softmax"))
    for phi2 in ("softplus", "exp"):
        out.append((f"lambda sigmoid+{phi2} a=1.2", CROLoss(phi2, 1.2, N_ITEMS, lambda_kernel="sigmoid"),
                    False, False, "sampled_softmax"))
    # With an accidental-hit mask, as in training (informative; not part of the target line).
    out.append(("sampled_softmax +mask", sampled_softmax, True, False, None))
    for kernel in ("softplus", "exp"):
        out.append((f"{kernel} a=1.2 +mask", CROLoss(kernel, 1.2, N_ITEMS), True, False, "sampled_softmax +mask"))
    return out


def bench_setting(device, b, m, repeats, warmup, inner):
    gen = torch.Generator().manual_seed(0)
    pos = (torch.randn(b, generator=gen) * 3).to(device).requires_grad_()
    neg = (torch.randn(b, m, generator=gen) * 3).to(device).requires_grad_()
    mask = (torch.rand(b, m, generator=gen) > 0.001).to(device)  # ~0.1% accidental hits
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    table = methods()

    def run_once(fn, use_mask):
        pos.grad = neg.grad = None
        sync()
        t0 = time.perf_counter()
        loss = fn(pos, neg, mask if use_mask else None)
        loss.backward()
        sync()
        return time.perf_counter() - t0

    for _ in range(warmup):
        for _, fn, use_mask, _, _ in table:
            run_once(fn, use_mask)
    times = {name: [] for name, *_ in table}
    for r in range(repeats):
        k = r % len(table)
        for name, fn, use_mask, _, _ in table[k:] + table[:k]:
            # a few calls in a row, so each method runs against its own allocator state
            times[name].append(statistics.median(run_once(fn, use_mask) for _ in range(inner)))
    med = {name: statistics.median(ts) * 1e3 for name, ts in times.items()}
    rows = []
    for name, _, _, counted, base in table:
        ratio = med[name] / med[base] if base else 1.0
        best = min(times[name]) * 1e3
        best_ratio = best / (min(times[base]) * 1e3) if base else 1.0
        rows.append((name, med[name], best, ratio, best_ratio, counted))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=30, help="interleaved rounds (median over them)")
    parser.add_argument("--inner", type=int, default=3,
                        help="consecutive calls per method and round (their median is the round's time)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="auto", help="cpu, cuda, or auto (cpu, and cuda if available)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--settings", default=None, help="e.g. 256x2560,512x5120 (B x M)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = SETTINGS if not args.settings else [tuple(int(v) for v in s.split("x")) for s in args.settings.split(",")]
    if args.device == "auto":
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    else:
        devices = [args.device]

    print(f"# bench_loss  {datetime.datetime.now().isoformat(timespec='seconds')}  "
          f"platform={platform.platform()}  python={platform.python_version()}  cpus={os.cpu_count()}  "
          f"torch={torch.__version__}  threads={torch.get_num_threads()}  repeats={args.repeats}x{args.inner}  "
          f"malloc_env={'set' if 'MALLOC_MMAP_THRESHOLD_' in os.environ else 'default'}")
    summary = []
    for dev in devices:
        device = torch.device(dev)
        print(f"# device={dev}: {device_name(device)}")
        for b, m in settings:
            rows = bench_setting(device, b, m, args.repeats, args.warmup, args.inner)
            print(f"\n## {dev}  B={b}  M={m}")
            print(f"{'method':<30} {'median ms':>10} {'ratio':>7} {'min ms':>9} {'ratio(min)':>10}")
            for name, med, best, ratio, best_ratio, counted in rows:
                flag = "" if not counted else ("  ok" if ratio <= TARGET else "  ABOVE TARGET")
                print(f"{name:<30} {med:>10.3f} {ratio:>7.2f} {best:>9.3f} {best_ratio:>10.2f}{flag}")
            plain = [(name, ratio) for name, _, _, ratio, _, counted in rows if counted]
            worst = max(plain, key=lambda x: x[1])
            ok = worst[1] <= TARGET
            summary.append(f"{dev} B={b} M={m}: every plain kernel <= {TARGET}x sampled softmax: "
                           f"{'YES' if ok else 'NO'} (worst {worst[0]} {worst[1]:.2f}x)")
    print()
    for line in summary:
        print(line)


if __name__ == "__main__":
    main()
