"""List-valued keys on the command line: RecBole reads a value with ``eval``, so a list of names
written as ``--metrics=[Hit,NDCG]`` would stay one string; the plugin reads it as YAML's list."""
import pytest

from recbole_croloss.settings.config import PluginConfig
from recbole_croloss.errors import ConfigError
from recbole_croloss.glue import get_model
from recbole_croloss.quick_start import configure


def config_of(model="TwoTower", **cmd):
    return PluginConfig(get_model(model), "ml-100k", cmd_args=cmd)


@pytest.mark.parametrize("cmd, key, expected", [
    ({"metrics": "[Hit,NDCG]", "valid_metric": "NDCG@50"}, "metrics", ["Hit", "NDCG"]),
    ({"metrics": "[Hit, NDCG]", "valid_metric": "NDCG@50"}, "metrics", ["Hit", "NDCG"]),
    ({"metrics": "Hit,NDCG", "valid_metric": "NDCG@50"}, "metrics", ["Hit", "NDCG"]),
    ({"topk": "5,10", "valid_metric": "Recall@5"}, "topk", [5, 10]),
    ({"topk": "[5,10]", "valid_metric": "Recall@5"}, "topk", [5, 10]),
    ({"alpha_search_kernels": "[sigmoid,softplus]"}, "alpha_search_kernels", ["sigmoid", "softplus"]),
])
def test_a_list_key_reads_an_unquoted_list_of_names(cmd, key, expected):
    config = config_of(**cmd)
    assert config[key] == expected and config.user_settings[key] == expected


def test_the_unquoted_metrics_list_passes_the_spec():
    config, spec = configure("TwoTower", "ml-100k", cmd_args={"metrics": "[Hit,NDCG]", "topk": "[5,10]",
                                                              "valid_metric": "NDCG@5"})
    assert config["metrics"] == ["Hit", "NDCG"] and config["valid_metric"] == "NDCG@5"
    assert spec.evaluation.evaluator is not None


def test_a_list_that_cannot_be_read_names_the_key_and_the_quoting():
    with pytest.raises(ConfigError) as caught:
        config_of(metrics="[Hit,NDCG", valid_metric="NDCG@50")
    assert caught.value.key == "metrics"
    assert "--metrics=[a,b]" in str(caught.value) and "--metrics='[a, b]'" in str(caught.value)


def test_a_key_that_is_not_a_list_keeps_recbole_s_reading():
    # RecBole parses an interval such as [10,inf) itself: it must stay a string
    config = config_of(user_inter_num_interval="[10,inf)", metrics="Hit", valid_metric="Hit@50")
    assert config["user_inter_num_interval"] == "[10,inf)" and config["metrics"] == ["Hit"]
