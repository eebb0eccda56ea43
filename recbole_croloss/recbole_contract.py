"""RecBole's quick-start contract, with the plugin's models and losses.

- :func:`run` is RecBole 1.2.1's ``run_recbole``: same arguments, and its result
  (``best_valid_score``, ``valid_score_bigger``, ``best_valid_result``, ``test_result``) inside
  the plugin's record (:func:`recbole_croloss.flow.launch.run`);
- :func:`objective_function` is RecBole's ``objective_function``, the shape
  ``recbole.trainer.HyperTuning`` calls (``objective_function(params, fixed_config_file_list)``),
  returning ``model`` with the four keys above (and the rest of the record).

As in RecBole, a ``model`` or ``dataset`` left out is read from ``config_dict``, then from the
config files (the fixed file of a tuning run names them). ``--model=`` on the command line, which
RecBole's Config also reads from ``sys.argv``, is not: the plugin reads no settings from the
command line of whatever program is running. RecBole's own objective also reports to Ray Tune
(``ray.tune.report``); this one does not import ray (see :mod:`recbole_croloss.compat`).

Importing this module applies :func:`recbole_croloss.compat.fix_exhaustive_search`, so that
``HyperTuning(algo="exhaustive")`` runs on today's hyperopt.
"""
from __future__ import annotations

from .compat import fix_exhaustive_search
from .settings.config import yaml_settings
from .errors import ConfigError
from .flow.run_log import close_log_handlers
from .flow.launch import run as plugin_run

fix_exhaustive_search()


def model_and_dataset(model, dataset, config_file_list, config_dict) -> tuple[str, str]:
    """``model`` and ``dataset`` as given, else from ``config_dict``, else from the files."""
    given = {**yaml_settings(config_file_list or []), **dict(config_dict or {})}
    found = {"model": model or given.get("model"), "dataset": dataset or given.get("dataset")}
    for key, value in found.items():
        if not value:
            raise ConfigError(key, value, f"name the {key} as an argument, in config_dict or in a "
                              f"config file ({key}: {'TwoTower' if key == 'model' else 'ml-100k'})")
    return str(found["model"]), str(found["dataset"])


def run(model=None, dataset=None, config_file_list=None, config_dict=None, saved=True) -> dict:
    """Train and test as RecBole's ``run_recbole`` does; returns the plugin's record, whose
    ``best_valid_score``, ``valid_score_bigger``, ``best_valid_result`` and ``test_result`` are
    ``run_recbole``'s result."""
    model, dataset = model_and_dataset(model, dataset, config_file_list, config_dict)
    settings = {k: v for k, v in dict(config_dict or {}).items() if k not in ("model", "dataset")}
    return plugin_run(model, dataset, config_file_list, settings, saved=saved)


def objective_function(config_dict=None, config_file_list=None, saved=True) -> dict:
    """One trial of ``recbole.trainer.HyperTuning``: ``config_dict`` holds the trial's
    parameters, ``config_file_list`` the fixed settings (with ``model`` and ``dataset``).

    Each trial logs to a file of its own (the previous trial's handlers are closed, as RecBole's
    objective does). Returns the run's record with ``model``, ``best_valid_score``,
    ``valid_score_bigger``, ``best_valid_result`` and ``test_result``, as HyperTuning reads it.
    """
    close_log_handlers()
    return run(config_file_list=config_file_list, config_dict=config_dict, saved=saved)
