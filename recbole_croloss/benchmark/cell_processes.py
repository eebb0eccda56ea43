"""The processes of running cells, so that a runner that stops takes them along.

- Each cell starts in a process group of its own (``start_new_session``): a signal to the group
  reaches the cell and anything it started, and a Ctrl-C in the terminal reaches the runner only,
  which decides what its cells get.
- :class:`CellProcesses` knows the running cells: :meth:`~CellProcesses.stop` signals every group
  and lets no new cell start.
- A cell dies with the thread that started it (Linux ``PR_SET_PDEATHSIG``): SIGKILL of the
  runner runs no handler, and this is the only way its cells still go with it. It covers the
  cell's own process (the CLI starts none of its own).
- Scratch folders are named ``croloss-cell-<pid>-*`` after the runner's pid: a runner killed by
  SIGKILL cannot remove them, and the next runner on the machine removes those whose runner is gone
  (:func:`remove_dead_scratch`).
"""
from __future__ import annotations

import ctypes
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading

from ..io import writer_gone

SCRATCH_PREFIX = "croloss-cell-"
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class CellInterrupted(RuntimeError):
    """The cell was stopped (or never started) because the runner is stopping: not a failure."""


def _death_signal_setter():
    """A ``preexec_fn`` that makes the child get SIGKILL when the thread that forked it ends, or
    None where Linux's prctl is not there. Resolved here, in the parent, so that the child calls
    one C function between fork and exec (the part that is safe in a process with threads)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def set_death_signal():
        prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:  # the runner died before prctl: no signal would ever come
            os._exit(1)

    return set_death_signal


class CellProcesses:
    """The cells' processes running now. Thread-safe: executors' threads start cells, the
    driver stops them."""

    def __init__(self):
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen] = set()
        self.stopping = False

    def start(self, command: list[str], **popen) -> subprocess.Popen:
        """``Popen(command)`` in a session of its own, dying with this thread; raises
        :class:`CellInterrupted` once :meth:`stop` was called. The calling thread must wait for
        the process: the death signal fires when that thread ends."""
        with self._lock:  # a cell starts before a stop (and gets its signal) or not at all
            if self.stopping:
                raise CellInterrupted("the runner is stopping: cell not started")
            proc = subprocess.Popen(command, start_new_session=True, preexec_fn=_death_signal_setter(), **popen)
            self._running.add(proc)
        return proc

    def finished(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._running.discard(proc)

    def stop(self, signum: int = signal.SIGTERM) -> None:
        """Start no more cells; send ``signum`` to the group of every running one."""
        with self._lock:
            self.stopping = True
            for proc in self._running:
                kill_group(proc, signum)


def kill_group(proc: subprocess.Popen, signum: int) -> None:
    if proc.returncode is None:  # not yet reaped: its pid is still its own
        try:
            os.killpg(proc.pid, signum)
        except ProcessLookupError:
            pass


def scratch_folder() -> tempfile.TemporaryDirectory:
    """A cell's scratch folder in the temporary directory, named after this runner's pid."""
    return tempfile.TemporaryDirectory(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-")


def remove_dead_scratch() -> list[str]:
    """Remove the scratch folders of runners that are gone (killed by SIGKILL: nothing of theirs
    could clean up); those of live runners stay."""
    removed = []
    for path in glob.glob(os.path.join(tempfile.gettempdir(), f"{SCRATCH_PREFIX}*-*")):
        pid = os.path.basename(path)[len(SCRATCH_PREFIX):].split("-", 1)[0]
        try:
            if pid.isdecimal() and os.path.isdir(path) and writer_gone(int(pid), os.stat(path).st_mtime):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
        except FileNotFoundError:
            pass
    return removed
