"""Checks of RecBole's own settings and of the keys a user gave, made by the run spec before any
data is loaded (RecBole reads them late, and a bad value surfaces as a traceback mid-run).

Each check raises :class:`~recbole_croloss.errors.ConfigError` naming the key, the value and
what is allowed; :func:`unknown_key_warnings` returns the lines to log for keys nobody reads.
"""
from __future__ import annotations

import math
import os
import tempfile

from .errors import ConfigError, check_int
from .loss import LOSS_OPTIONS

#: RecBole settings that must be integers >= their bound.
INTEGER_SETTINGS = {"epochs": 1, "train_batch_size": 1, "eval_batch_size": 1, "MAX_ITEM_LIST_LENGTH": 1,
                    "stopping_step": 1, "eval_step": 1, "seed": 0}

#: Keys the plugin reads that have no default line in ``properties/overall.yaml``.
PLUGIN_KEYS_WITHOUT_DEFAULT = (*LOSS_OPTIONS, "interest_extractor", "num_interest", "routing_iterations")


def check_recbole_settings(config) -> None:
    """The RecBole settings a run relies on, before RecBole reads them."""
    for key, low in INTEGER_SETTINGS.items():
        check_int(key, config[key], low)
    rate = config["learning_rate"]
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not (rate > 0 and math.isfinite(rate)):
        raise ConfigError("learning_rate", rate, "a finite number > 0, e.g. 0.001")
    check_writable_dir("checkpoint_dir", config["checkpoint_dir"])
    check_valid_metric(config)


def check_valid_metric(config) -> None:
    """``valid_metric`` (``Recall@50``) must name one of ``metrics`` at one of ``topk``: RecBole
    looks it up in the validation result only after the first epoch."""
    value = config["valid_metric"]
    metric, at, k = str(value).partition("@")
    metrics = config["metrics"] if isinstance(config["metrics"], list) else [config["metrics"]]
    topk = config["topk"] if isinstance(config["topk"], list) else [config["topk"]]
    if not at or not k.isdigit():
        raise ConfigError("valid_metric", value, "a metric at a cut-off, e.g. Recall@50")
    if metric.lower() not in {str(m).lower() for m in metrics}:
        raise ConfigError("valid_metric", value, f"its metric must be one of metrics={metrics}")
    if int(k) not in topk:
        raise ConfigError("valid_metric", value, f"its cut-off must be one of topk={topk}")


def check_writable_dir(key: str, path) -> None:
    """``path`` is, or can be made, a folder this process can write in (tried for real: a
    temporary folder is made in it, or in its nearest existing parent, and removed)."""
    if not isinstance(path, str) or not path:
        raise ConfigError(key, path, "a directory path")
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise ConfigError(key, path, f"{probe} is a file, not a directory")
    try:
        os.rmdir(tempfile.mkdtemp(dir=probe, prefix=".croloss-probe-"))
    except OSError as err:
        raise ConfigError(key, path, f"a folder that can be written ({probe}: {err.strerror})") from None


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
