r"""Retrieval scores S(u, v), and the one scoring protocol every trained model is seen through.

Scores: dot product or cosine similarity, times a scale tau.

The paper uses ``S = tau * cos(u, v)`` with tau = 10. A model trained on a score must be ranked
on the same score at evaluation, so the adapter uses one :class:`Score` for both.

Shapes: ``user [B, d]``, or ``[B, K, d]`` for a multi-interest model (K interests per user);
``items [N, d]`` for :meth:`Score.all` (-> ``[B, N]``) and ``[B, d]`` for :meth:`Score.pairs`
(-> ``[B]``). A multi-interest user scores an item by its best interest:
``S(U_b, v) = max_k S(u_bk, v)``. For the top N this is exactly ComiRec's serving (search the
top N of each interest, pool the K x N hits, keep each item's best score, take the top N):
:func:`search_and_merge` implements that merge, and the tests compare the two.

:class:`ScoredRetrieval` is the protocol: a model (the plugin's own, or a RecBole model seen
through :class:`~recbole_croloss.glue.support.RecBoleRetrieval`) gives three operations,
``user_vectors``, ``item_vectors`` and ``readout``, plus a :class:`Score`; prediction, full
ranking, the training query and the ranking keys are written once, here, in terms of them.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .errors import ConfigError


#: The largest ``scale``: 2^24. A float32 cosine carries 24 bits, so one rounding step of a
#: score near +-1 is 2^-24 x scale; beyond 2^24 that step is more than 1, the width over which
#: every kernel turns (sigmoid, softplus, exp, hinge), and the gaps between scores are rounding.
MAX_SCALE = float(2 ** 24)
SCALE_CHOICES = (f"scale must be a finite number > 0 and at most 2^24 = {MAX_SCALE:,.0f}: a float32 "
                 "cosine carries 24 bits, so beyond it one rounding step of a score is more than 1, "
                 "the width over which every kernel turns (the paper uses 10)")


class Score:
    name: str = ""

    def __init__(self, scale: float = 1.0):
        try:
            scale = float(scale)
        except (TypeError, ValueError):
            raise ConfigError("scale", scale, SCALE_CHOICES) from None
        if not (0 < scale <= MAX_SCALE):  # NaN and inf fail too
            raise ConfigError("scale", scale, SCALE_CHOICES)
        self.scale = scale

    def key(self, items: torch.Tensor) -> torch.Tensor:
        """Item vectors as they enter the inner product (normalised for cosine): ``[..., d]``."""
        return items

    def query(self, user: torch.Tensor) -> torch.Tensor:
        """User vectors as they enter the inner product, scale included: ``[..., d]``."""
        return self.key(user) * self.scale

    def all(self, user: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """``S(u_b, v_n)`` for every pair: ``[B, d] x [N, d] -> [B, N]``; for ``user [B, K, d]``,
        ``max_k S(u_bk, v_n)`` -> ``[B, N]``."""
        scores = self.query(user) @ self.key(items).T
        return scores.amax(dim=1) if user.dim() == 3 else scores

    def pairs(self, user: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """``S(u_b, v_b)`` row by row: ``[B, d] x [B, d] -> [B]``; for ``user [B, K, d]``,
        ``max_k S(u_bk, v_b)`` -> ``[B]``."""
        if user.dim() == 3:
            return (self.query(user) * self.key(items)[:, None, :]).sum(-1).amax(dim=1)
        return (self.query(user) * self.key(items)).sum(-1)

    def candidates(self, user: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """``S(u_b, v_bc)`` for each row's own candidates: ``[B, d] x [B, C, d] -> [B, C]``; for
        ``user [B, K, d]``, ``max_k`` -> ``[B, C]``."""
        keys = self.key(items)
        if user.dim() == 3:
            return (self.query(user) @ keys.transpose(1, 2)).amax(dim=1)
        return (keys @ self.query(user)[..., None]).squeeze(-1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(scale={self.scale})"


class DotScore(Score):
    """``S = tau * u . v`` (RecBole's own models score by the plain dot product, tau = 1)."""

    name = "dot"


class CosineScore(Score):
    """``S = tau * u . v / (|u| |v|)``."""

    name = "cosine"

    def key(self, items):
        return F.normalize(items, dim=-1)


SCORES = {s.name: s for s in (DotScore, CosineScore)}


def search_and_merge(score: Score, user: torch.Tensor, items: torch.Tensor, n: int):
    """ComiRec's multi-interest retrieval: each of the K interests searches its own top ``n``
    items, the ``K x n`` hits are pooled, an item found by several interests keeps its best
    score, and the pool's top ``n`` is returned.

    Shapes: ``user [B, K, d]``, ``items [N, d]`` -> ``(scores [B, n], ids [B, n])``, best first.
    Equal, for the top ``n``, to ``score.all(user, items).topk(n)``: an item in the true top n
    is in the top n of the interest that gives it its maximum.
    """
    per_interest = score.query(user) @ score.key(items).T            # [B, K, N]
    top_scores, top_ids = per_interest.topk(n, dim=-1)                # [B, K, n]
    pooled_scores = top_scores.flatten(1)                             # [B, K n]
    pooled_ids = top_ids.flatten(1)
    best = torch.full((user.shape[0], items.shape[0]), -torch.inf,
                      dtype=pooled_scores.dtype, device=pooled_scores.device)
    best.scatter_reduce_(1, pooled_ids, pooled_scores, reduce="amax")  # de-duplicate
    return best.topk(n, dim=-1)


def get_score(name: str, scale: float = 1.0) -> Score:
    cls = SCORES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ConfigError("score", name, SCORES)
    return cls(scale)


class ScoredRetrieval:
    r"""The scoring protocol: three operations and a score; everything a trainer, an evaluator
    or a loss needs from a retrieval model follows from them.

    - ``user_vectors(interaction) -> [B, d]`` (``[B, K, d]`` for K interests), reading the
      interaction's fields ``input_fields()``;
    - ``item_vectors(items=None) -> [n_items, d]`` for the catalogue, ``[..., d]`` for ids;
    - ``readout(query [B, K, d], key [B, d]) -> [B, d]``: a multi-interest user's training-time
      vector for each sample, chosen with the sample's positive key;
    - ``score``: the :class:`Score` it trains and ranks by; ``ITEM_ID``: the interaction field
      holding the items :meth:`predict` scores.
    - ``loss_terms(interaction, user) -> {name: scalar}``: terms the model adds to whatever
      loss trains it (none by default).
    """

    score: Score
    ITEM_ID: str

    def user_vectors(self, interaction) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def item_vectors(self, items: torch.Tensor | None = None) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def input_fields(self) -> tuple[str, ...]:  # pragma: no cover - abstract
        """The interaction fields :meth:`user_vectors` reads (a recommender builds exactly these)."""
        raise NotImplementedError

    def item_table(self):
        """The ``nn.Embedding`` the item vectors are read from (sparse item updates step it)."""
        raise NotImplementedError(f"{type(self).__name__} names no item table")  # pragma: no cover

    def readout(self, query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} has one user vector; no readout")

    def loss_terms(self, interaction, user: torch.Tensor) -> dict[str, torch.Tensor]:
        """Terms added to the training loss, whatever it is (``user``: ``user_vectors``)."""
        return {}

    def training_query(self, user: torch.Tensor, pos_key: torch.Tensor) -> torch.Tensor:
        """``S``'s query side for each training sample: ``[B, d]``; a multi-interest user
        ``[B, K, d]`` is read out with the positive's key ``[B, d]``."""
        query = self.score.query(user)
        return self.readout(query, pos_key) if user.dim() == 3 else query

    def predict(self, interaction) -> torch.Tensor:
        """``S(u_b, v_b) [B]`` for the items of the interaction's ``ITEM_ID`` field."""
        items = self.item_vectors(interaction[self.ITEM_ID])
        return self.score.pairs(self.user_vectors(interaction), items)

    def full_sort_predict(self, interaction) -> torch.Tensor:
        """``S(u_b, v_n) [B, n_items]`` (best interest of a multi-interest user)."""
        return self.score.all(self.user_vectors(interaction), self.item_vectors())

    def ranking_keys(self) -> torch.Tensor:
        """``S.key(V) [n_items, d]``: ``S(u, v_i) = S.query(u) . keys[i]``."""
        return self.score.key(self.item_vectors()).contiguous()
