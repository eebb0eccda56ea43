r"""Sequential training samples whose histories are windows into each user's sequence, cut per
batch instead of materialised.

RecBole's ``SequentialDataset.data_augmentation`` loops over every interaction in Python and
stores, for each of the ``S`` samples (every prefix ``u, <i_1 .. i_k> -> i_{k+1}``), a
``[MAX_ITEM_LIST_LENGTH]`` copy of its history for every field: ``S x L`` values per field
(27 GB of item ids alone at Taobao's size). :class:`WindowedSequentialDataset` keeps the sorted
interactions once (CSR-style: the values of each field, int32 where the ids fit) and, per
sample, only where its window starts and how long it is; ``dataset[index]`` (what every RecBole
loader's collate reads) cuts the ``*_list`` fields of those rows, vectorised. The samples, their
order and every field equal RecBole's: ``dataset[index]`` gives the same values as RecBole's
augmented dataset (tested on ml-100k), so loaders, splits, trainer and models are RecBole's.

Preparation time and memory grow with the number of interactions, not with interactions x L.
"""
from __future__ import annotations

import numpy as np
import torch
from recbole.data.dataset import SequentialDataset
from recbole.data.interaction import Interaction
from recbole.utils import FeatureSource, FeatureType

#: The sample's first history row in the sorted interactions (a field of ``inter_feat``).
WINDOW_START = "history_window_start"


def window_bounds(user_ids: np.ndarray, max_length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For interactions sorted by user (then time): ``(targets, starts, lengths)`` of the
    samples, one per interaction after a user's first, each with the up to ``max_length``
    interactions before it (RecBole's augmentation, vectorised)."""
    n = len(user_ids)
    first = np.ones(n, dtype=bool)
    first[1:] = user_ids[1:] != user_ids[:-1]
    user_start = np.maximum.accumulate(np.where(first, np.arange(n), 0))
    position = np.arange(n) - user_start
    targets = np.flatnonzero(position >= 1)
    lengths = np.minimum(position[targets], max_length)
    return targets, targets - lengths, lengths


def _compact(values: torch.Tensor) -> torch.Tensor:
    """Integer ids in int32 where they fit (half the memory); other values as they are."""
    if values.dtype == torch.int64 and values.numel() and int(values.max()) < 2 ** 31 and int(values.min()) >= 0:
        return values.to(torch.int32)
    return values


class WindowedSequentialDataset(SequentialDataset):
    """RecBole's ``SequentialDataset`` with windowed histories (see the module docstring)."""

    def data_augmentation(self):
        self.logger.debug("data_augmentation (windows)")
        self._aug_presets()
        self._check_field("uid_field", "time_field")
        self.sort(by=[self.uid_field, self.time_field], ascending=True)
        uids = self.inter_feat[self.uid_field].numpy()
        targets, starts, lengths = window_bounds(uids, self.config["MAX_ITEM_LIST_LENGTH"])
        # The sorted interactions, once: the values every window reads.
        self.sequence_values = {self.item_list_field_of(f): _compact(self.inter_feat[f])
                                for f in self.inter_feat if f != self.uid_field}
        samples = self.inter_feat[torch.from_numpy(targets)]
        samples.update(Interaction({self.item_list_length_field: torch.from_numpy(lengths),
                                    WINDOW_START: torch.from_numpy(starts)}))
        self.set_field_property(WINDOW_START, FeatureType.FLOAT, FeatureSource.INTERACTION, 1)
        self.inter_feat = samples

    def item_list_field_of(self, field: str) -> str:
        return getattr(self, f"{field}_list_field")

    def __getitem__(self, index, join=True):
        rows = self.inter_feat[index]
        rows.update(Interaction(self.windows(rows[WINDOW_START], rows[self.item_list_length_field])))
        return self.join(rows) if join else rows

    def windows(self, starts: torch.Tensor, lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every ``*_list`` field of the samples whose windows start at ``starts [R]`` and hold
        ``lengths [R]`` interactions: ``[R, L, ...]``, zero after each window's end."""
        width = self.config["MAX_ITEM_LIST_LENGTH"]
        offsets = torch.arange(width)
        inside = offsets < lengths.long().view(-1, 1)                      # [R, L]
        at = torch.where(inside, starts.long().view(-1, 1) + offsets, 0)    # [R, L]
        out = {}
        for list_field, values in self.sequence_values.items():
            cut = values[at]
            mask = inside.view(*inside.shape, *([1] * (cut.dim() - 2)))
            out[list_field] = torch.where(mask, cut, torch.zeros((), dtype=cut.dtype)).to(
                torch.int64 if values.dtype == torch.int32 else values.dtype)
        return out
