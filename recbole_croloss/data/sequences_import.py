"""Import the plain files sequential-recommendation benchmarks are published in.

Two layouts, ids separated by spaces or tabs, no header, no time column (the file's order is the
time order):

- ``pairs``: one interaction per line, ``user item``, each user's lines in time order (SASRec's
  files, e.g. its Amazon Video Games ``Video.txt``); a user's lines need not be adjacent.
- ``lines``: one user per line, ``user item item ...``, oldest first (S3Rec's, CL4SRec's and
  ICLRec's Beauty, Sports, Toys, Yelp files); a user on two lines is a malformed line, since the
  order of its two sequences would be a guess.

``auto`` (default) tells them apart from the first :data:`SNIFF_LINES` non-empty lines: ``pairs``
when a user repeats and most lines have two fields, ``lines`` when no user repeats and some line
has more than two; anything else is refused, naming ``--layout``.

``NAME.inter``: one row per interaction in file order, the timestamp its 1-based position among
the file's interactions, so RecBole's ordering by time keeps every user's order, ties impossible.
The file is read line by line and written in blocks (:data:`~.import_parsing.BLOCK_LINES`
interactions); held are the users' first lines (one dict entry per user in ``lines``) and the
user and item tables of :class:`~.import_parsing.IdTable`. Validation, ``on_error`` and the
atomic writes are the other importers' (:mod:`recbole_croloss.data.importer`).
"""
from __future__ import annotations

import os
import time
from collections import Counter

import numpy as np

from ..errors import ConfigError
from ..io import AtomicOutputs
from . import import_parsing as parsing
from .import_parsing import (BLOCK_LINES, INTER_HEADER, IdTable, MalformedInputError, Report, check_on_error,
                             check_out, id_type, text_lines)

LAYOUTS = ("auto", "pairs", "lines")
#: Non-empty lines read to tell the layouts apart.
SNIFF_LINES = 1000


def detect_layout(path: str) -> str:
    """``pairs`` or ``lines`` for the file at ``path`` (see the module's description)."""
    counts, users = [], []
    for line in text_lines(path):
        parts = line.split()
        if parts:
            counts.append(len(parts))
            users.append(parts[0])
            if len(counts) >= SNIFF_LINES:
                break
    if not counts:
        raise MalformedInputError(f"{path} has no data")
    repeats = len(set(users)) < len(users)
    common = Counter(counts).most_common(1)[0][0]
    if repeats and common == 2:
        return "pairs"
    if not repeats and max(counts) > 2:
        return "lines"
    shape = ", ".join(str(c) for c in sorted(set(counts))[:6])
    raise ConfigError("layout", "auto", f"pairs (user item, a user on several lines) or lines (user item item ..., "
                      f"one line per user); the first {len(counts)} lines of {os.path.basename(path)} have "
                      f"{shape} fields and {'repeat' if repeats else 'never repeat'} a user: give --layout pairs "
                      "or --layout lines (a file with a time column imports with --format csv --no-header)")


class _Scanner:
    """Reads the lines, checks them, and writes blocks of ``.inter`` rows."""

    def __init__(self, label: str, layout: str, ids: str, report: Report, inter, on_error: str):
        self.label, self.layout, self.report, self.inter, self.on_error = label, layout, report, inter, on_error
        reader = id_type(ids)
        self.user_ids, self.item_ids = reader(), reader()
        self.users, self.items = IdTable(), IdTable()
        self.first_line: dict[int, int] = {}  # lines: the line each user is on
        self.rows, self.codes, self.text = 0, [], []

    def refusal(self, lineno: int, parts: list[str]) -> str | None:
        if self.layout == "pairs" and len(parts) != 2:
            return f"expected 2 fields (user item), got {len(parts)}"
        if self.layout == "lines" and len(parts) < 2:
            return "a user without items (expected user item item ...)"
        bad = self.user_ids.refusal(parts[0], "user")
        bad = bad or next(filter(None, (self.item_ids.refusal(p, "item") for p in parts[1:])), None)
        if bad or self.layout == "pairs":
            return bad
        user = self.user_ids.code(parts[0])
        if user in self.first_line:
            return f"user {parts[0]} already has line {self.first_line[user]}; one line per user in this layout"
        self.first_line[user] = lineno
        return None

    def line(self, lineno: int, line: str) -> None:
        parts = line.split()
        bad = self.refusal(lineno, parts)
        if bad:
            self.report.add(self.label, lineno, bad, line.rstrip("\r\n"))
            return
        user, written = self.user_ids.code(parts[0]), self.user_ids.written(parts[0])
        for item in parts[1:]:
            self.rows += 1
            self.codes.append((user, self.item_ids.code(item)))
            self.text.append(f"{written}\t{self.item_ids.written(item)}\t{self.rows}\n")
        if len(self.text) >= BLOCK_LINES:
            self.flush()

    def flush(self) -> None:
        if not self.text:
            return
        codes = np.array(self.codes, dtype=np.int64)
        self.users.put_new(codes[:, 0], np.ones(len(codes), np.int64))
        self.items.put_new(codes[:, 1], np.ones(len(codes), np.int64))
        if self.report.total == 0 or self.on_error == "skip":
            parsing.write_chunk(self.inter, "".join(self.text))
        self.codes, self.text = [], []


def _scan(src: str, scanner: _Scanner) -> None:
    blanks: list[int] = []
    for lineno, line in enumerate(text_lines(src), 1):
        if not line.strip():
            blanks.append(lineno)
            continue
        for blank in blanks:  # an empty line before data: a line lost, not a file's end
            scanner.report.add(scanner.label, blank, "empty line")
        blanks.clear()
        scanner.line(lineno, line)
    scanner.flush()


def import_sequences(src: str, name: str, out: str, layout: str = "auto", ids: str = "int",
                     on_error: str = "fail") -> dict:
    """Import a sequential benchmark's plain file (``pairs`` or ``lines``, see the module) as
    ``out/name/name.inter``. Returns the summary (also ``NAME.import.json``): ``format, layout,
    source, ids, time_source, rows, users, items, malformed, on_error, outputs, elapsed_seconds``.
    Raises :class:`MalformedInputError` on malformed lines with ``on_error="fail"`` (nothing
    written) and :class:`~recbole_croloss.errors.ConfigError` for a layout it cannot tell."""
    check_on_error(on_error)
    id_type(ids)
    if layout not in LAYOUTS:
        raise ConfigError("layout", layout, LAYOUTS)
    if not os.path.isfile(src):
        raise FileNotFoundError(f"--src {src!r} is not a file")
    check_out(out)
    start = time.perf_counter()
    layout = detect_layout(src) if layout == "auto" else layout
    report = Report()
    with AtomicOutputs(out, name) as outputs:
        scanner = _Scanner(os.path.basename(src), layout, ids, report, outputs.open("inter", INTER_HEADER), on_error)
        _scan(src, scanner)
        summary = {
            "format": "sequences", "layout": layout,
            "source": {"path": os.path.abspath(src), "bytes": os.path.getsize(src)},
            "ids": ids, "time_source": "position in the file", "rows": scanner.rows,
            "users": len(scanner.users), "items": len(scanner.items),
            "malformed": report.as_dict(), "on_error": on_error,
            "outputs": [f"{name}.inter", f"{name}.import.json"], "folder": outputs.folder,
        }
        return parsing.commit_interactions(outputs, summary, report, on_error, scanner.rows, src,
                                           scanner.user_ids.hint() or scanner.item_ids.hint(), start)
