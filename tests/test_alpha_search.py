"""``alpha: auto``'s keys and schedule: the halving rungs and survivors as pure functions, the
keys parsed and checked before any data (each bad value named by its key), and the evaluation
settings the search adapts."""
import math

import pytest

from recbole_croloss.settings.alpha_search import Candidate, Rung, halving_rungs, survivors
from recbole_croloss.errors import ConfigError
from recbole_croloss.quick_start import configure

AUTO = {"alpha": "auto", "target_n": 100}


@pytest.mark.parametrize("n, eta, first, max_epochs, expected", [
    (7, 2, 2, 150, [(2, 7, 4), (4, 4, 2), (8, 2, 1)]),
    (4, 2, 1, 3, [(1, 4, 2), (2, 2, 1)]),
    (8, 3, 1, 150, [(1, 8, 3), (3, 3, 1)]),
    (4, 2, 4, 6, [(4, 4, 2), (6, 2, 1)]),       # the second rung's 8 epochs capped at 6: it keeps one
    (5, 2, 10, 10, [(10, 5, 1)]),               # the first rung at the budget: a full sweep
    (14, 2, 2, 150, [(2, 14, 7), (4, 7, 4), (8, 4, 2), (16, 2, 1)]),
    (1, 2, 2, 150, []),                         # one candidate: nothing to choose
])
def test_halving_rungs(n, eta, first, max_epochs, expected):
    assert [(r.budget, r.candidates, r.keep) for r in halving_rungs(n, eta, first, max_epochs)] == expected


