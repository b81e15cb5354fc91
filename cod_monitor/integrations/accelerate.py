"""Two helpers for an ``accelerate`` training loop watched by a :class:`~cod_monitor.monitor.CODMonitor`.

A plain loop calls the monitor itself (see ``examples/accelerate_loop.py``); what it
needs beyond that is the same in every such loop:

- :func:`log_observations`: the judged checkpoints' scalars (:meth:`CODMonitor.metrics
  <cod_monitor.monitor.CODMonitor.metrics>`) through ``Accelerator.log``, so that they
  reach the loop's own trackers (``log_with=``) beside its loss;
- :func:`stop_on_every_rank`: the monitor lives on the main process only, so its stop
  decision must reach every process at the same step, or the others would wait forever
  at their next collective. It goes through accelerate's own cross-process trigger
  (``set_trigger`` / ``check_trigger``).

This module imports neither ``accelerate`` nor ``torch``: it uses the ``Accelerator``
passed in.
"""

from __future__ import annotations

import logging

__all__ = ["log_observations", "stop_on_every_rank"]

logger = logging.getLogger(__name__)


def log_observations(accelerator, monitor, observations, step: int) -> int:
    """Log judged checkpoints through ``accelerator.log``; never raises.

    Parameters
    ----------
    accelerator : accelerate.Accelerator
    monitor : CODMonitor or None
        ``None`` on the processes that run no monitor (nothing is logged).
    observations : iterable of Observation
        What ``monitor.poll()`` returned.
    step : int
        The loop's current step, the step of the log rows (later than the
        checkpoints': the metrics carry ``cod/<benchmark>/checkpoint_step``).

    Returns
    -------
    int
        Observations logged.

    Notes
    -----
    A logger keeps one value per key and step, so one row holds at most one
    checkpoint per benchmark: when a call brings several of one benchmark (the drain
    at the end of training), the later ones are logged at ``step + 1``, ``step + 2``,
    ... Poll at every checkpoint during training, and this stays at the end (W&B drops
    a row whose step is older than one it has seen).

    Examples
    --------
    >>> log_observations(accelerator, monitor, monitor.poll(), step)  # doctest: +SKIP
    1
    """
    if monitor is None:
        return 0
    rows: list[dict] = []  # row i: at most one checkpoint per benchmark
    sizes: list[int] = []
    for obs in observations:
        try:
            metrics = monitor.metrics(obs)
        except Exception:
            logger.warning("Could not make the metrics of step %s; the run is not affected.",
                           obs.step, exc_info=True)
            continue
        i = next((i for i, r in enumerate(rows) if not metrics.keys() & r.keys()), len(rows))
        if i == len(rows):
            rows.append({})
            sizes.append(0)
        rows[i].update(metrics)
        sizes[i] += 1
    n = 0
    for i, row in enumerate(rows):
        try:
            accelerator.log(row, step=int(step) + i)
        except Exception:
            logger.warning("Could not log to the accelerate trackers; the run is not affected.",
                           exc_info=True)
            break
        n += sizes[i]
    return n


def stop_on_every_rank(accelerator, monitor, step: int, *, stop_on_drift: bool = True) -> bool:
    """Whether every process leaves the loop now because the run drifted.

    On the main process, a monitor that asks to stop (``monitor.stop_requested``: a
    below-band alert) sets accelerate's trigger; ``accelerator.check_trigger()`` (an
    all-reduce) then tells every process. Call it on **every** process at the same
    place of the loop (after each checkpoint, say: one small collective each time).
    accelerate has one trigger per process: a loop that also sets it for reasons of
    its own (a NaN loss) stops here too, and the monitor records the reason
    ``'trigger'``.
    When it returns ``True`` the monitor has recorded the stop
    (:meth:`CODMonitor.note_stopped <cod_monitor.monitor.CODMonitor.note_stopped>`),
    so its summary says ``status: stopped_by_drift``.

    Parameters
    ----------
    accelerator : accelerate.Accelerator
    monitor : CODMonitor or None
        The monitor on the main process, ``None`` elsewhere.
    step : int
        The loop's current step (where training stops).
    stop_on_drift : bool, default True
        ``False``: never set the trigger (the collective still runs, so that every
        process keeps making the same calls).

    Returns
    -------
    bool
        The same on every process.

    Examples
    --------
    >>> if stop_on_every_rank(accelerator, monitor, step):  # doctest: +SKIP
    ...     break
    """
    asks = False
    if monitor is not None and stop_on_drift:
        try:
            asks = bool(monitor.stop_requested)
        except Exception:
            logger.warning("Could not read the monitor's stop decision.", exc_info=True)
            asks = False
        if asks:
            accelerator.set_trigger()
    stop = bool(accelerator.check_trigger())  # every process, same place: a collective
    if stop and monitor is not None:
        # the loop may set accelerate's one trigger for reasons of its own
        monitor.note_stopped(step, "drift" if asks else "trigger")
        logger.warning("Training stops at step %d on every process%s.", step,
                       ": the run drifted below its forecast" if asks else "")
    return stop
