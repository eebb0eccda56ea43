"""What a run leaves: its JSON record (beside RecBole's log and where ``record`` says), each
test user's hits, and the validation curves; the record file checked writable before training."""
from __future__ import annotations

import os

from .. import distributed
from ..errors import ConfigError
from ..io import atomic_write_json, per_user_hits_file, save_per_user_hits
from .run_log import log_file
from ..settings.settings_checks import check_writable_dir
from .build import PreparedRun


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
    :mod:`recbole_croloss.flow.validation_curves`), when one is asked for, named in the record's
    ``files.curves``."""
    if not record_file:
        return
    from .validation_curves import curves_file, draw_validation_curves

    path = curves_file(record_file)
    record["files"]["curves"] = path if draw_validation_curves(record, path) else None
