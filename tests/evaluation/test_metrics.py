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


def reference_recall(top, rows, items, k, repeats):
    """Per user: the share of its targets (each occurrence, or each distinct item) in its top k."""
    out = []
    for u in range(top.shape[0]):
        targets = [int(i) for r, i in zip(rows, items) if int(r) == u]
        if not repeats:
            targets = sorted(set(targets))
        if targets:
            out.append(sum(t in top[u, :k].tolist() for t in targets) / len(targets))
    return sum(out) / len(out)


@pytest.mark.parametrize("recall_targets", ["unique", "all"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_repeated_targets_count_as_configured(recall_targets, seed):
    from recbole_croloss.evaluation import FullRankingEvaluator

    g = torch.Generator().manual_seed(seed)
    top = torch.stack([torch.randperm(30, generator=g)[:8] for _ in range(6)])
    rows = torch.randint(0, 6, (40,), generator=g)
    items = torch.randint(0, 12, (40,), generator=g)  # many repeats of the same (user, item)
    evaluator = FullRankingEvaluator(["Recall", "NDCG"], [3, 8], 2 ** 20, recall_targets)
    acc = evaluator.accumulator(keep_per_user=True)
    evaluator.add(acc, top, rows, items, 30, user_ids=torch.arange(6) + 100)
    result = acc.result()
    for k in (3, 8):
        expected = reference_recall(top, rows, items, k, recall_targets == "all")
        assert result[f"recall@{k}"] == pytest.approx(expected, rel=1e-12)
    unique = FullRankingEvaluator(["NDCG"], [3, 8], 2 ** 20)
    plain = unique.accumulator()
    unique.add(plain, top, rows, items, 30)
    assert result["ndcg@8"] == plain.result()["ndcg@8"]  # only Recall counts repeats
    kept = acc.per_user_hits()
    assert kept["users"].tolist() == [100 + u for u in sorted(set(rows.tolist()))]
    for j, k in enumerate(kept["ks"].tolist()):
        assert (kept["hits"][:, j].double() / kept["targets"]).mean().item() == pytest.approx(result[f"recall@{k}"], rel=1e-12)


def test_an_unknown_recall_targets_is_refused():
    from recbole_croloss.evaluation import FullRankingEvaluator
    from recbole_croloss.errors import ConfigError

    with pytest.raises(ConfigError, match="recall_targets='every' is not valid; choose one of: all, unique"):
        FullRankingEvaluator(["Recall"], [5], 2 ** 20, "every")
