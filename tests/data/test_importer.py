"""recbole_croloss.data.importer: ComiRec and CSV import, validation, atomic writes."""
import json
import os
import random
import signal
import sys

import pytest

from recbole_croloss.data import import_parsing
from recbole_croloss.data.importer import MalformedInputError, import_comirec, import_csv, main
from recbole_croloss.errors import ConfigError

SPLITS = ("train", "valid", "test")


def write_comirec(folder, prefix="book", users=50, items=40, seed=7, maps=True, cate=True):
    """A ComiRec-format folder: users 0..users-1 split 8:1:1, items 1..items, timestamps 0..L-1.

    Returns {split: [(user, item, ts), ...]} in file order.
    """
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    ids = list(range(users))
    rng.shuffle(ids)
    cut1, cut2 = int(users * 0.8), int(users * 0.9)
    groups = {"train": ids[:cut1], "valid": ids[cut1:cut2], "test": ids[cut2:]}
    rows = {}
    for split, members in groups.items():
        rows[split] = [(u, rng.randint(1, items), t) for u in members for t in range(rng.randint(5, 12))]
        (folder / f"{prefix}_{split}.txt").write_text("".join(f"{u},{i},{t}\n" for u, i, t in rows[split]))
    if maps:
        (folder / f"{prefix}_user_map.txt").write_text("".join(f"A{u * 13},{u}\n" for u in range(users)))
        (folder / f"{prefix}_item_map.txt").write_text("".join(f"B{i:05d}X,{i}\n" for i in range(1, items + 1)))
    if cate:
        (folder / f"{prefix}_item_cate.txt").write_text("".join(f"{i},{i % 7 + 1}\n" for i in range(1, items + 1)))
    return rows


def read_atomic(path):
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        return header, [line.rstrip("\n").split("\t") for line in f]


def listing(folder):
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else None


# --- ComiRec -----------------------------------------------------------------------------------


def test_comirec_round_trip(tmp_path):
    rows = write_comirec(tmp_path / "src")
    summary = import_comirec(str(tmp_path / "src"), "fixture", str(tmp_path / "out"))
    folder = tmp_path / "out" / "fixture"
    assert listing(folder) == ["fixture.import.json", "fixture.inter", "fixture.item", "fixture.user"]

    header, inter = read_atomic(folder / "fixture.inter")
    assert header == ["user_id:token", "item_id:token", "timestamp:float"]
    expected = [[str(u), str(i), str(t)] for split in SPLITS for u, i, t in rows[split]]
    assert inter == expected  # every row once, in file order, ComiRec's ids as tokens

    header, users = read_atomic(folder / "fixture.user")
    assert header == ["user_id:token", "comirec_split:token"]
    split_of = {u: split for split in SPLITS for u, _, _ in rows[split]}
    assert dict(users) == {str(u): s for u, s in split_of.items()}
    assert len(users) == len(split_of) == 50

    header, item = read_atomic(folder / "fixture.item")
    assert header == ["item_id:token", "cate_id:token"]
    assert item == [[str(i), str(i % 7 + 1)] for i in range(1, 41)]

    items = {i for split in SPLITS for _, i, _ in rows[split]}
    assert summary["rows"] == len(expected)
    assert summary["users"] == 50 and summary["items"] == len(items)
    assert summary["users_per_split"] == {"train": 40, "valid": 5, "test": 5}
    assert summary["malformed"]["total"] == 0 and summary["prefix"] == "book"
    assert summary["maps"]["user_map"] == {"path": str(tmp_path / "src" / "book_user_map.txt"), "rows": 50,
                                           "ids_missing_from_map": 0}
    assert summary["maps"]["item_map"]["rows"] == 40
    assert {k: v["rows"] for k, v in summary["source"].items()} == {
        **{s: len(rows[s]) for s in SPLITS}, "item_cate": 40}
    on_disk = json.loads((folder / "fixture.import.json").read_text())
    assert on_disk["rows"] == summary["rows"] and on_disk["users_per_split"] == summary["users_per_split"]
    assert on_disk["elapsed_seconds"] >= 0


