"""A dataset's ``.inter`` file, checked before RecBole loads it.

RecBole reads an atomic file as tab-separated columns named ``name:type`` in its first line.
What goes wrong there surfaces late and unclearly (a pandas traceback, or a wrong item read
silently from a truncated line), so :func:`read_inter_file` checks, before any data is loaded:

- the file: not empty, not a folder;
- the header: a separator RecBole will split on (``field_separator``), every column
  ``name:type`` with a RecBole type and named once, the user and item fields present as
  ``token`` columns (RecBole remaps only tokens to ids), the time field, if any, a ``float``
  column (RecBole would order a ``token`` column by the ids it gives the tokens, in order of
  first appearance, not by time);
- the first data lines (up to :data:`CHECKED_LINES`) and the last one: the header's number of
  columns, numbers in ``float`` columns, a user and an item on every line (RecBole reads an
  empty one as its padding id), a finite time (RecBole fills a missing one with the mean time,
  which moves the interaction within its user's sequence). Empty lines are skipped, as RecBole's
  reader skips them;
- every line, in one pass over the bytes (:func:`_scan`, chunks of whole lines; about 0.4 s
  and 40 MB for a million lines): UTF-8 text (pandas would stop mid-load with a ``UnicodeDecodeError``;
  the first bad byte is named with its line and column), a last line that ends with a newline
  (without one the file looks cut short, and a number cut in the middle would be read as a
  smaller one), and exact duplicate lines, counted by a 64-bit hash of each line (24 bytes a
  line while they are counted, far less than RecBole's loading of the same line): RecBole keeps every copy, so they are a warning (:attr:`InterFile.warnings`) that says
  how to drop them, unless ``rm_dup_inter`` already does;
- at least one interaction.

The time field: the sequential models order each user's interactions by it, but RecBole's
default ``load_col`` for a dataset without a YAML of its own loads only the user and item
columns. :meth:`InterFile.load_col` adds the time field when the file has one.
"""
from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass

import numpy as np

from ..errors import DatasetFileError

#: Column types RecBole 1.2.1 reads.
RECBOLE_TYPES = ("token", "token_seq", "float", "float_seq")
#: Data lines checked from the top of the file (the last line is always checked too).
CHECKED_LINES = 1000
#: Bytes read at a time by the pass over every line (extended to the chunk's last newline).
SCAN_CHUNK = 1 << 20
_CUT = "; the file ends without a newline there: it looks cut short"
_WHY_TYPE = {"token": " (RecBole remaps only token ids)",
             "float": " (RecBole orders each user's interactions by it, a token column by its remapped id, "
                      "not its value)"}


@dataclass(frozen=True)
class InterFile:
    """A checked ``.inter`` file: its path, its columns ``{name: type}`` in file order, and the
    lines a run logs as warnings about its content (duplicate interactions)."""

    path: str
    fields: dict
    warnings: tuple = ()

    def load_col(self, load_col, time_field):
        """RecBole's ``load_col`` with the time field added to the ``inter`` columns when the
        file has one and ``load_col`` leaves it out; ``None`` when nothing changes."""
        if not isinstance(load_col, dict) or time_field not in self.fields:
            return None
        inter = load_col.get("inter")
        if not isinstance(inter, list) or time_field in inter:
            return None
        return {**load_col, "inter": [*inter, time_field]}


def read_inter_file(path: str, config) -> InterFile:
    """Check ``path`` (see the module's docstring); raises :class:`DatasetFileError` naming the
    file, the line and what is wrong. A file checked before with the same settings, unchanged
    since (size and modification time), is not read again: a benchmark grid or a tuning study
    checks one dataset for each of its runs."""
    settings = tuple((key, config[key]) for key in ("field_separator", "USER_ID_FIELD", "ITEM_ID_FIELD",
                                                    "TIME_FIELD"))
    removed = "rm_dup_inter" in config and config["rm_dup_inter"] is not None
    stat = os.stat(path)
    return _read_checked(path, stat.st_size, stat.st_mtime_ns, settings, removed)


