"""The memory plan, the budget, and the evaluator's figures against RecBole's own on ml-100k."""
import pytest
import torch
from recbole.trainer import Trainer

from recbole_croloss.errors import ConfigError
from recbole_croloss.evaluation import FullRankingEvaluator, parse_bytes, plan_memory
from recbole_croloss.evaluation.evaluator import GOOD_CHUNK, cell_bytes, row_bytes
from recbole_croloss.quick_start import prepare_run, main
from tests.devices import on_devices, recbole_device

ALL = ["Recall", "NDCG", "Hit", "MRR", "Precision"]


@pytest.mark.parametrize("text,expected", [("2GiB", 2 * 2**30), ("512 MiB", 512 * 2**20), ("1.5g", 1.5e9),
                                           ("1e9", int(1e9)), (4096, 4096), ("300kb", 300_000)])
def test_parse_bytes(text, expected):
    assert parse_bytes("eval_memory_budget", text) == expected


@pytest.mark.parametrize("bad", ["lots", "-1GiB", 0, True, "2 parsecs", None])
def test_parse_bytes_rejects(bad):
    with pytest.raises(ConfigError, match="eval_memory_budget=.*a size in bytes"):
        parse_bytes("eval_memory_budget", bad)


@pytest.mark.parametrize("n_items", [10_000, 314_000, 1_700_000])
@pytest.mark.parametrize("budget", [2**24, 2**28, 2**31])
@pytest.mark.parametrize("interests", [1, 4])
def test_plan_fits_the_budget_whatever_the_catalogue(n_items, budget, interests):
    plan = plan_memory(budget, n_items, 500, interests, max_rows=4096)
    assert plan.bytes <= budget and 1 <= plan.rows <= 4096 and 1 <= plan.chunk <= n_items
    assert plan.bytes == plan.rows * (plan.chunk * cell_bytes(interests) + row_bytes(500, 4, n_items))
    assert plan.chunk >= min(n_items, GOOD_CHUNK) or plan.rows == 1


def test_whole_catalogue_in_one_chunk_when_it_fits():
    plan = plan_memory(2**30, 1683, 500, max_rows=4096)
    assert plan.chunk == 1683 and plan.rows == 4096


def test_budget_too_small_for_one_row_is_a_clear_error():
    with pytest.raises(ConfigError, match=r"eval_memory_budget='1000 B'.*one user's row needs at least"):
        plan_memory(1000, 1_700_000, 500)


