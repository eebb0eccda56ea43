"""A dataset's .inter file is checked before RecBole loads it: errors name the file and the line."""
import glob
import os

import pytest

from recbole_croloss.data import inter_file
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
    (HEADER + ROWS + "4\t1\t12", "line 17: the file ends inside this line, without a newline: it looks cut short "
                                 "(its last value '12' may be a number cut in the middle)"),
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
    with pytest.raises(DatasetFileError, match=r"shop.inter, line 17: not UTF-8 text \(byte 0xe9 at column 3\)"):
        read_inter_file(str(tmp_path / "shop.inter"), CONFIG)


LATIN1 = "5\t\xe9t\xe9\t7\n".encode("latin-1")  # a Latin-1 'é' in the item column


def test_a_line_that_is_not_utf8_far_into_the_file_stops_the_run(tmp_path, monkeypatch, capsys):
    """Every line is checked, not only the first ones: RecBole would stop mid-load with pandas'
    UnicodeDecodeError."""
    monkeypatch.chdir(tmp_path)
    os.makedirs(tmp_path / "data" / "shop")
    content = (HEADER + ROWS * 80).encode() + LATIN1 + ROWS.encode()  # the bad line is 1202 of 1217
    (tmp_path / "data" / "shop" / "shop.inter").write_bytes(content)
    tiny = [f"--{k}={v}" for k, v in TINY.items()]
    assert main(["--model=GRU4Rec", "--dataset=shop", f"--data_path={tmp_path / 'data'}", *tiny]) == 2
    err = capsys.readouterr().err
    assert "shop.inter, line 1202: not UTF-8 text (byte 0xe9 at column 3); RecBole reads UTF-8" in err, err
    assert "UnicodeDecodeError" not in err and not os.path.exists(tmp_path / "log")


@pytest.mark.parametrize("content, fragment", [
    ((HEADER + ROWS).encode() + LATIN1, "line 17: not UTF-8 text (byte 0xe9 at column 3)"),  # the last line
    ((HEADER + ROWS).encode() + "5\t\u00e9t\u00e9\t7\n".encode() + b"6\t\xff\t8\n" + ROWS.encode(),
     "line 18: not UTF-8 text (byte 0xff at column 3)"),  # after a line of valid multi-byte text
    ((HEADER + ROWS * 3).encode() + b"4\t1\t" + "\u00e9".encode()[:1] + b"\n" + ROWS.encode(),
     "line 47: not UTF-8 text (byte 0xc3 at column 5)"),  # a sequence cut by the line end
])
@pytest.mark.parametrize("chunk", [1 << 20, 7], ids=["one chunk", "7-byte chunks"])
def test_the_first_byte_that_is_not_utf8_is_named_with_its_line_and_column(content, fragment, chunk, tmp_path,
                                                                           monkeypatch):
    monkeypatch.setattr(inter_file, "SCAN_CHUNK", chunk)  # lines across chunk boundaries
    (tmp_path / "shop.inter").write_bytes(content)
    with pytest.raises(DatasetFileError) as caught:
        read_inter_file(str(tmp_path / "shop.inter"), CONFIG)
    assert fragment in str(caught.value)


@pytest.mark.parametrize("chunk", [1 << 20, 7], ids=["one chunk", "7-byte chunks"])
def test_a_number_cut_at_the_end_of_a_long_file_is_refused(chunk, tmp_path, monkeypatch):
    """RecBole would read the cut timestamp as a smaller number, without a word."""
    monkeypatch.setattr(inter_file, "SCAN_CHUNK", chunk)
    (tmp_path / "shop.inter").write_bytes((HEADER + ROWS * 80 + "4\t1\t40").encode())
    with pytest.raises(DatasetFileError, match=r"shop.inter, line 1202: the file ends inside this line, without "
                                               r"a newline: it looks cut short \(its last value '40'"):
        read_inter_file(str(tmp_path / "shop.inter"), CONFIG)
    (tmp_path / "shop.inter").write_bytes((HEADER + ROWS * 80 + "4\t1\t40\n\n").encode())
    assert read_inter_file(str(tmp_path / "shop.inter"), CONFIG).path == str(tmp_path / "shop.inter")


