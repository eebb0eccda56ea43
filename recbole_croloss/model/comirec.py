r"""ComiRec (Cen et al., KDD 2020): K interests per user, extracted by self-attention (SA) or
dynamic routing (DR); trained with a hard readout, served by searching every interest.

``forward(item_seq [B, L], item_seq_len [B]) -> interests [B, K, d]``:

- ``sa``: ``A = softmax_l(W_2 tanh(W_1 (e_l + p_l)))`` over the real positions (``W_1: d -> 4d``,
  ``W_2: 4d -> K``, ``p_l`` a learnt position embedding), ``interests = A^T e`` (``A [B, L, K]``);
- ``dr``: each interest k maps behaviour l with its own bilinear map, ``e_hat_kl = W_lk e_l``
  (``W [L, K, d, d]``), and ``routing_iterations`` rounds of dynamic routing
  (:func:`~recbole_croloss.model.layers.dynamic_routing`) from zero routing logits give
  ``interests = squash(...)``.

Training (every loss): for each sample the interest most aligned with its positive item is the
user vector, ``u_b = U_b[argmax_k S(u_bk, v_pos_b)]`` (hard readout). Evaluation: an item scores
``max_k S(u_bk, v)``; for the top N this equals ComiRec's per-interest search and merge
(:func:`recbole_croloss.scoring.search_and_merge`; tested).

Where this follows ComiRec's paper and official code (github.com/THUDM/ComiRec, ``src/model.py``):

- SA: attention on embeddings plus positions, hidden width 4d with tanh, pooling of the
  embeddings without positions; padding positions get weight exactly 0.
- DR: per-position, per-interest bilinear maps (the code's ``bilinear_type=2``), initialised
  N(0, 1); routing logits start at zero (the per-interest maps already make the interests
  differ; the code draws random logits only for its MIND baseline); the routing softmax runs
  over the interests (``axis=1``: each behaviour spreads one unit over them); three rounds, the
  first two through a stop-gradient; squash as the code writes it; no ReLU layer after routing.
- Hard readout by arg-max at training, max over interests at serving.

Where it differs:

- The official code trains with TensorFlow's sampled softmax (``10 x batch`` sampled items,
  zero biases); here ``loss: ce`` is the full softmax over the catalogue and
  ``loss: sampled_softmax`` the sampled one over shared uniform negatives (the adapter's).
- The official code embeds the padding positions as zero vectors and keeps them in the SA
  softmax with a logit of -2^32; here their weight is exactly 0 (the same up to rounding).
- ``S`` is cosine x 10 by default, the score the CROLoss paper's code trains ComiRec on; ComiRec's
  own code uses the dot product (``score: dot``, ``scale: 1``). Measured on ml-100k to
  convergence: cosine x 10 is 3-12 points of Recall@50-500 higher for SA under every loss; for
  DR it is mixed (the dot product is better under ``ce`` at large N).
- ComiRec's controllable aggregation (the lambda diversity re-ranking) is not implemented.
- A PyTorch port we read (ShiningCosmos/pytorch_ComiRec) takes the routing softmax over the
  behaviours (``dim=-1``) where the official code takes it over the interests, and initialises
  every weight Kaiming-normal; this implementation keeps the official routing.
"""
from __future__ import annotations

import torch
from torch import nn

from .abstract import PluginSequentialModel
from .layers import (choice, dynamic_routing, hard_readout, padding_mask, int_setting,
                     self_attentive_interests)


class SelfAttentiveExtractor(nn.Module):
    """ComiRec-SA: ``emb [B, L, d], mask [B, L] -> interests [B, K, d]``."""

    def __init__(self, d: int, num_interest: int, max_len: int):
        super().__init__()
        self.position_embedding = nn.Embedding(max_len, d)
        self.attention = nn.Sequential(nn.Linear(d, 4 * d), nn.Tanh(), nn.Linear(4 * d, num_interest))

    def forward(self, emb: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        positions = self.position_embedding.weight[: emb.shape[1]]
        return self_attentive_interests(self.attention(emb + positions), emb, mask)


class RoutingExtractor(nn.Module):
    """ComiRec-DR: ``emb [B, L, d], mask [B, L] -> interests [B, K, d]``."""

    def __init__(self, d: int, num_interest: int, max_len: int, iterations: int):
        super().__init__()
        self.num_interest = num_interest
        self.iterations = iterations
        self.bilinear = nn.Parameter(torch.randn(max_len, num_interest, d, d))  # W_lk

    def forward(self, emb: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, length, _ = emb.shape
        item_hat = torch.einsum("lkde,ble->bkld", self.bilinear[:length], emb)  # [B, K, L, d]
        logits = emb.new_zeros(batch, self.num_interest, length)  # deterministic, as the official DR
        return dynamic_routing(item_hat, mask, self.iterations, logits)


#: ``interest_extractor`` -> its module.
EXTRACTORS: dict[str, type[nn.Module]] = {"sa": SelfAttentiveExtractor, "dr": RoutingExtractor}


class ComiRec(PluginSequentialModel):
    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        d = self.embedding_size = int_setting(config, "embedding_size")
        self.num_interest = int_setting(config, "num_interest")
        kind = choice(config, "interest_extractor", EXTRACTORS)
        self.item_embedding = nn.Embedding(self.n_items, d, padding_idx=0)
        if kind == "dr":
            self.extractor = RoutingExtractor(d, self.num_interest, self.max_seq_length,
                                              int_setting(config, "routing_iterations"))
        else:
            self.extractor = SelfAttentiveExtractor(d, self.num_interest, self.max_seq_length)
        self.apply(self._init_weights)

    def forward(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        """``[B, L], [B] -> interests [B, K, d]``."""
        return self.extractor(self.item_embedding(item_seq), padding_mask(item_seq_len, item_seq.shape[1]))

    def readout(self, query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        """Hard readout: ``[B, K, d], [B, d] -> [B, d]``, the interest with the largest score."""
        return hard_readout(query, key)
