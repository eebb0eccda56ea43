"""Checks of RecBole's own settings and of the keys a user gave, made by the run spec before any
data is loaded (RecBole reads them late, and a bad value surfaces as a traceback mid-run, or is
read as something else without a word).

Each check raises :class:`~recbole_croloss.errors.ConfigError` naming the key, the value and
what is allowed; :func:`unknown_key_warnings` returns the lines to log for keys nobody reads,
and :func:`refuse_unread` refuses a key the user gave that the run's other choices never read.
"""
from __future__ import annotations

import importlib.util
import math
import os
import re

from ..errors import ConfigError, check_bool, check_int
from ..io import check_writable_dir
from ..loss import loss_keys

__all__ = ["check_recbole_settings", "check_valid_metric", "check_writable_dir", "refuse_unread",
           "empty_dataset_error", "unknown_key_warnings", "INTEGER_SETTINGS"]

#: RecBole settings that must be integers in ``[low, high]`` (``high`` None: no bound). numpy
#: takes seeds below 2**32 only, and RecBole seeds it with ``seed`` as given.
INTEGER_SETTINGS = {"epochs": (1, None), "train_batch_size": (1, None), "eval_batch_size": (1, None),
                    "MAX_ITEM_LIST_LENGTH": (1, None), "stopping_step": (1, None), "eval_step": (1, None),
                    "seed": (0, 2 ** 32 - 1)}
#: Model sizes (read only by the models that have them): torch refuses 0 or less only when the
#: model is built, after the data is loaded.
MODEL_SIZE_SETTINGS = ("embedding_size", "hidden_size", "inner_size", "n_layers", "num_layers", "n_heads")
#: RecBole switches: it tests their truth value, so ``show_progress=abc`` would be true.
BOOLEAN_SETTINGS = ("reproducibility", "show_progress", "shuffle", "save_dataset", "save_dataloaders",
                    "log_wandb", "require_pow", "enable_amp", "enable_scaler", "repeatable",
                    "valid_metric_bigger", "use_gpu")
#: Settings with a fixed set of values, and whether RecBole compares them ignoring case. RecBole
#: trains with Adam when ``learner`` is none of its own and logs at INFO for an unknown ``state``
#: (or none);
#: the plugin feeds point-wise samples (``loss_type`` CE) and draws the negatives itself.
CHOICE_SETTINGS = (
    ("learner", ("adam", "adamw", "sgd", "adagrad", "rmsprop", "sparse_adam"), False,
     "choose one of RecBole's optimizers: adam, adamw, sgd, adagrad, rmsprop, sparse_adam"),
    ("state", ("info", "debug", "warning", "error", "critical", None), False,
     "choose one of the log levels: info, debug, warning, error, critical"),
    ("loss_type", ("CE",), True, "CE: the plugin feeds point-wise samples and draws every loss's "
     "negatives itself (for BPR use loss=bpr)"),
)
#: Settings of RecBole's data filters: a dataset they leave empty stops RecBole mid-load.
FILTER_SETTINGS = ("user_inter_num_interval", "item_inter_num_interval", "val_interval", "rm_dup_inter",
                   "filter_inter_by_user_or_item", "load_col", "unload_col", "unused_col")
#: The arguments ``torch.nn.utils.clip_grad_norm_`` takes by name, as RecBole passes them.
CLIP_GRAD_NORM_KEYS = ("max_norm", "norm_type", "error_if_nonfinite", "foreach")

#: Keys the plugin reads that have no default line in ``properties/overall.yaml``.
PLUGIN_KEYS_WITHOUT_DEFAULT = (*loss_keys(), "interest_extractor", "num_interest", "routing_iterations")


