"""Judging: evaluation outcomes become observations, drift decisions and alerts.

:class:`Judge` runs on the monitor's processing thread. It turns each outcome of the
evaluation pool into a settled evaluation (:class:`~cod_monitor.monitor.ledger.Ledger`)
and, for a result, an :class:`~cod_monitor.records.Observation`; judges observations
in step order per benchmark against the forecast of their checkpoint with the pure
:func:`~cod_monitor.monitor.drift.decide`; and emits alerts: journal, log, the
``stop_requested`` flag, trackers and the user's callback.

Alerts are logged on the logger named :data:`ALERT_LOGGER` (warning; info for a
recovery), so an application that shows them itself can filter that one logger.
"""

from __future__ import annotations

import collections
import logging
import math
from collections.abc import Callable
from dataclasses import replace

from cod_monitor.monitor.drift import DriftConfig, DriftState, decide, evaluation_failure_alert
from cod_monitor.monitor.fanout import TrackerFanout
from cod_monitor.monitor.forecasts import Forecasts
from cod_monitor.monitor.journal import Journal, JournalState
from cod_monitor.monitor.ledger import Ledger
from cod_monitor.records import Alert, AlertReason, EvalResult, Observation
from cod_monitor.runtime.jobs import JobOutcome

__all__ = ["ALERT_LOGGER", "Judge"]

logger = logging.getLogger(__name__)

#: Name of the logger every alert message is written to.
ALERT_LOGGER = "cod_monitor.monitor.alerts"
_alert_logger = logging.getLogger(ALERT_LOGGER)


