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


def test_recbole_s_exhaustive_search_draws_from_a_generator_after_the_fix():
    """RecBole's exhaustive search on the installed hyperopt: the fix is what lets it sample."""
    pytest.importorskip("hyperopt")
    from functools import partial

    from hyperopt import Trials, fmin, hp
    from recbole.trainer import hyper_tuning

    compat.fix_exhaustive_search()
    assert isinstance(hyper_tuning.np.random.RandomState(0), np.random.Generator) == \
        compat.hyperopt_draws_with_generators()
    assert hyper_tuning.np.prod([2, 3]) == 6  # the rest of numpy, unchanged
    seen = []
    fmin(lambda params: seen.append(params["x"]) or 0.0, {"x": hp.choice("x", [1, 2, 3])},
         algo=partial(hyper_tuning.exhaustive_search, nbMaxSucessiveFailures=1000), max_evals=3,
         trials=Trials(), show_progressbar=False)
    assert sorted(seen) == [1, 2, 3]
