r"""Checkpoints of tensors and plain values, which ``torch.load(path, weights_only=True)`` reads.

Two files per run, side by side in ``checkpoint_dir``, named after the run's log file
(:func:`model_file_for`: ``<model>-<dataset>-<time>-<config hash>-<random>``, the stem of the
log and of the record, which no other run shares):

- ``<stem>.pth``, RecBole's best-model file (:func:`best_state`): the keys RecBole's
  ``load_data_and_model`` reads (``config``, ``state_dict`` in the model's own parameter names,
  ``other_parameter``) and the rest of what RecBole saves (``epoch``, ``cur_step``,
  ``best_valid_score``, ``optimizer``), plus ``run_settings``
  (:func:`run_settings`: the settings the run was given, from which
  :func:`recbole_croloss.load` rebuilds its config);
- ``<stem>-last.pth``, the resume checkpoint, rewritten after every epoch
  (:func:`resume_state`): model, optimizer (and scheduler, if the trainer has one), the last
  finished epoch, RecBole's early-stopping counter ``cur_step``, the best validation score and
  result, the training-loss and validation history (:class:`~.history.TrainingHistory`), the steps
  done, every random-number state that drives training (Python,
  numpy, torch CPU and CUDA, the train loader's shuffling generator), the best-model file's
  name, the full config and the run's settings.

Every file is written to a temporary file in its folder and moved into place, so a run killed
at any moment leaves the previous file whole; a run's first save of a file never replaces one
that is already there (:func:`save_new`), so no run overwrites another's. A resume checkpoint is compatible with a run
when every key of their configs matches except :data:`FREE_KEYS` (:func:`config_differences`).
"""
from __future__ import annotations

import enum
import glob
import logging
import numbers
import os
import pickle
import random
import re
import secrets
import tempfile
import zipfile

import numpy as np
import torch

from ..errors import ConfigError
from ..io import atomic_write
from .adapter import CROLossAdapter

#: Marks a resume checkpoint (a best-model file has no ``resume_format``); 2 adds the
#: validation history and the step count.
RESUME_FORMAT = 2
RESUME_SUFFIX = "-last.pth"

#: Keys a resumed run may change: how long it trains and when it stops, where files and logs go
#: and what they show, the device, and work sizes and readers that leave every result
#: unchanged. Any other key (loss, kernel, alpha, seed, learning rate, the model's and the
#: data's settings, ...) must match the checkpoint's.
FREE_KEYS = frozenset({
    "resume", "epochs", "max_steps", "stopping_step", "checkpoint_dir", "show_progress", "state",
    "log_wandb", "wandb_project", "loss_decimal_place", "device", "gpu_id", "use_gpu",
    "worker", "eval_batch_size", "eval_memory_budget", "faiss_index", "faiss_nprobe",
    "faiss_export", "save_dataset", "save_dataloaders", "dataset_save_path",
    "dataloaders_save_path", "lean_inter_loader", "threads", "verbose",
})


def plain(value):
    """``value`` as JSON-safe plain Python (numbers, strings, lists, dicts; anything else as its
    string), so that a checkpoint never pickles a class that a safe load refuses."""
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, enum.Enum):  # before the numbers: an IntEnum is an int
        return str(value)
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(plain(v) for v in value)
    return str(value)


def plain_config(config) -> dict:
    """Every key of the run's config (``final_config_dict``), as plain values."""
    return {str(k): plain(v) for k, v in config.final_config_dict.items()}


#: Settings that name the run rather than configure it: :func:`recbole_croloss.load` passes them
#: on their own.
RUN_NAME_KEYS = ("model", "dataset")


def run_settings(config) -> dict:
    """The settings the user gave the run (``user_settings``: files, ``config_dict``, command
    line) with the values the run resolved them to, as plain values: the config of a run
    rebuilt from them is the run's. ``data_path`` is kept as an absolute path (RecBole's final
    ``data_path`` has the dataset's folder joined to it)."""
    given = getattr(config, "user_settings", {})
    settings = {str(k): plain(config.final_config_dict.get(k)) for k in given if k not in RUN_NAME_KEYS}
    if "data_path" in given:
        settings["data_path"] = os.path.abspath(str(given["data_path"]))
    return settings


