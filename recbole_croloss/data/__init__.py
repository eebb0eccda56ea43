"""Data the plugin makes or brings in: the ComiRec/CSV importer, the paper's protocol, synthetic
sequential datasets and synthetic catalogues of vectors.

Imported lazily, so that ``python -m recbole_croloss.data.importer`` does not load torch.
"""
from importlib import import_module

#: Public names -> the submodule that defines them.
_EXPORTS = {"Catalogue": "catalogue", "synthetic_catalogue": "catalogue"}

__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