@pytest.mark.parametrize("n", range(1, 21))
@pytest.mark.parametrize("eta, first, max_epochs", [(2, 1, 150), (3, 2, 150), (2, 2, 5), (4, 1, 1)])
def test_every_rung_keeps_one_eta_th_rounded_up_until_one_is_left(n, eta, first, max_epochs):
    rungs = halving_rungs(n, eta, first, max_epochs)
    alive = n
    for i, rung in enumerate(rungs):
        assert rung.candidates == alive and rung.budget <= max_epochs
        assert rung.budget == min(first * eta ** i, max_epochs)
        assert rung.keep == (1 if rung.budget == max_epochs else -(-alive // eta))
        alive = rung.keep
    assert alive == 1 and all(a.budget < b.budget for a, b in zip(rungs, rungs[1:]))


def test_halving_rungs_refuses_what_cannot_halve():
    with pytest.raises(ValueError):
        halving_rungs(4, 1, 2, 10)


@pytest.mark.parametrize("scores, keep, expected", [
    ([0.2, 0.5, 0.3, 0.1], 2, [1, 2]),
    ([0.3, 0.3, 0.3], 2, [0, 1]),                   # ties: the grid's order
    ([-math.inf, 0.1, -math.inf], 2, [1, 0]),       # a diverged candidate (-inf) goes last
    ([0.4], 1, [0]),
])
def test_survivors_are_the_best_scores(scores, keep, expected):
    assert survivors(scores, keep) == expected


def test_auto_parses_the_search_and_adapts_the_evaluation():
    config, spec = configure("TwoTower", "ml-100k", config_dict={**AUTO, "target_n": 70, "alpha_grid": [1.2, 0.6]},
                             cmd_args={"alpha_search_kernels": "[sigmoid,softplus]"})
    search = spec.alpha_search
    assert search.alphas == (0.6, 1.2) and search.kernels == ("sigmoid", "softplus")
    assert search.candidates == (Candidate(0.6, "sigmoid"), Candidate(1.2, "sigmoid"),
                                 Candidate(0.6, "softplus"), Candidate(1.2, "softplus"))
    assert (search.first_epochs, search.eta, search.metric) == (2, 2, "recall@70")
    assert config["topk"] == [50, 70, 100, 200, 500] and config["valid_metric"] == "Recall@70"
    assert spec.training.loss_settings.alpha == 0.6 and spec.training.loss_settings.kernel.name == "sigmoid"
    assert spec.for_candidate(config, search.candidates[3]).training.loss_settings.alpha == 1.2


def test_a_fixed_alpha_run_has_no_search():
    config, spec = configure("TwoTower", "ml-100k", config_dict={"alpha": 1.2})
    assert spec.alpha_search is None and config["valid_metric"] == "Recall@50"


@pytest.mark.parametrize("settings, key, words", [
    ({"alpha": "auto"}, "target_n", "needs the N"),
    ({**AUTO, "target_n": 0}, "target_n", "integer >= 1"),
    ({**AUTO, "target_n": 2.5}, "target_n", "integer >= 1"),
    ({**AUTO, "loss": "bpr"}, "alpha", "fixes alpha"),
    ({**AUTO, "loss": "gbce"}, "alpha", "has no alpha"),
    ({**AUTO, "loss": "sampled_softmax"}, "alpha", "croloss, croloss_lambda"),
    ({**AUTO, "loss": "ce"}, "alpha", "has no alpha"),
    ({"target_n": 100}, "target_n", "fixed alpha"),
    ({"alpha": 1.0, "alpha_grid": [0.8, 1.2]}, "alpha_grid", "fixed alpha"),
    ({**AUTO, "alpha_grid": [0.5]}, "alpha_grid", "at least two candidates"),
    ({**AUTO, "alpha_grid": []}, "alpha_grid", "a list of distinct alphas"),
    ({**AUTO, "alpha_grid": [0.5, -1]}, "alpha_grid", "-1 is not one"),
    ({**AUTO, "alpha_grid": [0.5, 0.5]}, "alpha_grid", "given twice"),
    ({**AUTO, "alpha_grid": [0.5, 200]}, "alpha_grid", "at most 126.9"),
    ({**AUTO, "alpha_search_kernels": ["sigmod", "exp"]}, "alpha_search_kernels", "'sigmod' is refused"),
    ({**AUTO, "alpha_search_kernels": ["step", "exp"]}, "alpha_search_kernels", "no gradient"),
    ({**AUTO, "alpha_search_kernels": []}, "alpha_search_kernels", "a list of distinct kernels"),
    ({**AUTO, "alpha_search_kernels": ["exp"], "kernel": "exp"}, "kernel", "unset kernel"),
    ({**AUTO, "alpha_search_epochs": 0}, "alpha_search_epochs", "integer >= 1"),
    ({**AUTO, "alpha_search_epochs": 3, "eval_step": 2}, "alpha_search_epochs", "multiple of eval_step"),
    ({**AUTO, "alpha_search_eta": 1}, "alpha_search_eta", "integer >= 2"),
    ({**AUTO, "valid_metric": "Recall@50"}, "valid_metric", "Recall@100 or unset"),
    ({**AUTO, "metrics": ["NDCG"], "valid_metric": "NDCG@100"}, "metrics", "with Recall"),
    ({**AUTO, "nproc": 2}, "alpha", "distributed"),
    ({**AUTO, "resume": "auto"}, "resume", "unset resume"),
])
def test_bad_search_settings_are_refused_before_any_data(settings, key, words):
    with pytest.raises(ConfigError) as err:
        configure("TwoTower", "ml-100k", config_dict=settings)
    assert err.value.key == key and words in str(err.value), str(err.value)


def test_a_staged_model_is_refused():
    with pytest.raises(ConfigError, match="trains in stages"):
        configure("TiMiRec", "ml-100k", config_dict=AUTO)


def test_candidate_labels_and_file_names():
    assert (Candidate(0.8).label, Candidate(0.8).slug) == ("alpha=0.8", "alpha0.8")
    assert (Candidate(1.0, "exp").label, Candidate(1.0, "exp").slug) == ("kernel=exp, alpha=1", "exp-alpha1")
    assert Candidate(1.0, "exp").options == {"alpha": 1.0, "kernel": "exp"} and Rung(2, 4, 2).keep == 2
