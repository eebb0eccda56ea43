"""Import interaction data into RecBole atomic files, streaming, with every bad line reported.

Usage::

    python -m recbole_croloss.data.importer --format comirec --src data/book_data --name amazon-books --out dataset
    python -m recbole_croloss.data.importer --format csv --src ratings.csv --name mydata --out dataset \\
        [--sep ,] [--user-col user_id] [--item-col item_id] [--time-col timestamp|none] [--no-header] [--ids int|token]
    python -m recbole_croloss.data.importer --format rechorus --src data/Grocery --name grocery --out dataset
    (all: [--on-error fail|skip]; exit code 0 on success, 2 on bad input with the report on stderr)

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
  non-negative integers below 2**63 (``--ids int``, default) or, with ``--ids token``, any tokens
  without whitespace or quotes that RecBole would not read as missing (``NA``, ``null``, ...) or
  as its padding (``[PAD]``), kept as they are; the timestamp any finite number. With a header (default)
  columns are found by name; with ``--no-header`` ``--user-col``/``--item-col``/``--time-col`` are 0-based
  positions (default 0, 1, 2). ``--time-col`` default ``auto``: the ``timestamp`` column (header)
  or the third column (no header) when present, else the line order; ``none``: the line order.
  With the line order, the timestamp is the row's 1-based line number in the file.
- ReChorus (``train.csv``, ``dev.csv``, ``test.csv``, tab-separated, ``user_id item_id time
  [neg_items]``): the split and the fixed negatives are kept exactly; see
  :mod:`~recbole_croloss.data.rechorus`.

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

from ..errors import ConfigError
from ..io import Interrupted, interrupt_signals
from .comirec_import import find_prefix, import_comirec
from .csv_import import import_csv
from .rechorus import import_rechorus
from .import_parsing import ID_TYPES, ON_ERROR, MalformedInputError, Report

__all__ = ["MalformedInputError", "find_prefix", "import_comirec", "import_csv", "import_rechorus", "main",
           "summary_text"]


def summary_text(summary: dict) -> str:
    lines = [f"imported {summary['rows']:,} interactions of {summary['users']:,} users and "
             f"{summary['items']:,} items into {summary['folder']} in {summary.get('elapsed_seconds', 0):.1f}s"]
    if "users_per_split" in summary:
        per_split = summary["users_per_split"].items()
        lines.append("users per ComiRec split: " + ", ".join(f"{k} {v:,}" for k, v in per_split))
    if "cases" in summary:
        lines.append(f"ReChorus cases: dev {summary['cases']['dev']:,}, test {summary['cases']['test']:,}, "
                     f"{summary['negatives_per_case']} fixed negatives each")
    if "time_source" in summary:
        lines.append(f"timestamp from: {summary['time_source']}")
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
    parser.add_argument("--format", required=True, choices=("comirec", "csv", "rechorus"))
    parser.add_argument("--src", required=True, help="comirec: the folder with PREFIX_train.txt ...; csv: the file; "
                        "rechorus: the folder with train.csv, dev.csv, test.csv")
    parser.add_argument("--name", required=True, help="dataset name: the folder and file stem written")
    parser.add_argument("--out", required=True, help="RecBole's data_path: OUT/NAME/ is written")
    parser.add_argument("--on-error", default="fail", choices=ON_ERROR)
    parser.add_argument("--prefix", help="comirec: file prefix (default: the one found in --src)")
    parser.add_argument("--sep", default=",", help="csv: field separator (default ,; '\\t' for tab)")
    parser.add_argument("--user-col", help="csv: user column name (header) or 0-based position (default user_id / 0)")
    parser.add_argument("--item-col", help="csv: item column name or position (default item_id / 1)")
    parser.add_argument("--time-col", default="auto",
                        help="csv: time column name or position; auto (timestamp / 2 if present); none: line order")
    parser.add_argument("--ids", default="int", choices=tuple(ID_TYPES),
                        help="csv: int (ids are non-negative integers; default) or token (any id without "
                             "whitespace or quotes, e.g. Amazon's ASINs, kept as it is)")
    parser.add_argument("--header", action=argparse.BooleanOptionalAction, default=True,
                        help="csv: the first line names the columns (default: yes)")
    return parser


def _import(args) -> dict:
    if args.format == "comirec":
        return import_comirec(args.src, args.name, args.out, prefix=args.prefix, on_error=args.on_error)
    if args.format == "rechorus":
        return import_rechorus(args.src, args.name, args.out, on_error=args.on_error)
    sep = "\t" if args.sep in ("\\t", "tab") else args.sep
    return import_csv(args.src, args.name, args.out, sep=sep, user_col=args.user_col, item_col=args.item_col,
                      time_col=args.time_col, header=args.header, on_error=args.on_error,
                      ids=args.ids)


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        with interrupt_signals():  # a signal unwinds the import like an error: its temporaries go
            summary = _import(args)
    except (MalformedInputError, ConfigError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Interrupted as stop:
        print(f"error: {stop}: nothing written to {os.path.join(args.out, args.name)} (its old outputs, "
              "if any, are unchanged)", file=sys.stderr)
        return stop.exit_code
    print(summary_text(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