def test_comirec_output_is_recbole_loadable(tmp_path):
    from recbole.data import create_dataset

    from recbole_croloss.glue import get_model
    from recbole_croloss.settings.config import PluginConfig

    rows = write_comirec(tmp_path / "src")
    import_comirec(str(tmp_path / "src"), "fixture", str(tmp_path / "out"))
    config = PluginConfig(get_model("GRU4Rec"), "fixture", config_dict={
        "data_path": str(tmp_path / "out"), "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "state": "WARNING", "show_progress": False})
    dataset = create_dataset(config)
    items = {i for split in SPLITS for _, i, _ in rows[split]}
    assert dataset.user_num == 50 + 1 and dataset.item_num == len(items) + 1  # + padding
    assert dataset.inter_num == sum(len(r) for r in rows.values())


def test_prefix_detection(tmp_path):
    write_comirec(tmp_path / "src", prefix="book")
    write_comirec(tmp_path / "src", prefix="taobao", maps=False, cate=False)
    with pytest.raises(ConfigError) as error:
        import_comirec(str(tmp_path / "src"), "x", str(tmp_path / "out"))
    assert "book" in str(error.value) and "taobao" in str(error.value) and "prefix" in str(error.value)
    assert not (tmp_path / "out").exists()
    summary = import_comirec(str(tmp_path / "src"), "x", str(tmp_path / "out"), prefix="taobao")
    assert summary["prefix"] == "taobao" and "item_rows" in summary and summary["item_rows"] is None
    assert listing(tmp_path / "out" / "x") == ["x.import.json", "x.inter", "x.user"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no PREFIX_train.txt"):
        import_comirec(str(tmp_path / "empty"), "x", str(tmp_path / "out"))


def _corrupt(folder):
    """Insert bad lines into book_train.txt and book_test.txt; returns their (file, line)."""
    train = (folder / "book_train.txt").read_text().splitlines(keepends=True)
    train[2] = "1,2\n"                  # line 3: wrong number of fields
    train[4] = "x7,3,1\n"               # line 5: non-integer user
    train[6] = "3,4,later\n"            # line 7: non-numeric timestamp
    train[8] = "\n"                     # line 9: empty line in the middle
    (folder / "book_train.txt").write_text("".join(train) + "\n\n")  # trailing empties: not data
    test = (folder / "book_test.txt").read_text().splitlines(keepends=True)
    test[1] = "5,-1,2\n"                # line 2: negative item
    (folder / "book_test.txt").write_text("".join(test))
    return [("book_train.txt", 3), ("book_train.txt", 5), ("book_train.txt", 7), ("book_train.txt", 9),
            ("book_test.txt", 2)]


def test_malformed_fail_writes_nothing(tmp_path):
    write_comirec(tmp_path / "src")
    bad = _corrupt(tmp_path / "src")
    with pytest.raises(MalformedInputError) as error:
        import_comirec(str(tmp_path / "src"), "fixture", str(tmp_path / "out"))
    message = str(error.value)
    for file, line in bad:
        assert f"{file}:{line}:" in message
    assert "5 malformed line(s)" in message and "nothing written" in message
    assert error.value.summary["malformed"]["per_file"] == {"book_train.txt": 4, "book_test.txt": 1}
    assert not (tmp_path / "out").exists()  # no NAME dir (nor OUT) left


def test_malformed_fail_keeps_old_outputs(tmp_path):
    write_comirec(tmp_path / "good")
    import_comirec(str(tmp_path / "good"), "fixture", str(tmp_path / "out"))
    folder = tmp_path / "out" / "fixture"
    before = {name: (folder / name).read_bytes() for name in os.listdir(folder)}
    write_comirec(tmp_path / "bad", seed=8)
    _corrupt(tmp_path / "bad")
    with pytest.raises(MalformedInputError):
        import_comirec(str(tmp_path / "bad"), "fixture", str(tmp_path / "out"))
    assert {name: (folder / name).read_bytes() for name in os.listdir(folder)} == before


def test_malformed_skip_reports_and_keeps_good_rows(tmp_path):
    rows = write_comirec(tmp_path / "src")
    bad = _corrupt(tmp_path / "src")
    summary = import_comirec(str(tmp_path / "src"), "fixture", str(tmp_path / "out"), on_error="skip")
    assert summary["malformed"]["total"] == 5
    assert [(m["file"], m["line"]) for m in summary["malformed"]["first"]] == bad
    assert summary["malformed"]["first"][0]["reason"].startswith("expected 3 fields")
    _, inter = read_atomic(tmp_path / "out" / "fixture" / "fixture.inter")
    good = [[str(u), str(i), str(t)] for split in SPLITS
            for n, (u, i, t) in enumerate(rows[split], 1)
            if (f"book_{split}.txt", n) not in bad]
    assert inter == good and summary["rows"] == len(good)
    on_disk = json.loads((tmp_path / "out" / "fixture" / "fixture.import.json").read_text())
    assert on_disk["malformed"]["total"] == 5 and on_disk["on_error"] == "skip"


def test_first_ten_then_total(tmp_path):
    write_comirec(tmp_path / "src")
    lines = (tmp_path / "src" / "book_valid.txt").read_text()
    (tmp_path / "src" / "book_valid.txt").write_text(lines + "".join(f"{i},oops,1\n" for i in range(25)))
    with pytest.raises(MalformedInputError) as error:
        import_comirec(str(tmp_path / "src"), "fixture", str(tmp_path / "out"))
    assert "25 malformed line(s)" in str(error.value) and "... 15 more" in str(error.value)
    assert len(error.value.summary["malformed"]["first"]) == 10


@pytest.mark.parametrize("on_error", ["fail", "skip"])
def test_user_in_two_splits_is_an_error(tmp_path, on_error):
    rows = write_comirec(tmp_path / "src")
    user = rows["train"][0][0]
    valid = (tmp_path / "src" / "book_valid.txt").read_text()
    (tmp_path / "src" / "book_valid.txt").write_text(valid + f"{user},1,99\n")
    line = len(valid.splitlines()) + 1
    with pytest.raises(MalformedInputError) as error:
        import_comirec(str(tmp_path / "src"), "fixture", str(tmp_path / "out"), on_error=on_error)
    message = str(error.value)
    assert f"user {user}" in message and "book_train.txt (line 1)" in message
    assert f"book_valid.txt (line {line})" in message
    assert not (tmp_path / "out").exists()


def test_map_files_are_validated(tmp_path):
    write_comirec(tmp_path / "src")
    item_map = tmp_path / "src" / "book_item_map.txt"
    item_map.write_text(item_map.read_text().replace("B00002X,2\n", "B00002X,1\n"))  # 2 unmapped, 1 twice
    with pytest.raises(MalformedInputError) as error:
        import_comirec(str(tmp_path / "src"), "fixture", str(tmp_path / "out"))
    assert "book_item_map.txt:2: mapped id 1 already mapped at line 1" in str(error.value)

    item_map.write_text("".join(line for line in item_map.read_text().splitlines(keepends=True)
                                if not line.startswith("B00002X")))
    with pytest.raises(MalformedInputError, match="not in book_item_map.txt"):
        import_comirec(str(tmp_path / "src"), "fixture", str(tmp_path / "out"))
    summary = import_comirec(str(tmp_path / "src"), "fixture", str(tmp_path / "out"), on_error="skip")
    assert summary["maps"]["item_map"]["ids_missing_from_map"] == 1
    assert "not in book_item_map.txt" in summary["warnings"][0]


def test_atomic_on_failure_mid_write(tmp_path, monkeypatch, disk_full):
    write_comirec(tmp_path / "src")
    monkeypatch.setattr(import_parsing, "BLOCK_LINES", 16)
    monkeypatch.setattr(import_parsing, "write_chunk", disk_full(3))
    with pytest.raises(OSError, match="disk full"):
        import_comirec(str(tmp_path / "src"), "fixture", str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()

    (tmp_path / "out" / "fixture").mkdir(parents=True)
    (tmp_path / "out" / "fixture" / "fixture.inter").write_text("old\n")
    monkeypatch.setattr(import_parsing, "write_chunk", disk_full(3))  # a fresh count
    with pytest.raises(OSError, match="disk full"):
        import_comirec(str(tmp_path / "src"), "fixture", str(tmp_path / "out"))
    assert listing(tmp_path / "out" / "fixture") == ["fixture.inter"]
    assert (tmp_path / "out" / "fixture" / "fixture.inter").read_text() == "old\n"


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory):
    """2,000,000 rows (26 MB): an import of a couple of seconds, time to interrupt it."""
    path = tmp_path_factory.mktemp("big") / "big.csv"
    block = "".join(f"{u},{u * 7 % 5000 + 1}\n" for u in range(1000))
    path.write_text("user_id,item_id\n" + block * 2000)
    return str(path)


def import_command(src, out, name="big"):
    return [sys.executable, "-m", "recbole_croloss.data.importer", "--format", "csv", "--src", src,
            "--name", name, "--out", str(out)]


@pytest.mark.parametrize("existing", [False, True], ids=["new-folder", "old-outputs"])
def test_sigterm_mid_import_leaves_only_what_was_there(tmp_path, big_csv, interrupt_mid_write, existing):
    out, folder = tmp_path / "out", tmp_path / "out" / "big"
    if existing:
        folder.mkdir(parents=True)
        (folder / "big.inter").write_text("old\n")
    proc = interrupt_mid_write(import_command(big_csv, out), folder, signal.SIGTERM)
    assert proc.returncode == 128 + signal.SIGTERM, proc.err
    assert "error: interrupted by SIGTERM" in proc.err and "nothing written" in proc.err
    if existing:
        assert listing(folder) == ["big.inter"] and (folder / "big.inter").read_text() == "old\n"
    else:
        assert not out.exists()  # the folders the import created are gone again


def test_the_next_import_removes_a_sigkilled_import_s_temporary(tmp_path, big_csv, interrupt_mid_write):
    out, folder = tmp_path / "out", tmp_path / "out" / "big"
    proc = interrupt_mid_write(import_command(big_csv, out), folder, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    assert [n for n in listing(folder) if n.endswith(".tmp")]  # no handler runs on SIGKILL
    small = tmp_path / "small.csv"
    small.write_text("user_id,item_id\n1,2\n3,4\n")
    import_csv(str(small), "big", str(out))
    assert listing(folder) == ["big.import.json", "big.inter"]


def test_cli_exit_codes(tmp_path, capsys):
    write_comirec(tmp_path / "src")
    argv = ["--format", "comirec", "--src", str(tmp_path / "src"), "--name", "fx", "--out", str(tmp_path / "out")]
    assert main(argv) == 0
    assert "users per ComiRec split: train 40, valid 5, test 5" in capsys.readouterr().out
    _corrupt(tmp_path / "src")
    assert main(argv + ["--name", "fy"]) == 2
    err = capsys.readouterr().err
    assert "book_train.txt:3:" in err and "book_test.txt:2:" in err
    assert not (tmp_path / "out" / "fy").exists()
    assert main(argv + ["--name", "fz", "--on-error", "skip"]) == 0
    assert "left out (on_error=skip): 5 malformed line(s)" in capsys.readouterr().out


# --- CSV -----------------------------------------------------------------------------------------


def test_csv_with_header_and_time(tmp_path):
    src = tmp_path / "a.csv"
    src.write_text("rating,user_id,timestamp,item_id\n5,1,100.5,10\n3,2,90,11\n4,1,101,12\n")
    summary = import_csv(str(src), "a", str(tmp_path / "out"))
    _, inter = read_atomic(tmp_path / "out" / "a" / "a.inter")
    assert inter == [["1", "10", "100.5"], ["2", "11", "90"], ["1", "12", "101"]]
    assert summary["time_source"] == "timestamp" and summary["users"] == 2 and summary["items"] == 3
    assert listing(tmp_path / "out" / "a") == ["a.import.json", "a.inter"]


def test_csv_header_without_time_column_uses_line_order(tmp_path):
    src = tmp_path / "b.csv"
    src.write_text("person;thing\n7;1\n8;2\n7;3\n")
    summary = import_csv(str(src), "b", str(tmp_path / "out"), sep=";", user_col="person", item_col="thing")
    _, inter = read_atomic(tmp_path / "out" / "b" / "b.inter")
    assert inter == [["7", "1", "2"], ["8", "2", "3"], ["7", "3", "4"]]  # line numbers
    assert summary["time_source"] == "line order"
    with pytest.raises(ConfigError, match="give --user-col NAME \\(choose one of: person, thing"):
        import_csv(str(src), "b2", str(tmp_path / "out"), sep=";")  # no column named like a user
    with pytest.raises(ConfigError, match="time_col"):
        import_csv(str(src), "b3", str(tmp_path / "out"), sep=";", user_col="person", item_col="thing",
                   time_col="ts")


def test_csv_without_header(tmp_path):
    three = tmp_path / "c.tsv"
    three.write_text("1\t5\t30\n2\t6\t20\n")
    import_csv(str(three), "c", str(tmp_path / "out"), sep="\t", header=False)
    assert read_atomic(tmp_path / "out" / "c" / "c.inter")[1] == [["1", "5", "30"], ["2", "6", "20"]]
    import_csv(str(three), "c2", str(tmp_path / "out"), sep="\t", header=False, time_col="none")
    assert read_atomic(tmp_path / "out" / "c2" / "c2.inter")[1] == [["1", "5", "1"], ["2", "6", "2"]]
    four = tmp_path / "ratings.csv"  # user, item, rating, timestamp: the third column is no time
    four.write_text("1,5,4,30\n2,6,3,20\n")
    with pytest.raises(ConfigError, match="--no-header with 4 columns: which one is the time cannot be told; "
                                          "give --time-col POSITION"):
        import_csv(str(four), "r", str(tmp_path / "out"), header=False)
    import_csv(str(four), "r", str(tmp_path / "out"), header=False, time_col="3")
    assert read_atomic(tmp_path / "out" / "r" / "r.inter")[1] == [["1", "5", "30"], ["2", "6", "20"]]
    two = tmp_path / "d.csv"
    two.write_text("4,9\n3,8\n\n5,x\n")
    with pytest.raises(MalformedInputError) as error:
        import_csv(str(two), "d", str(tmp_path / "out"), header=False)
    assert "d.csv:3: empty line" in str(error.value) and "d.csv:4: item id" in str(error.value)
    assert not (tmp_path / "out" / "d").exists()
    summary = import_csv(str(two), "d", str(tmp_path / "out"), header=False, on_error="skip")
    assert read_atomic(tmp_path / "out" / "d" / "d.inter")[1] == [["4", "9", "1"], ["3", "8", "2"]]
    assert summary["malformed"]["total"] == 2 and summary["time_source"] == "line order"


ASIN_ROWS = "reviewerID,asin,unixReviewTime\nA3R5OBKS7OM2IR,0441172717,10\nAX1,B00ZV9PXP2,11\nA3R5OBKS7OM2IR,B00ZV9PXP2,12\n"


def test_csv_with_token_ids_keeps_them_as_they_are(tmp_path):
    src = tmp_path / "amz.csv"
    src.write_text(ASIN_ROWS)
    columns = {"user_col": "reviewerID", "item_col": "asin", "time_col": "unixReviewTime"}
    with pytest.raises(MalformedInputError) as error:  # integer ids by default: one hint, not one per line
        import_csv(str(src), "amz", str(tmp_path / "out"), **columns)
    assert str(error.value).count("--ids token") == 1 and not (tmp_path / "out" / "amz").exists()
    summary = import_csv(str(src), "amz", str(tmp_path / "out"), ids="token", **columns)
    header, inter = read_atomic(tmp_path / "out" / "amz" / "amz.inter")
    assert inter == [["A3R5OBKS7OM2IR", "0441172717", "10"], ["AX1", "B00ZV9PXP2", "11"],
                     ["A3R5OBKS7OM2IR", "B00ZV9PXP2", "12"]]  # the leading zero is kept: a token
    assert summary["ids"] == "token" and summary["users"] == 2 and summary["items"] == 2
    with pytest.raises(ConfigError, match="ids='hex' is not valid; choose one of: int, token"):
        import_csv(str(src), "amz2", str(tmp_path / "out"), ids="hex", **columns)


@pytest.mark.parametrize("bad, reason", [
    ("NA", "would be read as missing"), ("null", "would be read as missing"),
    ("[PAD]", "RecBole's padding token"), ("a b", "whitespace or a quote"), ('"x"', "whitespace or a quote"),
])
def test_token_ids_recbole_would_misread_are_malformed_lines(tmp_path, bad, reason):
    src = tmp_path / "t.csv"
    src.write_text(f"user_id,item_id\nu1,i1\nu2,{bad}\n")
    with pytest.raises(MalformedInputError, match=f"t.csv:3: item id .*{reason}".replace("[", r"\[")):
        import_csv(str(src), "t", str(tmp_path / "out"), ids="token")
    summary = import_csv(str(src), "t", str(tmp_path / "out"), ids="token", on_error="skip")
    assert read_atomic(tmp_path / "out" / "t" / "t.inter")[1] == [["u1", "i1", "2"]]
    assert summary["malformed"]["total"] == 1


def test_a_token_id_csv_loads_in_recbole_with_its_own_tokens(tmp_path):
    from recbole.data import create_dataset

    from recbole_croloss.settings.config import PluginConfig
    from recbole_croloss.glue import get_model

    src = tmp_path / "amz.csv"
    src.write_text(ASIN_ROWS)
    import_csv(str(src), "amz", str(tmp_path / "out"), user_col="reviewerID", item_col="asin",
               time_col="unixReviewTime", ids="token")
    config = PluginConfig(get_model("GRU4Rec"), "amz", config_dict={
        "data_path": str(tmp_path / "out"), "state": "WARNING", "show_progress": False})
    dataset = create_dataset(config)
    assert list(dataset.field2id_token["item_id"]) == ["[PAD]", "0441172717", "B00ZV9PXP2"]
    assert list(dataset.field2id_token["user_id"]) == ["[PAD]", "A3R5OBKS7OM2IR", "AX1"]


def test_bad_arguments(tmp_path):
    src = tmp_path / "e.csv"
    src.write_text("user_id,item_id\n1,2\n")
    with pytest.raises(ConfigError, match="on_error"):
        import_csv(str(src), "e", str(tmp_path / "out"), on_error="ignore")
    with pytest.raises(ConfigError, match="name"):
        import_csv(str(src), "../e", str(tmp_path / "out"))
    with pytest.raises(ConfigError, match="user_col"):
        import_csv(str(src), "e", str(tmp_path / "out"), header=False, user_col=5)
    with pytest.raises(ConfigError, match="ids"):
        import_csv(str(src), "e", str(tmp_path / "out"), ids="string")
    assert not (tmp_path / "out").exists()


def test_a_csv_with_a_byte_order_mark_imports_by_its_column_names(tmp_path):
    src = tmp_path / "bom.csv"
    src.write_bytes("\ufeffuser,item,time\n1,2,30\n1,3,40\n2,2,50\n".encode("utf-8"))
    summary = import_csv(str(src), "bom", str(tmp_path / "out"), user_col="user", item_col="item", time_col="time")
    assert summary["rows"] == 3
    lines = (tmp_path / "out" / "bom" / "bom.inter").read_text().splitlines()
    assert lines[0] == "user_id:token\titem_id:token\ttimestamp:float" and len(lines) == 4


@pytest.mark.parametrize("importer", ["csv", "comirec"])
def test_an_out_that_is_a_file_is_refused_before_reading(tmp_path, importer, capsys):
    (tmp_path / "taken").write_text("not a folder")
    src = tmp_path / "in.csv"
    src.write_text("user_id,item_id\n1,2\n")
    args = ["--format", importer, "--src", str(src if importer == "csv" else tmp_path), "--name", "x",
            "--out", str(tmp_path / "taken" / "data")]
    assert main(args) == 2
    assert f"out='{tmp_path / 'taken' / 'data'}' is not valid; a folder: {tmp_path / 'taken'} is a file" \
        in capsys.readouterr().err


def test_a_csv_import_over_a_comirec_import_removes_its_split(tmp_path):
    """The old .user holds ComiRec's split: read with the new .inter it would drop users."""
    write_comirec(tmp_path / "src", users=20, items=10)
    import_comirec(str(tmp_path / "src"), "shop", str(tmp_path / "out"))
    assert (tmp_path / "out" / "shop" / "shop.user").exists()
    src = tmp_path / "new.csv"
    src.write_text("user_id,item_id\n1,2\n2,3\n")
    summary = import_csv(str(src), "shop", str(tmp_path / "out"))
    assert sorted(os.listdir(tmp_path / "out" / "shop")) == ["shop.import.json", "shop.inter"]
    assert summary["outputs"] == ["shop.inter", "shop.import.json"]


@pytest.mark.parametrize("content, extra, fragment", [
    ("user_id,item_id,timestamp\n", [], "header.csv has no interaction to import; nothing written"),
    ("", [], "header.csv has no data"),
    ("user_id\titem_id\ttimestamp\n1\t2\t3\n", [], "sep=',' is not valid; the separator of header.csv: its "
     "header has one column with '\\t' in it ('user_id\\titem_id\\ttimestamp'): give --sep '\\t'"),
    ("user_id,item_id,timestamp\n100000000000000000000000000000,1,5\n2,3,4\n", [],
     "header.csv:2: user id is larger than 2**63 - 1"),
    ("user_id,item_id,timestamp\n1,2,3\n", ["--item-col", "user_id"],
     "item_col='user_id' is not valid; user, item and time must be different columns; column 0 is user_col too"),
], ids=["header only", "empty", "tab-separated read with ','", "an id beyond int64", "one column twice"])
def test_a_csv_that_cannot_make_a_dataset_is_refused_and_nothing_written(tmp_path, capsys, content, extra,
                                                                         fragment):
    (tmp_path / "header.csv").write_text(content)
    args = ["--format", "csv", "--src", str(tmp_path / "header.csv"), "--name", "x",
            "--out", str(tmp_path / "out")]
    assert main(args + extra) == 2
    assert fragment in capsys.readouterr().err
    assert not (tmp_path / "out" / "x").exists()


@pytest.mark.parametrize("importer", ["csv", "comirec"])
def test_an_out_that_cannot_be_written_is_refused_before_reading(tmp_path, importer, capsys):
    src = tmp_path / "in.csv"
    src.write_text("user_id,item_id\n1,2\n")
    write_comirec(tmp_path, users=10, items=5)
    args = ["--format", importer, "--src", str(src if importer == "csv" else tmp_path), "--name", "x",
            "--out", "/proc/croloss"]
    assert main(args) == 2
    assert "out='/proc/croloss' is not valid; a folder that can be written (/proc:" in capsys.readouterr().err


# --- a second import under one name --------------------------------------------------------------


def _first_and_second(tmp_path, importer):
    """(argv of a first import of 3 interactions, argv of a second one of other data)."""
    out = ["--out", str(tmp_path / "out"), "--name", "shop"]
    if importer == "comirec":
        write_comirec(tmp_path / "one", users=10, items=5)
        write_comirec(tmp_path / "two", users=20, items=5, seed=1)
        return (["--format", "comirec", "--src", str(tmp_path / "one"), *out],
                ["--format", "comirec", "--src", str(tmp_path / "two"), *out])
    first, second = tmp_path / "one.txt", tmp_path / "two.txt"
    if importer == "csv":
        first.write_text("user_id,item_id\n1,2\n2,3\n1,4\n")
        second.write_text("user_id,item_id\n1,2\n")
    else:
        first.write_text("1 2 4\n2 3\n")
        second.write_text("1 2 3 4 5\n")
    return (["--format", importer, "--src", str(first), *out], ["--format", importer, "--src", str(second), *out])


@pytest.mark.parametrize("importer", ["csv", "sequences", "comirec"])
def test_a_second_import_under_one_name_says_what_it_replaced(tmp_path, capsys, importer):
    first, second = _first_and_second(tmp_path, importer)
    assert main(first) == 0
    first_out = capsys.readouterr().out
    assert "replaced" not in first_out
    with open(tmp_path / "out" / "shop" / "shop.import.json") as f:
        rows = json.load(f)["rows"]
    assert main(second) == 0
    assert f"replaced the existing dataset shop ({rows:,} interactions)" in capsys.readouterr().out


def test_replacing_a_hand_written_dataset_counts_its_interactions(tmp_path, capsys):
    folder = tmp_path / "out" / "shop"
    folder.mkdir(parents=True)
    (folder / "shop.inter").write_text("user_id:token\titem_id:token\n1\t2\n1\t3\n2\t3\n4\t4")  # no last newline
    src = tmp_path / "in.csv"
    src.write_text("user_id,item_id\n1,2\n")
    assert main(["--format", "csv", "--src", str(src), "--name", "shop", "--out", str(tmp_path / "out")]) == 0
    assert "replaced the existing dataset shop (4 interactions)" in capsys.readouterr().out


@pytest.mark.parametrize("fmt", ["csv", "sequences", "rechorus"])
def test_a_byte_that_is_not_utf8_stops_every_import_naming_its_line(tmp_path, capsys, fmt):
    """Two Latin-1 ids (caf\xe9, caf\xe8) would both read as 'caf\ufffd': one item, silently."""
    if fmt == "csv":
        src = tmp_path / "in.csv"
        src.write_bytes(b"user_id,item_id,timestamp\n1,caf\xe9,1\n1,caf\xe8,2\n")
        bad_line = 2
    elif fmt == "sequences":
        src = tmp_path / "seq.txt"
        src.write_bytes(b"1 a b c\n2 caf\xe9 caf\xe8 d\n")
        bad_line = 2
    else:
        src = tmp_path / "rc"
        src.mkdir()
        (src / "train.csv").write_bytes(b"user_id,item_id,time\n1,10,1\n1,11,2\n2,\xe912,3\n")
        for split in ("dev.csv", "test.csv"):
            (src / split).write_bytes(b"user_id,item_id,time\n1,12,9\n")
        bad_line = 4
    extra = ["--ids", "token"] if fmt != "rechorus" else []
    assert main(["--format", fmt, "--src", str(src), "--name", "d", "--out", str(tmp_path / "out"), *extra]) == 2
    err = capsys.readouterr().err
    assert f"line {bad_line}: not UTF-8 text (byte 0x" in err and "iconv" in err
    assert not (tmp_path / "out" / "d").exists()


@pytest.mark.parametrize("fmt, content", [("csv", b"user_id,item_id,timestamp\n1,10,100\n1,11,10"),
                                          ("sequences", b"1 10 11 12\n2 10 1")])
def test_a_file_that_ends_inside_its_last_line_is_refused(tmp_path, capsys, fmt, content):
    src = tmp_path / "in.txt"
    src.write_bytes(content)
    assert main(["--format", fmt, "--src", str(src), "--name", "d", "--out", str(tmp_path / "out")]) == 2
    assert "the file ends inside this line, without a newline: it looks cut short" in capsys.readouterr().err
    src.write_bytes(content + b"\n")  # whole: the same file with its newline imports
    assert main(["--format", fmt, "--src", str(src), "--name", "d", "--out", str(tmp_path / "out")]) == 0
