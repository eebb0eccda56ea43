"""Train and evaluate one RecBole sequential model with a CROLoss variant: the CLI's flow.

Built from ``recbole.config``, ``recbole.data``, ``recbole.trainer`` and ``recbole.utils`` only
(``recbole.quick_start`` imports ray, which this project never imports). Usage::

    python run_recbole_croloss.py --model=GRU4Rec --loss=croloss --alpha=1.2 [--dataset=ml-100k]
        [--config_files="a.yaml b.yaml"] [--any_recbole_key=value ...]
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import dataclass
from logging import getLogger

from . import distributed
from .adapter import CROLossAdapter, CROLossTrainer
from .compat import CompatConfig, check_versions, make_run_dirs
from .errors import ConfigError
from .factory import DistributedSpec, EvaluationSpec, TrainingSpec
from .io import atomic_write_json
from .model import PROPERTIES_DIR, get_model, model_properties

METRICS_ORDER = ("recall", "ndcg", "hit", "mrr", "precision")


class DatasetNotFoundError(FileNotFoundError):
    pass


class PluginConfig(CompatConfig):
    """RecBole's Config, with the plugin's defaults under the user's files and explicit
    command-line settings (RecBole's own reads ``sys.argv``, whatever program is running)."""

    def __init__(self, model, dataset, config_file_list=None, config_dict=None, cmd_args=None):
        self._cmd_args = dict(cmd_args or {})
        files = [os.path.join(PROPERTIES_DIR, "overall.yaml")]
        files += [p for p in (model_properties(getattr(model, "__name__", str(model))),
                              dataset_properties(dataset)) if p]
        super().__init__(model=model, dataset=dataset,
                         config_file_list=files + list(config_file_list or []), config_dict=config_dict)

    def _load_cmd_line(self):
        return self._convert_config_dict(dict(self._cmd_args))


def dataset_properties(dataset: str) -> str | None:
    path = os.path.join(PROPERTIES_DIR, "dataset", f"{dataset}.yaml")
    return path if os.path.isfile(path) else None


def check_dataset(config) -> str:
    """The dataset's ``.inter`` file, or a clear error: RecBole would try to download it."""
    path = os.path.join(config["data_path"], f"{config['dataset']}.inter")
    if not os.path.isfile(path):
        raise DatasetNotFoundError(
            f"dataset {config['dataset']!r} not found: looked for {os.path.abspath(path)}. "
            f"Put its RecBole atomic files ({config['dataset']}.inter, optionally .item/.user) in "
            f"{os.path.abspath(config['data_path'])}, or set data_path to the folder that holds "
            f"the folder {config['dataset']}/. recbole-croloss never downloads data.")
    return path


def results_table(results: dict) -> str:
    """``metric | @50 | @100 ...`` as a compact text table."""
    rows: dict[str, dict[int, float]] = {}
    for key, value in results.items():
        metric, _, k = key.partition("@")
        rows.setdefault(metric.lower(), {})[int(k)] = float(value)
    ks = sorted({k for r in rows.values() for k in r})
    lines = ["metric    " + "".join(f"{'@' + str(k):>9}" for k in ks)]
    for metric in sorted(rows, key=lambda m: METRICS_ORDER.index(m) if m in METRICS_ORDER else 99):
        lines.append(f"{metric:<10}" + "".join(f"{rows[metric].get(k, float('nan')):>9.4f}" for k in ks))
    return "\n".join(lines)


def _log_file() -> str | None:
    for handler in getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            return handler.baseFilename
    return None


@dataclass
class Job:
    """Everything one run is made of, built but not yet trained."""

    config: PluginConfig
    spec: TrainingSpec
    train_data: object
    valid_data: object
    test_data: object
    net: CROLossAdapter
    trainer: CROLossTrainer
    evaluation: EvaluationSpec


def build(model: str = "GRU4Rec", dataset: str = "ml-100k", config_file_list=None,
          config_dict=None, cmd_args=None) -> Job:
    """Config, data, model wrapped by the adapter, and RecBole's trainer, as the CLI uses them."""
    from recbole.data import create_dataset
    from recbole.utils import init_logger, init_seed

    check_versions()
    model_class = get_model(model)
    config = PluginConfig(model_class, dataset, config_file_list, config_dict, cmd_args)
    spec = TrainingSpec.from_config(config)  # bad settings stop the run here, before any data
    spec.check_model(model_class)
    evaluation = EvaluationSpec.from_config(config)
    if not config["single_spec"] and evaluation.serving is not None:
        raise ConfigError("faiss_index", evaluation.serving.kind, "none in a distributed run (each "
                          "rank holds a share of the test users); export the model and serve it from "
                          "one process")
    check_dataset(config)
    init_seed(config["seed"], config["reproducibility"])
    if not config["single_spec"]:
        make_run_dirs(config)
    init_logger(config)
    logger = getLogger()
    logger.info(config)

    data = create_dataset(config)
    logger.info(data)
    evaluation.check_catalogue(data.item_num)  # a budget too small stops the run before training
    train_data, valid_data, test_data = evaluation.protocol.prepare(config, data)

    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    net = spec.wrap(model_class(config, train_data._dataset).to(config["device"]))
    logger.info(net)
    return Job(config, spec, train_data, valid_data, test_data, net, evaluation.trainer(config, net), evaluation)


def run(model: str = "GRU4Rec", dataset: str = "ml-100k", config_file_list=None, config_dict=None,
        cmd_args=None, saved: bool = True) -> dict:
    """Train ``model`` on ``dataset`` with the configured loss and evaluate it on the test split.

    Returns the run's record (also written, atomically, as JSON beside RecBole's log):
    ``model, dataset, loss, protocol, device, config, best_valid_result, test_result, files``.
    """
    job = build(model, dataset, config_file_list, config_dict, cmd_args)
    config, trainer = job.config, job.trainer
    best_valid_score, best_valid_result = trainer.fit(
        job.train_data, job.valid_data, saved=saved, show_progress=config["show_progress"])
    test_result = trainer.evaluate(job.test_data, load_best_model=saved,
                                   show_progress=config["show_progress"])

    serving = job.evaluation.serving
    served = serve_report(job, serving) if serving is not None else None

    log_file = _log_file() if is_main(config) else None  # one record, from rank 0
    result = {
        "model": config["model"], "dataset": config["dataset"], "loss": job.spec.loss,
        "protocol": job.evaluation.protocol.name,  # loo: Recall@N equals Hit@N
        "protocol_label": job.evaluation.protocol.label,
        "device": str(config["device"]),
        "config": {k: config[k] for k in sorted(config.final_config_dict) if k != "device"},
        "best_valid_score": best_valid_score,
        "best_valid_result": dict(best_valid_result or {}),
        "test_result": dict(test_result),
        "files": {"log": log_file, "model": trainer.saved_model_file if saved else None},
    }
    if served is not None:
        result["faiss"] = served
    if log_file:
        result["files"]["result"] = os.path.splitext(log_file)[0] + ".json"
        atomic_write_json(result["files"]["result"], result)
    getLogger().info(f"test result (protocol: {job.evaluation.protocol.label})\n" + results_table(test_result))
    if served is not None:
        getLogger().info(serving_text(served))
    return result


def is_main(config) -> bool:
    """Whether this process writes the run's record: the only process, or global rank 0."""
    return config["single_spec"] or config["local_rank"] + (config["offset"] or 0) == 0


def _rank_run(local_rank: int, model, dataset, files, cmd, spec: DistributedSpec):
    """One spawned rank of a ``--nproc`` run; rank 0 returns the record."""
    result = run(model, dataset, config_file_list=files, cmd_args={**cmd, **spec.rank_settings(local_rank)})
    return result if local_rank + spec.offset == 0 else None


def launch_run(model: str = "GRU4Rec", dataset: str = "ml-100k", config_file_list=None,
               cmd_args=None) -> dict | None:
    """:func:`run`, in as many processes as the keys ask for.

    - under ``torchrun`` (its ``LOCAL_RANK``/``WORLD_SIZE`` in the environment) this process is
      one rank: it runs and returns the record on global rank 0, ``None`` elsewhere;
    - with ``nproc`` > 1 (or ``world_size`` > 1) it spawns ``nproc`` ranks on this machine and
      returns rank 0's record (:func:`recbole_croloss.distributed.launch`);
    - otherwise it is :func:`run`.
    """
    cmd = dict(cmd_args or {})
    ranks = distributed.torchrun_settings()
    if ranks is not None:
        result = run(model, dataset, config_file_list=config_file_list, cmd_args={**cmd, **ranks})
        return result if ranks["local_rank"] + ranks["offset"] == 0 else None
    model_class = get_model(model)
    config = PluginConfig(model_class, dataset, config_file_list, None, cmd)
    spec = DistributedSpec.from_config(config)
    TrainingSpec.from_config(config).check_model(model_class)  # bad settings: an error here,
    EvaluationSpec.from_config(config)                          # not in every spawned rank
    if not spec.distributed:
        return run(model, dataset, config_file_list=config_file_list, cmd_args=cmd)
    return distributed.launch(_rank_run, spec.nproc, args=(model, dataset, config_file_list, cmd, spec))


def serving_text(served: dict) -> str:
    ann = next(k for k in served if k.startswith("ann_recall@"))
    return (f"served by a faiss {served['kind']} index ({served['device']}, built in "
            f"{served['build_seconds']:.1f}s): {ann.replace('_', ' ')} = {served[ann]:.4f} of the exact "
            "top N (padding item excluded, nothing else masked)\n" + results_table(served["test_result"])
            + (f"\nindex exported to {served['export']}" if served["export"] else ""))


def serve_report(job: Job, serving) -> dict:
    """Serve the test users from a faiss index of the trained item vectors (every item but the
    padding; nothing else masked) and compare with the exact top N of the chunked evaluator.

    Returns ``{"kind", "device", "build_seconds", "ann_recall@N", "test_result", "export"}``:
    the index's metrics on the test split and the mean fraction of the exact top N it finds.
    """
    import time

    import numpy as np
    import torch

    from .evaluation import Exclusions
    from .retrieval import ItemIndex, ann_recall

    net, evaluator = job.net, job.trainer.ranking_evaluator
    ranking = net.ranking_vectors()
    if ranking is None:
        raise ConfigError("faiss_index", serving.kind, f"{job.config['model']} ranks by its own "
                          "full_sort_predict, not by item vectors, so no index can serve it")
    score, keys = ranking
    dataset = job.test_data._dataset
    n_items, n = dataset.item_num, evaluator.n
    tokens = dataset.id2token(dataset.iid_field, np.arange(1, n_items))
    net.eval()
    with torch.no_grad():
        start = time.perf_counter()
        index = ItemIndex.build(net.item_vectors()[1:], tokens, kind=serving.kind, score=score.name,
                                scale=score.scale, nprobe=serving.nprobe)
        build_seconds = time.perf_counter() - start
        served, exact = evaluator.accumulator(), evaluator.accumulator()
        overlap = []
        for interaction, _, positive_u, positive_i in job.test_data:
            users = net.user_vectors(interaction.to(job.config["device"]))
            found = index.search(users, n)
            served_ids = torch.from_numpy(found.rows + 1)  # index row r is item r + 1 (-1: none)
            _, exact_ids = evaluator.topk(score.query(users), keys, Exclusions(always=(0,)))
            evaluator.add(served, served_ids, positive_u, positive_i, n_items)
            evaluator.add(exact, exact_ids.cpu(), positive_u, positive_i, n_items)
            overlap.append((ann_recall(found.rows + 1, exact_ids.cpu().numpy()), len(users)))
    if serving.export:
        index.save(serving.export)
    decimals = job.config["metric_decimal_place"]
    return {"kind": serving.kind, "device": "GPU" if index.on_gpu else "CPU",
            "build_seconds": round(build_seconds, 3),
            f"ann_recall@{n}": round(sum(r * u for r, u in overlap) / sum(u for _, u in overlap), 6),
            "test_result": served.result(decimals), "exact_test_result": exact.result(decimals),
            "export": os.path.abspath(serving.export) if serving.export else None}


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="run_recbole_croloss.py",
        description="Train a RecBole sequential model with CROLoss and evaluate full-ranking "
                    "Recall/NDCG/Hit/MRR@50/100/200/500. Any RecBole key is accepted as --key=value.")
    parser.add_argument("--model", "-m", default="GRU4Rec", help="model name (plugin or RecBole)")
    parser.add_argument("--dataset", "-d", default="ml-100k", help="dataset name (ml-100k is bundled)")
    parser.add_argument("--config_files", default=None, help="YAML files, space-separated")
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
    return args.model, args.dataset, files, cmd


def main(argv=None) -> int:
    model, dataset, files, cmd = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        result = launch_run(model, dataset, config_file_list=files, cmd_args=cmd)
    except (ConfigError, DatasetNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except distributed.DistributedRunError as err:
        print(f"error: distributed run failed: {err}", file=sys.stderr)
        return 1
    if result is None:  # a rank other than 0: rank 0 reports
        return 0
    print(f"\n{result['model']} on {result['dataset']}, loss={result['loss']} "
          f"(protocol: {result['protocol_label']}; full ranking; test split)")
    print(results_table(result["test_result"]))
    if "faiss" in result:
        print(serving_text(result["faiss"]))
    if result["files"].get("result"):
        print(f"config and metrics: {result['files']['result']}")
    return 0
