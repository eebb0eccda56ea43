"""One run trained and tested, as RecBole's ``run_recbole`` reads: fit, evaluate, record, serve."""
from __future__ import annotations

from logging import getLogger

from .. import distributed
from ..evaluation import results_table
from ..glue.progress import CONSOLE
from .run_header import budget_line, files_lines
from .run_log import log_file
from .build import PreparedRun
from .record import run_record, write_curves, write_per_user_hits, write_record


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
        from .faiss_check import faiss_test_results_or_error, serving_text

        record["faiss"] = faiss_test_results_or_error(prepared, spec.serving)
        if distributed.is_main(config):
            write_record(record, record_file)
        getLogger().info(serving_text(record["faiss"]))
    return record
