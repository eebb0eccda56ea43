r"""Synthetic catalogues of item and user vectors, from 10^4 to millions of items, for the
evaluator's and retrieval's scale tests and benchmarks (no one can download Taobao here).

Items fall into ``n_clusters`` latent interests: item ``i`` belongs to cluster ``c(i) = i mod C``
and is ``v_i = mu_c(i) + sigma * eps_i``; a user picks a cluster ``c_u`` and is
``u = mu_c_u + sigma * eps_u``; its held-out targets are items of its cluster drawn uniformly.
``mu ~ N(0, I / d)``, ``eps ~ N(0, I / d)``, so scores ``u . v`` are O(1) and a user's targets
rank high but not first: Recall@N is neither 0 nor 1. Item 0 is RecBole's padding item (it is
generated like the others; evaluators mask it).

Deterministic by ``seed``: every block of rows is drawn from its own generator seeded from
``(seed, what, block)``, on the CPU, so the same seed gives the same vectors on any device and
memory holds one block of noise at a time besides the result.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

#: Rows drawn per generator block.
BLOCK = 1 << 16


@dataclass
class Catalogue:
    """``items [N, d]``, ``users [U, d]``, targets as ``(target_rows [T], target_items [T])``
    pairs (RecBole's ``positive_u``, ``positive_i`` layout), ``clusters [U]`` of the users."""

    items: torch.Tensor
    users: torch.Tensor
    target_rows: torch.Tensor
    target_items: torch.Tensor
    user_clusters: torch.Tensor

    @property
    def n_items(self) -> int:
        return self.items.shape[0]


def _gaussian(rows: int, dim: int, seed: int, what: int, scale: float) -> torch.Tensor:
    out = torch.empty(rows, dim)
    for b, lo in enumerate(range(0, rows, BLOCK)):
        gen = torch.Generator().manual_seed(hash((seed, what, b)) & 0x7FFF_FFFF_FFFF)
        hi = min(rows, lo + BLOCK)
        out[lo:hi] = torch.randn(hi - lo, dim, generator=gen) * scale
    return out


def synthetic_catalogue(n_items: int, n_users: int, dim: int = 64, n_clusters: int = 1000,
                        targets_per_user: int = 1, sigma: float = 1.0, seed: int = 0,
                        device: str | torch.device = "cpu") -> Catalogue:
    """A catalogue of ``n_items`` item vectors and ``n_users`` users with their targets."""
    if n_items < 2 or n_users < 1 or dim < 1 or targets_per_user < 1:
        raise ValueError("need n_items >= 2, n_users >= 1, dim >= 1, targets_per_user >= 1")
    C = max(1, min(n_clusters, n_items - 1))
    scale = dim ** -0.5
    centres = _gaussian(C, dim, seed, 0, scale)
    items = _gaussian(n_items, dim, seed, 1, scale * sigma)
    for lo in range(0, n_items, BLOCK):  # v_i += mu_{i mod C}
        hi = min(n_items, lo + BLOCK)
        items[lo:hi] += centres[torch.arange(lo, hi) % C]
    gen = torch.Generator().manual_seed(hash((seed, 2)) & 0x7FFF_FFFF_FFFF)
    user_clusters = torch.randint(0, C, (n_users,), generator=gen)
    users = _gaussian(n_users, dim, seed, 3, scale * sigma) + centres[user_clusters]
    # targets: items c + C * j of the user's cluster c, never the padding item 0
    members = (n_items - 1 - user_clusters) // C + 1          # items of cluster c in 0..N-1
    j = (torch.rand(n_users, targets_per_user, generator=gen) * members[:, None]).long()
    target_items = user_clusters[:, None] + C * j
    target_items = torch.where(target_items == 0, torch.full_like(target_items, C), target_items)
    target_items = target_items.clamp(max=n_items - 1)
    target_rows = torch.arange(n_users)[:, None].expand(-1, targets_per_user)
    return Catalogue(items.to(device), users.to(device), target_rows.flatten().to(device),
                     target_items.flatten().to(device), user_clusters.to(device))
