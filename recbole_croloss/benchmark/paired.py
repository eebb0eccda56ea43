r"""Paired comparisons of two methods X and Y at one N, over the seeds (and users) both have.

Seed level: ``d_s = Recall@N(X, s) - Recall@N(Y, s)``; mean ± sample std of ``d``, wins (seeds
with ``d_s > 0``) and the 95% t-interval ``mean ± t_{0.975, n-1} std / sqrt(n)``.

User level (where both cells stored their per-user hits): a two-stage paired bootstrap. The
statistic is the mean over seeds of the mean over users of ``r_X(u, s) - r_Y(u, s)`` (each
user's Recall@N, the same test users for both methods under a seed). One replicate draws the
seeds with replacement, then within each drawn seed its users with replacement; 2,000
replicates (fixed generator seed), and the 95% percentile interval. It accounts for both the
training randomness (seeds) and the finite test set (users); with 3 seeds the seed stage is
coarse, which widens the interval honestly rather than hiding it.

The verdict uses the bootstrap interval where there is one, else the t-interval: "X beats Y"
when it lies above 0, "Y beats X" when below, "inconclusive" otherwise.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

import numpy as np

#: Bootstrap replicates and the generator seed that draws them (the report is reproducible).
REPLICATES = 2000
BOOTSTRAP_SEED = 12345


def mean_std(values) -> tuple[float, float, int]:
    values = list(values)
    if not values:
        return math.nan, math.nan, 0
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else math.nan, len(values)


def first_best(keys, score):
    """The key with the highest ``score(key)``; of equal scores, the first in ``keys``' order
    (give the grid's: a tie is then broken the same way in every report, whatever the order the
    files were found in). ``None`` for no keys."""
    keys = list(keys)
    return max(keys, key=score) if keys else None  # max keeps the first of equal maxima


def t_quantile(n: int) -> float:
    """t_{0.975, n-1}."""
    from scipy.stats import t

    return float(t.ppf(0.975, n - 1)) if n > 1 else math.nan


def user_differences(x_hits: dict, y_hits: dict, n: int) -> np.ndarray:
    """Per-user ``Recall@n(X) - Recall@n(Y)`` over the users both cells hold (sorted by id);
    each argument is a cell's per-user hits (:func:`~recbole_croloss.io.load_per_user_hits`)."""
    def recall(hits):
        column = hits["ks"].tolist().index(n)
        return dict(zip(hits["users"].tolist(), hits["hits"][:, column] / hits["targets"]))

    rx, ry = recall(x_hits), recall(y_hits)
    common = sorted(set(rx) & set(ry))
    return np.array([rx[u] - ry[u] for u in common], dtype=np.float64)


def bootstrap_interval(per_seed: list[np.ndarray], replicates: int = REPLICATES,
                       seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """The 95% percentile interval of the two-stage bootstrap (seeds, then users) of the mean
    over seeds of the mean per-user difference; ``per_seed[s]`` holds seed s's differences."""
    rng = np.random.default_rng(seed)
    per_seed = [d for d in per_seed if len(d)]
    if not per_seed:
        return math.nan, math.nan
    # each seed's user-resampled means, drawn once per replicate and seed slot
    means = np.stack([d[rng.integers(0, len(d), size=(replicates, len(d)))].mean(1) for d in per_seed], 1)
    chosen = rng.integers(0, len(per_seed), size=(replicates, len(per_seed)))
    stats = np.take_along_axis(means, chosen, 1).mean(1)
    return float(np.quantile(stats, 0.025)), float(np.quantile(stats, 0.975))


@dataclass
class PairedDifference:
    mean: float
    std: float
    n: int
    wins: int
    low: float
    high: float
    boot_low: float = math.nan
    boot_high: float = math.nan
    users: int = 0

    @classmethod
    def of(cls, x: dict, y: dict, x_hits: dict | None = None, y_hits: dict | None = None,
           n_at: int | None = None) -> "PairedDifference":
        """``x``, ``y``: seed -> Recall@N; ``x_hits``, ``y_hits``: seed -> per-user hits (or
        absent), ``n_at`` the N they are read at."""
        seeds = sorted(set(x) & set(y))
        diffs = [x[s] - y[s] for s in seeds]
        mean, std, n = mean_std(diffs)
        half = t_quantile(n) * std / math.sqrt(n) if n > 1 else math.nan
        result = cls(mean, std, n, sum(d > 0 for d in diffs), mean - half, mean + half)
        x_hits, y_hits = x_hits or {}, y_hits or {}
        if n_at is not None and seeds and all(s in x_hits and s in y_hits for s in seeds):
            per_seed = [user_differences(x_hits[s], y_hits[s], n_at) for s in seeds]
            result.boot_low, result.boot_high = bootstrap_interval(per_seed)
            result.users = int(statistics.fmean(len(d) for d in per_seed))
        return result

    @property
    def bootstrapped(self) -> bool:
        return not math.isnan(self.boot_low)

    def interval(self) -> tuple[float, float]:
        """The interval the verdict uses: the bootstrap's where there is one."""
        return (self.boot_low, self.boot_high) if self.bootstrapped else (self.low, self.high)

    def verdict(self, x: str, y: str) -> str:
        low, high = self.interval()
        if self.n < 1 or math.isnan(low) or (self.n < 2 and not self.bootstrapped):
            return f"inconclusive (n={self.n})"
        if low > 0:
            return f"{x} beats {y}"
        if high < 0:
            return f"{y} beats {x}"
        return "inconclusive"

    def text(self) -> str:
        # One seed has no seed-level spread: print neither a std nor a t interval for it.
        parts = [f"wins {self.wins}/{self.n}"]
        if self.n > 1:
            parts.append(f"t 95% CI [{100 * self.low:+.2f}, {100 * self.high:+.2f}]")
        if self.bootstrapped:
            parts.append(f"bootstrap 95% CI [{100 * self.boot_low:+.2f}, {100 * self.boot_high:+.2f}]")
        spread = f" ± {100 * self.std:.2f}" if self.n > 1 else ""
        return f"{100 * self.mean:+.2f}{spread} ({'; '.join(parts)})"
