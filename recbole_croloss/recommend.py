"""``python -m recbole_croloss.recommend``: the command line over the ``Recommender``, which lives
in :mod:`recbole_croloss.serving.cli`; this module re-exports its names and runs it."""
import sys

from .serving.cli import (
    FORMATS, TSV_HEADER, InputLineError, read_queries, jsonl_lines, tsv_lines, WRITERS,
    positive_int, parse_args, recommender_for, serve, main,
)

__all__ = ["FORMATS", "TSV_HEADER", "InputLineError", "read_queries", "jsonl_lines", "tsv_lines",
           "WRITERS", "positive_int", "parse_args", "recommender_for", "serve", "main"]

if __name__ == "__main__":
    sys.exit(main())
