"""The monitor's lines on the console, for a training script that configures no logging.

The monitor writes one line per judged checkpoint (logger
:data:`~cod_monitor.monitor.judging.PROGRESS_LOGGER`), one per forecast version, its
alerts and, from the callbacks, a start-up line and a final report, all with the
:mod:`logging` module and none of them to a handler of its own. With Python's default
configuration (no handler anywhere) the ``INFO`` lines are dropped, so a ``Trainer``
user would see nothing of the monitor until an alert. :func:`show_progress` fixes that
for such scripts only: it leaves every configured logging set-up alone.

This module imports only the standard library.
"""

from __future__ import annotations

import logging

__all__ = ["CONSOLE_LOGGER", "hide_progress", "show_progress"]

#: The logger :func:`show_progress` attaches its handler to (every module of the package
#: logs under it).
CONSOLE_LOGGER = "cod_monitor"
_FORMAT = "%(asctime)s [cod_monitor] %(message)s"


class _ConsoleHandler(logging.StreamHandler):
    """The stderr handler :func:`show_progress` attaches (a type of its own, so that it
    is attached once and can be found)."""


def show_progress() -> bool:
    """Show the monitor's ``INFO`` lines on stderr when logging is not configured.

    Attaches a stream handler (stderr, ``HH:MM:SS [cod_monitor] message``) to the
    ``cod_monitor`` logger, and sets that logger's level to ``INFO`` when it has
    none, only when neither the logger nor any of its parents (the root logger
    included) has a handler: a script that configured logging (``basicConfig``, a
    handler of its own, a framework's) keeps exactly what it configured. Idempotent.
    The callbacks call it when training starts unless given ``console=False``.

    Returns
    -------
    bool
        Whether the handler is attached (now or before).

    Examples
    --------
    >>> from cod_monitor.integrations.console import show_progress
    >>> show_progress()  # doctest: +SKIP
    True
    """
    log = logging.getLogger(CONSOLE_LOGGER)
    if any(isinstance(h, _ConsoleHandler) for h in log.handlers):
        return True
    if log.hasHandlers():
        return False
    handler = _ConsoleHandler()
    handler.setFormatter(logging.Formatter(_FORMAT, datefmt="%H:%M:%S"))
    log.addHandler(handler)
    if log.level == logging.NOTSET:
        log.setLevel(logging.INFO)
    return True


def hide_progress() -> None:
    """Remove the handler :func:`show_progress` attached (and the level it set)."""
    log = logging.getLogger(CONSOLE_LOGGER)
    ours = [h for h in log.handlers if isinstance(h, _ConsoleHandler)]
    for h in ours:
        log.removeHandler(h)
    if ours and log.level == logging.INFO:
        log.setLevel(logging.NOTSET)
