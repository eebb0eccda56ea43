"""Shared settings: a slice of the bundled ml-100k that trains an epoch in seconds on 2 cores;
and a check that no test draws from a global random generator it has not seeded."""
import functools
import os
import random

import numpy as np
import pytest
import torch

#: Users with at most 50 interactions, history 20, small vectors, one epoch, quiet.
TINY = {
    "epochs": 1,
    "MAX_ITEM_LIST_LENGTH": 20,
    "user_inter_num_interval": "[0,50]",
    "embedding_size": 16,
    "hidden_size": 16,
    "train_batch_size": 256,
    "eval_batch_size": 4096,
    "show_progress": False,
    "state": "WARNING",
}


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """A copy of TINY; RecBole's log/ and saved/ folders go to a temporary directory."""
    monkeypatch.chdir(tmp_path)
    return {**TINY, "checkpoint_dir": str(tmp_path / "saved")}


#: A synthetic dataset's settings: a run of two epochs trains and validates in a few seconds.
SYNTHETIC = {
    "epochs": 2,
    "MAX_ITEM_LIST_LENGTH": 10,
    "embedding_size": 8,
    "train_batch_size": 128,
    "neg_per_pos": 2,
    "topk": [10, 100],
    "valid_metric": "Recall@10",
    "show_progress": False,
    "state": "WARNING",
}


@pytest.fixture(scope="session")
def synthetic_data(tmp_path_factory):
    """The data_path of ``syn``: 300 users, 200 items, about 12 interactions each."""
    from recbole_croloss.data.synthetic import generate

    folder = tmp_path_factory.mktemp("synthetic")
    generate("syn", str(folder), users=300, items=200, mean_length=12, max_length=30, interests=5, seed=0)
    return str(folder)


@pytest.fixture
def synthetic(synthetic_data, tmp_path, monkeypatch):
    """SYNTHETIC with ``syn``'s data_path; RecBole's log/ and saved/ folders go to tmp_path."""
    monkeypatch.chdir(tmp_path)
    return {**SYNTHETIC, "data_path": synthetic_data, "checkpoint_dir": str(tmp_path / "saved")}


#: TINY on the users with at most 25 interactions and histories of 25: every user's input
#: sequence is its whole history. Each run exports a flat faiss index of its items.
WHOLE_HISTORY = {**TINY, "user_inter_num_interval": "[0,25]", "MAX_ITEM_LIST_LENGTH": 25, "faiss_index": "flat"}


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """``trained_run(model)``: the record of a one-epoch WHOLE_HISTORY run of ``model``, trained
    once per session in a folder of its own (its checkpoint in ``saved/``, its index in ``index/``)."""
    from recbole_croloss.quick_start import run

    records = {}

    def train(model: str) -> dict:
        if model not in records:
            folder = tmp_path_factory.mktemp(model)
            with pytest.MonkeyPatch.context() as patch:
                patch.chdir(folder)
                records[model] = run(model, "ml-100k", config_dict={
                    **WHOLE_HISTORY, "checkpoint_dir": str(folder / "saved"), "faiss_export": str(folder / "index")})
        return records[model]

    return train


# --- Global random generators -------------------------------------------------------------
# A test that draws from torch's, numpy's or Python's global generator without seeding it gives
# a different result in every run, and one that depends on which tests ran before it. Each test
# (with its function-scoped fixtures) and each wider-scoped fixture's setup is a *window*: the
# three generators' states are taken when it opens; a generator whose state has moved when the
# window closes, or when it is first seeded inside the window, was drawn from unseeded, and the
# test fails (a wider-scoped fixture's errors the first test that sets it up). Seeding is seen by
# wrapping the seeding functions (RecBole's init_seed, and so prepare_run/run, call them): after
# a seed, draws follow from it, as the library's samplers do under a run's seed. RecBole's
# loaders shuffle with a generator of their own; a plain DataLoader without ``generator=`` draws
# its workers' base seed from torch's global one on every ``iter``, so it counts as a draw.
# Subprocesses, and CUDA's generators, are not watched. RNG_CHECK=0 turns the check off.

_CHECK = os.environ.get("RNG_CHECK", "1") != "0"

