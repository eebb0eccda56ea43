"""Full-ranking evaluation and training steps at catalogue sizes up to Taobao's.

Part 1, evaluation: users per second of full-ranking Recall/NDCG@50/100/200/500 over a synthetic
catalogue (``recbole_croloss.data.synthetic_catalogue``, d = 64), side by side in one run:

- ``recbole``: RecBole's own full-sort path: the score matrix ``[batch, N]`` (as
  ``full_sort_predict`` returns it), the padding item set to -inf, then RecBole's real
  ``Collector.eval_batch_collect`` and ``Evaluator``; at the largest batch whose measured peak fits
  the budget (and what its default batch of 4096 would need);
- ``ours``: ``FullRankingEvaluator`` within the budget;
- ``faiss-flat`` (exact) and ``faiss-ivf`` (approximate; its ANN recall against the exact top N),
  search only (the build time is printed apart), metrics from the retrieved ids;
- the floor: the score product at the measured matmul rate plus ``torch.topk`` over every item.

Peak memory: ``torch.cuda.max_memory_allocated`` on GPU; on CPU the process's peak resident
size (VmHWM, reset through /proc/self/clear_refs before each measurement) above its size at
the start of the measurement.

Part 2, ``--train``: one training step (forward, backward, Adam) of TwoTower at the same
catalogue sizes, batch 512, history 20, d = 32: its own ``ce`` (full softmax over the catalogue)
against ``croloss`` (M = 10 x 512 shared negatives). The model is the plugin's TwoTower built
from the plugin's config; its dataset handle only reports the catalogue size (a step needs no
data).

    python benchmarks/bench_eval.py [--sizes 1e4 1e5 3.14e5 1.7e6] [--users 2048] [--budget 2GiB]
        [--train] [--no-faiss]
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
sys.path.insert(0, ROOT)
from machine import device_name  # noqa: E402
import raw_output  # noqa: E402

from recbole_croloss.compat import restore_numpy_aliases  # noqa: E402
from recbole_croloss.data import synthetic_catalogue  # noqa: E402
from recbole_croloss.evaluation import (Exclusions, FullRankingEvaluator, MetricAccumulator,  # noqa: E402
                                        format_bytes, parse_bytes, target_hits)

METRICS, KS = ["Recall", "NDCG"], [50, 100, 200, 500]
N_TOP = max(KS)


# --- measuring ------------------------------------------------------------------------------
def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rss(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    return 0


class Peak:
    """Peak memory above the level at ``__enter__``: CUDA allocator or CPU resident size."""

    def __init__(self, device):
        self.device, self.bytes = device, 0

    def __enter__(self):
        sync(self.device)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
        else:
            with open("/proc/self/clear_refs", "w") as fh:  # resets VmHWM to the current RSS
                fh.write("5")
            self.base = _rss("VmRSS:")
        return self

    def __exit__(self, *exc):
        sync(self.device)
        peak = (torch.cuda.max_memory_allocated(self.device) if self.device.type == "cuda"
                else _rss("VmHWM:"))
        self.bytes = max(0, peak - self.base)


def timed(fn, device):
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - start, out


# --- the evaluators -------------------------------------------------------------------------
def recbole_eval(cat, batch, device):
    """RecBole 1.2.1's full-sort evaluation of ``cat``'s users, ``batch`` users at a time."""
    from recbole.evaluator import Collector, Evaluator

    restore_numpy_aliases()
    config = {"metrics": METRICS, "topk": KS, "eval_args": {"mode": {"valid": "full", "test": "full"}},
              "device": device, "metric_decimal_place": 12, "LABEL_FIELD": "label"}
    collector, evaluator = Collector(config), Evaluator(config)
    users, items = cat.users, cat.items
    for lo in range(0, users.shape[0], batch):
        hi = min(lo + batch, users.shape[0])
        keep = (cat.target_rows >= lo) & (cat.target_rows < hi)
        scores = users[lo:hi] @ items.T                      # full_sort_predict: [batch, N]
        scores[:, 0] = -torch.inf                            # Trainer._full_sort_batch_eval
        collector.eval_batch_collect(scores, None, cat.target_rows[keep] - lo, cat.target_items[keep])
        del scores
    return evaluator.evaluate(collector.get_data_struct())


def ours_eval(cat, budget):
    evaluator = FullRankingEvaluator(METRICS, KS, budget)
    return evaluator.evaluate(cat.users, cat.items, cat.target_rows, cat.target_items,
                              Exclusions(always=(0,)), decimals=12)


def metrics_of_ids(cat, top_ids):
    acc = MetricAccumulator(METRICS, KS)
    hits, n_pos = target_hits(top_ids, cat.target_rows.cpu(), cat.target_items.cpu(), cat.n_items)
    acc.add(hits, n_pos)
    return acc.result(12)


def floor_seconds(cat, rows, device, reps=3):
    """The floor: ``2 U N d`` flops at the measured matmul rate, plus ``torch.topk(500)`` over
    every item, timed on a ``[rows, min(N, 2^20)]`` block and scaled to ``U x N``."""
    U, N, d = cat.users.shape[0], cat.n_items, cat.items.shape[1]
    cols = min(N, 1 << 20)
    q, k = cat.users[:rows], cat.items[:cols]
    out = torch.empty(rows, cols, device=device)
    torch.matmul(q, k.T, out=out)
    mm = min(timed(lambda: torch.matmul(q, k.T, out=out), device)[0] for _ in range(reps))
    rate = 2 * rows * cols * d / mm
    tk = min(timed(lambda: out.topk(min(N_TOP, cols), dim=1), device)[0] for _ in range(reps))
    return 2 * U * N * d / rate + tk * (U / rows) * (N / cols), rate


# --- training steps -------------------------------------------------------------------------
class CatalogueShape:
    """The one thing a RecBole model asks its dataset at construction: the number of items."""

    def __init__(self, n_items):
        self.n_items = n_items

    def num(self, field):
        return self.n_items


def train_step_times(n_items, device, reps, batch=512, length=20, loss_engine="eager", sparse=False):
    from recbole.data.interaction import Interaction

    from recbole_croloss.settings.config import PluginConfig
    from recbole_croloss.glue import get_model
    from recbole_croloss.glue.sparse import SparseItemAdam
    from recbole_croloss.settings.spec import TrainingSpec

    gen = torch.Generator().manual_seed(0)
    seq = torch.randint(1, n_items, (batch, length), generator=gen)
    inter = Interaction({"item_id_list": seq, "item_length": torch.full((batch,), length),
                         "item_id": torch.randint(1, n_items, (batch,), generator=gen)}).to(device)
    # (row, loss, sparse item-table updates): ce and croloss with Adam, croloss with SparseAdam
    rows = [("ce", "ce", False), ("croloss", "croloss", False)] + [("croloss sparse", "croloss", True)] * sparse
    out = {}
    for row, loss, sparse_table in rows:
        engine = {} if loss == "ce" else {"loss_engine": loss_engine}
        config = PluginConfig(get_model("TwoTower"), "ml-100k", config_dict={
            "loss": loss, "train_batch_size": batch, "MAX_ITEM_LIST_LENGTH": length,
            "device": str(device), "use_gpu": device.type == "cuda", **engine})
        config["device"] = device
        torch.manual_seed(0)
        net = TrainingSpec.from_config(config).adapter(
            get_model("TwoTower")(config, CatalogueShape(n_items)).to(device))
        if sparse_table:  # sparse_item_updates: SparseAdam for the item table, Adam for the rest
            opt = SparseItemAdam(net.retrieval.item_table(), net.parameters(), 1e-3, "TwoTower")
        else:
            opt = torch.optim.Adam(net.parameters(), lr=1e-3)

        def backward():
            opt.zero_grad(set_to_none=True)
            net.calculate_loss(inter).backward()

        def step():
            backward()
            opt.step()

        for _ in range(2):  # loss_engine fused: compiles here
            step()
        times = [timed(step, device)[0] for _ in range(reps)]
        grads = [timed(backward, device)[0] for _ in range(reps)]
        with Peak(device) as peak:
            step()
        out[row] = (statistics.median(times), statistics.median(grads), peak.bytes)
        del net, opt
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return out


# --- the run --------------------------------------------------------------------------------
def main(argv=None):
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        # CPU peak memory is read from the resident size: large blocks must go back to the OS
        # when freed (glibc otherwise keeps them, and a later peak reads as 0).
        os.environ["MALLOC_MMAP_THRESHOLD_"] = str(1 << 20)
        os.execv(sys.executable, [sys.executable, *sys.argv])
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", type=float, default=[1e4, 1e5, 3.14e5, 1.7e6])
    parser.add_argument("--users", type=int, default=None, help="users per size (GPU 8192, CPU 1024)")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--budget", default="2GiB", help="eval memory budget (ours and RecBole's batch)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--no-faiss", action="store_true")
    parser.add_argument("--nprobe", type=int, default=32)
    parser.add_argument("--train", action="store_true", help="also time TwoTower training steps")
    parser.add_argument("--train-reps", type=int, default=3)
    parser.add_argument("--loss-engine", choices=("eager", "fused"), default="eager",
                        help="--train: croloss's loss_engine")
    parser.add_argument("--sparse-item-updates", action="store_true",
                        help="--train: also time croloss with sparse item-table updates (SparseAdam)")
    parser.add_argument("--eval", dest="eval", action="store_true", default=True)
    parser.add_argument("--no-eval", dest="eval", action="store_false")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    budget = parse_bytes("--budget", args.budget)
    users = args.users or (8192 if device.type == "cuda" else 1024)
    started = datetime.datetime.now()
    print(f"# bench_eval  {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(f"# command: {' '.join([os.path.basename(sys.executable), *sys.argv])}")
    print(f"# platform={platform.platform()}  python={platform.python_version()}  cpus={os.cpu_count()}  "
          f"torch={torch.__version__}  threads={torch.get_num_threads()}")
    print(f"# device={device.type}: {device_name(device)}  budget={format_bytes(budget)}  d={args.dim}  "
          f"users={users}  N_top={N_TOP}")
    sizes = [int(s) for s in args.sizes]
    figures = {"sizes": sizes, "users": users, "dim": args.dim, "budget_bytes": budget, "n_top": N_TOP}
    if args.eval:
        figures["evaluation"] = run_eval(sizes, users, args, device, budget)
    if args.train:
        figures["training"] = {"loss_engine": args.loss_engine, "rows": run_train(sizes, args, device)}
    raw_output.write("bench_eval", figures, argv=argv, device=device, started=started)


def run_eval(sizes, users, args, device, budget) -> list[dict]:
    """Print the evaluation table per catalogue size; returns its rows as dicts."""
    records = []
    print("\n## evaluation: users/s of full-ranking Recall/NDCG@50/100/200/500 (higher is better)")
    header = f"{'items':>9} {'method':<12} {'batch':>6} {'users/s':>10} {'x recbole':>9} {'peak':>10}  note"
    for n_items in sizes:
        print("\n" + header)
        cat = synthetic_catalogue(n_items, users, args.dim, seed=0, device=device)
        # RecBole: measured bytes per row at a small batch, then the largest batch in the budget
        small = min(64, users)
        sub = synthetic_catalogue(n_items, small, args.dim, seed=1, device=device)
        with Peak(device) as peak:
            recbole_eval(sub, small, device)
        per_row = max(1, peak.bytes) / small
        fit = max(1, min(users, int(budget // per_row)))
        recbole_eval(sub, small, device)  # warm-up
        t_rb, rb = timed(lambda: recbole_eval(cat, fit, device), device)
        with Peak(device) as peak_rb:
            recbole_eval(synthetic_catalogue(n_items, fit, args.dim, seed=2, device=device), fit, device)
        rate_rb = users / t_rb
        print(f"{n_items:>9} {'recbole':<12} {fit:>6} {rate_rb:>10.0f} {1.0:>9.2f} {format_bytes(peak_rb.bytes):>10}  "
              f"measured {format_bytes(per_row)}/user row; its default batch 4096 would need "
              f"{format_bytes(4096 * per_row)}")
        records.append({"items": n_items, "method": "recbole", "batch": fit, "users_per_s": rate_rb,
                        "x_recbole": 1.0, "peak_bytes": peak_rb.bytes, "bytes_per_user_row": per_row})
        ours_eval(sub, budget)  # warm-up
        t_ours, ours = timed(lambda: ours_eval(cat, budget), device)
        with Peak(device) as peak_ours:
            ours_eval(cat, budget)
        plan = FullRankingEvaluator(METRICS, KS, budget).plan(n_items, 1, users)
        worst = max(abs(ours[k] - rb[k]) for k in rb)
        print(f"{n_items:>9} {'ours':<12} {plan.rows:>6} {users / t_ours:>10.0f} {(users / t_ours) / rate_rb:>9.2f} "
              f"{format_bytes(peak_ours.bytes):>10}  chunk {plan.chunk}, plan {format_bytes(plan.bytes)}, "
              f"within budget: {'YES' if peak_ours.bytes <= budget else 'NO'}; max |ours - recbole| = {worst:.1e}")
        records.append({"items": n_items, "method": "ours", "batch": plan.rows, "users_per_s": users / t_ours,
                        "x_recbole": (users / t_ours) / rate_rb, "peak_bytes": peak_ours.bytes, "chunk": plan.chunk,
                        "plan_bytes": plan.bytes, "within_budget": peak_ours.bytes <= budget,
                        "max_abs_diff_to_recbole": worst})
        floor, rate = floor_seconds(cat, min(plan.rows, users), device)
        print(f"{n_items:>9} {'floor':<12} {'':>6} {users / floor:>10.0f} {(users / floor) / rate_rb:>9.2f} {'':>10}  "
              f"matmul {rate / 1e12:.2f} TFLOP/s + topk({N_TOP}); ours / floor time = {t_ours / floor:.2f}x")
        records.append({"items": n_items, "method": "floor", "users_per_s": users / floor,
                        "x_recbole": (users / floor) / rate_rb, "matmul_tflops": rate / 1e12,
                        "ours_over_floor_time": t_ours / floor})
        if not args.no_faiss:
            records += run_faiss(cat, users, rate_rb, args, device, ours)
        del cat, sub
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return records


def run_faiss(cat, users, rate_rb, args, device, exact_metrics) -> list[dict]:
    from recbole_croloss.retrieval import ItemIndex, ann_recall

    items = cat.items[1:].cpu()                      # the padding item 0 is never indexed
    ids = torch.arange(1, cat.n_items).numpy()
    queries = cat.users.cpu()
    exact, records = None, []
    for kind, opts in (("flat", {}), ("ivf", {"nprobe": args.nprobe})):
        t_build, index = timed(lambda: ItemIndex.build(items, ids, kind=kind, **opts), torch.device("cpu"))
        cpu = torch.device("cpu")
        with Peak(cpu) as peak:
            t_search, found = timed(lambda: index.search(queries, N_TOP), cpu)
        top = torch.from_numpy(found.ids.astype("int64"))
        if kind == "flat":
            exact = top
        m = metrics_of_ids(cat, top)
        recall = ann_recall(top.numpy(), exact.numpy())
        drift = max(abs(m[k] - exact_metrics[k]) for k in m)
        where = "GPU" if index.on_gpu else "CPU"
        print(f"{cat.n_items:>9} {'faiss-' + kind:<12} {users:>6} {users / t_search:>10.0f} "
              f"{(users / t_search) / rate_rb:>9.2f} {format_bytes(peak.bytes):>10}  {where}, build {t_build:.1f}s, "
              f"ANN recall@{N_TOP} {recall:.4f}, R@50 {m['recall@50']:.4f} (exact {exact_metrics['recall@50']:.4f}), "
              f"max metric drift {drift:.1e}")
        records.append({"items": cat.n_items, "method": "faiss-" + kind, "batch": users, "users_per_s": users / t_search,
                        "x_recbole": (users / t_search) / rate_rb, "peak_bytes": peak.bytes, "on_gpu": index.on_gpu,
                        "build_s": t_build, f"ann_recall_at_{N_TOP}": recall, "recall_at_50": m["recall@50"],
                        "exact_recall_at_50": exact_metrics["recall@50"], "max_metric_drift": drift})
        del index
    return records


def run_train(sizes, args, device) -> list[dict]:
    """Print the training-step table per catalogue size; returns its rows as dicts."""
    records = []
    print("\n## training step of TwoTower (d 32, batch 512, history 20, Adam): ce (full softmax) vs croloss (M = 5120, "
          f"loss_engine {args.loss_engine})")
    print("(step = forward + backward + Adam, as RecBole's trainer does it; fwd+bwd = without Adam)")
    print(f"{'items':>9} {'ce ms':>10} {'croloss ms':>11} {'ce/croloss':>10} {'fwd+bwd ce':>11} "
          f"{'fwd+bwd cro':>11} {'ratio':>7} {'ce peak':>10} {'croloss peak':>12}")
    for n_items in sizes:
        try:
            res = train_step_times(n_items, device, args.train_reps, loss_engine=args.loss_engine,
                                   sparse=args.sparse_item_updates)
        except (RuntimeError, MemoryError) as err:  # e.g. CUDA out of memory for ce's logits
            print(f"{n_items:>9} failed: {str(err).splitlines()[0][:120]}")
            records.append({"items": n_items, "error": str(err).splitlines()[0][:300]})
            continue
        (t_ce, g_ce, m_ce), (t_cro, g_cro, m_cro) = res["ce"], res["croloss"]
        print(f"{n_items:>9} {t_ce * 1e3:>10.1f} {t_cro * 1e3:>11.1f} {t_ce / t_cro:>10.1f} "
              f"{g_ce * 1e3:>11.1f} {g_cro * 1e3:>11.1f} {g_ce / g_cro:>7.1f} "
              f"{format_bytes(m_ce):>10} {format_bytes(m_cro):>12}")
        record = {"items": n_items, "ce_step_ms": t_ce * 1e3, "croloss_step_ms": t_cro * 1e3, "ce_over_croloss": t_ce / t_cro,
                  "ce_fwd_bwd_ms": g_ce * 1e3, "croloss_fwd_bwd_ms": g_cro * 1e3, "fwd_bwd_ratio": g_ce / g_cro,
                  "ce_peak_bytes": m_ce, "croloss_peak_bytes": m_cro}
        records.append(record)
        if "croloss sparse" in res:
            t_sp, g_sp, m_sp = res["croloss sparse"]
            print(f"{'':>9} croloss with sparse_item_updates (SparseAdam on the item table): step {t_sp * 1e3:.1f} ms, "
                  f"ce / it {t_ce / t_sp:.1f}x, fwd+bwd {g_sp * 1e3:.1f} ms, peak {format_bytes(m_sp)}")
            record.update(sparse_step_ms=t_sp * 1e3, ce_over_sparse=t_ce / t_sp, sparse_fwd_bwd_ms=g_sp * 1e3,
                          sparse_peak_bytes=m_sp)
    return records


if __name__ == "__main__":
    main()
