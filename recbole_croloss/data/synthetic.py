"""A synthetic sequential dataset shaped like real click logs, at any size, in bounded memory.

Usage::

    python -m recbole_croloss.data.synthetic --name synth --out dataset --users 10000 --items 5000 \\
        [--mean-length 20] [--min-length 5] [--max-length 500] [--popularity-exponent 1.0] \\
        [--interests 1000] [--user-interests 1-4] [--length-sigma 1.0] [--seed 0]

writes ``OUT/NAME/NAME.inter`` (RecBole atomic file: ``user_id:token  item_id:token
timestamp:float``, tab-separated, rows grouped by user in id order, timestamps strictly
increasing within a user) and ``OUT/NAME/NAME.synthetic.json`` (the arguments, counts, the
fitted head popularity slope, elapsed seconds and peak memory), both atomically (temporary file
in the same folder, fsync, ``os.replace``; a failure, SIGTERM or SIGINT leaves no partial file;
the temporary file a SIGKILL leaves is removed by the next run of the same name).

The model, with items 1..I (0 is RecBole's padding) and users 1..U:

- **Popularity.** A random permutation gives every item a popularity rank r = 1..I and a weight
  w_r = r^(-a), a = ``popularity_exponent``.
- **Interests.** Items are dealt at random into C = min(``interests``, I) clusters of (almost)
  equal size; cluster c has mass W_c = sum of its items' weights.
- **Users.** User u has k_u interests, k_u uniform in ``user_interests`` (lo-hi), each drawn
  independently with probability W_c / W (W = sum of all weights). Each of its interactions
  picks one of its k_u interests uniformly, then an item of that cluster with probability
  w_r / W_c. Averaged over users the probability of item r is therefore
  sum_c (W_c / W)(w_r / W_c)[r in c] = w_r / W: the global marginal keeps the power law
  count(r) ~ r^(-a) exactly (in expectation), while each user's sequence stays within a few
  clusters.
- **Lengths.** L_u = clip(m + round(X), m, M), X lognormal with log-sd ``length_sigma`` and its
  log-mean solved (bisection on the exact expectation) so that E[L_u] = ``mean_length``;
  m = ``min_length``, M = ``max_length``.
- **Timestamps.** Seconds: 1,500,000,000 + a per-user start within 30 days, then gaps uniform
  in 1..3600 s, so strictly increasing within a user.

Deterministic: the same arguments and seed give identical bytes. The item tables come from
``SeedSequence(seed, spawn_key=(0,))`` and block b of users from ``SeedSequence(seed,
spawn_key=(1, b))``; blocks hold :data:`BLOCK_ROWS` // ceil(mean_length) users.

Memory: item tables of 5 x 8 B per item (68 MB for Taobao's 1,708,530 items) plus one block:
about 1M rows x ~80 B of numpy temporaries (~100 MB); the output text is formatted per block
with numpy (no Python loop per row).
"""
from __future__ import annotations

import argparse
import math
import os
import resource
import sys
import time

import numpy as np

from ..errors import ConfigError, check_int, reporting_errors
from ..io import AtomicOutputs, Interrupted, check_dataset_name, check_writable_dir, interrupt_signals

#: Expected rows per block of users.
BLOCK_ROWS = 1 << 20
#: Rows formatted at a time (bounds format_rows' digit matrices to ~15 MB).
FORMAT_ROWS = 1 << 17
BASE_TIME = 1_500_000_000
START_SPAN = 30 * 86400
MAX_GAP = 3600
HEADER = b"user_id:token\titem_id:token\ttimestamp:float\n"


# ---------------------------------------------------------------------------------------------
# arguments


def parse_range(text) -> tuple[int, int]:
    """``"1-4"`` -> (1, 4); ``"3"`` or 3 -> (3, 3); a pair stays a pair. Needs 1 <= lo <= hi."""
    try:
        if isinstance(text, (tuple, list)):
            lo, hi = (int(x) for x in text)
        elif isinstance(text, int):
            lo = hi = text
        else:
            parts = str(text).split("-")
            if len(parts) not in (1, 2):
                raise ValueError
            lo, hi = int(parts[0]), int(parts[-1])
    except (TypeError, ValueError):
        raise ConfigError("user_interests", text, "a count or a range lo-hi, e.g. 1-4") from None
    if not 1 <= lo <= hi:
        raise ConfigError("user_interests", text, "a range lo-hi with 1 <= lo <= hi")
    return lo, hi


