r"""Which models the plugin trains, found by name, and RecBole's models seen through the scoring
protocol.

- :func:`get_model`: the plugin's models (:data:`~recbole_croloss.model.PLUGIN_MODELS`) first,
  then RecBole's;
- :data:`SUPPORTED` / :data:`UNSUPPORTED`: the RecBole 1.2.1 sequential models CROLoss trains
  (each tested) and those it refuses, with the reason; :func:`check_model_class` refuses before
  any data is loaded;
- :class:`RecBoleRetrieval`: a RecBole model as a
  :class:`~recbole_croloss.scoring.ScoredRetrieval`: user vectors from its own ``forward``
  (called with the interaction fields its parameters name, :data:`FORWARD_INPUTS`), item vectors
  from its item table ``item_embedding``, ranked by a score (RecBole's models: the dot product).
"""
from __future__ import annotations

import importlib
import inspect

import torch
import torch.nn.functional as F
from torch import nn

from ..compat import import_sequential_models
from ..errors import ConfigError
from ..model import PLUGIN_MODELS, PluginSequentialModel
from ..scoring import Score, ScoredRetrieval


class UnsupportedModelError(ConfigError):
    """The model cannot be trained by the adapter (the reason says why)."""

    def __init__(self, model: str, reason: str):
        super().__init__("model", model, reason)


#: ``forward`` parameter name -> the model attribute naming the interaction field it takes.
FORWARD_INPUTS = {
    "item_seq": "ITEM_SEQ", "seq_item": "ITEM_SEQ",
    "item_seq_len": "ITEM_SEQ_LEN", "seq_item_len": "ITEM_SEQ_LEN",
    "user": "USER_ID",
}

#: RecBole 1.2.1 sequential models the adapter trains (each is tested; see README). Their own
#: regularisers (GCSAN, NextItNet, Caser) and FEARec's optional contrastive terms are
#: not added: the adapter's loss replaces ``calculate_loss``.
SUPPORTED = ("GRU4Rec", "SASRec", "NARM", "STAMP", "SRGNN", "LightSANs", "SINE", "GCSAN", "FEARec",
             "NextItNet", "Caser", "HRM", "FDSA", "GRU4RecF", "SASRecF")

#: Models that read the training histories from ``dataset.inter_feat`` themselves (FEARec's
#: same-target augmentation), so their datasets keep RecBole's materialised histories.
READS_STORED_HISTORIES = ("FEARec",)

#: RecBole 1.2.1 sequential models the adapter refuses, with the reason (``loss: ce`` still
#: trains them with their own loss).
UNSUPPORTED: dict[str, str] = {
    "FOSSIL": "its own setting `alpha` has the name of CROLoss's alpha, so the two would clash",
    "BERT4Rec": "it trains on a cloze (masked-item) target and ranks with an output bias",
    "CORE": "it ranks by a temperature-scaled cosine with item dropout inside its own loss",
    "NPE": "it ranks by relu(item_embedding), not by the item table itself",
    "HGN": "it ranks with a separate table (item_embedding_for_prediction)",
    "SHAN": "it trains on the reversed sequence but ranks on the forward one",
    "S3Rec": "its forward returns every position, and it needs a pre-training stage",
    "GRU4RecCPR": "it ranks by a Softmax-CPR mixture of several projections",
    "SASRecCPR": "it ranks by a Softmax-CPR mixture of several projections",
    "RepeatNet": "its forward returns item probabilities, not a user vector",
    "TransRec": "it ranks by a translation distance plus an item bias",
    "FPMC": "it scores with four factor tables and needs the next item in forward",
    "DIN": "it is a click-through-rate model without a user vector",
    "DIEN": "it is a click-through-rate model without a user vector",
    "KSR": "it ranks against a projection of item and knowledge-graph entity vectors",
    "GRU4RecKG": "it needs knowledge-graph entity files (ml-100k.ent is not bundled); untested",
}

#: RecBole model packages searched after the sequential models (never ``exlib_recommender``: it
#: imports lightgbm/xgboost and is what turns RecBole's own unknown-name error into an ImportError).
_RECBOLE_PACKAGES = ("general_recommender", "context_aware_recommender", "knowledge_aware_recommender")


