"""The shared negatives against the machine and against the catalogue: a number of negatives whose
training step cannot fit in memory is refused before any data is loaded, with the largest value
that could fit; the default uniform negatives, where they would be as many as the catalogue's
items, become every item once (the exact rank), said in one sentence of the log."""
import os
import re

import pytest

from recbole_croloss.settings.config import PluginConfig
from recbole_croloss.errors import ConfigError
from recbole_croloss.glue import get_model
from recbole_croloss.quick_start import main, prepare_run
from recbole_croloss.flow.run_log import log_file
from recbole_croloss.sampler import FullNegatives, UniformNegatives
from recbole_croloss.settings.training_spec import TrainingSpec


def training(**settings) -> TrainingSpec:
    return TrainingSpec.from_config(PluginConfig(get_model("GRU4Rec"), "ml-100k", config_dict=settings))


def test_a_neg_per_pos_whose_step_cannot_fit_is_refused_before_data_with_the_largest_that_could(
        tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["--model=GRU4Rec", "--neg_per_pos=100000000"]) == 2
    err = capsys.readouterr().err
    found = re.search(r"neg_per_pos=100000000 is not valid; at most ([\d,]+) could fit: M = neg_per_pos x "
                      r"train_batch_size = 25,600,000,000 shared negatives need at least [\d,.]+ GiB a step", err)
    assert found and "GiB of this machine's memory" in err, err
    assert not os.path.exists("log")  # refused before RecBole's logger, and the data
    fits = int(found.group(1).replace(",", ""))
    assert training(neg_per_pos=fits).negatives.setting("neg_per_pos") == fits
    with pytest.raises(ConfigError, match=f"at most {fits:,} could fit"):
        training(neg_per_pos=fits + 1)


@pytest.mark.parametrize("settings, key, fragment", [
    ({"neg_per_pos": 10 ** 6, "neg_memory": 3}, "neg_per_pos", "neg_per_pos x train_batch_size x (1 + neg_memory)"),
    ({"negatives": "in_batch", "in_batch_uniform": 10 ** 8}, "in_batch_uniform", "(1 + in_batch_uniform) x train_batch_size"),
    ({"negatives": "popularity", "neg_per_pos": 10 ** 8}, "neg_per_pos", "neg_per_pos x train_batch_size"),
    ({"train_batch_size": 10 ** 7}, "train_batch_size", "even neg_per_pos=1 does not fit"),
])
def test_every_sampler_that_shares_drawn_negatives_is_checked(settings, key, fragment):
    with pytest.raises(ConfigError) as caught:
        training(**settings)
    assert caught.value.key == key and fragment in str(caught.value)


@pytest.mark.parametrize("n_items, name", [(2562, "full"), (2563, "uniform")])
def test_the_default_draws_give_way_to_every_item_once_from_as_many_as_the_other_items(n_items, name):
    """M = 10 x 256 = 2560 draws against |I| - 1 other items of a positive, |I| = n_items - 1."""
    negatives = training().negatives
    assert negatives.for_catalogue(n_items).name == name
    assert (negatives.covering_note(n_items) is None) == (name == "uniform")


@pytest.mark.parametrize("settings", [
    {"negatives": "uniform"},                 # the user's choice is kept
    {"loss": "bce"}, {"loss": "gbce"},        # no rank estimate to make exact
    {"neg_memory": 1}, {"gather_negatives": True}, {"mask_accidental_hits": False},
    {"sparse_item_updates": True},            # what full negatives refuse
])
def test_negatives_the_user_shaped_are_kept(settings):
    negatives = training(**settings).negatives
    assert negatives.for_catalogue(100).name == "uniform" and negatives.covering_note(100) is None


@pytest.mark.parametrize("how", ["default", "config_dict", "command line"])
def test_a_run_on_the_small_catalogue_trains_on_every_item_unless_told_otherwise(tiny, how):
    """ml-100k's slice has 980 items and the default 2,560 draws per batch: every item once, said
    in the log; negatives=uniform (set in any way) keeps the draws and the note on the estimate."""
    settings = {**tiny, "state": "INFO"}
    given = {"config_dict": {"config_dict": {**settings, "negatives": "uniform"}},
             "command line": {"config_dict": settings, "cmd_args": {"negatives": "uniform"}}}.get(how)
    prepared = prepare_run("GRU4Rec", "ml-100k", **(given or {"config_dict": settings}))
    with open(log_file(), encoding="utf-8") as fh:
        log = fh.read()
    sampler, n_items = prepared.adapter.sampler, prepared.adapter.model.n_items
    sentence = ("neg_per_pos x train_batch_size = 10 x 256 = 2,560 negatives per batch exceed the catalogue's "
                "980 items: every item is used once instead (negatives: full, the exact rank)")
    if how == "default":
        assert isinstance(sampler, FullNegatives) and n_items == 981 and prepared.adapter.loss.n_items == 981
        assert sentence in log and "the paper's rank estimate is at least" not in log
    else:
        assert isinstance(sampler, UniformNegatives) and prepared.adapter.loss.n_items == 980
        assert sentence not in log and "M = 2560 shared negatives over 980 items" in log


@pytest.mark.parametrize("negatives, per_pos, n_items, said", [
    ("popularity", 1000, 1683, "256,000 negatives a batch are drawn for 1,682 items, each item about 152 times; "
                               "neg_per_pos=6 draws about as many"),
    ("uniform", 100, 1683, "25,600 negatives a batch"),
    ("uniform", 10, 1683, None),          # 2,560: within ten times the items
    ("popularity", 10, 50001, None),
])
def test_negatives_drawn_many_times_over_the_catalogue_are_said(negatives, per_pos, n_items, said):
    note = training(negatives=negatives, neg_per_pos=per_pos).negatives.oversampling_note(n_items)
    assert (note is None) if said is None else (said in note)
