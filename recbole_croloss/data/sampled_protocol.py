r"""ReChorus's evaluation protocol (``protocol: sampled``): RecBole's leave-one-out split by time,
each validation and test case ranking its positive among ``sampled_negatives`` negatives drawn
once (``sampled_seed``) uniformly with replacement from the items the user never interacted
with (over train, valid and test; ``sampled_exclude_history: false`` draws from every other
item), ties counted against the positive (:mod:`recbole_croloss.evaluation.sampled`).

With ``sampled_negatives_dir``, the negatives are ReChorus's own instead: the folder's ``dev.csv``
and ``test.csv`` (ReChorus's layout, :mod:`~recbole_croloss.data.rechorus`) give each validation
and test case its ``neg_items``, and every case must match the split's (same user, same item).

RecBole's nearest option, ``eval_args.mode: uni99``, redraws its negatives on every evaluation,
may draw the user's own items and collapses duplicates; here the negatives are fixed for the
whole run (the validation and the test cases have their own draws), duplicates are kept, as
ReChorus keeps them.
"""
from __future__ import annotations

import os

import numpy as np
import torch

from ..compat import lean_loader_indices
from ..errors import ConfigError, check_int
from .import_parsing import MalformedInputError, Report
from .rechorus import NEG_COLUMN, parse_neg_items, read_header, read_split

#: The case files ``sampled_negatives_dir`` holds: the validation cases', the test cases'.
CASE_FILES = ("dev.csv", "test.csv")

#: ReChorus's evaluation settings (its runner's defaults), for a sampled run that sets none.
RECHORUS_TOPK, RECHORUS_METRICS = (5, 10, 20, 50), ("Hit", "NDCG")


def evaluation_defaults(values: dict, given: set) -> dict:
    """The ``topk``, ``metrics`` and ``valid_metric`` a ``protocol: sampled`` run takes for the
    keys not in ``given`` (those the user set; ``values``: the merged settings, RecBole's lists).

    Unset ``topk`` and ``metrics`` are ReChorus's, ``[5, 10, 20, 50]`` and ``[Hit, NDCG]``, with
    the cut-off and the metric of a given ``valid_metric`` added so that it can be computed. An
    unset ``valid_metric`` is NDCG at the first cut-off (ReChorus's main metric is its first
    metric, NDCG, at its first cut-off), or the user's first metric there when it has no NDCG."""
    filled = {}
    name, _, cut = str(values["valid_metric"]).partition("@") if "valid_metric" in given else ("", "", "")
    if "metrics" not in given:
        extra = [name] if name and name.lower() not in {m.lower() for m in RECHORUS_METRICS} else []
        filled["metrics"] = [*RECHORUS_METRICS, *extra]
    if "topk" not in given:
        filled["topk"] = sorted(set(RECHORUS_TOPK) | ({int(cut)} if cut.isdecimal() and int(cut) > 0 else set()))
    metrics, topk = filled.get("metrics", values["metrics"]), filled.get("topk", values["topk"])
    if "valid_metric" not in given and metrics and topk:
        first = next((m for m in metrics if str(m).lower() == "ndcg"), metrics[0])
        filled["valid_metric"] = f"{first}@{topk[0]}"
    return filled


def defaults_line(filled: dict) -> str:
    """The log line that says which evaluation settings a sampled run chose for the user."""
    chosen = ", ".join(f"{key}={_plain(value)}" for key, value in filled.items())
    why = " (the full-ranking cut-offs, 50 to 500, do not fit a case's 1 + sampled_negatives " \
          "candidates)" if "topk" in filled else ""
    return f"protocol=sampled takes ReChorus's evaluation settings for those not set: {chosen}{why}"


def _plain(value) -> str:
    return "[" + ", ".join(map(str, value)) + "]" if isinstance(value, list) else str(value)


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


