"""The fixes RecBole 1.2.1 needs on today's numpy, pandas and torch, all in this one module.

Each fix says what it repairs. Global state is touched only where RecBole itself requires it
(numpy aliases its own code uses), to undo a global switch RecBole flips at import time, to give
RecBole's exhaustive search a numpy whose ``RandomState`` hyperopt can draw from (that module
only), and, while RecBole's loaders are built, to keep its index list a ``range`` and shuffle it
lazily (:func:`lean_loader_indices`, restored on leaving), and to ignore the deprecation
warnings RecBole's own modules trigger (:data:`RECBOLE_DEPRECATIONS`, named one by one).

What is *not* here, because it is avoided rather than patched:

- ``recbole.quick_start`` imports ``ray.tune`` (ray 2.6.3 needs ``pkg_resources`` and numpy < 2):
  this project never imports it and builds the flow from ``recbole.config``, ``recbole.data``,
  ``recbole.trainer`` and ``recbole.utils``.
- pandas 3 (copy-on-write) turns RecBole's chained ``df[col].fillna(..., inplace=True)`` into a
  silent no-op and breaks ``token_seq`` fields (``Series.agg(len)``): ``setup.py`` requires
  ``pandas<3`` and :func:`check_versions` refuses to run on a pandas 3 that slipped in.
- ``recbole.utils.get_model`` answers an unknown name with an unrelated lightgbm import error:
  :func:`recbole_croloss.glue.get_model` gives a clear error listing the known models.
- RecBole 1.2.1's checkpoints pickle its whole Config, which torch >= 2.6's default
  ``torch.load`` refuses: the plugin's trainer (:mod:`recbole_croloss.glue.trainer`) saves its
  own checkpoint format of tensors and plain values.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import os
import types
import warnings

import numpy as np
import torch
from recbole.config import Config

#: numpy aliases RecBole 1.2.1's own code uses (removed in numpy 1.24; np.bool and np.long
#: came back in numpy 2, np.float did not): evaluator/metrics.py uses np.float and np.bool,
#: model/layers.py and model/abstract_recommender.py use np.long (feature-aware models).
_NUMPY_ALIASES = {"float": float, "bool": bool, "long": np.int_}


def restore_numpy_aliases() -> None:
    """Fix: RecBole's metrics use ``np.float``/``np.bool``/``np.long``; restore only those missing."""
    for name, value in _NUMPY_ALIASES.items():
        if name not in np.__dict__:
            setattr(np, name, value)


def check_versions() -> None:
    """Fix: stop early, with the reason, on a pandas that silently corrupts RecBole's data."""
    import pandas as pd

    if int(pd.__version__.split(".")[0]) >= 3:
        raise RuntimeError(
            f"pandas {pd.__version__} is installed, but RecBole 1.2.1 needs pandas < 3 (pandas 3's "
            "copy-on-write turns its chained fillna(inplace=True) into a no-op and breaks "
            "token_seq fields). Run: pip install 'pandas<3'")


def import_sequential_models():
    """Import ``recbole.model.sequential_recommender`` without leaving anomaly detection on.

    Fix: ``sequential_recommender/sine.py`` calls ``torch.autograd.set_detect_anomaly(True)`` at
    import, for the whole process, which makes every epoch of every model 1.4-3.4x slower.
    The switch is put back to what it was before the import.
    """
    was_enabled = torch.is_anomaly_enabled()
    module = importlib.import_module("recbole.model.sequential_recommender")
    torch.autograd.set_detect_anomaly(was_enabled)
    return module


def make_run_dirs(config) -> None:
    """Fix: RecBole creates ``./log/<model>`` and ``checkpoint_dir`` with a check-then-create
    (``ensure_dir``), which fails (FileExistsError) when the ranks of a distributed run start
    together; create them up front, race-free."""
    os.makedirs(os.path.join(".", "log", str(config["model"])), exist_ok=True)
    os.makedirs(config["checkpoint_dir"], exist_ok=True)


#: Deprecation warnings RecBole 1.2.1's own code triggers on today's pandas and torch, by name:
#: ``(category, the start of the message, why a user can ignore it)``. Each is printed on every
#: run, in the middle of the console, and asks a change of RecBole's code, not of the user's.
RECBOLE_DEPRECATIONS = {
    "pandas_chained_fillna": (
        FutureWarning, "A value is trying to be set on a copy of a DataFrame or Series through chained assignment",
        "Dataset._fill_nan calls feat[field].fillna(..., inplace=True), which pandas 3 turns into a "
        "no-op; pandas 2 still fills the values, and check_versions refuses pandas 3"),
    "torch_cuda_amp_grad_scaler": (
        FutureWarning, r"`torch\.cuda\.amp\.GradScaler\(args\.\.\.\)` is deprecated",
        "Trainer._train_epoch builds torch.cuda.amp.GradScaler, the old name of "
        "torch.amp.GradScaler('cuda'): the same scaler, disabled unless enable_scaler is set"),
}


