"""protocol: sampled without topk, metrics or valid_metric takes ReChorus's evaluation settings
(the plugin's full-ranking cut-offs, 50 to 500, cannot rank among 1 + 99 candidates)."""
import os

import pytest

from recbole_croloss.errors import ConfigError
from recbole_croloss.quick_start import main
from tests.test_spec import spec_of
from tests.test_config_lists import config_of


@pytest.mark.parametrize("given, expected", [
    ({}, {"topk": [5, 10, 20, 50], "metrics": ["Hit", "NDCG"], "valid_metric": "NDCG@5"}),
    ({"topk": [10, 20]}, {"topk": [10, 20], "metrics": ["Hit", "NDCG"], "valid_metric": "NDCG@10"}),
    ({"metrics": ["Hit", "MRR"]}, {"topk": [5, 10, 20, 50], "metrics": ["Hit", "MRR"], "valid_metric": "Hit@5"}),
    ({"valid_metric": "MRR@10"}, {"topk": [5, 10, 20, 50], "metrics": ["Hit", "NDCG", "MRR"], "valid_metric": "MRR@10"}),
    ({"valid_metric": "Hit@30"}, {"topk": [5, 10, 20, 30, 50], "metrics": ["Hit", "NDCG"], "valid_metric": "Hit@30"}),
    ({"topk": [10], "metrics": ["NDCG"], "valid_metric": "NDCG@10"},
     {"topk": [10], "metrics": ["NDCG"], "valid_metric": "NDCG@10"}),
])
def test_a_sampled_run_fills_what_the_user_left_unset(given, expected):
    spec = spec_of(protocol="sampled", **given)
    assert spec.protocol.name == "sampled"
    values = config_of(protocol="sampled", **{k: str(v) for k, v in given.items()})
    assert {k: values[k] for k in expected} == expected
    assert values["valid_metric_bigger"] is True
    assert values.protocol_defaults == {k: v for k, v in expected.items() if k not in given}


def test_full_ranking_keeps_the_plugin_s_defaults():
    values = config_of()
    assert values["topk"] == [50, 100, 200, 500] and values.protocol_defaults == {}


@pytest.mark.parametrize("given, key", [({"topk": [5, 200]}, "topk"), ({"valid_metric": "NDCG@200"}, "valid_metric")])
def test_a_cut_off_beyond_the_candidates_is_still_refused(given, key):
    with pytest.raises(ConfigError, match="at most 1 \\+ sampled_negatives = 100") as caught:
        spec_of(protocol="sampled", **given)
    assert caught.value.key == key


def test_a_sampled_run_says_its_defaults_and_never_calls_itself_full_ranking(tiny, capsys):
    args = [f"--{k}={v}" for k, v in {**tiny, "state": "INFO", "protocol": "sampled"}.items()]
    assert main(["--model=TwoTower", *args]) == 0
    out = capsys.readouterr().out
    result = [line for line in out.splitlines() if line.startswith("TwoTower on ml-100k")]
    assert len(result) == 1 and "full ranking" not in result[0], result
    assert "the positive among 99 negatives" in result[0]
    table = out.split(result[0])[1].splitlines()[1:4]
    assert table[0].split() == ["metric", "@5", "@10", "@20", "@50"]
    assert [row.split()[0] for row in table[1:]] == ["ndcg", "hit"]
    logs = [os.path.join(root, n) for root, _, names in os.walk("log") for n in names if n.endswith(".log")]
    text = open(logs[0], encoding="utf-8").read()
    lines = [line for line in text.splitlines() if "ReChorus's evaluation settings" in line]
    assert len(lines) == 1 and "topk=[5, 10, 20, 50]" in lines[0] and "valid_metric=NDCG@5" in lines[0]
