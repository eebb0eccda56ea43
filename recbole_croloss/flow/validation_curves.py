"""A run's validation curves as a PNG beside its JSON record (``X.json`` -> ``X.curves.png``).

One panel per metric (``recall``, ``ndcg``, ...; a line per cut-off N), one for the
validation score (the ``valid_metric``) and one for the training loss since the previous
validation, each against the training step; a dotted line marks the best validation (the
weights the test used, unless ``test_weights: last``). Written atomically
(:func:`recbole_croloss.io.save_png`), drawn with matplotlib's Agg backend (no display needed).
"""
from __future__ import annotations

import math
import os

from ..io import save_png


def curves_file(record_path: str) -> str:
    """The figure beside a record: ``X.json`` (or ``X``) -> ``X.curves.png``."""
    root, ext = os.path.splitext(record_path)
    return (root if ext == ".json" else record_path) + ".curves.png"


def metric_panels(history: list[dict]) -> dict[str, dict[int, list[float]]]:
    """``{metric: {N: [value at each validation]}}`` from the history's ``valid_result`` keys
    (``recall@50``), in the order the result lists them."""
    panels: dict[str, dict[int, list[float]]] = {}
    for key in history[0]["valid_result"]:
        metric, _, k = key.partition("@")
        panels.setdefault(metric, {})[int(k) if k.isdigit() else 0] = \
            [entry["valid_result"].get(key, math.nan) for entry in history]
    return panels


def draw_validation_curves(record: dict, path: str) -> bool:
    """Draw ``record``'s history (:mod:`recbole_croloss.glue.history`) to ``path``; False when
    the run has no validation to draw."""
    history = record.get("history") or []
    if not history or not history[0]["valid_result"]:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [entry["step"] for entry in history]
    panels = metric_panels(history)
    columns = min(3, len(panels) + 2)
    rows = math.ceil((len(panels) + 2) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.2 * rows), squeeze=False)
    axes = axes.ravel()
    for ax, (metric, by_k) in zip(axes, panels.items()):
        for k, values in sorted(by_k.items()):
            ax.plot(steps, values, marker=".", label=f"@{k}" if k else metric)
        ax.set_title(metric, fontsize=9)
        ax.legend(fontsize=6)
    ax_score, ax_loss = axes[len(panels)], axes[len(panels) + 1]
    ax_score.plot(steps, [entry["valid_score"] for entry in history], marker=".", color="black")
    ax_score.set_title(f"validation score ({record.get('config', {}).get('valid_metric', 'valid_metric')})", fontsize=9)
    ax_loss.plot(steps, [math.nan if entry["train_loss"] is None else entry["train_loss"] for entry in history],
                 marker=".", color="tab:red")
    ax_loss.set_title("training loss since the previous validation", fontsize=9)
    for ax in axes[:len(panels) + 2]:
        ax.set_xlabel("training step", fontsize=8)
        ax.grid(True, alpha=0.3)
        if record.get("best_step") is not None:
            ax.axvline(record["best_step"], color="grey", linestyle=":", linewidth=1)
    for ax in axes[len(panels) + 2:]:
        ax.axis("off")
    fig.suptitle(f"{record.get('model')} on {record.get('dataset')}, loss={record.get('loss')} "
                 f"({record.get('protocol_label', record.get('protocol'))}): validation", fontsize=10)
    fig.tight_layout()
    save_png(fig, path, dpi=100)
    return True