class Judge:
    """Observations, drift states and alerts of every monitored benchmark.

    Parameters
    ----------
    benchmarks : list of str
    drift : DriftConfig
    ledger : Ledger
        Where outcomes are settled.
    forecasts : Forecasts
        The forecast each observation is judged against.
    journal : Journal
    fanout : TrackerFanout
    alert_callback : callable, optional
        ``alert_callback(alert)`` for every alert; an exception it raises is logged.

    Attributes
    ----------
    observations : list of Observation
        Every judged observation, without its per-sample result.
    stop_requested : bool
        Set by the first below-band alert; never cleared.
    alert_counts : collections.Counter
        Alerts emitted per reason (a resumed journal's included).
    """

    def __init__(self, benchmarks: list[str], drift: DriftConfig, ledger: Ledger,
                 forecasts: Forecasts, journal: Journal, fanout: TrackerFanout,
                 alert_callback: Callable[[Alert], None] | None = None):
        self.benchmarks = list(benchmarks)
        self.drift = drift
        self.alert_callback = alert_callback
        self._ledger = ledger
        self._forecasts = forecasts
        self._journal = journal
        self._fanout = fanout
        self.observations: list[Observation] = []
        self.stop_requested = False
        self.alert_counts: collections.Counter = collections.Counter()
        self._states: dict[str, DriftState] = {b: DriftState() for b in self.benchmarks}
        self._awaiting: dict[str, list[Observation]] = {b: [] for b in self.benchmarks}
        self._unreturned: collections.deque = collections.deque(maxlen=10_000)

    # ------------------------------------------------------------------ resume
    def restore(self, state: JournalState) -> None:
        """Take the drift states, judged observations, undecided results and alert
        counts of a replayed journal."""
        for b, d in state.drift.items():
            if b in self._states:
                self._states[b] = DriftState.from_dict(d)
        self.observations.extend(
            state.observation(key, with_results=False) for key in state.decisions
            if key[1] in self._states and key in state.results)
        self.observations.sort(key=lambda o: (o.step, o.benchmark))
        for key in state.undecided:
            if key[1] in self._awaiting:
                self._awaiting[key[1]].append(state.observation(key, with_results=False))
        for rec in state.alerts:
            self.alert_counts[rec.get("reason")] += 1

    # ------------------------------------------------------------------ processing
    def handle(self, o: JobOutcome) -> None:
        """Settle one outcome of the evaluation pool; a result waits to be judged."""
        step = int(o.job.group)
        b = o.job.job_id.split(":", 1)[1]
        if o.status == "done":
            result = o.result
            unusable = _unusable(result)
            if unusable is not None:
                self._fail(step, b, unusable, o.attempts)
                return
            tokens, compute = self._ledger.position(step)
            obs = Observation(step=step, compute=math.nan if compute is None else float(compute),
                              benchmark=b, accuracy=result.accuracy, result=result, tokens=tokens)
            if self._ledger.settle(step, b, "result", accuracy=obs.accuracy, compute=compute,
                                   tokens=tokens, result=result.to_dict(), attempts=o.attempts,
                                   wall_s=o.wall_s, worker=o.worker):
                self._awaiting.setdefault(b, []).append(obs)
        elif o.status == "failed":
            self._fail(step, b, o.error or "", o.attempts)
        elif o.status == "skipped":
            logger.debug("step %d of %s skipped by the queue policy", step, b)
            self._ledger.settle(step, b, "skipped", reason=o.error)
        # 'cancelled': stays pending in the journal; the next monitor resubmits it, and
        # close() names it in an EVALUATION_UNFINISHED alert

    def _fail(self, step: int, b: str, error: str, attempts: int) -> None:
        if self._ledger.settle(step, b, "failed", error=error, attempts=attempts):
            self.emit(evaluation_failure_alert(step, b, error, attempts))

    def decide_ready(self, force: bool = False) -> None:
        """Judge the observations whose turn has come.

        An observation waits for the first fit of its benchmark and for the pending
        evaluations of earlier steps (decisions are made in step order); ``force``
        judges everything waiting (at close).
        """
        for b, waiting in self._awaiting.items():
            if not waiting:
                continue
            if not force and not self._forecasts.settled(b):
                continue  # the first fit is still running: judge these when it lands
            waiting.sort(key=lambda o: o.step)
            pending = self._ledger.pending_steps(b)
            while waiting:
                if not force and pending and pending[0] < waiting[0].step:
                    break  # keep drift decisions in step order
                self._judge(waiting.pop(0))

    def _judge(self, obs: Observation) -> None:
        b = obs.benchmark
        fp = self._forecasts.point(b, obs.step, tokens=obs.tokens,
                                   compute=None if math.isnan(obs.compute) else obs.compute)
        alert, state = decide(obs, fp, self._states[b], self.drift)
        self._states[b] = state
        self._journal.append("decision", step=obs.step, benchmark=b, accuracy=obs.accuracy,
                             forecast=None if fp is None else fp.to_dict(),
                             drift=state.to_dict(),
                             alert=None if alert is None else alert.reason.value)
        self._fanout.log_observation(obs, fp)
        self.observations.append(replace(obs, result=None))
        self._unreturned.append(obs)
        if alert is not None:
            self.emit(alert)

    def emit(self, alert: Alert) -> None:
        """Journal, log and track an alert, and call the user's callback."""
        self.alert_counts[alert.reason.value] += 1
        self._journal.append("alert", **alert.to_dict())
        if alert.reason is AlertReason.RECOVERED:
            _alert_logger.info(alert.message)
        else:
            _alert_logger.warning(alert.message)
        if alert.reason is AlertReason.BELOW_BAND:
            self.stop_requested = True
        self._fanout.log_alert(alert)
        if self.alert_callback is not None:
            try:
                self.alert_callback(alert)
            except Exception:
                logger.warning("CODMonitor alert_callback raised", exc_info=True)

    # ------------------------------------------------------------------ queries
    def take_unreturned(self) -> list[Observation]:
        """The observations judged since the last call, oldest first."""
        out = []
        while True:
            try:
                out.append(self._unreturned.popleft())
            except IndexError:
                return out

    def waiting(self) -> bool:
        """Whether an observation waits to be judged."""
        return any(self._awaiting.values())

    def state(self, benchmark: str) -> DriftState:
        """The drift state of ``benchmark``."""
        return self._states[benchmark]

    @property
    def alerting(self) -> list[str]:
        """Benchmarks with a standing below-band alert."""
        return [b for b, s in self._states.items() if s.alerting]


def _unusable(result) -> str | None:
    """Why a job's result cannot be an observation (a sentence), or ``None``."""
    if not isinstance(result, EvalResult):
        return f"the job returned {type(result).__name__}, not an EvalResult"
    try:
        accuracy = result.accuracy
    except Exception as exc:  # e.g. pass rates that are not numbers
        return f"the accuracy of its result cannot be computed ({type(exc).__name__}: {exc})"
    if not math.isfinite(accuracy):  # e.g. NaN log-probabilities
        return (f"the evaluation returned a non-finite accuracy ({accuracy}) over "
                f"{len(result.pass_rates)} samples")
    return None
