r"""TwoTower: the CROLoss paper's base retrieval model (section 3.1; the official code's "DNN").

User tower: the mean of the behaviour embeddings over the real (non-padding) positions, then a
dense tower ``[d] -> mlp_hidden_size... -> d`` (activation and dropout after each hidden layer,
the last layer linear). The default, no hidden layer, is the official DNN (ComiRec's
``Model_DNN``, which the CROLoss code trains): one linear layer on the mean.

    ``u = f_user( sum_l m_l e_l / sum_l m_l )``,  ``item_seq [B, L] -> u [B, d]``.

Item tower: the item embedding ``v = e_i``, or with ``item_dense: true`` a dense layer on it,
``v = W e_i + b`` (``[n_items, d]``).

Score: the keys ``score`` and ``scale`` (defaults here: cosine times tau = 10, the paper's).
Defaults in ``properties/model/TwoTower.yaml``: embedding size 32 (paper, 4.1).
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from .abstract import PluginSequentialModel
from .layers import ACTIVATIONS, choice, dense_tower, masked_mean, padding_mask, int_setting


class TwoTower(PluginSequentialModel):
    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        d = self.embedding_size = int_setting(config, "embedding_size")
        hidden = config["mlp_hidden_size"]
        if not isinstance(hidden, list) or not all(
                isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in hidden):
            raise ConfigError("mlp_hidden_size", hidden, "a list of layer sizes >= 1, e.g. [32]")
        dropout = config["dropout_prob"]
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ConfigError("dropout_prob", dropout, "a probability in [0, 1)")
        activation = choice(config, "activation", ACTIVATIONS)
        item_dense = config["item_dense"]
        if not isinstance(item_dense, bool):
            raise ConfigError("item_dense", item_dense, "choose one of: true, false")

        self.item_embedding = nn.Embedding(self.n_items, d, padding_idx=0)
        self.user_tower = dense_tower([d, *hidden, d], activation, float(dropout))
        self.item_tower = nn.Linear(d, d) if item_dense else nn.Identity()
        self.apply(self._init_weights)

    def forward(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        """``[B, L], [B] -> u [B, d]``."""
        pooled = masked_mean(self.item_embedding(item_seq), padding_mask(item_seq_len, item_seq.shape[1]))
        return self.user_tower(pooled)

    def item_vectors(self, items: torch.Tensor | None = None) -> torch.Tensor:
        """``v = item_tower(e_i)``: ``[n_items, d]``, or ``[..., d]`` for ``items [...]``."""
        return self.item_tower(super().item_vectors(items))
