"""benchmarks/code_structure.py on the real tree (size limits, model import, layers) and on a fake
package."""
import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def structure():
    # benchmarks/ is not a package: load the script from its path.
    spec = importlib.util.spec_from_file_location("code_structure", ROOT / "benchmarks" / "code_structure.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_package_module_over_the_line_limit(structure):
    assert structure.long_modules(ROOT) == []


def test_no_function_over_the_line_limit(structure):
    assert structure.long_functions(ROOT) == []


def test_importing_the_models_does_not_load_recbole_trainer():
    probe = ("import sys, recbole_croloss.model; "
             "print(sorted(m for m in sys.modules if m == 'recbole.trainer' or m.startswith('recbole.trainer.')))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_package_s_layers_point_one_way(structure):
    graph = structure.import_graph(ROOT)
    assert "recbole_croloss.glue.adapter" in graph and "recbole_croloss.settings.spec" in graph
    assert structure.layer_violations(graph) == []


def write_package(root, files):
    for relative, text in files.items():
        path = root / "recbole_croloss" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def test_layer_checker_reports_exactly_the_upward_import(structure, tmp_path):
    write_package(tmp_path, {
        "__init__.py": "",
        "errors.py": "",
        "loss/__init__.py": """\
            from ..errors import ConfigError   # layer 0 -> 0: allowed
            from .. import model                # layer 0 -> 1: the violation
            """,
        "model/__init__.py": "",
    })
    graph = structure.import_graph(tmp_path)
    assert graph["recbole_croloss.loss"]["eager"] == {"recbole_croloss.errors", "recbole_croloss.model"}
    assert structure.layer_violations(graph) == [
        "recbole_croloss.loss (layer 0) -> recbole_croloss.model (layer 1), eager"]


def test_layer_checker_lazy_imports_and_recbole_below_the_glue(structure, tmp_path):
    write_package(tmp_path, {
        "__init__.py": "",
        "model/__init__.py": """\
            from recbole.model.abstract_recommender import SequentialRecommender  # allowed
            from recbole.trainer import Trainer                                   # not in a model


            def build():
                from recbole.data import create_dataset  # lazy: allowed
                from ..quick_start import run            # lazy, but still upwards
            """,
        "quick_start.py": "",
    })
    graph = structure.import_graph(tmp_path)
    assert graph["recbole_croloss.model"]["lazy"] == {"recbole_croloss.quick_start"}
    assert graph["recbole_croloss.model"]["external"] == {"recbole"}
    assert structure.layer_violations(graph) == [
        "recbole_croloss.model (layer 1) -> recbole_croloss.quick_start (layer 5), lazy",
        "recbole_croloss.model (layer 1) -> recbole.trainer, eager RecBole import"]


def test_the_package_has_no_import_cycle(structure):
    assert structure.import_cycles(structure.import_graph(ROOT)) == []


def test_cycle_checker_reports_each_loop_once(structure, tmp_path):
    write_package(tmp_path, {
        "__init__.py": "",
        "a.py": "from . import b\n",
        "b.py": "def later():\n    from . import c  # lazy imports close loops too\n",
        "c.py": "from .a import x\n",
        "d.py": "from . import a\n",                 # into the loop, not part of it
        "pkg/__init__.py": "from .inner import y\n",  # a package and its own submodule: no loop
        "pkg/inner.py": "from ..pkg import z\n",
    })
    graph = structure.import_graph(tmp_path)
    assert structure.import_cycles(graph) == [["recbole_croloss.a", "recbole_croloss.b", "recbole_croloss.c"]]


def test_models_read_and_write_no_file():
    """A staged model takes its pretrained weights through ``load_pretrained(state)``; the run
    flow reads the checkpoint (flow/build.load_pretrained)."""
    calls = ("torch.load(", "torch.save(", "open(", "np.load(", "np.save(", "import os")
    found = [f"{path.name}: {call}" for path in sorted((ROOT / "recbole_croloss" / "model").rglob("*.py"))
             for call in calls if call in path.read_text()]
    assert found == []
