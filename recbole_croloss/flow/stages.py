"""A staged model's stages (``TRAIN_STAGES``, e.g. TiMiRec's pretrain and finetune) run by one
command, ``train_stage: pretrain_finetune``: each stage a run of its own (its own log file and
record section), each starting from the previous stage's best checkpoint."""
from __future__ import annotations

from .. import distributed
from ..errors import ConfigError
from .build import configure
from .record import write_record
from .train import train_configured

#: ``train_stage`` that runs every stage of a staged model (``TRAIN_STAGES``) in order, each
#: starting from the previous stage's best checkpoint (its ``pre_model_path``).
ALL_STAGES = "pretrain_finetune"


def stage_plan(config, model_class) -> tuple[str, ...] | None:
    """The stages to run in sequence, or ``None`` for one run; a stage the model does not have
    is refused here, before any data."""
    stages = getattr(model_class, "TRAIN_STAGES", None)
    if not stages:
        return None
    value = config["train_stage"]
    if value == ALL_STAGES:
        return tuple(stages)
    if value not in stages:
        raise ConfigError("train_stage", value, (*stages, ALL_STAGES))
    return None


def run_stages(plan, model, dataset, config_file_list, config_dict, cmd_args, record_file) -> dict:
    """Each stage of ``plan`` as its own run, with a log of its own; the last one's record,
    with each earlier stage's under ``stages`` (:func:`stage_section`), is the result (and the
    record written)."""
    earlier, previous = {}, None
    for stage in plan:
        cmd = {**(cmd_args or {}), "train_stage": stage, **({"pre_model_path": previous} if previous else {})}
        last = stage == plan[-1]
        config, spec = configure(model, dataset, config_file_list, config_dict, cmd)
        record = train_configured(config, spec, record_file=record_file if last else None)
        if not last:
            earlier[stage] = record
            previous = record["files"]["model"]
    record["stages"] = {stage: stage_section(section, record["config"]) for stage, section in earlier.items()}
    if distributed.is_main(record["config"]):
        write_record(record, record_file)
    return record


def stage_section(record: dict, last_config: dict) -> dict:
    """An earlier stage's record as the last stage's record keeps it: all of it (results,
    history, epochs run, files) but the config, of which ``settings`` keeps the keys whose value
    differs from the last stage's (``train_stage``, ``pre_model_path``)."""
    section = {k: v for k, v in record.items() if k != "config"}
    config = record["config"]
    section["settings"] = {k: v for k, v in config.items() if k not in last_config or last_config[k] != v}
    return section
