r"""The CROLoss paper's evaluation protocol (ComiRec's), as a RecBole data preparation.

``protocol: paper`` (key read by the run spec) replaces RecBole's per-user leave-one-out split:

- users are split into train / valid / test by ``paper_split_ratio`` (8:1:1) with
  ``paper_split_seed``, or as the dataset gives them (the ``comirec_split`` user field the
  ComiRec importer writes: ComiRec's own split, used as given);
- a training user contributes every sample "the first k behaviours predict the (k+1)-th"
  (RecBole's sequential augmentation, history truncated to ``MAX_ITEM_LIST_LENGTH``);
- a held-out user with ``L`` behaviours in time order is one evaluation row: the first
  ``k = int(0.8 L)`` behaviours (the last ``MAX_ITEM_LIST_LENGTH`` of them) are the input and the
  remaining ``L - k`` are its targets (ComiRec: ``k = int(len * 0.8)``); a user with ``k < 1``
  (fewer than 2 behaviours) cannot be evaluated and is left out (counted in the log);
- metrics are multi-target: ``Recall@N = |top N ∩ targets| / |targets|``, averaged over users,
  by the chunked full-ranking evaluator.

:func:`paper_data_preparation` returns ``(train_data, valid_data, test_data)`` like RecBole's
``data_preparation``; the evaluation loaders yield ``(interaction, None, positive_u,
positive_i)`` batches as RecBole's full-sort loader does, with several targets per row.
"""
from __future__ import annotations

import math
from logging import getLogger

import numpy as np
import torch

from ..compat import lean_loader_indices
from ..errors import ConfigError, check_int
from .sampled_protocol import SampledProtocol
from .windows import move_rows, take_rows

#: The user field that carries a given split (written by the ComiRec importer).
SPLIT_FIELD = "comirec_split"
SPLIT_NAMES = ("train", "valid", "test")


class MultiTargetEvalLoader:
    """Full-ranking evaluation rows with several targets each.

    ``interaction``: one row per user (its input sequence); ``target_rows [T]`` /
    ``target_items [T]``: the targets as (row, item) pairs. Iterating yields batches of
    ``batch_size`` rows as ``(interaction, None, positive_u, positive_i)`` with ``positive_u``
    numbered within the batch (RecBole's full-sort layout; ``None``: nothing masked).
    """

    def __init__(self, dataset, interaction, target_rows: torch.Tensor, target_items: torch.Tensor,
                 batch_size: int):
        self._dataset = dataset
        self.interaction = interaction
        order = torch.argsort(target_rows, stable=True)
        self.target_rows, self.target_items = target_rows[order], target_items[order]
        self.batch_size = batch_size
        self.sample_size = len(interaction)

    @property
    def n_targets(self) -> int:
        return len(self.target_rows)

    def __len__(self) -> int:
        return (self.sample_size + self.batch_size - 1) // self.batch_size

    def __iter__(self):
        bounds = torch.searchsorted(self.target_rows, torch.arange(0, self.sample_size + self.batch_size,
                                                                  self.batch_size))
        for b, lo in enumerate(range(0, self.sample_size, self.batch_size)):
            hi = min(lo + self.batch_size, self.sample_size)
            t_lo, t_hi = int(bounds[b]), int(bounds[b + 1])
            yield (take_rows(self.interaction, torch.arange(lo, hi)), None,
                   self.target_rows[t_lo:t_hi] - lo, self.target_items[t_lo:t_hi])


def check_ratio(value) -> tuple[float, float, float]:
    """``paper_split_ratio``: three shares > 0 that sum to 1 (within 1e-6, for the rounding of
    decimal shares, which is divided out). Shares that sum to something else are refused, not rescaled:
    ``[0.8, 0.2, 0.1]`` is more likely a typo than a request for 8:2:1."""
    if not isinstance(value, (list, tuple)) or len(value) != 3 or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value) \
            or min(value) <= 0:
        raise ConfigError("paper_split_ratio", value, "three numbers train, valid, test > 0 (each "
                          "split needs users), e.g. [0.8, 0.1, 0.1]")
    total = math.fsum(value)
    if abs(total - 1.0) > 1e-6:
        raise ConfigError("paper_split_ratio", value, f"the train, valid and test shares sum to {total:.7g}, "
                          "not 1; give shares that sum to 1, e.g. [0.8, 0.1, 0.1]")
    return tuple(v / total for v in value)


