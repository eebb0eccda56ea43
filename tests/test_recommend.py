"""python -m recbole_croloss.recommend: the command line over Recommender."""
import json
import re
import subprocess
import sys

import pytest
import torch

from recbole_croloss.loading import load
from recbole_croloss.recommend import InputLineError, main, read_queries
from recbole_croloss.recommender import Recommender


@pytest.fixture(scope="module")
def session(trained_run, tmp_path_factory):
    """``(checkpoint, recommender, input file, queries)``: GRU4Rec's run, its recommender, and a
    file of the first 30 test users' histories, ``USER<TAB>ITEM ...`` (the last one without its user)."""
    checkpoint = trained_run("GRU4Rec")["files"]["model"]
    config, model, dataset, _, _, test_data = load(checkpoint)
    inner, interaction = model.model, next(iter(test_data))[0]
    lines = []
    for user, seq, n in list(zip(interaction[inner.USER_ID], interaction[inner.ITEM_SEQ],
                                 interaction[inner.ITEM_SEQ_LEN]))[:30]:
        items = " ".join(str(t) for t in dataset.id2token(dataset.iid_field, seq[:n].numpy()))
        lines.append(f"{dataset.id2token(dataset.uid_field, int(user))}\t{items}")
    lines[-1] = lines[-1].split("\t")[1]
    path = tmp_path_factory.mktemp("cli") / "histories.txt"
    path.write_text("\n".join(lines) + "\n")
    return checkpoint, Recommender(config, model, dataset), path, list(read_queries(lines))


def test_input_lines_with_and_without_a_user():
    queries = list(read_queries(["196\t242 302 377\n", "51 86\r\n", "\t7\n"]))
    assert queries[0] == (["242", "302", "377"], "196", 1) and queries[1] == (["51", "86"], None, 2)
    assert queries[2] == (["7"], None, 3)


@pytest.mark.parametrize("lines,message", [
    (["51 86\n", "\n"], "line 2 is empty; give one sequence per line, [USER<TAB>]ITEM ITEM ..., oldest first"),
    (["51 86\n", "  \r\n", "7\n"], "line 2 is empty"),
    (["196\t\n"], "line 1 has the user '196' but no item tokens"),
])
def test_an_input_line_without_items_is_named(lines, message):
    with pytest.raises(InputLineError, match=re.escape(message)):
        list(read_queries(lines))


def test_an_empty_line_of_the_input_file_stops_the_command_naming_it(session, tmp_path, capsys):
    checkpoint, _, path, _ = session
    lines = path.read_text().splitlines()
    bad = tmp_path / "gap.txt"
    bad.write_text(f"{lines[0]}\n\n{lines[1]}\n")
    for unknown in ("error", "skip"):  # no token to leave out: skip does not serve it either
        assert main(["--checkpoint", checkpoint, "--input", str(bad), "--unknown", unknown,
                     "--output", str(tmp_path / "recs.jsonl")]) == 2
        err = capsys.readouterr().err
        assert "error: line 2 is empty;" in err and "unknown" not in err and not (tmp_path / "recs.jsonl").exists()


