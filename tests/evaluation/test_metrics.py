"""The metrics against RecBole's own metric classes and a hand-checked multi-target case."""
import numpy as np
import pytest
import torch
from recbole.evaluator.metrics import MRR, NDCG, Hit, Precision, Recall

from recbole_croloss.compat import restore_numpy_aliases
from recbole_croloss.errors import ConfigError
from recbole_croloss.evaluation.metrics import MetricAccumulator, check_metrics, per_user_metrics, target_hits

KS = [1, 3, 5, 10]


def recbole_metric(cls, hits, n_pos):
    restore_numpy_aliases()
    metric = cls({"topk": KS, "metric_decimal_place": 12})
    return metric.metric_info(hits, n_pos) if cls in (Recall, NDCG) else metric.metric_info(hits)


@pytest.mark.parametrize("cls,name", [(Recall, "Recall"), (NDCG, "NDCG"), (Hit, "Hit"), (MRR, "MRR"),
                                      (Precision, "Precision")])
def test_per_user_values_equal_recboles(cls, name):
    rng = np.random.default_rng(0)
    hits = rng.random((200, 10)) < 0.15
    n_pos = hits.sum(1) + rng.integers(0, 4, 200)
    n_pos[n_pos == 0] = 1
    ours = per_user_metrics(torch.from_numpy(hits), torch.from_numpy(n_pos), [name], KS)
    theirs = recbole_metric(cls, hits.astype(int), n_pos)
    for k in KS:
        np.testing.assert_allclose(ours[f"{name.lower()}@{k}"].numpy(), theirs[:, k - 1], rtol=1e-12)


def test_multi_target_recall_by_hand():
    """User 0 has targets {3, 7, 9}; its top-4 is [7, 1, 3, 2]: 2 of 3 hit by N = 4, 1 by N = 1.
    User 1 has target {5}, top-4 [5, 0, 4, 6]. Recall@1 = (1/3 + 1) / 2, Recall@4 = (2/3 + 1) / 2."""
    top = torch.tensor([[7, 1, 3, 2], [5, 0, 4, 6]])
    hits, n_pos = target_hits(top, torch.tensor([0, 0, 0, 1, 0]), torch.tensor([3, 7, 9, 5, 3]), n_items=10)
    assert n_pos.tolist() == [3, 1]  # the repeated (0, 3) counts once
    acc = MetricAccumulator(["Recall", "Hit", "NDCG", "MRR", "Precision"], [1, 4])
    acc.add(hits, n_pos)
    r = acc.result()
    assert r["recall@1"] == pytest.approx((1 / 3 + 1) / 2) and r["recall@4"] == pytest.approx((2 / 3 + 1) / 2)
    assert r["hit@1"] == 1.0 and r["precision@4"] == pytest.approx((2 / 4 + 1 / 4) / 2)
    assert r["mrr@4"] == 1.0
    ideal0 = 1 + 1 / np.log2(3) + 1 / np.log2(4)
    assert r["ndcg@4"] == pytest.approx(((1 + 1 / np.log2(4)) / ideal0 + 1.0) / 2)


def test_users_without_targets_are_not_counted_and_rounding_is_recboles():
    acc = MetricAccumulator(["Recall"], [2])
    acc.add(torch.tensor([[True, False], [False, False], [False, True]]), torch.tensor([1, 0, 3]))
    assert acc.users == 2
    assert acc.result()["recall@2"] == pytest.approx((1 + 1 / 3) / 2)
    assert acc.result(4)["recall@2"] == round((1 + 1 / 3) / 2, 4)


@pytest.mark.parametrize("metrics,ks,key", [(["Recall", "GAUC"], [10], "metrics"), (["Recall"], [0], "topk"),
                                            (["Recall"], ["10"], "topk"), (["Recall"], [], "topk")])
def test_bad_metrics_or_topk(metrics, ks, key):
    with pytest.raises(ConfigError, match=f"^{key}="):
        check_metrics(metrics, ks)


def test_metric_names_in_any_case():
    assert check_metrics(["recall", "ndcg"], [50, 10, 50]) == (("Recall", "NDCG"), (10, 50))
