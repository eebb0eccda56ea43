"""protocol: sampled: negatives drawn once, never the user's items, the same for the whole run;
settings it cannot serve refused before any data."""
import numpy as np
import pytest
import torch

from recbole_croloss.data.sampled_protocol import SampledEvalLoader, draw_negatives
from recbole_croloss.errors import ConfigError
from recbole_croloss.quick_start import prepare_run, run
from tests.test_spec import spec_of

SAMPLED = {"protocol": "sampled", "topk": [5, 10, 20, 50], "metrics": ["Hit", "NDCG"], "valid_metric": "NDCG@5"}


def test_negatives_avoid_the_user_s_items_and_are_drawn_once_per_seed():
    rng = np.random.default_rng(1)
    users, items = rng.integers(0, 50, 3000), rng.integers(1, 200, 3000)
    drawn = draw_negatives(users, items, 50, 200, 99, True, seed=0)
    seen = set(zip(users.tolist(), items.tolist()))
    assert drawn.shape == (50, 99) and drawn.min() >= 1 and drawn.max() < 200
    assert not any((u, int(i)) in seen for u in range(50) for i in drawn[u])
    assert np.array_equal(drawn, draw_negatives(users, items, 50, 200, 99, True, seed=0))
    assert not np.array_equal(drawn, draw_negatives(users, items, 50, 200, 99, True, seed=1))
    anything = draw_negatives(users, items, 50, 200, 99, False, seed=0)
    assert any((u, int(i)) in seen for u in range(50) for i in anything[u])


def test_a_user_who_saw_every_item_leaves_nothing_to_draw():
    with pytest.raises(ConfigError, match="sampled_exclude_history"):
        draw_negatives(np.zeros(9, dtype=np.int64), np.arange(1, 10), 1, 10, 5, True, 0)


def test_each_case_ranks_its_positive_among_fixed_negatives_it_never_saw(tiny):
    prepared = prepare_run("TwoTower", "ml-100k", config_dict={**tiny, **SAMPLED})
    valid, test = prepared.valid_data, prepared.test_data
    assert isinstance(test, SampledEvalLoader) and not torch.equal(valid.negatives, test.negatives)
    dataset = prepared.train_data._dataset
    first = [(i, c.clone()) for i, c in test]
    again = [c for _, c in test]
    assert all(torch.equal(a[1], b) for a, b in zip(first, again))  # the same at every evaluation
    interaction, candidates = first[0]
    assert candidates.shape[1] == 100
    uid = dataset.uid_field
    history = interaction[dataset.item_id_list_field] if hasattr(dataset, "item_id_list_field") else None
    for row in range(len(interaction)):
        seen = set(history[row].tolist()) - {0}
        assert not seen & set(candidates[row, 1:].tolist())
    assert int(interaction[uid][0]) > 0


def test_a_run_states_the_protocol_and_reports_hr_and_ndcg(tiny):
    record = run("TwoTower", "ml-100k", config_dict={**tiny, **SAMPLED})
    assert record["protocol"] == "sampled" and "ties counted against the positive" in record["protocol_label"]
    assert set(record["test_result"]) == {f"{m}@{k}" for m in ("hit", "ndcg") for k in (5, 10, 20, 50)}
    assert 0 < record["test_result"]["ndcg@5"] < record["test_result"]["hit@5"] <= 1


@pytest.mark.parametrize("settings, fragment", [
    ({"topk": [5, 200]}, "at most 1 + sampled_negatives = 100"),
    ({"sampled_negatives": 0}, "sampled_negatives must be an integer >= 1"),
    ({"sampled_exclude_history": "yes"}, "sampled_exclude_history='yes' is not valid; true or false"),
    ({"nproc": 2}, "the sampled evaluation is not sharded"),
    ({"faiss_index": "flat"}, "none under protocol='sampled'"),
    ({"eval_engine": "recbole"}, "protocol='sampled' is evaluated by the plugin's evaluator only"),
])
def test_what_the_sampled_protocol_cannot_serve_is_refused(settings, fragment):
    with pytest.raises(ConfigError) as caught:
        spec_of(**{**SAMPLED, **settings})
    assert fragment in str(caught.value)
