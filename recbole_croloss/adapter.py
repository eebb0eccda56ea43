r"""The one adapter between RecBole and CROLoss: any sequential model, trained by any loss.

:class:`CROLossAdapter` wraps a RecBole sequential model without editing or copying it:

- user vectors ``u [B, d]`` come from the model's own ``forward``, called with the interaction
  fields its parameters name (``item_seq``/``seq_item``, ``item_seq_len``/``seq_item_len``,
  ``user``: see :data:`FORWARD_INPUTS`); a multi-interest model returns ``U [B, K, d]``;
- item vectors ``V [n_items, d]`` come from the model's item tower (``item_vectors``, the
  plugin's models) or else its item table (``item_embedding``, RecBole's models);
- training: ``neg [M] , mask [B, M] = sampler(pos [B])``, scores
  ``s_pos = S(u_b, v_pos_b) [B]`` and ``s_neg = S(u_b, v_neg_j) [B, M]``, loss = CROLoss; for a
  multi-interest model ``u_b`` is the model's ``readout`` of ``U_b`` with the positive (ComiRec:
  the interest most aligned with it; MIND: label-aware attention);
- evaluation ranks by the same score ``S`` (``full_sort_predict`` -> ``[B, n_items]``,
  ``predict`` -> ``[B]``, ``max_k`` over a multi-interest user's interests), so a model trained
  on cosine is ranked on cosine.

With ``loss=None`` (the ``ce`` baseline) every call goes to the model, untouched.
"""
from __future__ import annotations

import inspect

import torch
import torch.nn.functional as F
from torch import nn

from .compat import CompatTrainer
from .errors import ConfigError
from .loss import CROLoss, hard_rank_percentile
from .sampler import NegativeSampler
from .scoring import Score


#: Rows per batch the hard-rank diagnostic is estimated on.
DIAGNOSTIC_ROWS = 64


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


def item_table(model: nn.Module) -> nn.Embedding:
    """The model's item embedding table (the vectors its ``full_sort_predict`` ranks)."""
    check_model_class(type(model))
    table = getattr(model, "item_embedding", None)
    if not isinstance(table, nn.Embedding):
        raise UnsupportedModelError(
            type(model).__name__, "the adapter needs an item table `item_embedding` "
            "(nn.Embedding) ranked by a dot product with forward()'s output; use loss=ce")
    return table


class ItemTable:
    """The item tower of a RecBole model: its item table's rows, ``items [...] -> [..., d]``,
    ``None -> [n_items, d]`` (extra rows, e.g. a mask token, are not candidates)."""

    def __init__(self, model: nn.Module):
        self.table, self.n_items = item_table(model), model.n_items

    def __call__(self, items: torch.Tensor | None = None) -> torch.Tensor:
        if items is None:
            return self.table.weight[: self.n_items]
        # F.embedding, not weight[ids]: its backward is cheaper than indexing's index_put.
        return F.embedding(items, self.table.weight)


def item_tower(model: nn.Module):
    """``items -> vectors`` as the model ranks them: the plugin models' ``item_vectors``, else
    the item table (:class:`ItemTable`)."""
    check_model_class(type(model))
    return model.item_vectors if hasattr(model, "item_vectors") else ItemTable(model)


