"""The plugin's own models, each a class ``Name`` in ``recbole_croloss/model/name.py`` with its
defaults in ``recbole_croloss/properties/model/Name.yaml``, as RecBole lays out its own models.

Only the models live here (they import RecBole's model base, never its trainer, config or data);
finding a model by name, the plugin's or RecBole's, is :func:`recbole_croloss.glue.get_model`.
"""
from __future__ import annotations

from .abstract import PluginSequentialModel
from .comirec import ComiRec
from .mind import MIND
from .timirec import TiMiRec
from .twotower import TwoTower

#: The plugin's models by class name; :func:`register_model` adds a user's own.
PLUGIN_MODELS: dict[str, type[PluginSequentialModel]] = {m.__name__: m for m in (TwoTower, ComiRec, MIND, TiMiRec)}


def register_model(cls: type[PluginSequentialModel]) -> type[PluginSequentialModel]:
    """Make a :class:`PluginSequentialModel` subclass nameable by ``--model`` (usable as a class
    decorator). Its name must be new."""
    if not (isinstance(cls, type) and issubclass(cls, PluginSequentialModel)):
        raise TypeError(f"register_model takes a PluginSequentialModel subclass; got {cls!r}")
    if PLUGIN_MODELS.get(cls.__name__, cls) is not cls:
        raise ValueError(f"a model named {cls.__name__!r} is already registered")
    PLUGIN_MODELS[cls.__name__] = cls
    return cls


__all__ = ["PluginSequentialModel", "TwoTower", "ComiRec", "MIND", "TiMiRec", "PLUGIN_MODELS", "register_model"]
