r"""A trained run reloaded from its checkpoint: the plugin's twin of RecBole's
``recbole.quick_start.load_data_and_model``.

::

    config, model, dataset, train_data, valid_data, test_data = recbole_croloss.load(path)

returns the six values RecBole's function returns, in its order, so code written for it works
with the import changed (under ``protocol: paper`` the dataset's ``inter_feat`` holds the
training split only: the splits move the interactions rather than copy them). :func:`load`
reads a best-model file (or a resume checkpoint) with ``torch.load(weights_only=True)``,
rebuilds the run's config from the settings the run was given (``run_settings``,
:func:`~recbole_croloss.glue.checkpoint.run_settings`), loads the
dataset and its splits as the run did (the data protocol, windowed histories), builds the model
(the plugin's own models are found, as ``--model`` finds them) wrapped by the adapter with the
run's loss and score, and loads the checkpoint's weights. ``model`` is that adapter, in eval
mode: its ``full_sort_predict`` and ``predict`` rank by the score the run ranked by, and
``model.model`` is the RecBole model itself. :func:`trainer_for` gives the trainer that
evaluates it as the run did: ``trainer_for(config, model).evaluate(test_data,
load_best_model=False)`` is the run's test result (``test_weights: best``, the default).

Why RecBole's own function cannot read it: it takes ``checkpoint["config"]`` for a pickled
``Config`` (its logger reads ``config.final_config_dict``, ``create_dataset`` compares
``config["MODEL_TYPE"]`` with an enum), which a safe load never returns: torch >= 2.6's
default ``torch.load`` refuses RecBole's own checkpoints for the same reason. Its
``get_model`` knows only RecBole's models. The checkpoint still holds every key it reads
(``config``, ``state_dict`` in the RecBole model's own parameter names, ``other_parameter``),
so a RecBole model built from the config loads ``state_dict`` as it is.
"""
from __future__ import annotations

import os
import warnings
from typing import NamedTuple

from ..settings.alpha_search import SEARCH_KEYS
from ..glue import checkpoint, get_model
from ..glue.trainer import CROLossTrainer
from ..errors import ConfigError
from ..model.timirec import FROM_SCRATCH
from ..flow.build import build_adapter, configure, load_splits, log_dataset_settings
from ..settings.spec import EvaluationSpec

#: What an ``alpha: auto`` run's search set in its config, which a reload takes from there.
SEARCHED_CONFIG = ("alpha", "kernel", "topk", "valid_metric")

#: Settings a reloaded run leaves out: it runs in one process and neither resumes, trains on
#: other ranks' negatives nor serves an index (none of them changes the model or its ranking).
NOT_RELOADED = ("resume", "nproc", "world_size", "ip", "port", "offset", "local_rank", "dist_backend",
                "dist_timeout", "gather_negatives", "faiss_index", "faiss_nprobe", "faiss_export")


class LoadedRun(NamedTuple):
    """What :func:`load` returns: RecBole's six values, in the order of ``load_data_and_model``."""

    config: object
    model: object
    dataset: object
    train_data: object
    valid_data: object
    test_data: object


#: What a run's checkpoint holds that a reload reads.
RUN_KEYS = ("config", "state_dict", "run_settings")


def read_checkpoint(model_file: str) -> dict:
    """The checkpoint at ``model_file``, read safely, or a :class:`ConfigError` on
    ``checkpoint`` saying why it cannot be reloaded: what the file is instead, or which of a
    run's keys it lacks. A resume checkpoint is read with a :class:`UserWarning`: its weights
    are the last epoch's, not the best validation's."""
    best = "give a run's best-model file (its record's files.model)"
    if not os.path.exists(model_file):
        raise ConfigError("checkpoint", model_file, f"no such file ({os.path.abspath(model_file)}); {best}")
    try:
        state = checkpoint.load_or_explain(model_file)
    except checkpoint.UnreadableCheckpoint as err:
        raise ConfigError("checkpoint", model_file, f"{best}; this one {err}") from None
    if not isinstance(state, dict):
        raise ConfigError("checkpoint", model_file, f"{best}; this one is a torch file of a "
                          f"{type(state).__name__}, not of a run's {', '.join(RUN_KEYS)}")
    missing = [k for k in RUN_KEYS if k not in state]
    if missing == ["run_settings"]:
        raise ConfigError("checkpoint", model_file, "a checkpoint that holds the run's settings "
                          "(run_settings); this one was written before recbole-croloss saved them")
    if missing:
        raise ConfigError("checkpoint", model_file, f"{best}; this one is not a run's checkpoint: it "
                          f"lacks {', '.join(missing)} (its keys: {', '.join(map(str, list(state)[:8])) or 'none'})")
    if "resume_format" in state:
        warnings.warn(f"{model_file} is a resume checkpoint: its weights are those after epoch "
                      f"{state['epoch']}, not the best validation's, which are in "
                      f"{checkpoint.best_model_file(model_file, state['best_model_file'])}",
                      UserWarning, stacklevel=3)
    return state


