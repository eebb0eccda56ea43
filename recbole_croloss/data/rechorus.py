"""ReChorus's dataset layout: read its split files, import them as RecBole atomic files.

ReChorus (github.com/THUwangcy/ReChorus) keeps a dataset as three files with a header:
``train.csv`` (``user_id  item_id  time``), ``dev.csv`` and ``test.csv`` (the same, plus, in the
CIKM22-era layout, ``neg_items``: the case's fixed negatives as a list, ``[12, 7, 301]``). That
layout is tab-separated; ReChorus's current release writes comma-separated files with CRLF line
ends and no ``neg_items``. Both are read: the separator is the one the header holds (tab, else
comma; or ``sep``), any line ends. Ids are non-negative integers; each user has at most one
validation (dev) and one test case, after its training interactions in time.

:func:`import_rechorus` keeps that split and those negatives exactly:

- ``NAME.inter`` lists every user's training interactions (ordered by time, ties in file order),
  then the dev cases, then the test cases, with ``timestamp`` = the row's position in that order.
  RecBole's leave-one-out split by time (``protocol: loo`` or ``sampled``) then puts exactly the
  dev row in validation and the test row in test; the original times stay in the source files.
- ``dev.csv`` and ``test.csv`` (when the source has ``neg_items``) are written back in ReChorus's
  layout (tab-separated, a header), so ``sampled_negatives_dir: OUT/NAME`` evaluates each case on
  its own negatives, as pointing it at ReChorus's own folder does. Without ``neg_items`` no case
  file is written: ``protocol: sampled`` then draws each case's negatives, and the summary says so.

The files are read whole (ReChorus's datasets have up to a few million rows); malformed lines are
reported like the other importers' (file and line, ``on_error``), and every output is written
atomically (:class:`~recbole_croloss.io.AtomicOutputs`).
"""
from __future__ import annotations

import csv
import os
import time
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..io import AtomicOutputs
from .import_parsing import (INTER_HEADER, MalformedInputError, Report, check_on_error, check_out, note_replaced,
                             previous_outputs, text_lines)

SPLIT_FILES = ("train.csv", "dev.csv", "test.csv")
COLUMNS = ("user_id", "item_id", "time")
NEG_COLUMN = "neg_items"


@dataclass
class RechorusSplit:
    """One split file's accepted rows: ids as the file spells them (RecBole's tokens)."""

    label: str
    users: list[str]
    items: list[str]
    times: list[float]
    lines: list[int]
    negatives: list[list[str]] | None  # per row, when the file has ``neg_items``


@dataclass
class Layout:
    """How one ReChorus file is written: its separator, column names and line ends."""

    sep: str
    columns: list[str]
    line_ends: str  # "LF" or "CRLF"

    def describe(self) -> str:
        return f"{SEPARATOR_NAMES.get(self.sep, repr(self.sep))}-separated, {self.line_ends} line ends"


SEPARATOR_NAMES = {"\t": "tab", ",": "comma"}


def read_layout(path: str, sep: str | None = None) -> Layout:
    """The layout of a ReChorus file from its header line: the separator is ``sep``, or tab when
    the header has one, else comma (ReChorus's CIKM22-era files are tab-separated, its current
    release writes commas). Raises :class:`MalformedInputError` when the file is empty or its
    header lacks one of ``user_id``, ``item_id``, ``time``."""
    with open(path, "rb") as handle:
        first = handle.readline()
        while first and not first.strip():  # blank lines before the header
            first = handle.readline()
    try:
        header = first.decode("utf-8-sig").rstrip("\r\n")
    except UnicodeDecodeError as err:
        raise MalformedInputError(f"{path}: its header is not UTF-8 text (byte 0x{first[err.start]:02x}); "
                                  f"convert the file first, e.g. iconv -f latin1 -t utf-8 {path} > converted") from None
    if not header.strip():
        raise MalformedInputError(f"{path} is empty: ReChorus's {os.path.basename(path)} starts with a header "
                                  f"({', '.join(COLUMNS)}[, {NEG_COLUMN}]) and holds one row per line")
    if sep is None:
        sep = "\t" if "\t" in header else ","
    columns = [c.strip().strip('"') for c in header.split(sep)]
    missing = [c for c in COLUMNS if c not in columns]
    if missing:
        raise MalformedInputError(f"{path}: the header {columns}, read with separator {sep!r}, has no "
                                  f"{', '.join(missing)} column (ReChorus's files: {', '.join(COLUMNS)}"
                                  f"[, {NEG_COLUMN}], separated by tabs or commas)")
    return Layout(sep, columns, "CRLF" if first.endswith(b"\r\n") else "LF")


def read_header(path: str, sep: str | None = None) -> list[str]:
    """The column names of a ReChorus file (see :func:`read_layout`)."""
    return read_layout(path, sep).columns


def parse_neg_items(text: str) -> list[str] | None:
    """``"[12, 7, 301]"`` -> ``["12", "7", "301"]``; ``None`` when it is not such a list."""
    text = text.strip()
    if len(text) < 2 or text[0] != "[" or text[-1] != "]":
        return None
    ids = [part.strip() for part in text[1:-1].split(",")]
    return ids if ids and all(i.isdecimal() for i in ids) else None


