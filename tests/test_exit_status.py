"""One mapping from the errors a command line reports to its exit status, used by every one."""
import ast
from pathlib import Path

import pytest

from recbole_croloss.benchmark.compare_records import RecordError
from recbole_croloss.benchmark.grid import GridError
from recbole_croloss.benchmark.store import StoreBusyError
from recbole_croloss.data.import_parsing import MalformedInputError
from recbole_croloss.distributed import DistributedRunError
from recbole_croloss.errors import ConfigError, DatasetFileError, TrainingDiverged, reporting_errors
from recbole_croloss.serving.cli import InputLineError
from recbole_croloss.serving.recommender import UnknownTokenError
from recbole_croloss.settings.spec import DatasetNotFoundError

ROOT = Path(__file__).resolve().parents[1]


def raising(error):
    def body():
        raise error
    return body


@pytest.mark.parametrize("error, status, line", [
    (ConfigError("alpha", -1, "a number >= 0"), 2, "error: alpha=-1"),
    (DatasetNotFoundError("dataset 'x' not found"), 2, "error: dataset 'x' not found"),
    (DatasetFileError("x.inter, line 3: ..."), 2, "error: x.inter, line 3"),
    (MalformedInputError("2 malformed lines"), 2, "error: 2 malformed lines"),
    (UnknownTokenError("token 'z' unknown"), 2, "error: token 'z' unknown"),
    (InputLineError("line 2 is empty"), 2, "error: line 2 is empty"),
    (GridError("grid.yaml: methods: ..."), 2, "error: grid.yaml"),
    (RecordError("a.json: no hits"), 2, "error: a.json"),
    (TrainingDiverged(0, 1, 10, 1, float("nan"), 0.1), 1, "error: training diverged at epoch 0"),
    (DistributedRunError("rank 1 died"), 1, "error: distributed run failed: rank 1 died"),
    (StoreBusyError("store in use by pid 7"), 3, "error: store in use by pid 7"),
])
def test_each_error_a_user_can_act_on_is_one_line_and_a_status(capsys, error, status, line):
    assert reporting_errors(raising(error)) == status
    err = capsys.readouterr().err
    assert err.startswith(line) and err.count("\n") == 1


def test_a_bug_keeps_its_traceback_and_named_extras_are_bad_input(capsys):
    with pytest.raises(KeyError):
        reporting_errors(raising(KeyError("bug")))
    assert reporting_errors(raising(FileNotFoundError("no such file: q.txt")), bad_input=(FileNotFoundError,)) == 2
    assert capsys.readouterr().err == "error: no such file: q.txt\n"
    assert reporting_errors(lambda: 0) == 0


def test_every_command_line_reports_errors_through_the_one_helper():
    mains = []
    for path in sorted((ROOT / "recbole_croloss").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name == "main":
                mains.append((path.relative_to(ROOT).as_posix(), "reporting_errors" in ast.unparse(node)))
    assert len(mains) >= 7 and [path for path, uses in mains if not uses] == []