def _check_float(key: str, value, low: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < low:
        raise ConfigError(key, value, f"{key} must be a finite number >= {low}")
    return float(value)


# ---------------------------------------------------------------------------------------------
# lengths


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    from math import erf, sqrt

    return 0.5 * (1.0 + np.vectorize(erf)(x / sqrt(2.0)))


def expected_length(mu: float, sigma: float, min_length: int, max_length: int) -> float:
    """E[clip(m + round(X), m, M)] for X lognormal(mu, sigma), summed exactly over round(X)."""
    span = max_length - min_length
    edges = np.arange(span + 1, dtype=np.float64) + 0.5  # round(X) <= k  <=>  X < k + 0.5
    cdf = _normal_cdf((np.log(edges) - mu) / sigma)
    p = np.diff(np.concatenate([[0.0], cdf]))  # P(round(X) = k), k = 0..span
    return float(min_length + np.dot(np.arange(span + 1), p) + span * (1.0 - cdf[-1]))


def solve_length_mu(mean_length: float, sigma: float, min_length: int, max_length: int) -> float | None:
    """The lognormal log-mean giving E[L] = mean_length; None when the length is constant."""
    if mean_length - min_length < 1e-9 or max_length - mean_length < 1e-9:
        return None
    lo, hi = -30.0, math.log(max_length) + 10 * sigma + 10.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if expected_length(mid, sigma, min_length, max_length) < mean_length:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return 0.5 * (lo + hi)


# ---------------------------------------------------------------------------------------------
# formatting


def format_rows(columns: list[np.ndarray]) -> bytes:
    """Non-negative integer columns -> ``a\\tb\\tc\\n`` lines as ASCII bytes, vectorised.

    Each column becomes a right-aligned digit matrix of its widest value; the leading zero
    padding is dropped with a boolean mask, so no Python loop runs per row.
    """
    n = len(columns[0])
    if n > FORMAT_ROWS:  # bound the temporaries: ~100 B per row of a chunk
        return b"".join(format_rows([c[lo: lo + FORMAT_ROWS] for c in columns]) for lo in range(0, n, FORMAT_ROWS))
    if n == 0:
        return b""
    blocks, keeps = [], []
    for j, col in enumerate(columns):
        col = np.asarray(col, dtype=np.int64)
        if col.min() < 0:
            raise ValueError("format_rows takes non-negative integers")
        width = max(1, len(str(int(col.max()))))
        powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
        digits = (col[:, None] // powers) % 10
        keep = col[:, None] >= powers
        keep[:, -1] = True
        blocks.append((digits + 48).astype(np.uint8))
        keeps.append(keep)
        blocks.append(np.full((n, 1), 10 if j == len(columns) - 1 else 9, dtype=np.uint8))
        keeps.append(np.ones((n, 1), dtype=bool))
    chars = np.concatenate(blocks, axis=1)
    mask = np.concatenate(keeps, axis=1)
    return chars[mask].tobytes()


def _write_block(handle, data: bytes) -> None:
    """Write one block of formatted rows (one place, so tests can make a write fail)."""
    handle.write(data)


# ---------------------------------------------------------------------------------------------
# the generator


class _Items:
    """Popularity ranks, clusters and the cumulative weights that sample from them."""

    def __init__(self, items: int, exponent: float, interests: int, seed: int):
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(0,))))
        self.rank_to_item = rng.permutation(items).astype(np.int64) + 1  # rank r (0-based) -> id
        self.n_clusters = min(interests, items)
        cluster_of_rank = rng.permutation(items) % self.n_clusters
        self.order = np.argsort(cluster_of_rank, kind="stable")  # ranks by cluster, rank order within
        weights = np.arange(1, items + 1, dtype=np.float64) ** (-exponent)
        self.cum = np.cumsum(weights[self.order])
        del weights
        counts = np.bincount(cluster_of_rank, minlength=self.n_clusters)
        del cluster_of_rank
        self.end = np.cumsum(counts)  # cluster c holds positions start[c] .. end[c]-1 of order
        self.start = self.end - counts
        self.hi = self.cum[self.end - 1]
        self.lo = np.where(self.start > 0, self.cum[np.maximum(self.start - 1, 0)], 0.0)
        self.total = float(self.hi[-1])

    def clusters(self, u: np.ndarray) -> np.ndarray:
        """Clusters drawn with probability W_c / W, from uniforms in [0, 1)."""
        c = np.searchsorted(self.hi, u * self.total, side="right")
        return np.minimum(c, self.n_clusters - 1)

    def items_in(self, clusters: np.ndarray, u: np.ndarray) -> np.ndarray:
        """One item id per row, from its cluster with probability w_r / W_c."""
        lo = self.lo[clusters]
        pos = np.searchsorted(self.cum, lo + u * (self.hi[clusters] - lo), side="right")
        pos = np.clip(pos, self.start[clusters], self.end[clusters] - 1)
        return self.rank_to_item[self.order[pos]]


