"""Serving a trained model's test users from a faiss index, beside the exact ranking.

:func:`faiss_test_results` ranks the trainer's own full-ranking batches twice, with the index
and with the chunked evaluator's exact top N, and returns both sets of metrics and the index's
ANN recall; :func:`serving_text` is how the CLI prints them.
"""
from __future__ import annotations

import os
import time

import numpy as np
import torch

from ..errors import ConfigError
from ..evaluation import results_table
from ..glue.masks import NoMask
from ..faiss_index import ItemIndex, ann_recall
from ..settings.spec import ServingSpec


def faiss_test_results(prepared, serving: ServingSpec) -> dict:
    """Serve the test users of ``prepared`` (a :class:`~recbole_croloss.flow.build.PreparedRun`)
    from a faiss index of the trained item vectors (every item but the padding; nothing else
    masked) and compare with the exact top N of the chunked evaluator.

    Returns ``{"kind", "device", "build_seconds", "ann_recall@N", "test_result",
    "exact_test_result", "export"}``.
    """
    adapter, trainer = prepared.adapter, prepared.trainer
    retrieval = adapter.retrieval
    if retrieval is None:
        raise ConfigError("faiss_index", serving.kind, f"{prepared.config['model']} ranks by its own "
                          "full_sort_predict, not by item vectors, so no index can serve it")
    evaluator, score = trainer.ranking_evaluator, retrieval.score
    dataset = prepared.test_data._dataset
    n_items, n = dataset.item_num, evaluator.n
    tokens = dataset.id2token(dataset.iid_field, np.arange(1, n_items))
    adapter.eval()
    with torch.no_grad():
        start = time.perf_counter()
        index = ItemIndex.build(retrieval.item_vectors()[1:], tokens, kind=serving.kind, score=score.name,
                                scale=score.scale, nprobe=serving.nprobe)
        build_seconds = time.perf_counter() - start
        served, exact, keys = evaluator.accumulator(), evaluator.accumulator(), trainer.ranking_keys()
        overlap = []
        for interaction, exclusions, positive_u, positive_i in trainer.full_ranking_batches(
                prepared.test_data, NoMask()):
            found = index.search(retrieval.user_vectors(interaction), n)
            served_ids = torch.from_numpy(found.rows + 1)  # index row r is item r + 1 (-1: none)
            exact_ids = trainer.top_ids(interaction, exclusions, keys, n_items).cpu()
            evaluator.add(served, served_ids, positive_u.cpu(), positive_i.cpu(), n_items)
            evaluator.add(exact, exact_ids, positive_u.cpu(), positive_i.cpu(), n_items)
            overlap.append((ann_recall(found.rows + 1, exact_ids.numpy()), len(interaction)))
    if serving.export:
        index.save(serving.export)
    decimals = prepared.config["metric_decimal_place"]
    return {"kind": serving.kind, "device": "GPU" if index.on_gpu else "CPU",
            "build_seconds": round(build_seconds, 3),
            f"ann_recall@{n}": round(sum(r * u for r, u in overlap) / sum(u for _, u in overlap), 6),
            "test_result": served.result(decimals), "exact_test_result": exact.result(decimals),
            "export": os.path.abspath(serving.export) if serving.export else None}


def faiss_test_results_or_error(prepared, serving: ServingSpec) -> dict:
    """:func:`faiss_test_results`, or ``{"kind", "error"}`` when serving fails: an optional step
    whose failure is reported beside the test metrics, never instead of them."""
    try:
        return faiss_test_results(prepared, serving)
    except Exception as err:  # any failure of the optional step; the run's results stand
        return {"kind": serving.kind, "error": f"{type(err).__name__}: {err}"}


def serving_text(served: dict) -> str:
    """The CLI's lines for :func:`faiss_test_results`' dict (or the error that stopped it)."""
    if "error" in served:
        return f"faiss {served['kind']} serving failed, the test results above are kept: {served['error']}"
    ann = next(k for k in served if k.startswith("ann_recall@"))
    return (f"served by a faiss {served['kind']} index ({served['device']}, built in "
            f"{served['build_seconds']:.1f}s): {ann.replace('_', ' ')} = {served[ann]:.4f} of the exact "
            "top N (padding item excluded, nothing else masked)\n" + results_table(served["test_result"])
            + (f"\nindex exported to {served['export']}" if served["export"] else ""))
