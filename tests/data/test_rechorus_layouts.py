"""ReChorus's two layouts import alike: the CIKM22-era one (tab-separated, LF, ``neg_items``) and
the current release's (comma-separated, CRLF, no ``neg_items``); options the format does not read
and empty files are refused with a sentence that says so."""
import os

import pytest

from recbole_croloss.data.import_parsing import MalformedInputError
from recbole_croloss.data.importer import main
from recbole_croloss.data.rechorus import import_rechorus
from recbole_croloss.quick_start import prepare_run
from tests.data.test_rechorus import N_NEG, write_rechorus

CURRENT = {"sep": ",", "newline": "\r\n", "negatives": False}


def _argv(tmp_path, name="rc", src="src"):
    return ["--format", "rechorus", "--src", str(tmp_path / src), "--name", name, "--out", str(tmp_path / "data")]


def _inter(tmp_path, name):
    return (tmp_path / "data" / name / f"{name}.inter").read_text()


def test_the_current_layout_imports_as_the_cikm22_one_does(tmp_path, capsys):
    write_rechorus(tmp_path / "src", **CURRENT)
    assert (tmp_path / "src" / "dev.csv").read_bytes().startswith(b"user_id,item_id,time\r\n")
    assert main(_argv(tmp_path)) == 0
    out = capsys.readouterr().out
    assert "ReChorus files: comma-separated, CRLF line ends (train.csv, dev.csv, test.csv)" in out
    assert "ReChorus cases: dev 40, test 40, no fixed negatives" in out
    assert ("dev.csv and test.csv have no neg_items column: no case files written; protocol: sampled draws "
            "each case's negatives") in out
    assert sorted(os.listdir(tmp_path / "data" / "rc")) == ["rc.import.json", "rc.inter"]
    write_rechorus(tmp_path / "tab", negatives=False)  # the same data, tab-separated with LF
    assert main(_argv(tmp_path, "tab", "tab")) == 0
    assert _inter(tmp_path, "rc") == _inter(tmp_path, "tab")


def test_the_current_layout_trains_with_drawn_negatives(tmp_path):
    write_rechorus(tmp_path / "src", **CURRENT)
    import_rechorus(str(tmp_path / "src"), "rc", str(tmp_path / "data"))
    prepared = prepare_run("TwoTower", "rc", config_dict={
        "data_path": str(tmp_path / "data"), "protocol": "sampled", "topk": [1, 5], "metrics": ["Hit", "NDCG"],
        "valid_metric": "NDCG@5", "show_progress": False, "state": "WARNING", "epochs": 1,
        "checkpoint_dir": str(tmp_path / "saved")})
    assert "ReChorus's fixed negatives" not in prepared.spec.protocol.label
    assert sum(len(candidates) for _, candidates in prepared.test_data) == 40  # every test case


def test_quoted_neg_items_of_a_comma_separated_file_are_read(tmp_path):
    cases = write_rechorus(tmp_path / "src", sep=",", newline="\r\n")
    summary = import_rechorus(str(tmp_path / "src"), "rc", str(tmp_path / "data"))
    assert summary["negatives_per_case"] == N_NEG and summary["layout"]["test.csv"]["sep"] == ","
    written = (tmp_path / "data" / "rc" / "test.csv").read_text().splitlines()
    user, item, _, negatives = written[1].split("\t")  # written back tab-separated, as ReChorus read it
    assert (item, negatives) == (cases["test.csv"][user][0], f"[{', '.join(cases['test.csv'][user][1])}]")


def test_sep_is_read_and_a_wrong_one_is_named(tmp_path, capsys):
    write_rechorus(tmp_path / "src")
    assert main(_argv(tmp_path) + ["--sep", "tab"]) == 0
    capsys.readouterr()
    assert main(_argv(tmp_path, "rc2") + ["--sep", ","]) == 2
    assert "read with separator ',', has no user_id, item_id, time column" in capsys.readouterr().err
    assert not (tmp_path / "data" / "rc2").exists()


@pytest.mark.parametrize("option, fragment", [
    (["--ids", "token"], "ids='token' is not valid; --format rechorus does not read --ids; it reads --sep"),
    (["--time-col", "time"], "time_col='time' is not valid; --format rechorus does not read --time-col"),
    (["--no-header"], "header=False is not valid; --format rechorus does not read --no-header"),
])
def test_an_option_rechorus_does_not_read_is_refused(tmp_path, capsys, option, fragment):
    write_rechorus(tmp_path / "src")
    assert main(_argv(tmp_path) + option) == 2
    assert fragment in capsys.readouterr().err
    assert not (tmp_path / "data").exists()


def test_options_other_formats_do_not_read_are_refused(tmp_path, capsys):
    (tmp_path / "in.csv").write_text("user_id,item_id\n1,2\n")
    assert main(["--format", "comirec", "--src", str(tmp_path), "--name", "x", "--out", str(tmp_path / "o"),
                 "--sep", ","]) == 2
    assert "sep=',' is not valid; --format comirec does not read --sep; it reads --prefix" in capsys.readouterr().err
    assert main(["--format", "csv", "--src", str(tmp_path / "in.csv"), "--name", "x", "--out", str(tmp_path / "o"),
                 "--prefix", "book"]) == 2
    assert "--format csv does not read --prefix" in capsys.readouterr().err


@pytest.mark.parametrize("content, fragment", [
    ("", "dev.csv is empty: ReChorus's dev.csv starts with a header"),
    ("\r\n\r\n", "dev.csv is empty: ReChorus's dev.csv starts with a header"),
    ("user_id,item_id,time\r\n", "dev.csv is empty (a header and no rows); nothing written"),
])
def test_an_empty_dev_csv_is_said_to_be_empty(tmp_path, capsys, content, fragment):
    write_rechorus(tmp_path / "src", **CURRENT)
    (tmp_path / "src" / "dev.csv").write_bytes(content.encode())
    assert main(_argv(tmp_path)) == 2
    err = capsys.readouterr().err
    assert fragment in err and "the header" not in err
    with pytest.raises(MalformedInputError, match="is empty"):
        import_rechorus(str(tmp_path / "src"), "rc", str(tmp_path / "data"))
