"""Running a grid's cells: each cell is one ``python -m recbole_croloss`` process (the CLI's own
code path) in a temporary folder, with the cell's settings in a YAML file.

The driver is the only writer of the result store: executors (threads here, Ray tasks in
:mod:`.ray_executor`) run cells and hand back records; the driver writes each as it arrives.

Stopping: when the driver stops early (SIGTERM or SIGINT, which the CLI turns into
:class:`~recbole_croloss.io.Interrupted`, or any error), the local executor sends the running
cells the same signal (SIGKILL after :data:`STOP_GRACE_SECONDS`), waits for them to exit and for
their scratch folders to go, and only then does the driver release the store's lock. A cell
stopped this way is not recorded, not even as failed: it was interrupted, not broken, and the next
run trains it again. :class:`RunInterrupted` says how many cells finished before.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import queue
import signal
import statistics
import subprocess
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

import yaml

from ..io import load_per_user_hits, per_user_hits_file
from .cell_processes import CellInterrupted, CellProcesses, kill_group, remove_dead_scratch, scratch_folder
from .grid import Cell, Grid
from .store import ResultStore

#: Seconds the cells get to exit after the runner's signal before they get SIGKILL.
STOP_GRACE_SECONDS = 10.0


class CellFailed(RuntimeError):
    def __init__(self, command: list[str], returncode: int, stderr: str):
        self.command, self.returncode, self.stderr = command, returncode, stderr
        super().__init__(f"cell exited with {returncode}: {' '.join(command)}\n{stderr[-2000:]}")


class RunInterrupted(RuntimeError):
    """The run stopped on a signal (``signum``, None when unknown); the cells still running
    were stopped and not recorded."""

    def __init__(self, signum: int | None, finished: int, failed: int, to_run: int):
        self.signum, self.finished, self.failed, self.to_run = signum, finished, failed, to_run
        self.detail = (f"{finished} of {to_run} cell(s) finished ({failed} of them failed); the cells still "
                       "running were stopped and not recorded; run the same command again to go on")
        super().__init__(f"interrupted by {signal.Signals(signum).name if signum else 'a KeyboardInterrupt'}: "
                         f"{self.detail}")


def machine() -> dict:
    """Where a cell ran: host, CPU model and count, GPU (if any), library versions."""
    import torch

    cpu = platform.processor() or "cpu"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu)
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"host": platform.node(), "cpu": cpu, "cpus": os.cpu_count(), "gpu": gpu,
            "python": platform.python_version(), "torch": torch.__version__}


def execute(cell: dict, gpu: str | None = None, threads: int | None = None,
            processes: CellProcesses | None = None) -> dict:
    """Run one cell (``Cell.describe()``) in its own process; return its record.

    ``gpu``: the GPU id the cell may use (RecBole's ``gpu_id``), ``""`` for CPU only, ``None``
    to leave RecBole's default. ``threads``: torch/OpenMP threads of the cell's process.
    ``processes``: where the running cell is registered, so that the caller can stop it.
    Raises :class:`CellFailed` with the process's stderr if the run fails, and
    :class:`~.cell_processes.CellInterrupted` if ``processes`` was stopped.
    """
    processes = processes or CellProcesses()
    env = dict(os.environ)
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    with scratch_folder() as work:
        settings = {**cell["settings"], "checkpoint_dir": os.path.join(work, "saved")}
        if gpu is not None:
            settings["gpu_id"] = gpu
        config_file = os.path.join(work, "cell.yaml")
        with open(config_file, "w", encoding="utf-8") as fh:
            yaml.safe_dump(settings, fh, sort_keys=True)
        record_file = os.path.join(work, "record.json")
        command = [sys.executable, "-m", "recbole_croloss", f"--model={cell['model_class']}",
                   f"--dataset={cell['dataset']}", f"--config_files={config_file}"]
        start = time.perf_counter()
        returncode, stdout, stderr = _run_cell(processes, [*command, f"--record={record_file}"], work, env)
        seconds = time.perf_counter() - start
        if returncode != 0 or not os.path.isfile(record_file):
            if processes.stopping:  # the runner's signal ended it, not a fault of its own
                raise CellInterrupted(f"stopped with the runner: {' '.join(command)}")
            raise CellFailed(command, returncode, stderr or stdout)
        with open(record_file, encoding="utf-8") as fh:
            run = json.load(fh)
        hits_file = per_user_hits_file(record_file)
        per_user_hits = load_per_user_hits(hits_file) if os.path.isfile(hits_file) else None
    run.pop("files", None)  # paths in a deleted temporary folder
    record = {"cell": {**cell, "seconds": round(seconds, 2), "threads": threads, "gpu": gpu,
                       "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                       "machine": machine(), "command": " ".join(command[1:])},
              "run": run}
    if per_user_hits is not None:
        record["per_user_hits"] = per_user_hits  # the store writes it beside the record
    return record


def _run_cell(processes: CellProcesses, command: list[str], work: str, env: dict) -> tuple[int, str, str]:
    proc = processes.start(command, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = proc.communicate()
    except BaseException:  # this thread was interrupted (a Ray task cancelled): the cell goes too
        kill_group(proc, signal.SIGKILL)
        proc.wait()
        raise
    finally:
        processes.finished(proc)
    return proc.returncode, stdout, stderr


def cell_payload(cell: Cell) -> dict:
    """``Cell.describe()`` with a relative ``data_path`` made absolute (cells run elsewhere)."""
    payload = cell.describe()
    data_path = payload["settings"].get("data_path")
    if isinstance(data_path, str) and not os.path.isabs(data_path):
        payload["settings"]["data_path"] = os.path.abspath(data_path)
    return payload


class LocalExecutor:
    """``jobs`` cells at once in threads, each its own process; with ``gpus``, each cell holds
    one GPU id from the pool while it runs (one cell per GPU)."""

    def __init__(self, jobs: int = 1, gpus: list[str] | None = None, threads: int | None = None,
                 cpu_only: bool = False):
        self.gpus = list(gpus or [])
        self.jobs = min(jobs, len(self.gpus)) if self.gpus else max(jobs, 1)
        self.threads = threads
        self.cpu_only = cpu_only

    def describe(self) -> str:
        where = f"GPUs {','.join(self.gpus)}" if self.gpus else ("CPU" if self.cpu_only else "default device")
        return f"local: {self.jobs} cell(s) at once on {where}, threads per cell {self.threads or 'default'}"

    def map_unordered(self, payloads):
        """Yield ``(payload, record or exception)`` as cells finish. Left early (an exception at
        the driver, or ``close()``), it stops the running cells and returns once they are gone."""
        free: queue.Queue = queue.Queue()
        for gpu in self.gpus:
            free.put(gpu)
        processes = CellProcesses()

        def work(payload):
            gpu = free.get() if self.gpus else ("" if self.cpu_only else None)
            try:
                return execute(payload, gpu, self.threads, processes)
            finally:
                if self.gpus:
                    free.put(gpu)

        with ThreadPoolExecutor(self.jobs) as pool:
            futures = {pool.submit(work, p): p for p in payloads}
            pending = set(futures)
            try:
                while pending:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        error = future.exception()
                        yield futures[future], (error if error is not None else future.result())
            except BaseException as stop:  # Interrupted carries the runner's signal; GeneratorExit not
                _stop_cells(processes, pending, getattr(stop, "signum", signal.SIGTERM))
                raise


def _stop_cells(processes: CellProcesses, pending, signum: int) -> None:
    """Cancel the cells not started; send the running ones ``signum``, then SIGKILL to those
    still there after the grace; return when every cell's thread is done (its scratch removed)."""
    for future in pending:
        future.cancel()
    processes.stop(signum)
    running = [f for f in pending if not f.cancelled()]
    _, late = wait(running, timeout=STOP_GRACE_SECONDS)
    if late:
        processes.stop(signal.SIGKILL)
        wait(late)


def estimate(store: ResultStore, cells: list[Cell]) -> dict[str, float | None]:
    """Seconds per cell from finished cells: same dataset, model and loss, else same dataset and
    model, else any finished cell; ``None`` when nothing has finished yet."""
    timings: dict[tuple, list[float]] = {}
    for record in store.records():
        c = record["cell"]
        loss = c["method_settings"]["loss"]
        for key in ((c["dataset"], c["model"], loss), (c["dataset"], c["model"]), ()):
            timings.setdefault(key, []).append(c["seconds"])
    out = {}
    for cell in cells:
        for key in ((cell.dataset, cell.model.label, cell.method.loss), (cell.dataset, cell.model.label), ()):
            if key in timings:
                out[cell.key] = statistics.fmean(timings[key])
                break
        else:
            out[cell.key] = None
    return out


def _hms(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s"


def dry_run(grid: Grid, store: ResultStore, jobs: int, stream=None) -> list[Cell]:
    """List the cells (done / pending / last failed) and the estimated cost of the pending ones."""
    stream = stream or sys.stdout
    cells = grid.cells()
    guess = estimate(store, cells)
    pending = [c for c in cells if not store.has(c.key)]
    for cell in cells:
        state = "done" if store.has(cell.key) else ("failed" if store.failure(cell.key) else "pending")
        cost = guess[cell.key]
        print(f"{state:8} {cell.key}  {'~' + _hms(cost) if cost is not None and state != 'done' else ''}",
              file=stream)
    known = [guess[c.key] for c in pending if guess[c.key] is not None]
    print(f"\n{len(cells)} cells: {len(cells) - len(pending)} done, {len(pending)} to run.", file=stream)
    if pending and len(known) == len(pending):
        total = sum(known)
        print(f"estimated cost: {_hms(total)} of cell time, about {_hms(total / max(jobs, 1))} "
              f"with {jobs} cell(s) at once (from the timings of finished cells in {store.out})",
              file=stream)
    elif pending:
        print(f"estimated cost: unknown for {len(pending) - len(known)} cells (no finished cell of "
              "their dataset and model to time yet; run with a single seed first to calibrate)", file=stream)
    return pending


def run_grid(grid: Grid, store: ResultStore, executor, progress: bool = True, stream=None) -> dict:
    """Run every cell of ``grid`` that ``store`` does not hold; write each record as it arrives.

    Returns ``{"ran": n, "cached": n, "failed": [keys]}``. A killed run loses at most the cells
    in flight; running again picks up where it stopped. On a ``KeyboardInterrupt`` (SIGINT, or
    :class:`~recbole_croloss.io.Interrupted` for SIGTERM too) the running cells are stopped and
    waited for while the store stays locked, then :class:`RunInterrupted` is raised.
    """
    stream = stream or sys.stdout
    store.lock()
    try:
        remove_dead_scratch()
        cells = grid.cells()
        pending = [c for c in cells if not store.has(c.key)]
        print(f"{grid.name}: {len(cells)} cells, {len(cells) - len(pending)} already done, "
              f"{len(pending)} to run ({executor.describe()}); results in {store.out}", file=stream, flush=True)
        failed, finished = _run_pending(pending, store, executor, progress)
        return {"ran": finished - len(failed), "cached": len(cells) - len(pending), "failed": failed}
    finally:
        store.unlock()


def _run_pending(pending: list[Cell], store: ResultStore, executor, progress: bool) -> tuple[list[str], int]:
    """Run ``pending`` and store each outcome; returns (failed keys, cells finished)."""
    from tqdm import tqdm

    failed, finished = [], 0
    bar = tqdm(total=len(pending), unit="cell", disable=not progress, dynamic_ncols=True,
               file=sys.stderr, bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}]")
    results = executor.map_unordered([cell_payload(c) for c in pending])
    try:
        for payload, outcome in results:
            key = payload["key"]
            if isinstance(outcome, BaseException):
                store.fail(key, {"cell": payload, "error": str(outcome)[-4000:],
                                 "when": datetime.datetime.now(datetime.timezone.utc).isoformat()})
                failed.append(key)
                bar.write(f"FAILED {key}: {str(outcome).splitlines()[0]}")
            else:
                store.put(key, outcome)
                bar.write(f"done   {key} ({outcome['cell']['seconds']:.0f}s)")
            finished += 1
            bar.update(1)
    except KeyboardInterrupt as stop:
        raise RunInterrupted(getattr(stop, "signum", None), finished, len(failed), len(pending)) from None
    finally:
        results.close()  # stops the cells still running and waits for them: the lock outlives them
        bar.close()
    return failed, finished
