"""Which items a user may not be recommended at evaluation: the key ``eval_mask``.

A mask turns RecBole's evaluation batch (its ``history_index`` and the interaction) into
:class:`~recbole_croloss.evaluation.Exclusions` with rows numbered within the batch; the padding
item 0 is always excluded. :data:`EVAL_MASKS` maps the key's values to the masks.
"""
from __future__ import annotations

import torch

from ..evaluation import Exclusions


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
