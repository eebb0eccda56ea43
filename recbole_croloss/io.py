"""Writing results atomically: a reader sees the old file(s) or the whole new ones, never half.

- :func:`atomic_write_json`: one JSON file (a run's record, a benchmark cell).
- :class:`AtomicOutputs`: several files of one dataset folder (``OUT/NAME/NAME.<suffix>``) that
  become visible together, at :meth:`~AtomicOutputs.commit`, or not at all
  (:meth:`~AtomicOutputs.abort` removes the temporary files and any folder it created).

Every file is written to a temporary file in its destination folder, fsynced, and moved into
place with ``os.replace``.
"""
from __future__ import annotations

import json
import os
import tempfile

from .errors import ConfigError


def atomic_write_json(path: str, payload) -> None:
    """Write JSON so that ``path`` holds either the old file or the whole new one."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(payload, f, indent=2, sort_keys=True, default=str)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def check_dataset_name(name: str) -> None:
    """A dataset name is a plain folder name."""
    if not isinstance(name, str) or not name or name in (".", "..") or any(c in name for c in "/\\\0") \
            or name.strip() != name:
        raise ConfigError("name", name, "a plain folder name (no path separators), e.g. amazon-books")


def public_mode(path: str) -> None:
    """Give a temporary file (mkstemp makes it 0600) the mode a plain open() would: 0666 & ~umask."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


class AtomicOutputs:
    """Temporary files in ``OUT/NAME/`` that become ``NAME.<suffix>`` together, or not at all.

    ``open(suffix, header, binary=False)`` -> a buffered handle to write to; ``commit(last=...)``
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

    def open(self, suffix: str, header="", binary: bool = False):
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=f".{self.name}.{suffix}.", suffix=".tmp")
        handle = os.fdopen(fd, "wb", buffering=1 << 22) if binary else \
            os.fdopen(fd, "w", encoding="utf-8", newline="", buffering=1 << 20)
        self.temps[suffix] = (tmp, handle)
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
        return os.path.join(self.folder, f"{self.name}.{suffix}")

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
