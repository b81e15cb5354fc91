"""The alerts for faults of the monitoring itself: each one a full sentence with its numbers.

A fault that can cost an observation is reported as an
:class:`~cod_monitor.records.Alert` as soon as it is known, not only as a log line:
an evaluation attempt that timed out or whose worker died (:func:`attempt_failure_alert`),
a journal whose disk refuses writes (:func:`journal_failure_alert`), evaluations still
pending when the monitor closes (:func:`unfinished_alert`), a failure of the
monitor's own processing (:func:`monitor_error_alert`), a tracker disabled after it
kept failing (:func:`tracker_failure_alert`) and checkpoints the queue policy dropped
(:func:`evaluation_skipped_alert`). An evaluation that fails on every attempt has
:func:`~cod_monitor.monitor.drift.evaluation_failure_alert`.

These are pure functions; :class:`~cod_monitor.monitor.CODMonitor` raises the alerts.
"""

from __future__ import annotations

from collections.abc import Sequence

from cod_monitor.monitor.fanout import TrackerFailure, describe
from cod_monitor.records import Alert, AlertReason
from cod_monitor.runtime.jobs import AttemptFailure

__all__ = [
    "attempt_failure_alert",
    "evaluation_skipped_alert",
    "journal_failure_alert",
    "monitor_error_alert",
    "tracker_failure_alert",
    "unfinished_alert",
]


def _steps(steps: Sequence[int], most: int = 10) -> str:
    """``'10, 20 and 30'``; long lists end with how many more."""
    shown = [str(s) for s in steps[:most]]
    if len(steps) > most:
        return f"{', '.join(shown)} and {len(steps) - most} more"
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"


def attempt_failure_alert(failure: AttemptFailure) -> Alert:
    """The alert for an evaluation attempt whose worker timed out or died.

    Parameters
    ----------
    failure : AttemptFailure
        As reported by the pool; its job id is ``'<step>:<benchmark>'``.

    Returns
    -------
    Alert
        Reason ``EVALUATION_TIMEOUT`` or ``WORKER_DIED``.

    Examples
    --------
    >>> from cod_monitor.runtime.jobs import Job
    >>> job = Job("300:gsm8k", "/snap", "gsm8k", group=300, attempt=1)
    >>> f = AttemptFailure(job, "timeout", "timed out after 300s on cpu; its worker was killed",
    ...                    "cpu", 300.2, True)
    >>> print(attempt_failure_alert(f).message)
    cod/gsm8k at step 300: evaluation attempt 1 timed out after 300s on cpu; its worker was killed and restarted, and the evaluation is retried.
    """
    step = int(failure.job.group)
    benchmark = failure.job.job_id.split(":", 1)[1]
    then = "the evaluation is retried" if failure.retried else "it is not retried"
    if failure.kind == "timeout":
        reason = AlertReason.EVALUATION_TIMEOUT
        what = f"{failure.error.rstrip('.')} and restarted, and {then}"
    else:
        reason = AlertReason.WORKER_DIED
        what = f"lost its worker ({failure.error.rstrip('.')}); it was restarted, and {then}"
    return Alert(step=step, benchmark=benchmark, reason=reason,
                 message=f"cod/{benchmark} at step {step}: evaluation attempt "
                         f"{failure.job.attempt} {what}.")


def journal_failure_alert(step: int, benchmark: str, path, error: BaseException) -> Alert:
    """The alert for a journal whose disk refuses writes (raised once per run of failures).

    Parameters
    ----------
    step : int
        The newest checkpoint taken when it happened (0 before the first).
    benchmark : str
    path : str or path
        The journal file.
    error : OSError
        What the disk said.

    Returns
    -------
    Alert
        Reason ``JOURNAL_FAILING``.
    """
    return Alert(step=int(step), benchmark=benchmark, reason=AlertReason.JOURNAL_FAILING,
                 message=(f"cod/{benchmark}: the journal {path} refuses writes "
                          f"({type(error).__name__}: {error}); evaluation and judging go on, "
                          "and its records are kept in memory until the disk takes them, but "
                          "a crash before then loses them. Free space on its disk."))


def unfinished_alert(benchmark: str, steps: Sequence[int], drain_s: float,
                     timeout: float | None, out_dir) -> Alert:
    """The alert for evaluations still pending when the monitor closed.

    Parameters
    ----------
    benchmark : str
    steps : sequence of int
        The checkpoints whose evaluation on ``benchmark`` did not finish, by step.
    drain_s : float
        How long closing waited for evaluations.
    timeout : float or None
        The drain's time limit.
    out_dir : str or path
        The monitor's directory (a monitor started on it resubmits them).

    Returns
    -------
    Alert
        Reason ``EVALUATION_UNFINISHED``, at the newest such step.

    Examples
    --------
    >>> print(unfinished_alert("gsm8k", [100, 200], 600.4, 600, "out").message)
    cod/gsm8k: the evaluations of steps 100 and 200 were unfinished when the monitor closed (it waited 600.4 s of its 600 s drain timeout); they stay pending in the journal, and a monitor started on out resubmits them.
    """
    limit = "with no time limit" if timeout is None else f"of its {timeout:g} s drain timeout"
    noun = "step" if len(steps) == 1 else "steps"
    return Alert(step=int(steps[-1]), benchmark=benchmark,
                 reason=AlertReason.EVALUATION_UNFINISHED,
                 message=(f"cod/{benchmark}: the evaluations of {noun} {_steps(list(steps))} "
                          f"were unfinished when the monitor closed (it waited {drain_s:.1f} s "
                          f"{limit}); they stay pending in the journal, and a monitor started "
                          f"on {out_dir} resubmits them."))


