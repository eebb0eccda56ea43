"""recbole-croloss: train RecBole sequential retrieval models with CROLoss (CIKM 2022).

``recbole_croloss.run`` and ``recbole_croloss.objective_function`` are RecBole's quick-start
contract (:mod:`recbole_croloss.recbole_contract`); they are imported when first used, so that
importing the package loads neither torch nor RecBole.
"""
import importlib

__version__ = "0.1.0"

#: Names the package offers, and the module each is imported from when first used.
_LAZY = {"run": "recbole_contract", "objective_function": "recbole_contract"}

__all__ = ["__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
