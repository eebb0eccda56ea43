"""The lean ``.inter`` loader gives exactly the dataset RecBole's own loader gives: the frames
after filtering and remapping, ``field2id_token``, ``field2token_id`` and the counts, on ml-100k
and on string tokens that are not integers (with RecBole's filters, a ``.user``/``.item`` file,
a shared id space and a file the fast reader cannot parse); a run trains to the same metrics."""
import logging

import numpy as np
import pandas as pd
import pytest
from recbole.data.dataset import SequentialDataset

from recbole_croloss.settings.config import PluginConfig
from recbole_croloss.data.lean_inter import LEAN_CLASSES, LeanSequentialDataset, factorize_pieces
from recbole_croloss.data.line_order import LineOrderDataset, LineOrderMaterialisedDataset
from recbole_croloss.data.windows import WindowedSequentialDataset
from recbole_croloss.glue import get_model
from recbole_croloss.quick_start import run

#: Tokens pandas and pyarrow could read differently: leading zeros, float-looking, spaces,
#: non-ASCII, quoted with a tab inside, RecBole's own padding token, and null markers
#: (``NULL``, ``None``: read as missing, so those rows are dropped).
USERS = ["u01", "u1", "01", "1", "1.0", " x", "x ", "é", '"q\tz"', "[PAD]", "NULL", "None"]
ITEMS = ["a", "b", "01", "1", "i 2", "日本", "NA_x", "[PAD]"]
SCORES = ["1.5", "2", "", "nan", "1e-3", "0.1", "3.000000000000001", "inf", "-0"]


@pytest.fixture(scope="module")
def odd_path(tmp_path_factory):
    """``odd``: 3,000 interactions with skewed (Zipf-like) users and items, so that RecBole's
    k-core filter drops rows over several rounds; with a ``.user`` (a ``token_seq``) and an
    ``.item`` file."""
    root = tmp_path_factory.mktemp("data")
    folder = root / "odd"
    folder.mkdir()
    rng = np.random.default_rng(0)
    users = USERS + [f"user{i}" for i in range(60)]
    items = ITEMS + [f"it{i:03d}" for i in range(120)]

    def skewed(values, n):
        weights = 1.0 / np.arange(1, len(values) + 1)
        return [values[i] for i in rng.choice(len(values), n, p=weights / weights.sum())]

    n = 3000
    rows = zip(skewed(users, n), skewed(items, n), np.cumsum(rng.integers(0, 3, n)),
               rng.choice(["c1", "c2", "", "N/A", "c3"], n), rng.choice(SCORES, n))
    lines = ["user_id:token\titem_id:token\ttimestamp:float\tcat:token\tscore:float"]
    lines += ["\t".join(map(str, row)) for row in rows]
    (folder / "odd.inter").write_text("\n".join(lines) + "\n", encoding="utf-8")
    user_lines = ["user_id:token\tage:float\ttags:token_seq"]
    user_lines += [f"{u}\t{rng.integers(10, 60)}\t{' '.join(rng.choice(['t1', 't2', '01', '1'], 2))}"
                   for u in users[::2] + ["newuser"]]
    (folder / "odd.user").write_text("\n".join(user_lines) + "\n", encoding="utf-8")
    item_lines = ["item_id:token\tbrand:token"] + [f"{i}\t{rng.choice(['b1', '01', '1'])}"
                                                    for i in items[::3] + ["newitem"]]
    (folder / "odd.item").write_text("\n".join(item_lines) + "\n", encoding="utf-8")
    return root


def config_of(dataset, **settings):
    return PluginConfig(get_model("TwoTower"), dataset, config_dict={"state": "WARNING", **settings})


def assert_same_dataset(theirs, ours):
    for name in ("inter_feat", "user_feat", "item_feat"):
        if getattr(theirs, name) is None:
            assert getattr(ours, name) is None
        else:
            pd.testing.assert_frame_equal(getattr(theirs, name), getattr(ours, name))
    assert theirs.field2id_token.keys() == ours.field2id_token.keys()
    for field, tokens in theirs.field2id_token.items():
        assert tokens.dtype == ours.field2id_token[field].dtype and (tokens == ours.field2id_token[field]).all()
        assert theirs.field2token_id[field] == ours.field2token_id[field]
    for table in ("field2type", "field2source", "field2seqlen", "field2bucketnum"):
        assert getattr(theirs, table) == getattr(ours, table), table
    assert (theirs.user_num, theirs.item_num, theirs.inter_num) == (ours.user_num, ours.item_num, ours.inter_num)
    tokens = theirs.field2id_token[theirs.iid_field][1:4]
    assert (theirs.token2id(theirs.iid_field, tokens) == ours.token2id(ours.iid_field, tokens)).all()


