"""Import a plain interactions CSV: columns found by header name or by position.

The format, validation and output files are described in :mod:`recbole_croloss.data.importer`.
"""
from __future__ import annotations

import os
import re
import time

import numpy as np

from ..errors import ConfigError
from ..io import AtomicOutputs
from . import import_parsing as parsing
from .import_parsing import (INTER_HEADER, IdTable, MalformedInputError, Report, check_on_error, check_out,
                             id_type, scan_inter)


def _first_fields(path: str, sep: str) -> tuple[int, list[str]]:
    """(1-based line number, fields) of the first non-empty line."""
    with open(path, encoding="utf-8-sig", errors="replace", newline=None) as handle:  # a BOM is not data
        for lineno, line in enumerate(handle, 1):
            if line.strip():
                return lineno, line.rstrip("\r\n").split(sep)
    raise MalformedInputError(f"{path} has no data")


#: Column names ``auto`` recognises, in order of preference; compared without case, ``_``, ``-``,
#: spaces and a RecBole ``:type`` suffix (``userId``, ``user_id`` and ``user_id:token`` are one).
RECOGNISED = {
    "user_col": ("user_id", "userId", "user", "uid", "reviewerID", "customer_id", "visitor_id", "member_id"),
    "item_col": ("item_id", "itemId", "item", "iid", "movieId", "asin", "product_id", "business_id", "book_id",
                 "track_id", "song_id", "video_id", "article_id"),
    "time_col": ("timestamp", "time", "ts", "datetime", "unixReviewTime", "unix_time", "event_time", "date"),
}
#: Words of a column name (split at ``_``, ``-``, spaces and camelCase) that make it look like a
#: time when ``auto`` recognises no time column: ``event_date``, ``createdAt``, ``review_ts``;
#: not ``is_updated`` or ``weekday``, whose words are other words.
TIME_LIKE = frozenset({"time", "date", "datetime", "timestamp", "stamp", "ts", "epoch", "created", "day"})


