"""What a run shows on the console while it trains, beside RecBole's log.

RecBole's ``init_logger`` sends every INFO line to the console and to the log file: a config
dump of about 150 lines before the first epoch. In the compact console (the default) the log
file keeps every line and the console shows only the lines logged with ``extra=CONSOLE`` (the
run's header, the time an epoch takes) and warnings (:class:`ConsoleFilter`), plus an
:class:`EpochProgress`: a bar with an ETA over the epochs on a terminal, one line per epoch
elsewhere, written to the console's stream only (a log file or a pipe gets no bar redraws).
"""
from __future__ import annotations

import logging
import time

from tqdm import tqdm

#: ``logger.info(message, extra=CONSOLE)``: a line the compact console shows too.
CONSOLE = {"console": True}


class ConsoleFilter(logging.Filter):
    """Pass warnings and the lines logged with ``extra=CONSOLE``; the log file keeps the rest."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or getattr(record, "console", False)


class ConsoleFormatter(logging.Formatter):
    """The compact console's lines: a header or progress line as it is, a warning prefixed
    with its level (RecBole's console format adds a date and the level to every line)."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        return message if record.levelno < logging.WARNING else f"{record.levelname}: {message}"


def is_console(handler: logging.Handler) -> bool:
    """Whether ``handler`` writes to a stream that is not a file (RecBole's console handler)."""
    return isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler)


def compact_console(handlers) -> None:
    """Make each console handler among ``handlers`` the compact console (the file handlers
    keep every line)."""
    for handler in handlers:
        if is_console(handler):
            handler.addFilter(ConsoleFilter())
            handler.setFormatter(ConsoleFormatter())


def compact_console_stream():
    """The stream of the root logger's compact console, or ``None`` (a verbose console, a
    ``state`` the user set, or no RecBole logger): where the epoch progress goes."""
    for handler in logging.getLogger().handlers:
        if is_console(handler) and any(isinstance(f, ConsoleFilter) for f in handler.filters):
            return handler.stream
    return None


def duration(seconds: float) -> str:
    """``seconds`` for a person: ``8.2 s``, ``41 min 24 s``, ``6 h 05 min``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class EpochProgress:
    """Training's progress over epochs ``start`` to ``total`` - 1: after the first epoch, a log
    line with the time it took and the most the rest of the budget can take; on ``stream`` (the
    compact console; ``None``: nothing more) a tqdm bar with an ETA when it is a terminal, else
    one line per epoch."""

    def __init__(self, stream, start: int, total: int, logger: logging.Logger, stopping_step: int | None = None):
        self.stream, self.start, self.total, self.logger = stream, start, total, logger
        self.stopping_step = stopping_step
        self.started = time.monotonic()
        self.bar = None
        if stream is not None and _is_terminal(stream):
            # RecBole's batch bars are 100 columns wide: one width, so that no bar leaves a tail
            self.bar = tqdm(total=total, initial=start, desc="Epochs", unit="epoch", file=stream,
                            ncols=100, leave=True, position=0)

    def epoch_done(self, epoch: int | None, loss: float | None = None, valid: str | None = None) -> None:
        """Epoch ``epoch`` (RecBole's index) has trained and validated: its loss and the
        validation's ``metric value`` text, when there was one."""
        if epoch is None:
            return
        elapsed = time.monotonic() - self.started
        done = epoch + 1 - self.start
        left = (self.total - epoch - 1) * elapsed / max(done, 1)
        if done == 1 and self.total - epoch - 1 > 0:
            self._log(self.estimate(elapsed, self.total - epoch - 1))
        facts = [f"loss {loss:.4f}" if loss is not None else None, valid]
        if self.bar is not None:
            self.bar.set_postfix_str(", ".join(f for f in facts if f), refresh=False)
            self.bar.update(1)
        elif self.stream is not None:
            line = ", ".join(f for f in [f"epoch {epoch} done ({epoch + 1}/{self.total})", *facts,
                                         f"{duration(elapsed / max(done, 1))} an epoch",
                                         f"at most {duration(left)} left" if left else None] if f)
            self.stream.write(line + "\n")
            self.stream.flush()

    def estimate(self, seconds: float, epochs_left: int) -> str:
        """The line logged after the first epoch."""
        sooner = f"; early stopping ends it sooner after {self.stopping_step} validations without " \
                 "improvement" if self.stopping_step else ""
        left = "the epoch left takes" if epochs_left == 1 else f"the {epochs_left} epochs left take"
        return (f"the first epoch took {duration(seconds)} (training and validation): {left} at most "
                f"{duration(seconds * epochs_left)}{sooner}")

    def _log(self, message: str) -> None:
        if self.bar is None:
            self.logger.info(message, extra=CONSOLE)
            return
        with tqdm.external_write_mode(file=self.stream):
            self.logger.info(message, extra=CONSOLE)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