def check_recbole_settings(config) -> None:
    """The RecBole settings a run relies on, before RecBole reads them."""
    for key, (low, high) in INTEGER_SETTINGS.items():
        check_int(key, config[key], low, high)
    for key in MODEL_SIZE_SETTINGS:
        if config[key] is not None:
            check_int(key, config[key], 1)
    for key in BOOLEAN_SETTINGS:
        if config[key] is not None:
            check_bool(key, config[key])
    for key, value in config.final_config_dict.items():
        if key.endswith("dropout_prob"):  # torch refuses these only when the model is built
            check_number(key, value, 0.0, "a probability from 0 to 1", high=1.0)
    check_number("learning_rate", config["learning_rate"], 0.0, "a finite number > 0, e.g. 0.001", strict=True)
    check_number("weight_decay", config["weight_decay"], 0.0, "a finite number >= 0 (0: no L2 penalty)")
    check_choices(config)
    check_clip_grad_norm(config["clip_grad_norm"])
    check_gpu_id(config["gpu_id"])
    check_eval_args(config["eval_args"])
    check_run_dirs(config)
    check_valid_metric(config)
    check_wandb(config["log_wandb"])


def check_run_dirs(config) -> None:
    """The folders a run writes in: ``checkpoint_dir``, and the two RecBole 1.2.1 places under
    the folder the run starts in, with no key to move them (``init_logger``'s ``./log/<model>``,
    the trainer's ``./log_tensorboard``). RecBole makes them as it starts the logger and, after
    the data is loaded, the trainer; a path under a file or an unwritable folder ends there in a
    ``NotADirectoryError`` or ``PermissionError`` traceback."""
    check_writable_dir("checkpoint_dir", config["checkpoint_dir"])
    for name, path, written in (("log folder", os.path.join("log", str(config["model"])), "log file"),
                                ("TensorBoard folder", "log_tensorboard", "TensorBoard events")):
        try:
            check_writable_dir(name, path)
        except ConfigError as err:
            raise ConfigError(name, os.path.abspath(path), f"{err.allowed}; RecBole writes the run's "
                              f"{written} there, in the folder the run starts in (no setting moves it): "
                              "start the run from another folder, or move what is in the way") from None


def check_wandb(log_wandb) -> None:
    """``log_wandb: true`` needs wandb installed: RecBole imports it only when the trainer is
    built, after the data is loaded."""
    if log_wandb and importlib.util.find_spec("wandb") is None:
        raise ConfigError("log_wandb", log_wandb, "wandb is not installed: pip install wandb, or set "
                          "log_wandb: false")


def check_number(key: str, value, low: float, allowed: str, strict: bool = False,
                 high: float | None = None) -> float:
    """``value`` if it is a finite real number >= ``low`` (> with ``strict``; <= ``high``)."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) and \
        (value > low if strict else value >= low) and (high is None or value <= high)
    if not ok:
        raise ConfigError(key, value, allowed)
    return float(value)


def check_choices(config) -> None:
    for key, choices, exact, allowed in CHOICE_SETTINGS:
        value = config[key]
        given = value if exact or not isinstance(value, str) else value.lower()
        if given not in choices:
            raise ConfigError(key, value, allowed)


def check_clip_grad_norm(value) -> None:
    """``clip_grad_norm``: unset, or the arguments of ``clip_grad_norm_`` with a ``max_norm`` > 0
    (RecBole unpacks it as keyword arguments at the first batch)."""
    if value is None:
        return
    if not isinstance(value, dict) or "max_norm" not in value or set(value) - set(CLIP_GRAD_NORM_KEYS):
        raise ConfigError("clip_grad_norm", value,
                          "unset, or a mapping such as {'max_norm': 5, 'norm_type': 2}")
    try:
        check_number("max_norm", value["max_norm"], 0.0, "", strict=True)
    except ConfigError:
        raise ConfigError("clip_grad_norm", value, "its max_norm must be a finite number > 0") from None


def check_gpu_id(value) -> None:
    """``gpu_id``: GPU numbers separated by commas, or empty for the CPU. RecBole hands it to
    CUDA_VISIBLE_DEVICES, where a typo hides every GPU and the run trains on the CPU."""
    text = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
    if isinstance(value, bool) or not re.fullmatch(r"(\d+(,\d+)*)?", text):
        raise ConfigError("gpu_id", value, "GPU numbers separated by commas, e.g. 0 or 0,1; empty for the CPU")


def check_eval_args(value) -> None:
    """RecBole's ``eval_args`` (as its Config completed them): the sequential models need the
    time order, and the plugin reports full ranking, which RecBole's sampled modes are not."""
    if not isinstance(value, dict):
        return  # RecBole's Config refuses it
    if value.get("order") != "TO":
        raise ConfigError("eval_args", value, "order 'TO': a sequential model is evaluated on each "
                          "user's last interactions in time order (an eval_args without an order "
                          "takes RecBole's 'RO')")
    modes = value.get("mode") or {}
    sampled = {split: mode for split, mode in modes.items() if mode != "full"}
    if sampled:
        raise ConfigError("eval_args", value, f"mode 'full': recbole-croloss ranks the whole catalogue "
                          f"and reports it as full ranking; {sampled} would rank a sample of items")


