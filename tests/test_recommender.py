"""Recommender: a trained model's top k for sequences of item tokens, as its evaluator ranks them."""
import random
import tracemalloc
from typing import NamedTuple

import pytest
import torch

from recbole_croloss.errors import ConfigError
from recbole_croloss.glue.masks import HistoryMask, RecBoleMask
from recbole_croloss.loading import LoadedRun, load, trainer_for
from recbole_croloss.recommender import Recommender, UnknownTokenError, UnknownTokensWarning
from recbole_croloss.retrieval import ItemIndex


class Served(NamedTuple):
    record: dict
    loaded: LoadedRun
    recommender: Recommender
    trainer: object


@pytest.fixture(scope="module")
def served(trained_run, tmp_path_factory):
    """``served(model)``: the session's run of ``model`` reloaded, its recommender and trainer."""
    cache = {}

    def serve(model):
        if model not in cache:
            record = trained_run(model)
            with pytest.MonkeyPatch.context() as patch:
                patch.chdir(tmp_path_factory.mktemp("served"))  # the trainer's log folders
                loaded = load(record["files"]["model"])
                trainer = trainer_for(loaded.config, loaded.model)
            cache[model] = Served(record, loaded, Recommender(loaded.config, loaded.model, loaded.dataset), trainer)
        return cache[model]

    return serve


def tokens(dataset, ids) -> list[str]:
    return [str(t) for t in dataset.id2token(dataset.iid_field, ids.cpu().numpy())]


def evaluator_lists(served: Served, mask, k: int):
    """The test users' histories (tokens) and the evaluator's top k for them under ``mask``."""
    trainer, dataset = served.trainer, served.loaded.dataset
    inner, keys = served.loaded.model.model, trainer.ranking_keys()
    histories, lists = [], []
    for interaction, exclusions, _, _ in trainer.full_ranking_batches(served.loaded.test_data, mask):
        lengths = interaction[inner.ITEM_SEQ_LEN]
        assert int(lengths.max()) < served.loaded.config["MAX_ITEM_LIST_LENGTH"]  # whole histories
        histories += [tokens(dataset, seq[:n]) for seq, n in zip(interaction[inner.ITEM_SEQ], lengths)]
        top = trainer.top_ids(interaction, exclusions, keys, dataset.item_num)[:, :k]
        lists += [tokens(dataset, row) for row in top]
    return histories, lists


@pytest.mark.parametrize("model", ["GRU4Rec", "ComiRec"])  # one user vector; four interests (best one ranks)
@pytest.mark.parametrize("mask,exclude_input", [(RecBoleMask(), False), (HistoryMask(), True)])
def test_the_test_users_get_the_evaluators_top_k(served, model, mask, exclude_input):
    # At test time RecBole masks only the padding item for a sequential model (eval_mask: recbole);
    # eval_mask: history also masks the input sequence, which here is the user's whole history.
    s = served(model)
    histories, expected = evaluator_lists(s, mask, 20)
    got = s.recommender.recommend(histories, k=20, exclude_input=exclude_input)
    assert len(got) == len(histories) > 100
    assert [r.items for r in got] == expected
    # Scores: S(u, v) of the model, against a float64 reference computed from the vectors.
    retrieval, dataset = s.loaded.model.retrieval, s.loaded.dataset
    interaction = next(iter(s.loaded.test_data))[0]
    with torch.no_grad():
        query = retrieval.score.query(retrieval.user_vectors(interaction)).double()
        reference = query @ retrieval.ranking_keys().double().T
        reference = reference.amax(1) if reference.dim() == 3 else reference
    for row, recommendation in enumerate(got[:len(reference)]):
        ids = torch.as_tensor(dataset.token2id(dataset.iid_field, recommendation.items))
        torch.testing.assert_close(torch.tensor(recommendation.scores, dtype=torch.float64),
                                   reference[row, ids], rtol=1e-5, atol=1e-5)
        if exclude_input:
            assert not set(recommendation.items) & set(histories[row])


@pytest.mark.parametrize("model", ["GRU4Rec", "ComiRec"])
def test_the_runs_exported_index_serves_the_exact_top_k(served, model):
    s = served(model)
    config, adapter, dataset = s.loaded[:3]
    from_index = Recommender(config, adapter, dataset, index=ItemIndex.load(s.record["faiss"]["export"]))
    histories, _ = evaluator_lists(s, RecBoleMask(), 1)
    for exclude_input in (False, True):
        exact = s.recommender.recommend(histories, k=20, exclude_input=exclude_input)
        served_lists = from_index.recommend(histories, k=20, exclude_input=exclude_input)
        for e, f, history in zip(exact, served_lists, histories):
            assert len(f.items) == 20 and not (exclude_input and set(f.items) & set(history))
            torch.testing.assert_close(torch.tensor(f.scores), torch.tensor(e.scores), rtol=1e-4, atol=1e-4)
        same = sum(a == b for e, f in zip(exact, served_lists) for a, b in zip(e.items, f.items))
        assert same / (20 * len(exact)) > 0.99  # the rest: near-ties, ordered by faiss's arithmetic


