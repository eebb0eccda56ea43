"""The lines a run shows a person: the header before training (what is trained on what, how
long at most, where its files go) and the summary the command line prints after it.

RecBole's full config dump stays in the log file; these lines are what the compact console
(:mod:`recbole_croloss.glue.progress`) shows of the run besides the epochs' progress.
"""
from __future__ import annotations

import os
import shlex

#: The loss settings named in the header, for a loss of the CROLoss family.
_LOSS_SETTINGS = ("kernel", "alpha", "lambda_kernel")


def run_line(config, spec, adapter) -> str:
    """``model (stage) on dataset, loss: its settings; protocol; device`` for the model wrapped
    by ``adapter`` (whose sampler is the one the catalogue's size chose)."""
    stage = f" (train_stage {config['train_stage']})" if getattr(spec.model_class, "TRAIN_STAGES", None) else ""
    sampler = getattr(getattr(adapter, "sampler", None), "name", None)
    return (f"{config['model']}{stage} on {config['dataset']}, {loss_text(config, spec.training, sampler)}; "
            f"protocol: {spec.protocol.label}; device: {config['device']}")


def loss_text(config, training, sampler: str | None = None) -> str:
    """The loss with its kernel, alpha, negatives (``sampler``'s, where it is not the one the
    settings name) and score."""
    settings = training.loss_settings
    if settings is None:
        return f"loss {training.loss} (the model's own cross-entropy over every item)"
    parts = []
    if hasattr(settings, "kernel"):
        values = {"kernel": settings.kernel.name, "lambda_kernel": getattr(settings.lambda_kernel, "name", None),
                  "alpha": f"{settings.alpha:g}"}
        parts += [f"{key} {values[key]}" for key in _LOSS_SETTINGS if values[key] is not None]
    else:
        parts.append(f"t {settings.t:g}")
    negatives = training.negatives
    parts.append(f"negatives {sampler}" if sampler not in (None, negatives.name) else negatives_text(config, negatives))
    score = training.score
    parts.append(f"score {score.name}" + ("" if score.scale == 1.0 else f" x {score.scale:g}"))
    return f"loss {training.loss}: " + ", ".join(parts)


def negatives_text(config, negatives) -> str:
    per_positive = negatives.setting("neg_per_pos")
    if per_positive is None or negatives.name == "in_batch":
        return f"negatives {negatives.name}"
    batch = config["train_batch_size"]
    return f"negatives {negatives.name}: {per_positive} x {batch} = {per_positive * batch:,} shared per batch"


def dataset_line(config, dataset) -> str:
    """The dataset's size as loaded (filtered as the settings say), and where it was read."""
    return (f"dataset {config['dataset']}: {dataset.user_num - 1:,} users, {dataset.item_num - 1:,} items, "
            f"{dataset.inter_num:,} interactions ({os.path.abspath(config['data_path'])})")


def budget_line(config, spec) -> str:
    """How long training can run: the epochs (or steps) and the early stop."""
    if config["max_steps"] is not None:
        budget = f"at most {config['max_steps']:,} steps"
    else:
        budget = f"at most {config['epochs']} epoch{'s' if config['epochs'] != 1 else ''}"
    every = "" if config["eval_every_steps"] is None else f" (validated every {config['eval_every_steps']} steps)"
    return (f"training: {budget}{every}, stopping after {config['stopping_step']} validations without "
            f"a better {config['valid_metric']}")


def files_lines(log_file: str | None, record_file: str | None, model_file: str | None) -> list[str]:
    """Where the run's log (every setting and line), record and model go, as absolute paths."""
    records = [os.path.splitext(log_file)[0] + ".json"] if log_file else []
    records += [os.path.abspath(record_file)] if record_file else []
    return [f"log:    {log_file or 'none'} (every setting and every line)",
            f"record: {' and '.join(records) or 'none'}",
            f"model:  {os.path.abspath(model_file) if model_file else 'not saved'}"]


def recommend_command(model_file: str) -> str:
    """The command that recommends from a run's saved model."""
    return (f"python -m recbole_croloss.recommend --checkpoint {shlex.quote(os.path.abspath(model_file))} "
            "--input histories.txt --k 10")


def stage_lines(record: dict) -> list[str]:
    """One line per stage of a staged run (``record["stages"]`` and the last stage, the
    record itself): its best epoch, how it stopped, its test score and its model."""
    stages = record.get("stages")
    if not stages:
        return []
    metric = str(record["config"].get("valid_metric", "")).lower()
    lines = []
    for name, stage in [*stages.items(), (record["config"].get("train_stage"), record)]:
        score = (stage.get("test_result") or {}).get(metric)
        model = (stage.get("files") or {}).get("model")
        epochs = stage.get("epochs_run")
        lines.append(f"stage {name}: {epochs} epoch{'' if epochs == 1 else 's'} ({stage.get('stopped')}), best at "
                     f"epoch {stage.get('best_epoch')}; test {metric} {score}; "
                     f"model {os.path.abspath(model) if model else 'not saved'}")
    return lines


def summary_lines(record: dict) -> list[str]:
    """What the command line prints after the result table: the stages, the model and how to
    recommend from it."""
    lines = stage_lines(record)
    model = (record.get("files") or {}).get("model")
    if model:
        lines += [f"model: {os.path.abspath(model)}",
                  "recommend from it (histories.txt: one sequence of item tokens per line, oldest first):",
                  "  " + recommend_command(model)]
    return lines
