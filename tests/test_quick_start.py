"""The main prepared end to end: real RecBole config, ml-100k, trainer and full-ranking evaluator."""
import json
import os
import subprocess
import sys

import pytest
import torch

from recbole_croloss.errors import ConfigError
from recbole_croloss.quick_start import parse_args, prepare_run, run
from recbole_croloss.settings.spec import DatasetNotFoundError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_run_writes_metrics_and_config_json(tiny):
    result = run("GRU4Rec", "ml-100k", config_dict={**tiny, "loss": "croloss", "alpha": 1.2})
    for metric in ("recall", "ndcg", "hit", "mrr"):
        for k in (50, 100, 200, 500):
            assert 0.0 <= result["test_result"][f"{metric}@{k}"] <= 1.0
    # Leave-one-out: one target per user, so Recall@N is Hit@N.
    assert result["test_result"]["recall@50"] == result["test_result"]["hit@50"]
    with open(result["files"]["result"]) as f:
        saved = json.load(f)
    assert saved["config"]["alpha"] == 1.2 and saved["loss"] == "croloss"
    assert saved["test_result"] == pytest.approx(result["test_result"])
    assert saved["protocol"] == "loo"
    assert not [n for n in os.listdir(os.path.dirname(result["files"]["result"])) if n.startswith(".tmp-")]


def test_the_record_is_also_written_where_the_caller_asks(tiny, tmp_path):
    record_file = tmp_path / "records" / "cell.json"
    record_file.parent.mkdir()
    result = run("TwoTower", "ml-100k", config_dict={**tiny, "loss": "bpr"}, record_file=str(record_file))
    with open(record_file) as f:
        saved = json.load(f)
    assert saved == json.loads(json.dumps(result, default=str)) and saved["loss"] == "bpr"
    assert sorted(n.name for n in record_file.parent.iterdir()) == ["cell.curves.png", "cell.hits.npz", "cell.json"]
    assert saved["files"]["curves"] == str(record_file.parent / "cell.curves.png")


@pytest.mark.parametrize("model, settings", [("TwoTower", {}), ("GRU4Rec", {"loss": "ce"}),
                                             ("TwoTower", {"protocol": "paper"})])
def test_per_user_hits_reload_and_give_the_recorded_recall(tiny, tmp_path, model, settings):
    from recbole_croloss.io import load_per_user_hits

    record_file = tmp_path / "cell.json"
    result = run(model, "ml-100k", config_dict={**tiny, **settings}, record_file=str(record_file))
    for path in (result["files"]["per_user_hits"], tmp_path / "cell.hits.npz"):
        kept = load_per_user_hits(str(path))
        assert len(set(kept["users"].tolist())) == len(kept["users"]) > 0 and (kept["users"] > 0).all()
        for j, k in enumerate(kept["ks"].tolist()):
            mean = (kept["hits"][:, j] / kept["targets"]).mean()
            assert round(float(mean), 4) == result["test_result"][f"recall@{k}"]


def test_ce_special_case_equals_recbole_cross_entropy_batch_by_batch(tiny):
    """exp kernel, alpha 1, every other item once, unbiased rank, dot score = RecBole's CE."""

    def batch_losses(settings):
        prepared = prepare_run("GRU4Rec", "ml-100k", config_dict={**tiny, **settings})
        losses = []

        def record(interaction):
            loss = prepared.adapter.calculate_loss(interaction)
            losses.append(loss.item())
            return loss

        prepared.trainer._train_epoch(prepared.train_data, 0, loss_func=record)
        return losses

    ce = batch_losses({"loss": "ce"})
    cro = batch_losses({"loss": "croloss", "kernel": "exp", "alpha": 1.0, "negatives": "full",
                        "rank_estimator": "unbiased", "score": "dot", "scale": 1.0})
    assert len(ce) == len(cro) > 5
    assert cro == pytest.approx(ce, abs=1e-5, rel=0)


def test_cosine_score_reaches_evaluation(tiny):
    prepared = prepare_run("GRU4Rec", "ml-100k", config_dict={**tiny, "loss": "croloss", "score": "cosine", "scale": 10.0})
    interaction = next(iter(prepared.test_data))[0].to(prepared.config["device"])
    prepared.adapter.eval()
    with torch.no_grad():
        scores = prepared.adapter.full_sort_predict(interaction)
        user = prepared.adapter.model.forward(interaction["item_id_list"], interaction["item_length"])
        table = prepared.adapter.model.item_embedding.weight
        expected = 10.0 * torch.nn.functional.normalize(user, dim=-1) @ torch.nn.functional.normalize(table, dim=-1).T
        dot = prepared.adapter.model.full_sort_predict(interaction)
    assert scores.shape == (len(user), prepared.adapter.model.n_items)
    torch.testing.assert_close(scores, expected)
    assert scores.abs().max() <= 10.0 + 1e-4
    assert not torch.allclose(scores, dot)  # the model's own dot product is not what ranks