def negatives_per_case(folder) -> int:
    """The number of negatives of the first case in ``folder``'s ``dev.csv`` (the folder is
    checked: both case files, each with a ``neg_items`` column)."""
    key = "sampled_negatives_dir"
    if not isinstance(folder, str) or not os.path.isdir(folder):
        raise ConfigError(key, folder, "a folder holding ReChorus's dev.csv and test.csv (with neg_items)")
    for name in CASE_FILES:
        path = os.path.join(folder, name)
        try:
            columns = read_header(path)
        except (OSError, MalformedInputError) as error:
            raise ConfigError(key, folder, f"a folder with ReChorus's {name}: {error}") from None
        if NEG_COLUMN not in columns:
            raise ConfigError(key, folder, f"case files with a {NEG_COLUMN} column; {path} has {columns}")
    with open(os.path.join(folder, CASE_FILES[0]), encoding="utf-8-sig") as handle:
        columns, first = handle.readline().rstrip("\r\n").split("\t"), handle.readline().rstrip("\r\n").split("\t")
    negatives = parse_neg_items(first[columns.index(NEG_COLUMN)]) if len(first) == len(columns) else None
    if negatives is None:
        raise ConfigError(key, folder, f"dev.csv's first case has no {NEG_COLUMN} list such as [12, 7, 301]")
    return len(negatives)


def _token_ids(dataset, field: str, tokens: list[str], path: str) -> np.ndarray:
    table = dataset.field2token_id[field]
    unknown = sorted({t for t in tokens if t not in table})
    if unknown:
        raise ConfigError("sampled_negatives_dir", os.path.dirname(path), f"{field}s of the dataset (RecBole "
                          f"knows those its interactions name, after its filters); {os.path.basename(path)} names "
                          f"{len(unknown)} it does not have: {unknown[:5]}")
    return np.fromiter((table[t] for t in tokens), dtype=np.int64, count=len(tokens))


