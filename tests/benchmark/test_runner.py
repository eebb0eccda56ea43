"""The runner: real cells through the CLI, resume after SIGKILL, SIGTERM/SIGINT stop the cells,
one cell per GPU, one writer."""
import ctypes
import fcntl
import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest

from recbole_croloss.benchmark import ResultStore, load_grid
from recbole_croloss.benchmark import runner as runner_module
from recbole_croloss.benchmark.__main__ import main as benchmark_main
from recbole_croloss.benchmark.runner import LocalExecutor, dry_run
from recbole_croloss.benchmark.store import StoreBusyError

TINY_GRID = """
name: tiny
datasets: [ml-100k]
models: [TwoTower]
seeds: [1]
config: {{epochs: 1, MAX_ITEM_LIST_LENGTH: 20, user_inter_num_interval: "[0,50]", embedding_size: 16,
          topk: [10, 50], show_progress: false, state: WARNING}}
methods:
  - {{loss: {losses}}}
"""


def grid_file(tmp_path, losses="[ce, croloss, bpr]"):
    path = tmp_path / "grid.yaml"
    path.write_text(TINY_GRID.format(losses=losses))
    return str(path)


PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>
#: The checkout these tests belong to: the runner and its cells import it, not an installed copy.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def runner_command(grid, out):
    return [sys.executable, "-m", "recbole_croloss.benchmark", grid, "--out", out, "--cpu", "--threads", "1",
            "--no-progress"]


def runner_env(scratch=None):
    """The runner's environment: this checkout first on the path; temporary folders in ``scratch``
    (when given; Ray's sockets need a short temporary path)."""
    if scratch is None:
        return {**os.environ, "PYTHONPATH": ROOT}
    os.makedirs(scratch, exist_ok=True)
    return {**os.environ, "PYTHONPATH": ROOT, "TMPDIR": str(scratch)}


def cell_folders(scratch):
    return sorted(f for f in os.listdir(scratch) if f.startswith("croloss-cell-"))


def alive(processes):
    """The processes of ``processes`` (psutil) still running (a zombie has exited)."""
    out = []
    for p in processes:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


def _interactive_signals():
    # A shell runs background jobs (a CI script, nohup) with SIGINT ignored, and children inherit
    # that; a user's runner in a terminal gets SIGINT: test that case whatever starts the suite.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_runner_until_a_cell_runs(grid, out, scratch):
    """Start the runner in a session of its own; return it and its descendants once a cell's
    process and scratch folder exist."""
    proc = subprocess.Popen(runner_command(grid, out), cwd=os.path.dirname(grid), env=runner_env(scratch),
                            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_interactive_signals)
    deadline = time.time() + 180
    while time.time() < deadline:
        assert proc.poll() is None, proc.communicate()
        children = psutil.Process(proc.pid).children(recursive=True)
        if children and cell_folders(scratch):
            time.sleep(1.0)  # well into the cell's start-up
            return proc, psutil.Process(proc.pid).children(recursive=True)
        time.sleep(0.05)
    proc.kill()
    pytest.fail("no cell started within 180 s")


def kill_leftovers(processes):
    for p in alive(processes):
        p.kill()


class LockWatcher(threading.Thread):
    """Polls the store's lock; the first time it is free, notes which cell processes and scratch
    folders still exist (there should be none: the runner holds the lock until its cells are gone)."""

    def __init__(self, out, cells, scratch):
        super().__init__(daemon=True)
        self.path, self.cells, self.scratch = os.path.join(out, ".lock"), cells, scratch
        self.free_while, self.stop = None, threading.Event()

    def run(self):
        while not self.stop.is_set():
            with open(self.path, "a") as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    time.sleep(0.01)
                    continue
                self.free_while = {"cells": alive(self.cells), "scratch": cell_folders(self.scratch)}
                return