@functools.lru_cache(maxsize=8)
def _read_checked(path: str, size: int, mtime: int, settings: tuple, removed: bool) -> InterFile:
    """:func:`read_inter_file` for ``settings`` (``(key, value)`` pairs); ``removed``: RecBole
    drops duplicate interactions itself (``rm_dup_inter``), so they are no warning."""
    config = dict(settings)
    separator = config["field_separator"] or "\t"
    with open(path, "rb") as fh:
        first = fh.readline()
        if not first:
            raise DatasetFileError(f"{path} is empty (0 bytes); its first line must be the header, "
                                   "e.g. user_id:token<TAB>item_id:token<TAB>timestamp:float")
        fields = _header_fields(_decode(first, path, 1), separator, path, config)
        layout = _Layout(path, separator, fields, (config["USER_ID_FIELD"], config["ITEM_ID_FIELD"]),
                         config["TIME_FIELD"] if config["TIME_FIELD"] in fields else None)
        rows = 0
        for number, raw in enumerate(fh, start=2):
            if raw.rstrip(b"\r\n"):  # RecBole's reader skips empty lines
                layout.check_row(_decode(raw, path, number), number, raw.endswith(b"\n"))
                rows += 1
            if rows >= CHECKED_LINES:
                break
    if rows == 0:
        raise DatasetFileError(f"{path} has a header but no interactions")
    scan = _scan(path, len(first))
    _check_last_line(layout, scan)
    return InterFile(path, fields, () if removed else scan.duplicate_warnings(path))


def _decode(raw: bytes, path: str, line: int) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        column = len(raw[:err.start].decode("utf-8")) + 1  # the bytes before the first bad one are text
        raise DatasetFileError(
            f"{path}, line {line}: not UTF-8 text (byte 0x{raw[err.start]:02x} at column {column}); "
            "RecBole reads UTF-8: convert the file from its encoding, e.g. "
            f"iconv -f latin1 -t utf-8 {path} > converted.inter") from None
    if line == 1 and text.startswith("\ufeff"):
        raise DatasetFileError(f"{path}, line 1: the file starts with a byte-order mark, which RecBole "
                               "reads into the first column's name; save it as UTF-8 without BOM")
    return text


def _header_fields(header: str, separator: str, path: str, config) -> dict:
    names = header.rstrip("\r\n").split(separator)
    if len(names) == 1 and separator == "\t":
        for other in (",", ";", " "):
            if other in header:
                raise DatasetFileError(
                    f"{path}, line 1: the columns are separated by {other!r}, but RecBole reads "
                    f"tab-separated atomic files (field_separator); header: {header.strip()!r}")
    fields = {}
    for column in names:
        name, colon, kind = column.partition(":")
        if not colon or kind not in RECBOLE_TYPES:
            raise DatasetFileError(
                f"{path}, line 1: column {column!r} is not 'name:type' with a type of "
                f"{', '.join(RECBOLE_TYPES)} (e.g. user_id:token item_id:token timestamp:float)")
        if name in fields:  # pandas renames the second copy ('name:type.1'), which RecBole cannot type
            raise DatasetFileError(f"{path}, line 1: column {name!r} appears twice in the header; "
                                   "name each column once")
        fields[name] = kind
    for key, kind, required in (("USER_ID_FIELD", "token", True), ("ITEM_ID_FIELD", "token", True),
                                ("TIME_FIELD", "float", False)):
        name = config[key]
        if required and name not in fields:
            raise DatasetFileError(f"{path}, line 1: no column {name!r} ({key}); the header "
                                   f"names {', '.join(fields)}")
        if fields.get(name, kind) != kind:
            raise DatasetFileError(f"{path}, line 1: {name}:{fields[name]} ({key}) must be "
                                   f"{name}:{kind}{_WHY_TYPE[kind]}")
    return fields


@dataclass(frozen=True)
class _Layout:
    """What a data line of ``path`` must hold: ``fields`` in order, a value in each of
    ``required`` (the user and item ids), a finite number in ``time`` (None: no time field)."""

    path: str
    separator: str
    fields: dict
    required: tuple
    time: str | None

    def check_row(self, line: str, number: int, complete: bool) -> None:
        values = line.rstrip("\r\n").split(self.separator)
        where = f"{self.path}, line {number}"
        if len(values) != len(self.fields):
            raise DatasetFileError(f"{where}: {len(values)} columns, but the header has {len(self.fields)} "
                                   f"({', '.join(self.fields)}){_CUT if not complete else ''}")
        row = dict(zip(self.fields, values))
        for name in self.required:
            if not row[name].strip():
                raise DatasetFileError(f"{where}: {name} is empty (RecBole would read it as the padding "
                                       "id, a user or item of no one)")
        for name, kind in self.fields.items():
            if kind == "float" and (row[name].strip() or name == self.time):
                _check_number(row[name], name, where, finite=name == self.time)


def _check_number(value: str, name: str, where: str, finite: bool) -> None:
    if not value.strip():  # only the time field gets here empty
        raise DatasetFileError(f"{where}: {name} is empty (RecBole would fill it with the mean time, "
                               "which moves the interaction within its user's sequence)")
    try:
        number = float(value)
    except ValueError:
        raise DatasetFileError(f"{where}: {name} = {value!r} is not a number (the header declares "
                               f"{name}:float)") from None
    if finite and not math.isfinite(number):  # RecBole fills NaN with the mean time; inf sorts last
        raise DatasetFileError(f"{where}: {name} = {value!r} is not a finite time (each user's "
                               "interactions are ordered by it)")


