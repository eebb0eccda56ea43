"""Where the run flow lived: its names moved to :mod:`recbole_croloss.flow` (``build``, ``record``,
``single``, ``train``, ``stages``, ``launch``) and the command line to :mod:`recbole_croloss.cli`.
This module re-exports them for one release, so that ``from recbole_croloss.quick_start import
run`` keeps working; new code imports from where each name now lives.
"""
from .cli import main, parse_args
from .flow.build import (OWN_DATA_DEFAULTS, PreparedRun, build_adapter, build_trainer, configure, load_data,
                         load_dataset, load_splits, log_dataset_settings, prepare, prepare_run, resume)
from .flow.launch import launch_run, run
from .flow.record import check_record_file, run_record, write_curves, write_per_user_hits, write_record
from .flow.single import train_and_test
from .flow.stages import run_stages, stage_plan
from .flow.train import train_configured

__all__ = ["OWN_DATA_DEFAULTS", "PreparedRun", "build_adapter", "build_trainer", "check_record_file", "configure",
           "launch_run", "load_data", "load_dataset", "load_splits", "log_dataset_settings", "main", "parse_args",
           "prepare", "prepare_run", "resume", "run", "run_record", "run_stages", "stage_plan", "train_and_test",
           "train_configured", "write_curves", "write_per_user_hits", "write_record"]
