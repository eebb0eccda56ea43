"""The run's log: RecBole's logger set up beside a host's own handlers, closed between runs in
one process, and the log file a run record is written beside."""
from __future__ import annotations

import logging
import os
import secrets
from logging import getLogger

from ..errors import check_bool
from ..glue.progress import compact_console


def init_recbole_logger(config) -> None:
    """RecBole's ``init_logger``, also under a host that configured the root logger first
    (pytest, an application): RecBole's ``logging.basicConfig`` adds its console and file
    handlers only to a root logger that has none, which would leave the run without a log file
    and so without its record beside it. The host's handlers are set aside while RecBole adds
    its own and put back after. The handlers an earlier run of this process added are closed
    first (one run's lines never reach another's log file, nor the console twice); unless the
    run is verbose (:func:`verbose`), the console is the compact one
    (:func:`~recbole_croloss.glue.progress.compact_console`)."""
    from recbole.utils import init_logger

    quiet = not verbose(config)
    close_run_handlers()
    root = getLogger()
    host_handlers = root.handlers[:]
    for handler in host_handlers:
        root.removeHandler(handler)
    try:
        init_logger(config)
        unique_log_file(root)
        _run_handlers[:] = root.handlers
        if quiet:
            compact_console(root.handlers)
    finally:
        for handler in host_handlers:
            root.addHandler(handler)


#: The handlers :func:`init_recbole_logger` added for the run in progress.
_run_handlers: list = []


def verbose(config) -> bool:
    """Whether the console shows every line RecBole logs (``verbose: true``, or a ``state`` the
    user set, whose level RecBole applies to the console and the file alike)."""
    if check_bool("verbose", config["verbose"] if "verbose" in config else False):
        return True
    return "state" in getattr(config, "user_settings", {})


def close_run_handlers() -> None:
    """Remove and close the handlers :func:`init_recbole_logger` added, so that the next run in
    this process (the next stage of a staged model) writes a log file of its own; a host's
    handlers stay."""
    root = getLogger()
    for handler in _run_handlers:
        root.removeHandler(handler)
        handler.close()
    _run_handlers.clear()


def close_log_handlers() -> None:
    """Remove and close the root logger's handlers, so that the next run in this process gets a
    log file (and a TensorBoard folder, named after it) of its own: RecBole's ``init_logger``
    adds its handlers only to a root logger that has none."""
    root = getLogger()
    for handler in root.handlers[:]:
        root.removeHandler(handler)
        handler.close()
    _run_handlers.clear()


def log_file() -> str | None:
    """RecBole's log file, where the record goes beside it; ``None`` for a log that is not a
    regular file (``/dev/null``: ``/dev/null.json`` would be created in ``/dev``)."""
    for handler in getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            return handler.baseFilename if os.path.isfile(handler.baseFilename) else None
    return None


def unique_log_file(root: logging.Logger) -> None:
    """Give the run's log file a name no other run has. RecBole names it
    ``<model>-<dataset>-<time to the second>-<hash of the config>.log`` and appends to it, so
    two runs of one config started in the same second would share it (and the record, model
    files and TensorBoard folder named after it). The name gets random hex digits, the file is
    created exclusively, and the file RecBole opened is removed if nothing was written to it."""
    for handler in root.handlers:
        if isinstance(handler, logging.FileHandler) and os.path.isfile(handler.baseFilename):
            break
    else:
        return  # no log file (``/dev/null``): nothing is named after it
    stem = os.path.splitext(handler.baseFilename)[0]
    while True:
        path = f"{stem}-{secrets.token_hex(3)}.log"
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            break
        except FileExistsError:
            continue
    own = logging.FileHandler(path, encoding=handler.encoding)
    own.setLevel(handler.level)
    own.setFormatter(handler.formatter)
    for log_filter in handler.filters:
        own.addFilter(log_filter)
    root.removeHandler(handler)
    root.addHandler(own)
    handler.close()
    try:
        if os.path.getsize(handler.baseFilename) == 0:
            os.remove(handler.baseFilename)
    except FileNotFoundError:  # another run of this config, in this second, removed it first
        pass
