"""The monitor's side of the tracker seam: every call goes to every tracker, isolated.

Each tracker gets its own *lane*: a daemon thread that makes that tracker's calls one
at a time, in the order they were made. The monitor only puts calls on the lanes, so
a slow or hung tracker (a W&B upload without network, a ``wandb.init`` waiting for its
90 s timeout) never holds up the training loop, the judging of results, or the other
trackers.

A tracker that fails is disabled, and said so once:

- a ``start`` that raises disables it at once (a tracker that could not open its sink
  would fail, or retry its start, on every later event);
- any other method that raises :data:`MAX_FAILURES` times in a row disables it (a
  success in between resets the count);
- a call still running after :data:`HANG_S` seconds disables it (the thread cannot be
  killed; it is abandoned, and later calls are dropped).

When a tracker is disabled the fanout calls ``on_disabled`` once (the monitor raises a
``TRACKER_FAILING`` alert, which reaches the journal, the log and the other trackers),
or, without that callback, logs one warning. Failures below the threshold are logged at
debug level with their traceback.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["FINISH_TIMEOUT_S", "HANG_S", "MAX_FAILURES", "TrackerFailure", "TrackerFanout", "describe"]

logger = logging.getLogger(__name__)

#: Consecutive failures of a tracker's methods (other than ``start``) that disable it.
MAX_FAILURES = 3
#: Seconds one tracker call may run before the tracker is taken for hung and disabled.
HANG_S = 60.0
#: Seconds :meth:`TrackerFanout.finish` waits, in all, for the trackers to finish.
FINISH_TIMEOUT_S = 5.0

_STOP = object()


@dataclass(frozen=True)
class TrackerFailure:
    """Why a tracker was disabled (what ``on_disabled`` receives).

    Attributes
    ----------
    tracker : str
        The tracker's class name.
    method : str
        The method whose failure disabled it (``'start'``, ``'log_observation'``, ...).
    error : str
        ``'<ExceptionType>: <message>'`` of the last failure, or what hung.
    failures : int
        Consecutive failures counted (0 for a hung call).
    kind : {'start', 'repeated', 'hung'}
        A failed ``start``; :data:`MAX_FAILURES` failures in a row; a call that ran
        past :data:`HANG_S` seconds (or past the finish timeout).
    dropped : int
        Calls queued for it that were dropped when it was disabled.
    """

    tracker: str
    method: str
    error: str
    failures: int
    kind: str
    dropped: int = 0


class _Lane:
    """One tracker's calls, made in order on its own thread."""

    def __init__(self, tracker, owner: TrackerFanout):
        self.tracker = tracker
        self.name = type(tracker).__name__
        self.owner = owner
        self.queue: queue.Queue = queue.Queue()
        self.lock = threading.Lock()
        self.idle = threading.Condition(self.lock)
        self.unfinished = 0  # calls put and not yet done (or dropped)
        self.busy_since: float | None = None
        self.busy_method: str | None = None
        self.failures = 0
        self.disabled = False
        self.thread: threading.Thread | None = None

    def put(self, method: str, args: tuple) -> None:
        with self.lock:
            if self.disabled:
                return
            self.unfinished += 1
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name=f"cod-tracker-{self.name}",
                                               daemon=True)
                self.thread.start()
        self.queue.put((method, args))

    def stop(self) -> None:
        self.queue.put((_STOP, ()))

    def _run(self) -> None:
        while True:
            method, args = self.queue.get()
            if method is _STOP:
                return
            with self.lock:
                if self.disabled:
                    self._done()
                    continue
                self.busy_since, self.busy_method = time.monotonic(), method
            error = None
            try:
                getattr(self.tracker, method)(*args)
            except Exception as exc:  # a tracker's failure is its own
                error = exc
                logger.debug("tracker %s.%s raised", self.name, method, exc_info=True)
            with self.lock:
                self.busy_since = self.busy_method = None
                self._done()
                if self.disabled:  # taken for hung meanwhile: reported already
                    continue
                if error is None:
                    self.failures = 0
                    continue
                self.failures += 1
                kind = "start" if method == "start" else (
                    "repeated" if self.failures >= self.owner.max_failures else None)
                if kind is None:
                    continue
                failure = self._disable(method, _one_line(error), kind)
            self.owner._report(failure)

    def _done(self) -> None:
        self.unfinished -= 1
        if self.unfinished <= 0:
            self.idle.notify_all()

    def _disable(self, method: str, error: str, kind: str) -> TrackerFailure:
        """Disable the lane and drop what waits on it (call with the lock held)."""
        self.disabled = True
        dropped = 0
        while True:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                break
            if item[0] is _STOP:
                self.queue.put(item)
                break
            dropped += 1
            self._done()
        self.idle.notify_all()
        return TrackerFailure(self.name, method, error, self.failures, kind, dropped)

    def check_hung(self, now: float, limit: float) -> TrackerFailure | None:
        """Disable the lane if its current call has run for ``limit`` seconds."""
        with self.lock:
            if self.disabled or self.busy_since is None or now - self.busy_since < limit:
                return None
            return self._disable(self.busy_method,
                                 f"its {self.busy_method} call has not returned after "
                                 f"{now - self.busy_since:.1f} s", "hung")

    def wait_idle(self, deadline: float | None) -> bool:
        """Wait until every call put is done (or dropped); False at the deadline."""
        with self.lock:
            while self.unfinished > 0 and not self.disabled:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self.idle.wait(None if left is None else min(left, 0.5))
            return True