def silence_recbole_deprecations() -> None:
    """Fix: ignore the :data:`RECBOLE_DEPRECATIONS` where RecBole's own modules trigger them
    (the same warning from any other code is still shown)."""
    for category, message, _ in RECBOLE_DEPRECATIONS.values():
        warnings.filterwarnings("ignore", message=message, category=category, module=r"recbole\.")


class CompatConfig(Config):
    """RecBole's Config with its numpy-2 crash fixed, and its deprecation warnings silenced."""

    def compatibility_settings(self):
        # Fix: RecBole's version aliases np.float_, np.complex_ and np.unicode_, which numpy 2
        # removed (AttributeError before any config is read); restore only what RecBole uses.
        restore_numpy_aliases()
        silence_recbole_deprecations()  # a config comes before any data or trainer is built

    def _init_device(self):
        # Fix: RecBole 1.2.1 documents ``use_gpu`` but reads only ``gpu_id``, so a run or a reload
        # given ``use_gpu: False`` still went to the GPU where one exists. False means the CPU.
        if self.final_config_dict.get("use_gpu") is False:
            self.final_config_dict["gpu_id"] = ""
        super()._init_device()


class _GeneratorSeededNumpy(types.ModuleType):
    """numpy, except that ``random.RandomState(seed)`` makes a ``numpy.random.Generator``."""

    def __init__(self):
        super().__init__("numpy")
        self.random = types.SimpleNamespace(RandomState=np.random.default_rng)

    def __getattr__(self, name):
        return getattr(np, name)


def hyperopt_draws_with_generators() -> bool:
    """Whether the installed hyperopt (>= 0.2.7) draws with ``Generator.integers``; False
    without hyperopt."""
    try:
        version = importlib.metadata.version("hyperopt")
    except importlib.metadata.PackageNotFoundError:
        return False
    numbers = [int(part) if part.isdigit() else 0 for part in version.split(".")[:3]]
    return tuple(numbers + [0] * (3 - len(numbers))) >= (0, 2, 7)


def fix_exhaustive_search() -> None:
    """Fix: ``HyperTuning(algo="exhaustive")`` seeds hyperopt's sampling with
    ``np.random.RandomState``, which hyperopt >= 0.2.7 cannot draw from (``'RandomState' object
    has no attribute 'integers'``; RecBole issue #1868, open for 1.2.1). Its module is given a
    numpy whose ``RandomState(seed)`` is a ``Generator``; nothing else changes, and nothing
    happens with an older hyperopt or none."""
    if not hyperopt_draws_with_generators():
        return
    hyper_tuning = importlib.import_module("recbole.trainer.hyper_tuning")
    if not isinstance(hyper_tuning.np, _GeneratorSeededNumpy):
        hyper_tuning.np = _GeneratorSeededNumpy()


#: Indices a shuffled epoch turns into Python ints at a time (``LazyRandomSampler``).
SHUFFLE_CHUNK = 1 << 16


class LazyRandomSampler(torch.utils.data.RandomSampler):
    """torch's ``RandomSampler`` yielding the same indices from the same generator, a chunk of
    Python ints at a time instead of a list of all ``n`` (``randperm(n).tolist()``: 40 B a
    sample, 2.7 GB an epoch at Taobao's 68M training samples)."""

    def __iter__(self):
        if self.replacement or self.generator is None:
            yield from super().__iter__()
            return
        n = len(self.data_source)
        for _ in range(self.num_samples // n):
            yield from _chunked(torch.randperm(n, generator=self.generator))
        # torch draws one more permutation for the remainder, even an empty one
        yield from _chunked(torch.randperm(n, generator=self.generator)[: self.num_samples % n])


def _chunked(indices: torch.Tensor):
    for start in range(0, len(indices), SHUFFLE_CHUNK):
        yield from indices[start:start + SHUFFLE_CHUNK].tolist()


@contextlib.contextmanager
def lean_loader_indices():
    """Fix, for the RecBole loaders built inside it: RecBole 1.2.1's ``AbstractDataLoader``
    hands torch ``list(range(n))`` as the dataset of indices it batches (a Python int per
    sample, 2.7 GB at Taobao's size) and torch's ``RandomSampler`` shuffles it with one list an
    epoch. Inside, that module's ``list`` keeps a ``range`` as it is and torch's loader shuffles
    with :class:`LazyRandomSampler`: the same batches in the same order, in O(1) and
    O(chunk) memory. Both names are put back on leaving."""
    from recbole.data.dataloader import abstract_dataloader
    from torch.utils.data import dataloader

    patches = ((abstract_dataloader, "list", _range_as_is), (dataloader, "RandomSampler", LazyRandomSampler))
    saved = [(module, name, module.__dict__.get(name)) for module, name, _ in patches]
    for module, name, value in patches:
        setattr(module, name, value)
    try:
        yield
    finally:
        for module, name, value in saved:
            if value is None:
                delattr(module, name)
            else:
                setattr(module, name, value)


def _range_as_is(values):
    return values if isinstance(values, range) else list(values)
