"""A run reloaded from its checkpoint: moved to :mod:`recbole_croloss.serving.reload`; this module
re-exports its names for one release."""
from .serving.reload import (
    SEARCHED_CONFIG, NOT_RELOADED, LoadedRun, RUN_KEYS, read_checkpoint, reload_settings,
    searched_settings, rebuilt_differences, load, trainer_for,
)

__all__ = ["SEARCHED_CONFIG", "NOT_RELOADED", "LoadedRun", "RUN_KEYS", "read_checkpoint",
           "reload_settings", "searched_settings", "rebuilt_differences", "load", "trainer_for"]