#: Each global generator: how to read its state, how to compare two, how to seed it in a test.
_GENERATORS = {
    "torch": (torch.get_rng_state, torch.equal,
              "torch.manual_seed(k) at the test's start, or pass torch.Generator().manual_seed(k) to the draw"),
    "numpy": (np.random.get_state, lambda a, b: a[0] == b[0] and np.array_equal(a[1], b[1]) and a[2:] == b[2:],
              "np.random.seed(k) at the test's start, or draw from np.random.default_rng(k)"),
    "random": (random.getstate, lambda a, b: a == b,
               "random.seed(k) at the test's start, or draw from random.Random(k)"),
}

#: (module, attribute, generator): the seeding functions, wrapped while the session runs.
_SEEDERS = [(torch, "manual_seed", "torch"), (torch.random, "manual_seed", "torch"),
            (np.random, "seed", "numpy"), (random, "seed", "random")]


class _Window:
    """The generators' states when a test or fixture began, and which it has seeded since."""

    def __init__(self, what: str):
        self.what = what
        self.start = {name: read() for name, (read, _, _) in _GENERATORS.items()}
        self.seeded: set[str] = set()
        self.unseeded: dict[str, str] = {}  # generator -> when its draw was found
        self.reported = False

    def moved(self, name: str) -> bool:
        read, same, _ = _GENERATORS[name]
        return not same(read(), self.start[name])

    def seeding(self, name: str) -> None:
        """Called before ``name`` is seeded: draws until now were unseeded."""
        if name not in self.seeded and name not in self.unseeded and self.moved(name):
            self.unseeded[name] = "before the test seeded it"
        self.seeded.add(name)

    def close(self) -> str | None:
        """The failure message, or None when every draw followed a seed."""
        for name in _GENERATORS:
            if name not in self.seeded and name not in self.unseeded and self.moved(name):
                self.unseeded[name] = "and never seeded it"
        if not self.unseeded:
            return None
        lines = [f"{self.what} drew from the global {name} generator {when}: seed it with {_GENERATORS[name][2]}"
                 for name, when in self.unseeded.items()]
        return "unseeded randomness:\n" + "\n".join(lines)


_open_windows: list[_Window] = []


def _seeder(original, name):
    @functools.wraps(original)
    def seed(*args, **kwargs):
        # A seed of None (numpy's and random's default) reseeds from the OS: not a seed.
        if (args[0] if args else kwargs.get("seed", kwargs.get("a"))) is not None:
            for window in _open_windows:
                window.seeding(name)
        return original(*args, **kwargs)
    return seed


def pytest_configure(config):
    if _CHECK:
        config._rng_seeders = [(module, attr, getattr(module, attr)) for module, attr, _ in _SEEDERS]
        for module, attr, name in _SEEDERS:
            setattr(module, attr, _seeder(getattr(module, attr), name))


def pytest_unconfigure(config):
    for module, attr, original in getattr(config, "_rng_seeders", []):
        setattr(module, attr, original)


@pytest.fixture(autouse=True)
def global_generators_seeded(request):
    """Opens the test's window: the test fails when it, or a function-scoped fixture of it, drew
    from a global generator that it had not seeded (see the section's comment)."""
    if not _CHECK:
        yield
        return
    window = request.node._rng_window = _Window(request.node.nodeid)
    _open_windows.append(window)
    try:
        yield
    finally:
        _open_windows.remove(window)
    message = None if window.reported else window.close()
    if message:  # drawn only in a fixture's teardown, after the test's own check passed
        pytest.fail(message, pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """Checks the window when the test's body ends, so that the test itself is the failure."""
    window = getattr(item, "_rng_window", None)
    try:
        result = yield
    except BaseException:
        if window is not None:
            window.reported = True  # the test failed already; its draws are beside the point
        raise
    message = window and window.close()
    if message:
        window.reported = True
        pytest.fail(message, pytrace=False)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef, request):
    """A session-, module- or class-scoped fixture is set up before the test's window opens, once
    for the tests that share it: its setup is a window of its own."""
    if not _CHECK or fixturedef.scope == "function":
        return (yield)
    window = _Window(f"fixture {fixturedef.argname!r} ({fixturedef.scope}-scoped)")
    _open_windows.append(window)
    try:
        result = yield
    finally:
        _open_windows.remove(window)
    message = window.close()
    if message:
        pytest.fail(message, pytrace=False)
    return result
