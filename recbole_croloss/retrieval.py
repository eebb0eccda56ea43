"""The faiss index of a model's item vectors: moved to :mod:`recbole_croloss.faiss_index`; this
module re-exports its names for one release."""
from .faiss_index import (
    GPU_MAX_K, FORMAT_VERSION, DEVICES, faiss_gpus, SearchResult, ItemIndex, merge_interests,
    ann_recall,
)

__all__ = ["GPU_MAX_K", "FORMAT_VERSION", "DEVICES", "faiss_gpus", "SearchResult", "ItemIndex",
           "merge_interests", "ann_recall"]
