"""Model lookup: the plugin's own models first, then RecBole's.

Each plugin model is a class ``Name`` in ``recbole_croloss/model/name.py`` with its defaults in
``recbole_croloss/properties/model/Name.yaml``, as RecBole lays out its own models.
"""
from __future__ import annotations

import importlib
import os

from ..compat import import_sequential_models

#: Plugin models, by class name -> module.
PLUGIN_MODELS: dict[str, str] = {"TwoTower": "twotower", "ComiRec": "comirec", "MIND": "mind"}

#: RecBole model packages searched after the plugin (never ``exlib_recommender``: it imports
#: lightgbm/xgboost and is what turns RecBole's own unknown-name error into an ImportError).
_RECBOLE_PACKAGES = ("general_recommender", "context_aware_recommender", "knowledge_aware_recommender")

PROPERTIES_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "properties")


def recbole_sequential_models() -> list[str]:
    module = import_sequential_models()
    return sorted(n for n in dir(module) if n[:1].isupper())


def get_model(name: str):
    """The model class called ``name``: the plugin's, else RecBole's; a clear error otherwise."""
    if name in PLUGIN_MODELS:
        return getattr(importlib.import_module(f"{__name__}.{PLUGIN_MODELS[name]}"), name)
    sequential = import_sequential_models()
    if isinstance(name, str) and name[:1].isupper() and hasattr(sequential, name):
        return getattr(sequential, name)
    for package in _RECBOLE_PACKAGES:
        module = importlib.import_module(f"recbole.model.{package}")
        if isinstance(name, str) and name[:1].isupper() and hasattr(module, name):
            return getattr(module, name)
    from ..errors import ConfigError

    raise ConfigError("model", name, "choose a sequential model: "
                      + ", ".join(sorted(PLUGIN_MODELS) + recbole_sequential_models()))


def model_properties(name: str) -> str | None:
    """The plugin's default YAML for model ``name``, if it has one."""
    path = os.path.join(PROPERTIES_DIR, "model", f"{name}.yaml")
    return path if os.path.isfile(path) else None
