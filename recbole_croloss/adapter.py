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
from recbole.data.dataloader import FullSortEvalDataLoader
from torch import nn
from tqdm import tqdm

from . import distributed
from .compat import CompatTrainer
from .data.protocol import MultiTargetEvalLoader
from .evaluation import Exclusions, FullRankingEvaluator
from .errors import ConfigError
from .loss import CROLoss, hard_rank_percentile
from .sampler import NegativeSampler
from .scoring import DotScore, Score


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
        gather_negatives: in a distributed run, score every row against the negatives of all
            ranks (``[W M]``, gathered differentiably), as one process with the global batch.
    """

    def __init__(self, model: nn.Module, loss: CROLoss | None = None,
                 sampler: NegativeSampler | None = None, score: Score | None = None,
                 gather_negatives: bool = False):
        super().__init__()
        self.model = model
        self.loss = loss
        self.sampler = sampler
        self.score = score
        self.gather_negatives = gather_negatives
        self._item_vectors = None
        if loss is not None:
            if sampler is None or score is None:
                raise ValueError("a CROLoss-trained adapter needs a sampler and a score")
            self._item_vectors = item_tower(model)  # fails at start, not at the first batch
            if loss.n_items != sampler.catalogue_size:
                raise ValueError(f"the loss counts {loss.n_items} items but the sampler draws "
                                 f"from {sampler.catalogue_size}")
        elif getattr(model, "SCORED_BY_CONFIG", False):  # ``ce`` on a plugin model: its score
            self._item_vectors, self.score = item_tower(model), model.score
        elif type(model).__name__ in SUPPORTED:  # ``ce`` on a tested RecBole model: its full
            self._item_vectors, self.score = item_tower(model), DotScore()  # sort is u . V^T
        if self._item_vectors is not None:
            self._inputs = [getattr(model, FORWARD_INPUTS[p]) for p in forward_inputs(type(model))]
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
        neg_key = self.score.key(self.item_vectors(neg_items))  # [M, d]
        if self.gather_negatives and distributed.active():
            neg_key = distributed.gather_rows(neg_key)  # [W M, d]: every rank's negatives
            neg_mask = self.sampler.mask(pos_items, distributed.gather_ids(neg_items))
        neg_score = query @ neg_key.T
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

    def ranking_vectors(self) -> tuple[Score, torch.Tensor] | None:
        """``(S, keys [n_items, d])``: the score the model ranks by and its item keys
        ``S.key(V)``, so that ``S(u, v_i) = S.query(u) . keys[i]`` (``user_vectors`` gives
        ``u``); ``None`` for a model whose ranking is not such a score (it is then ranked by
        its own ``full_sort_predict``)."""
        if self._item_vectors is None:
            return None
        return self.score, self.score.key(self.item_vectors()).contiguous()

    def extra_repr(self) -> str:
        if self.loss is None:
            return "loss=model's own"
        return f"sampler={type(self.sampler).__name__}, score={self.score!r}"


class EvalMask:
    """Which items a user may not be recommended at evaluation (key ``eval_mask``); the padding
    item 0 never is. ``exclusions(history_index, interaction, model)`` -> :class:`Exclusions`
    with rows numbered within the batch."""

    name = ""

    def exclusions(self, history_index, interaction, model) -> Exclusions:
        return Exclusions(always=(0,))


class NoMask(EvalMask):
    """Nothing but the padding item (ComiRec's protocol: seen items stay candidates)."""

    name = "none"


class RecBoleMask(EvalMask):
    """Exactly what RecBole's full-sort evaluator masks: the padding item and the
    ``history_index`` its dataloader gives (a general model's training items; RecBole gives none
    for sequential models)."""

    name = "recbole"

    def exclusions(self, history_index, interaction, model):
        if history_index is None:
            return super().exclusions(history_index, interaction, model)
        rows, items = history_index
        return Exclusions(rows.long(), items.long(), always=(0,))


class HistoryMask(RecBoleMask):
    """RecBole's mask plus every item of the user's input sequence (never re-recommend what
    the user has just interacted with)."""

    name = "history"

    def exclusions(self, history_index, interaction, model):
        base = super().exclusions(history_index, interaction, model)
        seq = interaction[model.ITEM_SEQ]
        rows, cols = (seq > 0).nonzero(as_tuple=True)
        items = seq[rows, cols]
        if base.rows is not None:
            rows = torch.cat([base.rows.to(rows.device), rows])
            items = torch.cat([base.items.to(items.device), items])
        return Exclusions(rows, items, always=(0,))


EVAL_MASKS: dict[str, type[EvalMask]] = {m.name: m for m in (RecBoleMask, HistoryMask, NoMask)}


#: Evaluation data the chunked evaluator ranks: RecBole's full-sort loader, the paper protocol's.
FULL_RANKING_LOADERS = (FullSortEvalDataLoader, MultiTargetEvalLoader)


class CROLossTrainer(CompatTrainer):
    """RecBole's trainer (with the compat fixes) that

    - logs the adapter's hard-rank diagnostic with each epoch's training loss, as the official
      CROLoss code does;
    - evaluates full-sort data with the memory-bounded :class:`FullRankingEvaluator` (unless
      ``evaluator`` is None: RecBole's own evaluator), masking as ``mask`` says.

    The chunked evaluator needs no ``[eval_batch_size, n_items]`` matrix when the model ranks by
    a score of user and item vectors (every model the adapter trains, and RecBole's supported
    models under ``ce``); any other model is ranked by its own ``full_sort_predict`` row block,
    and only the top-N and the metrics are the evaluator's.
    """

    def __init__(self, config, model, evaluator: FullRankingEvaluator | None = None,
                 mask: EvalMask | None = None):
        super().__init__(config, model)
        self.ranking_evaluator = evaluator
        self.eval_mask = mask or RecBoleMask()

    def _generate_train_loss_output(self, epoch_idx, s_time, e_time, losses):
        output = super()._generate_train_loss_output(epoch_idx, s_time, e_time, losses)
        rank = self.model.pop_hard_rank() if isinstance(self.model, CROLossAdapter) else None
        return output if rank is None else f"{output}, hard rank: {rank:.2f}%"

    @torch.no_grad()
    def evaluate(self, eval_data, load_best_model=True, model_file=None, show_progress=False):
        if not eval_data:
            return None
        if self.ranking_evaluator is None or not isinstance(eval_data, FULL_RANKING_LOADERS):
            return super().evaluate(eval_data, load_best_model, model_file, show_progress)
        if load_best_model:  # as RecBole's Trainer.evaluate; distributed: rank 0's file, sent
            checkpoint_file = model_file or self.saved_model_file  # to every rank
            if distributed.active():
                torch.distributed.barrier()  # rank 0 has finished writing it
            if not distributed.active() or torch.distributed.get_rank() == 0:
                checkpoint = torch.load(checkpoint_file, map_location=self.device)
                self.model.load_state_dict(checkpoint["state_dict"])
                self.model.load_other_parameter(checkpoint.get("other_parameter"))
            if distributed.active():
                distributed.broadcast_state(self.model)
            self.logger.info(f"Loading model structure and parameters from {checkpoint_file}")
        self.model.eval()
        net, evaluator = self.model, self.ranking_evaluator
        n_items = eval_data._dataset.item_num
        ranking = net.ranking_vectors() if isinstance(net, CROLossAdapter) else None
        acc = evaluator.accumulator()
        # distributed: every user on exactly one rank (RecBole's padded repeats dropped)
        batches = distributed.shard_batches(eval_data) if distributed.active() else \
            ((batch, len(batch[0])) for batch in eval_data)
        if show_progress:
            batches = tqdm(batches, total=len(eval_data), ncols=100, desc="Evaluate   ")
        for (interaction, history_index, positive_u, positive_i), keep in batches:
            if keep < len(interaction):
                interaction, positive_i = interaction[:keep], positive_i[positive_u < keep]
                positive_u = positive_u[positive_u < keep]
                if history_index is not None:
                    rows = history_index[0] < keep
                    history_index = (history_index[0][rows], history_index[1][rows])
            if keep == 0:
                continue
            interaction = interaction.to(self.device)
            exclusions = self.eval_mask.exclusions(history_index, interaction, net.model
                                                   if isinstance(net, CROLossAdapter) else net)
            if ranking is not None:
                score, keys = ranking
                _, top_ids = evaluator.topk(score.query(net.user_vectors(interaction)), keys, exclusions)
            else:
                scores = net.full_sort_predict(interaction).view(-1, n_items)
                top_ids = self._topk_of_scores(scores, exclusions, evaluator.n)
            evaluator.add(acc, top_ids, positive_u.to(self.device), positive_i.to(self.device), n_items)
        if distributed.active():  # exact: the sums over every rank's users
            acc.sums, acc.users = distributed.reduce_sums(acc.sums, acc.users, self.device)
        result = acc.result(self.config["metric_decimal_place"])
        self.wandblogger.log_eval_metrics(result, head="eval")
        return result

    @staticmethod
    def _topk_of_scores(scores: torch.Tensor, exclusions: Exclusions, n: int) -> torch.Tensor:
        """``top ids [B, n]`` of a model's own score rows ``[B, n_items]`` (masked in place)."""
        exclusions.apply(scores, 0)
        return scores.topk(n, dim=-1).indices
