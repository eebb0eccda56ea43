r"""Sequential training samples whose histories are windows into each user's sequence, cut per
batch instead of materialised.

RecBole's ``SequentialDataset.data_augmentation`` loops over every interaction in Python and
stores, for each of the ``S`` samples (every prefix ``u, <i_1 .. i_k> -> i_{k+1}``), a
``[MAX_ITEM_LIST_LENGTH]`` copy of its history for every field: ``S x L`` values per field
(27 GB of item ids alone at Taobao's size). :class:`WindowedSequentialDataset` keeps the sorted
interactions once (CSR-style: the values of each field, int32 where the ids fit) and, per
sample, only where its window starts and how long it is (int32 where they fit; a batch has
RecBole's int64 lengths); ``dataset[index]`` (what every RecBole loader's collate reads) cuts
the ``*_list`` fields of those rows, vectorised. The samples, their
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
    interactions before it (RecBole's augmentation, vectorised); int32 where the positions fit
    (4 B a sample each, not 8)."""
    n = len(user_ids)
    index = np.int32 if n < 2 ** 31 else np.int64
    user_start = np.flatnonzero(np.r_[True, user_ids[1:] != user_ids[:-1]]) if n else np.zeros(0, np.int64)
    position = np.arange(n, dtype=index)
    position -= np.repeat(user_start.astype(index), np.diff(np.r_[user_start, n]))  # within the user
    targets = np.arange(n, dtype=index)[position >= 1]
    lengths = np.minimum(position[targets], index(max_length))
    return targets, targets - lengths, lengths


def take_rows(interaction: Interaction, index) -> Interaction:
    """``interaction[index]`` for an index tensor or array ``[R]``, the same rows as RecBole's
    ``Interaction.__getitem__`` gives, without its ``index.tolist()`` (a Python int per row:
    seconds per million rows, and the dominant cost of the splits at Books' size)."""
    if isinstance(index, np.ndarray):
        index = torch.from_numpy(index)
    if not isinstance(index, torch.Tensor):
        return interaction[index]
    return Interaction({field: values[index] for field, values in interaction.interaction.items()})


def move_rows(interaction: Interaction, index) -> Interaction:
    """:func:`take_rows`, emptying ``interaction`` field by field as it goes, so that the rows
    and all of ``interaction`` are never held at once (at most one field of each extra)."""
    index = torch.from_numpy(index) if isinstance(index, np.ndarray) else index
    fields = list(interaction.interaction)
    rows = {}
    for field in fields:
        rows[field] = interaction.interaction.pop(field)[index]
    return Interaction(rows)


def sort_by_user_then_time(interaction: Interaction, user_field: str, time_field: str) -> Interaction:
    """The rows in RecBole's ``sort(by=[user, time])`` order (two stable sorts: by user, ties
    by time, then by file order), as one stable ``lexsort``; rows already in order (a file
    grouped by user in time order) are kept as they are, after an O(n) check."""
    users, times = interaction[user_field].numpy(), interaction[time_field].numpy()
    same_user = users[1:] == users[:-1]
    if np.all((users[1:] > users[:-1]) | (same_user & (times[1:] >= times[:-1]))):
        return interaction
    return take_rows(interaction, np.lexsort((times, users)))


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
        self.inter_feat = sort_by_user_then_time(self.inter_feat, self.uid_field, self.time_field)
        targets, starts, lengths = window_bounds(self.inter_feat[self.uid_field].numpy(),
                                                 self.config["MAX_ITEM_LIST_LENGTH"])
        # The sorted interactions, once: the values every window reads.
        self.sequence_values = {self.item_list_field_of(f): _compact(self.inter_feat[f])
                                for f in self.inter_feat if f != self.uid_field}
        samples = move_rows(self.inter_feat, targets)
        del targets
        # item_length and the window starts are stored as window_bounds gives them (int32
        # where they fit); a batch has RecBole's int64 lengths (__getitem__)
        samples.update(Interaction({self.item_list_length_field: torch.from_numpy(lengths),
                                    WINDOW_START: torch.from_numpy(starts)}))
        self.set_field_property(WINDOW_START, FeatureType.FLOAT, FeatureSource.INTERACTION, 1)
        self.inter_feat = samples

    def item_list_field_of(self, field: str) -> str:
        return getattr(self, f"{field}_list_field")

    def __getitem__(self, index, join=True):
        rows = take_rows(self.inter_feat, index)
        lengths = rows[self.item_list_length_field].long()
        rows.update(Interaction({self.item_list_length_field: lengths,
                                 **self.windows(rows[WINDOW_START], lengths)}))
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
