"""The run spec: moved to :mod:`recbole_croloss.settings.spec`; this module re-exports its names
for one release."""
from .settings.spec import (
    AlphaSearchSpec, BAD_INPUT, ConfigError, DatasetFileError, DatasetNotFoundError,
    DistributedSpec, EVAL_ENGINES, EVAL_MASKS, EvalMask, EvaluationSpec, FAISS_INDEXES,
    FullRankingEvaluator, InterFile, PROTOCOLS, ResumeSpec, RunSpec, SUPPORTED, ScheduleSpec,
    ServingSpec, TrainingSpec, check_dataset_name, check_int, check_recbole_settings,
    check_serving, check_writable_dir, dataset_file, is_plugin_model, parse_bytes,
    protocol_from_config, read_inter_file, refuse_unread, threads_from_config,
    unknown_key_warnings,
)

__all__ = ["AlphaSearchSpec", "BAD_INPUT", "ConfigError", "DatasetFileError",
           "DatasetNotFoundError", "DistributedSpec", "EVAL_ENGINES", "EVAL_MASKS", "EvalMask",
           "EvaluationSpec", "FAISS_INDEXES", "FullRankingEvaluator", "InterFile", "PROTOCOLS",
           "ResumeSpec", "RunSpec", "SUPPORTED", "ScheduleSpec", "ServingSpec", "TrainingSpec",
           "check_dataset_name", "check_int", "check_recbole_settings", "check_serving",
           "check_writable_dir", "dataset_file", "is_plugin_model", "parse_bytes",
           "protocol_from_config", "read_inter_file", "refuse_unread", "threads_from_config",
           "unknown_key_warnings"]