def _words(name: str) -> set[str]:
    """``created_atTime:float`` -> {created, at, time}."""
    return {w.lower() for w in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", name.split(":", 1)[0])}


def _canonical(name: str) -> str:
    return "".join(c for c in name.split(":", 1)[0].lower() if c not in "_- ")


def _recognised(names: list[str], key: str) -> int | None:
    """The index of the header's column ``auto`` takes for ``key`` (the most preferred name)."""
    canonical = [_canonical(n) for n in names]
    for wanted in RECOGNISED[key]:
        if _canonical(wanted) in canonical:
            return canonical.index(_canonical(wanted))
    return None


def _check_separator(path: str, names: list[str], sep: str) -> None:
    """One column holding another separator: the file is most likely separated by that one."""
    others = [s for s in ("\t", ",", ";", "|") if s != sep and len(names) == 1 and s in names[0]]
    if others:
        raise ConfigError("sep", sep, f"the separator of {os.path.basename(path)}: its header has one column "
                          f"with {others[0]!r} in it ({names[0]!r}): give --sep {others[0]!r}")


def _header_index(path: str, names: list[str], key: str, value) -> int:
    """The index of ``key``'s column: the one named ``value``, or, for ``None``/``auto``, the one
    whose name ``auto`` recognises."""
    choose = f"choose one of: {', '.join(names)}; or --no-header"
    if value is None or value == "auto":
        index = _recognised(names, key)
        if index is None:
            flag = "--" + key.replace("_", "-")
            raise ConfigError(key, "auto", f"{os.path.basename(path)}'s header has no column named like one "
                              f"({', '.join(RECOGNISED[key])}); give {flag} NAME ({choose})")
        return index
    if value not in names:
        raise ConfigError(key, value, f"a column of the header of {os.path.basename(path)} ({choose})")
    return names.index(value)


def _auto_time_column(path: str, names: list[str], taken: tuple[int, int]) -> int | None:
    """The time column ``--time-col auto`` takes; ``None`` (the line order) only when no column
    looks like a time: taking the line order of a file that has one would order every user's
    sequence by line, silently."""
    index = _recognised([n if i not in taken else "" for i, n in enumerate(names)], "time_col")
    if index is not None:
        return index
    looks = [n for i, n in enumerate(names) if i not in taken and _words(n) & TIME_LIKE]
    if looks:
        raise ConfigError("time_col", "auto", f"a time column named like one of: {', '.join(RECOGNISED['time_col'])}; "
                          f"{os.path.basename(path)}'s header has {', '.join(looks)}, which looks like a time: "
                          f"give --time-col {looks[0]} (or --time-col none to take the line order)")
    return None


def _column_position(ncols: int, key: str, value, default: int) -> int:
    value = default if value is None else value
    try:
        pos = int(value)
    except (TypeError, ValueError):
        raise ConfigError(key, value, f"a 0-based column position below {ncols} with --no-header") from None
    if not 0 <= pos < ncols:
        raise ConfigError(key, value,
                          f"a 0-based column position below {ncols} (the first line has {ncols} fields)")
    return pos


def _header_columns(path: str, fields: list[str], user_col, item_col, time_col: str, sep: str):
    """(user index, item index, time index or None, column names) from the header's names."""
    names = [f.strip().strip('"') for f in fields]
    _check_separator(path, names, sep)
    ui = _header_index(path, names, "user_col", user_col)
    ii = _header_index(path, names, "item_col", item_col)
    if time_col.lower() == "none":
        ti = None
    elif time_col == "auto":
        ti = _auto_time_column(path, names, (ui, ii))
    else:
        ti = _header_index(path, names, "time_col", time_col)
    return ui, ii, ti, (names[ui], names[ii], names[ti] if ti is not None else None)


def _positional_columns(ncols: int, user_col, item_col, time_col: str):
    """(user index, item index, time index or None, column names) from 0-based positions."""
    ui = _column_position(ncols, "user_col", None if user_col == "auto" else user_col, 0)
    ii = _column_position(ncols, "item_col", None if item_col == "auto" else item_col, 1)
    if time_col.lower() == "none":
        ti = None
    elif time_col == "auto":
        if ncols > 3:  # user, item, rating, timestamp is as common as user, item, timestamp, rating
            raise ConfigError("time_col", "auto", f"--no-header with {ncols} columns: which one is the time "
                              "cannot be told; give --time-col POSITION (0-based) or --time-col none")
        ti = 2 if ncols == 3 else None
    else:
        ti = _column_position(ncols, "time_col", time_col, 2)
    return ui, ii, ti, (f"column {ui}", f"column {ii}", f"column {ti}" if ti is not None else None)


def _resolve_columns(path: str, sep: str, header: bool, user_col, item_col, time_col):
    """(ncols, user index, item index, time index or None, first data line, column names)."""
    lineno, fields = _first_fields(path, sep)
    ncols = len(fields)
    time_col = "auto" if time_col is None else str(time_col)
    if header:
        ui, ii, ti, used = _header_columns(path, fields, user_col, item_col, time_col, sep)
        return ncols, ui, ii, ti, lineno + 1, used
    ui, ii, ti, used = _positional_columns(ncols, user_col, item_col, time_col)
    return ncols, ui, ii, ti, lineno, used


class _CsvWriter:
    """Takes the blocks of the CSV: counts users and items, and writes the rows unless a
    malformed line has already failed the import."""

    def __init__(self, inter, report: Report, on_error: str):
        self.users, self.items = IdTable(), IdTable()
        self.inter, self.report, self.on_error = inter, report, on_error

    def on_block(self, u: np.ndarray, i: np.ndarray, lines: np.ndarray, text: str) -> None:
        self.users.put_new(u, np.ones(len(u), np.int64))
        self.items.put_new(i, np.ones(len(i), np.int64))
        if self.report.total == 0 or self.on_error == "skip":
            parsing.write_chunk(self.inter, text)


def _check_distinct(ui: int, ii: int, ti: int | None, user_col, item_col, time_col) -> None:
    """The user, item and time columns are three columns (two without a time)."""
    chosen = [("user_col", ui, user_col), ("item_col", ii, item_col), ("time_col", ti, time_col)]
    for later, (key, index, value) in enumerate(chosen[1:], start=1):
        earlier = [k for k, i, _ in chosen[:later] if i == index and index is not None]
        if earlier:
            raise ConfigError(key, value if value not in (None, "auto") else index,
                              f"user, item and time must be different columns; column {index} is "
                              f"{earlier[0]} too")


def _check_arguments(src: str, sep: str, on_error: str, ids: str) -> None:
    check_on_error(on_error)
    id_type(ids)
    if not isinstance(sep, str) or len(sep) != 1 or sep in "\r\n":
        raise ConfigError("sep", sep, "a single character, e.g. ',' or '\\t'")
    if not os.path.isfile(src):
        raise FileNotFoundError(f"--src {src!r} is not a file")


def import_csv(src: str, name: str, out: str, sep: str = ",", user_col=None, item_col=None,
               time_col="auto", header: bool = True, on_error: str = "fail", ids: str = "int") -> dict:
    """Import a plain interactions CSV (see :mod:`recbole_croloss.data.importer`) as ``out/name/name.inter``.

    ``ids``: ``"int"`` (ids are non-negative integers, anything else is a malformed line) or
    ``"token"`` (any token without whitespace or quotes, kept as it is: the dataset's raw ids,
    as the recommend CLI takes them). Returns the summary (also written as ``NAME.import.json``):
    ``format, source, columns, column_names, ids, time_source, rows, users, items, malformed, on_error,
    outputs, elapsed_seconds``.
    Raises :class:`MalformedInputError` on malformed lines with ``on_error="fail"`` (nothing
    written) and :class:`~recbole_croloss.errors.ConfigError` for a column that does not exist.
    """
    _check_arguments(src, sep, on_error, ids)
    check_out(out)
    start = time.perf_counter()
    ncols, ui, ii, ti, first_line, used = _resolve_columns(src, sep, header, user_col, item_col, time_col)
    time_source = used[2] if used[2] is not None else "line order"
    _check_distinct(ui, ii, ti, user_col, item_col, time_col)
    report = Report()
    with AtomicOutputs(out, name) as outputs:
        writer = _CsvWriter(outputs.open("inter", INTER_HEADER), report, on_error)
        reader = id_type(ids)
        user_ids, item_ids = reader(), reader()
        rows = scan_inter(src, os.path.basename(src), sep, ncols, ui, ii, ti, first_line, report, writer.on_block,
                          user_ids=user_ids, item_ids=item_ids)
        summary = {
            "format": "csv", "source": {"path": os.path.abspath(src), "bytes": os.path.getsize(src), "rows": rows},
            "columns": {"fields": ncols, "user": ui, "item": ii, "time": ti, "header": header, "sep": sep},
            "column_names": dict(zip(("user", "item", "time"), used)),
            "ids": ids, "time_source": time_source, "rows": rows, "users": len(writer.users), "items": len(writer.items),
            "malformed": report.as_dict(), "on_error": on_error,
            "outputs": [f"{name}.inter", f"{name}.import.json"], "folder": outputs.folder,
        }
        return parsing.commit_interactions(outputs, summary, report, on_error, rows, src,
                                           user_ids.hint() or item_ids.hint(), start)
