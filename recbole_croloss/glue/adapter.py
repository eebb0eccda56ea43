r"""The one adapter between RecBole and CROLoss: any sequential model, trained by any loss.

:class:`CROLossAdapter` wraps a RecBole sequential model without editing or copying it, and
sees it through the scoring protocol (:class:`~recbole_croloss.scoring.ScoredRetrieval`: a
plugin model is one; a RecBole model is seen through
:class:`~recbole_croloss.glue.support.RecBoleRetrieval`):

- training: ``neg [M], mask [B, M], log_q = sampler(pos [B])``, scores
  ``s_pos = S(u_b, v_pos_b) [B]`` and ``s_neg = S(u_b, v_neg_j) [B, M]`` (every negative looked
  up in the item table as it is now, those a cross-batch memory kept included), loss =
  ``loss(s_pos, s_neg, mask, log_q)`` (``log_q`` only with ``use_log_q``) plus the model's own
  ``loss_terms``; for a multi-interest model ``u_b`` is the model's ``readout``
  of ``U_b`` with the positive (ComiRec: the interest most aligned with it; MIND: label-aware
  attention);
- evaluation ranks by the same score ``S`` (``full_sort_predict`` -> ``[B, n_items]``,
  ``predict`` -> ``[B]``, ``max_k`` over a multi-interest user's interests), so a model trained
  on cosine is ranked on cosine.

With ``loss=None`` (the ``ce`` baseline) training and RecBole's prediction calls go to the
model, untouched; the chunked evaluator still ranks by its vectors where the model has them.
"""
from __future__ import annotations

import torch
from torch import nn

from ..loss import CROLoss, GeneralisedBCE, hard_rank_percentile
from ..sampler import NegativeSampler
from ..scoring import Score, ScoredRetrieval
from .support import retrieval_view

#: Rows per batch the hard-rank diagnostic is estimated on.
DIAGNOSTIC_ROWS = 64


class CROLossAdapter(nn.Module):
    """A RecBole model, trained with CROLoss on shared negatives and ranked by one score.

    Args:
        model: a RecBole ``SequentialRecommender``.
        score: the score S a RecBole model trains and ranks by (a plugin model has its own).
        loss: a :class:`CROLoss` (or another preset's loss: ``loss(pos, neg, mask, log_q)``), or
            ``None`` to keep the model's own loss (``ce``).
        sampler: negatives shared by the batch (required with ``loss``); in a distributed run
            :class:`~recbole_croloss.distributed.GatheredNegatives` to share them across ranks.
        use_log_q: pass the sampler's ``log q`` to the loss (the log-q correction); without
            it a weighted sampler's negatives are weighed as if uniform.
    """

    def __init__(self, model: nn.Module, score: Score, loss: CROLoss | GeneralisedBCE | None = None,
                 sampler: NegativeSampler | None = None, use_log_q: bool = True):
        super().__init__()
        self.model = model
        self.loss = loss
        self.sampler = sampler
        self.use_log_q = use_log_q
        if loss is not None:
            if sampler is None:
                raise ValueError("a CROLoss-trained adapter needs a sampler")
            if loss.n_items != sampler.catalogue_size:
                raise ValueError(f"the loss counts {loss.n_items} items but the sampler draws "
                                 f"from {sampler.catalogue_size}")
        # Fails at start, not at the first batch. A plugin model is its own view: kept out of
        # __dict__'s module registry so that the state dict names each parameter once.
        view = retrieval_view(model, score, trained_by_plugin=loss is not None)
        self._view = None if view is model else view
        self._rank_sum, self._rank_batches = 0.0, 0  # hard-rank diagnostic over the epoch

    @property
    def retrieval(self) -> ScoredRetrieval | None:
        """The model through the scoring protocol, or ``None`` (ranked by its own full sort)."""
        return self.model if isinstance(self.model, ScoredRetrieval) else self._view

    # RecBole's model interface, as the Trainer uses it -------------------------------------
    @property
    def type(self):
        return self.model.type

    def other_parameter(self):
        return self.model.other_parameter()

    def load_other_parameter(self, para):
        self.model.load_other_parameter(para)

    def loss_inputs(self, interaction, user: torch.Tensor):
        """``(pos_score [B], neg_score [B, M], neg_mask [B, M] | None, neg_log_q | None)`` for
        one batch whose user vectors are ``user``."""
        retrieval = self.retrieval
        pos_items = interaction[self.model.POS_ITEM_ID]
        neg_items, neg_mask, neg_log_q = self.sampler(pos_items)
        score = retrieval.score
        pos_key = score.key(retrieval.item_vectors(pos_items))  # [B, d]
        query = retrieval.training_query(user, pos_key)
        pos_score = (query * pos_key).sum(-1)
        neg_score = query @ score.key(retrieval.item_vectors(neg_items)).T
        return pos_score, neg_score, neg_mask, neg_log_q if self.use_log_q else None

    def calculate_loss(self, interaction):
        if self.loss is None:
            return self.model.calculate_loss(interaction)
        user = self.retrieval.user_vectors(interaction)
        pos_score, neg_score, neg_mask, neg_log_q = self.loss_inputs(interaction, user)
        # Estimated on the first DIAGNOSTIC_ROWS rows so it stays cheap; a device tensor added up
        # without a host sync, read once per epoch.
        rows = slice(0, DIAGNOSTIC_ROWS)
        self._rank_sum = self._rank_sum + hard_rank_percentile(
            pos_score[rows], neg_score[rows], None if neg_mask is None else neg_mask[rows])
        self._rank_batches += 1
        loss = self.loss(pos_score, neg_score, neg_mask, neg_log_q)
        for term in self.retrieval.loss_terms(interaction, user).values():
            loss = loss + term
        return loss

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
        return self.retrieval.predict(interaction)

    def full_sort_predict(self, interaction):
        if self.loss is None:
            return self.model.full_sort_predict(interaction)
        return self.retrieval.full_sort_predict(interaction)

    def extra_repr(self) -> str:
        if self.loss is None:
            return "loss=model's own"
        log_q = ", log-q corrected" if self.use_log_q and self.sampler.weighted else ""
        return f"sampler={self.sampler!r}{log_q}, score={self.retrieval.score!r}"
