"""``--format sequences``: the two plain layouts of sequential benchmarks (SASRec's ``user item``
lines, S3Rec's/ICLRec's one line per user), detected or named, each user's order kept as time."""
import json
import os
import subprocess
import sys

import pytest

from recbole_croloss.data.import_parsing import MalformedInputError
from recbole_croloss.data.importer import main
from recbole_croloss.data.sequences_import import SNIFF_LINES, detect_layout, import_sequences
from recbole_croloss.errors import ConfigError
from tests.data.conftest import ROOT
from tests.doc_blocks import read_page

SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")


def read_inter(path):
    with open(path, encoding="utf-8") as f:
        assert f.readline() == "user_id:token\titem_id:token\ttimestamp:float\n"
        return [line.rstrip("\n").split("\t") for line in f]


def test_one_user_per_line_becomes_one_row_per_item_in_order(tmp_path, capsys):
    src = tmp_path / "Beauty.txt"
    src.write_text("1 5 3 9\n2 3 7\n3 9 1 2 5\n")
    assert main(["--format", "sequences", "--src", str(src), "--name", "b", "--out", str(tmp_path / "out")]) == 0
    assert "layout: lines; timestamp: each interaction's position in the file" in capsys.readouterr().out
    assert read_inter(tmp_path / "out" / "b" / "b.inter") == [
        ["1", "5", "1"], ["1", "3", "2"], ["1", "9", "3"], ["2", "3", "4"], ["2", "7", "5"],
        ["3", "9", "6"], ["3", "1", "7"], ["3", "2", "8"], ["3", "5", "9"]]


def test_one_interaction_per_line_keeps_the_line_order_as_time(tmp_path):
    src = tmp_path / "Video.txt"
    src.write_text("1 4\n1 2\n2 4\n1 9\n2\t1\n")  # a user's lines need not be adjacent; tabs are spaces
    summary = import_sequences(str(src), "v", str(tmp_path / "out"))
    assert summary["layout"] == "pairs" and (summary["rows"], summary["users"], summary["items"]) == (5, 2, 4)
    assert read_inter(tmp_path / "out" / "v" / "v.inter") == [
        ["1", "4", "1"], ["1", "2", "2"], ["2", "4", "3"], ["1", "9", "4"], ["2", "1", "5"]]


def test_recbole_reads_each_user_s_sequence_in_file_order(tmp_path):
    from recbole.data import create_dataset

    from recbole_croloss.settings.config import PluginConfig
    from recbole_croloss.glue import get_model

    src = tmp_path / "seq.txt"
    # Items in an order neither sorted nor reverse-sorted: only the file's order can give it back.
    src.write_text("".join(f"{u} " + " ".join(str((u * 7 + k * 5) % 23 + 1) for k in range(6)) + "\n"
                           for u in range(1, 9)))
    import_sequences(str(src), "seq", str(tmp_path / "out"))
    config = PluginConfig(get_model("GRU4Rec"), "seq", config_dict={
        "data_path": str(tmp_path / "out"), "state": "WARNING", "show_progress": False,
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]}})  # as the plugin's runs load it
    dataset = create_dataset(config)
    feat = dataset.inter_feat.sort_values([dataset.uid_field, dataset.time_field])  # as RecBole orders
    users = dataset.id2token(dataset.uid_field, feat[dataset.uid_field].to_numpy())
    items = dataset.id2token(dataset.iid_field, feat[dataset.iid_field].to_numpy())
    for line in src.read_text().splitlines():
        user, *sequence = line.split()
        assert [i for u, i in zip(users, items) if u == user] == sequence


@pytest.mark.parametrize("content, layout", [
    ("1 2\n1 3\n2 3\n", "pairs"), ("1 2 3\n2 3\n3 1 2 4\n", "lines"),
    ("7 1 2 3\n8 1 2 3\n", "lines"),  # every line alike: no user repeats, so users with sequences
])
def test_the_layout_is_detected(tmp_path, content, layout):
    (tmp_path / "f.txt").write_text(content)
    assert detect_layout(str(tmp_path / "f.txt")) == layout


