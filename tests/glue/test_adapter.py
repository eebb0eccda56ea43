"""Every supported RecBole model trains an epoch with CROLoss and is evaluated; refusals are clear."""
import pytest
import torch

from recbole_croloss.glue import SUPPORTED, UNSUPPORTED
from recbole_croloss.errors import ConfigError
from recbole_croloss.quick_start import prepare_run

FEATURES = {"load_col": {"inter": ["user_id", "item_id", "timestamp"], "item": ["item_id", "class"]},
            "selected_features": ["class"]}


#: Each model trains an epoch under one CROLoss family, alternating along the list, so that both
#: families meet plain, feature-aware, graph and convolutional models; every (model, loss family)
#: pair takes one checked training step in test_loss_families.py.
MODEL_LOSS_PAIRS = [(model, ("croloss", "croloss_lambda")[i % 2]) for i, model in enumerate(SUPPORTED)]


@pytest.mark.parametrize("model, loss", MODEL_LOSS_PAIRS)
def test_supported_model_trains_and_evaluates(tiny, model, loss):
    settings = {**tiny, "loss": loss, **(FEATURES if model in ("FDSA", "GRU4RecF", "SASRecF") else {})}
    prepared = prepare_run(model, "ml-100k", config_dict=settings)
    before = {k: v.clone() for k, v in prepared.adapter.state_dict().items()}
    prepared.trainer.fit(prepared.train_data, saved=False)
    assert all(torch.isfinite(v).all() for v in prepared.adapter.state_dict().values())
    assert any(not torch.equal(before[k], v) for k, v in prepared.adapter.state_dict().items())
    result = prepared.trainer.evaluate(prepared.test_data, load_best_model=False)
    assert 0.0 <= result["recall@50"] <= result["recall@500"] <= 1.0

    # The adapter's ranking is the model's own (dot product with the item table).
    interaction = next(iter(prepared.test_data))[0].to(prepared.config["device"])
    prepared.adapter.eval()
    with torch.no_grad():
        torch.testing.assert_close(prepared.adapter.full_sort_predict(interaction),
                                   prepared.adapter.model.full_sort_predict(interaction), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("model", sorted(set(UNSUPPORTED) - {"GRU4RecKG", "KSR"}))
def test_unsupported_model_is_refused_before_data(tiny, model):
    with pytest.raises(ConfigError, match=f"model='{model}'.*use loss=ce"):
        prepare_run(model, "ml-100k", config_dict=tiny)


def test_padding_never_a_uniform_negative_and_hits_masked(tiny):
    # negatives: uniform, set: 12,800 default draws over the slice's 980 items would be every item once
    prepared = prepare_run("GRU4Rec", "ml-100k", config_dict={**tiny, "negatives": "uniform", "neg_per_pos": 50})
    pos = torch.randint(1, prepared.adapter.model.n_items, (256,))
    neg, mask, log_q = prepared.adapter.sampler(pos)
    assert neg.shape == (50 * 256,) and neg.min() >= 1 and neg.max() < prepared.adapter.model.n_items
    assert torch.equal(mask, neg[None, :] != pos[:, None]) and log_q is None
    assert (~mask).any()  # with 12800 draws over ~1000 items some hit the positive
    assert prepared.adapter.loss.n_items == prepared.adapter.model.n_items - 1  # |I| excludes the padding item


def test_hard_rank_diagnostic_is_logged_per_epoch(tiny):
    prepared = prepare_run("GRU4Rec", "ml-100k", config_dict=tiny)
    loss = prepared.trainer._train_epoch(prepared.train_data, 0)
    line = prepared.trainer._generate_train_loss_output(0, 0.0, 1.0, loss)
    rank = float(line.split("hard rank: ")[1].rstrip("%"))
    assert 0.0 < rank < 60.0  # starts near 50 (random), falls as the epoch trains
    assert prepared.adapter.pop_hard_rank() is None  # read once per epoch


@pytest.mark.parametrize("loss", ["ce", "croloss", "sampled_softmax"])
def test_a_model_s_own_loss_terms_are_added_to_whatever_loss_trains_it(tiny, loss, monkeypatch):
    prepared = prepare_run("TwoTower", "ml-100k", config_dict={**tiny, "loss": loss})
    adapter = prepared.adapter
    interaction = next(iter(prepared.train_data)).to(prepared.config["device"])

    def loss_value():
        torch.manual_seed(5)  # the same negatives for both calls
        return adapter.calculate_loss(interaction)

    plain = loss_value()
    seen = []

    def loss_terms(interaction, user):
        seen.append(user.shape)
        return {"a": user.new_tensor(0.25), "b": user.pow(2).mean()}

    monkeypatch.setattr(adapter.model, "loss_terms", loss_terms)
    with_terms = loss_value()
    user = adapter.retrieval.user_vectors(interaction)
    assert float(with_terms) == pytest.approx(float(plain) + 0.25 + float(user.pow(2).mean()), rel=1e-6)
    assert seen == [(len(interaction), user.shape[1])]  # called once, with the batch's user vectors


def test_the_sampler_s_log_q_reaches_the_loss_and_memory_negatives_are_scored_as_they_are_now(tiny):
    prepared = prepare_run("TwoTower", "ml-100k", config_dict={**tiny, "negatives": "in_batch", "neg_memory": 1})
    adapter = prepared.adapter
    batches = iter(prepared.train_data)
    first, second = next(batches), next(batches)
    user = adapter.retrieval.user_vectors(first)
    adapter.loss_inputs(first, user)  # the memory now holds the first batch's positives
    with torch.no_grad():
        adapter.model.item_embedding.weight.mul_(-2.0)  # the table moves between the steps
    user = adapter.retrieval.user_vectors(second)
    pos_score, neg_score, mask, log_q = adapter.loss_inputs(second, user)
    kept = torch.unique(first[adapter.model.POS_ITEM_ID])
    assert neg_score.shape[1] == len(torch.unique(second[adapter.model.POS_ITEM_ID])) + len(kept)
    retrieval, key = adapter.retrieval, adapter.retrieval.score.key
    query = retrieval.training_query(user, key(retrieval.item_vectors(second[adapter.model.POS_ITEM_ID])))
    torch.testing.assert_close(neg_score[:, -len(kept):], query @ key(retrieval.item_vectors(kept)).T)  # today's
    assert log_q.shape == neg_score.shape and bool(torch.isfinite(log_q[mask]).all())
    expected = adapter.loss(pos_score, neg_score, mask, log_q)
    assert float(expected) != pytest.approx(float(adapter.loss(pos_score, neg_score, mask)))  # log q matters
