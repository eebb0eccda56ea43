"""recbole-croloss: train RecBole sequential retrieval models with CROLoss (CIKM 2022)."""
__version__ = "0.1.0"