def _check_last_line(layout: _Layout, scan: "_Scan") -> None:
    """The last non-empty line has the header's columns and ends with a newline: without one,
    its last value may be a number cut in the middle (read as a smaller one, without a word)."""
    number = scan.last_number
    layout.check_row(_decode(scan.last, layout.path, number), number, scan.complete)
    if not scan.complete:
        value = scan.last.rsplit(layout.separator.encode(), 1)[-1].decode("utf-8")
        raise DatasetFileError(
            f"{layout.path}, line {number}: the file ends inside this line, without a newline: it looks "
            f"cut short (its last value {value!r} may be a number cut in the middle); if the line is whole, "
            f"end the file with a newline, e.g. echo >> {layout.path}")


@dataclass
class _Scan:
    """What one pass over every data line found: the last non-empty line (without its line
    end), its number and whether a newline ends it; the hash of every line (empty lines
    included, so that a hash's index gives its line number)."""

    last: bytes = b""
    last_number: int = 0
    complete: bool = True
    hashes: list = None

    def duplicate_warnings(self, path: str) -> tuple[str, ...]:
        """A warning naming how many lines repeat an earlier one exactly, and the first of them."""
        # About 17 bytes a line at the peak (the hashes, a mask, a sorted copy): the scan runs
        # before RecBole loads anything, at any catalogue's size.
        hashes = np.concatenate(self.hashes)
        self.hashes = None
        data = (hashes != _EMPTY[0]) & (hashes != _EMPTY[1])  # RecBole skips empty lines
        ordered = hashes[data]
        ordered.sort()
        same = ordered[1:] == ordered[:-1]
        repeats, interactions = int(same.sum()), len(ordered)
        if repeats == 0:
            return ()
        repeated = np.unique(ordered[1:][same])
        del ordered, same
        at = np.flatnonzero(data & np.isin(hashes, repeated))  # the lines of repeated content, in order
        _, firsts = np.unique(hashes[at], return_index=True)
        later = np.ones(len(at), dtype=bool)
        later[firsts] = False
        first = int(at[later][0]) + 2
        return (f"{path}: {repeats} of its {interactions} interactions repeat an earlier line exactly "
                f"(every column the same; the first at line {first}). RecBole keeps every copy, which "
                f"changes the training data and the metrics; to keep the first of each: "
                f"awk '!seen[$0]++' {path} > deduplicated.inter, then replace the file with it "
                "(or set rm_dup_inter: first, which also drops a user's repeated item at another time)",)


#: The hashes of an empty line, with and without a lone carriage return.
_EMPTY = (hash(b""), hash(b"\r"))


def _scan(path: str, start: int) -> _Scan:
    """Every line of ``path`` after byte ``start`` (the header's end), in chunks of whole lines:
    the first byte that is not UTF-8 raises, naming its line and column."""
    scan, number, hashes = _Scan(), 2, []
    for chunk in _whole_lines(path, start):
        if not chunk.isascii():
            try:
                chunk.decode("utf-8")
            except UnicodeDecodeError as err:
                begin = chunk.rfind(b"\n", 0, err.start) + 1
                end = chunk.find(b"\n", err.start)
                _decode(chunk[begin:len(chunk) if end < 0 else end], path, number + chunk.count(b"\n", 0, begin))
        lines = chunk.replace(b"\r\n", b"\n").split(b"\n")
        complete = lines[-1] == b""
        if complete:
            lines.pop()  # what follows the chunk's last newline
        hashes.append(np.fromiter(map(hash, lines), np.int64, len(lines)))
        for back, line in enumerate(reversed(lines)):
            if line.rstrip(b"\r"):
                scan.last, scan.last_number = line.rstrip(b"\r"), number + len(lines) - 1 - back
                scan.complete = complete or back > 0
                break
        number += len(lines)
    scan.hashes = hashes
    return scan


def _whole_lines(path: str, start: int):
    """The bytes of ``path`` from ``start`` in chunks of about :data:`SCAN_CHUNK` that end at a
    newline (the last chunk: where the file ends)."""
    carry = b""
    with open(path, "rb") as fh:
        fh.seek(start)
        while True:
            block = fh.read(SCAN_CHUNK)
            if not block:
                if carry:
                    yield carry
                return
            data = carry + block if carry else block
            cut = data.rfind(b"\n") + 1
            if cut:
                yield data[:cut]
            carry = data[cut:]
