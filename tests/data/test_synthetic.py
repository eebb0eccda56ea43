"""recbole_croloss.data.synthetic: shape, determinism, power-law popularity, atomic writes."""
import json
import os
import signal
import sys

import numpy as np
import pytest

from recbole_croloss.data import synthetic
from recbole_croloss.data.synthetic import (_Items, expected_length, format_rows, generate, head_slope, main,
                                            solve_length_mu)
from recbole_croloss.errors import ConfigError


def load(path):
    data = np.loadtxt(path, dtype=np.int64, skiprows=1, delimiter="\t")
    return data[:, 0], data[:, 1], data[:, 2]


def test_format_rows_matches_python():
    rng = np.random.default_rng(1)
    cols = [rng.integers(0, 10 ** rng.integers(1, 12), size=1000) for _ in range(3)]
    cols[0][:3] = [0, 9, 10]
    expected = "".join(f"{a}\t{b}\t{c}\n" for a, b, c in zip(*(c.tolist() for c in cols))).encode()
    assert format_rows(cols) == expected
    assert format_rows([c[:0] for c in cols]) == b""


def test_length_calibration_is_exact():
    for mean, low, high in [(20, 5, 500), (87.4, 5, 1000), (6, 5, 8)]:
        mu = solve_length_mu(mean, 1.0, low, high)
        assert expected_length(mu, 1.0, low, high) == pytest.approx(mean, abs=1e-6)
    assert solve_length_mu(5, 1.0, 5, 500) is None


def test_deterministic_by_seed(tmp_path):
    kwargs = dict(users=300, items=500, interests=20)
    generate("a", str(tmp_path), seed=3, **kwargs)
    generate("b", str(tmp_path), seed=3, **kwargs)
    generate("c", str(tmp_path), seed=4, **kwargs)
    a, b, c = ((tmp_path / n / f"{n}.inter").read_bytes() for n in "abc")
    assert a == b and a != c


def test_shape(tmp_path):
    users, items = 5000, 3000
    summary = generate("s", str(tmp_path), users=users, items=items, mean_length=20, min_length=5,
                       max_length=60, interests=50, seed=1)
    user, item, ts = load(tmp_path / "s" / "s.inter")
    assert (tmp_path / "s" / "s.inter").read_text().startswith("user_id:token\titem_id:token\ttimestamp:float\n")
    assert len(user) == summary["rows"]
    assert item.min() >= 1 and item.max() <= items
    assert np.all(np.diff(user) >= 0) and np.array_equal(np.unique(user), np.arange(1, users + 1))  # grouped
    lengths = np.bincount(user)[1:]
    assert lengths.min() >= 5 and lengths.max() <= 60
    assert abs(lengths.mean() - 20) < 1.0 and lengths.std() > 5  # lengths vary
    same_user = user[1:] == user[:-1]
    assert np.all(np.diff(ts)[same_user] > 0)  # increasing within a user
    saved = json.loads((tmp_path / "s" / "s.synthetic.json").read_text())
    assert saved["rows"] == len(user) and saved["arguments"]["items"] == items
    assert saved["length"]["min"] == lengths.min() and saved["length"]["max"] == lengths.max()
    assert saved["peak_rss_mb"] > 0 and saved["elapsed_seconds"] >= 0
    assert saved["items_seen"] == len(np.unique(item))


@pytest.mark.parametrize("exponent", [0.8, 1.2])
def test_popularity_follows_the_exponent(tmp_path, exponent):
    summary = generate("p", str(tmp_path), users=10000, items=20000, mean_length=20,
                       popularity_exponent=exponent, interests=200, seed=5)
    assert 180_000 < summary["rows"] < 220_000
    _, item, _ = load(tmp_path / "p" / "p.inter")
    slope = head_slope(np.bincount(item), head=100)
    assert abs(slope + exponent) < 0.15, slope
    assert summary["popularity_head_slope"] == pytest.approx(slope)


