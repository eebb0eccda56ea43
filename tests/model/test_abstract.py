"""What every plugin model does: train with each loss, rank by its score, ignore padding."""
import pytest
import torch

from recbole_croloss.glue import CROLossAdapter
from recbole_croloss.errors import ConfigError
from recbole_croloss.glue import get_model
from recbole_croloss.scoring import search_and_merge

from tests.glue.test_loss_families import FirstSteps

from .conftest import CASE_IDS, PLUGIN_CASES, first_batch, with_garbage_padding


@pytest.mark.parametrize("loss", ["ce", "croloss", "croloss_lambda", "sampled_softmax"])
@pytest.mark.parametrize("name,settings", PLUGIN_CASES, ids=CASE_IDS)
def test_trains_an_epoch_and_evaluates_with_every_loss(build_model, name, settings, loss, monkeypatch):
    prepared = build_model(name, loss=loss, **settings)
    assert isinstance(prepared.adapter.model, get_model(name))
    before = {k: v.clone() for k, v in prepared.adapter.state_dict().items()}
    first_steps = FirstSteps(monkeypatch)
    prepared.trainer.fit(prepared.train_data, saved=False)
    first_steps.check(loss)  # the first step's loss is the loss library's on the model's scores
    after = prepared.adapter.state_dict()
    assert all(torch.isfinite(v).all() for v in after.values())
    changed = {k for k, v in after.items() if not torch.equal(before[k], v)}
    assert "model.item_embedding.weight" in changed and len(changed) > 1  # both towers learn
    result = prepared.trainer.evaluate(prepared.test_data, load_best_model=False)
    assert 0.0 <= result["recall@50"] <= result["recall@100"] <= result["recall@500"] <= 1.0


@pytest.mark.parametrize("name,settings", PLUGIN_CASES, ids=CASE_IDS)
def test_padding_positions_never_contribute(build_model, name, settings):
    """Sequences of different lengths: random ids in the padding give the same user vectors."""
    prepared = build_model(name, loss="ce", **settings)
    model = prepared.adapter.model.eval()
    interaction = first_batch(prepared)
    lengths = interaction[model.ITEM_SEQ_LEN]
    assert lengths.min() < lengths.max() and (lengths < interaction[model.ITEM_SEQ].shape[1]).any()
    garbage, _ = with_garbage_padding(interaction, model)
    with torch.no_grad():
        torch.manual_seed(1)  # the routing models draw their routing logits
        clean = model(interaction[model.ITEM_SEQ], lengths)
        torch.manual_seed(1)
        noisy = model(garbage, lengths)
    torch.testing.assert_close(clean, noisy)
    assert clean.shape == ((len(lengths), 4, 16) if hasattr(model, "num_interest") else (len(lengths), 16))


@pytest.mark.parametrize("name,settings", PLUGIN_CASES[1:], ids=CASE_IDS[1:])
def test_full_sort_top_n_equals_per_interest_search_and_merge(build_model, name, settings):
    prepared = build_model(name, loss="croloss", **settings)
    prepared.trainer.fit(prepared.train_data, saved=False)
    net = prepared.adapter.eval()
    interaction = first_batch(prepared)
    with torch.no_grad():
        torch.manual_seed(2)
        scores = net.full_sort_predict(interaction)
        torch.manual_seed(2)
        users = net.retrieval.user_vectors(interaction)
        merged, ids = search_and_merge(net.retrieval.score, users, net.retrieval.item_vectors(), 100)
    assert users.dim() == 3 and scores.shape == (len(users), net.model.n_items)
    top, top_ids = scores.topk(100, dim=-1)
    torch.testing.assert_close(merged, top)
    assert (ids == top_ids).float().mean() > 0.999  # equal up to exact float ties