def split_users(user_ids: np.ndarray, ratio, seed: int) -> dict[str, np.ndarray]:
    """Users ``[U]`` -> ``{"train": ids, "valid": ids, "test": ids}``: a random permutation by
    ``seed`` cut at the ratio (``round`` of the cumulative shares; disjoint, covering)."""
    users = np.unique(user_ids)
    perm = np.random.default_rng(seed).permutation(users)
    cuts = np.round(np.cumsum(ratio)[:2] * len(users)).astype(int)
    return dict(zip(SPLIT_NAMES, np.split(perm, cuts)))


def given_split(dataset) -> dict[str, np.ndarray] | None:
    """The split in the dataset's ``comirec_split`` user field, if it has one."""
    if dataset.user_feat is None or SPLIT_FIELD not in dataset.user_feat:
        return None
    labels = dataset.id2token(SPLIT_FIELD, dataset.user_feat[SPLIT_FIELD].numpy())
    uids = dataset.user_feat[dataset.uid_field].numpy()
    unknown = sorted(set(labels.tolist()) - set(SPLIT_NAMES) - {"[PAD]"})
    if unknown:
        raise ConfigError(SPLIT_FIELD, unknown[0], SPLIT_NAMES)
    return {name: uids[labels == name] for name in SPLIT_NAMES}


def held_out_rows(uids: np.ndarray, prefix_len: np.ndarray, target_ids: np.ndarray, users: np.ndarray):
    """For the augmented rows of a dataset (``uids [R]``; ``prefix_len [R]``, the untruncated
    number of behaviours before the row's target, 1, 2, ... per user; ``target_ids [R]``), the
    evaluation row of each user in ``users`` and its targets.

    A user with ``L`` behaviours has rows with prefix 1 .. L-1 (targets: behaviours 2 .. L);
    its evaluation row is the one with prefix ``k = int(0.8 L)``, its targets the behaviours
    ``k+1 .. L``, i.e. the targets of its rows with prefix >= k.

    Returns ``(eval_rows [E], target_rows [T], target_items [T])`` with ``target_rows`` numbered
    ``0 .. E-1`` in the order of ``eval_rows`` (users in increasing id), and the number of users
    skipped (k < 1).
    """
    in_users = np.isin(uids, users)
    lengths = np.bincount(uids, minlength=int(uids.max()) + 1) + 1      # L = rows + 1 per user
    k = (0.8 * lengths).astype(prefix_len.dtype)                         # int(0.8 L), as ComiRec
    row_k = k[uids]
    keep = in_users & (row_k >= 1)
    eval_mask = keep & (prefix_len == row_k)
    eval_rows = np.flatnonzero(eval_mask)
    eval_users = uids[eval_rows]
    position = np.full(len(lengths), -1, dtype=np.int64)
    position[eval_users] = np.arange(len(eval_rows))
    target_mask = keep & (prefix_len >= row_k)
    target_rows = position[uids[target_mask]]
    skipped = len(np.unique(uids[in_users & (row_k < 1)]))
    return eval_rows, target_rows, target_ids[target_mask], skipped


def _prefix_lengths(uids: np.ndarray) -> np.ndarray:
    """1, 2, 3, ... within each user's run of rows (rows sorted by user, then time); int32
    where the row numbers fit."""
    index = np.int32 if len(uids) < 2 ** 31 else np.int64
    starts = np.flatnonzero(np.r_[True, uids[1:] != uids[:-1]]).astype(index) if len(uids) else \
        np.zeros(0, dtype=index)
    prefix = np.arange(1, len(uids) + 1, dtype=index)
    prefix -= np.repeat(starts, np.diff(np.r_[starts, len(uids)]).astype(index))
    return prefix


