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

from cod_monitor.monitor.drift import (
    DriftConfig,
    DriftState,
    decide_with_run,
    evaluation_failure_alert,
)
from cod_monitor.monitor.fanout import TrackerFanout
from cod_monitor.monitor.forecasts import Forecasts
from cod_monitor.monitor.incidents import evaluation_skipped_alert
from cod_monitor.monitor.journal import Journal, JournalState
from cod_monitor.monitor.ledger import Ledger
from cod_monitor.monitor.run_forecasts import RunForecasts
from cod_monitor.records import Alert, AlertReason, EvalResult, FinalForecast, ForecastPoint, Observation
from cod_monitor.runtime.jobs import JobOutcome

__all__ = ["ALERT_LOGGER", "PROGRESS_LOGGER", "Judge"]

logger = logging.getLogger(__name__)

#: Name of the logger every alert message is written to.
ALERT_LOGGER = "cod_monitor.monitor.alerts"
_alert_logger = logging.getLogger(ALERT_LOGGER)
#: Pending checkpoints whose run-conditioned forecast a decision record carries (``next``).
NEXT_CHECKPOINTS = 3
#: Name of the logger of the one line per judged checkpoint (info).
PROGRESS_LOGGER = "cod_monitor.monitor.progress"
_progress_logger = logging.getLogger(PROGRESS_LOGGER)


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
                 alert_callback: Callable[[Alert], None] | None = None,
                 run_forecasts: RunForecasts | None = None):
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
        # the surprise rule's states: observations against the run-conditioned forecast
        self._run_states: dict[str, DriftState] = {b: DriftState() for b in self.benchmarks}
        self._run = run_forecasts
        self.finals: dict[str, FinalForecast | None] = {}
        # per benchmark, by judgement: (step, one-step forecast, final forecast)
        self.run_history: dict[str, list] = {b: [] for b in self.benchmarks}
        self._run_failures: set[str] = set()
        self._awaiting: dict[str, list[Observation]] = {b: [] for b in self.benchmarks}
        self._unreturned: collections.deque = collections.deque(maxlen=10_000)
        # (benchmark, step) -> (forecast judged against, final forecast, alerting after)
        self._judgements: dict[tuple[str, int], tuple] = {}
        # per benchmark: evaluations ended when the current stretch of queue drops began
        self._skip_stretch: dict[str, int] = {}

    # ------------------------------------------------------------------ resume
    def restore(self, state: JournalState) -> None:
        """Take the drift states, judged observations, undecided results and alert
        counts of a replayed journal."""
        for b, d in state.drift.items():
            if b in self._states:
                self._states[b] = DriftState.from_dict(d)
        for (step, b), rec in sorted(state.decisions.items()):
            if b in self._run_states and rec.get("run_drift") is not None:
                self._run_states[b] = DriftState.from_dict(rec["run_drift"])
            if b in self._states and rec.get("final") is not None:
                self.finals[b] = FinalForecast.from_dict(rec["final"])
            if b in self.run_history and (rec.get("run_forecast") or rec.get("final")):
                self.run_history[b].append((
                    int(step),
                    None if rec.get("run_forecast") is None
                    else ForecastPoint.from_dict(rec["run_forecast"]),
                    None if rec.get("final") is None else FinalForecast.from_dict(rec["final"])))
        if self._run is not None:
            self._run.restore(state)
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
            if self._ledger.settle(step, b, "skipped", reason=o.error):
                self._skipped(step, b, o.error or "")
        # 'cancelled': stays pending in the journal; the next monitor resubmits it, and
        # close() names it in an EVALUATION_UNFINISHED alert

    def _skipped(self, step: int, b: str, why: str) -> None:
        """Alert on a checkpoint the queue policy dropped, once per stretch of drops.

        A stretch ends when an evaluation of ``b`` ends (a result or a failure): the
        drops in between are journaled (``skipped`` records) and listed in the summary,
        and only the first raises ``EVALUATION_SKIPPED``.
        """
        ended = self._ledger.count(b, "result") + self._ledger.count(b, "failed")
        if self._skip_stretch.get(b) == ended:
            logger.debug("step %d of %s dropped in the same stretch; no new alert", step, b)
            return
        self._skip_stretch[b] = ended
        self.emit(evaluation_skipped_alert(step, b, why))

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
        run_fp = surprise = final = None
        upcoming = []
        if self._run is not None:
            # the forecast made before this checkpoint was seen: the surprise rule's band
            run_fp = self._guarded(b, self._run.one_step, b, obs.step, obs.tokens)
        raised, state, run_state, forgotten = decide_with_run(
            obs, fp, run_fp, self._states[b], self._run_states[b], self.drift)
        if self._run is not None:
            # the checkpoints that made a surprise alert are a departure, not the run's
            # course: the forecast forgets them, and learns nothing while an alert stands
            self._guarded(b, self._run.exclude_last, b, forgotten)
            surprise = self._guarded(b, self._run.observe, b, obs.step, obs.tokens, obs.accuracy,
                                     exclude=state.alerting or run_state.alerting)
            final = self._guarded(b, self._run.final, b, obs.step)
            # the checkpoints already taken and waiting for their evaluation
            upcoming = self._guarded(b, self._run.curve, b, [
                s for s in self._ledger.pending_steps(b) if s > obs.step][:NEXT_CHECKPOINTS]) or []
        self._states[b] = state
        self._run_states[b] = run_state
        self._journal.append("decision", step=obs.step, benchmark=b, accuracy=obs.accuracy,
                             forecast=None if fp is None else fp.to_dict(),
                             drift=state.to_dict(),
                             run_forecast=None if run_fp is None else run_fp.to_dict(),
                             run_drift=run_state.to_dict(),
                             surprise=None if surprise is None else surprise.to_dict(),
                             final=None if final is None else final.to_dict(),
                             forgotten=forgotten,
                             next=[p.to_dict() for p in upcoming],
                             alert=raised[0].reason.value if raised else None)
        self._fanout.log_observation(obs, fp)
        if self._run is not None:
            # also without a forecast, so that a tracker can end its line for this step
            self._fanout.log_run_forecast(obs, run_fp, final)
        self.finals[b] = final if final is not None else self.finals.get(b)
        self._judgements[(b, int(obs.step))] = (run_fp if run_fp is not None else fp, final,
                                                state.alerting or run_state.alerting)
        if run_fp is not None or final is not None:
            self.run_history.setdefault(b, []).append((obs.step, run_fp, final))
        _progress_logger.info(_progress_line(obs, fp, run_fp, final))
        self.observations.append(replace(obs, result=None))
        self._unreturned.append(obs)
        for a in raised:
            self.emit(a)

    def _guarded(self, b: str, fn, *args, **kwargs):
        """``fn(*args, **kwargs)``, or ``None`` when it raises: the run-conditioned
        forecast may fail; the observation is still judged by the ladder rule and
        recorded (said once per benchmark)."""
        try:
            return fn(*args, **kwargs)
        except Exception:
            if b not in self._run_failures:
                self._run_failures.add(b)
                logger.warning("CODMonitor: the run-conditioned forecast of %s failed; the "
                               "ladder's forecast judges it meanwhile.", b, exc_info=True)
            return None

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

    def judgement(self, benchmark: str, step: int) -> tuple | None:
        """``(forecast, final, alerting)`` of a checkpoint judged in this session: the
        forecast it was judged against (the run-conditioned one when there is one, as
        in the progress line), the final forecast made after it and whether a
        below-band alert stood after it; ``None`` when it was not judged here."""
        return self._judgements.get((benchmark, int(step)))

    def waiting(self) -> bool:
        """Whether an observation waits to be judged."""
        return any(self._awaiting.values())

    def state(self, benchmark: str) -> DriftState:
        """The drift state of ``benchmark``."""
        return self._states[benchmark]

    @property
    def alerting(self) -> list[str]:
        """Benchmarks with a standing below-band alert."""
        return [b for b, s in self._states.items() if s.alerting or self._run_states[b].alerting]


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


def _fmt_band(fp: ForecastPoint | None) -> str:
    if fp is None:
        return "none"
    return f"{fp.value:.3f} [{fp.lower:.3f}, {fp.upper:.3f}]"


def _progress_line(obs: Observation, fp: ForecastPoint | None, run_fp: ForecastPoint | None,
                   final: FinalForecast | None) -> str:
    """``cod/<b> step <s>: observed ..., forecast ..., final ...`` (one judged checkpoint)."""
    line = (f"cod/{obs.benchmark} step {obs.step}: observed {obs.accuracy:.3f}, forecast "
            f"{_fmt_band(run_fp if run_fp is not None else fp)}")
    if run_fp is not None and fp is not None:
        line += f" (ladder {fp.value:.3f})"
    if final is not None:
        line += (f"; final at step {final.final_step}: {final.value:.3f} "
                 f"[{final.lower:.3f}, {final.upper:.3f}] (ladder {final.prior_value:.3f})")
    return line
