"""The run spec: every rule checked once, the same way for the CLI, the launcher and the grid."""
import pytest

from recbole_croloss.settings.config import PluginConfig
from recbole_croloss.errors import ConfigError
from recbole_croloss.glue import get_model
from recbole_croloss.loss import Hinge, LossSettings, Sigmoid, Softplus
from recbole_croloss.quick_start import launch_run
from recbole_croloss.settings.spec import DatasetNotFoundError, RunSpec


def spec_of(model="TwoTower", dataset="ml-100k", **settings):
    model_class = get_model(model)
    return RunSpec.from_config(PluginConfig(model_class, dataset, config_dict=settings), model_class)


@pytest.mark.parametrize("loss, kernel, alpha, lambda_kernel", [
    ("croloss", Softplus(), 1.0, None),
    ("bpr", Softplus(), 0.0, None),
    ("triplet", Hinge(5.0), 0.0, None),
    ("croloss_lambda", Softplus(), 1.0, Sigmoid()),
])
def test_the_spec_holds_resolved_loss_settings(loss, kernel, alpha, lambda_kernel):
    settings = spec_of(loss=loss).training.loss_settings
    assert isinstance(settings, LossSettings) and settings.preset == loss
    assert (settings.kernel, settings.alpha, settings.lambda_kernel) == (kernel, alpha, lambda_kernel)
    assert settings.build(100).n_items == 100


@pytest.mark.parametrize("settings, batch, expected", [
    ({"loss": "croloss", "negatives": "uniform"}, 256, "at least |I|/M = 0.657 < 1"),  # M = 2560 > 1682
    ({"loss": "croloss"}, 256, None),      # the default draws: every item once instead (no floor)
    ({"loss": "croloss", "negatives": "uniform"}, 128, None),            # M = 1280 <= 1682
    ({"loss": "croloss", "rank_estimator": "unbiased"}, 256, None),
    ({"loss": "croloss", "negatives": "full"}, 256, None),
    ({"loss": "ce"}, 256, None),
])
def test_the_paper_estimator_floor_below_one_is_stated(settings, batch, expected):
    note = spec_of(**settings).training.rank_floor_note(1682, batch)
    assert (note is None) if expected is None else (expected in note)


@pytest.mark.parametrize("settings, engine", [({}, "eager"), ({"loss_engine": "fused"}, "fused"),
                                               ({"loss": "croloss_lambda", "loss_engine": "fused"}, "fused")])
def test_the_loss_engine_reaches_the_loss(settings, engine):
    training = spec_of(**settings).training
    assert training.loss_engine == engine
    assert training.loss_settings.build(100, engine=training.loss_engine).engine == engine


def test_ce_has_no_loss_settings():
    assert spec_of(loss="ce").training.loss_settings is None


@pytest.mark.parametrize("settings, fragment", [
    ({"ip": ""}, "ip='' is not valid; the address of rank 0's machine"),
    ({"ip": "  "}, "ip='  ' is not valid; the address of rank 0's machine"),
    ({"faiss_index": "flat", "nproc": 2}, "faiss_index='flat' is not valid; none in a distributed run"),
    ({"faiss_index": "flat", "world_size": 2, "nproc": 1, "offset": 1}, "none in a distributed run"),
    ({"protocol": "paper", "eval_engine": "recbole"}, "eval_engine='recbole' is not valid"),
    ({"gather_negatives": True, "negatives": "full"}, "gather_negatives=True is not valid"),
    ({"kernel": "sigmod"}, "kernel='sigmod' is not valid"),
    ({"alpha": -1}, "alpha=-1 is not valid"),
    ({"negatives": "popular"}, "negatives='popular' is not valid"),
    ({"loss_engine": "compiled"}, "loss_engine='compiled' is not valid; choose one of: eager, fused"),
    ({"loss": "ce", "loss_engine": "fused"}, "loss_engine='fused' is not valid; loss='ce'"),
])
def test_cross_key_rules_are_refused_by_the_spec(settings, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        spec_of(**settings)


def test_the_launcher_refuses_faiss_in_a_distributed_run_before_spawning(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="none in a distributed run"):
        launch_run("TwoTower", "ml-100k", cmd_args={"faiss_index": "flat", "nproc": "2"})
    assert not (tmp_path / "log").exists()  # nothing started


def test_a_missing_dataset_is_refused_by_the_spec(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="recbole-croloss never downloads data"):
        spec_of(dataset="shop", data_path=str(tmp_path))


@pytest.mark.parametrize("margin, expected", [(None, 5.0), (0.5, 0.5)])
def test_hinge_keeps_the_paper_s_margin_and_takes_the_official_code_s(margin, expected):
    """The paper's hinge is relu(g + 5); the official code's `hinge` is relu(g + 0.5)."""
    settings = {"loss": "croloss", "kernel": "hinge"} | ({} if margin is None else {"margin": margin})
    assert spec_of(**settings).training.loss_settings.kernel == Hinge(expected)
