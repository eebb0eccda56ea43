"""The ``Recommender``: moved to :mod:`recbole_croloss.serving.recommender`; this module re-exports
its names for one release."""
from .serving.recommender import (
    UNKNOWN_TOKENS, DEFAULT_BATCH, UnknownTokenError, UnknownTokensWarning, Query, Recommendation,
    Encoded, as_query, Recommender, where, SkippedTokens,
)

__all__ = ["UNKNOWN_TOKENS", "DEFAULT_BATCH", "UnknownTokenError", "UnknownTokensWarning", "Query",
           "Recommendation", "Encoded", "as_query", "Recommender", "where", "SkippedTokens"]
