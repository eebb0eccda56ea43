r"""The base of the plugin's models: RecBole sequential models that rank by the plugin's score.

A plugin model follows the scoring protocol (:class:`~recbole_croloss.scoring.ScoredRetrieval`)
and provides

- ``forward(item_seq [B, L], item_seq_len [B])`` -> the user: ``[B, d]``, or ``[B, K, d]`` for
  a multi-interest model;
- ``item_vectors(items=None)`` -> the item tower's output: ``[n_items, d]`` for the whole
  catalogue, or ``[..., d]`` for the ids ``items [...]``;
- ``readout(query [B, K, d], key [B, d])`` -> ``[B, d]`` (multi-interest models): the training-time
  user vector for each sample, chosen with the sample's positive item;
- optionally ``loss_terms(interaction, user)`` -> ``{name: scalar}``, added to whatever loss
  trains it.

It ranks by ``S`` from the keys ``score`` and ``scale`` (:mod:`recbole_croloss.scoring`):
``full_sort_predict`` is ``S(U, V) [B, n_items]``, ``max_k`` over interests for a multi-interest
user. Its own loss (``loss: ce``) is the softmax cross-entropy over the whole catalogue,

    ``loss = mean_b -log softmax_n(S(u_b, v_n))[pos_b]``,

with ``u_b`` the readout for a multi-interest model. Every other loss comes from the adapter,
which uses the same operations and the same score, so a model is the same model whatever loss
trains it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from recbole.model.abstract_recommender import SequentialRecommender
from recbole.utils import InputType
from torch import nn

from ..errors import ConfigError
from ..scoring import ScoredRetrieval, get_score


class PluginSequentialModel(ScoredRetrieval, SequentialRecommender):
    input_type = InputType.POINTWISE

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        if config["loss_type"] != "CE":
            raise ConfigError("loss_type", config["loss_type"],
                              f"{type(self).__name__} trains with loss_type CE (its own loss is the "
                              "full softmax; the other losses come from the `loss` key)")
        self.score = get_score(config["score"], config["scale"])

    def forward(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def item_vectors(self, items: torch.Tensor | None = None) -> torch.Tensor:
        """The item embedding table's rows (the item tower of a model without a dense layer)."""
        if items is None:
            return self.item_embedding.weight[: self.n_items]
        return F.embedding(items, self.item_embedding.weight, sparse=self.item_embedding.sparse)

    def item_table(self) -> nn.Embedding:
        return self.item_embedding

    def user_vectors(self, interaction) -> torch.Tensor:
        return self.forward(*(interaction[field] for field in self.input_fields()))

    def input_fields(self) -> tuple[str, ...]:
        return self.ITEM_SEQ, self.ITEM_SEQ_LEN

    def calculate_loss(self, interaction):
        """The full softmax over the catalogue (``loss: ce``), plus the model's ``loss_terms``."""
        pos_items = interaction[self.POS_ITEM_ID]
        user = self.user_vectors(interaction)
        keys = self.score.key(self.item_vectors())  # [n_items, d]
        query = self.training_query(user, keys[pos_items])
        loss = F.cross_entropy(query @ keys.T, pos_items)
        for term in self.loss_terms(interaction, user).values():
            loss = loss + term
        return loss

    def _init_weights(self, module):
        """Xavier-normal weights and zero biases, as RecBole's GRU4Rec initialises."""
        if isinstance(module, (nn.Embedding, nn.Linear)):
            nn.init.xavier_normal_(module.weight)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
