r"""Sparse item-table updates (``sparse_item_updates: true``): only the rows a step touches (its
histories, positives and negatives) get a gradient and an optimizer update.

The item table (an ``nn.Embedding``) is switched to sparse gradients, and
:class:`SparseItemAdam` steps it with ``torch.optim.SparseAdam`` (a row-wise, "lazy" Adam) and
every other parameter with ``torch.optim.Adam``, both at the run's learning rate. It differs from
dense Adam in two ways: a row no step touches is not moved (dense Adam keeps moving it with its
decaying momentum), and its moments are not decayed meanwhile, so when a rare item comes back
its old moments count as if no time had passed. At a catalogue of millions of items a step then
costs what its batch touches, not the whole table.

Refused by the run spec where it cannot work: ``loss: ce`` and ``negatives: full`` score the
whole table (a dense gradient), SparseAdam has no weight decay, and DDP would all-reduce the
table densely. A model that reads its table densely inside its forward (``weight`` instead of
the module) is stopped at the first step with :class:`~recbole_croloss.errors.ConfigError`.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError


class SparseItemAdam:
    """``SparseAdam`` for ``table``'s weight, ``Adam`` for ``others``; one optimizer to RecBole
    (``step``, ``zero_grad``, ``state_dict``, ``load_state_dict``, ``param_groups``)."""

    def __init__(self, table: nn.Embedding, others, lr: float, model_name: str):
        table.sparse = True
        self.table, self.model_name = table, model_name
        self.sparse = torch.optim.SparseAdam([table.weight], lr=lr)
        others = [p for p in others if p is not table.weight and p.requires_grad]
        self.dense = torch.optim.Adam(others, lr=lr) if others else None

    @property
    def optimizers(self) -> list[torch.optim.Optimizer]:
        return [o for o in (self.sparse, self.dense) if o is not None]

    @property
    def param_groups(self) -> list[dict]:
        return [g for o in self.optimizers for g in o.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=set_to_none)

    def step(self, closure=None) -> None:
        grad = self.table.weight.grad
        if grad is not None and not grad.is_sparse:
            raise ConfigError("sparse_item_updates", True, f"{self.model_name} reads its item table "
                              "densely in training (its weight, not the embedding module), so every row "
                              "gets a gradient; unset sparse_item_updates for this model")
        for optimizer in self.optimizers:
            optimizer.step()

    def state_dict(self) -> dict:
        return {"sparse": self.sparse.state_dict(),
                "dense": None if self.dense is None else self.dense.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.sparse.load_state_dict(state["sparse"])
        if self.dense is not None:
            self.dense.load_state_dict(state["dense"])
