"""ComiRec: the two extractors as defined, from the command line and from YAML."""
import json

import pytest
import torch

from recbole_croloss.model.comirec import RoutingExtractor
from recbole_croloss.model.layers import dynamic_routing, padding_mask, self_attentive_interests
from recbole_croloss.quick_start import main

from .conftest import first_batch


def test_sa_interests_are_attention_over_embeddings_plus_positions(build_model):
    prepared = build_model("ComiRec", loss="ce", interest_extractor="sa", num_interest=3)
    model = prepared.adapter.model.eval()
    interaction = first_batch(prepared)
    seq, lengths = interaction[model.ITEM_SEQ], interaction[model.ITEM_SEQ_LEN]
    with torch.no_grad():
        got = model(seq, lengths)
        emb = model.item_embedding(seq)
        att = model.extractor.attention(emb + model.extractor.position_embedding.weight[: seq.shape[1]])
        ref = self_attentive_interests(att, emb, padding_mask(lengths, seq.shape[1]))
    assert got.shape == (len(seq), 3, 16)
    torch.testing.assert_close(got, ref)


def test_dr_interests_route_per_position_per_interest_maps(build_model):
    prepared = build_model("ComiRec", loss="ce", interest_extractor="dr", num_interest=2, routing_iterations=2)
    model = prepared.adapter.model.eval()
    interaction = first_batch(prepared)
    seq, lengths = interaction[model.ITEM_SEQ], interaction[model.ITEM_SEQ_LEN]
    L = seq.shape[1]
    with torch.no_grad():
        got = model(seq, lengths)
        torch.testing.assert_close(model(seq, lengths), got, rtol=0, atol=0)  # no random draws
        logits = torch.zeros(len(seq), 2, L)  # the official DR starts routing from zero logits
        emb = model.item_embedding(seq)
        W = model.extractor.bilinear  # [L, K, d, d]
        item_hat = torch.stack([torch.stack([emb[:, l] @ W[l, k].T for l in range(L)], 1) for k in range(2)], 1)
        ref = dynamic_routing(item_hat, padding_mask(lengths, L), 2, logits)
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-6)
    assert (got.norm(dim=-1) < 1).all()  # squashed
    assert not torch.allclose(got[:, 0], got[:, 1])  # the interests differ


def _one_interest_reference(model, seq, lengths):
    """What a single interest is, in float64, row by row: SA's attention pooling over the real
    positions; DR's routing, whose softmax over one interest is 1 for every behaviour, so the
    interest is squash(sum_l W_l e_l) whatever the number of rounds."""
    emb_table = model.item_embedding.weight.double()
    rows = []
    for items, n in zip(seq.tolist(), lengths.tolist()):
        emb = emb_table[items[:n]]  # [n, d]
        if isinstance(model.extractor, RoutingExtractor):
            s = sum(model.extractor.bilinear[pos, 0].double() @ emb[pos] for pos in range(n))
            norm2 = s @ s
            rows.append(norm2 / (1 + norm2) * s / norm2.sqrt())
        else:
            first, _, second = model.extractor.attention
            hidden = torch.tanh((emb + model.extractor.position_embedding.weight[:n].double())
                                @ first.weight.double().T + first.bias.double())
            logits = (hidden @ second.weight.double().T + second.bias.double())[:, 0]  # [n]
            weights = torch.exp(logits - logits.max())
            rows.append((weights / weights.sum()) @ emb)
    return torch.stack(rows)


@pytest.mark.parametrize("extractor", ["sa", "dr"])
def test_one_interest_is_a_single_vector_model(build_model, extractor):
    """K = 1: one vector per user, as defined, which the readout returns for any positive and
    which ranks the catalogue by its own score, S = 10 cos(u, v)."""
    prepared = build_model("ComiRec", loss="croloss", num_interest=1, interest_extractor=extractor)
    model = prepared.adapter.model.eval()
    interaction = first_batch(prepared)
    seq, lengths = interaction[model.ITEM_SEQ], interaction[model.ITEM_SEQ_LEN]
    with torch.no_grad():
        interests = model(seq, lengths)
        assert interests.shape == (len(seq), 1, 16)
        user = _one_interest_reference(model, seq.cpu(), lengths.cpu())
        torch.testing.assert_close(interests[:, 0].double().cpu(), user, rtol=1e-5, atol=1e-6)
        keys = torch.randn(len(seq), 16, generator=torch.Generator().manual_seed(0)).to(interests.device)
        assert torch.equal(model.readout(interests, keys), interests[:, 0])  # any positive: the one vector
        items = model.item_embedding.weight.double().cpu()
        cosine = (user / user.norm(dim=1, keepdim=True)) @ (items / items.norm(dim=1, keepdim=True)).T
        scores = prepared.adapter.full_sort_predict(interaction)
        torch.testing.assert_close(scores.double().cpu()[:, 1:], 10 * cosine[:, 1:], rtol=1e-5, atol=1e-5)


def _tiny_args(tiny):
    return [f"--{k}={v}" for k, v in tiny.items()]


def test_cli_trains_comirec_sa_with_croloss_lambda(tiny, capsys):
    code = main(["--model=ComiRec", "--interest_extractor=sa", "--loss=croloss_lambda", *_tiny_args(tiny)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "ComiRec on ml-100k, loss=croloss_lambda" in out
    record = json.load(open(out.split("config and metrics: ")[1].strip()))
    assert record["config"]["interest_extractor"] == "sa" and record["config"]["num_interest"] == 4
    assert record["config"]["embedding_size"] == 16  # the command line over the model's YAML


def test_yaml_file_configures_model_and_loss(tiny, tmp_path, capsys):
    settings = tmp_path / "comirec_dr.yaml"
    settings.write_text("model: ComiRec\ninterest_extractor: dr\nnum_interest: 2\nloss: croloss\n"
                        "kernel: sigmoid\nalpha: 1.2\n")
    code = main(["--model=ComiRec", f"--config_files={settings}", *_tiny_args(tiny)])
    out = capsys.readouterr().out
    assert code == 0, out
    record = json.load(open(out.split("config and metrics: ")[1].strip()))
    assert (record["config"]["interest_extractor"], record["config"]["num_interest"]) == ("dr", 2)
    assert (record["loss"], record["config"]["kernel"], record["config"]["alpha"]) == ("croloss", "sigmoid", 1.2)


@pytest.mark.parametrize("value", ["lstm", "SA"])
def test_cli_unknown_extractor_exits_with_clear_error(tiny, value, capsys):
    assert main(["--model=ComiRec", f"--interest_extractor={value}", *_tiny_args(tiny)]) == 2
    assert f"interest_extractor='{value}' is not valid; choose one of: dr, sa" in capsys.readouterr().err
