r"""What each validation shows in TensorBoard: every metric, the validation score and the
training loss since the previous validation, at the training step.

RecBole's trainer writes only ``Loss/Train`` (per epoch) and ``Vaild_score`` (sic; the one
``valid_metric``) to its ``log_tensorboard/<log name>`` folder. :class:`TensorBoardValidations`
is a validation listener of :class:`~recbole_croloss.glue.trainer.CROLossTrainer` that adds, to
the same writer, for each history entry (:mod:`.history`):

- ``valid/<metric>`` for every metric of the validation result (``valid/recall@50``, ...);
- ``valid/score``: the ``valid_metric``'s value;
- ``train/loss``: the mean batch loss since the previous validation;

all at ``step`` (training steps over the whole run, so a resumed run continues its curves and
step-based validation is drawn at the steps it ran).
"""
from __future__ import annotations


class TensorBoardValidations:
    """A validation listener: ``listener(index, entry)`` writes ``entry``'s scalars to ``writer``
    (a ``torch.utils.tensorboard.SummaryWriter``) and flushes, so the event file holds every
    validation so far even if the run is stopped."""

    def __init__(self, writer):
        self.writer = writer

    def __call__(self, index: int, entry: dict) -> None:
        step = entry["step"]
        for metric, value in entry["valid_result"].items():
            self.writer.add_scalar(f"valid/{metric}", value, step)
        self.writer.add_scalar("valid/score", entry["valid_score"], step)
        if entry["train_loss"] is not None:
            self.writer.add_scalar("train/loss", entry["train_loss"], step)
        self.writer.flush()
