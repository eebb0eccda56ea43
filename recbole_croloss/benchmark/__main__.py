"""``python -m recbole_croloss.benchmark GRID.yaml [--out DIR] [--jobs N] [--gpus 0,1] ...``

Runs every cell of the grid that the result store does not hold yet (one CLI process per cell),
then writes the reports. ``--dry-run`` lists the cells and their estimated cost;
``--report-only`` rewrites the reports from the stored results without running anything.
SIGTERM or SIGINT stops the running cells (not recorded), then exits with 128 + the signal.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys

from ..errors import reporting_errors
from ..io import interrupt_signals
from .grid import load_grid
from .store import ResultStore


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m recbole_croloss.benchmark",
                                     description=__doc__.split("\n")[2])
    parser.add_argument("grid", help="the grid YAML file")
    parser.add_argument("--out", help="result store (default: benchmark-results/<grid name>)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="cells at once (default: one per --gpus id, else 1)")
    parser.add_argument("--gpus", default=None,
                        help="comma-separated GPU ids; each running cell holds one (e.g. 0,1,2,3)")
    parser.add_argument("--cpu", action="store_true", help="run every cell on the CPU (gpu_id '')")
    parser.add_argument("--threads", type=int, default=None, help="torch/OpenMP threads per cell")
    parser.add_argument("--ray-address", default=None,
                        help="run the cells as Ray tasks: 'auto' (this machine's cluster), an address "
                             "(ray://host:10001, host:6379), or 'local' (a Ray instance here with --jobs CPUs)")
    parser.add_argument("--cpus-per-cell", type=float, default=1, help="Ray: CPUs each cell asks for")
    parser.add_argument("--gpus-per-cell", type=float, default=0, help="Ray: GPUs each cell asks for")
    parser.add_argument("--dry-run", action="store_true", help="list the cells and their estimated cost")
    parser.add_argument("--report-only", action="store_true", help="only rewrite the reports")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.jobs is not None and args.jobs < 1:
        parser.error(f"--jobs must be >= 1, got {args.jobs}")
    if args.gpus is not None and args.cpu:
        parser.error("--gpus and --cpu exclude each other")
    if args.ray_address is not None and args.gpus is not None:
        parser.error("with --ray-address, Ray assigns the GPUs: use --gpus-per-cell, not --gpus")
    return args


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # a bad grid or no Ray: 2; a store another runner holds: 3 (errors.reporting_errors)
    return reporting_errors(lambda: run_and_report(args))


def run_and_report(args) -> int:
    """Run the grid's missing cells (unless ``--report-only``) and write its reports."""
    grid = load_grid(args.grid, check=not args.report_only)
    store = ResultStore(args.out or os.path.join("benchmark-results", grid.name))
    if args.report_only and not os.path.isdir(store.out):
        print(f"error: --report-only: the result store {store.out} does not exist (nothing to report; "
              "give the --out of an earlier run)", file=sys.stderr)
        return 2
    gpus = [g.strip() for g in args.gpus.split(",") if g.strip()] if args.gpus else \
        ([""] if args.cpu else [])
    jobs = args.jobs or max(len(gpus), 1)
    from .runner import LocalExecutor, RunInterrupted, dry_run, run_grid

    if args.dry_run:
        dry_run(grid, store, jobs)
        return 0
    failed = []
    if not args.report_only:
        if args.ray_address is not None:
            from .ray_executor import RayExecutor

            executor = RayExecutor(args.ray_address, args.cpus_per_cell, args.gpus_per_cell,
                                   args.threads, local_cpus=args.jobs)
        else:
            executor = LocalExecutor(jobs, [g for g in gpus if g] or None, args.threads, cpu_only=args.cpu)
        try:
            with interrupt_signals() as received:  # the runner stops its cells before it lets go of the store
                outcome = run_grid(grid, store, executor, progress=not args.no_progress)
        except RunInterrupted as stop:
            signum = received.signum or stop.signum or signal.SIGINT
            print(f"error: interrupted by {signal.Signals(signum).name}: {stop.detail}", file=sys.stderr)
            return 128 + signum
        finally:
            if hasattr(executor, "shutdown"):
                executor.shutdown()
        failed = outcome["failed"]
        print(f"ran {outcome['ran']}, already done {outcome['cached']}, failed {len(failed)}", flush=True)
    from .report import write_reports

    written = write_reports(grid, store)
    print("reports: " + ", ".join(sorted(written)) + f" in {store.report_dir}")
    if failed:
        print(f"{len(failed)} cell(s) failed (details in {os.path.join(store.out, 'failed')}); "
              "run the same command again to retry them", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
