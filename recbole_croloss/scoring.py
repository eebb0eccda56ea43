r"""Retrieval scores S(u, v): dot product or cosine similarity, times a scale tau.

The paper uses ``S = tau * cos(u, v)`` with tau = 10. A model trained on a score must be ranked
on the same score at evaluation, so the adapter uses one :class:`Score` for both.

Shapes: ``user [B, d]``; ``items [N, d]`` for :meth:`Score.all` (-> ``[B, N]``) and ``[B, d]``
for :meth:`Score.pairs` (-> ``[B]``).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .errors import ConfigError


class Score:
    name: str = ""

    def __init__(self, scale: float = 1.0):
        try:
            scale = float(scale)
        except (TypeError, ValueError):
            raise ConfigError("scale", scale, "scale must be a finite number > 0") from None
        if not (scale > 0 and math.isfinite(scale)):
            raise ConfigError("scale", scale, "scale must be a finite number > 0")
        self.scale = scale

    def key(self, items: torch.Tensor) -> torch.Tensor:
        """Item vectors as they enter the inner product (normalised for cosine): ``[..., d]``."""
        return items

    def query(self, user: torch.Tensor) -> torch.Tensor:
        """User vectors as they enter the inner product, scale included: ``[..., d]``."""
        return self.key(user) * self.scale

    def all(self, user: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """``S(u_b, v_n)`` for every pair: ``[B, d] x [N, d] -> [B, N]``."""
        return self.query(user) @ self.key(items).T

    def pairs(self, user: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """``S(u_b, v_b)`` row by row: ``[B, d] x [B, d] -> [B]``."""
        return (self.query(user) * self.key(items)).sum(-1)

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


def get_score(name: str, scale: float = 1.0) -> Score:
    cls = SCORES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ConfigError("score", name, SCORES)
    return cls(scale)
