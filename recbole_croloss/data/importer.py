"""Import interaction data into RecBole atomic files, streaming, with every bad line reported.

Usage::

    python -m recbole_croloss.data.importer --format comirec --src data/book_data --name amazon-books --out dataset
    python -m recbole_croloss.data.importer --format csv --src ratings.csv --name mydata --out dataset \\
        [--sep ,] [--user-col user_id] [--item-col item_id] [--time-col timestamp|none] [--no-header]
    (both: [--on-error fail|skip]; exit code 0 on success, 2 on bad input with the report on stderr)

Output, in ``OUT/NAME/`` (tab-separated, a ``name:type`` header, as RecBole reads them):

- ``NAME.inter``: ``user_id:token  item_id:token  timestamp:float``, one row per input row, in
  input order (ComiRec: the train, then valid, then test file).
- ``NAME.user`` (ComiRec only): ``user_id:token  comirec_split:token`` with split ``train``,
  ``valid`` or ``test``, one row per user, by user id.
- ``NAME.item`` (ComiRec, when ``PREFIX_item_cate.txt`` exists): ``item_id:token  cate_id:token``.
- ``NAME.import.json``: the summary returned by :func:`import_comirec` / :func:`import_csv`
  (source files with sizes and row counts, malformed lines, users per split, elapsed seconds).

Input formats:

- ComiRec (github.com/THUDM/ComiRec, ``data/book_data/``, ``data/taobao_data/``):
  ``PREFIX_train.txt``, ``PREFIX_valid.txt``, ``PREFIX_test.txt``, each line
  ``user_id,item_id,timestamp`` (ComiRec's preprocessing maps users to 0..n-1, items to 1..m,
  and writes each user's position in its sequence as the timestamp). ComiRec splits *users*
  8:1:1, so a user lies in exactly one file; a user found in two files is an error (both files
  and line numbers named), whatever ``on_error`` says: the split would otherwise be a guess.
  Optional ``PREFIX_user_map.txt`` / ``PREFIX_item_map.txt`` (``original_id,mapped_id``) are
  validated (well-formed, mapped ids unique) and every id of the interactions is checked to be
  mapped; ComiRec's ids are kept as the tokens. Optional ``PREFIX_item_cate.txt``
  (``item_id,cate_id``) becomes ``NAME.item``. PREFIX defaults to the one prefix whose three
  files are in SRC (``book``, ``taobao``).
- CSV: one interaction per line, ``--sep`` separated (no quoting), user and item ids
  non-negative integers, the timestamp any finite number. With a header (default) columns are
  found by name; with ``--no-header`` ``--user-col``/``--item-col``/``--time-col`` are 0-based
  positions (default 0, 1, 2). ``--time-col`` default ``auto``: the ``timestamp`` column (header)
  or the third column (no header) when present, else the line order; ``none``: the line order.
  With the line order, the timestamp is the row's 1-based line number in the file.

Validation: a malformed line (wrong number of fields, an id that is not a non-negative integer,
a timestamp that is not a finite number, an empty line before the last data line) is counted and
reported with file name and line number (the first 10 shown, then the total). Trailing empty
lines are not data and are ignored. ``on_error="fail"`` (default): raise
:class:`MalformedInputError` (CLI: exit code 2) and write nothing. ``on_error="skip"``: the line is
left out of the output and reported in the summary and in ``NAME.import.json``.

Writes are atomic: every output is written to a temporary file in ``OUT/NAME/``, fsynced and
moved into place with ``os.replace`` only after the whole input was read without a fatal error
(``NAME.import.json`` last); on any failure the temporary files are removed, and a folder the
import created is removed again, so the old outputs, if any, stay intact.

Memory: the input is read line by line and written as it goes, in blocks of
:data:`BLOCK_LINES` lines; what is held is one int64 per user (the split and the first line
number, packed) and one int64 per item id (seen), in arrays indexed by id up to the largest id.
For Taobao (976,779 users, 1,708,530 items): 8 B x 976,779 = 7.8 MB of user map and 13.7 MB of
item table (twice as much during a doubling of the array), plus the map files' tables when
present (8 B per mapped id), plus one block of lines: well under 100 MB for 85M rows.
Ids of 2**26 and above (not ComiRec's) are held in a dict instead (about 100 B each).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np

from ..errors import ConfigError
from ..io import AtomicOutputs

#: Lines parsed before their rows are checked (vectorised) and written.
BLOCK_LINES = 1 << 16
#: Malformed lines shown in full in messages and in NAME.import.json.
MAX_SHOWN = 10
ON_ERROR = ("fail", "skip")
SPLITS = ("train", "valid", "test")  # ComiRec's split files; codes 1, 2, 3 in the user map
INTER_HEADER = "user_id:token\titem_id:token\ttimestamp:float\n"
USER_HEADER = "user_id:token\tcomirec_split:token\n"
ITEM_HEADER = "item_id:token\tcate_id:token\n"


class MalformedInputError(ValueError):
    """The input has malformed lines (``on_error="fail"``) or is inconsistent (a user in two
    split files, ids missing from a map file). ``summary`` holds the full report."""

    def __init__(self, message: str, summary: dict | None = None):
        super().__init__(message)
        self.summary = summary or {}


# ---------------------------------------------------------------------------------------------
# bookkeeping


class _IdTable:
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


class _Report:
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


def _write_chunk(handle, text: str) -> None:
    """Write one block of formatted rows (one place, so tests can make a write fail)."""
    handle.write(text)


def _check_on_error(on_error: str) -> None:
    if on_error not in ON_ERROR:
        raise ConfigError("on_error", on_error, ON_ERROR)


def _previous_outputs(outputs: AtomicOutputs) -> list[str]:
    try:
        with open(outputs.path("import.json"), encoding="utf-8") as f:
            return list(json.load(f).get("outputs", []))
    except (OSError, ValueError, AttributeError):
        return []


# ---------------------------------------------------------------------------------------------
# the line scanner


def _scan_inter(path: str, label: str, sep: str, ncols: int, ui: int, ii: int, ti: int | None,
                first_line: int, report: _Report, on_block) -> int:
    """Parse one interactions file from line ``first_line`` on; returns the rows accepted.

    Every ``BLOCK_LINES`` lines, ``on_block(users, items, lines, text)`` receives the accepted
    rows as int64 arrays (user id, item id, 1-based line number) and their formatted ``.inter``
    text. Malformed lines go to ``report``; empty lines count as malformed only when a data line
    follows them.
    """
    users, items, lines, text = [], [], [], []
    blanks: list[int] = []
    rows = 0
    with open(path, encoding="utf-8", errors="replace", newline=None) as handle:
        for lineno, line in enumerate(handle, 1):
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
            if not (us.isdecimal() and its.isdecimal()):
                bad = "user" if not us.isdecimal() else "item"
                report.add(label, lineno, f"{bad} id is not a non-negative integer", line.rstrip("\r\n"))
                continue
            if ti is None:
                ts = str(lineno)
            else:
                ts = parts[ti].strip()
                try:
                    ok = math.isfinite(float(ts)) and "_" not in ts
                except ValueError:
                    ok = False
                if not ok:
                    report.add(label, lineno, "timestamp is not a finite number", line.rstrip("\r\n"))
                    continue
            u, i = int(us), int(its)
            users.append(u)
            items.append(i)
            lines.append(lineno)
            text.append(f"{u}\t{i}\t{ts}\n")
            rows += 1
            if len(text) >= BLOCK_LINES:
                on_block(np.array(users, np.int64), np.array(items, np.int64), np.array(lines, np.int64),
                         "".join(text))
                users, items, lines, text = [], [], [], []
    if text:
        on_block(np.array(users, np.int64), np.array(items, np.int64), np.array(lines, np.int64), "".join(text))
    return rows


def _flush_blanks(blanks: list[int], label: str, report: _Report) -> None:
    for lineno in blanks:
        report.add(label, lineno, "empty line")
    blanks.clear()


def _scan_pairs(path: str, label: str, report: _Report, key_name: str, value_name: str,
                rsplit: bool, on_row) -> int:
    """Parse a two-column ``key,value`` file (a map or item-cate file), streaming.

    ``rsplit``: the key is free text up to the last comma (a map file's original id); otherwise
    both are non-negative integers. ``on_row(key, value, lineno)`` returns an error text or None.
    """
    rows = 0
    blanks: list[int] = []
    with open(path, encoding="utf-8", errors="replace", newline=None) as handle:
        for lineno, line in enumerate(handle, 1):
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


def _load_map(path: str, label: str, report: _Report) -> tuple[_IdTable, int]:
    """A map file's mapped ids (-> first line number), each mapped id at most once."""
    table = _IdTable()
    pending_ids: list[int] = []
    pending_lines: list[int] = []
    seen_in_block: dict[int, int] = {}

    def flush():
        if pending_ids:
            table.put_new(np.array(pending_ids, np.int64), np.array(pending_lines, np.int64))
            pending_ids.clear(), pending_lines.clear(), seen_in_block.clear()

    def on_row(key, value, lineno):
        previous = seen_in_block.get(value) or int(table.get(np.array([value], np.int64))[0])
        if previous:
            return f"mapped id {value} already mapped at line {previous}"
        seen_in_block[value] = lineno
        pending_ids.append(value)
        pending_lines.append(lineno)
        if len(pending_ids) >= BLOCK_LINES:
            flush()
        return None

    rows = _scan_pairs(path, label, report, "original_id", "mapped_id", True, on_row)
    flush()
    return table, rows


# ---------------------------------------------------------------------------------------------
# ComiRec


def find_prefix(src: str) -> str:
    """The one PREFIX for which ``PREFIX_train.txt``, ``_valid.txt`` and ``_test.txt`` are in src."""
    if not os.path.isdir(src):
        raise FileNotFoundError(f"--src {src!r} is not a folder (ComiRec's data/book_data/ or data/taobao_data/)")
    names = set(os.listdir(src))
    candidates = sorted(n[: -len("_train.txt")] for n in names if n.endswith("_train.txt"))
    complete = [p for p in candidates if f"{p}_valid.txt" in names and f"{p}_test.txt" in names]
    if len(complete) == 1:
        return complete[0]
    if not complete:
        raise ConfigError("prefix", None, f"no PREFIX_train.txt, PREFIX_valid.txt and PREFIX_test.txt "
                          f"found together in {src}"
                          + (f" (incomplete: {', '.join(candidates)})" if candidates else ""))
    raise ConfigError("prefix", None, f"several ComiRec datasets in {src}; pass --prefix, choose one of: "
                      + ", ".join(complete))


def import_comirec(src: str, name: str, out: str, prefix: str | None = None, on_error: str = "fail") -> dict:
    """Import ComiRec's preprocessed data (see the module docstring) into ``out/name/``.

    Returns the summary (also written as ``NAME.import.json``)::

        {"format": "comirec", "source": {...file: {"path", "bytes", "rows"}}, "rows": int,
         "users": int, "items": int, "users_per_split": {"train": n, "valid": n, "test": n},
         "malformed": {"total", "per_file", "first": [{"file", "line", "reason", "text"}]},
         "maps": {...}, "on_error": str, "outputs": [file names], "elapsed_seconds": float}

    Raises :class:`MalformedInputError` on malformed lines with ``on_error="fail"``, on a user in
    two split files, and on interaction ids missing from a map file (``fail``; ``skip`` keeps
    those rows and reports the count); nothing is written then.
    """
    _check_on_error(on_error)
    start = time.perf_counter()
    prefix = prefix if prefix is not None else find_prefix(src)
    files = {split: os.path.join(src, f"{prefix}_{split}.txt") for split in SPLITS}
    for split, path in files.items():
        if not os.path.isfile(path):
            raise FileNotFoundError(f"ComiRec {split} file not found: {path}")
    optional = {kind: os.path.join(src, f"{prefix}_{kind}.txt") for kind in ("user_map", "item_map", "item_cate")}
    optional = {k: p for k, p in optional.items() if os.path.isfile(p)}

    report = _Report()
    with AtomicOutputs(out, name) as outputs:
        maps, map_tables = {}, {}
        for kind in ("user_map", "item_map"):
            if kind in optional:
                table, rows = _load_map(optional[kind], os.path.basename(optional[kind]), report)
                map_tables[kind] = table
                maps[kind] = {"path": os.path.abspath(optional[kind]), "rows": rows}

        users, items = _IdTable(), _IdTable()
        inter = outputs.open("inter", INTER_HEADER)
        source = {}
        labels = {code: os.path.basename(files[split]) for code, split in enumerate(SPLITS, 1)}
        for code, split in enumerate(SPLITS, 1):
            path, label = files[split], labels[code]

            def on_block(u, i, lines, text, code=code, label=label):
                known = users.get(u)
                clash = np.flatnonzero((known != 0) & ((known & 3) != code))
                if len(clash):
                    k = clash[0]
                    other = int(known[k])
                    raise MalformedInputError(
                        f"user {int(u[k])} is in two ComiRec split files: {labels[other & 3]} (line "
                        f"{other >> 2}) and {label} (line {int(lines[k])}); ComiRec splits users, so "
                        f"each user must be in exactly one of {', '.join(labels.values())}")
                users.put_new(u, (lines << 2) | code)
                items.put_new(i, np.ones(len(i), np.int64))
                if report.total == 0 or on_error == "skip":
                    _write_chunk(inter, text)

            rows = _scan_inter(path, label, ",", 3, 0, 1, 2, 1, report, on_block)
            source[split] = {"path": os.path.abspath(path), "bytes": os.path.getsize(path), "rows": rows}

        item_rows = None
        if "item_cate" in optional:
            cate_path = optional["item_cate"]
            cate_label = os.path.basename(cate_path)
            handle = outputs.open("item", ITEM_HEADER)
            cate_items = _IdTable()
            buffer: list[str] = []
            seen_in_block: dict[int, int] = {}

            def flush_cate():
                if seen_in_block:
                    keys = np.fromiter(seen_in_block.keys(), np.int64, len(seen_in_block))
                    cate_items.put_new(keys, np.fromiter(seen_in_block.values(), np.int64, len(seen_in_block)))
                    seen_in_block.clear()
                if buffer and (report.total == 0 or on_error == "skip"):
                    _write_chunk(handle, "".join(buffer))
                buffer.clear()

            def on_cate(key, value, lineno):
                item = int(key)
                previous = seen_in_block.get(item) or int(cate_items.get(np.array([item], np.int64))[0])
                if previous:
                    return f"item {item} already has a category at line {previous}"
                seen_in_block[item] = lineno
                buffer.append(f"{item}\t{value}\n")
                if len(buffer) >= BLOCK_LINES:
                    flush_cate()
                return None

            item_rows = _scan_pairs(cate_path, cate_label, report, "item_id", "cate_id", False, on_cate)
            flush_cate()
            source["item_cate"] = {"path": os.path.abspath(cate_path), "bytes": os.path.getsize(cate_path),
                                   "rows": item_rows}
            cate_ids, _ = cate_items.items()
            item_ids, _ = items.items()
            maps["items_without_category"] = int(len(item_ids) - np.isin(item_ids, cate_ids).sum())

        user_ids, user_vals = users.items()
        item_ids, _ = items.items()
        unmapped = {}
        for kind, ids in (("user_map", user_ids), ("item_map", item_ids)):
            if kind in map_tables:
                missing = ids[map_tables[kind].get(ids) == 0]
                maps[kind]["ids_missing_from_map"] = int(len(missing))
                if len(missing):
                    unmapped[kind] = missing
        split_counts = np.bincount(user_vals & 3, minlength=4)

        user_handle = outputs.open("user", USER_HEADER)
        split_names = np.array(["", *SPLITS])
        for lo in range(0, len(user_ids), 1 << 18):
            ids, vals = user_ids[lo: lo + (1 << 18)], user_vals[lo: lo + (1 << 18)]
            text = "".join(f"{u}\t{s}\n" for u, s in zip(ids.tolist(), split_names[vals & 3].tolist()))
            _write_chunk(user_handle, text)

        produced = ["inter", "user"] + (["item"] if item_rows is not None else [])
        summary = {
            "format": "comirec", "prefix": prefix, "source": source, "maps": maps,
            "rows": int(sum(s["rows"] for k, s in source.items() if k in SPLITS)),
            "users": int(len(user_ids)), "items": int(len(item_ids)),
            "users_per_split": {s: int(split_counts[c]) for c, s in enumerate(SPLITS, 1)},
            "item_rows": item_rows,
            "malformed": report.as_dict(), "on_error": on_error,
            "outputs": [f"{name}.{s}" for s in produced + ["import.json"]],
            "folder": outputs.folder,
        }
        if report.total and on_error == "fail":
            raise MalformedInputError(f"{report.text()}\non_error=fail: nothing written "
                                      f"(use --on-error skip to leave these lines out)", summary)
        if unmapped:
            detail = "; ".join(f"{len(v)} id(s) of the interactions are not in {os.path.basename(optional[k])} "
                               f"(first: {', '.join(str(x) for x in v[:5].tolist())})" for k, v in unmapped.items())
            if on_error == "fail":
                raise MalformedInputError(f"{detail}\non_error=fail: nothing written "
                                          f"(use --on-error skip to keep these rows and report them)", summary)
            summary["warnings"] = [detail]
        summary["elapsed_seconds"] = round(time.perf_counter() - start, 3)
        stale = tuple(s for s in ("item",) if s not in produced and f"{name}.{s}" in _previous_outputs(outputs))
        outputs.finish("import.json", summary, remove_stale=stale)
        return summary


# ---------------------------------------------------------------------------------------------
# CSV


def _resolve_columns(path: str, sep: str, header: bool, user_col, item_col, time_col):
    """(ncols, user index, item index, time index or None, first data line, time source)."""
    first = None
    with open(path, encoding="utf-8", errors="replace", newline=None) as handle:
        for lineno, line in enumerate(handle, 1):
            if line.strip():
                first = (lineno, line.rstrip("\r\n").split(sep))
                break
    if first is None:
        raise MalformedInputError(f"{path} has no data")
    lineno, fields = first
    ncols = len(fields)
    time_col = "auto" if time_col is None else str(time_col)
    if header:
        names = [f.strip().strip('"') for f in fields]

        def index(key, value):
            if value not in names:
                raise ConfigError(key, value, f"a column of the header of {os.path.basename(path)} "
                                  f"(choose one of: {', '.join(names)}; or --no-header)")
            return names.index(value)

        ui = index("user_col", "user_id" if user_col is None else str(user_col))
        ii = index("item_col", "item_id" if item_col is None else str(item_col))
        if time_col.lower() == "none":
            ti = None
        elif time_col == "auto":
            ti = names.index("timestamp") if "timestamp" in names else None
        else:
            ti = index("time_col", time_col)
        return ncols, ui, ii, ti, lineno + 1, (names[ti] if ti is not None else "line order")

    def position(key, value, default):
        value = default if value is None else value
        try:
            pos = int(value)
        except (TypeError, ValueError):
            raise ConfigError(key, value, f"a 0-based column position below {ncols} with --no-header") from None
        if not 0 <= pos < ncols:
            raise ConfigError(key, value,
                              f"a 0-based column position below {ncols} (the first line has {ncols} fields)")
        return pos

    ui = position("user_col", user_col, 0)
    ii = position("item_col", item_col, 1)
    if time_col.lower() == "none":
        ti = None
    elif time_col == "auto":
        ti = 2 if ncols > 2 else None
    else:
        ti = position("time_col", time_col, 2)
    return ncols, ui, ii, ti, lineno, (f"column {ti}" if ti is not None else "line order")


def import_csv(src: str, name: str, out: str, sep: str = ",", user_col=None, item_col=None,
               time_col="auto", header: bool = True, on_error: str = "fail") -> dict:
    """Import a plain interactions CSV (see the module docstring) as ``out/name/name.inter``.

    Returns the summary (also written as ``NAME.import.json``): ``format, source, columns,
    time_source, rows, users, items, malformed, on_error, outputs, elapsed_seconds``.
    Raises :class:`MalformedInputError` on malformed lines with ``on_error="fail"`` (nothing
    written) and :class:`~recbole_croloss.errors.ConfigError` for a column that does not exist.
    """
    _check_on_error(on_error)
    if not isinstance(sep, str) or len(sep) != 1 or sep in "\r\n":
        raise ConfigError("sep", sep, "a single character, e.g. ',' or '\\t'")
    if not os.path.isfile(src):
        raise FileNotFoundError(f"--src {src!r} is not a file")
    start = time.perf_counter()
    ncols, ui, ii, ti, first_line, time_source = _resolve_columns(src, sep, header, user_col, item_col, time_col)
    if len({ui, ii} | ({ti} if ti is not None else set())) != 2 + (ti is not None):
        raise ConfigError("time_col" if ti in (ui, ii) else "item_col", "same column twice",
                          "user, item and time must be different columns")
    report = _Report()
    with AtomicOutputs(out, name) as outputs:
        users, items = _IdTable(), _IdTable()
        inter = outputs.open("inter", INTER_HEADER)
        label = os.path.basename(src)

        def on_block(u, i, lines, text):
            users.put_new(u, np.ones(len(u), np.int64))
            items.put_new(i, np.ones(len(i), np.int64))
            if report.total == 0 or on_error == "skip":
                _write_chunk(inter, text)

        rows = _scan_inter(src, label, sep, ncols, ui, ii, ti, first_line, report, on_block)
        summary = {
            "format": "csv", "source": {"path": os.path.abspath(src), "bytes": os.path.getsize(src), "rows": rows},
            "columns": {"fields": ncols, "user": ui, "item": ii, "time": ti, "header": header, "sep": sep},
            "time_source": time_source, "rows": rows, "users": len(users), "items": len(items),
            "malformed": report.as_dict(), "on_error": on_error,
            "outputs": [f"{name}.inter", f"{name}.import.json"], "folder": outputs.folder,
        }
        if report.total and on_error == "fail":
            raise MalformedInputError(f"{report.text()}\non_error=fail: nothing written "
                                      f"(use --on-error skip to leave these lines out)", summary)
        summary["elapsed_seconds"] = round(time.perf_counter() - start, 3)
        outputs.finish("import.json", summary)
        return summary


# ---------------------------------------------------------------------------------------------
# CLI


def summary_text(summary: dict) -> str:
    lines = [f"imported {summary['rows']:,} interactions of {summary['users']:,} users and "
             f"{summary['items']:,} items into {summary['folder']} in {summary.get('elapsed_seconds', 0):.1f}s"]
    if "users_per_split" in summary:
        per_split = summary["users_per_split"].items()
        lines.append("users per ComiRec split: " + ", ".join(f"{k} {v:,}" for k, v in per_split))
    if "time_source" in summary:
        lines.append(f"timestamp from: {summary['time_source']}")
    if summary["malformed"]["total"]:
        report = _Report()
        report.total, report.per_file, report.shown = (summary["malformed"]["total"],
                                                       summary["malformed"]["per_file"], summary["malformed"]["first"])
        lines.append("left out (on_error=skip): " + report.text())
    lines.extend(f"warning: {w}" for w in summary.get("warnings", []))
    lines.append("wrote: " + ", ".join(summary["outputs"]))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m recbole_croloss.data.importer",
        description="Import interactions into RecBole atomic files (OUT/NAME/NAME.inter ...).")
    parser.add_argument("--format", required=True, choices=("comirec", "csv"))
    parser.add_argument("--src", required=True, help="comirec: the folder with PREFIX_train.txt ...; csv: the file")
    parser.add_argument("--name", required=True, help="dataset name: the folder and file stem written")
    parser.add_argument("--out", required=True, help="RecBole's data_path: OUT/NAME/ is written")
    parser.add_argument("--on-error", default="fail", choices=ON_ERROR)
    parser.add_argument("--prefix", help="comirec: file prefix (default: the one found in --src)")
    parser.add_argument("--sep", default=",", help="csv: field separator (default ,; '\\t' for tab)")
    parser.add_argument("--user-col", help="csv: user column name (header) or 0-based position (default user_id / 0)")
    parser.add_argument("--item-col", help="csv: item column name or position (default item_id / 1)")
    parser.add_argument("--time-col", default="auto",
                        help="csv: time column name or position; auto (timestamp / 2 if present); none: line order")
    parser.add_argument("--header", action=argparse.BooleanOptionalAction, default=True,
                        help="csv: the first line names the columns (default: yes)")
    args = parser.parse_args(argv)
    try:
        if args.format == "comirec":
            summary = import_comirec(args.src, args.name, args.out, prefix=args.prefix, on_error=args.on_error)
        else:
            sep = "\t" if args.sep in ("\\t", "tab") else args.sep
            summary = import_csv(args.src, args.name, args.out, sep=sep, user_col=args.user_col,
                                 item_col=args.item_col, time_col=args.time_col, header=args.header,
                                 on_error=args.on_error)
    except (MalformedInputError, ConfigError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(summary_text(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
