"""Import a plain interactions CSV: columns found by header name or by position.

The format, validation and output files are described in :mod:`recbole_croloss.data.importer`.
"""
from __future__ import annotations

import os
import time

import numpy as np

from ..errors import ConfigError
from ..io import AtomicOutputs
from . import import_parsing as parsing
from .import_parsing import (INTER_HEADER, IdTable, MalformedInputError, Report, check_on_error, check_out,
                             id_type, previous_outputs, scan_inter)


def _first_fields(path: str, sep: str) -> tuple[int, list[str]]:
    """(1-based line number, fields) of the first non-empty line."""
    with open(path, encoding="utf-8-sig", errors="replace", newline=None) as handle:  # a BOM is not data
        for lineno, line in enumerate(handle, 1):
            if line.strip():
                return lineno, line.rstrip("\r\n").split(sep)
    raise MalformedInputError(f"{path} has no data")


def _header_index(path: str, names: list[str], key: str, value: str, sep: str) -> int:
    if value not in names:
        # One column holding another separator: the file is most likely separated by that one.
        others = [s for s in ("\t", ",", ";", "|") if s != sep and len(names) == 1 and s in names[0]]
        hint = (f"; the header has one column with {others[0]!r} in it: give --sep {others[0]!r}"
                if others else "")
        raise ConfigError(key, value, f"a column of the header of {os.path.basename(path)} "
                          f"(choose one of: {', '.join(names)}; or --no-header){hint}")
    return names.index(value)


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
    """(user index, item index, time index or None, time source) from the header's names."""
    names = [f.strip().strip('"') for f in fields]
    ui = _header_index(path, names, "user_col", "user_id" if user_col is None else str(user_col), sep)
    ii = _header_index(path, names, "item_col", "item_id" if item_col is None else str(item_col), sep)
    if time_col.lower() == "none":
        ti = None
    elif time_col == "auto":
        ti = names.index("timestamp") if "timestamp" in names else None
    else:
        ti = _header_index(path, names, "time_col", time_col, sep)
    return ui, ii, ti, (names[ti] if ti is not None else "line order")


def _positional_columns(ncols: int, user_col, item_col, time_col: str):
    """(user index, item index, time index or None, time source) from 0-based positions."""
    ui = _column_position(ncols, "user_col", user_col, 0)
    ii = _column_position(ncols, "item_col", item_col, 1)
    if time_col.lower() == "none":
        ti = None
    elif time_col == "auto":
        ti = 2 if ncols > 2 else None
    else:
        ti = _column_position(ncols, "time_col", time_col, 2)
    return ui, ii, ti, (f"column {ti}" if ti is not None else "line order")


def _resolve_columns(path: str, sep: str, header: bool, user_col, item_col, time_col):
    """(ncols, user index, item index, time index or None, first data line, time source)."""
    lineno, fields = _first_fields(path, sep)
    ncols = len(fields)
    time_col = "auto" if time_col is None else str(time_col)
    if header:
        ui, ii, ti, time_source = _header_columns(path, fields, user_col, item_col, time_col, sep)
        return ncols, ui, ii, ti, lineno + 1, time_source
    ui, ii, ti, time_source = _positional_columns(ncols, user_col, item_col, time_col)
    return ncols, ui, ii, ti, lineno, time_source


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
    ``format, source, columns, ids, time_source, rows, users, items, malformed, on_error,
    outputs, elapsed_seconds``.
    Raises :class:`MalformedInputError` on malformed lines with ``on_error="fail"`` (nothing
    written) and :class:`~recbole_croloss.errors.ConfigError` for a column that does not exist.
    """
    _check_arguments(src, sep, on_error, ids)
    check_out(out)
    start = time.perf_counter()
    ncols, ui, ii, ti, first_line, time_source = _resolve_columns(src, sep, header, user_col, item_col, time_col)
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
            "ids": ids, "time_source": time_source, "rows": rows, "users": len(writer.users), "items": len(writer.items),
            "malformed": report.as_dict(), "on_error": on_error,
            "outputs": [f"{name}.inter", f"{name}.import.json"], "folder": outputs.folder,
        }
        if report.total and on_error == "fail":
            ids_hint = user_ids.hint() or item_ids.hint()
            hint_line = f"\n{ids_hint}" if ids_hint else ""
            raise MalformedInputError(f"{report.text()}{hint_line}\non_error=fail: nothing written "
                                      f"(use --on-error skip to leave these lines out)", summary)
        if rows == 0:  # a dataset RecBole refuses: a header and no interactions
            why = " (every line was left out)" if report.total else ""
            raise MalformedInputError(f"{src} has no interaction to import{why}; nothing written", summary)
        summary["elapsed_seconds"] = round(time.perf_counter() - start, 3)
        # An earlier import's .user (ComiRec's split) or .item would be read with the new .inter.
        stale = tuple(s for s in ("user", "item") if f"{name}.{s}" in previous_outputs(outputs))
        outputs.finish("import.json", summary, remove_stale=stale)
        return summary
