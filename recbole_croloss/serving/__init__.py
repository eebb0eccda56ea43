"""Serving a trained model: a run reloaded from its checkpoint (:mod:`.reload`), the
``Recommender`` for sequences of item tokens (:mod:`.recommender`) and its command line
(:mod:`.cli`, ``python -m recbole_croloss.recommend``). The faiss index itself is at the bottom
(:mod:`recbole_croloss.faiss_index`); a run's check of its exported index is part of the run flow
(:mod:`recbole_croloss.flow.faiss_check`, re-exported here for one release)."""
from ..flow.faiss_check import faiss_test_results, faiss_test_results_or_error, serving_text

__all__ = ["faiss_test_results", "faiss_test_results_or_error", "serving_text"]