def _row_error(fields: list[str], layout: Layout, with_negatives: bool) -> str | None:
    columns = layout.columns
    if len(fields) != len(columns):
        return f"expected {len(columns)} fields separated by {layout.sep!r}, got {len(fields)}"
    row = dict(zip(columns, fields))
    for key in ("user_id", "item_id"):
        if not row[key].strip().isdecimal():
            return f"{key} is not a non-negative integer"
    try:
        if not np.isfinite(float(row["time"])):
            raise ValueError
    except ValueError:
        return "time is not a finite number"
    if with_negatives and parse_neg_items(row[NEG_COLUMN]) is None:
        return f"{NEG_COLUMN} is not a list of item ids such as [12, 7, 301]"
    return None


def read_split(path: str, report: Report, with_negatives: bool, sep: str | None = None) -> RechorusSplit:
    """Every well-formed row of ``path`` (malformed ones go to ``report``). Fields are read as
    CSV fields: a comma-separated file quotes its ``neg_items`` lists (``"[12, 7, 301]"``)."""
    label = os.path.basename(path)
    layout = read_layout(path, sep)
    if with_negatives and NEG_COLUMN not in layout.columns:
        raise MalformedInputError(f"{path}: no {NEG_COLUMN} column, so its cases have no fixed negatives")
    at = {c: layout.columns.index(c) for c in (*COLUMNS, *([NEG_COLUMN] if with_negatives else []))}
    split = RechorusSplit(label, [], [], [], [], [] if with_negatives else None)
    rows = csv.reader(text_lines(path), delimiter=layout.sep)  # strict UTF-8: ids never merge
    for fields in rows:  # up to the header
        if any(f.strip() for f in fields):
            break
    for fields in rows:
        if not any(f.strip() for f in fields):
            continue
        error = _row_error(fields, layout, with_negatives)
        if error:
            report.add(label, rows.line_num, error, layout.sep.join(fields))
            continue
        split.users.append(fields[at["user_id"]].strip())
        split.items.append(fields[at["item_id"]].strip())
        split.times.append(float(fields[at["time"]]))
        split.lines.append(rows.line_num)
        if with_negatives:
            split.negatives.append(parse_neg_items(fields[at[NEG_COLUMN]]))
    return split


