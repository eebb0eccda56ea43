r"""ReChorus's evaluation protocol (``protocol: sampled``): RecBole's leave-one-out split by time,
each validation and test case ranking its positive among ``sampled_negatives`` negatives drawn
once (``sampled_seed``) uniformly with replacement from the items the user never interacted
with (over train, valid and test; ``sampled_exclude_history: false`` draws from every other
item), ties counted against the positive (:mod:`recbole_croloss.evaluation.sampled`).

RecBole's nearest option, ``eval_args.mode: uni99``, redraws its negatives on every evaluation,
may draw the user's own items and collapses duplicates; here the negatives are fixed for the
whole run (the validation and the test cases have their own draws), duplicates are kept, as
ReChorus keeps them.
"""
from __future__ import annotations

import numpy as np
import torch

from ..errors import ConfigError, check_int


def draw_negatives(user_ids: np.ndarray, item_ids: np.ndarray, n_users: int, n_items: int,
                   n_negatives: int, exclude_history: bool, seed: int) -> np.ndarray:
    """``[n_users, n_negatives]`` item ids in ``1 .. n_items - 1`` (0 is padding), each row drawn
    uniformly with replacement, avoiding the user's own items (``user_ids``/``item_ids``, all
    interactions) when ``exclude_history``."""
    rng = np.random.default_rng(seed)
    out = rng.integers(1, n_items, size=(n_users, n_negatives))
    if not exclude_history:
        return out
    seen = np.unique(user_ids.astype(np.int64) * n_items + item_ids.astype(np.int64))
    counts = np.bincount(user_ids, minlength=n_users)
    if np.any(counts >= n_items - 1):
        raise ConfigError("sampled_exclude_history", True, "some user has interacted with every item, "
                          "so no negative is left to draw; set it to false")
    for _ in range(1000):  # redraw the collisions; each round removes all but a few
        keys = np.arange(n_users)[:, None] * n_items + out
        bad = np.isin(keys, seen)
        if not bad.any():
            return out
        out[bad] = rng.integers(1, n_items, size=int(bad.sum()))
    raise RuntimeError("could not draw negatives outside the users' histories")  # pragma: no cover


class SampledEvalLoader:
    """A RecBole full-sort evaluation loader whose rows are scored on their own candidates:
    yields ``(interaction, candidates [B, 1 + n])``, the positive in column 0."""

    def __init__(self, loader, negatives: torch.Tensor):
        self._loader, self.negatives = loader, negatives
        self._dataset = loader._dataset
        self.sample_size = loader.sample_size

    def __len__(self) -> int:
        return len(self._loader)

    def __iter__(self):
        uid_field = self._dataset.uid_field
        for interaction, _, positive_u, positive_i in self._loader:
            positives = torch.zeros(len(interaction), dtype=torch.long)
            positives[positive_u] = positive_i
            yield interaction, torch.cat([positives[:, None], self.negatives[interaction[uid_field]]], 1)


class SampledProtocol:
    name = "sampled"
    KEYS = ("sampled_negatives", "sampled_exclude_history", "sampled_seed")

    def __init__(self, n_negatives: int = 99, exclude_history: bool = True, seed: int = 0):
        self.n_negatives, self.exclude_history, self.seed = n_negatives, exclude_history, seed

    @classmethod
    def from_config(cls, config) -> "SampledProtocol":
        exclude = config["sampled_exclude_history"]
        if not isinstance(exclude, bool):
            raise ConfigError("sampled_exclude_history", exclude, "true or false")
        n = check_int("sampled_negatives", config["sampled_negatives"], 1)
        topk = config["topk"] if isinstance(config["topk"], list) else [config["topk"]]
        if any(isinstance(k, int) and k > n + 1 for k in topk):
            raise ConfigError("topk", topk, f"at most 1 + sampled_negatives = {n + 1} (each case ranks "
                              f"its positive among {n} negatives), e.g. [5, 10, 20, 50]")
        if config["nproc"] != 1 or config["world_size"] not in (-1, 1):
            raise ConfigError("protocol", "sampled", "one process: the sampled evaluation is not sharded "
                              "over ranks; use protocol='loo' or 'paper' in a distributed run")
        return cls(n, exclude, check_int("sampled_seed", config["sampled_seed"], 0))

    @property
    def label(self) -> str:
        pool = "never the user's items" if self.exclude_history else "any other item"
        return (f"sampled: leave-one-out, the positive among {self.n_negatives} negatives ({pool}; "
                f"drawn once, seed {self.seed}), ties counted against the positive")

    def prepare(self, config, dataset):
        from recbole.data import data_preparation

        feat = dataset.inter_feat  # every interaction, before the split
        users, items = feat[dataset.uid_field].to_numpy(), feat[dataset.iid_field].to_numpy()
        train, valid, test = data_preparation(config, dataset)
        loaders = []
        for offset, loader in enumerate((valid, test)):
            negatives = draw_negatives(users, items, dataset.user_num, dataset.item_num, self.n_negatives,
                                       self.exclude_history, self.seed + offset)
            loaders.append(SampledEvalLoader(loader, torch.from_numpy(negatives)))
        return train, loaders[0], loaders[1]