def fixed_negatives(path: str, dataset, cases, n_negatives: int) -> torch.Tensor:
    """``[n_users, n_negatives]`` negatives of ReChorus's case file ``path`` for the evaluation
    split ``cases`` (a RecBole dataset of one case per user); every case must be in the file
    with the same item, and every row of the file must be a case."""
    report = Report()
    split = read_split(path, report, True)
    key, folder = "sampled_negatives_dir", os.path.dirname(path)
    if report.total:
        raise ConfigError(key, folder, f"well-formed case files; {report.text()}")
    counts = {len(n) for n in split.negatives}
    if counts != {n_negatives}:
        raise ConfigError(key, folder, f"{n_negatives} negatives per case (its dev.csv's first); "
                          f"{os.path.basename(path)} has {sorted(counts)}")
    users = _token_ids(dataset, dataset.uid_field, split.users, path)
    items = _token_ids(dataset, dataset.iid_field, split.items, path)
    negatives = _token_ids(dataset, dataset.iid_field, [i for row in split.negatives for i in row], path)
    file_item = np.full(dataset.user_num, -1, dtype=np.int64)
    file_item[users] = items
    case_users = cases.inter_feat[dataset.uid_field].numpy()
    case_items = cases.inter_feat[dataset.iid_field].numpy()
    wrong = np.flatnonzero(file_item[case_users] != case_items)
    extra = np.setdiff1d(users, case_users)
    if wrong.size or extra.size:
        first = case_users[wrong[0]] if wrong.size else extra[0]
        raise ConfigError(key, folder, f"the split's cases; {os.path.basename(path)} differs for "
                          f"{wrong.size + extra.size} users (e.g. user "
                          f"{dataset.id2token(dataset.uid_field, first)}): import the dataset with "
                          "--format rechorus, which keeps ReChorus's split")
    out = torch.zeros(dataset.user_num, n_negatives, dtype=torch.long)
    out[torch.from_numpy(users)] = torch.from_numpy(negatives.reshape(len(users), n_negatives))
    return out


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
    KEYS = ("sampled_negatives", "sampled_exclude_history", "sampled_seed", "sampled_negatives_dir")

    def __init__(self, n_negatives: int = 99, exclude_history: bool = True, seed: int = 0,
                 negatives_dir: str | None = None):
        self.n_negatives, self.exclude_history, self.seed = n_negatives, exclude_history, seed
        self.negatives_dir = negatives_dir

    @classmethod
    def _from_files(cls, config) -> "SampledProtocol":
        folder = config["sampled_negatives_dir"]
        n = negatives_per_case(folder)
        given = getattr(config, "user_settings", {})
        for key in ("sampled_exclude_history", "sampled_seed"):
            if key in given:
                raise ConfigError(key, given[key], f"sampled_negatives_dir={folder!r} gives the negatives, "
                                  f"which reads no {key}; unset {key}")
        if "sampled_negatives" in given and given["sampled_negatives"] != n:
            raise ConfigError("sampled_negatives", given["sampled_negatives"],
                              f"{n}, the number of negatives per case in {folder}/dev.csv (or unset it)")
        return cls(n, seed=0, negatives_dir=folder)

    @classmethod
    def from_config(cls, config) -> "SampledProtocol":
        if config["sampled_negatives_dir"] is not None:
            return _check_topk(config, cls._from_files(config))
        exclude = config["sampled_exclude_history"]
        if not isinstance(exclude, bool):
            raise ConfigError("sampled_exclude_history", exclude, "true or false")
        n = check_int("sampled_negatives", config["sampled_negatives"], 1)
        return _check_topk(config, cls(n, exclude, check_int("sampled_seed", config["sampled_seed"], 0)))

    @property
    def label(self) -> str:
        if self.negatives_dir is not None:
            drawn = f"ReChorus's fixed negatives from {self.negatives_dir}"
        else:
            pool = "never the user's items" if self.exclude_history else "any other item"
            drawn = f"{pool}; drawn once, seed {self.seed}"
        return (f"sampled: leave-one-out, the positive among {self.n_negatives} negatives ({drawn}), "
                "ties counted against the positive")

    def prepare(self, config, dataset):
        from logging import getLogger

        from recbole.data import data_preparation

        if getattr(config, "protocol_defaults", None):
            # shown on the compact console too (glue.progress.CONSOLE): a choice made for the user
            getLogger().info(defaults_line(config.protocol_defaults), extra={"console": True})

        feat = dataset.inter_feat  # every interaction, before the split
        users, items = feat[dataset.uid_field].to_numpy(), feat[dataset.iid_field].to_numpy()
        with lean_loader_indices():
            train, valid, test = data_preparation(config, dataset)
        loaders = []
        for offset, loader in enumerate((valid, test)):
            if self.negatives_dir is not None:
                negatives = fixed_negatives(os.path.join(self.negatives_dir, CASE_FILES[offset]), dataset,
                                            loader._dataset, self.n_negatives)
            else:
                negatives = torch.from_numpy(draw_negatives(users, items, dataset.user_num, dataset.item_num,
                                                            self.n_negatives, self.exclude_history, self.seed + offset))
            loaders.append(SampledEvalLoader(loader, negatives))
        return train, loaders[0], loaders[1]


def _check_topk(config, protocol: SampledProtocol) -> SampledProtocol:
    n = protocol.n_negatives
    topk = config["topk"] if isinstance(config["topk"], list) else [config["topk"]]
    if any(isinstance(k, int) and k > n + 1 for k in topk):
        if "topk" in getattr(config, "protocol_defaults", {}):  # the cut-off came from valid_metric
            raise ConfigError("valid_metric", config["valid_metric"], f"a cut-off of at most 1 + "
                              f"sampled_negatives = {n + 1} (each case ranks its positive among {n} "
                              "negatives), e.g. NDCG@5")
        raise ConfigError("topk", topk, f"at most 1 + sampled_negatives = {n + 1} (each case ranks "
                          f"its positive among {n} negatives), e.g. [5, 10, 20, 50]")
    if config["nproc"] != 1 or config["world_size"] not in (-1, 1):
        raise ConfigError("protocol", "sampled", "one process: the sampled evaluation is not sharded "
                          "over ranks; use protocol='loo' or 'paper' in a distributed run")
    return protocol
