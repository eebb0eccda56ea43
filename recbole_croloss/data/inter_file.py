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
  which moves the interaction within its user's sequence); a last line cut short (no newline
  and too few columns) is named with its line number. Empty lines are skipped, as RecBole's
  reader skips them;
- at least one interaction.

The time field: the sequential models order each user's interactions by it, but RecBole's
default ``load_col`` for a dataset without a YAML of its own loads only the user and item
columns. :meth:`InterFile.load_col` adds the time field when the file has one.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

from ..errors import DatasetFileError

#: Column types RecBole 1.2.1 reads.
RECBOLE_TYPES = ("token", "token_seq", "float", "float_seq")
#: Data lines checked from the top of the file (the last line is always checked too).
CHECKED_LINES = 1000
_CUT = "; the file ends without a newline there: it looks cut short"
_WHY_TYPE = {"token": " (RecBole remaps only token ids)",
             "float": " (RecBole orders each user's interactions by it, a token column by its remapped id, "
                      "not its value)"}


@dataclass(frozen=True)
class InterFile:
    """A checked ``.inter`` file: its path and its columns ``{name: type}`` in file order."""

    path: str
    fields: dict

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
    file, the line and what is wrong."""
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
    _check_last_line(layout)
    return InterFile(path, fields)


def _decode(raw: bytes, path: str, line: int) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DatasetFileError(f"{path}, line {line}: not UTF-8 text") from None
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

    def count_lines(self) -> int:
        with open(self.path, "rb") as fh:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))


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


def _check_last_line(layout: _Layout) -> None:
    """The last non-empty line, read from the end (the file may be far larger than the lines
    checked)."""
    size = os.path.getsize(layout.path)
    with open(layout.path, "rb") as fh:
        fh.seek(max(0, size - 65536))
        tail = fh.read()
    body = tail.rstrip(b"\r\n")  # without the trailing empty lines, which RecBole skips
    ending = tail[len(body):].count(b"\n")
    if b"\n" not in body:
        return  # one line longer than the window: the first lines were checked
    last = body.rsplit(b"\n", 1)[-1].decode("utf-8", errors="replace")
    try:
        layout.check_row(last, 0, ending > 0)
    except DatasetFileError:  # named with its number: every newline before it, plus one (one more read)
        layout.check_row(last, layout.count_lines() - ending + 1, ending > 0)
