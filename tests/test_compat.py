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


@pytest.mark.parametrize("n, num_samples", [(1000, None), (70_000, None), (10, 25)])
def test_the_lazy_shuffle_yields_torch_s_indices(n, num_samples):
    """Two epochs from the same generator: the same indices in the same order as torch's."""
    theirs = torch.utils.data.RandomSampler(range(n), num_samples=num_samples,
                                            generator=torch.Generator().manual_seed(3))
    ours = compat.LazyRandomSampler(range(n), num_samples=num_samples, generator=torch.Generator().manual_seed(3))
    for _ in range(2):
        assert list(ours) == list(theirs)


def test_loaders_built_with_lean_indices_batch_as_recbole_s(tiny):
    """RecBole's training loader built inside ``lean_loader_indices``: indices as a range, the
    lazy shuffle, the same batches epoch after epoch; both names put back after."""
    from recbole.data.dataloader import abstract_dataloader
    from recbole.data.dataloader.general_dataloader import TrainDataLoader
    from recbole.data.dataset import SequentialDataset
    from torch.utils.data import dataloader

    from recbole_croloss.settings.config import PluginConfig
    from recbole_croloss.glue import get_model

    config = PluginConfig(get_model("TwoTower"), "ml-100k", config_dict=tiny)
    train = SequentialDataset(config).build()[0]
    theirs = TrainDataLoader(config, train, None, shuffle=True)
    with compat.lean_loader_indices():
        ours = TrainDataLoader(config, train, None, shuffle=True)
    assert "list" not in vars(abstract_dataloader) and dataloader.RandomSampler is torch.utils.data.RandomSampler
    assert isinstance(vars(ours)["dataset"], range) and isinstance(ours.sampler, compat.LazyRandomSampler)
    for _ in range(2):
        for a, b in zip(theirs, ours, strict=True):
            assert torch.equal(a["item_id"], b["item_id"]) and torch.equal(a["item_id_list"], b["item_id_list"])


@pytest.mark.parametrize("use_gpu, device", [(False, "cpu"), (True, "cuda")])
def test_use_gpu_false_means_the_cpu_even_where_a_gpu_exists(tiny, monkeypatch, use_gpu, device):
    from recbole_croloss.settings.config import PluginConfig

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # RecBole's only question
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # RecBole writes it; the test puts it back
    config = PluginConfig(model="GRU4Rec", dataset="ml-100k", config_dict={**tiny, "use_gpu": use_gpu, "gpu_id": "0"})
    assert config["device"].type == device and config["gpu_id"] == ("" if device == "cpu" else "0")
