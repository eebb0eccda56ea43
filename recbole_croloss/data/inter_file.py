"""A dataset's ``.inter`` file, checked before RecBole loads it.

RecBole reads an atomic file as tab-separated columns named ``name:type`` in its first line.
What goes wrong there surfaces late and unclearly (a pandas traceback, or a wrong item read
silently from a truncated line), so :func:`read_inter_file` checks, before any data is loaded:

- the header: a separator RecBole will split on (``field_separator``), every column
  ``name:type`` with a RecBole type, the user and item fields present;
- the first data lines (up to :data:`CHECKED_LINES`) and the last one: the header's number of
  columns, numbers in ``float`` columns; a last line cut short (no newline and too few columns)
  is named with its line number;
- at least one interaction.

The time field: the sequential models order each user's interactions by it, but RecBole's
default ``load_col`` for a dataset without a YAML of its own loads only the user and item
columns. :meth:`InterFile.load_col` adds the time field when the file has one.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import DatasetFileError

#: Column types RecBole 1.2.1 reads.
RECBOLE_TYPES = ("token", "token_seq", "float", "float_seq")
#: Data lines checked from the top of the file (the last line is always checked too).
CHECKED_LINES = 1000
_CUT = "; the file ends without a newline there: it looks cut short"


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
        header = _decode(fh.readline(), path, 1)
        fields = _header_fields(header, separator, path, config)
        lines = 1
        for lines, raw in enumerate(fh, start=2):
            _check_row(_decode(raw, path, lines), separator, fields, path, lines, raw.endswith(b"\n"))
            if lines > CHECKED_LINES:
                break
    if lines == 1:
        raise DatasetFileError(f"{path} has a header but no interactions")
    _check_last_line(path, separator, fields)
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
        fields[name] = kind
    for key in ("USER_ID_FIELD", "ITEM_ID_FIELD"):
        if config[key] not in fields:
            raise DatasetFileError(f"{path}, line 1: no column {config[key]!r} ({key}); the header "
                                   f"names {', '.join(fields)}")
    return fields


def _check_row(line: str, separator: str, fields: dict, path: str, number: int, complete: bool) -> None:
    values = line.rstrip("\r\n").split(separator)
    if len(values) != len(fields):
        raise DatasetFileError(f"{path}, line {number}: {len(values)} columns, but the header has "
                               f"{len(fields)} ({', '.join(fields)}){_CUT if not complete else ''}")
    for (name, kind), value in zip(fields.items(), values):
        if kind == "float" and value.strip():
            try:
                float(value)
            except ValueError:
                raise DatasetFileError(f"{path}, line {number}: {name} = {value!r} is not a number "
                                       f"(the header declares {name}:float)") from None


def _check_last_line(path: str, separator: str, fields: dict) -> None:
    """The last line, read from the end (the file may be far larger than the lines checked)."""
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        fh.seek(max(0, size - 65536))
        tail = fh.read()
    if tail.endswith(b"\n"):
        tail = tail[:-1]
        complete = True
    else:
        complete = False
    last = tail.rsplit(b"\n", 1)[-1].decode("utf-8", errors="replace")
    columns = len(last.rstrip("\r").split(separator))
    if columns != len(fields):
        with open(path, "rb") as fh:
            number = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b"")) + (not complete)
        raise DatasetFileError(f"{path}, line {number}: {columns} columns, but the header has "
                               f"{len(fields)}{_CUT if not complete else ''}")
