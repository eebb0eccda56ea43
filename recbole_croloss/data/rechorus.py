"""ReChorus's dataset layout: read its split files, import them as RecBole atomic files.

ReChorus (github.com/THUwangcy/ReChorus) keeps a dataset as three tab-separated files with a
header: ``train.csv`` (``user_id  item_id  time``), ``dev.csv`` and ``test.csv`` (the same, plus
``neg_items``: the case's fixed negatives as a list, ``[12, 7, 301]``). Ids are non-negative
integers; each user has at most one validation (dev) and one test case, after its training
interactions in time.

:func:`import_rechorus` keeps that split and those negatives exactly:

- ``NAME.inter`` lists every user's training interactions (ordered by time, ties in file order),
  then the dev cases, then the test cases, with ``timestamp`` = the row's position in that order.
  RecBole's leave-one-out split by time (``protocol: loo`` or ``sampled``) then puts exactly the
  dev row in validation and the test row in test; the original times stay in the source files.
- ``dev.csv`` and ``test.csv`` (when the source has ``neg_items``) are written back in ReChorus's
  layout (tab-separated, a header), so ``sampled_negatives_dir: OUT/NAME`` evaluates each case on
  its own negatives, as pointing it at ReChorus's own folder does.

The files are read whole (ReChorus's datasets have up to a few million rows); malformed lines are
reported like the other importers' (file and line, ``on_error``), and every output is written
atomically (:class:`~recbole_croloss.io.AtomicOutputs`).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np

from ..io import AtomicOutputs
from .import_parsing import INTER_HEADER, MalformedInputError, Report, check_on_error, check_out, previous_outputs

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


def read_header(path: str) -> list[str]:
    """The column names of a ReChorus file; raises :class:`MalformedInputError` if one of
    ``user_id``, ``item_id``, ``time`` is missing."""
    with open(path, encoding="utf-8-sig") as handle:
        columns = handle.readline().rstrip("\r\n").split("\t")
    missing = [c for c in COLUMNS if c not in columns]
    if missing:
        raise MalformedInputError(f"{path}: the header {columns} has no {', '.join(missing)} column "
                                  f"(ReChorus's files are tab-separated: {', '.join(COLUMNS)}[, {NEG_COLUMN}])")
    return columns


def parse_neg_items(text: str) -> list[str] | None:
    """``"[12, 7, 301]"`` -> ``["12", "7", "301"]``; ``None`` when it is not such a list."""
    text = text.strip()
    if len(text) < 2 or text[0] != "[" or text[-1] != "]":
        return None
    ids = [part.strip() for part in text[1:-1].split(",")]
    return ids if ids and all(i.isdecimal() for i in ids) else None


def _row_error(fields: list[str], columns: list[str], with_negatives: bool) -> str | None:
    if len(fields) != len(columns):
        return f"expected {len(columns)} tab-separated fields, got {len(fields)}"
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


def read_split(path: str, report: Report, with_negatives: bool) -> RechorusSplit:
    """Every well-formed row of ``path`` (malformed ones go to ``report``)."""
    label = os.path.basename(path)
    columns = read_header(path)
    if with_negatives and NEG_COLUMN not in columns:
        raise MalformedInputError(f"{path}: no {NEG_COLUMN} column, so its cases have no fixed negatives")
    at = {c: columns.index(c) for c in (*COLUMNS, *([NEG_COLUMN] if with_negatives else []))}
    split = RechorusSplit(label, [], [], [], [], [] if with_negatives else None)
    with open(path, encoding="utf-8-sig") as handle:
        handle.readline()
        for lineno, line in enumerate(handle, 2):
            if not line.strip():
                continue
            fields = line.rstrip("\r\n").split("\t")
            error = _row_error(fields, columns, with_negatives)
            if error:
                report.add(label, lineno, error, line.rstrip("\r\n"))
                continue
            split.users.append(fields[at["user_id"]].strip())
            split.items.append(fields[at["item_id"]].strip())
            split.times.append(float(fields[at["time"]]))
            split.lines.append(lineno)
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


def import_rechorus(src: str, name: str, out: str, on_error: str = "fail") -> dict:
    """Import ReChorus's ``train.csv``/``dev.csv``/``test.csv`` in ``src`` as ``out/name/``.

    Returns the summary (also ``NAME.import.json``). Raises :class:`MalformedInputError` on
    malformed lines (``on_error="fail"``) and, whatever ``on_error`` says, on a split the
    atomic files cannot keep exactly (:func:`_check_cases`); nothing is written then.
    """
    check_on_error(on_error)
    paths = _source_files(src)
    check_out(out)
    start = time.perf_counter()
    report = Report()
    with_negatives = all(NEG_COLUMN in read_header(paths[f]) for f in SPLIT_FILES[1:])
    train = read_split(paths["train.csv"], report, False)
    dev, test = (read_split(paths[f], report, with_negatives) for f in SPLIT_FILES[1:])
    summary = {
        "format": "rechorus", "source": {f: os.path.abspath(p) for f, p in paths.items()},
        "rows": len(train.users) + len(dev.users) + len(test.users),
        "users": len(set(train.users) | set(dev.users)), "items": len(set(train.items + dev.items + test.items)),
        "cases": {"dev": len(dev.users), "test": len(test.users)},
        "negatives_per_case": len(dev.negatives[0]) if with_negatives and dev.negatives else 0,
        "malformed": report.as_dict(), "on_error": on_error,
        "outputs": [f"{name}.inter", *(SPLIT_FILES[1:] if with_negatives else ()), f"{name}.import.json"],
    }
    if report.total and on_error == "fail":
        raise MalformedInputError(f"{report.text()}\non_error=fail: nothing written "
                                  "(use --on-error skip to leave these lines out)", summary)
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
        outputs.finish("import.json", summary, remove_stale=("user", "item"))
    for stale in set(SPLIT_FILES[1:]) & set(earlier) - set(summary["outputs"]):
        os.unlink(os.path.join(summary["folder"], stale))  # an earlier import's negatives, not this one's
    return summary
