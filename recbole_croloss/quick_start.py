"""Train and evaluate one RecBole sequential model with a CROLoss variant: the CLI's flow.

Reads like RecBole's ``run_recbole``: config once (checked whole by the run spec), dataset,
model, trainer, fit, evaluate, record. Built from ``recbole.config``, ``recbole.data``,
``recbole.trainer`` and ``recbole.utils`` only (``recbole.quick_start`` imports ray, which this
project never imports). Usage::

    python run_recbole_croloss.py --model=GRU4Rec --loss=croloss --alpha=1.2 [--dataset=ml-100k]
        [--config_files="a.yaml b.yaml"] [--record=PATH] [--any_recbole_key=value ...]
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from logging import getLogger

from recbole.utils import ModelType

from . import distributed
from .alpha_search import summary_text
from .compat import check_versions, make_run_dirs
from .config import PluginConfig
from .errors import ConfigError, DatasetFileError, TrainingDiverged
from .evaluation import results_table
from .glue import CROLossAdapter, get_model
from .glue.progress import CONSOLE
from .glue.trainer import CROLossTrainer
from .io import atomic_write_json, per_user_hits_file, save_per_user_hits
from .run_header import budget_line, dataset_line, files_lines, run_line, summary_lines
from .run_log import init_recbole_logger, log_file, verbose
from .settings_checks import check_writable_dir, empty_dataset_error
from .spec import DatasetNotFoundError, ResumeSpec, RunSpec
from .stages import run_stages, stage_plan


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
    return spec.training.adapter(spec.model_class(config, dataset).to(config["device"]), dataset)


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


def run(model: str = "GRU4Rec", dataset: str = "ml-100k", config_file_list=None, config_dict=None,
        cmd_args=None, saved: bool = True, record_file: str | None = None) -> dict:
    """Train ``model`` on ``dataset`` with the configured loss and evaluate it on the test split.

    Returns the run's record, also written atomically as JSON beside RecBole's log and, when
    given, to ``record_file`` (with its validation curves as ``X.curves.png``): ``model,
    dataset, loss, protocol, device, config, best_valid_score, valid_score_bigger,
    best_valid_result, test_result, history, files`` (and ``faiss`` when a serving index was
    asked for); the keys of RecBole's ``run_recbole`` result are among them.
    """
    check_record_file(record_file)
    config, spec = configure(model, dataset, config_file_list, config_dict, cmd_args)
    plan = stage_plan(config, spec.model_class)
    if plan:
        return run_stages(plan, model, dataset, config_file_list, config_dict, cmd_args, record_file)
    return train_configured(config, spec, saved, record_file)


def train_configured(config: PluginConfig, spec: RunSpec, saved: bool = True, record_file: str | None = None) -> dict:
    """One configured run in this process: :func:`train_and_test`, or for ``alpha: auto`` the
    search (:func:`~recbole_croloss.alpha_search_run.search_and_train`)."""
    if spec.alpha_search is not None:
        from .alpha_search_run import search_and_train  # it builds on this module's run flow

        return search_and_train(config, spec, saved, record_file)
    return train_and_test(prepare(config, spec), saved, record_file)


def check_record_file(record_file: str | None) -> None:
    """A record file must be writable before training, not found unwritable after it."""
    if record_file is None:
        return
    # '' would write no record, silently; 'dir/' would fail once the run is over.
    if not record_file or record_file.endswith(("/", os.sep)):
        raise ConfigError("record", record_file, "a file path, e.g. results/run.json")
    if os.path.isdir(record_file):
        raise ConfigError("record", record_file, "a file path (this is a directory)")
    check_writable_dir("record", os.path.dirname(os.path.abspath(record_file)))


def train_and_test(prepared: PreparedRun, saved: bool = True, record_file: str | None = None,
                   sections=None) -> dict:
    """Fit, test on the best weights (``saved`` and ``test_weights: best``) or the last, serve
    if asked; write the record, with the sections ``sections(record)`` returns when given
    (``alpha_search``)."""
    config, trainer, spec = prepared.config, prepared.trainer, prepared.spec
    if distributed.is_main(config):
        for line in [budget_line(config, spec), *files_lines(log_file(), record_file, saved and trainer.saved_model_file)]:
            getLogger().info(line, extra=CONSOLE)
    best_valid_score, best_valid_result = trainer.fit(
        prepared.train_data, prepared.valid_data, saved=saved, show_progress=config["show_progress"])
    test_result = trainer.evaluate(prepared.test_data,
                                   load_best_model=saved and spec.schedule.test_weights == "best",
                                   show_progress=config["show_progress"], keep_per_user=True)
    trainer.tensorboard.close()  # its event file complete; many runs in one process (tuning) keep no open writers
    record = run_record(prepared, best_valid_score, best_valid_result, test_result, saved)
    record.update(sections(record) if sections else {})
    if distributed.is_main(config):  # the test metrics are kept before anything optional runs
        write_per_user_hits(trainer.per_user_hits, record, record_file)
        write_curves(record, record_file)
        write_record(record, record_file)
    getLogger().info(f"test result (protocol: {spec.protocol.label})\n" + results_table(test_result))
    if spec.serving is not None:
        from .serving import faiss_test_results_or_error, serving_text

        record["faiss"] = faiss_test_results_or_error(prepared, spec.serving)
        if distributed.is_main(config):
            write_record(record, record_file)
        getLogger().info(serving_text(record["faiss"]))
    return record


def run_record(prepared: PreparedRun, best_valid_score, best_valid_result, test_result, saved) -> dict:
    """The run's record (what the CLI's JSON holds)."""
    import torch

    config, protocol = prepared.config, prepared.spec.protocol
    return {
        "model": config["model"], "dataset": config["dataset"], "loss": prepared.spec.training.loss,
        "protocol": protocol.name,  # loo: Recall@N equals Hit@N
        "protocol_label": protocol.label,
        "device": str(config["device"]),
        "threads": torch.get_num_threads(),  # in effect: the config's threads, else torch's default
        # in effect: a catalogue smaller than the shared negatives trains on every item (full)
        "negatives": prepared.adapter.sampler.name if prepared.adapter.sampler is not None else None,
        "config": {k: config[k] for k in sorted(config.final_config_dict) if k != "device"},
        "best_valid_score": best_valid_score,
        "valid_score_bigger": config["valid_metric_bigger"],  # with the three around it: run_recbole's result
        "best_valid_result": dict(best_valid_result or {}),
        "test_result": dict(test_result),
        "test_weights": prepared.spec.schedule.test_weights if saved else "last",
        **(prepared.trainer.training_summary or {}),
        "files": {"log": log_file() if distributed.is_main(config) else None,
                  "model": prepared.trainer.saved_model_file if saved else None},
    }


def write_record(record: dict, record_file: str | None) -> None:
    """Write ``record`` atomically beside RecBole's log (its ``files.result``) and to
    ``record_file`` when given."""
    log_file = record["files"]["log"]
    if log_file:
        record["files"]["result"] = os.path.splitext(log_file)[0] + ".json"
        atomic_write_json(record["files"]["result"], record)
    if record_file:
        atomic_write_json(record_file, record)


def write_per_user_hits(per_user_hits: dict | None, record: dict, record_file: str | None) -> None:
    """Each test user's Recall hits at every N (:func:`~recbole_croloss.io.save_per_user_hits`),
    beside each file the record goes to (``X.json`` -> ``X.hits.npz``), before the record."""
    if per_user_hits is None:
        return
    log_file = record["files"]["log"]
    paths = [per_user_hits_file(p) for p in (log_file and os.path.splitext(log_file)[0], record_file) if p]
    for path in paths:
        save_per_user_hits(path, per_user_hits)
    record["files"]["per_user_hits"] = paths[0] if paths else None


def write_curves(record: dict, record_file: str | None) -> None:
    """The validation curves as a PNG beside ``record_file`` (``X.json`` -> ``X.curves.png``,
    :mod:`recbole_croloss.validation_curves`), when one is asked for, named in the record's
    ``files.curves``."""
    if not record_file:
        return
    from .validation_curves import curves_file, draw_validation_curves

    path = curves_file(record_file)
    record["files"]["curves"] = path if draw_validation_curves(record, path) else None


def _rank_run(local_rank: int, model, dataset, files, cmd, processes, record_file):
    """One spawned rank of a ``--nproc`` run; rank 0 returns the record."""
    result = run(model, dataset, config_file_list=files, record_file=record_file,
                 cmd_args={**cmd, **processes.rank_settings(local_rank)})
    return result if local_rank + processes.offset == 0 else None


def launch_run(model: str = "GRU4Rec", dataset: str = "ml-100k", config_file_list=None,
               cmd_args=None, record_file: str | None = None) -> dict | None:
    """:func:`run`, in as many processes as the keys ask for.

    - under ``torchrun`` (its ``LOCAL_RANK``/``WORLD_SIZE`` in the environment) this process is
      one rank: it runs and returns the record on global rank 0, ``None`` elsewhere;
    - with ``nproc`` > 1 (or ``world_size`` > 1) it spawns ``nproc`` ranks on this machine and
      returns rank 0's record (:func:`recbole_croloss.distributed.launch`);
    - otherwise it is :func:`run`.
    """
    cmd = dict(cmd_args or {})
    check_record_file(record_file)
    ranks = distributed.torchrun_settings()
    if ranks is not None:
        try:
            result = run(model, dataset, config_file_list=config_file_list, record_file=record_file,
                         cmd_args={**cmd, **ranks})
        finally:
            distributed.leave_process_group()
        return result if ranks["local_rank"] + ranks["offset"] == 0 else None
    config, spec = configure(model, dataset, config_file_list, None, cmd)  # bad settings: an error
    if not spec.distributed.distributed:                                    # here, not in every rank
        plan = stage_plan(config, spec.model_class)
        if plan:
            return run_stages(plan, model, dataset, config_file_list, None, cmd, record_file)
        return train_configured(config, spec, record_file=record_file)
    return distributed.launch(_rank_run, spec.distributed.nproc,
                              args=(model, dataset, config_file_list, cmd, spec.distributed, record_file))


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="run_recbole_croloss.py",
        description="Train a RecBole sequential model with CROLoss and evaluate full-ranking "
                    "Recall/NDCG/Hit/MRR@50/100/200/500. Any RecBole key is accepted as --key=value.")
    parser.add_argument("--model", "-m", default="GRU4Rec", help="model name (plugin or RecBole)")
    parser.add_argument("--dataset", "-d", default="ml-100k", help="dataset name (ml-100k is bundled)")
    parser.add_argument("--config_files", default=None, help="YAML files, space-separated")
    parser.add_argument("--record", default=None, help="also write the run's JSON record to this file")
    args, rest = parser.parse_known_args(argv)
    cmd = {}
    for arg in rest:
        key, sep, value = arg[2:].partition("=") if arg.startswith("--") else ("", "", "")
        if not key or not sep:
            parser.error(f"unrecognised argument {arg!r}: settings are written --key=value")
        if key in cmd and cmd[key] != value:
            parser.error(f"--{key} given twice with different values")
        cmd[key] = value
    files = args.config_files.split() if args.config_files else None
    return args.model, args.dataset, files, cmd, args.record


def main(argv=None) -> int:
    model, dataset, files, cmd, record_file = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        result = launch_run(model, dataset, config_file_list=files, cmd_args=cmd, record_file=record_file)
    except (ConfigError, DatasetNotFoundError, DatasetFileError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except TrainingDiverged as err:  # the best checkpoint so far stays; no record is written
        print(f"error: {err}", file=sys.stderr)
        return 1
    except distributed.DistributedRunError as err:
        print(f"error: distributed run failed: {err}", file=sys.stderr)
        return 1
    if result is None:  # a rank other than 0: rank 0 reports
        return 0
    print(f"\n{result['model']} on {result['dataset']}, loss={result['loss']} "
          f"(protocol: {result['protocol_label']}; "
          f"{'' if result.get('protocol') == 'sampled' else 'full ranking; '}test split)")
    print(results_table(result["test_result"]))
    if "alpha_search" in result:
        print(summary_text(result["alpha_search"]))
    status = 0
    if "faiss" in result:
        from .serving import serving_text

        print(serving_text(result["faiss"]))
        status = 1 if "error" in result["faiss"] else 0
    for line in summary_lines(result):
        print(line)
    if result["files"].get("result"):
        print(f"config and metrics: {result['files']['result']}")
    return status
