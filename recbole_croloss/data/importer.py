"""Import interaction data into RecBole atomic files, streaming, with every bad line reported.

Usage::

    python -m recbole_croloss.data.importer --format comirec --src data/book_data --name amazon-books --out dataset
    python -m recbole_croloss.data.importer --format csv --src ratings.csv --name mydata --out dataset \\
        [--sep ,] [--user-col user_id] [--item-col item_id] [--time-col timestamp|none] [--no-header] [--ids int|token]
    python -m recbole_croloss.data.importer --format rechorus --src data/Grocery --name grocery --out dataset [--sep ,]
    python -m recbole_croloss.data.importer --format sequences --src Beauty.txt --name beauty --out dataset \
        [--layout auto|pairs|lines] [--ids int|token]
    (all: [--on-error fail|skip]; exit code 0 on success, 2 on bad input with the report on stderr;
    an option the format does not read is refused, not ignored)

Output, in ``OUT/NAME/`` (tab-separated, a ``name:type`` header, as RecBole reads them):

- ``NAME.inter``: ``user_id:token  item_id:token  timestamp:float``, one row per input row, in
  input order (ComiRec: the train, then valid, then test file).
- ``NAME.user`` (ComiRec only): ``user_id:token  comirec_split:token`` with split ``train``,
  ``valid`` or ``test``, one row per user, by user id.
- ``NAME.item`` (ComiRec, when ``PREFIX_item_cate.txt`` exists): ``item_id:token  cate_id:token``.
- ``NAME.import.json``: the summary returned by :func:`import_comirec` / :func:`import_csv` /
  :func:`import_rechorus` / :func:`import_sequences` (source files with sizes and row counts,
  malformed lines, users per split, elapsed seconds, and ``replaced``: the dataset of that name
  this import replaced, with its interactions, which the CLI reports).

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
  non-negative integers below 2**63 (``--ids int``, default) or, with ``--ids token``, any tokens
  without whitespace or quotes that RecBole would not read as missing (``NA``, ``null``, ...) or
  as its padding (``[PAD]``), kept as they are; the timestamp any finite number or an ISO 8601
  date (as Unix seconds, UTC unless it names its offset). With a header (default) columns are found
  by name: the one given, or by default (``auto``) the first of the common names
  (:data:`~recbole_croloss.data.csv_import.RECOGNISED`: ``user_id``, ``userId``, ``reviewerID``
  ...; ``item_id``, ``movieId``, ``asin`` ...; ``timestamp``, ``time``, ``ts``, ``datetime``,
  ``unixReviewTime`` ...; any case). A header without a recognised time column but with one that
  looks like a time (``event_date``) is refused, naming ``--time-col``: the line order would order
  every user's sequence silently. With ``--no-header`` ``--user-col``/``--item-col``/``--time-col``
  are 0-based positions (default 0, 1, 2: the third of exactly three columns; with more,
  which is the time cannot be told, so ``--time-col`` must be given). ``--time-col none``, or
  no time column: the line order. The columns used are in the summary and printed.
  With the line order, the timestamp is the row's 1-based line number in the file.
- ReChorus (``train.csv``, ``dev.csv``, ``test.csv``, ``user_id item_id time [neg_items]``,
  tab- or comma-separated, detected, or ``--sep``): the split and the fixed negatives are kept
  exactly; see :mod:`~recbole_croloss.data.rechorus`.
- Sequences (SASRec's ``user item`` lines, S3Rec's one ``user item item ...`` line per user): each
  interaction's position in the file is its timestamp; see
  :mod:`~recbole_croloss.data.sequences_import`.

Validation: a malformed line (wrong number of fields, an id the chosen ``--ids`` refuses,
a timestamp that is not a finite number, an empty line before the last data line) is counted and
reported with file name and line number (the first 10 shown, then the total). Trailing empty
lines are not data and are ignored. A CSV with no interaction left to import (only a header, or
every line left out) is refused: RecBole cannot train on it. ``on_error="fail"`` (default): raise
:class:`MalformedInputError` (CLI: exit code 2) and write nothing. ``on_error="skip"``: the line is
left out of the output and reported in the summary and in ``NAME.import.json``.

Writes are atomic: every output is written to a temporary file in ``OUT/NAME/``, fsynced and
moved into place with ``os.replace`` only after the whole input was read without a fatal error
(``NAME.import.json`` last); on any failure the temporary files are removed, and a folder the
import created is removed again, so the old outputs, if any, stay intact. The CLI does the same on
SIGTERM and SIGINT (exit code 128 + the signal). SIGKILL leaves the temporary files
(``.NAME.<suffix>.<host>.<pid>.<random>.tmp``); the next import of the same dataset removes them
once their process is gone (:class:`~recbole_croloss.io.AtomicOutputs`).

Memory: the input is read line by line and written as it goes, in blocks of
:data:`~recbole_croloss.data.import_parsing.BLOCK_LINES` lines; what is held is one int64 per user (the split and the first line
number, packed) and one int64 per item id (seen), in arrays indexed by id up to the largest id.
For Taobao (976,779 users, 1,708,530 items): 8 B x 976,779 = 7.8 MB of user map and 13.7 MB of
item table (twice as much during a doubling of the array), plus the map files' tables when
present (8 B per mapped id), plus one block of lines: well under 100 MB for 85M rows.
Ids of 2**26 and above (not ComiRec's), and every ``--ids token`` id, are held in a dict instead
(about 100 B each).

Code: :mod:`~recbole_croloss.data.comirec_import`, :mod:`~recbole_croloss.data.csv_import` and
the line scanners they share, :mod:`~recbole_croloss.data.import_parsing`; this module is the CLI.
"""
from __future__ import annotations