def reload_settings(state: dict, model_class, config_dict=None) -> dict:
    """The settings to rebuild the run with: the run's, less :data:`NOT_RELOADED`, a staged
    model's ``pre_model_path`` not read again (every weight is in the checkpoint), then
    ``config_dict``."""
    settings = {k: v for k, v in state["run_settings"].items() if k not in NOT_RELOADED}
    if any(key in settings for key in SEARCH_KEYS):
        settings = searched_settings(settings, state["config"])
    if getattr(model_class, "TRAIN_STAGES", None) and "pre_model_path" in settings:
        settings["pre_model_path"] = FROM_SCRATCH
    return {**settings, **dict(config_dict or {})}


def searched_settings(settings: dict, saved_config: dict) -> dict:
    """An ``alpha: auto`` run's settings as a plain run with what the search chose: its winner's
    checkpoint was trained with the chosen alpha (and kernel) and judged on ``valid_metric``
    Recall@target_n with target_n in ``topk``, all in the saved config; the search keys go."""
    plain_run = {k: v for k, v in settings.items() if k not in SEARCH_KEYS}
    chosen = {key: saved_config[key] for key in SEARCHED_CONFIG if saved_config.get(key) is not None}
    return {**plain_run, **chosen}


def rebuilt_differences(state: dict, settings: dict, rebuilt: dict) -> list[str]:
    """``key: saved -> rebuilt`` for each key of the rebuilt config (``rebuilt``, plain) that
    differs from the run's, leaving out :data:`NOT_RELOADED`, ``data_path`` and the settings
    changed or dropped on purpose."""
    given = state["run_settings"]
    # data_path: the saved config's is relative to the run's working directory; run_settings
    # holds it absolute, so the rebuilt one is the run's folder (or the one config_dict gave).
    changed = set(NOT_RELOADED) | {"data_path"} | {k for k, v in settings.items() if k not in given or given[k] != v} | \
        {k for k in given if k not in settings}  # dropped on purpose (an alpha: auto run's search keys)

    def kept(config):
        return {k: v for k, v in config.items() if k not in changed}

    return checkpoint.config_differences(kept(state["config"]), kept(rebuilt))


def load(model_file: str, config_dict: dict | None = None) -> LoadedRun:
    """Reload the run that wrote ``model_file``: ``(config, model, dataset, train_data,
    valid_data, test_data)`` as RecBole's ``load_data_and_model`` returns them (see the module
    docstring). ``config_dict`` replaces saved settings, e.g. ``{"data_path": ...}`` for data
    that moved, ``{"use_gpu": False}`` to load on the CPU. A setting whose rebuilt value differs
    from the run's (a default changed since) is named in a :class:`RuntimeWarning`."""
    from recbole.utils import init_seed

    state = read_checkpoint(model_file)
    saved = state["config"]
    model_class = get_model(saved["model"])
    settings = reload_settings(state, model_class, config_dict)
    config, spec = configure(saved["model"], saved["dataset"], config_dict=settings)
    log_dataset_settings(config, spec)  # the settings the run applied before it saved its config
    differences = rebuilt_differences(state, settings, checkpoint.plain_config(config))
    if differences:
        warnings.warn(f"{model_file}: the rebuilt config differs from the run's: " + "; ".join(differences),
                      RuntimeWarning, stacklevel=2)
    init_seed(config["seed"], config["reproducibility"])
    dataset, train_data, valid_data, test_data = load_splits(config, spec, training=False)
    model = build_adapter(config, spec, train_data)
    checkpoint.load_model_weights(model, state["state_dict"])
    model.load_other_parameter(state.get("other_parameter"))
    model.eval()
    return LoadedRun(config, model, dataset, train_data, valid_data, test_data)


def trainer_for(config, model) -> CROLossTrainer:
    """The trainer that evaluates ``model`` (from :func:`load`) as its run did: the run's
    evaluator (``eval_engine``, ``eval_memory_budget``, ``metrics``, ``topk``) and mask."""
    evaluation = EvaluationSpec.from_config(config)
    return CROLossTrainer(config, model, evaluation.evaluator, evaluation.mask)
