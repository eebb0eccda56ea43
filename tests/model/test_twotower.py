"""TwoTower: mean of the history through the user tower; the item tower; the paper's defaults."""
import torch
from torch import nn

from .conftest import first_batch


def test_defaults_follow_the_paper(build_model, tiny):
    prepared = build_model("TwoTower", loss="croloss", embedding_size=32)  # TINY sets 16; the YAML says 32
    config, model = prepared.config, prepared.adapter.model
    assert (config["score"], config["scale"], config["mlp_hidden_size"]) == ("cosine", 10.0, [])
    assert model.item_embedding.embedding_dim == 32 and isinstance(model.item_tower, nn.Identity)
    # the official DNN: one linear layer on the mean of the history
    assert [type(m) for m in model.user_tower] == [nn.Linear] and model.user_tower[0].in_features == 32


def test_user_vector_is_the_tower_of_the_mean_of_real_positions(build_model):
    prepared = build_model("TwoTower", loss="ce", mlp_hidden_size=[24, 8], activation="tanh")
    model = prepared.adapter.model.eval()
    linear = [m for m in model.user_tower if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(16, 24), (24, 8), (8, 16)]
    interaction = first_batch(prepared)
    seq, lengths = interaction[model.ITEM_SEQ], interaction[model.ITEM_SEQ_LEN]
    with torch.no_grad():
        got = model(seq, lengths)
        for b in range(0, len(seq), 97):
            h = model.item_embedding.weight[seq[b, : lengths[b]]].double().mean(0)
            for i, layer in enumerate(linear):
                h = h @ layer.weight.double().T + layer.bias.double()
                h = torch.tanh(h) if i < 2 else h
            torch.testing.assert_close(got[b].double(), h, rtol=1e-5, atol=1e-6)


def test_item_dense_is_its_own_tower_used_in_training_and_ranking(build_model):
    prepared = build_model("TwoTower", loss="croloss", item_dense=True)
    net, model = prepared.adapter, prepared.adapter.model
    assert isinstance(model.item_tower, nn.Linear)
    weight = model.item_tower.weight.detach().clone()
    prepared.trainer.fit(prepared.train_data, saved=False)
    assert not torch.equal(weight, model.item_tower.weight)  # the adapter's loss reaches it
    with torch.no_grad():
        v = net.retrieval.item_vectors()
        torch.testing.assert_close(v, model.item_tower(model.item_embedding.weight))
        ids = torch.tensor([3, 1, 4])
        torch.testing.assert_close(net.retrieval.item_vectors(ids), v[ids])