def _source_files(src: str) -> dict[str, str]:
    if not os.path.isdir(src):
        raise FileNotFoundError(f"--src {src!r} is not a folder (ReChorus's: {', '.join(SPLIT_FILES)})")
    paths = {f: os.path.join(src, f) for f in SPLIT_FILES}
    missing = [f for f, p in paths.items() if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(f"{src} has no {', '.join(missing)} (ReChorus's layout: {', '.join(SPLIT_FILES)})")
    return paths


def _check_cases(train: RechorusSplit, dev: RechorusSplit, test: RechorusSplit) -> list[str]:
    """Why the split cannot be kept exactly: a user with two cases in a file, a case without
    its twin in the other file, a case user without training interactions."""
    problems = []
    for split in (dev, test):
        seen: dict[str, int] = {}
        for user, line in zip(split.users, split.lines):
            if user in seen:
                problems.append(f"{split.label}: user {user} has a second case on line {line} "
                                f"(first on line {seen[user]}); ReChorus holds one per user")
            seen.setdefault(user, line)
    trained = set(train.users)
    for here, there in ((dev, test), (test, dev)):
        other = set(there.users)
        for user, line in zip(here.users, here.lines):
            if user not in other:
                problems.append(f"{here.label} line {line}: user {user} has no case in {there.label}; a "
                                "leave-one-out split keeps a validation and a test case for every user")
            elif here is dev and user not in trained:
                problems.append(f"{here.label} line {line}: user {user} has no training interaction")
    if dev.negatives and test.negatives:
        counts = {len(n) for n in dev.negatives + test.negatives}
        if len(counts) > 1:
            problems.append(f"the cases have different numbers of negatives ({sorted(counts)}); "
                            "sampled evaluation ranks each positive among the same number")
    return problems


def _write_inter(outputs: AtomicOutputs, train: RechorusSplit, dev: RechorusSplit, test: RechorusSplit) -> None:
    # Stable by time: ReChorus orders a user's history by time, ties as the file lists them.
    order = np.argsort(np.asarray(train.times, dtype=np.float64), kind="stable")
    rows = [(train.users[i], train.items[i]) for i in order]
    rows += list(zip(dev.users, dev.items)) + list(zip(test.users, test.items))
    handle = outputs.open("inter", INTER_HEADER)
    handle.write("".join(f"{u}\t{i}\t{n}\n" for n, (u, i) in enumerate(rows)))


def _write_cases(outputs: AtomicOutputs, split: RechorusSplit) -> None:
    handle = outputs.open(split.label, "\t".join((*COLUMNS, NEG_COLUMN)) + "\n", bare=True)
    handle.write("".join(f"{u}\t{i}\t{t!r}\t[{', '.join(n)}]\n" for u, i, t, n in
                         zip(split.users, split.items, split.times, split.negatives)))


def _read_source(paths: dict[str, str], sep: str | None, report: Report):
    """(layouts, with_negatives, train, dev, test, notes) of a ReChorus folder's three files."""
    layouts = {f: read_layout(paths[f], sep) for f in SPLIT_FILES}
    has = [f for f in SPLIT_FILES[1:] if NEG_COLUMN in layouts[f].columns]
    with_negatives = len(has) == 2
    train = read_split(paths["train.csv"], report, False, sep)
    dev, test = (read_split(paths[f], report, with_negatives, sep) for f in SPLIT_FILES[1:])
    notes = []
    if not with_negatives:
        which = (f"{has[0]} has {NEG_COLUMN} but {(set(SPLIT_FILES[1:]) - set(has)).pop()} has none"
                 if has else f"dev.csv and test.csv have no {NEG_COLUMN} column")
        notes.append(f"{which}: no case files written; protocol: sampled draws each case's negatives "
                     "(sampled_negatives, sampled_seed), so leave out sampled_negatives_dir")
    return layouts, with_negatives, train, dev, test, notes


def _layout_text(layouts: dict[str, Layout]) -> str:
    """``comma-separated, CRLF line ends (train.csv, dev.csv, test.csv)``: the files grouped by layout."""
    groups: dict[str, list[str]] = {}
    for file, layout in layouts.items():
        groups.setdefault(layout.describe(), []).append(file)
    return "; ".join(f"{text} ({', '.join(files)})" for text, files in groups.items())


def _check_not_empty(paths: dict[str, str], splits: tuple[RechorusSplit, ...], report: Report) -> None:
    for split in splits:
        if not split.users:
            why = "every row was left out" if report.per_file.get(split.label) else "a header and no rows"
            raise MalformedInputError(f"{paths[split.label]} is empty ({why}); nothing written")


def import_rechorus(src: str, name: str, out: str, on_error: str = "fail", sep: str | None = None) -> dict:
    """Import ReChorus's ``train.csv``/``dev.csv``/``test.csv`` in ``src`` as ``out/name/``.

    ``sep``: the files' separator; ``None`` detects it from each header (tab, else comma).
    Returns the summary (also ``NAME.import.json``). Raises :class:`MalformedInputError` on
    malformed lines (``on_error="fail"``) and, whatever ``on_error`` says, on an empty file or
    a split the atomic files cannot keep exactly (:func:`_check_cases`); nothing is written then.
    """
    check_on_error(on_error)
    if sep is not None and (not isinstance(sep, str) or len(sep) != 1 or sep in "\r\n\"["):
        raise ConfigError("sep", sep, "a single character, e.g. ',' or '\\t'")
    paths = _source_files(src)
    check_out(out)
    start = time.perf_counter()
    report = Report()
    layouts, with_negatives, train, dev, test, notes = _read_source(paths, sep, report)
    summary = {
        "format": "rechorus", "source": {f: os.path.abspath(p) for f, p in paths.items()},
        "layout": {f: {"sep": lay.sep, "line_ends": lay.line_ends, "neg_items": NEG_COLUMN in lay.columns}
                   for f, lay in layouts.items()},
        "layout_text": _layout_text(layouts),
        "rows": len(train.users) + len(dev.users) + len(test.users),
        "users": len(set(train.users) | set(dev.users)), "items": len(set(train.items + dev.items + test.items)),
        "cases": {"dev": len(dev.users), "test": len(test.users)},
        "negatives_per_case": len(dev.negatives[0]) if with_negatives and dev.negatives else 0,
        "malformed": report.as_dict(), "on_error": on_error, "notes": notes,
        "outputs": [f"{name}.inter", *(SPLIT_FILES[1:] if with_negatives else ()), f"{name}.import.json"],
    }
    if report.total and on_error == "fail":
        raise MalformedInputError(f"{report.text()}\non_error=fail: nothing written "
                                  "(use --on-error skip to leave these lines out)", summary)
    _check_not_empty(paths, (train, dev, test), report)
    problems = _check_cases(train, dev, test)
    if problems:
        shown = "\n".join(problems[:10]) + (f"\n... {len(problems)} problems in all" if len(problems) > 10 else "")
        raise MalformedInputError(f"{src}: the split cannot be kept exactly; nothing written:\n{shown}", summary)
    with AtomicOutputs(out, name) as outputs:
        summary["folder"] = outputs.folder
        earlier = previous_outputs(outputs)
        _write_inter(outputs, train, dev, test)
        if with_negatives:
            _write_cases(outputs, dev)
            _write_cases(outputs, test)
        summary["elapsed_seconds"] = round(time.perf_counter() - start, 3)
        note_replaced(summary, outputs)
        outputs.finish("import.json", summary, remove_stale=("user", "item"))
    for stale in set(SPLIT_FILES[1:]) & set(earlier) - set(summary["outputs"]):
        os.unlink(os.path.join(summary["folder"], stale))  # an earlier import's negatives, not this one's
    return summary
