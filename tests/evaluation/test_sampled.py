"""Sampled-candidate metrics: the positive's rank with ties against it, HR and NDCG by hand."""
import math

import pytest
import torch

from recbole_croloss.evaluation import FullRankingEvaluator
from recbole_croloss.evaluation.sampled import add_sampled, pessimistic_ranks

#: positive first; row 1 has a tie with the positive, row 2 the positive last of 5.
SCORES = torch.tensor([[0.9, 0.1, 0.2, 0.3, 0.0],
                       [0.5, 0.5, 0.9, 0.1, 0.2],
                       [0.0, 0.1, 0.2, 0.3, 0.4]])


def test_ties_count_against_the_positive():
    assert pessimistic_ranks(SCORES).tolist() == [0, 2, 4]


def test_hit_and_ndcg_are_the_hand_computed_ones():
    evaluator = FullRankingEvaluator(["Hit", "NDCG", "MRR"], [1, 3, 5], 2 ** 20)
    acc = evaluator.accumulator()
    add_sampled(acc, SCORES)
    result = acc.result()
    ranks = [0, 2, 4]
    for k in (1, 3, 5):
        assert result[f"hit@{k}"] == pytest.approx(sum(r < k for r in ranks) / 3)
        assert result[f"ndcg@{k}"] == pytest.approx(sum(1 / math.log2(r + 2) for r in ranks if r < k) / 3)
        assert result[f"mrr@{k}"] == pytest.approx(sum(1 / (r + 1) for r in ranks if r < k) / 3)
