"""The monitor's side of the tracker seam: every call goes to every tracker, safely.

A tracker that raises loses its own record and nothing else: the error is logged with
its traceback and the other trackers, and the monitor, carry on (the contract of
:class:`~cod_monitor.trackers.base.Tracker`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

__all__ = ["TrackerFanout"]

logger = logging.getLogger(__name__)


class TrackerFanout:
    """Call every tracker in turn, starting them once and finishing them once.

    Parameters
    ----------
    trackers : sequence of Tracker
        Called in this order.
    run_info : callable
        Returns the ``run_info`` passed to ``Tracker.start``; called once, just before
        the first event.
    """

    def __init__(self, trackers: Sequence, run_info: Callable[[], dict]):
        self.trackers = list(trackers)
        self._run_info = run_info
        self._started = False
        self._finished = False

    def start(self) -> None:
        """``start(run_info)`` on every tracker, the first time only."""
        if self._started:
            return
        self._started = True
        self._call("start", dict(self._run_info()))

    def log_forecast(self, benchmark, version, curve, report) -> None:
        """``log_forecast`` on every tracker (started first)."""
        self.start()
        self._call("log_forecast", benchmark, version, curve, report)

    def log_observation(self, observation, forecast) -> None:
        """``log_observation`` on every tracker (started first)."""
        self.start()
        self._call("log_observation", observation, forecast)

    def log_alert(self, alert) -> None:
        """``log_alert`` on every tracker (started first)."""
        self.start()
        self._call("log_alert", alert)

    def finish(self, summary: dict) -> None:
        """``finish(summary)`` on every tracker, the first time only (started first)."""
        self.start()
        if self._finished:
            return
        self._finished = True
        self._call("finish", summary)

    def _call(self, method: str, *args) -> None:
        for t in self.trackers:
            try:
                getattr(t, method)(*args)
            except Exception:
                logger.warning("tracker %s.%s raised; continuing", type(t).__name__, method,
                               exc_info=True)
