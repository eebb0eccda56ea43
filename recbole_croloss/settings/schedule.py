r"""The training regime of a run: which samples each step trains on, when it validates, how long
it trains, and which weights the test evaluates (part of the run spec, checked before any data).

- ``train_sampling``: ``prefixes`` (RecBole's every-prefix samples, the default) or ``users``
  (each batch draws users uniformly and one target per user, as the paper's code does), with
  ``train_min_history`` (users only: the least history a drawn target has; the official code's
  is 4);
- ``eval_every_steps``: validate every K training steps instead of every epoch (the paper:
  4,000, with ``stopping_step: 10`` and ``valid_metric: Recall@100``);
- ``max_steps``: the budget in steps (``epochs`` is then unused);
- ``test_weights``: ``best`` (RecBole's rule: the best validation's weights) or ``last`` (the
  official script's: the weights training ended with);
- ``sparse_item_updates``: only the item-table rows a step touches are updated, by a row-wise
  Adam (:mod:`recbole_croloss.glue.sparse`);
- ``history_windows``: keep each user's sequence once and cut the training histories per batch
  (:mod:`recbole_croloss.data.windows`; the default), or materialise them as RecBole does
  (``false``; always for a model that reads them from the dataset itself);
- ``lean_inter_loader``: read the ``.inter`` file with pyarrow, tokens as integer codes
  (:mod:`recbole_croloss.data.lean_inter`; the default), or with RecBole's own reader (``false``).

With every key at its default, training is RecBole's own loop over RecBole's loader.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..data.train_sampling import check_train_sampling
from ..errors import ConfigError, check_bool, check_int
from ..glue.support import READS_STORED_HISTORIES
from ..glue.train_loader import scheduled_loader

TEST_WEIGHTS = ("best", "last")


def _optional_int(config, key: str, low: int) -> int | None:
    return None if config[key] is None else check_int(key, config[key], low)


def check_sparse_item_updates(config) -> bool:
    """``sparse_item_updates``, refused where a dense gradient or optimizer would defeat it."""
    value = config["sparse_item_updates"]
    if not isinstance(value, bool):
        raise ConfigError("sparse_item_updates", value, "true or false")
    if not value:
        return False
    reasons = [
        (config["loss"] == "ce", "loss='ce' scores every item (a dense gradient); use a sampled loss"),
        (config["negatives"] == "full", "negatives='full' scores every item; use negatives='uniform'"),
        (str(config["learner"]).lower() != "adam", f"learner={config['learner']!r}: the row-wise update is "
                                                    "Adam's (SparseAdam); use learner='adam'"),
        (bool(config["weight_decay"]), f"weight_decay={config['weight_decay']}: SparseAdam has none; set it to 0"),
        (config["nproc"] != 1 or config["world_size"] not in (-1, 1),
         "a distributed run would all-reduce the item table densely; run one process"),
    ]
    for refused, reason in reasons:
        if refused:
            raise ConfigError("sparse_item_updates", value, reason)
    return True


@dataclass(frozen=True)
class ScheduleSpec:
    sampling: str = "prefixes"
    min_history: int = 1
    eval_every_steps: int | None = None
    max_steps: int | None = None
    test_weights: str = "best"
    windows: bool = True
    sparse_item_updates: bool = False
    lean_inter: bool = True

    @classmethod
    def from_config(cls, config, model_class=None) -> "ScheduleSpec":
        sampling = check_train_sampling(config["train_sampling"])
        min_history = _optional_int(config, "train_min_history", 1)
        if min_history is not None:
            if sampling != "users":
                raise ConfigError("train_min_history", min_history, "only train_sampling='users' "
                                  "draws target positions; unset it or set train_sampling='users'")
            if min_history > config["MAX_ITEM_LIST_LENGTH"]:
                raise ConfigError("train_min_history", min_history, "at most MAX_ITEM_LIST_LENGTH "
                                  f"({config['MAX_ITEM_LIST_LENGTH']}), the longest history a sample holds")
        every = _optional_int(config, "eval_every_steps", 1)
        if every is not None and config["eval_step"] != 1:
            raise ConfigError("eval_step", config["eval_step"], "1 with eval_every_steps (which "
                              "sets when validation happens); unset one of them")
        test_weights = config["test_weights"]
        if test_weights not in TEST_WEIGHTS:
            raise ConfigError("test_weights", test_weights, TEST_WEIGHTS)
        windows = config["history_windows"]
        if not isinstance(windows, bool):
            raise ConfigError("history_windows", windows, "true or false")
        windows = windows and getattr(model_class, "__name__", "") not in READS_STORED_HISTORIES
        return cls(sampling, min_history or 1, every, _optional_int(config, "max_steps", 1), test_weights,
                   windows, check_sparse_item_updates(config), check_bool("lean_inter_loader", config["lean_inter_loader"]))

    @property
    def scheduled(self) -> bool:
        """Whether the plugin orders the batches (else RecBole's loader and loop as they are)."""
        return self.sampling != "prefixes" or self.eval_every_steps is not None or self.max_steps is not None

    def train_loader(self, train_data, config):
        """``train_data`` as this regime trains it."""
        if not self.scheduled:
            return train_data
        return scheduled_loader(train_data, self.sampling, self.min_history, self.eval_every_steps,
                                self.max_steps, config)

    def dataset_class(self, line_order: bool):
        """The RecBole dataset class of a sequential model's run (``line_order``: the file has no
        time field)."""
        from recbole.data.dataset import SequentialDataset

        from ..data.lean_inter import LEAN_CLASSES
        from ..data.line_order import LineOrderDataset, LineOrderMaterialisedDataset
        from ..data.windows import WindowedSequentialDataset

        if line_order:
            base = LineOrderDataset if self.windows else LineOrderMaterialisedDataset
        else:
            base = WindowedSequentialDataset if self.windows else SequentialDataset
        return LEAN_CLASSES[base] if self.lean_inter else base

    def describe(self) -> str:
        every = "every epoch" if self.eval_every_steps is None else f"every {self.eval_every_steps} steps"
        budget = "epochs" if self.max_steps is None else f"{self.max_steps} steps"
        sampling = self.sampling if self.sampling == "prefixes" else \
            f"users (uniform; targets with >= {self.min_history} history items)"
        return (f"training samples: {sampling}; validation {every}; budget: {budget}; "
                f"test on the {self.test_weights} weights")
