"""TiMiRec: the extractor's masks and positions, the two stages' user vectors, the distillation
term against a hand computation, the pretrain weights the finetune stage starts from, and both
stages trained under every loss family."""
import math

import pytest
import torch

from recbole_croloss.errors import ConfigError
from recbole_croloss.model.timirec import distillation_loss, newest_first_positions
from recbole_croloss.quick_start import prepare_run, run
from tests.glue.test_loss_families import FirstSteps


def model_of(tiny, **settings):
    prepared = prepare_run("TiMiRec", "ml-100k", config_dict={**tiny, **settings})
    return prepared.adapter.model.eval(), prepared


def batch():
    seq = torch.tensor([[5, 9, 2, 0, 0], [7, 0, 0, 0, 0], [3, 4, 8, 6, 1]])
    return seq, torch.tensor([3, 1, 5])


def test_positions_count_from_the_newest_item():
    assert newest_first_positions(torch.tensor([3, 1, 0]), 4).tolist() == \
        [[3, 2, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]]


@pytest.mark.parametrize("add_pos, add_trm", [(1, 1), (0, 0), (1, 0), (0, 1)])
def test_padding_never_changes_the_interests(tiny, add_pos, add_trm):
    model, _ = model_of(tiny, add_pos=add_pos, add_trm=add_trm, MAX_ITEM_LIST_LENGTH=5)
    seq, lengths = batch()
    interests = model(seq, lengths)
    assert interests.shape == (3, 2, model.embedding_size)
    other = seq.clone()
    other[0, 3:], other[1, 1:] = torch.tensor([11, 12]), torch.tensor([13, 14, 15, 16])
    assert torch.allclose(model(other, lengths), interests, atol=1e-6)
    # and the real items do count
    changed = seq.clone()
    changed[1, 0] = 42
    assert not torch.allclose(model(changed, lengths)[1], interests[1])


def test_the_pretrain_readout_is_the_interest_most_aligned_with_the_positive(tiny):
    model, _ = model_of(tiny, MAX_ITEM_LIST_LENGTH=5)
    seq, lengths = batch()
    interests = model(seq, lengths)
    pos = model.item_vectors(torch.tensor([10, 20, 30]))
    picked = model.training_query(interests, pos)
    best = (interests @ pos[..., None]).squeeze(-1).argmax(1)
    assert torch.equal(picked, interests[torch.arange(3), best])


def test_the_finetune_user_is_the_predictor_s_mixture_of_the_interests(tiny):
    model, _ = model_of(tiny, MAX_ITEM_LIST_LENGTH=5, train_stage="finetune", pre_model_path="none")
    seq, lengths = batch()
    user = model(seq, lengths)
    interests, logits = model.extractor(seq, lengths), model.predictor(seq, lengths)
    expected = torch.stack([sum(torch.softmax(logits[b], 0)[k] * interests[b, k] for k in range(2))
                            for b in range(3)])
    assert user.shape == (3, model.embedding_size) and torch.allclose(user, expected, atol=1e-6)


@pytest.mark.parametrize("temperature", [0.5, 1.0, 3.0])
def test_the_distillation_term_is_the_hand_computed_kl_with_gradient_through_z_only(temperature):
    torch.manual_seed(0)
    interests = torch.randn(4, 3, 6, dtype=torch.float64, requires_grad=True)
    logits = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    target = torch.randn(4, 6, dtype=torch.float64)
    value = distillation_loss(interests, logits, target, temperature)
    total = 0.0
    for b in range(4):
        t = [float(interests[b, k] @ target[b] / (interests[b, k].norm() * target[b].norm())) / temperature
             for k in range(3)]
        p = [math.exp(x) / sum(math.exp(y) for y in t) for x in t]
        z = [float(x) / temperature for x in logits[b]]
        q = [math.exp(x) / sum(math.exp(y) for y in z) for x in z]
        total += sum(pk * (math.log(pk) - math.log(qk)) for pk, qk in zip(p, q))
    assert value.item() == pytest.approx(temperature ** 2 * total / 4, rel=1e-12)
    value.backward()
    assert interests.grad is None and logits.grad.abs().sum() > 0


def test_finetune_starts_from_exactly_the_pretrain_extractor(tiny):
    pretrain = run("TiMiRec", "ml-100k", config_dict=tiny)
    saved = torch.load(pretrain["files"]["model"], weights_only=True)["state_dict"]
    model, _ = model_of(tiny, train_stage="finetune", pre_model_path=pretrain["files"]["model"])
    extractor = {k: v for k, v in model.state_dict().items() if k.startswith("extractor.")}
    assert extractor and all(torch.equal(v, saved[k]) for k, v in extractor.items())
    fresh, _ = model_of(tiny, train_stage="finetune", pre_model_path="none")
    assert not torch.equal(fresh.extractor.attention[0].weight, model.extractor.attention[0].weight)


@pytest.mark.parametrize("path, fragment", [
    (None, "the best-model checkpoint of a train_stage=pretrain run"),
    ("/nonexistent.pth", "the best-model checkpoint of a train_stage=pretrain run"),
])
def test_finetune_refuses_a_missing_pretrain_checkpoint(tiny, path, fragment):
    with pytest.raises(ConfigError) as caught:
        model_of(tiny, train_stage="finetune", pre_model_path=path)
    assert "pre_model_path=" in str(caught.value) and fragment in str(caught.value)


def test_finetune_refuses_a_pretrain_checkpoint_of_other_sizes(tiny):
    pretrain = run("TiMiRec", "ml-100k", config_dict={**tiny, "add_trm": 0})
    with pytest.raises(ConfigError, match="with this run's sizes and add_pos/add_trm"):
        model_of(tiny, train_stage="finetune", pre_model_path=pretrain["files"]["model"], embedding_size=32)


@pytest.mark.parametrize("loss", ["ce", "croloss", "croloss_lambda"])
def test_both_stages_train_under_every_loss_family(tiny, loss, monkeypatch):
    first_steps = FirstSteps(monkeypatch)
    pretrain = run("TiMiRec", "ml-100k", config_dict={**tiny, "loss": loss})
    finetune = run("TiMiRec", "ml-100k", config_dict={**tiny, "loss": loss, "train_stage": "finetune",
                                                      "pre_model_path": pretrain["files"]["model"]})
    for record in (pretrain, finetune):
        assert 0 < record["test_result"]["recall@50"] <= 1 and record["history"]
    assert finetune["config"]["train_stage"] == "finetune"
    # Each stage's first step is the loss library's value on the model's scores, plus (finetune
    # only) the distillation term.
    pretrain_step, finetune_step = first_steps.check(loss, adapters=2)
    assert not pretrain_step["terms"] and set(finetune_step["terms"]) == {"distillation"}


def test_one_command_runs_both_stages_the_second_from_the_first(tiny, tmp_path):
    record_file = tmp_path / "record.json"
    record = run("TiMiRec", "ml-100k", config_dict={**tiny, "train_stage": "pretrain_finetune"},
                 record_file=str(record_file))
    assert record["config"]["train_stage"] == "finetune"
    pretrain = record["stages"]["pretrain"]
    assert record["config"]["pre_model_path"] == pretrain["files"]["model"] and pretrain["test_result"]
    import json
    assert json.loads(record_file.read_text())["stages"]["pretrain"]["test_result"] == pretrain["test_result"]


def test_an_unknown_stage_is_refused_before_any_data(tiny):
    with pytest.raises(ConfigError, match="train_stage='both' is not valid; choose one of: "):
        run("TiMiRec", "ml-100k", config_dict={**tiny, "train_stage": "both"})