def _lengths(rng, n: int, mu: float | None, sigma: float, min_length: int, max_length: int,
             mean_length: float) -> np.ndarray:
    if mu is None:
        return np.full(n, int(round(mean_length)), dtype=np.int64)
    x = np.floor(rng.lognormal(mu, sigma, n) + 0.5)
    return np.clip(min_length + np.minimum(x, max_length - min_length), min_length, max_length).astype(np.int64)


def _block(items: _Items, seed: int, index: int, first_user: int, n: int, mu, args) -> tuple:
    """(user ids, item ids, timestamps, lengths) of users first_user .. first_user + n - 1."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(1, index))))
    lengths = _lengths(rng, n, mu, args["length_sigma"], args["min_length"], args["max_length"],
                       args["mean_length"])
    k_lo, k_hi = args["user_interests"]
    k = rng.integers(k_lo, k_hi + 1, size=n)
    interests = items.clusters(rng.random((n, k_hi)))
    starts = BASE_TIME + rng.integers(0, START_SPAN, size=n)

    owner = np.repeat(np.arange(n), lengths)
    slot = (rng.random(len(owner)) * k[owner]).astype(np.int64)
    clusters = interests[owner, slot]
    del slot
    item_ids = items.items_in(clusters, rng.random(len(owner)))
    del clusters
    gaps = np.cumsum(rng.integers(1, MAX_GAP + 1, size=len(owner)))
    first_row = np.cumsum(lengths) - lengths
    before = np.where(first_row > 0, gaps[np.maximum(first_row - 1, 0)], 0)
    timestamps = starts[owner] + gaps - before[owner]
    return owner + first_user, item_ids, timestamps, lengths


def head_slope(counts: np.ndarray, head: int = 100, min_count: int = 5) -> float | None:
    """Least-squares slope of log(count) against log(rank) over the ``head`` most frequent items
    (only counts >= min_count); None when fewer than 10 such items."""
    counts = np.sort(np.asarray(counts)[np.asarray(counts) > 0])[::-1][:head]
    counts = counts[counts >= min_count]
    if len(counts) < 10:
        return None
    ranks = np.arange(1, len(counts) + 1, dtype=np.float64)
    return float(np.polyfit(np.log(ranks), np.log(counts.astype(np.float64)), 1)[0])


def _check_sizes(out: str, users: int, items: int, min_length: int, max_length: int) -> None:
    check_writable_dir("out", out)  # before the item tables are drawn, not when the file is written
    check_int("users", users, 1)
    if isinstance(items, bool) or not isinstance(items, int) or items < 2:
        raise ConfigError("items", items, "an integer >= 2: a catalogue of one item has nothing to rank")
    check_int("min_length", min_length, 1)
    # The mean length is solved over every length up to max_length, and one user's sequence is
    # drawn within one block of rows: beyond BLOCK_ROWS neither fits in memory.
    check_int("max_length", max_length, min_length, BLOCK_ROWS)


def generate(name: str, out: str, users: int, items: int, mean_length: float = 20.0, min_length: int = 5,
             max_length: int = 500, popularity_exponent: float = 1.0, interests: int = 1000,
             user_interests="1-4", seed: int = 0, length_sigma: float = 1.0) -> dict:
    """Write ``out/name/name.inter`` and ``name.synthetic.json`` (see the module docstring).

    Returns the summary written to the JSON: ``arguments``, ``rows``, ``users``, ``items``,
    ``items_seen``, ``length`` (mean/min/max), ``popularity_head_slope`` (slope of log count vs
    log rank over the 100 most frequent items; about -popularity_exponent), ``files``,
    ``elapsed_seconds``, ``rows_per_second``, ``peak_rss_mb``.
    """
    check_dataset_name(name)
    _check_sizes(out, users, items, min_length, max_length)
    check_int("interests", interests, 1)
    check_int("seed", seed, 0)
    mean_length = _check_float("mean_length", mean_length, min_length)
    if mean_length > max_length:
        raise ConfigError("mean_length", mean_length, f"between min_length {min_length} and max_length {max_length}")
    popularity_exponent = _check_float("popularity_exponent", popularity_exponent, 0.0)
    length_sigma = _check_float("length_sigma", length_sigma, 0.0)
    if length_sigma == 0.0:
        raise ConfigError("length_sigma", length_sigma, "length_sigma must be > 0")
    k_range = parse_range(user_interests)
    args = {"name": name, "users": users, "items": items, "mean_length": mean_length, "min_length": min_length,
            "max_length": max_length, "popularity_exponent": popularity_exponent, "interests": interests,
            "user_interests": list(k_range), "seed": seed, "length_sigma": length_sigma}

    start = time.perf_counter()
    mu = solve_length_mu(mean_length, length_sigma, min_length, max_length)
    table = _Items(items, popularity_exponent, interests, seed)
    per_block = max(1, BLOCK_ROWS // math.ceil(mean_length))

    with AtomicOutputs(out, name) as outputs:
        counts = np.zeros(items + 1, dtype=np.int64)
        rows, len_min, len_max = 0, max_length, min_length
        handle = outputs.open("inter", HEADER, binary=True)
        for index, first in enumerate(range(1, users + 1, per_block)):
            n = min(per_block, users + 1 - first)
            user_ids, item_ids, timestamps, lengths = _block(table, seed, index, first, n, mu, args)
            counts += np.bincount(item_ids, minlength=items + 1)
            rows += len(item_ids)
            len_min, len_max = min(len_min, int(lengths.min())), max(len_max, int(lengths.max()))
            _write_block(handle, format_rows([user_ids, item_ids, timestamps]))
            del user_ids, item_ids, timestamps
        elapsed = time.perf_counter() - start
        summary = {
            "arguments": args, "rows": rows, "users": users, "items": items,
            "items_seen": int(np.count_nonzero(counts[1:])),
            "length": {"mean": rows / users, "min": len_min, "max": len_max},
            "popularity_head_slope": head_slope(counts[1:]),
            "files": {"inter": outputs.path("inter"), "json": outputs.path("synthetic.json")},
            "elapsed_seconds": round(elapsed, 3), "rows_per_second": round(rows / max(elapsed, 1e-9)),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
        outputs.finish("synthetic.json", summary)
        return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recbole_croloss.data.synthetic",
                                     description="Write a synthetic sequential dataset as OUT/NAME/NAME.inter.")
    parser.add_argument("--name", required=True)
    parser.add_argument("--out", required=True, help="RecBole's data_path: OUT/NAME/ is written")
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--items", type=int, required=True)
    parser.add_argument("--mean-length", type=float, default=20.0)
    parser.add_argument("--min-length", type=int, default=5)
    parser.add_argument("--max-length", type=int, default=500)
    parser.add_argument("--popularity-exponent", type=float, default=1.0)
    parser.add_argument("--interests", type=int, default=1000, help="latent interest clusters")
    parser.add_argument("--user-interests", default="1-4", help="interests per user: k or lo-hi")
    parser.add_argument("--length-sigma", type=float, default=1.0, help="log-sd of the lognormal length")
    parser.add_argument("--seed", type=int, default=0)
    a = parser.parse_args(argv)
    return reporting_errors(lambda: generate_and_report(a))  # a bad option: 2 (errors.reporting_errors)


def generate_and_report(a) -> int:
    """Generate the dataset the arguments describe and print what was written."""
    try:
        with interrupt_signals():  # a signal unwinds the writer like an error: its temporaries go
            summary = generate(a.name, a.out, a.users, a.items, mean_length=a.mean_length,
                               min_length=a.min_length, max_length=a.max_length,
                               popularity_exponent=a.popularity_exponent, interests=a.interests,
                               user_interests=a.user_interests, seed=a.seed, length_sigma=a.length_sigma)
    except Interrupted as stop:
        print(f"error: {stop}: nothing written to {os.path.join(a.out, a.name)} (its old files, if any, "
              "are unchanged)", file=sys.stderr)
        return stop.exit_code
    print(f"wrote {summary['rows']:,} interactions of {summary['users']:,} users over {summary['items']:,} items "
          f"({summary['items_seen']:,} seen; mean length {summary['length']['mean']:.2f}, head popularity slope "
          f"{summary['popularity_head_slope']}) to {summary['files']['inter']} in {summary['elapsed_seconds']:.1f}s "
          f"({summary['rows_per_second']:,} rows/s, peak RSS {summary['peak_rss_mb']:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
