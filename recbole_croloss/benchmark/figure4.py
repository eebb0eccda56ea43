"""The paper's figure 4 from a model's results: Recall@N against N for each alpha of plain
CROLoss with one kernel, and below it each alpha's paired offset from the mean over the alphas."""
from __future__ import annotations

import math
import statistics

from ..io import save_png
from .grid import Method
from .paired import mean_std


def recall_by_n_figure(results, kernel: str, path: str) -> bool:
    """Recall@N against N (log scale) for each alpha of plain CROLoss with ``kernel``; below it,
    each alpha's difference from the mean over the alphas (what separates the curves).
    Returns False when the results have fewer than two alphas for that kernel."""
    plain_row = Method((("loss", "croloss"), ("kernel", kernel))).label  # croloss(kernel=K), any alpha
    curves = results.alpha_rows().get(plain_row, {})
    if len(curves) < 2:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = results.ns
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7.5, 7.5), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 2]})
    alphas = sorted(curves)
    stats = {a: [results.test_stats(curves[a], n) for n in ns] for a in alphas}
    counts = sorted({s[2] for a in alphas for s in stats[a]})
    for a in alphas:
        means = [100 * m for m, _, _ in stats[a]]
        stds = [100 * (s if not math.isnan(s) else 0.0) for _, s, _ in stats[a]]
        top.errorbar(ns, means, yerr=stds, marker="o", capsize=3, label=f"α = {a:g}")
        # per seed: this alpha's Recall@N minus the mean over the alphas of the same seed
        offsets = []
        for n in ns:
            by_alpha = {b: results.test_by_seed(curves[b], n) for b in alphas}
            seeds = set.intersection(*(set(v) for v in by_alpha.values()))
            offsets.append(mean_std(100 * (by_alpha[a][s] - statistics.fmean(by_alpha[b][s] for b in alphas))
                                for s in seeds))
        bottom.errorbar(ns, [m for m, _, _ in offsets], yerr=[0.0 if math.isnan(s) else s for _, s, _ in offsets],
                        marker="o", capsize=3, label=f"α = {a:g}")
    bottom.axhline(0, color="grey", linewidth=0.8)
    for ax in (top, bottom):
        ax.set_xscale("log")
        ax.grid(True, which="both", alpha=0.3)
    bottom.set_xticks(ns)
    bottom.set_xticklabels([str(n) for n in ns])
    top.set_ylabel("Recall@N (%), test")
    bottom.set_ylabel("Recall@N − mean over α\n(points, paired by seed)")
    bottom.set_xlabel("retrieval size N (log scale)")
    top.legend(title=f"CROLoss, {kernel} kernel")
    top.set_title(f"{results.dataset}, {results.model}: Recall@N by α ({kernel} kernel)\n"
                  f"protocol: {results.protocol}; mean ± std over "
                  f"{'-'.join(map(str, (counts[0], counts[-1]) if len(counts) > 1 else counts))} seeds", fontsize=10)
    fig.tight_layout()
    save_png(fig, path, dpi=120)
    return True
