"""Two sets of runs of the CLI compared, paired by seed: test Recall@N of X minus Y (points), with
the wins, the seed-level t-interval and the two-stage bootstrap over seeds and test users
(:mod:`recbole_croloss.benchmark.paired`, the benchmark report's statistics)::

    python -m recbole_croloss.benchmark.compare_records runs/croloss-*.json --against runs/ce-*.json

Each argument is a record the CLI wrote with ``--record=X.json``; its per-user hits
(``X.hits.npz``) lie beside it. Records are paired by their ``seed``: both sides must hold the
same dataset, protocol and test users, and a seed at most once each. Under ``protocol: sampled``
the table compares Hit@K (the Recall@K of one held-out item)."""
from __future__ import annotations

import argparse
import json
import os
import sys

from ..errors import BAD_INPUT, reporting_errors
from ..io import load_per_user_hits, per_user_hits_file
from .paired import PairedDifference


class RecordError(ValueError):
    """A record that cannot be paired; the message names the file."""

    exit_status = BAD_INPUT


def read_side(paths: list[str]) -> dict:
    """seed -> (record, per-user hits) for the records at ``paths``."""
    side = {}
    for path in paths:
        try:
            with open(path, encoding="utf-8") as handle:
                record = json.load(handle)
        except (OSError, ValueError) as err:
            raise RecordError(f"{path}: not a readable run record ({err})") from None
        if not isinstance(record, dict) or "test_result" not in record or "config" not in record:
            raise RecordError(f"{path}: not a run record (no test_result or config); pass the "
                              "files written by --record=PATH")
        hits_path = per_user_hits_file(path)
        if not os.path.isfile(hits_path):
            raise RecordError(f"{path}: its per-user hits {hits_path} are missing")
        seed = record["config"].get("seed")
        if seed in side:
            raise RecordError(f"{path}: seed {seed} is already given by {side[seed][0]['_path']}; "
                              "pass one run per seed on each side")
        record["_path"] = path
        side[seed] = (record, load_per_user_hits(hits_path))
    return side


def check_comparable(x: dict, y: dict) -> list:
    """The seeds both sides hold; a dataset or protocol that differs is an error."""
    records = [r for r, _ in (*x.values(), *y.values())]
    for field in ("dataset", "protocol"):
        values = {r[field] for r in records}
        if len(values) > 1:
            raise RecordError(f"the records differ in {field}: {', '.join(sorted(map(str, values)))}; "
                              "compare runs on the same data and protocol")
    seeds = sorted(set(x) & set(y))
    if not seeds:
        raise RecordError(f"no seed in common: X has {sorted(x)}, Y has {sorted(y)}")
    return seeds


def metric_and_ns(records: list[dict], ns: list[int] | None) -> tuple[str, list[int]]:
    """``recall`` (``hit`` where no record holds Recall) and the cut-offs every record holds."""
    results = [r["test_result"] for r in records]
    name = "recall" if all(any(k.startswith("recall@") for k in r) for r in results) else "hit"
    held = set.intersection(*({int(k.split("@")[1]) for k in r if k.startswith(name + "@")} for r in results))
    chosen = sorted(held) if ns is None else ns
    missing = [n for n in chosen if n not in held]
    if missing or not chosen:
        raise RecordError(f"{name}@{missing or chosen} is not in every record; they hold {sorted(held)}")
    return name, chosen


def compare(x: dict, y: dict, ns: list[int] | None = None) -> tuple[str, dict]:
    """``(metric name, N -> PairedDifference)`` of X minus Y."""
    seeds = check_comparable(x, y)
    name, ns = metric_and_ns([x[s][0] for s in seeds] + [y[s][0] for s in seeds], ns)
    rows = {}
    for n in ns:
        def values(side):
            return {s: side[s][0]["test_result"][f"{name}@{n}"] for s in seeds}

        rows[n] = PairedDifference.of(values(x), values(y), {s: x[s][1] for s in seeds},
                                      {s: y[s][1] for s in seeds}, n_at=n)
    return name, rows


def describe(x: dict, label: str) -> str:
    record = next(iter(x.values()))[0]
    settings = {k: record["config"].get(k) for k in ("kernel", "alpha") if record["config"].get(k) is not None}
    extra = "".join(f", {k} {v}" for k, v in settings.items())
    return f"{label}: {record['model']}, loss {record['loss']}{extra} ({len(x)} run(s))"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recbole_croloss.benchmark.compare_records",
                                     description="X minus Y, paired by seed, with a bootstrap over users")
    parser.add_argument("x", nargs="+", help="records of method X (written by --record=PATH)")
    parser.add_argument("--against", nargs="+", required=True, help="records of method Y")
    parser.add_argument("--ns", type=int, nargs="+", default=None, help="cut-offs (default: all held)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    return reporting_errors(lambda: compare_and_report(args))  # a record that cannot be paired: 2


def compare_and_report(args) -> int:
    """Read both sides' records, pair them and print X - Y at every N."""
    x, y = read_side(args.x), read_side(args.against)
    name, rows = compare(x, y, args.ns)
    print(describe(x, "X"))
    print(describe(y, "Y"))
    print(f"test {name.capitalize()}@N, X - Y in points (mean over seeds; 95% intervals):")
    for n, diff in rows.items():
        print(f"  @{n}: {diff.text()}  ->  {diff.verdict('X', 'Y')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
