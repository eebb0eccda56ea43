"""Every supported RecBole model trains an epoch with CROLoss and is evaluated; refusals are clear."""
import pytest
import torch

from recbole_croloss.adapter import SUPPORTED, UNSUPPORTED
from recbole_croloss.errors import ConfigError
from recbole_croloss.quick_start import build

FEATURES = {"load_col": {"inter": ["user_id", "item_id", "timestamp"], "item": ["item_id", "class"]},
            "selected_features": ["class"]}


@pytest.mark.parametrize("loss", ["croloss", "croloss_lambda"])
@pytest.mark.parametrize("model", SUPPORTED)
def test_supported_model_trains_and_evaluates(tiny, model, loss):
    settings = {**tiny, "loss": loss, **(FEATURES if model in ("FDSA", "GRU4RecF", "SASRecF") else {})}
    job = build(model, "ml-100k", config_dict=settings)
    before = {k: v.clone() for k, v in job.net.state_dict().items()}
    job.trainer.fit(job.train_data, saved=False)
    assert all(torch.isfinite(v).all() for v in job.net.state_dict().values())
    assert any(not torch.equal(before[k], v) for k, v in job.net.state_dict().items())
    result = job.trainer.evaluate(job.test_data, load_best_model=False)
    assert 0.0 <= result["recall@50"] <= result["recall@500"] <= 1.0

    # The adapter's ranking is the model's own (dot product with the item table).
    interaction = next(iter(job.test_data))[0].to(job.config["device"])
    job.net.eval()
    with torch.no_grad():
        torch.testing.assert_close(job.net.full_sort_predict(interaction),
                                   job.net.model.full_sort_predict(interaction), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("model", sorted(set(UNSUPPORTED) - {"GRU4RecKG", "KSR"}))
def test_unsupported_model_is_refused_before_data(tiny, model):
    with pytest.raises(ConfigError, match=f"model='{model}'.*use loss=ce"):
        build(model, "ml-100k", config_dict=tiny)


def test_padding_never_a_uniform_negative_and_hits_masked(tiny):
    job = build("GRU4Rec", "ml-100k", config_dict={**tiny, "neg_per_pos": 50})
    pos = torch.randint(1, job.net.model.n_items, (256,))
    neg, mask = job.net.sampler(pos)
    assert neg.shape == (50 * 256,) and neg.min() >= 1 and neg.max() < job.net.model.n_items
    assert torch.equal(mask, neg[None, :] != pos[:, None])
    assert (~mask).any()  # with 12800 draws over ~1000 items some hit the positive
    assert job.net.loss.n_items == job.net.model.n_items - 1  # |I| excludes the padding item


def test_hard_rank_diagnostic_is_logged_per_epoch(tiny):
    job = build("GRU4Rec", "ml-100k", config_dict=tiny)
    loss = job.trainer._train_epoch(job.train_data, 0)
    line = job.trainer._generate_train_loss_output(0, 0.0, 1.0, loss)
    rank = float(line.split("hard rank: ")[1].rstrip("%"))
    assert 0.0 < rank < 60.0  # starts near 50 (random), falls as the epoch trains
    assert job.net.pop_hard_rank() is None  # read once per epoch