def paper_data_preparation(config, dataset, ratio, seed: int):
    """``(train_data, valid_data, test_data)`` of the paper's protocol for a RecBole
    ``SequentialDataset`` (see the module docstring).

    The samples move into the splits, so that they are never held twice: the held-out users'
    rows are copied into the evaluation loaders, then ``dataset.inter_feat`` becomes the
    training samples, field by field (Taobao's: 68M of 84M)."""
    from recbole.data.utils import get_dataloader

    dataset._change_feat_format()  # RecBole's augmentation: every prefix predicts the next item
    split = given = given_split(dataset)   # (user_feat is an Interaction from here on)
    source = "the dataset's comirec_split field (ComiRec's split, as given)"
    uids = dataset.inter_feat[dataset.uid_field].numpy()
    if len(uids) and np.any(uids[1:] < uids[:-1]):
        raise ValueError("augmented rows are not grouped by user")
    users = uids[np.r_[True, uids[1:] != uids[:-1]]] if len(uids) else uids  # rows grouped by user
    if split is None:
        split = split_users(users, ratio, seed)  # np.unique(uids) is users
        source = f"random user split {ratio[0]:.2f}:{ratio[1]:.2f}:{ratio[2]:.2f}, seed {seed}"
    loaders, counts = held_out_loaders(config, dataset, uids, split)
    counts = {"train": int(np.isin(users, split["train"]).sum()), **counts}
    getLogger().info(f"protocol paper ({source}): users train {counts['train']}, valid {counts['valid']} "
                     f"({loaders[0].n_targets} targets), test {counts['test']} ({loaders[1].n_targets} targets)")
    empty = [name for name, count in counts.items() if count == 0]
    if empty:  # training would run, then validate or test on nobody
        raise ConfigError("paper_split_ratio", list(ratio) if given is None else "comirec_split",
                          f"the {source} leaves no {' and no '.join(empty)} user with 2 or more "
                          f"behaviours ({counts}); give every split users")
    train_rows = np.flatnonzero(np.isin(uids, split["train"]))
    del uids  # a view of the user ids: moving them frees them only once it is gone
    dataset.inter_feat = move_rows(dataset.inter_feat, train_rows)
    train_ds = dataset.copy(dataset.inter_feat)
    train_data = get_dataloader(config, "train")(config, train_ds, None, shuffle=config["shuffle"])
    return train_data, loaders[0], loaders[1], given is not None


def held_out_loaders(config, dataset, uids: np.ndarray, split) -> tuple[list, dict[str, int]]:
    """The valid and test loaders (one row per held-out user with its targets) and their user
    counts; ``uids [R]``: the user of each sample."""
    prefix = _prefix_lengths(uids)
    targets = dataset.inter_feat[dataset.iid_field].numpy()
    loaders, counts = [], {}
    for name in ("valid", "test"):
        rows, t_rows, t_items, skipped = held_out_rows(uids, prefix, targets, split[name])
        counts[name] = len(rows)
        if skipped:
            getLogger().info(f"protocol paper: {skipped} {name} users have fewer than 2 behaviours and are left out")
        index = torch.from_numpy(rows)
        # dataset[...] (not inter_feat[...]): a windowed dataset cuts the rows' histories there
        loaders.append(MultiTargetEvalLoader(
            dataset.copy(take_rows(dataset.inter_feat, index)), dataset.__getitem__(index, join=False),
            torch.from_numpy(t_rows), torch.from_numpy(t_items), config["eval_batch_size"]))
    return loaders, counts


class LeaveOneOut:
    """RecBole's own split (``eval_args``: per user, the last item tests, the one before it
    validates): one target per user, so Recall@N equals Hit@N."""

    name = "loo"
    label = "RecBole leave-one-out"
    KEYS: tuple[str, ...] = ()  # its settings are RecBole's eval_args

    @classmethod
    def from_config(cls, config) -> "LeaveOneOut":
        return cls()

    def prepare(self, config, dataset):
        from recbole.data import data_preparation

        with lean_loader_indices():
            return data_preparation(config, dataset)


class PaperProtocol:
    """The paper's (ComiRec's) protocol: user split, first 80% of a held-out user -> last 20%."""

    name = "paper"
    KEYS = ("paper_split_ratio", "paper_split_seed")

    def __init__(self, ratio=(0.8, 0.1, 0.1), seed: int = 2020):
        self.ratio, self.seed = check_ratio(ratio), seed  # named as given
        self.uses_given_split = False  # known once the data is prepared

    @classmethod
    def from_config(cls, config) -> "PaperProtocol":
        seed = config["paper_split_seed"]
        return cls(config["paper_split_ratio"],
                   config["seed"] if seed is None else check_int("paper_split_seed", seed, 0))

    @property
    def label(self) -> str:
        if self.uses_given_split:
            users = "users split as the dataset gives (ComiRec's comirec_split)"
        else:
            users = "users split " + ":".join(f"{r:g}" for r in self.ratio)
        return f"paper: {users}, a held-out user's first 80% predict the rest"

    def prepare(self, config, dataset):
        with lean_loader_indices():
            *loaders, self.uses_given_split = paper_data_preparation(config, dataset, self.ratio, self.seed)
        return tuple(loaders)


#: ``protocol`` -> its class (each reads its own keys: ``from_config``).
PROTOCOLS = {p.name: p for p in (LeaveOneOut, PaperProtocol, SampledProtocol)}
