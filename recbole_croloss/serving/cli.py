r"""Recommend from a trained model, from the command line::

    python -m recbole_croloss.recommend --checkpoint PATH --input FILE --k 10 [--exclude-input]
        [--unknown error|skip] [--faiss INDEX] [--output FILE] [--format jsonl|tsv]
        [--batch-size 1024] [--data-path DIR] [--cpu]

Input (``FILE``, or ``-`` for standard input): one sequence per line, the dataset's raw item
tokens (as in its ``.inter`` file) separated by spaces, oldest first; optionally a user token
first, followed by a tab (``USER<TAB>ITEM ITEM ...``). The user is written out with the
recommendations, and read by a model whose forward takes it (HRM, Caser).

Output (``--output``, atomically, or standard output), in the input's order:

- ``jsonl`` (default): one JSON object per input line,
  ``{"line": 3, "user": "196", "items": ["50", "181", ...], "scores": [9.91, 9.87, ...]}``, plus
  ``"unknown": [...]`` where tokens were left out;
- ``tsv``: a header ``line user rank item score``, then one row per recommended item.

Scores are the model's score S (6 decimals). Exit status 2, with one line on standard error,
for a bad argument, a checkpoint or index that cannot serve, or an unknown token under
``--unknown error``; tokens skipped under ``--unknown skip`` are listed in a warning.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import warnings

from ..errors import BAD_INPUT, ConfigError, reporting_errors
from ..io import atomic_write, check_writable_dir
from .recommender import DEFAULT_BATCH, UNKNOWN_TOKENS, Query, Recommender

FORMATS = ("jsonl", "tsv")
TSV_HEADER = "line\tuser\trank\titem\tscore\n"


class InputLineError(ValueError):
    """A line of the input holds no sequence (empty, or a user without items)."""

    exit_status = BAD_INPUT


def read_queries(lines):
    """A :class:`Query` per line: ``ITEM ITEM ...`` or ``USER<TAB>ITEM ITEM ...``; a line
    without items is an :class:`InputLineError` (whatever ``--unknown`` says: it holds no
    token to leave out)."""
    for number, line in enumerate(lines, 1):
        user, tab, items = line.rstrip("\r\n").partition("\t")
        query = Query((items if tab else user).split(), user.strip() or None if tab else None, number)
        if not query.items:
            what = f"has the user {query.user!r} but no item tokens" if query.user else "is empty"
            raise InputLineError(f"line {number} {what}; give one sequence per line, "
                                 "[USER<TAB>]ITEM ITEM ..., oldest first")
        yield query


def jsonl_lines(recommendation) -> str:
    record = {"line": recommendation.query.line, "user": recommendation.query.user,
              "items": recommendation.items, "scores": [round(s, 6) for s in recommendation.scores]}
    if recommendation.unknown:
        record["unknown"] = list(recommendation.unknown)
    return json.dumps(record) + "\n"


def tsv_lines(recommendation) -> str:
    line, user = recommendation.query.line, recommendation.query.user or ""
    return "".join(f"{line}\t{user}\t{rank}\t{item}\t{score:.6f}\n" for rank, (item, score)
                   in enumerate(zip(recommendation.items, recommendation.scores), 1))


WRITERS = {"jsonl": jsonl_lines, "tsv": tsv_lines}


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m recbole_croloss.recommend",
        description="The top k items of a trained model for sequences of the dataset's item tokens.")
    parser.add_argument("--checkpoint", required=True, help="a run's best-model file (its record's files.model)")
    parser.add_argument("--input", required=True, help="one sequence per line: [USER<TAB>]ITEM ITEM ... (- : stdin)")
    parser.add_argument("--k", type=positive_int, default=10, help="items per sequence (default 10)")
    parser.add_argument("--exclude-input", action="store_true", help="never recommend an item of the sequence")
    parser.add_argument("--unknown", choices=UNKNOWN_TOKENS, default="error",
                        help="a token the dataset does not know: stop (error, default) or leave it out (skip)")
    parser.add_argument("--faiss", default=None, help="rank from this exported index (the run's faiss_export)")
    parser.add_argument("--output", default=None, help="write here, atomically (default: stdout)")
    parser.add_argument("--format", choices=FORMATS, default="jsonl", help="jsonl (default) or tsv")
    parser.add_argument("--batch-size", type=positive_int, default=DEFAULT_BATCH, help="sequences per step")
    parser.add_argument("--data-path", default=None, help="where the run's dataset folder is now, if it moved")
    parser.add_argument("--cpu", action="store_true", help="load and rank on the CPU")
    args = parser.parse_args(argv)
    if args.input != "-" and os.path.isdir(args.input):
        parser.error(f"--input {args.input!r} is a directory; give a file of sequences")
    if args.input != "-" and not os.path.isfile(args.input):
        parser.error(f"--input {args.input!r}: no such file")
    if os.path.isdir(args.checkpoint):
        parser.error(f"--checkpoint {args.checkpoint!r} is a directory; give a run's best-model file")
    if not os.path.isfile(args.checkpoint):
        parser.error(f"--checkpoint {args.checkpoint!r}: no such file")
    if args.faiss is not None and not os.path.isfile(os.path.join(args.faiss, "meta.json")):
        parser.error(f"--faiss {args.faiss!r}: no exported index there (a faiss_export folder holds "
                     "index.faiss and meta.json)")
    if args.output is not None:
        if os.path.isdir(args.output):
            parser.error(f"--output {args.output!r} is a directory; give a file")
        try:
            check_writable_dir("output", os.path.dirname(os.path.abspath(args.output)))
        except ConfigError as err:
            parser.error(f"--output: {err}")
    return args


def recommender_for(args) -> Recommender:
    from ..faiss_index import ItemIndex

    settings = {**({"data_path": args.data_path} if args.data_path else {}),
                **({"use_gpu": False} if args.cpu else {})}
    index = None
    if args.faiss is not None:
        try:
            index = ItemIndex.load(args.faiss, device="cpu" if args.cpu else "auto")
        except (FileNotFoundError, ValueError) as err:
            raise ConfigError("faiss", args.faiss, str(err)) from None
    return Recommender.load(args.checkpoint, settings or None, batch_size=args.batch_size, index=index)


def serve(args, out) -> tuple[int, int]:
    """Write every recommendation of ``args.input`` to ``out``: ``(sequences, without one)``."""
    recommender = recommender_for(args)
    write = WRITERS[args.format]
    if args.format == "tsv":
        out.write(TSV_HEADER)
    served = empty = 0
    with (sys.stdin if args.input == "-" else open(args.input, encoding="utf-8")) as lines:
        for recommendation in recommender.stream(read_queries(lines), args.k, args.exclude_input, args.unknown):
            out.write(write(recommendation))
            served, empty = served + 1, empty + (not recommendation.items)
    return served, empty


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # bad settings, tokens, lines or files: 2 (errors.reporting_errors)
    return reporting_errors(lambda: serve_and_report(args), bad_input=(FileNotFoundError, UnicodeDecodeError))


def serve_and_report(args) -> int:
    """Serve every query, then say on stderr what was served and each warning raised."""
    counts = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if args.output is None:
            counts = serve(args, sys.stdout)
        else:
            atomic_write(args.output, lambda f: counts.extend(serve(args, f)), suffix=".tmp")
    for warning in caught:
        if not issubclass(warning.category, (DeprecationWarning, FutureWarning)):
            print(f"warning: {warning.message}", file=sys.stderr)
    served, empty = counts
    print(f"{served} sequences served ({empty} without a recommendation)"
          + (f"; written to {args.output}" if args.output else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
