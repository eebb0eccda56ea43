"""Windowed histories: every sample, field and value equal RecBole's materialised augmentation,
and a run trains to the same metrics, under both protocols."""
import numpy as np
import pytest
import torch
from recbole.data.dataset import SequentialDataset

from recbole_croloss.settings.config import PluginConfig
from recbole.data.interaction import Interaction

from recbole_croloss.data.windows import (WINDOW_START, WindowedSequentialDataset, sort_by_user_then_time,
                                         take_rows, window_bounds)
from recbole_croloss.glue import get_model
from recbole_croloss.quick_start import run


def reference_bounds(user_ids, max_length):
    """RecBole's loop, as it reads (sequential_dataset.py, data_augmentation)."""
    targets, starts, lengths, last, seq_start = [], [], [], None, 0
    for i, uid in enumerate(user_ids):
        if last != uid:
            last, seq_start = uid, i
        else:
            if i - seq_start > max_length:
                seq_start += 1
            targets.append(i), starts.append(seq_start), lengths.append(i - seq_start)
    return targets, starts, lengths


@pytest.mark.parametrize("max_length", [1, 3, 50])
def test_window_bounds_are_recbole_s_loop(max_length):
    user_ids = np.sort(np.random.default_rng(0).integers(0, 30, 400))
    assert [list(a) for a in window_bounds(user_ids, max_length)] == \
        [list(b) for b in reference_bounds(user_ids, max_length)]


def rows_of(n, seed=0):
    rng = np.random.default_rng(seed)
    return Interaction({"user_id": torch.from_numpy(rng.integers(0, 9, n)),
                        "timestamp": torch.from_numpy(rng.integers(0, 5, n).astype(np.float32)),
                        "item_id_list": torch.from_numpy(rng.integers(0, 99, (n, 3)))})


@pytest.mark.parametrize("index", [torch.tensor([4, 0, 4, 7]), np.array([3, 1]), torch.tensor([2], dtype=torch.int32)])
def test_take_rows_is_recbole_s_indexing(index):
    rows = rows_of(10)
    ours, theirs = take_rows(rows, index), rows[index]
    assert set(ours.interaction) == set(theirs.interaction) and len(ours) == len(theirs)
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs.interaction)


@pytest.mark.parametrize("presorted", [False, True])
def test_sort_by_user_then_time_is_recbole_s_sort(presorted):
    rows = rows_of(200, seed=1)  # many ties in (user, time): the file order breaks them
    if presorted:
        rows.sort(by=["user_id", "timestamp"])
    ours = sort_by_user_then_time(rows, "user_id", "timestamp")
    rows.sort(by=["user_id", "timestamp"])
    assert all(torch.equal(ours[k], rows[k]) for k in rows.interaction)


@pytest.mark.parametrize("max_length", [5, 20])
def test_every_sample_and_field_equals_recbole_s_augmentation(tiny, max_length):
    settings = {**tiny, "MAX_ITEM_LIST_LENGTH": max_length}
    config = PluginConfig(get_model("TwoTower"), "ml-100k", config_dict=settings)
    theirs, ours = SequentialDataset(config).build(), WindowedSequentialDataset(config).build()
    for split_theirs, split_ours in zip(theirs, ours):
        assert len(split_theirs) == len(split_ours)
        index = torch.randperm(len(split_theirs), generator=torch.Generator().manual_seed(0))
        a, b = split_theirs[index], split_ours[index]
        assert set(b.interaction) - set(a.interaction) == {WINDOW_START}
        for field in a.interaction:
            assert a[field].dtype == b[field].dtype and torch.equal(a[field], b[field]), field
    assert not any(k.endswith("_list") for k in ours[0].inter_feat.interaction)  # nothing stored


@pytest.mark.parametrize("model, settings", [
    ("TwoTower", {}), ("GRU4Rec", {"loss": "ce"}), ("SASRec", {"kernel": "sigmoid"}),
    ("TwoTower", {"protocol": "paper"}), ("TwoTower", {"train_sampling": "users", "max_steps": 30}),
])
def test_a_run_on_windows_gives_recbole_s_metrics(tiny, model, settings):
    windows = run(model, "ml-100k", config_dict={**tiny, **settings})
    materialised = run(model, "ml-100k", config_dict={**tiny, **settings, "history_windows": False})
    assert windows["test_result"] == materialised["test_result"]
    assert windows["history"][0]["train_loss"] == materialised["history"][0]["train_loss"]


def test_a_model_that_reads_stored_histories_keeps_recbole_s_dataset():
    from tests.test_spec import spec_of

    assert spec_of(model="FEARec", loss="ce").schedule.windows is False
    assert spec_of(model="GRU4Rec", loss="ce").schedule.windows is True
    assert spec_of(history_windows=False).schedule.windows is False


def test_history_windows_must_be_a_boolean():
    from recbole_croloss.errors import ConfigError
    from tests.test_spec import spec_of

    with pytest.raises(ConfigError, match="history_windows='yes' is not valid; true or false"):
        spec_of(history_windows="yes")
