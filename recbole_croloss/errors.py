"""One error type for bad settings, so every message names the key, the value and the choices;
and one mapping from the errors a command line reports to its exit status
(:func:`reporting_errors`)."""
from __future__ import annotations

import sys
from typing import Callable, Iterable

#: Exit statuses: bad input (settings, files, queries), a run that failed, a store in use.
BAD_INPUT, FAILED, BUSY = 2, 1, 3


def reporting_errors(body: Callable[[], int], bad_input: tuple[type, ...] = ()) -> int:
    """Run a command line's ``body`` and return its exit status. An error that carries an
    ``exit_status`` (class attribute), or one of ``bad_input`` (status 2), is printed as one
    ``error: ...`` line (with the class's ``exit_prefix``) on stderr and becomes the status;
    any other error is a bug and propagates with its traceback."""
    try:
        return body()
    except Exception as err:  # noqa: BLE001 - re-raised unless it is one a user can act on
        status = getattr(err, "exit_status", None) or (BAD_INPUT if isinstance(err, bad_input) else None)
        if status is None:
            raise
        print(f"error: {getattr(err, 'exit_prefix', '')}{err}", file=sys.stderr)
        return status


class ConfigError(ValueError):
    """A setting has a value the project cannot use.

    The message always names the key, the value given and what is allowed, e.g.
    ``kernel='sigmod' is not valid; choose one of: exp, hinge, sigmoid, softplus, step``.
    """

    exit_status = BAD_INPUT

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

    exit_status = FAILED  # the best checkpoint so far stays; no record is written

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

    exit_status = BAD_INPUT
