"""The run's log: RecBole's logger set up beside a host's own handlers, closed between runs in
one process, and the log file a run record is written beside."""
from __future__ import annotations

import logging
import os
from logging import getLogger


def init_recbole_logger(config) -> None:
    """RecBole's ``init_logger``, also under a host that configured the root logger first
    (pytest, an application): RecBole's ``logging.basicConfig`` adds its console and file
    handlers only to a root logger that has none, which would leave the run without a log file
    and so without its record beside it. The host's handlers are set aside while RecBole adds
    its own and put back after."""
    from recbole.utils import init_logger

    root = getLogger()
    host_handlers = root.handlers[:]
    for handler in host_handlers:
        root.removeHandler(handler)
    try:
        init_logger(config)
    finally:
        for handler in host_handlers:
            root.addHandler(handler)


def close_log_handlers() -> None:
    """Remove and close the root logger's handlers, so that the next run in this process gets a
    log file (and a TensorBoard folder, named after it) of its own: RecBole's ``init_logger``
    adds its handlers only to a root logger that has none."""
    root = getLogger()
    for handler in root.handlers[:]:
        root.removeHandler(handler)
        handler.close()


def log_file() -> str | None:
    """RecBole's log file, where the record goes beside it; ``None`` for a log that is not a
    regular file (``/dev/null``: ``/dev/null.json`` would be created in ``/dev``)."""
    for handler in getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            return handler.baseFilename if os.path.isfile(handler.baseFilename) else None
    return None
