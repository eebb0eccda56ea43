"""The suite's check on global random generators (tests/conftest.py) fails what it should: it is
run on a small test file in a pytest of its own, with a copy of this suite's conftest."""
import os
import re
import shutil
import subprocess
import sys

#: Tests whose outcome under the check is their name's prefix: ok_ passes, bad_ fails.
PROBE = '''
import random

import numpy as np
import pytest
import torch


def test_bad_unseeded_torch():
    torch.randn(3)


def test_ok_seeded_torch():
    torch.manual_seed(0)
    torch.randn(3)


def test_ok_own_generator():
    torch.randn(3, generator=torch.Generator().manual_seed(0))
    np.random.default_rng(0).random(2)
    random.Random(0).random()


def test_ok_every_generator_seeded_through_its_module():
    torch.random.manual_seed(1), np.random.seed(1), random.seed(1)
    torch.rand(1), np.random.rand(), random.random()


def test_ok_no_draw():
    assert torch.zeros(2).sum() == 0


def test_bad_drawn_before_the_seed():
    torch.randn(3)
    torch.manual_seed(0)
    torch.randn(3)


def test_bad_unseeded_numpy():
    np.random.rand(2)


def test_bad_unseeded_random():
    random.random()


def test_bad_reseeded_from_the_os():
    random.seed()
    random.random()


def test_bad_numpy_seeded_torch_not():
    np.random.seed(0)
    np.random.rand(2)
    torch.nn.Linear(2, 2)


@pytest.fixture
def layer():
    return torch.nn.Linear(2, 2)


def test_bad_fixture_draws(layer):
    pass


@pytest.fixture
def seeded_layer():
    torch.manual_seed(0)
    return torch.nn.Linear(2, 2)


def test_ok_fixture_seeds(seeded_layer):
    torch.randn(2)


@pytest.fixture(scope="session")
def shared():
    return np.random.rand(3)


def test_errors_first_user_of_drawing_session_fixture(shared):
    pass


def test_ok_later_user_of_session_fixture(shared):
    pass
'''


def _outcomes(tmp_path):
    shutil.copy(os.path.join(os.path.dirname(__file__), "conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "test_probe.py").write_text(PROBE)
    env = {**os.environ, "RNG_CHECK": "1"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", "test_probe.py"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    outcomes = dict((name, what) for what, name in
                    re.findall(r"^(PASSED|FAILED|ERROR) test_probe\.py::(\w+)", done.stdout, re.M))
    return outcomes, done.stdout


def test_the_check_fails_unseeded_draws_and_passes_seeded_ones(tmp_path):
    outcomes, out = _outcomes(tmp_path)
    names = re.findall(r"^def (test_\w+)", PROBE, re.M)
    assert set(outcomes) == set(names), out
    for name in names:
        expected = {"ok": "PASSED", "bad": "FAILED", "errors": "ERROR"}[name.split("_")[1]]
        assert outcomes[name] == expected, f"{name}: {outcomes[name]}\n{out}"
    # Each failure names the generator drawn from, and how to seed it.
    for name, generator in [("unseeded_torch", "torch"), ("unseeded_numpy", "numpy"), ("unseeded_random", "random"),
                            ("numpy_seeded_torch_not", "torch"), ("fixture_draws", "torch")]:
        assert re.search(rf"test_bad_{name} drew from the global {generator} generator and never seeded it", out), out
    assert "test_bad_drawn_before_the_seed drew from the global torch generator before the test seeded it" in out
    assert "fixture 'shared' (session-scoped) drew from the global numpy generator" in out
    assert "numpy_seeded_torch_not drew from the global numpy" not in out