def monitor_error_alert(step: int, benchmark: str, where: str, error: BaseException) -> Alert:
    """The alert for a failure of the monitor's own processing.

    Parameters
    ----------
    step : int
        The checkpoint concerned (0 when none is).
    benchmark : str
    where : str
        What the monitor was doing (``'judging the result of step 300'``).
    error : Exception

    Returns
    -------
    Alert
        Reason ``MONITOR_ERROR``.
    """
    return Alert(step=int(step), benchmark=benchmark, reason=AlertReason.MONITOR_ERROR,
                 message=(f"cod/{benchmark} at step {step}: the monitor failed while {where} "
                          f"({type(error).__name__}: {error}); the traceback is in the log."))


def tracker_failure_alert(step: int, benchmark: str, failure: TrackerFailure) -> Alert:
    """The alert for a tracker disabled because it kept failing or hung (raised once per
    tracker).

    Parameters
    ----------
    step : int
        The newest checkpoint taken when it happened (0 before the first).
    benchmark : str
        The benchmark the alert is filed under (the monitor's first: a tracker serves
        them all).
    failure : TrackerFailure
        What :class:`~cod_monitor.monitor.fanout.TrackerFanout` reported.

    Returns
    -------
    Alert
        Reason ``TRACKER_FAILING``.

    Examples
    --------
    >>> f = TrackerFailure("WandbTracker", "start", "CommError: connection refused", 1, "start")
    >>> print(tracker_failure_alert(0, "gsm8k", f).message)
    cod: the tracker WandbTracker is disabled for the rest of the run: its start raised (CommError: connection refused). Its later records are dropped; the journal, the log and the other trackers carry on. Fix the tracker (for W&B: network, WANDB_API_KEY, WANDB_DIR) or set WANDB_MODE=offline, and resume the run to log again.
    """
    dropped = f" ({failure.dropped} queued record(s) dropped)" if failure.dropped else ""
    return Alert(step=int(step), benchmark=benchmark, reason=AlertReason.TRACKER_FAILING,
                 message=(f"cod: the tracker {failure.tracker} is disabled for the rest of the "
                          f"run: {describe(failure)} ({failure.error}). Its later records are "
                          f"dropped{dropped}; the journal, the log and the other trackers carry "
                          "on. Fix the tracker (for W&B: network, WANDB_API_KEY, WANDB_DIR) or "
                          "set WANDB_MODE=offline, and resume the run to log again."))


def evaluation_skipped_alert(step: int, benchmark: str, why: str) -> Alert:
    """The alert for a checkpoint the queue policy dropped before it was evaluated.

    Parameters
    ----------
    step : int
        The dropped checkpoint.
    benchmark : str
    why : str
        What the pool said (``"dropped by queue policy 'latest'"``).

    Returns
    -------
    Alert
        Reason ``EVALUATION_SKIPPED``.

    Examples
    --------
    >>> print(evaluation_skipped_alert(300, "gsm8k", "dropped by queue policy 'latest'").message)
    cod/gsm8k at step 300: this checkpoint has no observation: evaluation fell behind the checkpoints and it was dropped by queue policy 'latest' while waiting for a worker. Later drops before the next evaluation finishes are journaled and listed in the summary's skipped_steps without another alert. To evaluate every checkpoint, raise QueuePolicy(max_pending=...), add evaluation devices (PoolConfig(devices=...)), or hand over fewer checkpoints (CheckpointConfig(every=...)).
    """
    return Alert(step=int(step), benchmark=benchmark, reason=AlertReason.EVALUATION_SKIPPED,
                 message=(f"cod/{benchmark} at step {step}: this checkpoint has no observation: "
                          f"evaluation fell behind the checkpoints and it was "
                          f"{why.strip().rstrip('.') or 'dropped by the queue policy'} while "
                          "waiting for a worker. Later drops before the next evaluation "
                          "finishes are journaled and listed in the summary's skipped_steps "
                          "without another alert. To evaluate every checkpoint, raise "
                          "QueuePolicy(max_pending=...), add evaluation devices "
                          "(PoolConfig(devices=...)), or hand over fewer checkpoints "
                          "(CheckpointConfig(every=...))."))
