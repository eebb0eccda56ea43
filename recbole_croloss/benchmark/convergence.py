"""Whether a benchmark's cells converged, their training curves, and the claims' verdicts.

A cell "may be undertrained" when its best validation came within the last ``stopping_step``
validations (the cell's own patience) of a stop by its budget (``max_epochs`` or ``max_steps``,
not early stopping): a larger budget might have found a better model, so its figures are not
those of a converged run. A cell stored without a training history (an older record) is
counted apart: nothing can be said about it.
"""
from __future__ import annotations

import statistics

from ..glue.history import undertrained
from ..io import save_png

#: What the claims' rows of :func:`~.report.paired_comparisons` are summarised into.
CLAIMS = {
    "a": "(a) larger alpha favours small N (largest vs smallest alpha, per kernel row)",
    "b": "(b) the best CROLoss beats the best conventional loss",
    "c-best": "(c) the Lambda method beats plain CROLoss (best of each)",
}


def patience_of(record: dict) -> int:
    return int((record.get("config") or {}).get("stopping_step") or 0)


def flagged(results) -> list:
    """The cells (``CellResult``) whose best validation came near a budget stop."""
    return [r for r in results if r.record.get("history") and undertrained(r.record, patience_of(r.record))]


def summary_lines(results, flagged_cells) -> list[str]:
    """The report's convergence section."""
    without = [r for r in results if not r.record.get("history")]
    stops = {}
    for r in results:
        stops[r.record.get("stopped", "unknown")] = stops.get(r.record.get("stopped", "unknown"), 0) + 1
    epochs = [r.record["best_epoch"] for r in results if r.record.get("best_epoch") is not None]
    lines = ["## Convergence", "",
             f"**{len(flagged_cells)} of {len(results)} finished cells may be undertrained** (best "
             "validation within the cell's last `stopping_step` validations of its budget). "
             f"Stops: {', '.join(f'{k} {v}' for k, v in sorted(stops.items()))}."]
    if epochs:
        lines[-1] += (f" Best epoch (counted from 0): median {statistics.median(epochs):g}, "
                      f"range {min(epochs)}-{max(epochs)}.")
    if without:
        lines[-1] += f" {len(without)} cells were stored without a training history."
    if flagged_cells:
        lines += ["", "| cell | seed | stopped | best epoch | validations |", "|---|---|---|---|---|"]
        lines += [f"| {r.method.label} | {r.seed} | {r.record['stopped']} | {r.record['best_epoch']} | "
                  f"{len(r.record['history'])} |" for r in flagged_cells]
    return lines + [""]


def claim_lines(rows: list[dict]) -> list[str]:
    """One line per claim: at how many of its comparisons it holds, fails or is inconclusive."""
    lines = []
    for claim, text in CLAIMS.items():
        mine = [r for r in rows if r["claim"] == claim]
        if not mine:
            continue
        if claim == "a":
            lines.append(f"- {text}: {_alpha_verdict(mine)}")
            continue
        held = [r["N"] for r in mine if r["sign"] > 0]
        failed = [r["N"] for r in mine if r["sign"] < 0]
        open_ = [r["N"] for r in mine if r["sign"] == 0]
        lines.append(f"- {text}: holds at N = {_ns(held)}; fails at N = {_ns(failed)}; "
                     f"inconclusive at N = {_ns(open_)}")
    return lines + [""] if lines else []


def _alpha_verdict(rows: list[dict]) -> str:
    """Per kernel row: holds when the largest alpha wins at the smallest N and loses at the
    largest; fails when either end goes significantly the other way."""
    by_row: dict[tuple, list[dict]] = {}
    for r in rows:
        by_row.setdefault((r["x"], r["y"]), []).append(r)
    verdicts = {"holds": 0, "fails": 0, "inconclusive": 0}
    for comparisons in by_row.values():
        comparisons.sort(key=lambda r: r["N"])
        small, large = comparisons[0]["sign"], comparisons[-1]["sign"]
        verdicts["holds" if (small, large) == (1, -1) else "fails" if small < 0 or large > 0
                 else "inconclusive"] += 1
    return ", ".join(f"{k} for {v} of {len(by_row)} rows" for k, v in verdicts.items())


def _ns(ns: list[int]) -> str:
    return ", ".join(map(str, ns)) or "none"


def training_curves_figure(model_results, path: str) -> bool:
    """Validation score against training step, one line per method (the mean over its seeds at
    each validation they share); False when no cell has a history."""
    curves = {}
    for label, by_seed in model_results.by_method.items():
        histories = [r.record.get("history") or [] for r in by_seed.values()]
        histories = [h for h in histories if h]
        if histories:
            length = min(len(h) for h in histories)
            curves[label] = ([e["step"] for e in histories[0][:length]],
                             [statistics.fmean(h[i]["valid_score"] for h in histories) for i in range(length)])
    if not curves:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 6))
    colours = plt.get_cmap("tab20")
    for i, (label, (steps, scores)) in enumerate(sorted(curves.items())):
        ax.plot(steps, [100 * s for s in scores], color=colours(i % 20),
                linestyle="-" if i < 20 else "--", linewidth=1.2, label=label)
    ax.set_xlabel("training step")
    ax.set_ylabel("validation score (%), mean over seeds")
    ax.grid(True, alpha=0.3)
    ax.set_title(f"{model_results.title}: validation during training", fontsize=10)
    ax.legend(fontsize=6, ncol=2 if len(curves) > 12 else 1, loc="lower right")
    fig.tight_layout()
    save_png(fig, path, dpi=110)
    return True
