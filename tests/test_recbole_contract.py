"""RecBole's quick-start contract: ``recbole_croloss.run`` returns what ``run_recbole`` returns,
and RecBole's own ``HyperTuning`` (hyperopt's exhaustive and random search) tunes the plugin's
models and losses through ``recbole_croloss.objective_function``; the exhaustive search is the
README's example, on the synthetic dataset."""
import contextlib
import io
import subprocess
import sys

import pytest
import yaml

import recbole_croloss
from recbole_croloss.errors import ConfigError
from recbole_croloss.recbole_contract import model_and_dataset
from tests.doc_blocks import ROOT, code_blocks

hyperopt = pytest.importorskip("hyperopt")
from recbole.trainer import HyperTuning  # noqa: E402

#: RecBole 1.2.1's run_recbole result, and what HyperTuning reads of objective_function's.
RUN_RECBOLE_KEYS = {"best_valid_score", "valid_score_bigger", "best_valid_result", "test_result"}


@pytest.fixture
def fixed_file(synthetic, tmp_path):
    """A fixed config file as RecBole's tuning takes it: model and dataset in it."""
    path = tmp_path / "fixed.yaml"
    path.write_text(yaml.safe_dump({"model": "TwoTower", "dataset": "syn", **synthetic, "epochs": 1}))
    return str(path)


def test_importing_the_package_loads_neither_torch_nor_recbole():
    probe = ("import sys, recbole_croloss; print(sorted(m for m in ('torch', 'recbole', 'optuna') if m in sys.modules)); "
             "print(recbole_croloss.objective_function.__module__)")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:2] == ["[]", "recbole_croloss.recbole_contract"]


def test_model_and_dataset_come_from_the_arguments_then_config_dict_then_files(tmp_path):
    path = tmp_path / "fixed.yaml"
    path.write_text("model: TwoTower\ndataset: syn\n")
    assert model_and_dataset(None, None, [str(path)], None) == ("TwoTower", "syn")
    assert model_and_dataset(None, None, [str(path)], {"model": "ComiRec"}) == ("ComiRec", "syn")
    assert model_and_dataset("MIND", "ml-100k", [str(path)], {"model": "ComiRec"}) == ("MIND", "ml-100k")
    with pytest.raises(ConfigError, match="model=None is not valid; name the model"):
        model_and_dataset(None, "ml-100k", None, {"epochs": 1})


def test_the_readme_exhaustive_search_tries_each_plugin_loss(synthetic, tmp_path):
    """The README's block as written, with its fixed file's ml-100k settings made tiny."""
    (block,) = code_blocks("docs/tuning.md", "Hyper-parameter search", "python")
    fixed = {"model": "TwoTower", "dataset": "syn", **synthetic, "epochs": 1, "valid_metric": "Recall@100"}
    written = 'f.write("model: TwoTower\\ndataset: ml-100k\\nepochs: 5\\nvalid_metric: Recall@100\\n")'
    assert written in block
    block = block.replace(written, f"f.write({yaml.safe_dump(fixed)!r})")
    scope, printed = {}, io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(block, scope)
    tuning = scope["tuning"]
    results = tuning.params2result
    assert sorted(results) == ["loss:bpr", "loss:croloss"]
    for params, result in results.items():
        assert RUN_RECBOLE_KEYS <= set(result) and result["model"] == "TwoTower"
        assert result["loss"] == params.split(":")[1] and result["valid_score_bigger"] is True
        assert result["best_valid_score"] == result["best_valid_result"]["recall@100"]
    best = max(results, key=lambda p: results[p]["best_valid_score"])
    assert tuning.params2str(tuning.best_params) == best
    assert str(results[best]["test_result"]) in printed.getvalue()


def test_random_search_samples_alpha_into_the_plugin_s_loss(fixed_file):
    tuning = HyperTuning(recbole_croloss.objective_function, algo="random", max_evals=2,
                         params_dict={"uniform": {"alpha": [0.5, 1.5]}}, fixed_config_file_list=[fixed_file])
    with contextlib.redirect_stdout(io.StringIO()):
        tuning.run()
    assert len(tuning.params2result) == 2
    for params, result in tuning.params2result.items():
        alpha = float(params.split(":")[1])
        assert 0.5 <= alpha <= 1.5 and result["config"]["alpha"] == alpha and result["loss"] == "croloss"
    # each trial logged to its own file (the previous trial's handlers were closed)
    assert len({result["files"]["log"] for result in tuning.params2result.values()}) == 2


def test_run_returns_run_recbole_s_result_inside_the_record(synthetic):
    result = recbole_croloss.run(config_dict={"model": "TwoTower", "dataset": "syn", **synthetic, "epochs": 1},
                                 saved=False)
    assert RUN_RECBOLE_KEYS <= set(result) and result["model"] == "TwoTower" and result["dataset"] == "syn"
    assert result["best_valid_score"] == result["best_valid_result"]["recall@10"]
    assert result["test_weights"] == "last" and result["files"]["model"] is None
