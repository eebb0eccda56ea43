"""Line scanning, id bookkeeping and the malformed-line report shared by the importers.

The formats, validation rules, atomicity and memory bounds are described in
:mod:`recbole_croloss.data.importer`.
"""
from __future__ import annotations

import json
import math
import os
import time
from datetime import datetime, timezone

import numpy as np
from pandas._libs.parsers import STR_NA_VALUES  # the strings read_csv reads as missing

from ..errors import BAD_INPUT, ConfigError
from ..io import AtomicOutputs, check_writable_dir

#: Lines parsed before their rows are checked (vectorised) and written.
BLOCK_LINES = 1 << 16
#: Malformed lines shown in full in messages and in NAME.import.json.
MAX_SHOWN = 10
ON_ERROR = ("fail", "skip")
INTER_HEADER = "user_id:token\titem_id:token\ttimestamp:float\n"
#: The largest id: ids are held as int64.
MAX_ID = 2 ** 63 - 1


class MalformedInputError(ValueError):
    """The input has malformed lines (``on_error="fail"``) or is inconsistent (a user in two
    split files, ids missing from a map file). ``summary`` holds the full report."""

    exit_status = BAD_INPUT

    def __init__(self, message: str, summary: dict | None = None):
        super().__init__(message)
        self.summary = summary or {}


def text_lines(path: str):
    """The lines of ``path`` as text (a byte-order mark dropped, CRLF read as LF). A byte that is
    not UTF-8 stops the import naming its line: decoding it as a replacement character would
    merge distinct ids (``caf\xe9`` and ``caf\xe8``) into one, silently. So does a last line
    without a newline: a copy cut short ends that way, and its last value would be read cut."""
    with open(path, "rb") as handle:
        for lineno, raw in enumerate(handle, 1):
            try:
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as err:
                raise MalformedInputError(
                    f"{path}, line {lineno}: not UTF-8 text (byte 0x{raw[err.start]:02x} at byte {err.start + 1} "
                    f"of the line); convert the file first, e.g. iconv -f latin1 -t utf-8 {path} > converted") from None
            if not line.endswith("\n") and line.strip():
                raise MalformedInputError(
                    f"{path}, line {lineno}: the file ends inside this line, without a newline: it looks cut "
                    f"short (its last value {line.split()[-1]!r} may be cut in the middle); if the line is whole, "
                    f"end the file with a newline (echo >> {path}) and import again")
            yield line[:-2] + "\n" if line.endswith("\r\n") else line


# ---------------------------------------------------------------------------------------------
# bookkeeping