import argparse
import os
import sys

from ..errors import ConfigError, reporting_errors
from ..io import Interrupted, interrupt_signals
from .comirec_import import find_prefix, import_comirec
from .csv_import import import_csv
from .rechorus import import_rechorus
from .sequences_import import LAYOUTS, import_sequences
from .import_parsing import ID_TYPES, ON_ERROR, MalformedInputError, Report

__all__ = ["MalformedInputError", "find_prefix", "import_comirec", "import_csv", "import_rechorus",
           "import_sequences", "main", "summary_text"]

#: The options each format reads (besides --src, --name, --out, --on-error); any other one
#: given is refused rather than ignored.
FORMAT_OPTIONS = {
    "comirec": ("prefix",),
    "csv": ("sep", "user_col", "item_col", "time_col", "ids", "header"),
    "rechorus": ("sep",),
    "sequences": ("layout", "ids"),
}


def _describe_columns(summary: dict) -> str:
    names = summary["column_names"]
    time = names["time"] if names["time"] is not None else "none (the line order is the time)"
    return f"columns used: user: {names['user']}, item: {names['item']}, time: {time}"


def summary_text(summary: dict) -> str:
    lines = [f"imported {summary['rows']:,} interactions of {summary['users']:,} users and "
             f"{summary['items']:,} items into {summary['folder']} in {summary.get('elapsed_seconds', 0):.1f}s"]
    if "replaced" in summary:
        lines.append(f"replaced the existing dataset {summary['replaced']['dataset']} "
                     f"({summary['replaced']['rows']:,} interactions)")
    if "users_per_split" in summary:
        per_split = summary["users_per_split"].items()
        lines.append("users per ComiRec split: " + ", ".join(f"{k} {v:,}" for k, v in per_split))
    if "layout_text" in summary:
        lines.append(f"ReChorus files: {summary['layout_text']}")
    if "cases" in summary:
        fixed = summary["negatives_per_case"]
        lines.append(f"ReChorus cases: dev {summary['cases']['dev']:,}, test {summary['cases']['test']:,}, "
                     + (f"{fixed} fixed negatives each" if fixed else "no fixed negatives"))
    if summary.get("format") == "sequences":
        lines.append(f"layout: {summary['layout']}; timestamp: each interaction's position in the file")
    if "column_names" in summary:
        lines.append(_describe_columns(summary))
    lines.extend(summary.get("notes", []))
    if summary["malformed"]["total"]:
        report = Report()
        report.total, report.per_file, report.shown = (summary["malformed"]["total"],
                                                       summary["malformed"]["per_file"], summary["malformed"]["first"])
        lines.append("left out (on_error=skip): " + report.text())
    lines.extend(f"warning: {w}" for w in summary.get("warnings", []))
    lines.append("wrote: " + ", ".join(summary["outputs"]))
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m recbole_croloss.data.importer",
        description="Import interactions into RecBole atomic files (OUT/NAME/NAME.inter ...).")
    parser.add_argument("--format", required=True, choices=tuple(FORMAT_OPTIONS))
    parser.add_argument("--src", required=True, help="comirec: the folder with PREFIX_train.txt ...; csv and "
                        "sequences: the file; rechorus: the folder with train.csv, dev.csv, test.csv")
    parser.add_argument("--name", required=True, help="dataset name: the folder and file stem written")
    parser.add_argument("--out", required=True, help="RecBole's data_path: OUT/NAME/ is written")
    parser.add_argument("--on-error", default="fail", choices=ON_ERROR)
    parser.add_argument("--prefix", help="comirec: file prefix (default: the one found in --src)")
    parser.add_argument("--sep", help="csv: field separator (default ,; '\\t' for tab); rechorus: the files' "
                        "separator (default: detected from each header, tab or comma)")
    parser.add_argument("--user-col", help="csv: user column name (header) or 0-based position "
                        "(default auto: a column named user_id, user, userId, reviewerID, uid ... / 0)")
    parser.add_argument("--item-col", help="csv: item column name or position "
                        "(default auto: item_id, item, itemId, movieId, asin, iid ... / 1)")
    parser.add_argument("--time-col", help="csv: time column name or position; default auto (a column named "
                        "timestamp, time, ts, datetime, unixReviewTime ... / 2 if present); none: line order")
    parser.add_argument("--ids", choices=tuple(ID_TYPES),
                        help="csv, sequences: int (ids are non-negative integers; default) or token (any id "
                             "without whitespace or quotes, e.g. Amazon's ASINs, kept as it is)")
    parser.add_argument("--header", action=argparse.BooleanOptionalAction,
                        help="csv: the first line names the columns (default: yes)")
    parser.add_argument("--layout", choices=LAYOUTS, help="sequences: pairs (user item per line), lines "
                        "(user item item ... per line) or auto (default: detected)")
    return parser


