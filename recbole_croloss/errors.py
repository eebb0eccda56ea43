"""One error type for bad settings, so every message names the key, the value and the choices."""
from __future__ import annotations

from typing import Iterable


class ConfigError(ValueError):
    """A setting has a value the project cannot use.

    The message always names the key, the value given and what is allowed, e.g.
    ``kernel='sigmod' is not valid; choose one of: exp, hinge, sigmoid, softplus, step``.
    """

    def __init__(self, key: str, value: object, allowed: str | Iterable[str]):
        if not isinstance(allowed, str):
            allowed = "choose one of: " + ", ".join(sorted(str(a) for a in allowed))
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"{key}={value!r} is not valid; {allowed}")


def check_int(key: str, value: object, low: int, high: int | None = None) -> int:
    """``value`` if it is an integer >= ``low`` (and <= ``high``, when given; not a bool),
    else a :class:`ConfigError`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low or \
            (high is not None and value > high):
        bound = f">= {low}" if high is None else f"from {low} to {high}"
        raise ConfigError(key, value, f"{key} must be an integer {bound}")
    return value


def check_bool(key: str, value: object) -> bool:
    """``value`` if it is true or false; RecBole reads any other value as its truth value
    (``"abc"`` is true), so a typo would flip the setting silently."""
    if isinstance(value, bool):
        return value
    raise ConfigError(key, value, "choose one of: true, false")


class TrainingDiverged(RuntimeError):
    """The training loss of a batch is not finite, or is finite but more than 1e6 times the
    smallest batch loss of the run (in magnitude, counted as at least 1): the run stops, its best
    checkpoint kept. ``detail`` says which, and why.

    ``epoch``, ``batch`` and ``step`` count from 0, as RecBole's log counts epochs; ``step`` is
    the global batch count, ``epoch * batches + batch``.
    """

    def __init__(self, epoch: int, batch: int, batches: int, step: int, loss: float,
                 learning_rate: float, detail: str = ""):
        self.epoch, self.batch, self.step, self.loss = epoch, batch, step, loss
        # The loss's own overflow check names its cause; otherwise the usual two.
        advice = f"{detail} A smaller learning_rate also keeps the scores in range." if detail else (
            "The learning rate is likely too high or the scores overflow: use a smaller "
            "learning_rate, score=cosine, or a bounded kernel (kernel=sigmoid).")
        super().__init__(
            f"training diverged at epoch {epoch}, batch {batch} of {batches} (global step {step}; "
            f"counted from 0): the loss is {loss} (learning_rate={learning_rate}). {advice}")


class DatasetFileError(ValueError):
    """A dataset file RecBole cannot read as it is; the message names the file and the line."""