@on_devices
def test_row_blocks_give_the_same_top_n(device):
    gen = torch.Generator().manual_seed(0)
    queries, keys = torch.randn(300, 3, 8, generator=gen), torch.randn(3000, 8, generator=gen)
    small = FullRankingEvaluator(ALL, [10, 50], memory_budget=plan_memory(10**9, 3000, 50, 3).bytes // 100)
    big = FullRankingEvaluator(ALL, [10, 50], memory_budget=10**9)
    assert small.plan(3000, 3, 300).rows < 300
    s1, i1 = small.topk(queries.to(device), keys.to(device))
    s2, i2 = big.topk(queries.to(device), keys.to(device))
    assert s1.device.type == i1.device.type == device
    assert torch.equal(i1, i2)
    torch.testing.assert_close(s1, s2)
    if device != "cpu":  # the CPU's top N: its scores, and the float64 scores of the ids found
        cpu_scores, _ = big.topk(queries, keys)
        torch.testing.assert_close(s1.cpu(), cpu_scores, rtol=1e-5, atol=1e-5)
        exact = (queries.double() @ keys.double().T).amax(1)
        torch.testing.assert_close(exact.gather(1, i1.cpu()), cpu_scores.double(), rtol=1e-5, atol=1e-5)


@pytest.fixture
def precise(tiny):
    """All five metrics, unrounded (RecBole rounds to 4 places by default)."""
    return {**tiny, "metrics": ALL, "metric_decimal_place": 12}


def both(prepared, data):
    ours = prepared.trainer.evaluate(data, load_best_model=False)
    theirs = Trainer.evaluate(prepared.trainer, data, load_best_model=False)  # RecBole's own evaluator
    return ours, theirs


@pytest.mark.parametrize("model,settings", [
    ("GRU4Rec", {"loss": "ce"}), ("SASRec", {"loss": "croloss", "alpha": 1.2}),
    ("ComiRec", {"loss": "croloss", "interest_extractor": "sa"}), ("TwoTower", {"loss": "ce"}),
    ("BERT4Rec", {"loss": "ce"}),  # ranked by its own full_sort_predict rows
])
def test_figures_equal_recboles_on_the_ml100k_slice(precise, model, settings):
    """Trained one epoch; the default budget (one block) and 200 KiB (blocks of a few rows)."""
    prepared = prepare_run(model, "ml-100k", config_dict={**precise, **settings})
    prepared.trainer.fit(prepared.train_data, saved=False)
    for budget in (2**30, 200 * 2**10):
        prepared.trainer.ranking_evaluator.memory_budget = budget
        ours, theirs = both(prepared, prepared.test_data)
        assert list(ours) == list(theirs) and len(ours) == 5 * 4
        for key in theirs:
            assert ours[key] == pytest.approx(theirs[key], abs=1e-6), (budget, key)


@on_devices
def test_figures_equal_recboles_on_full_ml100k_valid_and_test(tiny, monkeypatch, device):
    """All 943 users, every item; an untrained GRU4Rec (evaluation only: seconds). On CUDA the
    chunked evaluator's device path against RecBole's evaluator on the same device."""
    settings = {**tiny, "user_inter_num_interval": None, "metrics": ALL, "metric_decimal_place": 12,
                "loss": "croloss", "eval_memory_budget": "300KiB", **recbole_device(device, monkeypatch)}
    prepared = prepare_run("GRU4Rec", "ml-100k", config_dict=settings)
    assert prepared.trainer.device.type == device
    assert prepared.trainer.ranking_evaluator.plan(prepared.adapter.model.n_items, 1, 4096).rows < 943
    for data in (prepared.valid_data, prepared.test_data):
        ours, theirs = both(prepared, data)
        for key in theirs:
            assert ours[key] == pytest.approx(theirs[key], abs=1e-6), key


@on_devices
def test_eval_mask_history_removes_the_input_sequence(precise, monkeypatch, device):
    prepared = prepare_run("GRU4Rec", "ml-100k", config_dict={**precise, "loss": "croloss", "eval_mask": "history",
                                                              **recbole_device(device, monkeypatch)})
    interaction = next(iter(prepared.test_data))[0].to(device)
    seq = interaction[prepared.adapter.model.ITEM_SEQ]
    exclusions = prepared.trainer.eval_mask.exclusions(None, interaction, prepared.adapter.model)
    assert len(exclusions.rows) == int((seq > 0).sum())
    score, keys = prepared.adapter.retrieval.score, prepared.adapter.retrieval.ranking_keys()
    _, ids = prepared.trainer.ranking_evaluator.topk(score.query(prepared.adapter.retrieval.user_vectors(interaction)), keys, exclusions)
    assert ids.device.type == device
    for row in range(len(ids)):
        assert not set(ids[row].tolist()) & set(seq[row][seq[row] > 0].tolist())
        assert 0 not in ids[row].tolist()


@pytest.mark.parametrize("key,value,fragment", [
    ("eval_engine", "fast", "choose one of: chunked, recbole"),
    ("eval_mask", "seen", "choose one of: history, none, recbole"),
    ("eval_memory_budget", "lots", "a size in bytes"),
    ("metrics", "['Recall', 'MAP']", "full-ranking evaluator computes"),
])
def test_bad_evaluation_settings_stop_the_cli(tiny, key, value, fragment, capsys):
    args = [f"--{k}={v}" for k, v in tiny.items()]
    assert main(["--model=GRU4Rec", f"--{key}={value}", *args]) == 2
    err = capsys.readouterr().err
    assert f"{key}=" in err and fragment in err


def test_budget_too_small_stops_before_training(tiny, capsys):
    args = [f"--{k}={v}" for k, v in tiny.items()]
    assert main(["--model=GRU4Rec", "--eval_memory_budget=2KiB", *args]) == 2
    assert "one user's row needs at least" in capsys.readouterr().err


def test_recbole_engine_is_recboles_evaluator(precise):
    prepared = prepare_run("GRU4Rec", "ml-100k", config_dict={**precise, "eval_engine": "recbole"})
    assert prepared.trainer.ranking_evaluator is None
    prepared.trainer.fit(prepared.train_data, saved=False)
    assert prepared.trainer.evaluate(prepared.test_data, load_best_model=False) == \
        Trainer.evaluate(prepared.trainer, prepared.test_data, load_best_model=False)


def test_the_memory_budget_is_taken_as_the_key_takes_it():
    """A string budget failed with int()'s own words; the key's "1GiB" is what users write."""
    assert FullRankingEvaluator(ALL, [10], "1GiB").memory_budget == 2 ** 30
    with pytest.raises(ConfigError, match="eval_memory_budget='lots' is not valid; a size in bytes > 0"):
        FullRankingEvaluator(ALL, [10], "lots")


Q, K3, K5 = torch.randn(3, 4), torch.randn(40, 4), torch.randn(40, 5)
ROWS, ITEMS = torch.tensor([0, 1, 2]), torch.tensor([0, 1, 2])


@pytest.mark.parametrize("call, error, match", [
    (lambda ev: FullRankingEvaluator([], [5], 2 ** 24), ConfigError,
     "metrics=\\[\\] is not valid; at least one of: Recall, NDCG, Hit, MRR, Precision"),
    (lambda ev: ev.evaluate(Q, K5, ROWS, ITEMS), ValueError,
     r"queries \[U, d\] or \[U, K, d\] and keys \[N, d\] must share d; got queries \(3, 4\) and keys \(40, 5\)"),
    (lambda ev: ev.evaluate(Q, K3, ROWS, torch.tensor([0, 1, 99])), ValueError,
     "targets must be \\(row, item\\) pairs with rows in 0..2 .* and items in 0..39"),
    (lambda ev: ev.evaluate(Q, K3, torch.tensor([0, 1, 7]), ITEMS), ValueError,
     "targets must be \\(row, item\\) pairs with rows in 0..2"),
    (lambda ev: ev.evaluate(torch.zeros(0, 4), K3, ROWS[:0], ITEMS[:0]), ValueError,
     "no user with a target was evaluated"),
    (lambda ev: ev.evaluate(torch.cat([Q[:2], torch.full((1, 4), float("nan"))]), K3, ROWS, ITEMS), ValueError,
     "1 of 3 query rows \\(the model's user vectors\\) are NaN or infinite"),
], ids=["no metric", "query and key sizes differ", "a target item beyond the catalogue",
        "a target row beyond the users", "no users", "a NaN query"])
def test_inputs_the_evaluator_cannot_rank_are_named(call, error, match):
    """Before: an empty result, a matmul error, or an IndexError about a mask's shape."""
    with pytest.raises(error, match=match):
        call(FullRankingEvaluator(["Recall"], [5], 2 ** 24))
