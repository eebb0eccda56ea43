"""recbole-croloss: train RecBole sequential retrieval models with CROLoss (CIKM 2022).

``recbole_croloss.run`` and ``recbole_croloss.objective_function`` (RecBole's quick-start
contract, :mod:`.recbole_contract`), ``recbole_croloss.load`` (a run reloaded from its
checkpoint, :mod:`.loading`) and ``recbole_croloss.Recommender`` (:mod:`.recommender`) are
imported on first use, so importing the package loads neither torch nor RecBole.
"""
import importlib

__version__ = "0.1.0"

#: Names the package gives on first use -> the module that defines them.
_LAZY = {"run": "recbole_contract", "objective_function": "recbole_contract",
         "load": "serving.reload", "LoadedRun": "serving.reload", "Recommender": "serving.recommender"}

__all__ = ["__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
