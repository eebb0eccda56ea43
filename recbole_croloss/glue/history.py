r"""A run's training history: one entry per validation, and how and where training stopped.

Each entry holds ``epoch`` (RecBole's epoch index, counted from 0 as its log counts them; under
step-based validation the round index), ``step`` (training steps done, over the whole run),
``epochs_done`` (data epochs those steps cover), ``train_loss`` (the mean batch loss since the
previous validation), ``valid_score``, ``valid_result`` and ``wall_s`` (seconds since training
started, across resumes). The best entry follows RecBole's early-stopping rule: a score at
least as good as the best so far becomes the best (so of equal scores, the later one).
"""
from __future__ import annotations

#: Why training stopped: RecBole's early stopping, or the budget (epochs or steps) ran out.
STOP_REASONS = ("early_stop", "max_epochs", "max_steps")


class TrainingHistory:
    def __init__(self, bigger_is_better: bool = True):
        self.bigger_is_better = bigger_is_better
        self.entries: list[dict] = []
        self.wall_offset = 0.0  # seconds trained before a resume
        self._loss_sum, self._loss_batches = 0.0, 0

    def add_losses(self, total: float, batches: int) -> None:
        """Training-loss sum of ``batches`` batches, counted towards the next entry."""
        self._loss_sum += float(total)
        self._loss_batches += int(batches)

    def add_validation(self, epoch: int, step: int, epochs_done: float, valid_score: float,
                       valid_result: dict, wall_s: float) -> dict:
        entry = {
            "epoch": int(epoch), "step": int(step), "epochs_done": round(float(epochs_done), 4),
            "train_loss": self._loss_sum / self._loss_batches if self._loss_batches else None,
            "valid_score": float(valid_score),
            "valid_result": {k: float(v) for k, v in (valid_result or {}).items()},
            "wall_s": round(self.wall_offset + float(wall_s), 3),
        }
        self.entries.append(entry)
        self._loss_sum, self._loss_batches = 0.0, 0
        return entry

    def best(self) -> dict | None:
        best = None
        for entry in self.entries:
            if best is None or (entry["valid_score"] >= best["valid_score"] if self.bigger_is_better
                                else entry["valid_score"] <= best["valid_score"]):
                best = entry
        return best

    def summary(self, stopped: str, epochs_run: int, steps_run: int) -> dict:
        """The record's fields: ``history``, ``best_epoch``, ``best_step``, ``stopped``,
        ``epochs_run``, ``steps_run``."""
        if stopped not in STOP_REASONS:
            raise ValueError(f"stopped={stopped!r}; one of {STOP_REASONS}")
        best = self.best()
        return {"history": list(self.entries), "best_epoch": None if best is None else best["epoch"],
                "best_step": None if best is None else best["step"], "stopped": stopped,
                "epochs_run": int(epochs_run), "steps_run": int(steps_run)}

    def state(self, wall_s: float) -> dict:
        """Plain values for a resume checkpoint, ``wall_s`` seconds into this process's training."""
        return {"entries": list(self.entries), "wall_s": self.wall_offset + float(wall_s),
                "loss_sum": self._loss_sum, "loss_batches": self._loss_batches}

    def restore(self, state: dict) -> None:
        self.entries = list(state["entries"])
        self.wall_offset = float(state["wall_s"])
        self._loss_sum, self._loss_batches = float(state["loss_sum"]), int(state["loss_batches"])


def undertrained(record: dict, patience: int) -> bool:
    """Whether a run's best validation came within the last ``patience`` validations of a stop
    by its budget (not by early stopping): it may have improved with a larger budget."""
    history = record.get("history") or []
    if record.get("stopped") == "early_stop" or not history:
        return False
    best_index = max(i for i, e in enumerate(history) if e["step"] == record["best_step"])
    return len(history) - 1 - best_index < patience
