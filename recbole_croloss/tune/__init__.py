"""Hyper-parameter search with Optuna: ``python -m recbole_croloss.tune SPACE.yaml --target
Recall@100 --trials N``. The space file (:mod:`.space`) and the study (:mod:`.study`: TPE,
median pruning on validation curves, shared RDB storage, resuming, the best trial as YAML).

Optuna is imported only when a study runs (``pip install 'recbole-croloss[tune]'``).
"""
