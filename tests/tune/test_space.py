"""The search-space file: parsed and checked once, every mistake a ConfigError naming its key;
then each searched value through the real run spec, before any trial."""
import os

import pytest
import yaml

optuna = pytest.importorskip("optuna")

from recbole_croloss.errors import ConfigError
from recbole_croloss.tune.__main__ import main
from recbole_croloss.tune.space import (Choice, IntRange, LogUniform, Uniform, load_space, parse_space)
from recbole_croloss.tune.study import check_space
from tests.doc_blocks import ROOT

EXAMPLE = os.path.join(ROOT, "benchmarks", "spaces", "ml-100k-croloss.yaml")


def space_of(**changes):
    source = {"model": "TwoTower", "fixed": {"loss": "croloss"}, "search": {"alpha": {"uniform": [0.5, 1.5]}}}
    source.update(changes)
    return source


def test_the_example_space_parses_into_its_four_distributions():
    space = load_space(EXAMPLE)
    assert (space.model, space.dataset) == ("TwoTower", "ml-100k")
    assert [type(p) for p in space.params] == [LogUniform, Uniform, Choice, IntRange]
    assert space.pruner.startup_trials == 5 and space.pruner.warmup_validations == 2
    assert space.sampler.startup_trials == 10 and space.sampler.seed is None
    points = space.check_points()  # each range's ends, each choice
    assert [p["learning_rate"] for p in points] == [0.0005, 0.05]
    assert [p["kernel"] for p in points] == ["sigmoid", "softplus"] and [p["neg_per_pos"] for p in points] == [2, 20]
    assert space.trial_settings(points[0], "Recall@100")["valid_metric"] == "Recall@100"


def test_the_example_space_passes_the_run_spec_unchanged():
    assert check_space(load_space(EXAMPLE), "Recall@100") is True


@pytest.mark.parametrize("changes, key, message", [
    ({"serach": {}}, "serach", "choose the space's keys from"),
    ({"model": None}, "model", "a model name"),
    ({"search": {}}, "search", "at least one setting"),
    ({"search": {"alpha": 1.2}}, "search.alpha", "one distribution"),
    ({"search": {"alpha": {"uniform": [0, 1], "choice": [1]}}}, "search.alpha", "one distribution"),
    ({"search": {"alpha": {"uniform": [1.5, 0.5]}}}, "search.alpha", "low < high"),
    ({"search": {"alpha": {"uniform": ["a", 1]}}}, "search.alpha", "two finite numbers"),
    ({"search": {"alpha": {"uniform": [0, 1], "step": 2}}}, "search.alpha", "uniform takes no step"),
    ({"search": {"learning_rate": {"loguniform": [0, 0.1]}}}, "search.learning_rate", "0 < low < high"),
    ({"search": {"neg_per_pos": {"int": [2.0, 20]}}}, "search.neg_per_pos", "two finite integers"),
    ({"search": {"neg_per_pos": {"int": [2, 20], "step": 4}}}, "search.neg_per_pos.step", "from 2 to 20"),
    ({"search": {"kernel": {"choice": []}}}, "search.kernel", "a non-empty list"),
    ({"search": {"kernel": {"choice": ["exp", "exp"]}}}, "search.kernel", "each value once"),
    ({"fixed": {"alpha": 1.0}}, "fixed.alpha", "set it in one place"),
    ({"fixed": {"valid_metric": "Recall@50"}}, "fixed.valid_metric", "--target sets valid_metric"),
    ({"pruner": {"patience": 3}}, "pruner", "a mapping of startup_trials, warmup_validations"),
    ({"pruner": {"startup_trials": -1}}, "pruner.startup_trials", "an integer >= 0"),
    ({"sampler": {"seed": 1.5}}, "sampler.seed", "an integer >= 0"),
])
def test_each_mistake_names_its_key(changes, key, message):
    with pytest.raises(ConfigError, match=message) as caught:
        parse_space(space_of(**changes))
    assert caught.value.key == key


def test_pruning_can_be_turned_off_and_defaults_hold():
    assert parse_space(space_of(pruner="none")).pruner is None
    space = parse_space(space_of())
    assert space.dataset == "ml-100k" and space.pruner.startup_trials == 5 and space.sampler.startup_trials == 10


def test_a_choice_of_lists_is_stored_as_text_and_given_back_as_lists():
    space = parse_space(space_of(search={"mlp_hidden_size": {"choice": [[], [64], [128, 64]]}}))
    (choice,) = space.params
    assert choice.stored == ["[]", "[64]", "[128, 64]"]
    study = optuna.create_study()
    trial = study.ask()
    assert space.suggest(trial)["mlp_hidden_size"] in ([], [64], [128, 64])
    assert space.decode({"mlp_hidden_size": "[128, 64]"}) == {"mlp_hidden_size": [128, 64]}


@pytest.mark.parametrize("changes, target, key", [
    ({"search": {"kernel": {"choice": ["sigmoid", "sigmod"]}}}, "Recall@10", "search.kernel"),
    ({}, "Recall@20", "--target"),
    ({"fixed": {"loss": "croloss", "alpah": 1.0}}, "Recall@10", "fixed.alpah"),
    ({"model": "TiMiRec", "fixed": {"train_stage": "pretrain_finetune"}}, "Recall@10", "fixed.train_stage"),
])
def test_the_run_spec_checks_every_searched_value_before_any_trial(synthetic, changes, target, key):
    source = space_of(**changes)
    source["dataset"] = "syn"
    source["fixed"] = {**source["fixed"], "data_path": synthetic["data_path"], "topk": [10, 100]}
    with pytest.raises(ConfigError) as caught:
        check_space(parse_space(source), target)
    assert caught.value.key == key


def test_the_command_names_the_file_and_exits_2(tmp_path, capsys):
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(space_of(search={"alpha": {"uniform": [2, 1]}})))
    assert main([str(path), "--target", "Recall@50", "--trials", "2", "--out", str(tmp_path / "out")]) == 2
    assert f"error: {path}: search.alpha=" in capsys.readouterr().err
    assert main([EXAMPLE, "--target", "Recall@50", "--trials", "0"]) == 2
    assert "--trials=0 is not valid" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
