"""The tracker seam: where :class:`~cod_monitor.monitor.CODMonitor` reports what it sees.

A tracker is any object with the five methods of :class:`Tracker`; it need not
inherit from anything (a structural :class:`typing.Protocol`, like accelerate's
``GeneralTracker`` without the base class). Implementations:
:class:`~cod_monitor.trackers.wandb.WandbTracker` and
:class:`~cod_monitor.trackers.local.LocalTracker`.

This module imports only the record types.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from cod_monitor.records import Alert, ForecastPoint, Observation

__all__ = ["Tracker"]


@runtime_checkable
class Tracker(Protocol):
    """What the monitor calls on a tracker, and when.

    Lifecycle
    ---------
    1. **start(run_info)**, exactly once, before any other call.
    2. Then, in the order events happen, any number of:

       - **log_forecast(benchmark, version, curve, report)** when a forecast version
         is fitted for a benchmark: version 1 at start-up (or the version the journal
         resumes from), a higher version each time the ladder changes and is re-fitted;
       - **log_observation(observation, forecast)** once per evaluated checkpoint and
         benchmark, in step order per benchmark;
       - **log_alert(alert)** when the drift decision raises or clears an alert, or an
         evaluation keeps failing.
    3. **finish(summary)** once when the monitor closes; it must be idempotent (a
       second call is a no-op), and no other method is called after it.

    Threading and errors
    --------------------
    Each tracker's calls are made on a thread of its own, one at a time and in order,
    never on the training thread, so a tracker may do I/O (a W&B upload, a plot)
    without slowing training or the other trackers. A tracker should not raise: the
    monitor catches every exception, and a tracker whose ``start`` raises, whose other
    methods raise 3 times in a row, or whose call hangs (60 s) is disabled for the rest
    of the run with one ``TRACKER_FAILING`` alert; it loses its own records and nothing
    else. ``CODMonitor.close`` waits a few seconds for ``finish``. Rate limiting (e.g.
    of W&B alerts) is the tracker's business.

    Methods
    -------
    start(run_info)
        ``run_info`` keys: ``run_name``, ``out_dir``, ``benchmarks`` (list of str),
        ``ladder`` (summary: ``source``, ``n_models``, ``n_ladder``, ``runs``,
        ``compute_unit``), ``trajectory`` (requested mode), ``level``, ``params``
        (target run parameters, if known), ``devices``, ``evaluator`` (config),
        ``drift`` (the :class:`~cod_monitor.monitor.drift.DriftConfig` as a dict),
        ``resumed`` (bool).
    log_forecast(benchmark, version, curve, report)
        ``curve``: :class:`~cod_monitor.records.ForecastPoint` objects along the run
        (the steps evaluated so far and, when the run length is known, a grid to its
        end), by step. ``report``: :meth:`CODForecaster.report` of the fit plus a
        ``trajectory`` entry (mode, reason, per-cluster ``(N, D)`` laws, residual
        spread) and ``fingerprint`` (of the ladder files fitted).
    log_observation(observation, forecast)
        ``forecast`` is the :class:`~cod_monitor.records.ForecastPoint` of the same
        checkpoint (``None`` when no forecast was available).
    log_alert(alert)
        An :class:`~cod_monitor.records.Alert`; its ``message`` is a full sentence.
    finish(summary)
        ``summary`` keys: ``out_dir``, ``status`` (``'finished'``,
        ``'stopped_by_drift'``, ...), ``drift_detected``, ``stopped_at``,
        ``stop_reason``, ``benchmarks`` (per benchmark: observations, last step and
        accuracy, last forecast, forecast version, mode, alerting), ``alerts`` (count
        per reason), ``failed``, ``skipped``, ``stop_requested`` (kept for older
        readers: ``status == 'stopped_by_drift'``); see :meth:`CODMonitor.summary
        <cod_monitor.monitor.CODMonitor.summary>`.

    Examples
    --------
    >>> class PrintTracker:
    ...     def start(self, run_info): pass
    ...     def log_forecast(self, benchmark, version, curve, report): pass
    ...     def log_observation(self, observation, forecast): pass
    ...     def log_alert(self, alert): print(alert.message)
    ...     def finish(self, summary): pass
    >>> isinstance(PrintTracker(), Tracker)
    True
    """

    def start(self, run_info: dict) -> None:
        """Open the tracker's sink; called once, before anything else."""
        ...

    def log_forecast(
        self, benchmark: str, version: int, curve: list[ForecastPoint], report: dict
    ) -> None:
        """A new forecast version: the full trajectory curve and the forecaster report."""
        ...

    def log_observation(self, observation: Observation, forecast: ForecastPoint | None) -> None:
        """One evaluated checkpoint, with the forecast for that checkpoint."""
        ...

    def log_alert(self, alert: Alert) -> None:
        """An alert raised or cleared by the drift decision, or a failing evaluation."""
        ...

    def finish(self, summary: dict) -> None:
        """Flush and close; called once at the end. Idempotent."""
        ...