@pytest.mark.parametrize("settings", [
    {},
    {"user_inter_num_interval": "[0,50]"},
    {"rm_dup_inter": "first", "item_inter_num_interval": "[5,inf)", "val_interval": {"rating": "[3,5]"}},
])
def test_ml_100k_loads_as_recbole_loads_it(settings):
    config = config_of("ml-100k", **settings)
    assert_same_dataset(SequentialDataset(config), LeanSequentialDataset(config))


ODD = {"USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "TIME_FIELD": "timestamp", "load_col": None}


@pytest.mark.parametrize("settings", [
    {},
    {"user_inter_num_interval": "[3,inf)", "rm_dup_inter": "last"},
    {"alias_of_item_id": ["brand"], "val_interval": {"cat": ["c1", "c2"]}},
    {"filter_inter_by_user_or_item": False, "user_inter_num_interval": "[20,inf)",
     "item_inter_num_interval": "[10,inf)"},  # several k-core rounds, with the .user/.item rows
    {"filter_inter_by_user_or_item": False, "user_inter_num_interval": "(1,8];[30,inf)",
     "item_inter_num_interval": "[4,200)"},
    {"load_col": {"inter": ["user_id", "item_id", "timestamp"]}, "user_inter_num_interval": "[10,inf)",
     "item_inter_num_interval": "[5,inf)"},
])
def test_string_tokens_load_as_recbole_loads_them(odd_path, settings):
    config = config_of("odd", data_path=str(odd_path), **{**ODD, **settings})
    theirs, ours = SequentialDataset(config), LeanSequentialDataset(config)
    assert_same_dataset(theirs, ours)
    assert len(ours.inter_feat) < 3000  # the null users went, and any filter's rows


def test_a_file_the_fast_reader_cannot_parse_goes_through_recbole_s(odd_path, tmp_path, caplog):
    folder = tmp_path / "short"
    folder.mkdir()
    lines = (odd_path / "odd" / "odd.inter").read_text(encoding="utf-8").splitlines()
    lines[5] = "\t".join(lines[5].split("\t")[:2])  # a line with two of its five fields
    (folder / "short.inter").write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = config_of("short", data_path=str(tmp_path), **ODD)
    with caplog.at_level(logging.WARNING):
        ours = LeanSequentialDataset(config)
    assert "the lean reader cannot parse it" in caplog.text
    assert_same_dataset(SequentialDataset(config), ours)


@pytest.mark.parametrize("missing", [0.0, 0.2])
def test_factorize_pieces_is_pandas_factorize_over_the_strings(missing):
    rng = np.random.default_rng(1)
    strings = [rng.choice(["a", "b", "01", "1", "x", "[PAD]"], n).astype(object) for n in (50, 7, 20)]
    for values in strings:
        values[rng.random(len(values)) < missing] = np.nan
    ids, id_token = factorize_pieces([pd.factorize(values) for values in strings])
    expected, uniques = pd.factorize(np.concatenate(strings))
    np.testing.assert_array_equal(np.concatenate(ids), expected + 1)
    assert id_token.tolist() == ["[PAD]", *uniques]


def test_every_plugin_dataset_class_has_a_lean_one_and_the_spec_chooses_it():
    from tests.test_spec import spec_of

    assert set(LEAN_CLASSES) == {WindowedSequentialDataset, SequentialDataset, LineOrderDataset,
                                 LineOrderMaterialisedDataset}
    assert all(issubclass(lean, base) for base, lean in LEAN_CLASSES.items())
    assert spec_of().schedule.dataset_class(False) is LEAN_CLASSES[WindowedSequentialDataset]
    assert spec_of(lean_inter_loader=False).schedule.dataset_class(True) is LineOrderDataset


def test_lean_inter_loader_must_be_a_boolean():
    from recbole_croloss.errors import ConfigError
    from tests.test_spec import spec_of

    with pytest.raises(ConfigError, match="lean_inter_loader='no' is not valid"):
        spec_of(lean_inter_loader="no")


def test_a_run_gives_the_same_metrics_with_recbole_s_loader(tiny):
    settings = {**tiny, "protocol": "paper"}
    lean = run("TwoTower", "ml-100k", config_dict=settings)
    theirs = run("TwoTower", "ml-100k", config_dict={**settings, "lean_inter_loader": False})
    assert lean["test_result"] == theirs["test_result"]
    assert lean["history"][0]["train_loss"] == theirs["history"][0]["train_loss"]
