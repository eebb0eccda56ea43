"""MIND: shared-map routing with random logits, label-aware attention at training."""
import torch

from recbole_croloss.model.layers import dynamic_routing, label_aware_readout, padding_mask

from .conftest import first_batch


def test_interests_are_routed_with_a_shared_map_then_relu(build_model):
    prepared = build_model("MIND", loss="ce", num_interest=3)
    model = prepared.adapter.model.eval()
    interaction = first_batch(prepared)
    seq, lengths = interaction[model.ITEM_SEQ], interaction[model.ITEM_SEQ_LEN]
    with torch.no_grad():
        torch.manual_seed(6)
        got = model(seq, lengths)
        torch.manual_seed(6)
        logits = torch.nn.init.trunc_normal_(torch.empty(len(seq), 3, seq.shape[1]), std=1.0, a=-2.0, b=2.0)
        hat = model.bilinear(model.item_embedding(seq))[:, None].expand(-1, 3, -1, -1)
        ref = model.interest_layer(dynamic_routing(hat, padding_mask(lengths, seq.shape[1]), 3, logits))
    torch.testing.assert_close(got, ref)
    assert (got >= 0).all()
    assert not torch.allclose(got[:, 0], got[:, 1])  # random routing logits break the symmetry


def test_training_uses_label_aware_attention(build_model):
    prepared = build_model("MIND", loss="ce", label_attention_power=2)
    model = prepared.adapter.model
    query, key = torch.randn(8, 4, 16), torch.randn(8, 16)
    torch.testing.assert_close(model.readout(query, key), label_aware_readout(query, key, 2))
    # and it is what the model's own loss uses: the CE of the attended vector.
    interaction = first_batch(prepared, "train_data")
    torch.manual_seed(7)
    loss = model.calculate_loss(interaction)
    torch.manual_seed(7)
    users = model.user_vectors(interaction)
    keys = model.score.key(model.item_vectors())  # MIND's default score: cosine x 10
    pos = interaction[model.POS_ITEM_ID]
    u = label_aware_readout(model.score.query(users), keys[pos], 2)
    torch.testing.assert_close(loss, torch.nn.functional.cross_entropy(u @ keys.T, pos))
