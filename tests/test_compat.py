"""The RecBole 1.2.1 fixes of recbole_croloss.compat, each checked on the real thing."""
import sys

import numpy as np
import pytest
import torch

from recbole_croloss import compat


def test_importing_sequential_models_leaves_anomaly_detection_off():
    torch.autograd.set_detect_anomaly(False)
    compat.import_sequential_models()
    assert not torch.is_anomaly_enabled()


def test_numpy_aliases_recbole_uses_exist_and_mean_what_they_did():
    compat.restore_numpy_aliases()
    assert np.zeros(2, dtype=np.float).dtype == np.float64
    assert np.full(2, True, dtype=np.bool).dtype == np.bool_


def test_recbole_metrics_run_on_this_numpy():
    from recbole.evaluator.metrics import NDCG

    compat.restore_numpy_aliases()
    metric = NDCG({"metric_decimal_place": 4, "topk": [2]})
    result = metric.metric_info(np.array([[True, False], [False, False]]), np.array([1, 1]))
    assert result[:, 1].tolist() == [1.0, 0.0]


def test_pandas_3_is_refused_with_the_reason(monkeypatch):
    import pandas

    monkeypatch.setattr(pandas, "__version__", "3.0.0")
    with pytest.raises(RuntimeError, match="pandas < 3"):
        compat.check_versions()


def test_ray_is_never_imported():
    import recbole_croloss.quick_start  # noqa: F401

    assert "ray" not in sys.modules
