r"""Which training samples each step trains on, as a pure function of the seed and the step.

RecBole's sequential training data holds one sample per prefix of every training sequence
(``u, <i_1 .. i_k> -> i_{k+1}``, history truncated to ``MAX_ITEM_LIST_LENGTH``), so a user
with a long sequence weighs as many times as it has prefixes. Two regimes draw from those
samples with the same negatives and the same loss code:

- ``prefixes`` (RecBole's): every sample once per epoch, in a fresh order each epoch;
- ``users`` (the paper's code): each batch draws ``B`` training users uniformly (with
  replacement) and one target position per user, uniformly among the user's samples whose
  history holds at least ``min_history`` items (the user's longest one where none does). An
  epoch of it draws as many samples as there are prefixes, so both regimes take the same number
  of steps per epoch.

Training runs in *rounds* of ``steps_per_round`` steps between two validations (one epoch when
validation follows each epoch), up to ``total_steps``. Batch ``s`` of the run depends only on
the seed and ``s``, so a resumed run needs only the number of steps done (:attr:`step`), and the
ranks of a distributed run each take their share of the same global batch.
"""
from __future__ import annotations

import math
from collections.abc import Iterator

import torch

from ..errors import ConfigError

TRAIN_SAMPLINGS = ("prefixes", "users")

#: Mixes the run's seed with a step or an epoch into one generator seed.
_SEED_STRIDE = 1_000_003


def check_train_sampling(value) -> str:
    if value not in TRAIN_SAMPLINGS:
        raise ConfigError("train_sampling", value, TRAIN_SAMPLINGS)
    return value


class UserSamples:
    """Each training user's eligible samples, CSR-style: user ``u`` owns
    ``rows[offsets[u]:offsets[u + 1]]`` (sample indices, ``[n_eligible]``)."""

    def __init__(self, user_ids: torch.Tensor, history_lengths: torch.Tensor, min_history: int):
        """``user_ids``, ``history_lengths``: ``[n_samples]``, one per training sample."""
        user_ids, history_lengths = user_ids.long(), history_lengths.long()
        order = torch.argsort(user_ids, stable=True)  # a user's samples stay in their order
        users, counts = torch.unique_consecutive(user_ids[order], return_counts=True)
        member = torch.repeat_interleave(torch.arange(len(users)), counts)  # [n_samples], sorted
        lengths = history_lengths[order]
        long_enough = lengths >= min_history
        has_long = torch.zeros(len(users)).index_add_(0, member, long_enough.float()) > 0
        # A user whose samples are all shorter keeps its longest one.
        longest = torch.zeros(len(users), dtype=lengths.dtype).scatter_reduce(0, member, lengths, "amax")
        eligible = long_enough | (~has_long[member] & (lengths == longest[member]))
        self.rows = order[eligible]
        per_user = torch.zeros(len(users), dtype=torch.long).index_add_(0, member[eligible],
                                                                        torch.ones_like(self.rows))
        self.offsets = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(per_user, 0)])
        self.users = users
        self.min_history = min_history

    @property
    def n_users(self) -> int:
        return len(self.users)

    def draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` sample indices: users uniformly, then one eligible sample of each uniformly."""
        user = torch.randint(self.n_users, (n,), generator=generator)
        start, count = self.offsets[user], self.offsets[user + 1] - self.offsets[user]
        pick = (torch.rand(n, generator=generator, dtype=torch.float64) * count).long()
        return self.rows[start + torch.minimum(pick, count - 1)]


class TrainOrder:
    """The batches of a run: :meth:`next_round` yields this rank's sample indices, one tensor
    per step, for the steps up to the next validation."""

    def __init__(self, n_samples: int, batch_size: int, seed: int, total_steps: int,
                 steps_per_round: int, users: UserSamples | None = None,
                 rank: int = 0, world_size: int = 1):
        self.n_samples, self.batch_size, self.seed = n_samples, batch_size, int(seed)
        self.users = users
        self.total_steps, self.steps_per_round = total_steps, steps_per_round
        self.rank, self.world_size = rank, world_size
        self.step = 0
        self._epoch, self._permutation = None, None

    @property
    def sampling(self) -> str:
        return "prefixes" if self.users is None else "users"

    @property
    def steps_per_epoch(self) -> int:
        return steps_per_epoch(self.n_samples, self.batch_size)

    @property
    def n_rounds(self) -> int:
        return math.ceil(self.total_steps / self.steps_per_round)

    def round_length(self) -> int:
        """Steps in the next round (the last one may be shorter)."""
        return max(0, min(self.steps_per_round, self.total_steps - self.step))

    def next_round(self) -> Iterator[torch.Tensor]:
        for _ in range(self.round_length()):
            batch = self.global_batch(self.step)
            self.step += 1
            yield batch[self.rank::self.world_size]

    def global_batch(self, step: int) -> torch.Tensor:
        """The sample indices of step ``step`` over every rank, ``[<= batch_size]``."""
        if self.users is not None:
            generator = torch.Generator().manual_seed(self.seed * _SEED_STRIDE + step)
            return self.users.draw(self.batch_size, generator)
        epoch, position = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:  # every sample once per epoch, a fresh order each epoch
            generator = torch.Generator().manual_seed(self.seed * _SEED_STRIDE + epoch)
            self._epoch, self._permutation = epoch, torch.randperm(self.n_samples, generator=generator)
        return self._permutation[position * self.batch_size:(position + 1) * self.batch_size]


def steps_per_epoch(n_samples: int, batch_size: int) -> int:
    return max(1, math.ceil(n_samples / batch_size))