def test_users_stay_within_their_interests(tmp_path):
    generate("i", str(tmp_path), users=400, items=2000, interests=40, user_interests="1-2", seed=2)
    table = _Items(2000, 1.0, 40, 2)
    cluster_of_item = np.empty(2001, np.int64)
    for c in range(table.n_clusters):
        cluster_of_item[table.rank_to_item[table.order[table.start[c]:table.end[c]]]] = c
    user, item, _ = load(tmp_path / "i" / "i.inter")
    per_user = [len(np.unique(cluster_of_item[item[user == u]])) for u in range(1, 401)]
    assert max(per_user) <= 2 and min(per_user) == 1


def test_atomic_on_failure_mid_write(tmp_path, monkeypatch, disk_full):
    monkeypatch.setattr(synthetic, "BLOCK_ROWS", 2000)
    monkeypatch.setattr(synthetic, "_write_block", disk_full(2))
    with pytest.raises(OSError, match="disk full"):
        generate("f", str(tmp_path / "out"), users=1000, items=100)
    assert not (tmp_path / "out").exists()
    (tmp_path / "out" / "f").mkdir(parents=True)
    (tmp_path / "out" / "f" / "f.inter").write_text("old\n")
    monkeypatch.setattr(synthetic, "_write_block", disk_full(2))  # a fresh count
    with pytest.raises(OSError, match="disk full"):
        generate("f", str(tmp_path / "out"), users=1000, items=100)
    assert os.listdir(tmp_path / "out" / "f") == ["f.inter"]
    assert (tmp_path / "out" / "f" / "f.inter").read_text() == "old\n"


@pytest.mark.parametrize("kwargs, key", [
    (dict(mean_length=3), "mean_length"),
    (dict(mean_length=600), "mean_length"),
    (dict(user_interests="4-1"), "user_interests"),
    (dict(items=0), "items"),
    (dict(popularity_exponent=-1.0), "popularity_exponent"),
    (dict(max_length=2), "max_length"),
])
def test_bad_arguments(tmp_path, kwargs, key):
    args = dict(users=10, items=10, **{k: v for k, v in kwargs.items() if k != "items"})
    if "items" in kwargs:
        args["items"] = kwargs["items"]
    with pytest.raises(ConfigError, match=key):
        generate("x", str(tmp_path / "out"), **args)
    assert not (tmp_path / "out").exists()


def test_cli(tmp_path, capsys):
    assert main(["--name", "cli", "--out", str(tmp_path), "--users", "50", "--items", "80",
                 "--user-interests", "2", "--popularity-exponent", "0.9"]) == 0
    assert "rows/s" in capsys.readouterr().out
    saved = json.loads((tmp_path / "cli" / "cli.synthetic.json").read_text())
    assert saved["arguments"]["user_interests"] == [2, 2] and saved["arguments"]["popularity_exponent"] == 0.9
    assert main(["--name", "bad", "--out", str(tmp_path), "--users", "5", "--items", "5", "--mean-length", "1"]) == 2


def test_sigterm_mid_write_leaves_nothing(tmp_path, interrupt_mid_write):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "recbole_croloss.data.synthetic", "--name", "s", "--out", str(out),
               "--users", "300000", "--items", "50000"]  # about 6M rows: a few seconds of writing
    proc = interrupt_mid_write(command, out / "s", signal.SIGTERM)
    assert proc.returncode == 128 + signal.SIGTERM, proc.err
    assert "error: interrupted by SIGTERM" in proc.err
    assert not out.exists()


@pytest.mark.parametrize("args, fragment", [
    (["--items", "1"], "items=1 is not valid; an integer >= 2: a catalogue of one item has nothing to rank"),
    (["--max-length", "2000000000"], "max_length=2000000000 is not valid; max_length must be an integer from 5 "
                                     "to 1048576"),  # the mean length's solver held 15 GiB
    (["--out", "/proc/croloss"], "out='/proc/croloss' is not valid; a folder that can be written"),
], ids=["one item", "a length beyond a block", "an out that cannot be written"])
def test_sizes_and_outputs_that_cannot_work_are_refused_first(tmp_path, capsys, args, fragment):
    base = {"--name": "s", "--out": str(tmp_path / "out"), "--users": "10", "--items": "5"}
    base.update(dict(zip(args[::2], args[1::2])))
    assert main([part for pair in base.items() for part in pair]) == 2
    assert fragment in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