def test_an_index_of_other_vectors_is_refused(served):
    s, other = served("ComiRec"), served("GRU4Rec")
    config, adapter, dataset = s.loaded[:3]
    with pytest.raises(ConfigError, match=r"score DotScore\(scale=1.0\) \(the model's is CosineScore\(scale=10.0\)\)"):
        Recommender(config, adapter, dataset, index=ItemIndex.load(other.record["faiss"]["export"]))
    own = ItemIndex.load(s.record["faiss"]["export"])
    g = torch.Generator().manual_seed(0)
    random_vectors = ItemIndex.build(torch.randn(own.n_items, own.dim, generator=g), own.item_ids,
                                     score="cosine", scale=10.0)
    wrong_vectors = Recommender(config, adapter, dataset, index=random_vectors)
    histories, _ = evaluator_lists(s, RecBoleMask(), 1)
    with pytest.raises(ConfigError, match="its vectors score otherwise than the model's items"):
        wrong_vectors.recommend(histories[:8], k=5)
    small = ItemIndex.build(torch.randn(10, 16, generator=g))
    with pytest.raises(ConfigError, match="10 items"):
        Recommender(config, adapter, dataset, index=small)


def test_unknown_tokens_are_skipped_with_a_warning_or_stop_the_call(served):
    recommender = served("GRU4Rec").recommender
    a, b, c = (str(t) for t in served("GRU4Rec").loaded.dataset.field2id_token["item_id"][1:4])
    with pytest.warns(UnknownTokensWarning, match=r"3 tokens .* 3 sequences: line 1: 'no-such-item', "
                                                  r"line 2: '\[PAD\]', line 3: 'x'"):
        got = recommender.recommend([[a, "no-such-item", b], ["[PAD]", c], ["x"]], k=5, unknown="skip")
    assert got[0].unknown == ("no-such-item",) and got[1].unknown == ("[PAD]",)  # never the padding item
    assert got[0].items == recommender.recommend([[a, b]], k=5)[0].items and len(got[1].items) == 5
    assert got[2].items == [] and got[2].scores == []  # nothing known: no recommendation
    with pytest.raises(UnknownTokenError, match=r"line 2: tokens the model's dataset does not know: 'no-such-item'"):
        recommender.recommend([[a], [b, "no-such-item"]], k=5)
    with pytest.raises(UnknownTokenError, match="line 1: no item tokens"):
        recommender.recommend([[]], k=5)


def test_a_long_history_keeps_its_newest_items(served):
    s = served("GRU4Rec")
    catalogue = [str(t) for t in s.loaded.dataset.field2id_token["item_id"][1:]]
    history = random.Random(0).sample(catalogue, 40)  # MAX_ITEM_LIST_LENGTH is 25
    whole, newest = s.recommender.recommend([history, history[-25:]], k=30)
    assert whole.items == newest.items and whole.scores == newest.scores
    assert whole.items != s.recommender.recommend([history[:25]], k=30)[0].items
    excluded = s.recommender.recommend([history], k=30, exclude_input=True)[0]
    assert len(excluded.items) == 30 and not set(excluded.items) & set(history)  # all 40, not only 25


def test_ten_thousand_sequences_are_served_batch_by_batch(served):
    s = served("GRU4Rec")
    config, adapter, dataset = s.loaded[:3]
    recommender = Recommender(config, adapter, dataset, batch_size=500)
    catalogue = [str(t) for t in dataset.field2id_token["item_id"][1:]]
    read, rows_scored = [0], []

    def sequences(n):
        rng = random.Random(n)
        for _ in range(n):
            read[0] += 1
            yield rng.choices(catalogue, k=rng.randint(1, 30))

    stream = recommender.stream(sequences(10_000), k=10, exclude_input=True)
    assert read[0] == 0  # nothing is read before the first result is asked for
    next(stream)
    assert read[0] == 500
    user_vectors = recommender.retrieval.user_vectors

    def counted(interaction):  # the rows each forward pass scores
        rows_scored.append(len(interaction))
        return user_vectors(interaction)

    peaks = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(recommender.retrieval, "user_vectors", counted)
        for n in (1_000, 10_000):
            rows_scored.clear()
            tracemalloc.start()
            served_count = sum(len(r.items) == 10 for r in recommender.stream(sequences(n), k=10, exclude_input=True))
            peaks[n] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            assert served_count == n and sum(rows_scored) == n and max(rows_scored) == 500
    # Ten times the sequences, the same peak: one batch at a time (10,000 results held at once
    # would take megabytes).
    assert peaks[10_000] < 1.15 * peaks[1_000] and peaks[10_000] < 4 * 2**20, peaks


def test_bad_arguments_are_refused_before_anything_is_read(served):
    recommender = served("GRU4Rec").recommender
    n_items = served("GRU4Rec").loaded.dataset.item_num
    for kwargs, message in (({"k": 0}, "k=0"), ({"k": n_items}, f"from 1 to {n_items - 1}"),
                            ({"unknown": "ignore"}, "unknown='ignore'"), ({"exclude_input": "yes"}, "exclude_input")):
        with pytest.raises(ConfigError, match=message):
            recommender.stream(iter(()), **kwargs)
    with pytest.raises(TypeError, match="not one string"):
        recommender.recommend(["50 181"])
    config, adapter, dataset = served("GRU4Rec").loaded[:3]
    with pytest.raises(ConfigError, match="batch_size"):
        Recommender(config, adapter, dataset, batch_size=0)


def test_a_recommender_loads_from_the_checkpoint_alone(served):
    s = served("GRU4Rec")
    a, b, c, d = (str(t) for t in s.loaded.dataset.field2id_token["item_id"][5:9])
    sequences = [[a, b, c], [d]]  # as the README's example, in the slice's catalogue
    got = Recommender.load(s.record["files"]["model"]).recommend(sequences, k=10, exclude_input=True)
    assert [r.items for r in got] == [r.items for r in s.recommender.recommend(sequences, k=10, exclude_input=True)]
    assert all(len(r.items) == 10 and r.scores == sorted(r.scores, reverse=True) for r in got)