def test_sigkill_loses_only_the_cell_in_flight_and_a_rerun_resumes(tmp_path):
    grid, out, scratch = grid_file(tmp_path, "[ce, croloss]"), str(tmp_path / "out"), tmp_path / "scratch"
    store = ResultStore(out)
    proc = subprocess.Popen(runner_command(grid, out), cwd=tmp_path, env=runner_env(scratch), start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and not (os.path.isdir(store.cells_dir) and [  # a whole record, not
            f for f in os.listdir(store.cells_dir) if f.endswith(".json") and not f.startswith(".")]):  # a temp
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)  # the runner and the cell it is running
    proc.wait()
    first = [f for f in os.listdir(store.cells_dir) if not f.startswith(".") and f.endswith(".json")]
    assert len(first) == 1, first  # the second cell was in flight: no record
    record = json.load(open(os.path.join(store.cells_dir, first[0])))
    assert set(record) == {"cell", "run"} and record["run"]["test_result"]
    stamp = os.stat(os.path.join(store.cells_dir, first[0])).st_mtime_ns
    # a kill in the middle of writing leaves only a temporary file: never read as a record
    with open(os.path.join(store.cells_dir, ".tmp-half.json"), "w") as fh:
        fh.write('{"cell": {"key": ')
    assert len(store.records()) == 1

    again = subprocess.run(runner_command(grid, out), cwd=tmp_path, env=runner_env(scratch), capture_output=True,
                           text=True)
    assert again.returncode == 0, again.stderr
    assert cell_folders(scratch) == []  # the killed run's scratch folder too: its runner is gone
    assert "2 cells, 1 already done, 1 to run" in again.stdout
    assert "ran 1, already done 1, failed 0" in again.stdout
    keys = {c.key for c in load_grid(grid).cells()}
    assert {r["cell"]["key"] for r in store.records()} == keys
    assert os.stat(os.path.join(store.cells_dir, first[0])).st_mtime_ns == stamp  # not re-run
    assert not [f for f in os.listdir(store.cells_dir) if f.startswith(".")]
    for record in store.records():
        cell = record["cell"]
        assert record["run"]["loss"] == cell["method_settings"]["loss"]
        assert record["run"]["config"]["seed"] == 1 and record["run"]["config"]["epochs"] == 1
        assert record["run"]["device"] == "cpu" and cell["seconds"] > 0
        assert record["run"]["stopped"] == "max_epochs" and len(record["run"]["history"]) == 1
        hits = store.per_user_hits(cell["key"])  # beside the record, reproducing its Recall
        for j, k in enumerate(hits["ks"].tolist()):
            recall = round(float((hits["hits"][:, j] / hits["targets"]).mean()), 4)
            assert recall == record["run"]["test_result"][f"recall@{k}"]
    assert os.path.isfile(os.path.join(out, "report", "report.md"))

    third = subprocess.run(runner_command(grid, out), cwd=tmp_path, env=runner_env(scratch), capture_output=True,
                           text=True)
    assert "ran 0, already done 2, failed 0" in third.stdout
    listing = subprocess.run(runner_command(grid, out) + ["--dry-run"], env=runner_env(scratch), capture_output=True,
                             text=True).stdout
    assert "2 cells: 2 done, 0 to run" in listing


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_running_cell_and_the_lock_outlives_it(tmp_path, signum):
    grid, out, scratch = grid_file(tmp_path, "[ce, croloss]"), str(tmp_path / "out"), tmp_path / "scratch"
    proc, cells = start_runner_until_a_cell_runs(grid, out, scratch)
    try:
        watcher = LockWatcher(out, cells, scratch)
        watcher.start()
        time.sleep(0.2)  # the watcher finds the lock held
        assert watcher.free_while is None
        os.kill(proc.pid, signum)  # the runner only: it has to stop its cells itself
        try:
            stdout, stderr = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail(f"the runner did not exit within 60 s of {signum.name}")
        watcher.join(5)
        watcher.stop.set()
        assert proc.returncode == 128 + signum, stderr
        last = stderr.strip().splitlines()[-1]
        assert last.startswith(f"error: interrupted by {signum.name}: 0 of 2 cell(s) finished"), stderr
        assert alive(cells) == []
        assert cell_folders(scratch) == []
        assert watcher.free_while == {"cells": [], "scratch": []}
        store = ResultStore(out)
        failed = os.listdir(store.failed_dir) if os.path.isdir(store.failed_dir) else []
        assert store.records() == [] and failed == []  # interrupted, not failed: nothing recorded
        store.lock()  # free for a rerun
        store.unlock()
    finally:
        kill_leftovers(cells)


def set_child_subreaper(on: bool) -> None:
    """Make this process adopt its descendants' orphans (Linux), so that it can wait for them and
    see how they ended; without it an orphan goes to init and its end is out of sight."""
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) != 0:
        pytest.skip("prctl(PR_SET_CHILD_SUBREAPER) is not available")