DUPLICATES = [  # (content, count, interactions, first duplicate line)
    (HEADER + ROWS, 0, 15, None),
    (HEADER + ROWS + ROWS, 15, 30, 17),
    (HEADER + ROWS + "\n\n" + LINES[3] + "\n", 1, 16, 19),  # empty lines are not interactions
    (HEADER + ROWS + LINES[0].replace("\n", "\r\n"), 1, 16, 17),  # the same line with another line end
    (HEADER + ROWS + LINES[0].replace("\n", ""), 1, 16, 17),  # the last line, ended by the file (refused after)
    (HEADER + ROWS + LINES[0].replace("101", "101.0"), 0, 16, None),  # a value written otherwise: not exact
]


@pytest.mark.parametrize("chunk", [1 << 20, 7], ids=["one chunk", "7-byte chunks"])
@pytest.mark.parametrize("content, count, interactions, first", DUPLICATES)
def test_exact_duplicate_lines_are_counted(content, count, interactions, first, chunk, tmp_path, monkeypatch):
    monkeypatch.setattr(inter_file, "SCAN_CHUNK", chunk)
    (tmp_path / "shop.inter").write_bytes(content.encode())
    scan = inter_file._scan(str(tmp_path / "shop.inter"), len(HEADER))
    warnings = scan.duplicate_warnings("shop.inter")
    if count == 0:
        assert warnings == ()
    else:
        assert warnings[0].startswith(f"shop.inter: {count} of its {interactions} interactions repeat an earlier "
                                      f"line exactly (every column the same; the first at line {first}). RecBole "
                                      "keeps every copy"), warnings


def test_duplicates_are_not_warned_about_when_rm_dup_inter_drops_them(tmp_path):
    (tmp_path / "shop.inter").write_bytes((HEADER + ROWS + ROWS).encode())
    assert "awk '!seen[$0]++'" in read_inter_file(str(tmp_path / "shop.inter"), CONFIG).warnings[0]
    removed = {**CONFIG, "rm_dup_inter": "first"}
    assert read_inter_file(str(tmp_path / "shop.inter"), removed).warnings == ()


def test_duplicate_interactions_are_a_warning_in_the_run_log(tmp_path, monkeypatch, capsys):
    """Every line twice: the run trains, and its log says how many lines repeat and how to drop them."""
    monkeypatch.chdir(tmp_path)
    rows = "".join(f"{u}\t{i}\t{u * 100 + i}\n" for u in range(1, 41) for i in range(1, 13))
    os.makedirs(tmp_path / "data" / "shop")
    (tmp_path / "data" / "shop" / "shop.inter").write_text(HEADER + rows + rows)
    tiny = [f"--{k}={v}" for k, v in TINY.items()]
    assert main(["--model=GRU4Rec", "--dataset=shop", f"--data_path={tmp_path / 'data'}", *tiny,
                 "--topk=[5]", "--valid_metric=Recall@5"]) == 0, capsys.readouterr().err
    logs = glob.glob(str(tmp_path / "log" / "GRU4Rec" / "*.log"))
    text = open(logs[0], encoding="utf-8").read()
    assert "WARNING" in text and "shop.inter: 480 of its 960 interactions repeat an earlier line exactly " \
        "(every column the same; the first at line 482). RecBole keeps every copy" in text, text


def test_an_unchanged_file_is_checked_once_and_a_changed_one_again(tmp_path):
    """A benchmark grid checks one dataset for each of its runs: the pass over every line is made once."""
    path = str(tmp_path / "shop.inter")
    (tmp_path / "shop.inter").write_bytes((HEADER + ROWS).encode())
    first = read_inter_file(path, CONFIG)
    assert read_inter_file(path, CONFIG) is first and first.warnings == ()
    (tmp_path / "shop.inter").write_bytes((HEADER + ROWS + ROWS).encode())
    assert "15 of its 30 interactions repeat" in read_inter_file(path, CONFIG).warnings[0]
    (tmp_path / "shop.inter").write_bytes((HEADER + ROWS + "4\t1").encode())
    with pytest.raises(DatasetFileError, match="line 17: 2 columns"):
        read_inter_file(path, CONFIG)
