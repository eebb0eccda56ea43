"""The fixes RecBole 1.2.1 needs on today's numpy, pandas and torch, all in this one module.

Each fix says what it repairs. Global state is touched only where RecBole itself requires it
(numpy aliases its own code uses) or to undo a global switch RecBole flips at import time.

What is *not* here, because it is avoided rather than patched:

- ``recbole.quick_start`` imports ``ray.tune`` (ray 2.6.3 needs ``pkg_resources`` and numpy < 2):
  this project never imports it and builds the flow from ``recbole.config``, ``recbole.data``,
  ``recbole.trainer`` and ``recbole.utils``.
- pandas 3 (copy-on-write) turns RecBole's chained ``df[col].fillna(..., inplace=True)`` into a
  silent no-op and breaks ``token_seq`` fields (``Series.agg(len)``): ``setup.py`` requires
  ``pandas<3`` and :func:`check_versions` refuses to run on a pandas 3 that slipped in.
- ``recbole.utils.get_model`` answers an unknown name with an unrelated lightgbm import error:
  :func:`recbole_croloss.model.get_model` gives a clear error listing the known models.
"""
from __future__ import annotations

import importlib
import os

import numpy as np
import torch
from recbole.config import Config
from recbole.trainer import Trainer

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


class CompatConfig(Config):
    """RecBole's Config with its numpy-2 crash fixed and distributed runs possible on CPUs."""

    def compatibility_settings(self):
        # Fix: RecBole's version aliases np.float_, np.complex_ and np.unicode_, which numpy 2
        # removed (AttributeError before any config is read); restore only what RecBole uses.
        restore_numpy_aliases()

    def _init_device(self):
        # Fix: for a distributed run (``local_rank`` set) RecBole 1.2.1 hard-codes the NCCL
        # backend and a CUDA device, so it cannot run on CPUs; the plugin picks NCCL or Gloo and
        # sets a timeout. RecBole's own CUDA_VISIBLE_DEVICES setting is kept as it is.
        if "local_rank" not in self.final_config_dict:
            return super()._init_device()
        from .distributed import init_process_group

        self.final_config_dict["gpu_id"] = str(self.final_config_dict["gpu_id"])
        if self.final_config_dict["gpu_id"]:
            os.environ["CUDA_VISIBLE_DEVICES"] = self.final_config_dict["gpu_id"]
        init_process_group(self.final_config_dict)


class CompatTrainer(Trainer):
    """RecBole's Trainer whose checkpoints torch >= 2.6 can load back, and which trains
    distributed on CPUs."""

    def __init__(self, config, model):
        if config["single_spec"] or config["device"].type == "cuda":
            super().__init__(config, model)
            if not config["single_spec"]:
                self._share_checkpoint_name()
            return
        # Fix: RecBole wraps the model in DistributedDataParallel(device_ids=[local_rank]), a
        # CUDA index; on a CPU (Gloo) DDP takes no device ids. RecBole's trainer is built as for
        # one process, then wrapped the way DDP expects on a CPU.
        config["single_spec"] = True
        try:
            super().__init__(config, model)
        finally:
            config["single_spec"] = False
        self.distributed_model = torch.nn.parallel.DistributedDataParallel(self.model)
        self._share_checkpoint_name()

    def _share_checkpoint_name(self):
        # Fix: each rank names its checkpoint file after its own clock (get_local_time), but
        # only rank 0 saves; every rank must load rank 0's file.
        names = [self.saved_model_file]
        torch.distributed.broadcast_object_list(names, src=0)
        self.saved_model_file = names[0]

    def _save_checkpoint(self, epoch, verbose=True, **kwargs):
        # Fix: RecBole pickles its whole Config into the checkpoint, and torch >= 2.6's
        # torch.load(weights_only=True) (used by Trainer.evaluate to reload the best model)
        # refuses it. Save tensors and plain values only, so the default safe load works.
        if not self.config["single_spec"] and self.config["local_rank"] != 0:
            return
        saved_model_file = kwargs.pop("saved_model_file", self.saved_model_file)
        state = {
            "config": {"model": str(self.config["model"]), "dataset": str(self.config["dataset"])},
            "epoch": int(epoch),
            "cur_step": int(self.cur_step),
            "best_valid_score": float(self.best_valid_score),
            "state_dict": self.model.state_dict(),
            "other_parameter": self.model.other_parameter(),
            "optimizer": self.optimizer.state_dict(),
        }
        torch.save(state, saved_model_file)
        if verbose:
            self.logger.info(f"Saving current: {saved_model_file}")
