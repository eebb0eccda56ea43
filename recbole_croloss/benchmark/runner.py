"""Running a grid's cells: each cell is one ``python -m recbole_croloss`` process (the CLI's own
code path) in a temporary folder, with the cell's settings in a YAML file.

The driver is the only writer of the result store: executors (threads here, Ray tasks in
:mod:`.ray_executor`) run cells and hand back records; the driver writes each as it arrives.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import queue
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

import yaml

from .grid import Cell, Grid
from .store import ResultStore


class CellFailed(RuntimeError):
    def __init__(self, command: list[str], returncode: int, stderr: str):
        self.command, self.returncode, self.stderr = command, returncode, stderr
        super().__init__(f"cell exited with {returncode}: {' '.join(command)}\n{stderr[-2000:]}")


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


def execute(cell: dict, gpu: str | None = None, threads: int | None = None) -> dict:
    """Run one cell (``Cell.describe()``) in its own process; return its record.

    ``gpu``: the GPU id the cell may use (RecBole's ``gpu_id``), ``""`` for CPU only, ``None``
    to leave RecBole's default. ``threads``: torch/OpenMP threads of the cell's process.
    Raises :class:`CellFailed` with the process's stderr if the run fails.
    """
    env = dict(os.environ)
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    with tempfile.TemporaryDirectory(prefix="croloss-cell-") as work:
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
        proc = subprocess.run([*command, f"--record={record_file}"], cwd=work, env=env,
                              capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if proc.returncode != 0 or not os.path.isfile(record_file):
            raise CellFailed(command, proc.returncode, proc.stderr or proc.stdout)
        with open(record_file, encoding="utf-8") as fh:
            run = json.load(fh)
    run.pop("files", None)  # paths in a deleted temporary folder
    return {"cell": {**cell, "seconds": round(seconds, 2), "threads": threads, "gpu": gpu,
                     "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                     "machine": machine(), "command": " ".join(command[1:])},
            "run": run}


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
        """Yield ``(payload, record or exception)`` as cells finish."""
        free: queue.Queue = queue.Queue()
        for gpu in self.gpus:
            free.put(gpu)

        def work(payload):
            gpu = free.get() if self.gpus else ("" if self.cpu_only else None)
            try:
                return execute(payload, gpu, self.threads)
            finally:
                if self.gpus:
                    free.put(gpu)

        with ThreadPoolExecutor(self.jobs) as pool:
            futures = {pool.submit(work, p): p for p in payloads}
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    error = future.exception()
                    yield futures[future], (error if error is not None else future.result())


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
    in flight; running again picks up where it stopped.
    """
    from tqdm import tqdm

    stream = stream or sys.stdout
    store.lock()
    try:
        cells = grid.cells()
        pending = [c for c in cells if not store.has(c.key)]
        print(f"{grid.name}: {len(cells)} cells, {len(cells) - len(pending)} already done, "
              f"{len(pending)} to run ({executor.describe()}); results in {store.out}", file=stream, flush=True)
        failed = []
        bar = tqdm(total=len(pending), unit="cell", disable=not progress, dynamic_ncols=True,
                   file=sys.stderr, bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}]")
        payloads = [cell_payload(c) for c in pending]
        for payload, outcome in executor.map_unordered(payloads):
            key = payload["key"]
            if isinstance(outcome, BaseException):
                failed.append(key)
                store.fail(key, {"cell": payload, "error": str(outcome)[-4000:],
                                 "when": datetime.datetime.now(datetime.timezone.utc).isoformat()})
                bar.write(f"FAILED {key}: {str(outcome).splitlines()[0]}")
            else:
                store.put(key, outcome)
                bar.write(f"done   {key} ({outcome['cell']['seconds']:.0f}s)")
            bar.update(1)
        bar.close()
        return {"ran": len(pending) - len(failed), "cached": len(cells) - len(pending), "failed": failed}
    finally:
        store.unlock()