def test_a_file_that_is_not_a_checkpoint_is_named_for_what_it_is(session, tmp_path, capsys):
    _, _, path, _ = session
    (tmp_path / "empty.pth").write_bytes(b"")
    (tmp_path / "notes.pth").write_text("my notes")
    torch.save({"weights": torch.ones(2)}, tmp_path / "plain.pth")
    for name, message in (("empty.pth", "this one is an empty file (0 bytes), not a checkpoint"),
                          ("notes.pth", "this one is not a zip archive, the format torch.save writes: its "
                                        "first bytes are b'my notes'"),
                          ("plain.pth", "this one is not a run's checkpoint: it lacks config, state_dict, "
                                        "run_settings (its keys: weights)")):
        assert main(["--checkpoint", str(tmp_path / name), "--input", str(path)]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1 and "weights_only" not in err, err
    (tmp_path / "folder").mkdir()
    with pytest.raises(SystemExit):
        main(["--checkpoint", str(tmp_path / "folder"), "--input", str(path)])
    assert "--checkpoint '" + str(tmp_path / "folder") + "' is a directory" in capsys.readouterr().err


def test_a_resume_checkpoint_serves_with_a_warning_naming_the_best_model(session, tmp_path, capsys):
    checkpoint, recommender, path, queries = session
    resume = checkpoint[:-len(".pth")] + "-last.pth"
    assert main(["--checkpoint", resume, "--input", str(path), "--output", str(tmp_path / "recs.jsonl")]) == 0
    err = capsys.readouterr().err
    assert f"warning: {resume} is a resume checkpoint: its weights are those after epoch 0, not the best " \
           f"validation's, which are in {checkpoint}" in err


@pytest.mark.parametrize("fmt", ["jsonl", "tsv"])
def test_the_command_writes_what_the_recommender_returns(session, tmp_path, capsys, fmt):
    checkpoint, recommender, path, queries = session
    out = tmp_path / f"recs.{fmt}"
    assert main(["--checkpoint", checkpoint, "--input", str(path), "--k", "7", "--exclude-input",
                 "--format", fmt, "--output", str(out), "--batch-size", "8"]) == 0
    expected = recommender.recommend(queries, k=7, exclude_input=True)
    lines = out.read_text().splitlines()
    if fmt == "jsonl":
        records = [json.loads(line) for line in lines]
        assert [r["user"] for r in records] == [q.user for q in queries] and records[-1]["user"] is None
        assert [r["items"] for r in records] == [e.items for e in expected]
        assert [r["scores"] for r in records] == [[round(s, 6) for s in e.scores] for e in expected]
        assert [r["line"] for r in records] == list(range(1, 31)) and "unknown" not in records[0]
    else:
        assert lines[0] == "line\tuser\trank\titem\tscore" and len(lines) == 1 + 7 * 30
        first = [row.split("\t") for row in lines[1:8]]
        assert [row[3] for row in first] == expected[0].items and [row[2] for row in first] == list("1234567")
        assert first[0][1] == queries[0].user and float(first[0][4]) == pytest.approx(expected[0].scores[0], abs=1e-6)
    assert "30 sequences served (0 without a recommendation)" in capsys.readouterr().err


def test_unknown_tokens_on_the_command_line(session, tmp_path, capsys):
    checkpoint, recommender, path, queries = session
    bad = tmp_path / "bad.txt"
    bad.write_text(path.read_text() + "no-such-item " + " ".join(queries[0].items) + "\n")
    out = tmp_path / "recs.jsonl"
    argv = ["--checkpoint", checkpoint, "--input", str(bad), "--output", str(out)]
    assert main(argv) == 2
    assert "error: line 31: tokens the model's dataset does not know: 'no-such-item'" in capsys.readouterr().err
    assert not out.exists()  # nothing half-written
    assert main(argv + ["--unknown", "skip"]) == 0
    assert "warning: 1 tokens the model's dataset does not know were left out of 1 sequences: line 31: " \
           "'no-such-item'" in capsys.readouterr().err
    last = json.loads(out.read_text().splitlines()[-1])
    assert last["unknown"] == ["no-such-item"] and last["items"] == recommender.recommend([queries[0].items])[0].items


@pytest.mark.parametrize("argv,message", [
    (["--input", "IN"], "the following arguments are required: --checkpoint"),
    (["--checkpoint", "CK", "--input", "missing.txt"], "--input 'missing.txt': no such file"),
    (["--checkpoint", "missing.pth", "--input", "IN"], "--checkpoint 'missing.pth': no such file"),
    (["--checkpoint", "CK", "--input", "IN", "--k", "0"], "argument --k: 0 must be at least 1"),
    (["--checkpoint", "CK", "--input", "IN", "--k", "ten"], "argument --k: 'ten' is not an integer"),
    (["--checkpoint", "CK", "--input", "IN", "--unknown", "ignore"], "argument --unknown: invalid choice: 'ignore'"),
    (["--checkpoint", "CK", "--input", "IN", "--format", "csv"], "argument --format: invalid choice: 'csv'"),
    (["--checkpoint", "CK", "--input", "IN", "--faiss", "nowhere"], "--faiss 'nowhere': no exported index there"),
    (["--checkpoint", "CK", "--input", "IN", "--output", "."], "--output '.' is a directory"),
])
def test_bad_arguments_stop_before_the_model_loads(session, capsys, argv, message):
    checkpoint, _, path, _ = session
    argv = [{"CK": checkpoint, "IN": str(path)}.get(a, a) for a in argv]
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2 and message in capsys.readouterr().err


def test_arguments_the_model_refuses_are_one_line_errors(session, tmp_path, capsys):
    checkpoint, recommender, path, _ = session
    assert main(["--checkpoint", checkpoint, "--input", str(path), "--k", "100000"]) == 2
    assert f"error: k=100000 is not valid; k must be an integer from 1 to {recommender.n_items - 1}" \
        in capsys.readouterr().err
    (tmp_path / "text.pth").write_text("not a checkpoint")
    assert main(["--checkpoint", str(tmp_path / "text.pth"), "--input", str(path)]) == 2
    assert "error: checkpoint=" in capsys.readouterr().err


def test_the_readme_commands(trained_run, session, tmp_path):
    checkpoint, recommender, path, queries = session
    expected = [r.items for r in recommender.recommend(queries, k=10, exclude_input=True)]
    out = tmp_path / "recs.jsonl"
    subprocess.run([sys.executable, "-m", "recbole_croloss.recommend", "--checkpoint", checkpoint,
                    "--input", str(path), "--k", "10", "--exclude-input", "--output", str(out)],
                   check=True, cwd=tmp_path, capture_output=True)
    assert [json.loads(line)["items"] for line in out.read_text().splitlines()] == expected
    index = trained_run("GRU4Rec")["faiss"]["export"]  # the run's faiss_export
    assert main(["--checkpoint", checkpoint, "--input", str(path), "--k", "10", "--exclude-input",
                 "--faiss", index, "--format", "tsv", "--output", str(tmp_path / "recs.tsv")]) == 0
    rows = [line.split("\t") for line in (tmp_path / "recs.tsv").read_text().splitlines()[1:]]
    from_index = [[row[3] for row in rows[i:i + 10]] for i in range(0, len(rows), 10)]
    same = sum(a == b for got, want in zip(from_index, expected) for a, b in zip(got, want))
    assert len(from_index) == 30 and same >= 0.98 * 300  # a flat index: near-ties aside, the same lists