class IdTable:
    """An int64 value per non-negative integer id, 0 meaning absent.

    Ids below :attr:`DENSE_LIMIT` live in a numpy array indexed by id, grown by doubling
    (8 bytes x (largest id + 1)); larger ids live in a dict.
    """

    DENSE_LIMIT = 1 << 26

    def __init__(self):
        self.dense = np.zeros(1024, dtype=np.int64)
        self.sparse: dict[int, int] = {}

    def get(self, ids: np.ndarray) -> np.ndarray:
        out = np.zeros(len(ids), dtype=np.int64)
        inside = ids < len(self.dense)
        out[inside] = self.dense[ids[inside]]
        if self.sparse:
            big = np.flatnonzero(ids >= self.DENSE_LIMIT)
            out[big] = [self.sparse.get(int(x), 0) for x in ids[big]]
        return out

    def put_new(self, ids: np.ndarray, values: np.ndarray) -> None:
        """Set ``values`` for the ids not yet present (the first occurrence of an id wins)."""
        if len(ids) == 0:
            return
        uniq, first = np.unique(ids, return_index=True)
        new = self.get(uniq) == 0
        uniq, vals = uniq[new], values[first[new]]
        dense = uniq < self.DENSE_LIMIT
        if dense.any():
            top = int(uniq[dense][-1])
            if top >= len(self.dense):
                size = len(self.dense)
                while size <= top:
                    size *= 2
                grown = np.zeros(min(size, self.DENSE_LIMIT), dtype=np.int64)
                grown[: len(self.dense)] = self.dense
                self.dense = grown
            self.dense[uniq[dense]] = vals[dense]
        for key, val in zip(uniq[~dense].tolist(), vals[~dense].tolist()):
            self.sparse[key] = val

    def items(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, values) of the present ids, by id."""
        ids = np.flatnonzero(self.dense)
        vals = self.dense[ids]
        if self.sparse:
            keys = np.array(sorted(self.sparse), dtype=np.int64)
            ids = np.concatenate([ids, keys])
            vals = np.concatenate([vals, np.array([self.sparse[k] for k in keys.tolist()], dtype=np.int64)])
        return ids.astype(np.int64), vals

    def __len__(self) -> int:
        return int(np.count_nonzero(self.dense)) + len(self.sparse)


class Report:
    """Malformed lines: the total, per file, and the first :data:`MAX_SHOWN` in full."""

    def __init__(self):
        self.total = 0
        self.per_file: dict[str, int] = {}
        self.shown: list[dict] = []

    def add(self, file: str, line: int, reason: str, text: str = "") -> None:
        self.total += 1
        self.per_file[file] = self.per_file.get(file, 0) + 1
        if len(self.shown) < MAX_SHOWN:
            self.shown.append({"file": file, "line": line, "reason": reason, "text": text[:80]})

    def text(self) -> str:
        lines = [f"  {m['file']}:{m['line']}: {m['reason']}" + (f": {m['text']!r}" if m["text"] else "")
                 for m in self.shown]
        if self.total > len(self.shown):
            lines.append(f"  ... {self.total - len(self.shown)} more")
        per_file = ", ".join(f"{f}: {n}" for f, n in self.per_file.items())
        return f"{self.total} malformed line(s) ({per_file}):\n" + "\n".join(lines)

    def as_dict(self) -> dict:
        return {"total": self.total, "per_file": dict(self.per_file), "first": list(self.shown)}


def parse_time(text: str) -> str | None:
    """The timestamp ``text`` as the ``.inter`` file writes it: a finite number as it is, an
    ISO 8601 date or date and time (``2019-05-01``, ``2019-05-01 13:05:00``, a ``datetime``
    column's usual values) as its Unix time in seconds, UTC unless it names its offset;
    ``None`` when it is neither."""
    try:
        if math.isfinite(float(text)) and "_" not in text:
            return text
        return None
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return repr(moment.timestamp())


def existing_rows(outputs: AtomicOutputs) -> int | None:
    """The interactions of the dataset an import is about to replace (``None``: there is none):
    its ``NAME.import.json``'s count, else the data lines of its ``NAME.inter``."""
    try:
        with open(outputs.path("import.json"), encoding="utf-8") as f:
            return int(json.load(f)["rows"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        with open(outputs.path("inter"), "rb") as f:
            lines = sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))
            f.seek(max(f.tell() - 1, 0))
            lines += 1 if f.read(1) not in (b"\n", b"") else 0  # a last line without its newline
    except OSError:
        return None
    return max(lines - 1, 0)  # the header is not an interaction


def note_replaced(summary: dict, outputs: AtomicOutputs) -> None:
    """Record in ``summary`` the dataset this import replaces, if any, before it is replaced:
    a second import under one name must not replace the first silently."""
    rows = existing_rows(outputs)
    if rows is not None:
        summary["replaced"] = {"dataset": outputs.name, "rows": rows}


def commit_interactions(outputs: AtomicOutputs, summary: dict, report: "Report", on_error: str, rows: int,
                        src: str, ids_hint: str, start: float) -> dict:
    """Finish an import that writes only ``NAME.inter``: refuse it (nothing written) for
    malformed lines under ``on_error="fail"`` or no interaction, else commit the outputs with
    ``summary`` as ``NAME.import.json``, removing an earlier import's ``.user`` / ``.item``
    (ComiRec's split), which RecBole would read with the new ``.inter``."""
    if report.total and on_error == "fail":
        hint_line = f"\n{ids_hint}" if ids_hint else ""
        raise MalformedInputError(f"{report.text()}{hint_line}\non_error=fail: nothing written "
                                  "(use --on-error skip to leave these lines out)", summary)
    if rows == 0:  # a dataset RecBole refuses: a header and no interactions
        why = " (every line was left out)" if report.total else ""
        raise MalformedInputError(f"{src} has no interaction to import{why}; nothing written", summary)
    summary["elapsed_seconds"] = round(time.perf_counter() - start, 3)
    note_replaced(summary, outputs)
    name = outputs.name
    stale = tuple(s for s in ("user", "item") if f"{name}.{s}" in previous_outputs(outputs))
    outputs.finish("import.json", summary, remove_stale=stale)
    return summary


def write_chunk(handle, text: str) -> None:
    """Write one block of formatted rows (one place, so tests can make a write fail)."""
    handle.write(text)


def check_on_error(on_error: str) -> None:
    if on_error not in ON_ERROR:
        raise ConfigError("on_error", on_error, ON_ERROR)


def check_out(out: str) -> None:
    """``out`` (RecBole's data_path) is a folder or not there yet, never a file: found before
    the input is read, not when the first output is written."""
    probe = os.path.abspath(out)
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise ConfigError("out", out, f"a folder: {probe} is a file")
    check_writable_dir("out", out)  # not found unwritable after the whole input was read


def previous_outputs(outputs: AtomicOutputs) -> list[str]:
    try:
        with open(outputs.path("import.json"), encoding="utf-8") as f:
            return list(json.load(f).get("outputs", []))
    except (OSError, ValueError, AttributeError):
        return []


# ---------------------------------------------------------------------------------------------
# the line scanner


def scan_inter(path: str, label: str, sep: str, ncols: int, ui: int, ii: int, ti: int | None,
                first_line: int, report: Report, on_block, user_ids=None, item_ids=None) -> int:
    """Parse one interactions file from line ``first_line`` on; returns the rows accepted.

    Every ``BLOCK_LINES`` lines, ``on_block(users, items, lines, text)`` receives the accepted
    rows as int64 arrays (user code, item code, 1-based line number) and their formatted
    ``.inter`` text. ``user_ids`` / ``item_ids`` read the ids (:class:`IntegerIds`, the default,
    or :class:`TokenIds`). Malformed lines go to ``report``; empty lines count as malformed only
    when a data line follows them.
    """
    user_ids = IntegerIds() if user_ids is None else user_ids
    item_ids = IntegerIds() if item_ids is None else item_ids
    users, items, lines, text = [], [], [], []
    blanks: list[int] = []
    rows = 0
    for lineno, line in enumerate(text_lines(path), 1):
        if lineno < first_line:
            continue
        parts = line.split(sep)
        if len(parts) != ncols:
            if not line.strip():
                blanks.append(lineno)
                continue
            reason = f"expected {ncols} fields separated by {sep!r}, got {len(parts)}"
            _flush_blanks(blanks, label, report)
            report.add(label, lineno, reason, line.rstrip("\r\n"))
            continue
        if blanks:
            _flush_blanks(blanks, label, report)
        us, its = parts[ui].strip(), parts[ii].strip()
        bad = user_ids.refusal(us, "user") or item_ids.refusal(its, "item")
        if bad:
            report.add(label, lineno, bad, line.rstrip("\r\n"))
            continue
        ts = str(lineno) if ti is None else parse_time(parts[ti].strip())
        if ts is None:
            report.add(label, lineno, "timestamp is not a finite number nor an ISO 8601 date",
                       line.rstrip("\r\n"))
            continue
        users.append(user_ids.code(us))
        items.append(item_ids.code(its))
        lines.append(lineno)
        text.append(f"{user_ids.written(us)}\t{item_ids.written(its)}\t{ts}\n")
        rows += 1
        if len(text) >= BLOCK_LINES:
            on_block(np.array(users, np.int64), np.array(items, np.int64), np.array(lines, np.int64),
                     "".join(text))
            users, items, lines, text = [], [], [], []
    if text:
        on_block(np.array(users, np.int64), np.array(items, np.int64), np.array(lines, np.int64), "".join(text))
    return rows


class IntegerIds:
    """Ids that are non-negative integers below 2**63 (ComiRec's, MovieLens's), written in
    decimal (``007`` is id 7); the id is its own code."""

    name = "int"

    def __init__(self):
        self.not_integer = 0

    def hint(self) -> str:
        """Said once, under the report, when an id was not an integer."""
        return "ids that are not integers (an ASIN, a hash) import with --ids token" if self.not_integer else ""

    def refusal(self, text: str, kind: str) -> str | None:
        """Why ``text`` is not an id (``None``: it is one)."""
        if not text.isdecimal():
            self.not_integer += 1
            return f"{kind} id is not a non-negative integer"
        if len(text) >= 19 and int(text) > MAX_ID:
            return f"{kind} id is larger than 2**63 - 1"
        return None

    def code(self, text: str) -> int:
        return int(text)

    def written(self, text: str) -> str:
        return str(int(text))


class TokenIds:
    """Ids that are any tokens (``A3R5OBKS7OM2IR``, ``0441172717``), written as they are.

    A token has no whitespace (the ``.inter`` file is tab-separated and the recommend CLI's input
    is space-separated), no quote (a quoted field is read without its quotes), and is none of the
    strings pandas and pyarrow read as missing (``NA``, ``null``, ``nan``, ...) nor RecBole's
    padding token ``[PAD]``. Codes are given in order of first appearance, one dict entry per
    distinct token (about 100 B each)."""

    name = "token"
    #: The strings RecBole's pandas reader (and the lean pyarrow one) read as missing.
    MISSING = frozenset(STR_NA_VALUES)
    RESERVED = frozenset({"[PAD]"})

    def __init__(self):
        self.codes: dict[str, int] = {}

    def hint(self) -> str:
        return ""

    def refusal(self, text: str, kind: str) -> str | None:
        if text in self.codes:
            return None
        if text in self.MISSING:
            return f"{kind} id {text!r} would be read as missing"
        if text in self.RESERVED:
            return f"{kind} id {text!r} is RecBole's padding token"
        if any(c.isspace() or c in "\"'" for c in text):
            return f"{kind} id has whitespace or a quote in it"
        return None

    def code(self, text: str) -> int:
        return self.codes.setdefault(text, len(self.codes) + 1)

    def written(self, text: str) -> str:
        return text


#: ``--ids`` choices: how the importers read user and item ids.
ID_TYPES = {kind.name: kind for kind in (IntegerIds, TokenIds)}


def id_type(value: str):
    """The id reader class for ``ids``; a clear error naming the choices otherwise."""
    if value not in ID_TYPES:
        raise ConfigError("ids", value, tuple(ID_TYPES))
    return ID_TYPES[value]


def _flush_blanks(blanks: list[int], label: str, report: Report) -> None:
    for lineno in blanks:
        report.add(label, lineno, "empty line")
    blanks.clear()


def scan_pairs(path: str, label: str, report: Report, key_name: str, value_name: str,
                rsplit: bool, on_row) -> int:
    """Parse a two-column ``key,value`` file (a map or item-cate file), streaming.

    ``rsplit``: the key is free text up to the last comma (a map file's original id); otherwise
    both are non-negative integers. ``on_row(key, value, lineno)`` returns an error text or None.
    """
    rows = 0
    blanks: list[int] = []
    for lineno, line in enumerate(text_lines(path), 1):
        if not line.strip():
            blanks.append(lineno)
            continue
        if blanks:
            _flush_blanks(blanks, label, report)
        parts = line.rstrip("\r\n").rsplit(",", 1) if rsplit else line.split(",")
        if len(parts) != 2:
            report.add(label, lineno, f"expected 2 fields ({key_name},{value_name}), got {len(parts)}",
                       line.rstrip("\r\n"))
            continue
        key, value = parts[0].strip(), parts[1].strip()
        if not key or not value.isdecimal() or (not rsplit and not key.isdecimal()):
            report.add(label, lineno, f"{key_name} must be {'non-empty' if rsplit else 'a non-negative integer'}"
                       f" and {value_name} a non-negative integer", line.rstrip("\r\n"))
            continue
        error = on_row(key, int(value), lineno)
        if error:
            report.add(label, lineno, error, line.rstrip("\r\n"))
            continue
        rows += 1
    return rows
