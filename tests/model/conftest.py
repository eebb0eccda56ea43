"""The plugin's models, each as the CLI builds it on the ml-100k slice."""
import pytest
import torch

from recbole_croloss.quick_start import prepare_run

#: (model, its own settings): every plugin model and ComiRec extractor.
PLUGIN_CASES = [
    ("TwoTower", {}),
    ("ComiRec", {"interest_extractor": "sa"}),
    ("ComiRec", {"interest_extractor": "dr"}),
    ("MIND", {}),
]
CASE_IDS = ["TwoTower", "ComiRec-sa", "ComiRec-dr", "MIND"]


@pytest.fixture
def build_model(tiny):
    """``build_model(name, **settings) -> PreparedRun`` on the ml-100k slice."""
    def make(name, **settings):
        return prepare_run(name, "ml-100k", config_dict={**tiny, **settings})
    return make


def first_batch(prepared, data="test_data"):
    """The first batch of a split, on the model's device."""
    batch = next(iter(getattr(prepared, data)))
    interaction = batch[0] if isinstance(batch, tuple) else batch
    return interaction.to(prepared.config["device"])


def with_garbage_padding(interaction, model, seed=0):
    """A copy whose padding positions hold random item ids instead of 0."""
    seq = interaction[model.ITEM_SEQ].clone()
    pad = torch.arange(seq.shape[1], device=seq.device)[None, :] >= interaction[model.ITEM_SEQ_LEN][:, None]
    gen = torch.Generator().manual_seed(seed)
    seq[pad] = torch.randint(1, model.n_items, (int(pad.sum()),), generator=gen).to(seq.device)
    return seq, pad