@pytest.mark.parametrize("content, fragment, named", [
    ("1 2\n2 3\n3 4\n", "have 2 fields and never repeat a user: give --layout pairs or --layout lines", "lines"),
    ("1 2 5\n1 3 6\n", "have 3 fields and repeat a user", None),  # user item time: a CSV, not a sequence file
])
def test_a_layout_it_cannot_tell_is_refused_naming_layout(tmp_path, capsys, content, fragment, named):
    (tmp_path / "f.txt").write_text(content)
    argv = ["--format", "sequences", "--src", str(tmp_path / "f.txt"), "--name", "f", "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "layout='auto' is not valid" in err and fragment in err
    assert not (tmp_path / "out" / "f").exists()
    if named:
        assert main(argv + ["--layout", named]) == 0  # named, it imports


def test_detection_reads_only_the_first_lines(tmp_path):
    src = tmp_path / "long.txt"
    src.write_text("".join(f"{u} {u % 5 + 1}\n{u} {u % 3 + 1}\n" for u in range(1, SNIFF_LINES)) + "9 1 2 3\n")
    assert detect_layout(str(src)) == "pairs"
    with pytest.raises(MalformedInputError, match=r"long.txt:\d+: expected 2 fields \(user item\), got 4"):
        import_sequences(str(src), "l", str(tmp_path / "out"))


def test_malformed_lines_are_reported_and_skip_leaves_them_out(tmp_path):
    src = tmp_path / "s.txt"
    src.write_text("1 5 3\n2\n\n3 x 4\n1 6 7\n4 2 2\n")
    with pytest.raises(MalformedInputError) as caught:
        import_sequences(str(src), "s", str(tmp_path / "out"), layout="lines")
    message = str(caught.value)
    for fragment in ("s.txt:2: a user without items", "s.txt:3: empty line", "s.txt:4: item id is not",
                     "s.txt:5: user 1 already has line 1; one line per user"):
        assert fragment in message
    assert not (tmp_path / "out" / "s").exists()
    summary = import_sequences(str(src), "s", str(tmp_path / "out"), layout="lines", on_error="skip")
    assert summary["malformed"]["total"] == 4
    assert read_inter(tmp_path / "out" / "s" / "s.inter") == [
        ["1", "5", "1"], ["1", "3", "2"], ["4", "2", "3"], ["4", "2", "4"]]


def test_token_ids_and_bad_settings(tmp_path):
    src = tmp_path / "t.txt"
    src.write_text("A1 B07 B01\nA2 B01\n")
    with pytest.raises(MalformedInputError, match="--ids token"):
        import_sequences(str(src), "t", str(tmp_path / "out"))
    import_sequences(str(src), "t", str(tmp_path / "out"), ids="token")
    assert read_inter(tmp_path / "out" / "t" / "t.inter")[0] == ["A1", "B07", "1"]
    with pytest.raises(ConfigError, match="layout='rows' is not valid; choose one of: auto, lines, pairs"):
        import_sequences(str(src), "t", str(tmp_path / "out"), layout="rows")
    with pytest.raises(FileNotFoundError):
        import_sequences(str(tmp_path / "none.txt"), "t", str(tmp_path / "out"))


def test_an_option_the_format_does_not_read_is_refused(tmp_path, capsys):
    (tmp_path / "f.txt").write_text("1 2 3\n")
    argv = ["--format", "sequences", "--src", str(tmp_path / "f.txt"), "--name", "f", "--out", str(tmp_path / "out")]
    assert main(argv + ["--time-col", "2"]) == 2
    assert ("time_col='2' is not valid; --format sequences does not read --time-col; it reads --layout, --ids "
            "(and --on-error)") in capsys.readouterr().err


def test_the_readme_command_imports_the_file_it_names(tmp_path):
    text = read_page("docs/own-data.md")
    start = text.index("python -m recbole_croloss.data.importer --format sequences")
    command = text[start:text.index("\n", start)].split()
    src = command[command.index("--src") + 1]
    (tmp_path / src).write_text("1 3 2 5\n2 2 4\n")
    env = {**os.environ, "PYTHONPATH": ROOT}
    proc = subprocess.run([sys.executable, *command[1:]], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    name, out = command[command.index("--name") + 1], command[command.index("--out") + 1]
    with open(tmp_path / out / name / f"{name}.import.json") as fh:
        assert json.load(fh)["rows"] == 5


@pytest.mark.parametrize("path, layout, counts", [
    ("beauty/Beauty.txt", "lines", (198502, 22363, 12101)),
    ("sports/Sports_and_Outdoors.txt", "lines", (296337, 35598, 18357)),
    ("video-games/Video.txt", "pairs", (287107, 31013, 23715)),
])
def test_the_shared_benchmark_files_import_with_their_published_counts(tmp_path, path, layout, counts):
    src = os.path.join(SHARED, path)
    if not os.path.exists(src):
        pytest.skip(f"{src} is not here (the shared data folder is absent)")
    summary = import_sequences(src, "real", str(tmp_path / "out"))
    assert summary["layout"] == layout and (summary["rows"], summary["users"], summary["items"]) == counts
    assert summary["elapsed_seconds"] < 30  # streaming: a few seconds for 300k interactions
