"""How far the sampled rank estimate R_hat is from the exact rank, per sampler x estimator, and
what each sampler costs a training step.

    python benchmarks/bench_estimator.py                  # synthetic 100,000 items + ml-100k
    python benchmarks/bench_estimator.py --items 1000000 --trials 50 --skip-trained

Two catalogues:

- **synthetic**: ``--items`` items (default 100,000) with Zipf popularity (count ~ 1 / rank),
  item vectors ``N(0, I / d)`` plus a popularity direction weighted by log count, users
  ``N(0, I / d)`` plus the same direction, so that popular items score higher on average (as they
  do in trained models); each of the ``--users`` rows has a positive drawn by popularity;
- **ml-100k**: the user and item vectors of a TwoTower trained for ``--trained-epochs`` epochs
  (the plugin's defaults otherwise), its first ``--users`` test users and their test items, the
  item counts of its training split.

For each row the exact rank is ``R = 1 + sum_{i != pos} phi(g_i)`` over the whole catalogue
(sigmoid and softplus kernels). The rows share one draw of M negatives, as a batch does
(``neg_per_pos = M / rows``; in-batch: a batch of M slots whose first rows are the measured ones,
the others positives drawn by training frequency), and each of ``--trials`` draws gives every
row an estimate. Reported: the relative bias ``mean(R_hat / R) - 1`` and the relative spread
(the mean over rows of the standard deviation of ``R_hat / R`` over the draws), in percent, for
the importance-weighted ``unbiased`` and ``paper`` estimators and, for the weighted samplers,
the same draws weighed as if uniform (``logq_correction: false``). Then the step time of each
sampler: one training step (loss, backward, Adam) of the ml-100k TwoTower, median of ``--steps``
interleaved rounds, and a sampler call alone at Taobao's catalogue (1,708,530 items, Zipf counts).
"""
from __future__ import annotations

import argparse
import datetime
import math
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from recbole_croloss.loss import CROLoss, get_kernel  # noqa: E402
from recbole_croloss.sampler import build_sampler  # noqa: E402

SAMPLERS = ("uniform", "popularity", "mixed", "in_batch")
M_VALUES = (256, 1024, 2560, 10240)
KERNELS = ("sigmoid", "softplus")
TAOBAO_ITEMS = 1_708_530


def synthetic_catalogue(n_items: int, n_users: int, dim: int = 32, seed: int = 0):
    """``(users [U, d], items [n, d], positives [U], counts [n])``, item 0 the padding item."""
    g = torch.Generator().manual_seed(seed)
    rank = torch.randperm(n_items - 1, generator=g).double() + 1
    counts = torch.cat([torch.zeros(1), (1e6 / rank).ceil()])
    direction = torch.randn(dim, generator=g, dtype=torch.float64)
    direction /= direction.norm()
    items = torch.randn(n_items, dim, generator=g, dtype=torch.float64) / math.sqrt(dim)
    items += 0.4 * torch.log(counts.clamp(min=1)).unsqueeze(1) * direction
    users = torch.randn(n_users, dim, generator=g, dtype=torch.float64) / math.sqrt(dim) + direction
    positives = torch.multinomial((counts / counts.sum()).float(), n_users, replacement=True, generator=g)
    return users * 3.0, items, positives, counts.long()


def trained_catalogue(n_users: int, epochs: int):
    """The vectors of a TwoTower trained on ml-100k, its first test users and their items."""
    from recbole_croloss.glue import training_item_counts
    from recbole_croloss.quick_start import prepare_run

    prepared = prepare_run("TwoTower", "ml-100k", config_dict={
        "epochs": epochs, "show_progress": False, "state": "WARNING", "checkpoint_dir": "/tmp/bench_estimator"})
    prepared.trainer.fit(prepared.train_data, saved=False, show_progress=False)
    retrieval = prepared.adapter.retrieval
    model = prepared.adapter.model
    model.eval()
    users, positives = [], []
    with torch.no_grad():
        for interaction, _, _, targets in prepared.test_data:
            users.append(retrieval.user_vectors(interaction))
            positives.append(targets)
            if sum(len(p) for p in positives) >= n_users:
                break
        items = retrieval.ranking_keys()  # S(u, v_i) = S.query(u) . keys[i] (cosine x 10 for TwoTower)
    counts = training_item_counts(prepared.train_data._dataset)
    queries = retrieval.score.query(torch.cat(users)[:n_users])
    return queries.double(), items.double(), torch.cat(positives)[:n_users], counts, prepared