class TrackerFanout:
    """Call every tracker, each on its own thread; start them once and finish them once.

    Parameters
    ----------
    trackers : sequence of Tracker
        Each gets its calls in the order they were made here.
    run_info : callable
        Returns the ``run_info`` passed to ``Tracker.start``; called once, just before
        the first event.
    on_disabled : callable, optional
        ``on_disabled(failure)`` with a :class:`TrackerFailure`, once per tracker that
        is disabled, on whichever thread noticed it (a tracker's thread, or the
        caller's); it must not block. Without it, one warning is logged instead.
    max_failures : int, default MAX_FAILURES
        Consecutive failures of a tracker method (other than ``start``) that disable
        the tracker.
    hang_s : float, default HANG_S
        Seconds a tracker call may run before the tracker is disabled as hung.
    finish_timeout : float, default FINISH_TIMEOUT_S
        Seconds :meth:`finish` waits, in all, for the trackers to finish.

    Notes
    -----
    No method blocks on a tracker except :meth:`flush` and :meth:`finish`, which wait
    at most their timeout. A hung call is noticed when the fanout is next used (an
    event, a flush, the finish).

    Examples
    --------
    >>> class Print:
    ...     def start(self, run_info): pass
    ...     def log_forecast(self, *a): pass
    ...     def log_observation(self, *a): pass
    ...     def log_alert(self, alert): print(alert)
    ...     def finish(self, summary): pass
    >>> fanout = TrackerFanout([Print()], lambda: {})
    >>> fanout.log_alert("drift!")  # returns at once; the tracker's thread prints
    >>> fanout.flush(timeout=5)
    drift!
    True
    """

    def __init__(self, trackers: Sequence, run_info: Callable[[], dict], *,
                 on_disabled: Callable[[TrackerFailure], None] | None = None,
                 max_failures: int = MAX_FAILURES, hang_s: float = HANG_S,
                 finish_timeout: float = FINISH_TIMEOUT_S):
        self.trackers = list(trackers)
        self.on_disabled = on_disabled
        self.max_failures = int(max_failures)
        self.hang_s = float(hang_s)
        self.finish_timeout = float(finish_timeout)
        self._run_info = run_info
        self._lanes = [_Lane(t, self) for t in self.trackers]
        self._lock = threading.Lock()
        self._started = False
        self._finished = False
        self.failures: list[TrackerFailure] = []

    @property
    def disabled(self) -> list[str]:
        """Class names of the trackers disabled so far, in tracker order."""
        return [lane.name for lane in self._lanes if lane.disabled]

    def start(self) -> None:
        """``start(run_info)`` on every tracker, the first time only."""
        with self._lock:
            if self._started:
                return
            self._started = True
        self._put("start", dict(self._run_info()))

    def log_forecast(self, benchmark, version, curve, report) -> None:
        """``log_forecast`` on every tracker (started first)."""
        self.start()
        self._put("log_forecast", benchmark, version, curve, report)

    def log_observation(self, observation, forecast) -> None:
        """``log_observation`` on every tracker (started first)."""
        self.start()
        self._put("log_observation", observation, forecast)

    def log_run_forecast(self, observation, one_step, final) -> None:
        """``log_run_forecast(observation, one_step, final)`` on every tracker that has
        it (an optional method: trackers written before it keep working)."""
        self.start()
        self._put("log_run_forecast", observation, one_step, final)

    def log_alert(self, alert) -> None:
        """``log_alert`` on every tracker (started first)."""
        self.start()
        self._put("log_alert", alert)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every tracker has made the calls put so far (or is disabled).

        Returns
        -------
        bool
            False when ``timeout`` seconds passed first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        ok = True
        for lane in self._lanes:
            while not lane.wait_idle(_soonest(deadline, time.monotonic() + 1.0)):
                self._check_hung()
                if deadline is not None and time.monotonic() >= deadline:
                    ok = False
                    break
        return ok

    def finish(self, summary: dict, timeout: float | None = None) -> None:
        """``finish(summary)`` on every tracker, the first time only (started first).

        Waits up to ``timeout`` (default :attr:`finish_timeout`) seconds in all; a
        tracker still busy then is disabled as hung (reported once) and left to finish
        on its own thread.
        """
        self.start()
        with self._lock:
            if self._finished:
                return
            self._finished = True
        self._put("finish", summary)
        limit = self.finish_timeout if timeout is None else float(timeout)
        self.flush(limit)
        for lane in self._lanes:
            with lane.lock:
                late = not lane.disabled and lane.unfinished > 0
                failure = lane._disable(lane.busy_method or "finish",
                                        f"it had not finished {limit:g} s after the monitor "
                                        "closed", "hung") if late else None
            if failure is not None:
                self._report(failure)
            lane.stop()

    def _put(self, method: str, *args) -> None:
        if self._finished and method != "finish":
            return  # Tracker contract: nothing after finish
        self._check_hung()
        for lane in self._lanes:
            if hasattr(lane.tracker, method):
                lane.put(method, args)

    def _check_hung(self) -> None:
        now = time.monotonic()
        for lane in self._lanes:
            failure = lane.check_hung(now, self.hang_s)
            if failure is not None:
                self._report(failure)

    def _report(self, failure: TrackerFailure) -> None:
        self.failures.append(failure)
        if self.on_disabled is None:
            logger.warning("tracker %s disabled: %s (%s); %d queued call(s) dropped",
                           failure.tracker, describe(failure), failure.error, failure.dropped)
            return
        try:
            self.on_disabled(failure)
        except Exception:  # the report itself must not break the caller
            logger.warning("reporting the failure of tracker %s raised", failure.tracker,
                           exc_info=True)


def describe(failure: TrackerFailure) -> str:
    """What disabled a tracker, as a clause.

    Examples
    --------
    >>> describe(TrackerFailure("WandbTracker", "log_alert", "OSError: disk full", 3, "repeated"))
    'log_alert raised 3 times in a row'
    """
    if failure.kind == "start":
        return "its start raised"
    if failure.kind == "repeated":
        return f"{failure.method} raised {failure.failures} times in a row"
    return f"its {failure.method} call hung"


def _one_line(error: BaseException, most: int = 300) -> str:
    """``'<Type>: <message>'`` on one line (W&B's messages span several), cut at ``most``."""
    text = " ".join(f"{type(error).__name__}: {error}".split())
    return text if len(text) <= most else text[:most - 3] + "..."


def _soonest(a: float | None, b: float) -> float:
    return b if a is None else min(a, b)