def _check_options(args) -> None:
    """An option the chosen format does not read is an error, not silently ignored."""
    reads = FORMAT_OPTIONS[args.format]
    for option in ("prefix", "sep", "user_col", "item_col", "time_col", "ids", "header", "layout"):
        value = getattr(args, option)
        if value is not None and option not in reads:
            flag = "--no-header" if option == "header" and value is False else "--" + option.replace("_", "-")
            read = ", ".join("--no-header" if o == "header" else "--" + o.replace("_", "-") for o in reads)
            raise ConfigError(option, value, f"--format {args.format} does not read {flag}; it reads {read} "
                              "(and --on-error)")


def _import(args) -> dict:
    _check_options(args)
    sep = "\t" if args.sep in ("\\t", "tab") else args.sep
    if args.format == "comirec":
        return import_comirec(args.src, args.name, args.out, prefix=args.prefix, on_error=args.on_error)
    if args.format == "rechorus":
        return import_rechorus(args.src, args.name, args.out, on_error=args.on_error, sep=sep)
    if args.format == "sequences":
        return import_sequences(args.src, args.name, args.out, layout=args.layout or "auto", ids=args.ids or "int",
                                on_error=args.on_error)
    return import_csv(args.src, args.name, args.out, sep=sep or ",", user_col=args.user_col, item_col=args.item_col,
                      time_col=args.time_col or "auto", header=args.header is not False, on_error=args.on_error,
                      ids=args.ids or "int")


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    # malformed input, bad options, missing files: 2 (errors.reporting_errors)
    return reporting_errors(lambda: import_and_report(args), bad_input=(FileNotFoundError,))


def import_and_report(args) -> int:
    """Import what the arguments name and print its summary; a signal leaves nothing written."""
    try:
        with interrupt_signals():  # a signal unwinds the import like an error: its temporaries go
            summary = _import(args)
    except Interrupted as stop:
        print(f"error: {stop}: nothing written to {os.path.join(args.out, args.name)} (its old outputs, "
              "if any, are unchanged)", file=sys.stderr)
        return stop.exit_code
    print(summary_text(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
