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


def check_int(key: str, value: object, low: int) -> int:
    """``value`` if it is an integer >= ``low`` (not a bool), else a :class:`ConfigError`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(key, value, f"{key} must be an integer >= {low}")
    return value


class DatasetFileError(ValueError):
    """A dataset file RecBole cannot read as it is; the message names the file and the line."""
