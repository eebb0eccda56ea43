"""A run built but not trained: config and spec (parsed once, before any data), the data, the
model wrapped by the adapter, and RecBole's trainer, resumed where asked. Built from
``recbole.config``, ``recbole.data``, ``recbole.trainer`` and ``recbole.utils`` only
(``recbole.quick_start`` imports ray, which this project never imports)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from logging import getLogger

from recbole.utils import ModelType

from .. import distributed
from ..compat import check_versions, make_run_dirs
from ..settings.config import PluginConfig
from ..errors import ConfigError
from ..glue import CROLossAdapter, get_model
from ..glue.progress import CONSOLE
from ..glue.trainer import CROLossTrainer
from ..model.timirec import FROM_SCRATCH
from .run_header import dataset_line, run_line
from .run_log import init_recbole_logger, verbose
from ..settings.settings_checks import empty_dataset_error
from ..settings.spec import ResumeSpec, RunSpec


@dataclass
class PreparedRun:
    """One run, built but not yet trained: its config and spec, data, adapter and trainer."""

    config: PluginConfig
    spec: RunSpec
    train_data: object
    valid_data: object
    test_data: object
    adapter: CROLossAdapter
    trainer: CROLossTrainer


def configure(model: str, dataset: str, config_file_list=None, config_dict=None,
              cmd_args=None) -> tuple[PluginConfig, RunSpec]:
    """The run's config and its spec; bad settings stop the run here, before any data."""
    check_versions()
    model_class = get_model(model)
    config = PluginConfig(model_class, dataset, config_file_list, config_dict, cmd_args)
    verbose(config)  # a verbose that is not true or false stops the run here
    return config, RunSpec.from_config(config, model_class)


def prepare(config: PluginConfig, spec: RunSpec) -> PreparedRun:
    """Data, model wrapped by the adapter, and RecBole's trainer, for a configured run."""
    train_data, valid_data, test_data = load_data(config, spec)
    adapter, trainer = build_trainer(config, spec, train_data)
    resume(trainer, spec.resume, config)
    return PreparedRun(config, spec, train_data, valid_data, test_data, adapter, trainer)


def load_data(config: PluginConfig, spec: RunSpec) -> tuple:
    """The run's ``(train, valid, test)`` loaders (the logger started, the settings logged)."""
    import torch
    from recbole.utils import init_seed

    if spec.threads is not None:  # before the data: RecBole's dataset and loaders run on them
        torch.set_num_threads(spec.threads)
    init_seed(config["seed"], config["reproducibility"])
    if not config["single_spec"]:
        make_run_dirs(config)
    init_recbole_logger(config)
    logger = getLogger()
    log_dataset_settings(config, spec)
    logger.info(config)

    data, train_data, valid_data, test_data = load_splits(config, spec)
    if spec.schedule.scheduled:
        logger.info(spec.schedule.describe(), extra=CONSOLE)
    return train_data, valid_data, test_data


def build_trainer(config: PluginConfig, spec: RunSpec, train_data) -> tuple[CROLossAdapter, CROLossTrainer]:
    """The model (seeded as every run seeds it), wrapped by the spec's adapter, and its trainer."""
    logger = getLogger()
    adapter = build_adapter(config, spec, train_data)
    logger.info(adapter)
    if distributed.is_main(config):
        logger.info(run_line(config, spec, adapter), extra=CONSOLE)
    if adapter.sampler is not None:
        note = spec.training.rank_floor_note(adapter.sampler.catalogue_size, config["train_batch_size"])
        if note:
            logger.info(note)
    return adapter, CROLossTrainer(config, adapter, spec.evaluation.evaluator, spec.evaluation.mask)


def load_splits(config: PluginConfig, spec: RunSpec, training: bool = True):
    """``(dataset, train_data, valid_data, test_data)``: the dataset and the loaders the run
    trains, validates and tests on (checked: the catalogue against ``topk`` and the memory
    budget, no split without users; what training will make of the catalogue is logged when
    ``training``). Under ``protocol: paper`` the splits take the interactions out of the dataset
    (moved, not copied): its ``inter_feat`` is then the training split's."""
    logger = getLogger()
    data = load_dataset(config, spec)
    logger.info(data)
    logger.info(dataset_line(config, data), extra=CONSOLE)  # before a protocol moves interactions out
    spec.evaluation.check_catalogue(data.item_num, config["valid_metric"])  # stops the run before training
    for line in spec.training.catalogue_warnings(data.item_num) if training else ():
        logger.warning(line)
    train_data, valid_data, test_data = spec.protocol.prepare(config, data)
    spec.evaluation.check_splits(config, valid_data, test_data)
    return data, spec.schedule.train_loader(train_data, config), valid_data, test_data