@pytest.mark.parametrize("name,settings", PLUGIN_CASES[1:], ids=CASE_IDS[1:])
def test_adapter_and_model_read_out_and_rank_alike(build_model, name, settings):
    """The adapter trains a multi-interest model on the model's own readout and ranks by the
    model's own max over interests; ComiRec's positive score is its best interest's."""
    prepared = build_model(name, loss="croloss", negatives="uniform", **settings)  # M = 10 x 256 drawn
    net, model = prepared.adapter, prepared.adapter.model
    interaction = first_batch(prepared, "train_data")
    torch.manual_seed(3)
    pos, neg, _, _ = net.loss_inputs(interaction, net.retrieval.user_vectors(interaction))
    torch.manual_seed(3)
    users = model.user_vectors(interaction)
    pos_vectors = model.item_vectors(interaction[model.POS_ITEM_ID])
    query = model.training_query(users, net.retrieval.score.key(pos_vectors))
    pos_keys = net.retrieval.score.key(pos_vectors)
    torch.testing.assert_close(pos, (query * pos_keys).sum(-1) if name == "MIND"  # query: scored side
                               else net.retrieval.score.pairs(users, pos_vectors))  # hard readout: the max
    assert neg.shape == (len(pos), 10 * 256)
    with torch.no_grad():
        torch.manual_seed(4)
        ours = net.full_sort_predict(interaction)
        torch.manual_seed(4)
        theirs = model.full_sort_predict(interaction)
    torch.testing.assert_close(ours, theirs)


def test_cosine_score_reaches_evaluation(build_model):
    """TwoTower's default score is the paper's 10 x cosine, with every loss, ``ce`` included."""
    for loss in ("ce", "croloss"):
        prepared = build_model("TwoTower", loss=loss)
        net = prepared.adapter.eval()
        interaction = first_batch(prepared)
        with torch.no_grad():
            scores = net.full_sort_predict(interaction)
            u = net.model.user_vectors(interaction)
            v = net.model.item_vectors()
        expected = 10.0 * torch.nn.functional.normalize(u, dim=-1) @ torch.nn.functional.normalize(v, dim=-1).T
        torch.testing.assert_close(scores, expected)
        assert scores.abs().max() <= 10.0 + 1e-4
        assert not torch.allclose(scores, u @ v.T)


def test_dot_score_is_a_setting(build_model):
    prepared = build_model("TwoTower", loss="ce", score="dot", scale=1.0)
    net = prepared.adapter.eval()
    interaction = first_batch(prepared)
    with torch.no_grad():
        torch.testing.assert_close(net.full_sort_predict(interaction),
                                   net.model.user_vectors(interaction) @ net.model.item_vectors().T)


@pytest.mark.parametrize("name,key,value,fragment", [
    ("ComiRec", "num_interest", 0, "integer >= 1"),
    ("ComiRec", "num_interest", "four", "integer >= 1"),
    ("MIND", "num_interest", -1, "integer >= 1"),
    ("ComiRec", "interest_extractor", "lstm", "choose one of: dr, sa"),
    ("ComiRec", "routing_iterations", 0, "integer >= 1"),
    ("MIND", "label_attention_power", 1.5, "integer >= 0"),
    ("TwoTower", "embedding_size", 0, "integer >= 1"),
    ("TwoTower", "mlp_hidden_size", 32, "list of layer sizes"),
    ("TwoTower", "activation", "swish", "relu"),
    ("TwoTower", "dropout_prob", 1.0, r"\[0, 1\)"),
    ("TwoTower", "item_dense", "yes", "true, false"),
    ("TwoTower", "loss_type", "BPR", "CE"),
])
def test_bad_model_setting_is_a_clear_error(build_model, name, key, value, fragment):
    settings = {key: value, "interest_extractor": "dr"} if key == "routing_iterations" else {key: value}
    with pytest.raises(ConfigError, match=f"{key}={value!r}.*{fragment}"):
        build_model(name, loss="croloss", **settings)


def test_plugin_models_are_found_first_by_name():
    from recbole_croloss.model.comirec import ComiRec
    from recbole_croloss.model.mind import MIND
    from recbole_croloss.model.twotower import TwoTower

    assert (get_model("TwoTower"), get_model("ComiRec"), get_model("MIND")) == (TwoTower, ComiRec, MIND)
    assert get_model("GRU4Rec").__module__.startswith("recbole.")
    for cls in (TwoTower, ComiRec, MIND):
        assert not issubclass(cls, CROLossAdapter)  # models are models whatever loss trains them