def _recbole_model_modules():
    """RecBole's model packages, sequential first, each imported only when reached."""
    yield import_sequential_models()
    for package in _RECBOLE_PACKAGES:
        yield importlib.import_module(f"recbole.model.{package}")


def recbole_sequential_models() -> list[str]:
    module = import_sequential_models()
    return sorted(n for n in dir(module) if n[:1].isupper())


def get_model(name: str):
    """The model class called ``name``: the plugin's, else RecBole's; a clear error otherwise."""
    if isinstance(name, str) and name in PLUGIN_MODELS:
        return PLUGIN_MODELS[name]
    if isinstance(name, str) and name[:1].isupper():
        for module in _recbole_model_modules():
            if hasattr(module, name):
                return getattr(module, name)
    raise ConfigError("model", name, "choose a sequential model: "
                      + ", ".join(sorted(PLUGIN_MODELS) + recbole_sequential_models()))


def is_plugin_model(model_class) -> bool:
    """A model of the scoring protocol: it ranks by the keys ``score`` and ``scale``."""
    return isinstance(model_class, type) and issubclass(model_class, PluginSequentialModel)


def check_model_class(cls) -> None:
    """Refuse, before any data is loaded, a model the adapter cannot train."""
    name = cls.__name__
    if name in UNSUPPORTED:
        raise UnsupportedModelError(name, f"CROLoss cannot train it: {UNSUPPORTED[name]}; use loss=ce")
    unknown = [p for p in forward_inputs(cls) if p not in FORWARD_INPUTS]
    if unknown:
        raise UnsupportedModelError(
            name, f"its forward takes {unknown}, which the adapter cannot supply (it knows "
            f"{sorted(FORWARD_INPUTS)}); use loss=ce")


def forward_inputs(cls) -> list[str]:
    """The parameter names of ``cls.forward`` after ``self``."""
    return list(inspect.signature(cls.forward).parameters)[1:]


class RecBoleRetrieval(ScoredRetrieval):
    """A RecBole sequential model through the scoring protocol (it is not a module of its own:
    the parameters stay the model's)."""

    def __init__(self, model: nn.Module, score: Score):
        check_model_class(type(model))
        table = getattr(model, "item_embedding", None)
        if not isinstance(table, nn.Embedding):
            raise UnsupportedModelError(
                type(model).__name__, "the adapter needs an item table `item_embedding` "
                "(nn.Embedding) ranked by a dot product with forward()'s output; use loss=ce")
        self.model, self.score, self.table = model, score, table
        self.ITEM_ID = model.ITEM_ID
        self._inputs = [getattr(model, FORWARD_INPUTS[p]) for p in forward_inputs(type(model))]

    def user_vectors(self, interaction) -> torch.Tensor:
        """``u [B, d]`` from the model's own forward."""
        return self.model.forward(*(interaction[field] for field in self._inputs))

    def input_fields(self) -> tuple[str, ...]:
        """The fields ``forward`` takes, in its order (:data:`FORWARD_INPUTS`)."""
        return tuple(self._inputs)

    def item_vectors(self, items: torch.Tensor | None = None) -> torch.Tensor:
        """The item table's rows: ``[n_items, d]`` (extra rows, e.g. a mask token, are not
        candidates), or ``[..., d]`` for ``items [...]``."""
        if items is None:
            return self.table.weight[: self.model.n_items]
        # F.embedding, not weight[ids]: its backward is cheaper than indexing's index_put.
        return F.embedding(items, self.table.weight, sparse=self.table.sparse)

    def item_table(self) -> nn.Embedding:
        return self.table


def retrieval_view(model: nn.Module, score: Score, trained_by_plugin: bool) -> ScoredRetrieval | None:
    """``model`` through the scoring protocol: a plugin model is one already; a RecBole model is
    seen through :class:`RecBoleRetrieval` when the plugin's loss trains it (it must have an item
    table) or, under its own loss, when it is a tested model (:data:`SUPPORTED`), whose full sort
    is ``u . V^T``; ``None`` for any other model (ranked by its own ``full_sort_predict``)."""
    if isinstance(model, ScoredRetrieval):
        return model
    if trained_by_plugin or type(model).__name__ in SUPPORTED:
        return RecBoleRetrieval(model, score)
    return None