def exact_ranks(kernel, scores: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    """``[U]``: 1 + sum of phi over every real item but the row's positive."""
    gaps = scores[:, 1:] - scores.gather(1, positives.unsqueeze(1))
    phi = kernel(gaps)
    phi.scatter_(1, (positives - 1).unsqueeze(1), 0.0)
    return 1 + phi.sum(1)


def draw(name: str, n_items: int, counts, positives: torch.Tensor, m: int, g: torch.Generator):
    """One shared draw of M negatives for the rows of ``positives``: ``Negatives`` of those rows."""
    rows = len(positives)
    if name == "in_batch":
        others = torch.multinomial((counts.double().clamp(min=1) / counts.sum()).float()[1:], m - rows,
                                   replacement=True, generator=g) + 1
        batch = torch.cat([positives, others])
        neg = build_sampler(name, n_items, counts)(batch)
        return neg.items, neg.mask[:rows], neg.log_q[:rows]
    neg = build_sampler(name, n_items, counts, neg_per_pos=m // rows)(positives)
    return neg.items, neg.mask, neg.log_q


def estimates(scores, positives, counts, n_trials: int):
    """``{(kernel, sampler, estimator, corrected, M): [trials, U] R_hat}``."""
    n_items = scores.shape[1]
    pos_scores = scores.gather(1, positives.unsqueeze(1)).squeeze(1)
    out = {}
    g = torch.Generator().manual_seed(1)
    for m in M_VALUES:
        for name in SAMPLERS:
            for _ in range(n_trials):
                items, mask, log_q = draw(name, n_items, counts, positives, m, g)
                neg_scores, n_valid = scores[:, items], mask.sum(1).double()
                for kernel_name in KERNELS:
                    kernel = get_kernel(kernel_name)
                    for estimator in ("unbiased", "paper"):
                        loss = CROLoss(kernel_name, 1.0, n_items - 1, rank_estimator=estimator)
                        for corrected in ((True, False) if log_q is not None else (True,)):
                            log_r = loss.log_rank(kernel, pos_scores, neg_scores, mask, n_valid,
                                                  log_q if corrected else None)
                            out.setdefault((kernel_name, name, estimator, corrected, m), []).append(log_r.exp())
    return {key: torch.stack(value) for key, value in out.items()}


def report(title: str, scores, positives, counts, n_trials: int) -> dict:
    """Print the bias / spread table per kernel; returns the same figures as a dict."""
    out = {"title": title, "items": scores.shape[1] - 1, "rows": len(positives), "draws": n_trials, "kernels": {}}
    print(f"\n## {title}: {scores.shape[1] - 1:,} items, {len(positives)} rows, {n_trials} draws per M")
    table = estimates(scores, positives, counts, n_trials)
    for kernel_name in KERNELS:
        exact = exact_ranks(get_kernel(kernel_name), scores, positives)
        cells_out = out["kernels"][kernel_name] = {
            "exact_rank": {"median": float(exact.median()), "min": float(exact.min()), "max": float(exact.max())},
            "cells": []}
        print(f"\nkernel {kernel_name}: exact rank median {float(exact.median()):,.0f} "
              f"(min {float(exact.min()):,.0f}, max {float(exact.max()):,.0f}); "
              "bias / spread of R_hat / R, in %")
        header = f"{'sampler':<12}{'estimator':<10}{'log q':<7}" + "".join(f"{f'M={m}':>18}" for m in M_VALUES)
        print(header)
        for name in SAMPLERS:
            for estimator in ("unbiased", "paper"):
                for corrected in (True, False):
                    if (kernel_name, name, estimator, corrected, M_VALUES[0]) not in table:
                        continue
                    cells = []
                    for m in M_VALUES:
                        ratio = table[(kernel_name, name, estimator, corrected, m)] / exact
                        bias = 100 * (float(ratio.mean()) - 1)
                        spread = 100 * float(ratio.std(dim=0).mean())
                        cells.append(f"{bias:+8.1f} /{spread:7.1f}")
                        cells_out["cells"].append({"sampler": name, "estimator": estimator, "log_q": corrected,
                                                   "M": m, "bias_pct": bias, "spread_pct": spread})
                    label = "-" if name == "uniform" else ("yes" if corrected else "no")
                    print(f"{name:<12}{estimator:<10}{label:<7}" + "".join(f"{c:>18}" for c in cells))
    return out


#: The samplers timed, with their settings: M = 2,560 columns but for pure in-batch negatives.
TIMED = (("uniform", {"neg_per_pos": 10}), ("popularity", {"neg_per_pos": 10}), ("mixed", {"neg_per_pos": 10}),
         ("in_batch", {"in_batch_uniform": 0}), ("in_batch", {"in_batch_uniform": 9}))


def step_times(prepared, n_steps: int) -> list[dict]:
    """One training step per sampler on the same batches of the trained ml-100k run, interleaved:
    each round steps every sampler once, in an order rotated from round to round, so that load
    from other work on the machine hits them alike; then a sampler call alone at Taobao's size."""
    from recbole_croloss.glue import CROLossAdapter, training_item_counts
    from recbole_croloss.loss import build_loss

    model = prepared.adapter.model
    model.train()
    counts = training_item_counts(prepared.train_data._dataset)
    batches = [b for _, b in zip(range(n_steps + 2), iter(prepared.train_data))]
    adapters = []
    for name, options in TIMED:
        sampler = build_sampler(name, model.n_items, counts, **options)
        adapters.append(CROLossAdapter(model, prepared.adapter.retrieval.score,
                                       build_loss("croloss", sampler.catalogue_size), sampler))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    times = [[] for _ in TIMED]
    for step, batch in enumerate(batches):
        for k in range(len(TIMED)):
            at = (k + step) % len(TIMED)
            start = time.perf_counter()
            optimizer.zero_grad()
            adapters[at].calculate_loss(batch).backward()
            optimizer.step()
            if step >= 2:  # two warm-up rounds
                times[at].append(time.perf_counter() - start)
    print(f"\n## step time, ml-100k TwoTower, batch {len(batches[0])}, median of {n_steps} interleaved rounds "
          "(CROLoss softplus, alpha 1; Adam)")
    print(f"{'sampler':<26}{'M (columns)':>12}{'step ms':>10}{f'call ms at {TAOBAO_ITEMS:,} items':>32}")
    rows = []
    taobao_counts = (1e6 / (torch.arange(TAOBAO_ITEMS).double() + 1)).ceil().long()
    for (name, options), adapter, measured in zip(TIMED, adapters, times):
        columns = statistics.median(len(adapter.sampler(b[model.POS_ITEM_ID]).items) for b in batches)
        big = build_sampler(name, TAOBAO_ITEMS, taobao_counts, **options)
        pos = torch.randint(1, TAOBAO_ITEMS, (len(batches[0]),))
        big(pos)
        call = []
        for _ in range(10):
            start = time.perf_counter()
            big(pos)
            call.append(time.perf_counter() - start)
        label = name + ("" if name != "in_batch" else f" (+{options['in_batch_uniform']} uniform)")
        print(f"{label:<26}{columns:>12.0f}{1e3 * statistics.median(measured):>10.1f}"
              f"{1e3 * statistics.median(call):>32.2f}")
        rows.append({"sampler": label, "columns": columns, "step_ms": 1e3 * statistics.median(measured),
                     "call_ms_at_taobao_items": 1e3 * statistics.median(call)})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=64)
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--trained-epochs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--skip-trained", action="store_true")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    started = datetime.datetime.now()
    print(f"# bench_estimator {datetime.datetime.now().isoformat(timespec='seconds')} on "
          f"{device_name(torch.device('cpu'))} ({os.cpu_count()} CPUs, {torch.get_num_threads()} threads), "
          f"torch {torch.__version__}, Python {platform.python_version()}")
    print("# " + " ".join(["python", "benchmarks/bench_estimator.py", *(argv if argv is not None else sys.argv[1:])]))
    users, items, positives, counts = synthetic_catalogue(args.items, args.users)
    figures = {"catalogues": [report("synthetic", users @ items.T, positives, counts, args.trials)],
               "taobao_items": TAOBAO_ITEMS}
    if not args.skip_trained:
        users, items, positives, counts, prepared = trained_catalogue(args.users, args.trained_epochs)
        figures["catalogues"].append(report(f"ml-100k, TwoTower after {args.trained_epochs} epochs", users @ items.T,
                                            positives, counts, args.trials))
        figures["step_times"] = step_times(prepared, args.steps)
    raw_output.write("bench_estimator", figures, argv=argv, started=started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
