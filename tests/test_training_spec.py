"""The loss and the negatives a run trains on: the new samplers' and presets' keys are read by
the components that use them and refused elsewhere, and each new sampler and preset trains end to
end from the CLI and from quick_start.run."""
import json
import os
import re

import pytest

from recbole_croloss.benchmark import load_grid
from recbole_croloss.settings.config import PluginConfig
from recbole_croloss.errors import ConfigError
from recbole_croloss.glue import get_model
from recbole_croloss.loss import BinaryLossSettings, GeneralisedBCE
from recbole_croloss.quick_start import main, prepare_run, train_and_test
from recbole_croloss.sampler import CrossBatchMemory, MixedNegatives, PopularityNegatives
from recbole_croloss.settings.training_spec import TrainingSpec
from tests.doc_blocks import page_section

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def training(**settings) -> TrainingSpec:
    return TrainingSpec.from_config(PluginConfig(get_model("TwoTower"), "ml-100k", config_dict=settings))


@pytest.mark.parametrize("settings, log_q", [
    ({"negatives": "popularity"}, True),
    ({"negatives": "in_batch", "logq_correction": False}, False),
    ({"negatives": "mixed", "loss": "gbce"}, False),  # gBCE's calibration reads no log q
    ({"negatives": "uniform"}, False),
])
def test_the_log_q_goes_to_the_loss_only_where_both_read_it(settings, log_q):
    assert training(**settings).negatives.log_q is log_q


def test_each_sampler_reads_its_own_settings_only():
    spec = training(negatives="mixed", neg_mix=0.2, neg_popularity_power=1.0, neg_per_pos=3, neg_memory=2)
    assert dict(spec.negatives.settings) == {"neg_per_pos": 3, "mask_accidental_hits": True,
                                             "neg_popularity_power": 1.0, "neg_mix": 0.2}
    assert spec.negatives.memory == 2
    assert dict(training(negatives="in_batch", in_batch_uniform=2).negatives.settings) == {"in_batch_uniform": 2}
    assert isinstance(training(loss="gbce", gbce_t=0.9).loss_settings, BinaryLossSettings)
    assert training(loss="gbce", gbce_t=0.9).loss_settings.t == 0.9
    assert training(loss="gbce").loss_settings.t == 0.75 and training(loss="bce").loss_settings.t == 0.0


@pytest.mark.parametrize("settings, fragment", [
    ({"loss": "bce", "loss_engine": "fused"}, "loss='bce'"),
    ({"negatives": "popularity", "loss_engine": "fused"}, "logq_correction weighs each by 1/q"),
])
def test_the_fused_engine_is_refused_where_it_cannot_compute_the_loss(settings, fragment):
    with pytest.raises(ConfigError, match=re.escape(fragment)) as caught:
        training(**settings)
    assert caught.value.key == "loss_engine"


def test_the_fused_engine_trains_popularity_negatives_without_log_q():
    spec = training(negatives="popularity", logq_correction=False, loss_engine="fused")
    assert spec.loss_engine == "fused" and not spec.negatives.log_q
    assert spec.loss_settings.build(100, engine=spec.loss_engine).engine == "fused"


def readme_command() -> list[str]:
    """The arguments of the command in the README's section on negatives."""
    section = page_section("docs/negatives.md", "Negatives, log q and the baselines")
    return re.search(r"^python run_recbole_croloss\.py (.*)$", section, flags=re.M).group(1).split()


def test_each_new_sampler_and_preset_trains_end_to_end(tiny, tmp_path, capsys):
    """in-batch negatives with the log-q sampled softmax (the README's command, on the tiny slice);
    popularity with bce, and mixed with gbce and a cross-batch memory (quick_start's prepare and
    train): each trains and is evaluated."""
    record_file = tmp_path / "cli.json"
    args = [f"--{k}={v}" for k, v in tiny.items()]
    assert readme_command() == ["--model=TwoTower", "--loss=sampled_softmax", "--negatives=in_batch",
                                "--in_batch_uniform=1"]
    assert main([*readme_command(), *args, f"--record={record_file}"]) == 0
    assert "loss=sampled_softmax" in capsys.readouterr().out
    records = [json.loads(record_file.read_text())]
    for settings, sampler, loss in [({"loss": "bce", "negatives": "popularity"}, PopularityNegatives, GeneralisedBCE),
                                    ({"loss": "gbce", "negatives": "mixed", "neg_memory": 1}, MixedNegatives,
                                     GeneralisedBCE)]:
        prepared = prepare_run("TwoTower", "ml-100k", config_dict={**tiny, **settings})
        inner = prepared.adapter.sampler
        inner = inner.sampler if isinstance(inner, CrossBatchMemory) else inner
        assert isinstance(inner, sampler) and isinstance(prepared.adapter.loss, loss)
        records.append(train_and_test(prepared, saved=False))
    assert [r["config"]["negatives"] for r in records] == ["in_batch", "popularity", "mixed"]
    for record in records:
        assert 0.0 < record["test_result"]["recall@500"] <= 1.0
        assert record["test_result"]["recall@50"] <= record["test_result"]["recall@500"]


def test_the_negatives_grid_parses_and_passes_the_run_checks():
    grid = load_grid(os.path.join(ROOT, "benchmarks", "grids", "negatives-ml-100k.yaml"))
    labels = [m.label for m in grid.methods]
    assert "croloss(negatives=in_batch)" in labels and "sampled_softmax(negatives=popularity, logq_correction=False)" \
        in labels and "gbce(negatives=uniform)" in labels and "croloss(negatives=in_batch, neg_memory=1)" in labels
    assert len(labels) == 8 + 2 + 2 + 1
