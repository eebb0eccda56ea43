"""A dataset's .inter file is checked before RecBole loads it: errors name the file and the line."""
import os

import pytest

from recbole_croloss.data.inter_file import InterFile
from recbole_croloss.quick_start import main

from ..conftest import TINY

HEADER = "user_id:token\titem_id:token\ttimestamp:float\n"
ROWS = "".join(f"{u}\t{i}\t{u * 100 + i}\n" for u in range(1, 4) for i in range(1, 6))

FILES = [  # (content, a fragment of the error)
    ("user\titem\ttime\n" + ROWS, "line 1: column 'user' is not 'name:type'"),
    ("user_id:token,item_id:token,timestamp:float\n1,2,3\n", "line 1: the columns are separated by ','"),
    (HEADER + ROWS + "4\t1\tyesterday\n", "line 17: timestamp = 'yesterday' is not a number"),
    (HEADER, "has a header but no interactions"),
    (HEADER + ROWS + "4\t1", "line 17: 2 columns, but the header has 3 (user_id, item_id, timestamp); the file ends without a newline"),
    ("\ufeff" + HEADER + ROWS, "starts with a byte-order mark"),
    ("uid:token\titem_id:token\n1\t2\n", "line 1: no column 'user_id' (USER_ID_FIELD)"),
]


@pytest.mark.parametrize("content, fragment", FILES, ids=[f for _, f in FILES])
def test_a_bad_inter_file_is_refused_before_loading(content, fragment, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    os.makedirs(tmp_path / "data" / "shop")
    (tmp_path / "data" / "shop" / "shop.inter").write_text(content, encoding="utf-8")
    tiny = [f"--{k}={v}" for k, v in TINY.items()]
    assert main(["--model=GRU4Rec", "--dataset=shop", f"--data_path={tmp_path / 'data'}", *tiny]) == 2
    err = capsys.readouterr().err
    assert "shop.inter" in err and fragment in err, err
    assert not os.path.exists(tmp_path / "log")


@pytest.mark.parametrize("load_col, expected", [
    ({"inter": ["user_id", "item_id"]}, {"inter": ["user_id", "item_id", "timestamp"]}),
    ({"inter": ["user_id", "item_id", "timestamp"]}, None),
    (None, None),
])
def test_the_time_field_is_added_to_load_col_when_the_file_has_one(load_col, expected):
    with_time = InterFile("x.inter", {"user_id": "token", "item_id": "token", "timestamp": "float"})
    assert with_time.load_col(load_col, "timestamp") == expected
    without = InterFile("x.inter", {"user_id": "token", "item_id": "token"})
    assert without.load_col(load_col, "timestamp") is None
