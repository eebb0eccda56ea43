"""``alpha: auto`` end to end: docs/tuning.md's "Pick alpha for N" command, as written, on a slice of
ml-100k with a budget of 3 epochs and a first rung of 1 (the only keys the test adds, with
where files go). Its record holds the search; the halving kept exactly the best of each rung; the
winner's record is exactly that of a plain run with the chosen alpha and kernel; only the
winner was tested and only its checkpoints remain."""
import glob
import json
import math
import os
import re
import shlex
import subprocess
import sys

import pytest

from tests.conftest import TINY
from tests.doc_blocks import page_section

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: What the test adds to the docs' command: a slice of ml-100k, 3 epochs, 1 before the first
#: cut; INFO, for the log lines.
SMALL = {**TINY, "epochs": 3, "state": "INFO"}


def readme_command() -> list[str]:
    """The docs' command, as its words."""
    section = page_section("docs/tuning.md", "Pick alpha for N")
    return shlex.split(re.search(r"^python run_recbole_croloss\.py .*$", section, flags=re.M).group(0))


def cli_run(folder, words: list[str], **settings) -> dict:
    """Run ``words`` (``python run_recbole_croloss.py ...``) in ``folder`` with ``settings``
    added, on one thread (as both runs compared here are); its record."""
    folder.mkdir()
    command = [sys.executable, os.path.join(ROOT, words[1]), *words[2:],
               *[f"--{k}={v}" for k, v in {**SMALL, **settings}.items()],
               f"--checkpoint_dir={folder / 'saved'}", f"--record={folder / 'record.json'}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": ROOT}
    proc = subprocess.run(command, cwd=folder, capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(folder / "record.json") as fh:
        return {**json.load(fh), "stdout": proc.stdout}


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """The docs' command, and a plain run with the alpha and kernel it chose."""
    root = tmp_path_factory.mktemp("alpha_auto")
    record = cli_run(root / "search", readme_command(), alpha_search_epochs=1)
    chosen = record["alpha_search"]["chosen"]
    plain = cli_run(root / "plain", ["python", "run_recbole_croloss.py", "--model=TwoTower"], loss="croloss",
                    alpha=chosen["alpha"], kernel=chosen["kernel"], valid_metric="Recall@100")
    return record, plain, root / "search"


def test_the_record_holds_the_search(searched):
    record, _, _ = searched
    search = record["alpha_search"]
    assert (search["target_n"], search["metric"], search["alpha_grid"], search["kernels"]) == \
        (100, "recall@100", [0.8, 1.2], ["sigmoid", "softplus"])
    assert [c["label"] for c in search["candidates"]] == [
        "kernel=sigmoid, alpha=0.8", "kernel=sigmoid, alpha=1.2", "kernel=softplus, alpha=0.8",
        "kernel=softplus, alpha=1.2"]
    assert [(r["budget_epochs"], len(r["scores"]), len(r["kept"])) for r in search["rungs"]] == [(1, 4, 2), (2, 2, 1)]
    assert record["config"]["valid_metric"] == "Recall@100"
    assert (record["config"]["alpha"], record["config"]["kernel"]) == (search["chosen"]["alpha"], search["chosen"]["kernel"])


def test_the_chosen_alpha_is_the_best_of_the_last_rung(searched):
    search = searched[0]["alpha_search"]
    last = search["rungs"][-1]["scores"]
    assert search["chosen"]["label"] == max(last, key=last.get) == search["rungs"][-1]["kept"][0]


def test_each_rung_keeps_its_best_half_and_drops_the_rest(searched):
    search = searched[0]["alpha_search"]
    by_label = {c["label"]: c for c in search["candidates"]}
    for index, rung in enumerate(search["rungs"]):
        ranked = sorted(rung["scores"], key=lambda label: -rung["scores"][label])
        assert sorted(rung["kept"]) == sorted(ranked[:math.ceil(len(ranked) / 2)])
        for label, score in rung["scores"].items():
            candidate = by_label[label]
            # the rung's score is the best validation Recall@100 within the rung's budget
            assert score == max(v for epoch, v in candidate["valid_curve"] if epoch < rung["budget_epochs"])
            if label not in rung["kept"]:
                assert candidate["dropped_at_rung"] == index
                assert candidate["epochs_run"] == len(candidate["valid_curve"]) == rung["budget_epochs"]
    winner = by_label[search["chosen"]["label"]]
    assert winner["dropped_at_rung"] is None and winner["epochs_run"] == 3


def test_the_cost_counts_every_candidate_s_epochs(searched):
    search = searched[0]["alpha_search"]
    cost = search["cost"]
    assert cost["epochs"] == 4 * 1 + 2 * (2 - 1) + (3 - 2) == sum(c["epochs_run"] for c in search["candidates"])
    assert cost["winner_epochs"] == 3 and cost["epochs_vs_one_run"] == round(7 / 3, 3)
    assert cost["steps"] == sum(c["steps_run"] for c in search["candidates"]) == 7 * cost["winner_steps"] // 3
    assert cost["train_wall_s"] == pytest.approx(sum(c["train_wall_s"] for c in search["candidates"]), abs=1e-2)
    assert cost["wall_vs_one_run"] > 1 and cost["wall_s"] >= cost["train_wall_s"] * 0.99


def test_the_winner_is_exactly_a_plain_run_with_its_alpha(searched):
    record, plain, _ = searched
    assert record["test_result"] == plain["test_result"]
    assert [e["valid_result"] for e in record["history"]] == [e["valid_result"] for e in plain["history"]]
    assert record["best_epoch"] == plain["best_epoch"]


def test_only_the_winner_is_tested_and_keeps_its_checkpoints(searched):
    record, _, folder = searched
    slug = record["alpha_search"]["chosen"]["label"].replace("kernel=", "").replace(", alpha=", "-alpha")
    model_file = record["files"]["model"]
    assert model_file.endswith(f"-{slug}.pth") and os.path.isfile(model_file)
    assert sorted(glob.glob(str(folder / "saved" / "*.pth"))) == sorted([model_file, model_file[:-4] + "-last.pth"])
    with open(record["files"]["log"]) as fh:
        log = fh.read()
    assert log.count("test result (protocol") == 1
    assert "alpha search, rung 2 of 2 (to epoch 2), validation recall@100:" in log
    summary = f"alpha: auto chose alpha={record['config']['alpha']:g} (kernel {record['config']['kernel']}) " \
              "for Recall@100 out of 4 candidates in 2 rungs"
    assert summary in log and summary in record["stdout"]  # the log, and what the CLI prints


def test_a_diverging_candidate_is_dropped_and_a_search_where_all_diverge_fails(tiny):
    """With the exp kernel, alpha < 1 and scores this large the loss overflows at the first batch
    (alpha 1 is log-sum-exp: finite); saved=False leaves no checkpoints."""
    from recbole_croloss.errors import TrainingDiverged
    from recbole_croloss.quick_start import run

    settings = {**tiny, "alpha": "auto", "target_n": 100, "alpha_search_epochs": 1, "kernel": "exp", "scale": 1e6}
    search = run("TwoTower", "ml-100k", config_dict={**settings, "alpha_grid": [0.0, 1.0]}, saved=False)["alpha_search"]
    diverged, survivor = search["candidates"]
    assert diverged["stopped"] == "diverged" and "overflowed" in diverged["error"] and diverged["dropped_at_rung"] == 0
    assert search["rungs"] == [{"rung": 0, "budget_epochs": 1, "scores": {"alpha=0": None, "alpha=1": survivor["best_valid"]},
                                "kept": ["alpha=1"]}]
    assert search["chosen"]["alpha"] == 1.0 and not os.listdir(tiny["checkpoint_dir"])
    with pytest.raises(TrainingDiverged, match="overflowed"):
        run("TwoTower", "ml-100k", config_dict={**settings, "alpha_grid": [0.0, 0.5]}, saved=False)
