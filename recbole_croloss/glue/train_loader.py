r"""RecBole's training loader with its batches chosen by a :class:`~recbole_croloss.data.
train_sampling.TrainOrder`: ``len()`` and one iteration cover one round (the steps between two
validations), so RecBole's trainer, which validates after each pass over its training loader,
validates every ``steps_per_round`` steps. Everything else (the dataset, the transform, the
collation) is RecBole's loader's own.
"""
from __future__ import annotations

import numpy as np
import torch

from .. import distributed

from ..data.train_sampling import TrainOrder, UserSamples, steps_per_epoch


class ScheduledTrainLoader:
    """Iterates ``loader``'s collated batches in the order of ``order``, one round at a time;
    any other attribute is ``loader``'s."""

    def __init__(self, loader, order: TrainOrder, budget: str):
        self._loader, self.order, self.budget = loader, order, budget

    def __len__(self) -> int:
        return self.order.round_length()

    def __iter__(self):
        for index in self.order.next_round():
            yield self._loader.collate_fn(index.numpy().astype(np.int64))

    def __getattr__(self, name):
        if name in ("_loader", "order", "budget"):  # not yet set (copying, unpickling)
            raise AttributeError(name)
        return getattr(self._loader, name)


def scheduled_loader(train_data, sampling: str, min_history: int, eval_every_steps: int | None,
                     max_steps: int | None, config) -> ScheduledTrainLoader:
    """``train_data`` (RecBole's training loader) trained as the schedule says:

    - ``sampling``: ``prefixes`` or ``users`` (with ``min_history``);
    - ``eval_every_steps``: steps per round (``None``: one epoch);
    - the budget: ``max_steps`` steps, else ``epochs`` epochs.
    """
    dataset = train_data._dataset
    batch = config["train_batch_size"]
    per_epoch = steps_per_epoch(len(dataset), batch)
    users = None
    if sampling == "users":
        lengths = dataset.inter_feat[config["ITEM_LIST_LENGTH_FIELD"]]
        users = UserSamples(dataset.inter_feat[dataset.uid_field], lengths, min_history)
    total = max_steps if max_steps is not None else config["epochs"] * per_epoch
    rank, world_size = (torch.distributed.get_rank(), torch.distributed.get_world_size()) \
        if distributed.active() else (0, 1)
    order = TrainOrder(len(dataset), batch, config["seed"], total, eval_every_steps or per_epoch, users,
                       rank=rank, world_size=world_size)
    return ScheduledTrainLoader(train_data, order, "max_epochs" if max_steps is None else "max_steps")


def epochs_done(steps: int, train_data) -> float:
    """Data epochs the first ``steps`` steps cover (a fraction under step-based validation)."""
    batch = train_data.config["train_batch_size"]
    return steps / steps_per_epoch(len(train_data._dataset), batch) if steps else 0.0


def rounds(train_data) -> int | None:
    """How many rounds (RecBole's "epochs") the scheduled loader's budget holds."""
    return train_data.order.n_rounds if isinstance(train_data, ScheduledTrainLoader) else None