def build_adapter(config: PluginConfig, spec: RunSpec, train_data) -> CROLossAdapter:
    """The model, built on the training split's dataset and wrapped by the adapter that trains
    and ranks it as the spec says (seeded as RecBole seeds its model)."""
    from recbole.utils import init_seed

    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    dataset = train_data._dataset
    model = spec.model_class(config, dataset)
    if getattr(model, "wants_pretrained", False):
        load_pretrained(model, config["pre_model_path"])
    return spec.training.adapter(model.to(config["device"]), dataset)


def load_pretrained(model, path) -> None:
    """Hand a staged model the best checkpoint ``path`` names (its ``load_pretrained(state)``
    takes what it needs), or :data:`~recbole_croloss.model.timirec.FROM_SCRATCH` for none: the flow reads
    files, models do not."""
    import torch

    if isinstance(path, str) and path.lower() == FROM_SCRATCH:
        return
    if not isinstance(path, str) or not os.path.isfile(path):
        raise ConfigError("pre_model_path", path, "the best-model checkpoint of a train_stage=pretrain "
                          f"run (its weights start the next stage), or {FROM_SCRATCH!r} to train the "
                          "stage from scratch")
    try:
        model.load_pretrained(torch.load(path, map_location="cpu", weights_only=True)["state_dict"])
    except ValueError as err:
        raise ConfigError("pre_model_path", path, str(err)) from None


def resume(trainer: CROLossTrainer, spec: ResumeSpec, config) -> None:
    """Continue from the checkpoint ``resume`` names, or say why the run starts afresh."""
    if spec.path is not None:
        trainer.resume_checkpoint(spec.path)
    elif spec.requested == "auto":
        passed = f" ({spec.passed_over} with other settings passed over)" if spec.passed_over else ""
        getLogger().info(f"resume=auto: no resume checkpoint to continue from in "
                         f"{os.path.abspath(config['checkpoint_dir'])}{passed}; training from epoch 0", extra=CONSOLE)


def load_dataset(config: PluginConfig, spec: RunSpec):
    """RecBole's dataset for the run: a sequential model's histories as windows (unless
    ``history_windows: false``), a file without a time field ordered by line."""
    import recbole.data.dataset
    from recbole.data import create_dataset

    own_class = hasattr(recbole.data.dataset, config["model"] + "Dataset")  # e.g. KSR's knowledge graph
    line_order = config["TIME_FIELD"] not in spec.dataset.fields and spec.model_class.type == ModelType.SEQUENTIAL
    if line_order:
        getLogger().info(f"{spec.dataset.path} has no time field {config['TIME_FIELD']!r}: each user's "
                         "interactions are taken in the order of the file's lines", extra=CONSOLE)
    try:
        if spec.model_class.type != ModelType.SEQUENTIAL or own_class:
            return create_dataset(config)
        return spec.schedule.dataset_class(line_order)(config)
    except ValueError as err:
        if "Some feat is empty" not in str(err):  # RecBole 1.2.1's words for a dataset filtered empty
            raise
        raise empty_dataset_error(config) from None


def log_dataset_settings(config: PluginConfig, spec: RunSpec) -> None:
    """Log the settings a user should know were chosen for them (and apply the time field)."""
    logger = getLogger()
    for line in spec.warnings:
        logger.warning(line)
    load_col = spec.dataset.load_col(config["load_col"], config["TIME_FIELD"])
    if load_col is not None:
        config["load_col"] = load_col
        logger.info(f"{spec.dataset.path} has a time field {config['TIME_FIELD']!r}: it is loaded "
                    f"(load_col inter: {load_col['inter']}) to order each user's interactions")
    chosen = [k for k in OWN_DATA_DEFAULTS if k not in config.user_settings]
    if not config.has_own_dataset_properties and chosen:
        logger.info(f"dataset {config['dataset']!r} has no YAML of the plugin's: "
                    + ", ".join(f"{k}={config[k]}" for k in chosen)
                    + " (the defaults for data of your own: the paper's batch and history, and a budget of "
                    "epochs instead of RecBole's 300; set a key to change it)", extra=CONSOLE)


#: The keys ``properties/unknown_dataset.yaml`` sets for a dataset without a YAML of the plugin's.
OWN_DATA_DEFAULTS = ("train_batch_size", "MAX_ITEM_LIST_LENGTH", "epochs", "stopping_step")


def prepare_run(model: str = "GRU4Rec", dataset: str = "ml-100k", config_file_list=None,
                config_dict=None, cmd_args=None) -> PreparedRun:
    """Config, data, model wrapped by the adapter, and RecBole's trainer, as the CLI uses them."""
    return prepare(*configure(model, dataset, config_file_list, config_dict, cmd_args))