def check_valid_metric(config) -> None:
    """``valid_metric`` (``Recall@50``) must name one of ``metrics`` at one of ``topk``: RecBole
    looks it up in the validation result only after the first epoch, as the text it is given
    (``Recall@050`` is not ``recall@50``)."""
    value = config["valid_metric"]
    metric, at, k = str(value).partition("@")
    metrics = config["metrics"] if isinstance(config["metrics"], list) else [config["metrics"]]
    topk = config["topk"] if isinstance(config["topk"], list) else [config["topk"]]
    if not at or not (k.isascii() and k.isdigit()) or str(int(k)) != k:
        raise ConfigError("valid_metric", value, "a metric at a cut-off, e.g. Recall@50 (the cut-off "
                          "written as in topk, without leading zeros)")
    if metric.lower() not in {str(m).lower() for m in metrics}:
        raise ConfigError("valid_metric", value, f"its metric must be one of metrics={metrics}")
    if int(k) not in topk:
        raise ConfigError("valid_metric", value, f"its cut-off must be one of topk={topk}")


def refuse_unread(config, keys, because: str) -> None:
    """Refuse each of ``keys`` the user gave: ``because`` says why the run never reads it (it
    would be ignored silently). Defaults are not refused, only what the user set."""
    given = getattr(config, "user_settings", {})
    for key in keys:
        if key in given:
            raise ConfigError(key, given[key], f"{because}, which reads no {key}; unset {key}")


def empty_dataset_error(config) -> ConfigError:
    """The error for a dataset RecBole's filters leave without interactions (RecBole stops
    mid-load with "Some feat is empty"), naming the filter settings the user gave."""
    given = getattr(config, "user_settings", {})
    named = [key for key in FILTER_SETTINGS if key in given]
    key = named[0] if named else "dataset"
    value = given[key] if named else config["dataset"]
    return ConfigError(key, value, "it leaves no interactions: RecBole's filters "
                       f"({', '.join(named) or 'the dataset YAML'}) remove every user or item; widen them")


def unknown_key_warnings(config) -> list[str]:
    """A warning line for each key the user gave that neither RecBole nor the plugin reads, with
    the closest known key; raises where the key is a typo of one of the plugin's own keys (it
    would train with the default, silently)."""
    lines = []
    for key, close, plugin_key in config.unknown_keys(PLUGIN_KEYS_WITHOUT_DEFAULT):
        value = config.user_settings[key]
        if plugin_key:
            raise ConfigError(key, value, f"no such setting; did you mean {close!r}?")
        hint = f"; did you mean {close!r}?" if close else ""
        lines.append(f"{key}={value!r} is not a setting RecBole or recbole-croloss reads: ignored{hint}")
    return lines