def model_weights(model) -> dict:
    """The weights of the model a trainer holds, in the model's own parameter names (those of
    the RecBole model the adapter wraps: what RecBole's ``load_state_dict`` expects)."""
    return _wrapped(model).state_dict()


def load_model_weights(model, state_dict: dict) -> None:
    """Put ``state_dict`` into the model a trainer holds. It is in the wrapped model's names
    (:func:`model_weights`) or, in files written before those names, in the adapter's
    (``model.`` + name); other names or sizes are refused naming what differs."""
    inner = _wrapped(model)
    keys = set(state_dict)
    for target in (inner, model):
        own = target.state_dict()
        if keys == set(own):
            resized = [f"{k} {list(v.shape)} in the checkpoint, {list(own[k].shape)} built"
                       for k, v in state_dict.items() if v.shape != own[k].shape]
            if resized:
                raise ValueError(f"the checkpoint's weights are not those of {type(inner).__name__} "
                                 f"built from its config: {'; '.join(resized[:3])}")
            target.load_state_dict(state_dict)
            return
    expected = set(inner.state_dict())
    raise ValueError(f"the checkpoint's weights are not those of {type(inner).__name__} built from "
                     f"its config: missing {sorted(expected - keys)[:5]}, unexpected {sorted(keys - expected)[:5]}")


def _wrapped(model):
    return model.model if isinstance(model, CROLossAdapter) else model


def best_state(trainer, epoch: int) -> dict:
    """RecBole's best-model file of ``trainer`` after ``epoch``, in tensors and plain values."""
    return {
        "config": plain_config(trainer.config),
        "run_settings": run_settings(trainer.config),
        "negatives": trained_negatives(trainer.model),
        "epoch": int(epoch),
        "cur_step": int(trainer.cur_step),
        "best_valid_score": float(trainer.best_valid_score),
        "state_dict": model_weights(trainer.model),
        "other_parameter": trainer.model.other_parameter(),
        "optimizer": trainer.optimizer.state_dict(),
    }


def save_atomic(state: dict, path: str) -> None:
    """``torch.save`` so that ``path`` holds either the old checkpoint or the whole new one."""
    atomic_write(path, lambda f: torch.save(state, f), binary=True, suffix=".pth")


class CheckpointExistsError(FileExistsError):
    """A run's checkpoint file is already there, written by another run: it is left as it is."""


def save_new(state: dict, path: str) -> None:
    """Save to ``path``, which must not exist yet: written to a temporary file and linked into
    place, which fails when ``path`` is there (another run's file is never replaced; a
    filesystem without hard links gets ``path`` created exclusively, then replaced)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".pth")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        try:
            _move_new(tmp, path)
        except FileExistsError:
            raise CheckpointExistsError(f"{path} already exists, written by another run; this run "
                                        "leaves it as it is and stops") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _move_new(tmp: str, path: str) -> None:
    """``tmp`` moved to ``path``, or ``FileExistsError`` when ``path`` is there."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:  # no hard links on this filesystem: claim the name, then move onto it
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        os.replace(tmp, path)


#: Random hex digits that tell apart the files of runs named in the same second.
RANDOM_HEX = 6


def model_file_for(checkpoint_dir: str, model: str) -> str:
    """The absolute path of a new run's best-model file: ``<stem>.pth`` in ``checkpoint_dir``,
    where the stem is the run's log file's (RecBole's ``<model>-<dataset>-<time>-<hash>``, made
    unique by :func:`recbole_croloss.flow.run_log.init_recbole_logger`; RecBole names the run's
    TensorBoard folder after it the same way), so the log, the record and the model files of one
    run share it. A process without such a log, or whose log's files are already there (a
    second trainer under one log), gets ``<model>-<time>-<random>``."""
    from recbole.utils import get_local_time

    stem = None
    for handler in logging.getLogger().handlers:
        name = getattr(handler, "baseFilename", None)
        if name and os.path.isfile(name) and os.path.basename(name).startswith(f"{model}-"):
            stem = os.path.splitext(os.path.basename(name))[0]
            break
    path = os.path.abspath(os.path.join(checkpoint_dir, f"{stem}.pth")) if stem else None
    if path is None or os.path.exists(path) or os.path.exists(resume_file_for(path)):
        stem = f"{stem or f'{model}-{get_local_time()}'}-{secrets.token_hex(RANDOM_HEX // 2)}"
        path = os.path.abspath(os.path.join(checkpoint_dir, f"{stem}.pth"))
    return path


