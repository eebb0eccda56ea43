"""Writing results atomically: a reader sees the old file(s) or the whole new ones, never half.

- :func:`atomic_write_json`: one JSON file (a run's record, a benchmark cell);
  :func:`save_per_user_hits` the per-user Recall hits beside it (``X.json`` -> ``X.hits.npz``).
- :class:`AtomicOutputs`: several files of one dataset folder (``OUT/NAME/NAME.<suffix>``) that
  become visible together, at :meth:`~AtomicOutputs.commit`, or not at all
  (:meth:`~AtomicOutputs.abort` removes the temporary files and any folder it created).
- :func:`interrupt_signals`: SIGTERM and SIGINT raise :class:`Interrupted`, so that the cleanup
  above (and a runner's, of its child processes) runs for them as for any error.

Every file is written to a temporary file in its destination folder, fsynced, and moved into
place with ``os.replace``. A dataset's temporary files are named
``.NAME.<suffix>.<host>.<pid>.<random>.tmp``: a writer killed by SIGKILL (no cleanup runs) leaves
them behind, and the next :class:`AtomicOutputs` of the same dataset removes those whose writer
is gone (see :func:`writer_gone`).
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import tempfile
import types

from .errors import ConfigError

#: This machine, as temporary names hold it: a pid means something only on its own host.
HOST = re.sub(r"[^A-Za-z0-9-]+", "-", socket.gethostname()).strip("-") or "host"
#: Seconds of doubt about a process's start time (``/proc``'s boot time is in whole seconds).
START_SLACK = 2.0


def atomic_write(path: str, write, binary: bool = False, suffix: str = ".tmp") -> None:
    """``write(file)`` into a temporary file beside ``path``, synced, then renamed over it: ``path``
    holds either the old file or the whole new one, whatever stops the process."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=suffix)
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def save_png(figure, path: str, dpi: int) -> None:
    """A matplotlib ``figure`` as PNG, written atomically; the figure is closed."""
    import matplotlib.pyplot as plt

    atomic_write(path, lambda f: figure.savefig(f, dpi=dpi, format="png"), binary=True, suffix=".png")
    plt.close(figure)


def atomic_write_json(path: str, payload) -> None:
    """Write JSON so that ``path`` holds either the old file or the whole new one."""
    atomic_write(path, lambda f: json.dump(payload, f, indent=2, sort_keys=True, default=str), suffix=".json")


#: What a per-user hits file holds: user ids [U], Recall's targets [U], hits [U, K] within each
#: N of ks [K].
PER_USER_ARRAYS = ("users", "targets", "hits", "ks")


def per_user_hits_file(record_path: str) -> str:
    """The per-user hits file beside a record: ``X.json`` (or ``X``) -> ``X.hits.npz``."""
    root, ext = os.path.splitext(record_path)
    return (root if ext == ".json" else record_path) + ".hits.npz"


def save_per_user_hits(path: str, arrays: dict) -> None:
    """``arrays`` (tensors or numpy arrays named as :data:`PER_USER_ARRAYS`) compressed, in
    the smallest integer type that holds them, written atomically."""
    import numpy as np

    packed = {}
    for name in PER_USER_ARRAYS:
        values = np.asarray(arrays[name])
        low, high = (int(values.min()), int(values.max())) if values.size else (0, 0)
        dtype = next(t for t in (np.int16, np.int32, np.int64)
                     if np.iinfo(t).min <= low and high <= np.iinfo(t).max)
        packed[name] = values.astype(dtype)
    atomic_write(path, lambda f: np.savez_compressed(f, **packed), binary=True, suffix=".npz")


def load_per_user_hits(path: str) -> dict:
    """The arrays :func:`save_per_user_hits` wrote, as int64 numpy arrays."""
    import numpy as np

    with np.load(path) as data:
        return {name: data[name].astype(np.int64) for name in PER_USER_ARRAYS}


def check_writable_dir(key: str, path) -> None:
    """``path`` is, or can be made, a folder this process can write in (tried for real: a
    temporary folder is made in it, or in its nearest existing parent, and removed), so that a
    run or a writer stops before its work, not when it saves it."""
    if not isinstance(path, str) or not path:
        raise ConfigError(key, path, "a directory path")
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise ConfigError(key, path, f"{probe} is a file, not a directory")
    try:
        os.rmdir(tempfile.mkdtemp(dir=probe, prefix=".croloss-probe-"))
    except OSError as err:
        raise ConfigError(key, path, f"a folder that can be written ({probe}: {err.strerror})") from None


def check_dataset_name(name: str, key: str = "name") -> None:
    """A dataset name is a plain folder name (``key``: the setting that gave it)."""
    if not isinstance(name, str) or not name or name in (".", "..") or any(c in name for c in "/\\\0") \
            or name.strip() != name:
        raise ConfigError(key, name, "a plain folder name (no path separators), e.g. amazon-books")


def public_mode(path: str) -> None:
    """Give a temporary file (mkstemp makes it 0600) the mode a plain open() would: 0666 & ~umask."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGINT arrived inside :func:`interrupt_signals`. A ``KeyboardInterrupt``, so
    that ``except Exception`` never swallows it and code that cleans up after Ctrl-C cleans up
    after SIGTERM too."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")

    @property
    def exit_code(self) -> int:
        """The shell's code for a process ended by the signal."""
        return 128 + self.signum


