"""The CSV importer's column detection: the common names of the user, item and time columns are
recognised, a time-like column it cannot take is a refusal naming --time-col, and the import says
which columns it used."""
import pytest

from recbole_croloss.data.importer import import_csv, main
from recbole_croloss.errors import ConfigError


def read_inter(path):
    with open(path, encoding="utf-8") as f:
        f.readline()
        return [line.rstrip("\n").split("\t") for line in f]


def _import(tmp_path, header, rows, **kwargs):
    src = tmp_path / "in.csv"
    src.write_text(header + "\n" + "".join(r + "\n" for r in rows))
    summary = import_csv(str(src), "d", str(tmp_path / "out"), **kwargs)
    return summary, read_inter(tmp_path / "out" / "d" / "d.inter")


# Rows out of time order: read in line order, every user's sequence would be reversed.
UNSORTED = ["1,10,300", "1,11,200", "2,12,100"]


@pytest.mark.parametrize("name", ["timestamp", "time", "ts", "datetime", "unixReviewTime", "Time", "TIMESTAMP"])
def test_each_common_time_column_name_is_taken_as_the_time(tmp_path, name):
    summary, inter = _import(tmp_path, f"user_id,item_id,{name}", UNSORTED)
    assert [row[2] for row in inter] == ["300", "200", "100"]  # the column's values, not line numbers
    assert summary["time_source"] == name and summary["column_names"]["time"] == name


@pytest.mark.parametrize("name", ["user_id", "user", "userId", "reviewerID", "uid", "UserID", "user_id:token"])
def test_each_common_user_column_name_is_found(tmp_path, name):
    summary, inter = _import(tmp_path, f"rating,item_id,{name},timestamp", ["5,10,7,1", "4,11,8,2"])
    assert [row[0] for row in inter] == ["7", "8"] and summary["column_names"]["user"] == name


@pytest.mark.parametrize("name", ["item_id", "item", "itemId", "movieId", "asin", "iid", "product_id"])
def test_each_common_item_column_name_is_found(tmp_path, name):
    summary, inter = _import(tmp_path, f"{name},user_id,timestamp", ["10,7,1", "11,8,2"])
    assert [row[1] for row in inter] == ["10", "11"] and summary["column_names"]["item"] == name


def test_movielens_s_ratings_csv_imports_with_every_column_found(tmp_path):
    summary, inter = _import(tmp_path, "userId,movieId,rating,timestamp",
                             ["1,31,2.5,1260759144", "1,1029,3.0,1260759179"])
    assert inter == [["1", "31", "1260759144"], ["1", "1029", "1260759179"]]
    assert summary["column_names"] == {"user": "userId", "item": "movieId", "time": "timestamp"}


def test_an_amazon_review_export_imports_without_naming_a_column(tmp_path, capsys):
    src = tmp_path / "reviews.csv"
    src.write_text("reviewerID,asin,overall,unixReviewTime\nA2SUAM1J3GNN3B,0000013714,5.0,1382659200\n"
                   "A14VAT5EAX3D9S,0000013714,4.0,1203984000\nA2SUAM1J3GNN3B,B00004Y2UT,3.0,1356220800\n")
    assert main(["--format", "csv", "--src", str(src), "--name", "amz", "--out", str(tmp_path / "out"),
                 "--ids", "token"]) == 0
    assert "columns used: user: reviewerID, item: asin, time: unixReviewTime" in capsys.readouterr().out
    assert read_inter(tmp_path / "out" / "amz" / "amz.inter")[0] == ["A2SUAM1J3GNN3B", "0000013714", "1382659200"]


@pytest.mark.parametrize("name", ["event_date", "created_at_time", "Datum_time", "review_date", "createdAt",
                                  "reviewTS"])
def test_a_time_like_column_auto_cannot_take_is_refused_naming_time_col(tmp_path, name):
    src = tmp_path / "in.csv"
    src.write_text(f"user_id,item_id,{name}\n1,10,5\n")
    with pytest.raises(ConfigError) as caught:
        import_csv(str(src), "d", str(tmp_path / "out"))
    assert f"give --time-col {name} (or --time-col none to take the line order)" in str(caught.value)
    assert str(caught.value).startswith("time_col='auto' is not valid")
    assert not (tmp_path / "out" / "d").exists()
    summary, _ = _import(tmp_path, f"user_id,item_id,{name}", ["1,10,5"], time_col="none")
    assert summary["time_source"] == "line order"


def test_the_import_prints_the_columns_it_used(tmp_path, capsys):
    src = tmp_path / "in.csv"
    src.write_text("user,item,rating\n1,10,5\n")
    assert main(["--format", "csv", "--src", str(src), "--name", "d", "--out", str(tmp_path / "out")]) == 0
    assert "columns used: user: user, item: item, time: none (the line order is the time)" in capsys.readouterr().out
    plain = tmp_path / "plain.csv"
    plain.write_text("1,10,7\n")
    assert main(["--format", "csv", "--src", str(plain), "--name", "p", "--out", str(tmp_path / "out"),
                 "--no-header"]) == 0
    assert "columns used: user: column 0, item: column 1, time: column 2" in capsys.readouterr().out


def test_a_header_without_a_user_column_names_the_choices(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("who,what\n1,10\n")
    with pytest.raises(ConfigError, match=r"user_col='auto' is not valid; in.csv's header has no column named like "
                                          r"one \(user_id, userId, user, .*give --user-col NAME \(choose one of: "
                                          r"who, what; or --no-header\)"):
        import_csv(str(src), "d", str(tmp_path / "out"))


def test_iso_dates_in_the_time_column_become_unix_seconds(tmp_path):
    summary, inter = _import(tmp_path, "user_id,item_id,datetime",
                             ["1,10,2019-05-01", "1,11,2019-05-01 00:00:10", "1,12,2019-05-01T00:00:20+01:00"])
    assert [float(row[2]) for row in inter] == [1556668800.0, 1556668810.0, 1556668800.0 + 20 - 3600]
    src = tmp_path / "bad.csv"
    src.write_text("user_id,item_id,time\n1,10,yesterday\n")
    with pytest.raises(Exception, match="bad.csv:2: timestamp is not a finite number nor an ISO 8601 date"):
        import_csv(str(src), "bad", str(tmp_path / "out"))


@pytest.mark.parametrize("name", ["is_updated", "weekday", "rating", "stamps_collected"])
def test_a_column_whose_words_are_not_a_time_leaves_the_line_order(tmp_path, name):
    summary, _ = _import(tmp_path, f"user_id,item_id,{name}", ["1,10,5"])
    assert summary["time_source"] == "line order"
