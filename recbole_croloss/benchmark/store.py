"""The result store of a benchmark: one JSON record per finished cell, written atomically.

Layout of ``OUT/``::

    cells/<cell key>.json    a finished cell: {"cell": ..., "run": ...} (the run's own record)
    cells/<cell key>.hits.npz  its test users' Recall hits at every N (io.save_per_user_hits),
                             written before the JSON, so a cell's JSON implies its hits
    failed/<cell key>.json   the last failure of a cell (removed when the cell finishes)
    report/                  tables and figures made from cells/ (never read back)
    .lock                    held by the one runner writing to OUT

A record appears with ``os.replace`` of a fully written, fsynced temporary file, so a runner
killed at any moment leaves either no record for the cell in flight or the whole record; stray
temporary files (``.tmp-*``) are never read as records.
"""
from __future__ import annotations

import fcntl
import glob
import json
import os

from ..errors import BUSY
from ..io import atomic_write_json, load_per_user_hits, per_user_hits_file, save_per_user_hits


class StoreBusyError(RuntimeError):
    """Another runner holds the result store."""

    exit_status = BUSY


class ResultStore:
    def __init__(self, out: str):
        self.out = os.path.abspath(out)
        self.cells_dir = os.path.join(self.out, "cells")
        self.failed_dir = os.path.join(self.out, "failed")
        self.report_dir = os.path.join(self.out, "report")
        self._lock = None

    # --- reading ---------------------------------------------------------------------------
    def path(self, key: str) -> str:
        return os.path.join(self.cells_dir, f"{key}.json")

    def has(self, key: str) -> bool:
        return os.path.isfile(self.path(key))

    def get(self, key: str) -> dict | None:
        path = self.path(key)
        if not os.path.isfile(path):
            return None
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)

    def per_user_hits(self, key: str) -> dict | None:
        """The cell's per-user hits (numpy arrays), or ``None`` for a cell stored without them."""
        path = per_user_hits_file(self.path(key))
        return load_per_user_hits(path) if os.path.isfile(path) else None

    def records(self, keys=None) -> list[dict]:
        """Finished records (of ``keys`` only, when given), in key order."""
        if keys is None:
            paths = sorted(p for p in glob.glob(os.path.join(glob.escape(self.cells_dir), "*.json"))
                           if not os.path.basename(p).startswith("."))
            keys = [os.path.basename(p)[:-5] for p in paths]
        return [r for r in (self.get(k) for k in keys) if r is not None]

    def failure(self, key: str) -> dict | None:
        path = os.path.join(self.failed_dir, f"{key}.json")
        if not os.path.isfile(path):
            return None
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)

    # --- writing (the runner's driver only, holding the lock) -------------------------------
    def lock(self) -> None:
        """Take the store's lock; a second runner on the same folder stops with a clear error.
        The OS drops the lock when the process ends, however it ends."""
        os.makedirs(self.out, exist_ok=True)
        handle = open(os.path.join(self.out, ".lock"), "a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise StoreBusyError(f"another benchmark runner is writing to {self.out}; "
                                 "wait for it or give another --out") from None
        self._lock = handle
        for stale in glob.glob(os.path.join(self.cells_dir, ".tmp-*")) + \
                glob.glob(os.path.join(self.failed_dir, ".tmp-*")):
            os.unlink(stale)  # left by a runner killed while writing: never a record

    def unlock(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def put(self, key: str, record: dict) -> None:
        """Store a finished cell; ``record["per_user_hits"]`` (if any) goes to its own file."""
        hits = record.pop("per_user_hits", None)
        if hits is not None:
            save_per_user_hits(per_user_hits_file(self.path(key)), hits)
        atomic_write_json(self.path(key), record)
        failed = os.path.join(self.failed_dir, f"{key}.json")
        if os.path.exists(failed):
            os.unlink(failed)

    def fail(self, key: str, failure: dict) -> None:
        atomic_write_json(os.path.join(self.failed_dir, f"{key}.json"), failure)