def resume_file_for(best_file: str) -> str:
    """The resume checkpoint beside a best-model file: ``X.pth`` -> ``X-last.pth``."""
    return os.path.splitext(best_file)[0] + RESUME_SUFFIX


def rng_states(generator: torch.Generator | None) -> dict:
    """Every random-number state training draws from, as tensors and plain values."""
    version, internal, gauss = random.getstate()
    _, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    return {
        "python": {"version": version, "internal": torch.tensor(internal, dtype=torch.int64),
                   "gauss_next": gauss},
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "train_loader": None if generator is None else generator.get_state(),
    }


def restore_rng_states(states: dict, generator: torch.Generator | None) -> None:
    """Put back what :func:`rng_states` saved (the CUDA states only where there are as many
    devices; a checkpoint moved between machines resumes, though not bit for bit)."""
    py = states["python"]
    random.setstate((py["version"], tuple(py["internal"].tolist()), py["gauss_next"]))
    keys = states["numpy"]
    np.random.set_state(("MT19937", keys["keys"].cpu().numpy().astype(np.uint32), keys["pos"],
                         keys["has_gauss"], keys["cached_gaussian"]))
    torch.set_rng_state(states["torch"].cpu())
    if states["cuda"] and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in states["cuda"]])
    if generator is not None and states["train_loader"] is not None:
        generator.set_state(states["train_loader"].cpu())


def resume_state(trainer, epoch: int, generator, best_file: str) -> dict:
    """The resume checkpoint of ``trainer`` after ``epoch`` (the last finished one);
    ``best_file`` is the run's best-model file (not yet written before a first best)."""
    scheduler = getattr(trainer, "scheduler", None)
    return {
        "resume_format": RESUME_FORMAT,
        "config": plain_config(trainer.config),
        "run_settings": run_settings(trainer.config),
        "negatives": trained_negatives(trainer.model),
        "epoch": int(epoch),
        "cur_step": int(trainer.cur_step),
        "best_valid_score": float(trainer.best_valid_score),
        "best_valid_result": None if trainer.best_valid_result is None else plain(trainer.best_valid_result),
        "train_loss": {int(k): float(v) for k, v in trainer.train_loss_dict.items()},
        "history": trainer.history.state(trainer.elapsed()),
        "steps": int(trainer.steps),
        "best_model_file": os.path.basename(best_file),
        "best_model_saved": os.path.isfile(best_file),
        "state_dict": model_weights(trainer.model),
        "other_parameter": trainer.model.other_parameter(),
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "rng": rng_states(generator),
    }


def trained_negatives(model) -> str | None:
    """The sampler a model trains on (a catalogue smaller than the drawn negatives trains on
    every item, whatever ``negatives`` says); ``None`` for the model's own loss."""
    sampler = getattr(model, "sampler", None)
    return None if sampler is None else sampler.name


def check_resumed_negatives(state: dict, model, resume_file: str) -> None:
    """A resumed run trains on the negatives the checkpoint's run trained on. A checkpoint
    without the entry trained on its config's ``negatives``."""
    saved, now = state.get("negatives", state["config"].get("negatives")), trained_negatives(model)
    if now is not None and saved is not None and saved != now:
        raise ConfigError("resume", resume_file, f"a checkpoint of a run on the same negatives; it trained on "
                          f"{saved!r} negatives and this run would train on {now!r} (set negatives: {saved} "
                          "to continue it)")


def load(path: str, device="cpu", lazy: bool = False) -> dict:
    """A checkpoint read safely (tensors and plain values only); ``lazy`` maps the tensors
    instead of reading them, for a look at the config."""
    return torch.load(path, map_location=device, weights_only=True, mmap=lazy)


class UnreadableCheckpoint(ValueError):
    """A file that a safe ``torch.load`` cannot read, with what it is instead."""


