"""Every model the plugin trains, under every loss family: one training step each, through the
run's own glue, against the loss library's value on the model's own scores.

The data are loaded once per module; each (model, family) pair builds only its config, model,
adapter and trainer (:func:`~recbole_croloss.quick_start.build_trainer`, as ``prepare_run``
does) and takes one step of the trainer's own training loop on the same batch. The families are
read from the loss registry when the tests are collected, so a preset added later is tested too.

At RecBole's initialisation the scores are about 1e-2 (STAMP's 1e-8), where every loss is
within float32 rounding of its value at zero scores and a wrong score would go unseen; the
weights are redrawn at a scale where the scores are of order 1 (:func:`at_unit_scale`), and each
case checks that one item off moves the reference beyond the tolerance.
"""
import pytest
import torch
import torch.nn.functional as F
from recbole.data.interaction import Interaction
from recbole.utils import init_seed
from torch import nn

from recbole_croloss.glue import SUPPORTED, CROLossAdapter
from recbole_croloss.loss import PRESETS, build_loss
from recbole_croloss.model import PLUGIN_MODELS, PluginSequentialModel
from recbole_croloss.quick_start import build_trainer, configure, load_data
from recbole_croloss.settings.training_spec import MODEL_LOSS, loss_names
from tests.conftest import TINY
from tests.glue.test_adapter import FEATURES

#: Every setting the shared data depend on. Histories are stored whole (RecBole's own
#: SequentialDataset), which every model reads, FEARec's same-target augmentation included; the
#: item features are loaded for FDSA, GRU4RecF and SASRecF. 64 rows a batch keep each step cheap.
DATA = {**TINY, **FEATURES, "train_batch_size": 64, "history_windows": False}

#: One uniform negative per row (M = 64), drawn: the step and the reference must see the same draws.
NEGATIVES = {"negatives": "uniform", "neg_per_pos": 1}

#: ``ce`` is each model's own loss; these regularisers are added to it by the model (not by the
#: loss), so they are switched off to compare the step with the plain cross-entropy.
OWN_REGULARISERS_OFF = {"GCSAN": {"reg_weight": 0.0}, "NextItNet": {"reg_weight": 0.0}, "Caser": {"reg_weight": 0.0}}

#: (case id, model, its own settings): every supported RecBole model and every plugin model.
MODEL_CASES = [(name, name, {}) for name in SUPPORTED] + [
    ("TwoTower", "TwoTower", {}),
    ("ComiRec-sa", "ComiRec", {"interest_extractor": "sa"}),
    ("ComiRec-dr", "ComiRec", {"interest_extractor": "dr"}),
    ("MIND", "MIND", {}),
    ("TiMiRec-pretrain", "TiMiRec", {}),
    ("TiMiRec-finetune", "TiMiRec", {"train_stage": "finetune", "pre_model_path": "none"}),
]

#: The model's own cross-entropy, then every registered preset.
FAMILIES = (MODEL_LOSS, *PRESETS)

#: The step's loss is float32; the reference is computed in float64 from the same float32 scores
#: (they differ by at most 1.3e-7 relative on the CPU: float32 rounding).
RTOL, ATOL = 2e-6, 1e-6

SEED = 7
#: The embeddings' standard deviation in :func:`at_unit_scale` (scores of order 1 to 10).
EMBEDDING_STD = 0.5


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """``(train_data, batch)``: the training loader and its first batch, built once; RecBole's
    log, tensorboard and checkpoint folders go to a folder of the module's own. Tiny batches run
    fastest on one thread."""
    folder = tmp_path_factory.mktemp("loss_families")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        config, spec = configure("GRU4Rec", "ml-100k", config_dict=pair_settings("GRU4Rec", "croloss"))
        train_data, _, _ = load_data(config, spec)
        yield train_data, next(iter(train_data))
    torch.set_num_threads(threads)


def pair_settings(model: str, family: str) -> dict:
    extra = OWN_REGULARISERS_OFF.get(model, {}) if family == MODEL_LOSS else NEGATIVES
    return {**DATA, "checkpoint_dir": "saved", "loss": family, **extra}