class CROLossAdapter(nn.Module):
    """A RecBole model, trained with CROLoss on shared negatives and ranked by one score.

    Args:
        model: a RecBole ``SequentialRecommender``.
        loss: a :class:`CROLoss`, or ``None`` to keep the model's own loss and scoring (``ce``).
        sampler: negatives shared by the batch (required with ``loss``).
        score: the score S used in training and evaluation (required with ``loss``).
    """

    def __init__(self, model: nn.Module, loss: CROLoss | None = None,
                 sampler: NegativeSampler | None = None, score: Score | None = None):
        super().__init__()
        self.model = model
        self.loss = loss
        self.sampler = sampler
        self.score = score
        if loss is not None:
            if sampler is None or score is None:
                raise ValueError("a CROLoss-trained adapter needs a sampler and a score")
            self._item_vectors = item_tower(model)  # fails at start, not at the first batch
            self._inputs = [getattr(model, FORWARD_INPUTS[p]) for p in forward_inputs(type(model))]
            if loss.n_items != sampler.catalogue_size:
                raise ValueError(f"the loss counts {loss.n_items} items but the sampler draws "
                                 f"from {sampler.catalogue_size}")
        self._rank_sum, self._rank_batches = 0.0, 0  # hard-rank diagnostic over the epoch

    # RecBole's model interface, as the Trainer uses it -------------------------------------
    @property
    def type(self):
        return self.model.type

    def other_parameter(self):
        return self.model.other_parameter()

    def load_other_parameter(self, para):
        self.model.load_other_parameter(para)

    def user_vectors(self, interaction) -> torch.Tensor:
        """``u [B, d]`` (or ``U [B, K, d]``) from the model's own forward."""
        return self.model.forward(*(interaction[field] for field in self._inputs))

    def item_vectors(self, items: torch.Tensor | None = None) -> torch.Tensor:
        """``V [n_items, d]`` for the catalogue, or ``[..., d]`` for ``items [...]``."""
        return self._item_vectors(items)

    def loss_inputs(self, interaction):
        """``(pos_score [B], neg_score [B, M], neg_mask [B, M] | None)`` for one batch."""
        user = self.user_vectors(interaction)
        pos_items = interaction[self.model.POS_ITEM_ID]
        neg_items, neg_mask = self.sampler(pos_items)
        pos_key = self.score.key(self.item_vectors(pos_items))  # [B, d]
        query = self.score.query(user)
        if user.dim() == 3:  # multi-interest: the model reads one vector out per sample
            query = self.model.readout(query, pos_key)
        pos_score = (query * pos_key).sum(-1)
        neg_score = query @ self.score.key(self.item_vectors(neg_items)).T
        return pos_score, neg_score, neg_mask

    def calculate_loss(self, interaction):
        if self.loss is None:
            return self.model.calculate_loss(interaction)
        pos_score, neg_score, neg_mask = self.loss_inputs(interaction)
        # Estimated on the first DIAGNOSTIC_ROWS rows so it stays cheap; a device tensor added up
        # without a host sync, read once per epoch.
        rows = slice(0, DIAGNOSTIC_ROWS)
        self._rank_sum = self._rank_sum + hard_rank_percentile(
            pos_score[rows], neg_score[rows], None if neg_mask is None else neg_mask[rows])
        self._rank_batches += 1
        return self.loss(pos_score, neg_score, neg_mask)

    def pop_hard_rank(self) -> float | None:
        """Mean hard rank of the positives among their negatives over the batches since the last
        call, in percent (0 = every positive above all its negatives, 50 = random), or None.
        Each batch contributes its first :data:`DIAGNOSTIC_ROWS` rows."""
        if not self._rank_batches:
            return None
        value = float(self._rank_sum) / self._rank_batches
        self._rank_sum, self._rank_batches = 0.0, 0
        return value

    def predict(self, interaction):
        if self.loss is None:
            return self.model.predict(interaction)
        items = self.item_vectors(interaction[self.model.ITEM_ID])
        return self.score.pairs(self.user_vectors(interaction), items)

    def full_sort_predict(self, interaction):
        if self.loss is None:
            return self.model.full_sort_predict(interaction)
        return self.score.all(self.user_vectors(interaction), self.item_vectors())

    def extra_repr(self) -> str:
        if self.loss is None:
            return "loss=model's own"
        return f"sampler={type(self.sampler).__name__}, score={self.score!r}"


class CROLossTrainer(CompatTrainer):
    """RecBole's trainer (with the compat fixes) that also logs the adapter's hard-rank
    diagnostic with each epoch's training loss, as the official CROLoss code does."""

    def _generate_train_loss_output(self, epoch_idx, s_time, e_time, losses):
        output = super()._generate_train_loss_output(epoch_idx, s_time, e_time, losses)
        rank = self.model.pop_hard_rank() if isinstance(self.model, CROLossAdapter) else None
        return output if rank is None else f"{output}, hard rank: {rank:.2f}%"