def load_or_explain(path: str, device="cpu") -> object:
    """:func:`load`, or :class:`UnreadableCheckpoint` saying what the file is instead (a
    directory, empty, not a zip archive, not torch's, or holding Python objects a safe load
    does not rebuild); torch's own message, which suggests loading unsafely, is not passed on."""
    if os.path.isdir(path):
        raise UnreadableCheckpoint("is a directory, not a checkpoint file")
    try:
        return load(path, device)
    except FileNotFoundError:
        raise
    except PermissionError as err:
        raise UnreadableCheckpoint(f"cannot be read by this user ({err.strerror})") from None
    except Exception as err:  # anything torch fails on: said below in the file's own terms
        raise UnreadableCheckpoint(_what_it_is(path, err)) from None


def _what_it_is(path: str, err: Exception) -> str:
    if os.path.getsize(path) == 0:
        return "is an empty file (0 bytes), not a checkpoint"
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            head = f.read(12)
        if head.startswith(b"PK\x03\x04"):
            return "is the start of a zip archive without its end (a checkpoint cut short in a copy?)"
        return f"is not a zip archive, the format torch.save writes: its first bytes are {head!r}"
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    if not any(name.endswith("data.pkl") for name in names):
        return f"is a zip archive that torch.save did not write (no data.pkl; it holds {names[:3]})"
    refused = re.search(r"GLOBAL ([\w.]+)", str(err))
    if isinstance(err, pickle.UnpicklingError):
        what = f" ({refused.group(1)})" if refused else ""
        return (f"is a torch file of Python objects{what}, which a safe load does not rebuild: a "
                "checkpoint holds tensors and plain values (RecBole's own trainer pickles its Config)")
    return f"is a torch file that cannot be read ({type(err).__name__}); it may be damaged"


def resume_header(path: str) -> dict | None:
    """The plain values of the resume checkpoint at ``path`` (config, epoch, best-model file),
    its tensors left unread; ``None`` if it is not a resume checkpoint."""
    try:
        state = load(path, lazy=True)
    except Exception:  # not a torch file, truncated, or a pickle a safe load refuses
        return None
    if not isinstance(state, dict) or state.get("resume_format") != RESUME_FORMAT:
        return None
    return {k: state[k] for k in ("config", "epoch", "best_model_file", "best_model_saved")}


def best_model_file(path: str, best_name: str) -> str:
    """Where the best-model file of the resume checkpoint at ``path`` is: beside it."""
    return os.path.join(os.path.dirname(os.path.abspath(path)), best_name)


def config_differences(saved: dict, current: dict) -> list[str]:
    """``key: saved -> current`` for each key outside :data:`FREE_KEYS` whose values differ
    (a key one config lacks counts as unset)."""
    keys = sorted((set(saved) | set(current)) - FREE_KEYS)
    return [f"{k}: {saved.get(k)!r} in the checkpoint, {current.get(k)!r} now"
            for k in keys if saved.get(k) != current.get(k)]


def resume_problem(path: str, current: dict) -> str | None:
    """Why the run whose config is ``current`` (a :func:`plain_config`) cannot continue from
    ``path``; ``None`` when it can."""
    header = resume_header(path)
    if header is None:
        return (f"{path} is not a resume checkpoint (a best-model file holds no training state); "
                f"give a run's <run>{RESUME_SUFFIX} file, or auto")
    differences = config_differences(header["config"], current)
    if differences:
        return "the checkpoint was trained with other settings: " + "; ".join(differences)
    best = best_model_file(path, header["best_model_file"])
    if header["best_model_saved"] and not os.path.isfile(best):
        return f"its best-model file {best} is missing (the test evaluates those weights)"
    return None


def find_resume(checkpoint_dir: str, current: dict) -> tuple[str | None, int]:
    """The newest resume checkpoint in ``checkpoint_dir`` that the run whose config is
    ``current`` can continue from, or ``None``; and how many others were passed over."""
    candidates = sorted(glob.glob(os.path.join(glob.escape(checkpoint_dir), "*" + RESUME_SUFFIX)),
                        key=lambda p: (os.path.getmtime(p), p), reverse=True)
    for skipped, path in enumerate(candidates):
        if resume_problem(path, current) is None:
            return os.path.abspath(path), skipped
    return None, len(candidates)