@contextlib.contextmanager
def interrupt_signals():
    """Inside, the first SIGTERM or SIGINT raises :class:`Interrupted` in the main thread (unless
    the process ignores that signal); later ones do nothing, so that they cannot break into the
    cleanup the first one started. The previous handlers come back on exit. For a CLI's main
    (Python lets only the main thread set handlers).

    Yields an object whose ``signum`` is the signal received (None before): a library that
    catches the exception and raises a plain ``KeyboardInterrupt`` (Ray does) loses it."""
    received = types.SimpleNamespace(signum=None)

    def handle(signum, frame):
        if received.signum is None:
            received.signum = signum
            raise Interrupted(signum)

    # a signal the process was started ignoring (nohup, a script's background job) stays
    # ignored, as Python itself does for SIGINT
    previous = {s: signal.signal(s, handle) for s in (signal.SIGTERM, signal.SIGINT)
                if signal.getsignal(s) is not signal.SIG_IGN}
    try:
        yield received
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def _process_start(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch), from ``/proc``; None elsewhere."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            ticks = int(fh.read().rsplit(")", 1)[1].split()[19])  # field 22, starttime
        with open("/proc/stat", encoding="ascii") as fh:
            boot = next(int(line.split()[1]) for line in fh if line.startswith("btime "))
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def writer_gone(pid: int, mtime: float) -> bool:
    """Whether the writer that named a file (or folder) last changed at ``mtime`` after its pid
    ``pid`` on this host has ended: no process has that pid now, or the one that has it started
    after the file was last written (the pid was reused)."""
    if not _pid_alive(pid):
        return True
    started = _process_start(pid)
    return started is not None and mtime < started - START_SLACK


def remove_dead_temporaries(folder: str, name: str) -> list[str]:
    """Remove the temporary files of dataset ``name`` in ``folder`` whose writer is gone (see
    :func:`writer_gone`); files of other names, of other hosts and of live writers stay."""
    pattern = re.compile(rf"\.{re.escape(name)}\..+\.(?P<host>[A-Za-z0-9-]+)\.(?P<pid>\d+)\.[a-z0-9_]+\.tmp")
    removed = []
    for entry in os.listdir(folder):
        match = pattern.fullmatch(entry)
        if match is None or match["host"] != HOST:
            continue
        path = os.path.join(folder, entry)
        try:
            if writer_gone(int(match["pid"]), os.stat(path).st_mtime):
                os.unlink(path)
                removed.append(entry)
        except FileNotFoundError:  # its writer committed or aborted meanwhile
            pass
    return removed


class AtomicOutputs:
    """Temporary files in ``OUT/NAME/`` that become ``NAME.<suffix>`` together, or not at all.

    ``open(suffix, header, binary=False)`` -> a buffered handle to write to (``bare=True``: the
    file is named ``suffix`` itself, for a layout another tool reads, such as ReChorus's
    ``dev.csv``); ``commit(last=...)``
    fsyncs every file and moves each into place (``last`` after the others: the summary that
    says the dataset is complete); ``abort()`` removes the temporary files and the folders
    this object created (if left empty). As a context manager, an exception inside the block
    aborts; :meth:`finish` writes the summary and commits::

        with AtomicOutputs(out, name) as outputs:
            outputs.open("inter", header).write(rows)
            outputs.finish("import.json", summary)
    """

    def __init__(self, out: str, name: str):
        check_dataset_name(name)
        self.folder = os.path.join(os.path.abspath(out), name)
        self.name = name
        self.created: list[str] = []
        path = self.folder
        while not os.path.isdir(path):
            self.created.append(path)
            path = os.path.dirname(path)
        os.makedirs(self.folder, exist_ok=True)
        self.temps: dict[str, tuple[str, object]] = {}
        self.bare: set[str] = set()
        remove_dead_temporaries(self.folder, name)

    def open(self, suffix: str, header="", binary: bool = False, bare: bool = False):
        # host and pid in the name: how a later writer tells a dead writer's file from a live one's
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=f".{self.name}.{suffix}.{HOST}.{os.getpid()}.",
                                   suffix=".tmp")
        handle = os.fdopen(fd, "wb", buffering=1 << 22) if binary else \
            os.fdopen(fd, "w", encoding="utf-8", newline="", buffering=1 << 20)
        self.temps[suffix] = (tmp, handle)
        if bare:
            self.bare.add(suffix)
        handle.write(header)
        return handle

    def write_json(self, suffix: str, payload) -> None:
        handle = self.open(suffix)
        json.dump(payload, handle, indent=2, sort_keys=True)
        handle.write("\n")

    def __enter__(self) -> "AtomicOutputs":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()

    def finish(self, suffix: str, summary, remove_stale: tuple[str, ...] = ()) -> None:
        """Write ``summary`` as JSON to ``NAME.<suffix>`` and commit it last."""
        self.write_json(suffix, summary)
        self.commit(last=suffix, remove_stale=remove_stale)

    def path(self, suffix: str) -> str:
        return os.path.join(self.folder, suffix if suffix in self.bare else f"{self.name}.{suffix}")

    def commit(self, last: str | None = None, remove_stale: tuple[str, ...] = ()) -> None:
        """fsync every temporary file, move each into place (``last`` last), then remove the
        outputs ``remove_stale`` of an earlier version that this one does not have."""
        for _, handle in self.temps.values():
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
        for suffix in [s for s in self.temps if s != last] + ([last] if last in self.temps else []):
            public_mode(self.temps[suffix][0])
            os.replace(self.temps[suffix][0], self.path(suffix))
        for suffix in remove_stale:
            if os.path.exists(self.path(suffix)):
                os.unlink(self.path(suffix))
        self.temps.clear()

    def abort(self) -> None:
        """Remove the temporary files and the folders this object created (if left empty)."""
        for tmp, handle in self.temps.values():
            try:
                handle.close()
            except Exception:
                pass
            if os.path.exists(tmp):
                os.unlink(tmp)
        self.temps.clear()
        for path in self.created:  # deepest first
            try:
                os.rmdir(path)
            except OSError:
                break