def test_offline_dataset_error_names_where_it_looked(tiny, tmp_path):
    with pytest.raises(DatasetNotFoundError, match="no-such-data") as err:
        run("GRU4Rec", "no-such-data", config_dict={**tiny, "data_path": str(tmp_path / "data")})
    assert str(tmp_path / "data") in str(err.value) and "never downloads" in str(err.value)


@pytest.mark.parametrize("key, value, fragment", [
    ("loss", "crolos", "sampled_softmax"),
    ("kernel", "sigmod", "softplus"),
    ("lambda_kernel", "gauss", "step"),
    ("alpha", -0.5, ">= 0"),
    ("alpha", "high", ">= 0"),
    ("margin", -1.0, ">= 0"),
    ("negatives", "popular", "uniform"),
    ("neg_per_pos", 0, ">= 1"),
    ("neg_per_pos", 2.5, ">= 1"),
    ("score", "euclid", "cosine"),
    ("scale", 0.0, "> 0"),
    ("rank_estimator", "exact", "unbiased"),
    ("mask_accidental_hits", "yes", "true, false"),
])
def test_bad_setting_stops_before_training(tiny, key, value, fragment):
    with pytest.raises(ConfigError) as err:
        prepare_run("GRU4Rec", "ml-100k", config_dict={**tiny, "loss": "croloss_lambda", key: value})
    message = str(err.value)
    assert key in message and repr(value) in message and fragment in message
    assert not os.path.exists("log")  # stopped before the logger or any data


def test_step_as_main_kernel_and_ce_with_cosine_are_refused(tiny):
    with pytest.raises(ConfigError, match="kernel='step'"):
        prepare_run("GRU4Rec", "ml-100k", config_dict={**tiny, "kernel": "step"})
    with pytest.raises(ConfigError, match="score"):
        prepare_run("GRU4Rec", "ml-100k", config_dict={**tiny, "loss": "ce", "score": "cosine"})
    with pytest.raises(ConfigError, match="fixes alpha"):
        prepare_run("GRU4Rec", "ml-100k", config_dict={**tiny, "loss": "bpr", "alpha": 1.2})


def test_unknown_model_lists_known_models(tiny):
    with pytest.raises(ConfigError, match="GRU4Rec.*SASRec|SASRec.*GRU4Rec"):
        prepare_run("GRU4Recc", "ml-100k", config_dict=tiny)


def test_cli_arguments_are_parsed_like_recbole():
    model, dataset, files, cmd, record = parse_args(["--model=SASRec", "--loss=croloss", "--alpha=1.2",
                                                     "--config_files=a.yaml b.yaml", "--record=r.json"])
    assert (model, dataset, files, record) == ("SASRec", "ml-100k", ["a.yaml", "b.yaml"], "r.json")
    assert cmd == {"loss": "croloss", "alpha": "1.2"}


def test_cli_runs_offline_without_importing_ray(tmp_path):
    """The design card's command, as a user runs it (tiny settings), in a fresh process."""
    args = [f"--{k}={v}" for k, v in {"epochs": 1, "MAX_ITEM_LIST_LENGTH": 20, "user_inter_num_interval": "[0,50]",
                                       "embedding_size": 16, "hidden_size": 16, "show_progress": False}.items()]
    code = ("import runpy, sys; sys.argv = ['run_recbole_croloss.py'] + sys.argv[1:];\n"
            "try:\n    runpy.run_path(%r, run_name='__main__')\n"
            "finally:\n    assert 'ray' not in sys.modules, 'ray was imported'\n" % os.path.join(ROOT, "run_recbole_croloss.py"))
    proc = subprocess.run([sys.executable, "-c", code, "--model=GRU4Rec", "--loss=croloss", "--alpha=1.2", *args],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "recall" in proc.stdout and "@500" in proc.stdout
    assert "config and metrics:" in proc.stdout


def test_cli_bad_value_exits_with_clear_error(tmp_path):
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "run_recbole_croloss.py"), "--loss=nope"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "loss='nope' is not valid" in proc.stderr and "croloss" in proc.stderr


def test_a_log_that_is_not_a_regular_file_gets_no_record_beside_it(tmp_path):
    import logging

    from recbole_croloss.flow.run_log import log_file

    root = logging.getLogger()
    saved = root.handlers[:]
    try:
        root.handlers = [logging.FileHandler(os.devnull)]
        assert log_file() is None  # else the record would be written to /dev/null.json
        root.handlers = [logging.FileHandler(tmp_path / "run.log")]
        assert log_file() == str(tmp_path / "run.log")
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers = saved