def at_unit_scale(model: nn.Module, seed: int) -> None:
    """Redraw every weight matrix: embeddings N(0, EMBEDDING_STD), the others N(0, 1 / fan-in),
    so that activations and scores are of order 1; padding rows stay zero."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            for weight in module.parameters(recurse=False):
                if weight.dim() < 2 or not weight.is_floating_point():
                    continue
                std = EMBEDDING_STD if isinstance(module, nn.Embedding) else weight[0].numel() ** -0.5
                weight.copy_(torch.randn(weight.shape, generator=generator).to(weight) * std)
            if isinstance(module, nn.Embedding) and module.padding_idx is not None:
                module.weight[module.padding_idx] = 0.0


def one_item_off(items, n_items: int):
    """Each id replaced by the next real item (1..n_items-1, cyclically)."""
    return items % (n_items - 1) + 1


def copy_of(batch) -> Interaction:
    """A batch of its own (FEARec's own loss writes its augmentations into the batch)."""
    return Interaction({key: value.clone() for key, value in batch.interaction.items()})


def training_scores(model, batch):
    """``(S [B, n_items], terms)``: each row's training query scored against every item, by the
    model's own code (a RecBole model's ``full_sort_predict``; a plugin model's user vectors read
    out with the positive), and the terms the model adds to any loss."""
    if not isinstance(model, PluginSequentialModel):
        return model.full_sort_predict(batch), {}
    user = model.user_vectors(batch)
    keys = model.score.key(model.item_vectors())
    query = model.training_query(user, keys[batch[model.POS_ITEM_ID]])
    return query @ keys.T, model.loss_terms(batch, user)


def expected_loss(family: str, scores, terms: dict, pos, neg, n_items: int) -> float:
    """The loss library's value, in float64, on ``scores [B, n_items]`` for the positives
    ``pos [B]`` and the shared negatives ``neg [M]`` (None for ``ce``, which scores every item)."""
    scores = scores.double()
    if family == MODEL_LOSS:
        value = F.cross_entropy(scores, pos)
    else:
        mask = neg[None, :] != pos[:, None]  # an accidental hit is no negative of its row
        # The catalogue: drawn negatives come from the real items (the padding left out);
        # negatives: full is the whole table once, padding row included.
        whole_table = torch.equal(neg, torch.arange(n_items, device=neg.device))
        loss = build_loss(family, n_items if whole_table else n_items - 1)
        value = loss(scores.gather(1, pos[:, None]).squeeze(1), scores[:, neg], mask)
    return float(value + sum(term.double() for term in terms.values()))


class FirstSteps:
    """Records each adapter's first training step, wherever it is built (``run`` included): its
    loss, and what :func:`expected_loss` needs to recompute it, the model's scores for that batch
    taken just before the step, on the same weights and the same random draws, and the
    negatives the step drew. :meth:`check` compares the two."""

    def __init__(self, monkeypatch):
        self.steps: list[dict] = []
        original = CROLossAdapter.calculate_loss

        def calculate_loss(adapter, interaction):
            if not adapter.training or any(step["adapter"] is adapter for step in self.steps):
                return original(adapter, interaction)
            device = interaction[adapter.model.POS_ITEM_ID].device
            cuda = [torch.cuda.current_device()] if device.type == "cuda" else []
            with torch.random.fork_rng(devices=cuda), torch.no_grad():
                scores, terms = training_scores(adapter.model, interaction)
            drawn, sampler = [], adapter.sampler
            if sampler is not None:
                adapter.sampler = lambda items: drawn.append(sampler(items)) or drawn[-1]
            try:
                loss = original(adapter, interaction)
            finally:
                adapter.sampler = sampler
            self.steps.append({"adapter": adapter, "scores": scores, "terms": terms, "loss": float(loss.detach()),
                               "pos": interaction[adapter.model.POS_ITEM_ID],
                               "neg": drawn[0].items if drawn else None})
            return loss

        monkeypatch.setattr(CROLossAdapter, "calculate_loss", calculate_loss)

    def check(self, family: str, adapters: int = 1) -> list[dict]:
        """Assert that ``adapters`` adapters trained and that each first step's loss is the loss
        library's ``family`` on the model's scores."""
        assert len(self.steps) == adapters
        for step in self.steps:
            assert (step["adapter"].loss is None) == (family == MODEL_LOSS)
            expected = expected_loss(family, step["scores"], step["terms"], step["pos"], step["neg"],
                                     step["adapter"].model.n_items)
            assert step["loss"] == pytest.approx(expected, rel=RTOL, abs=ATOL)
        return self.steps


def test_the_families_are_the_registry_s():
    assert FAMILIES == loss_names() and len(FAMILIES) == 1 + len(PRESETS)


def test_every_trainable_model_is_a_case():
    models = {model for _, model, _ in MODEL_CASES}
    assert models == set(SUPPORTED) | set(PLUGIN_MODELS)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("name,model,settings", MODEL_CASES, ids=[case[0] for case in MODEL_CASES])
def test_one_step_of_every_model_under_every_family(shared, name, model, settings, family, monkeypatch):
    train_data, first = shared
    config, spec = configure(model, "ml-100k", config_dict={**pair_settings(model, family), **settings})
    adapter, trainer = build_trainer(config, spec, train_data)
    at_unit_scale(adapter.model, SEED)
    before = {key: value.detach().clone() for key, value in adapter.named_parameters()}
    first_steps = FirstSteps(monkeypatch)
    init_seed(SEED, True)  # the step's dropout, routing and negatives (FEARec's own loss: Python's)
    try:
        step_loss = trainer._train_epoch([copy_of(first)], 0)  # one step of the trainer's own loop
    finally:
        trainer.tensorboard.close()

    [step] = first_steps.check(family)  # the step's loss is the loss library's on the model's scores
    assert step_loss == step["loss"]  # as the trainer reports it
    assert step["neg"] is None if family == MODEL_LOSS else len(step["neg"]) == len(step["pos"])
    # The comparison can tell: with the negatives (ce: the positives) one item off, the
    # reference leaves the tolerance (by 5 to 1000 times it in these cases).
    n_items, pos, neg, scores, terms = adapter.model.n_items, step["pos"], step["neg"], step["scores"], step["terms"]
    expected = expected_loss(family, scores, terms, pos, neg, n_items)
    off = expected_loss(family, scores, terms, pos, one_item_off(neg, n_items), n_items) if neg is not None else \
        expected_loss(family, scores, terms, one_item_off(pos, n_items), None, n_items)
    assert abs(off - expected) > 2 * (RTOL * abs(expected) + ATOL)
    moved = {key for key, value in adapter.named_parameters() if not torch.equal(before[key], value.detach())}
    table = next(key for key, value in adapter.named_parameters() if value is adapter.retrieval.item_table().weight)
    assert table in moved and len(moved) > 1  # the item table and the user side both learn
