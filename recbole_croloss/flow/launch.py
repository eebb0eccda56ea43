"""Where a run starts: the only module that chooses the mode (one run, the stages of a staged
model, or a distributed run) and the processes."""
from __future__ import annotations

from .. import distributed
from .build import configure
from .record import check_record_file
from .stages import run_stages, stage_plan
from .train import train_configured


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
