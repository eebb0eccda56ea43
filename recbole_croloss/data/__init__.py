"""Data the plugin makes itself: synthetic catalogues of vectors for scale tests and benchmarks."""
from .catalogue import Catalogue, synthetic_catalogue

__all__ = ["Catalogue", "synthetic_catalogue"]