def wait_for_orphan(pid: int, timeout: float):
    """The wait status of adopted ``pid`` once it has ended, or None if it runs past ``timeout``."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.02)
    return None


def test_a_cell_dies_with_a_sigkilled_runner(tmp_path):
    # A cell whose runner is gone can also die of a broken pipe when it next writes; only a
    # SIGKILL at once shows the kernel took it along.
    grid, out, scratch = grid_file(tmp_path, "[ce]"), str(tmp_path / "out"), tmp_path / "scratch"
    set_child_subreaper(True)
    cells = []
    try:
        proc, cells = start_runner_until_a_cell_runs(grid, out, scratch)
        os.kill(proc.pid, signal.SIGKILL)  # no handler runs: the kernel has to take the cell along
        proc.wait()
        for cell in cells:
            status = wait_for_orphan(cell.pid, timeout=5)
            assert status is not None, f"cell {cell.pid} still runs 5 s after its runner's SIGKILL"
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, status
    finally:
        set_child_subreaper(False)
        for cell in alive(cells):
            cell.kill()
        for cell in cells:  # reap what this process adopted
            try:
                os.waitpid(cell.pid, 0)
            except ChildProcessError:
                pass


def test_a_failing_cell_is_recorded_as_failed_and_retried(tmp_path, monkeypatch):
    grid = load_grid(grid_file(tmp_path, "[ce]"))
    store = ResultStore(str(tmp_path / "out"))
    # a cell that cannot run: a value the CLI refuses (the grid check is bypassed here)
    monkeypatch.setattr(runner_module, "cell_payload",
                        lambda cell: {**cell.describe(), "settings": {**cell.settings(), "loss": "nope"}})
    outcome = runner_module.run_grid(grid, store, LocalExecutor(1, cpu_only=True), progress=False)
    key = grid.cells()[0].key
    assert outcome["failed"] == [key] and not store.has(key)
    failure = store.failure(key)
    assert "'nope'" in failure["error"] and failure["cell"]["key"] == key
    monkeypatch.undo()
    again = runner_module.run_grid(grid, store, LocalExecutor(1, cpu_only=True), progress=False)
    assert again == {"ran": 1, "cached": 0, "failed": []}
    assert store.has(key) and store.failure(key) is None


def test_one_cell_per_gpu_at_a_time(monkeypatch):
    running, seen, lock = {}, [], threading.Lock()

    def fake_execute(payload, gpu, threads, processes):  # scheduling only: which GPU id each cell holds
        with lock:
            assert gpu not in running.values(), "two cells on one GPU"
            running[payload["key"]] = gpu
            seen.append(gpu)
        time.sleep(0.05)
        with lock:
            del running[payload["key"]]
        return {"cell": payload}

    monkeypatch.setattr(runner_module, "execute", fake_execute)
    executor = LocalExecutor(jobs=8, gpus=["0", "1"])
    assert executor.jobs == 2
    done = list(executor.map_unordered([{"key": f"c{i}"} for i in range(10)]))
    assert len(done) == 10 and set(seen) == {"0", "1"}


def test_a_second_runner_on_the_same_store_is_refused(tmp_path):
    first, second = ResultStore(str(tmp_path)), ResultStore(str(tmp_path))
    first.lock()
    try:
        with pytest.raises(StoreBusyError, match="another benchmark runner"):
            second.lock()
    finally:
        first.unlock()
    second.lock()
    second.unlock()


def test_report_only_needs_an_existing_store(tmp_path, capsys):
    missing = tmp_path / "no-such-store"
    assert benchmark_main([grid_file(tmp_path, "[ce]"), "--report-only", "--out", str(missing)]) == 2
    err = capsys.readouterr().err
    assert "--report-only" in err and str(missing) in err and "does not exist" in err
    assert not missing.exists()  # nothing created


def test_dry_run_estimates_from_finished_cells(tmp_path, capsys):
    grid = load_grid(grid_file(tmp_path, "[ce, croloss]"))
    store = ResultStore(str(tmp_path / "out"))
    ce, cro = grid.cells()
    store.put(ce.key, {"cell": {**ce.describe(), "seconds": 30.0}, "run": {}})
    dry_run(grid, store, jobs=1)
    out = capsys.readouterr().out
    assert "2 cells: 1 done, 1 to run" in out
    assert "estimated cost: 0h00m30s of cell time" in out  # croloss: no own timing, same model's



def test_ray_runner_gives_the_local_runners_results(tmp_path):
    if importlib.util.find_spec("ray") is None:  # not imported here: only the runner imports Ray
        pytest.skip("the Ray extra: pip install -e '.[ray]'")
    grid = grid_file(tmp_path, "[ce, croloss]")
    local, remote = str(tmp_path / "local"), str(tmp_path / "ray")
    for out, extra in ((local, ["--jobs", "2"]), (remote, ["--ray-address", "local", "--jobs", "2"])):
        proc = subprocess.run(runner_command(grid, out) + extra, cwd=tmp_path, env=runner_env(),
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "ran 2, already done 0, failed 0" in proc.stdout
    assert "Ray at local" in proc.stdout
    mine, theirs = ResultStore(local).records(), ResultStore(remote).records()
    assert [r["cell"]["key"] for r in mine] == [r["cell"]["key"] for r in theirs] and len(mine) == 2
    for a, b in zip(mine, theirs):
        assert a["run"]["test_result"] == b["run"]["test_result"]
        assert a["run"]["best_valid_result"] == b["run"]["best_valid_result"]
