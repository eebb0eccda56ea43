"""A dataset's .inter file is checked before RecBole loads it: errors name the file and the line."""
import os

import pytest

from recbole_croloss.data.inter_file import InterFile, read_inter_file
from recbole_croloss.errors import DatasetFileError
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
    ("", "shop.inter is empty (0 bytes); its first line must be the header"),
    ("user_id:token\titem_id:token\titem_id:token\n1\t2\t3\n",
     "line 1: column 'item_id' appears twice in the header"),
    ("user_id:token\titem_id:token\ttimestamp:token\n" + ROWS,
     "line 1: timestamp:token (TIME_FIELD) must be timestamp:float (RecBole orders each user's interactions "
     "by it"),
    ("user_id:token\titem_id:float\ttimestamp:float\n" + ROWS,
     "line 1: item_id:float (ITEM_ID_FIELD) must be item_id:token (RecBole remaps only token ids)"),
    (HEADER + ROWS + "4\t1\tnan\n", "line 17: timestamp = 'nan' is not a finite time"),
    (HEADER + ROWS + "4\t1\tinf\n", "line 17: timestamp = 'inf' is not a finite time"),
    (HEADER + ROWS + "4\t1\t\n", "line 17: timestamp is empty (RecBole would fill it with the mean time"),
    (HEADER + ROWS + "\t1\t5\n", "line 17: user_id is empty (RecBole would read it as the padding id"),
    (HEADER + ROWS * 80 + "4\t1\tnan\n", "line 1202: timestamp = 'nan' is not a finite time"),  # the last line
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


CONFIG = {"field_separator": None, "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id",
          "TIME_FIELD": "timestamp"}


LINES = ROWS.splitlines(keepends=True)


@pytest.mark.parametrize("content", [HEADER + ROWS + "\n\n",
                                     HEADER + "".join(LINES[:7]) + "\n" + "".join(LINES[7:]),
                                     (HEADER + ROWS).replace("\n", "\r\n")],
                         ids=["empty lines at the end", "an empty line in the middle", "CRLF"])
def test_empty_lines_and_crlf_are_read_as_recbole_reads_them(content, tmp_path):
    """RecBole's reader skips empty lines and takes CRLF line ends: such a file is accepted."""
    (tmp_path / "shop.inter").write_bytes(content.encode())
    checked = read_inter_file(str(tmp_path / "shop.inter"), CONFIG)
    assert checked.fields == {"user_id": "token", "item_id": "token", "timestamp": "float"}


def test_a_file_with_empty_lines_and_crlf_trains(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rows = [f"{u}\t{i}\t{u * 100 + i}" for u in range(1, 41) for i in range(1, 13)]
    os.makedirs(tmp_path / "data" / "shop")
    text = "\r\n".join([HEADER.strip(), *rows[:200], "", *rows[200:], "", ""])
    (tmp_path / "data" / "shop" / "shop.inter").write_bytes(text.encode())
    tiny = [f"--{k}={v}" for k, v in TINY.items()]
    assert main(["--model=GRU4Rec", "--dataset=shop", f"--data_path={tmp_path / 'data'}", *tiny,
                 "--topk=[5]", "--valid_metric=Recall@5"]) == 0, capsys.readouterr().err


def test_an_inter_file_that_is_a_folder_is_named(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    os.makedirs(tmp_path / "data" / "shop" / "shop.inter")
    tiny = [f"--{k}={v}" for k, v in TINY.items()]
    assert main(["--model=GRU4Rec", "--dataset=shop", f"--data_path={tmp_path / 'data'}", *tiny]) == 2
    folder = tmp_path / "data" / "shop" / "shop.inter"
    assert f"{folder} is a directory; the dataset's interactions are the file shop.inter" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "log")


def test_a_line_that_is_not_utf8_is_named(tmp_path):
    (tmp_path / "shop.inter").write_bytes((HEADER + ROWS).encode() + "4\t\xe9t\xe9\t5\n".encode("latin-1"))
    with pytest.raises(DatasetFileError, match="shop.inter, line 17: not UTF-8 text"):
        read_inter_file(str(tmp_path / "shop.inter"), CONFIG)
