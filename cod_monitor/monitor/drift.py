"""Drift decisions: is a run falling behind its forecast?

:func:`decide` is a pure function. It compares one observed accuracy with the
forecast band of its checkpoint and returns an optional :class:`~cod_monitor.records.Alert`
and the next :class:`DriftState`; it performs no I/O and reads no clock, so the
wiring (journal, trackers, logging, user callback, ``stop_requested``) lives in
:class:`~cod_monitor.monitor.judging.Judge` and a decision can be replayed from the
journal. The shape follows Lightning's ``EarlyStopping._evaluate_stopping_criteria``
(a decision with a reason enum and a full-sentence message holding the numbers).

The rule, with the band ``[lower - tolerance, upper + tolerance]`` of a
:class:`~cod_monitor.records.ForecastPoint`:

* **below band**: an observation under ``lower - tolerance`` counts one; ``patience``
  consecutive ones raise a :attr:`~cod_monitor.records.AlertReason.BELOW_BAND` alert,
  once. An observation back inside (or above) the band resets the count before the
  alert fires.
* **cumulative shortfall** (a one-sided CUSUM): each observation's standardised
  shortfall ``z = (forecast - observed) / sd``, with ``sd`` the band's lower half-width
  read as a normal quantile at ``band_level`` (at least ``sd_floor``), adds
  ``z - cusum_slack`` to a running sum that never drops below 0; when the sum exceeds
  ``cusum_threshold`` a :attr:`~cod_monitor.records.AlertReason.BELOW_BAND` alert is
  raised too. A run that falls behind a little at every evaluation, still inside the
  band, is caught by this rule before the band rule sees it. Such an alert clears only
  when the run is back at its forecast.
* **hysteresis**: once alerting, only ``recovery_patience`` consecutive observations at
  or above ``lower - tolerance + recovery_margin`` clear the alert, with a
  :attr:`~cod_monitor.records.AlertReason.RECOVERED` message. Observations that wobble
  just above the band edge keep the alert standing, so one noisy checkpoint neither
  clears nor re-raises it.
* **no forecast**: an observation without a forecast (the ladder could not be fitted,
  the checkpoint's tokens are unknown, ...) raises one
  :attr:`~cod_monitor.records.AlertReason.FORECAST_UNAVAILABLE` alert per stretch of
  such observations and leaves the drift counts as they were.
* **warm-up**: observations before ``min_step`` are not judged.

:func:`evaluation_failure_alert` builds the :attr:`~cod_monitor.records.AlertReason.EVALUATION_FAILING`
alert for a job that kept failing in the evaluation pool.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from statistics import NormalDist

from cod_monitor._validation import check_int, check_real, invalid
from cod_monitor.records import Alert, AlertReason, ForecastPoint, Observation

__all__ = [
    "RUN_MODE",
    "DriftConfig",
    "DriftState",
    "decide",
    "decide_with_run",
    "evaluation_failure_alert",
]


#: ``ForecastPoint.mode`` of a one-step-ahead forecast made from the run's earlier
#: checkpoints (:mod:`cod_monitor.monitor.run_forecasts`).
RUN_MODE = "run-conditioned"


@dataclass(frozen=True)
class DriftConfig:
    """Thresholds of the drift decision.

    Parameters
    ----------
    tolerance : float, default 0.01
        Accuracy (absolute, on the [0, 1] scale) added on each side of the forecast
        interval: the band an observation is judged against is
        ``[lower - tolerance, upper + tolerance]``.
    patience : int, default 2
        Consecutive below-band evaluations before a
        :attr:`~cod_monitor.records.AlertReason.BELOW_BAND` alert.
    recovery_margin : float, default 0.01
        Hysteresis: while alerting, an observation must reach
        ``lower - tolerance + recovery_margin`` to count towards recovery.
    recovery_patience : int, default 1
        Consecutive recovered evaluations that clear the alert.
    min_step : int, default 0
        Observations at earlier steps are recorded but not judged (e.g. warm-up).
    cusum_threshold : float or None, default 5.0
        Cumulative standardised shortfall that raises an alert; ``None`` turns the
        rule off (band rule only). 5 with a slack of 0.5 is the textbook one-sided
        CUSUM for a one-standard-deviation shift.
    cusum_slack : float, default 0.5
        Shortfall, in standard deviations, forgiven at every evaluation.
    band_level : float, default 0.9
        Coverage of the forecast interval the monitor computes: its lower half-width
        is this normal quantile times ``sd``.
    sd_floor : float, default 0.005
        Smallest ``sd`` (accuracy), so that a very narrow band does not turn a
        fraction of a point into many standard deviations.

    Raises
    ------
    ParameterError
        A negative tolerance or margin, a patience below 1, a negative ``min_step``,
        a non-positive CUSUM threshold or ``sd_floor``, a negative slack, a
        ``band_level`` outside (0, 1).

    Examples
    --------
    >>> DriftConfig(patience=3).patience
    3
    """

    tolerance: float = 0.01
    patience: int = 2
    recovery_margin: float = 0.01
    recovery_patience: int = 1
    min_step: int = 0
    cusum_threshold: float | None = 5.0
    cusum_slack: float = 0.5
    band_level: float = 0.9
    sd_floor: float = 0.005

    def __post_init__(self):
        owner = "DriftConfig"
        check_real(owner, "tolerance", self.tolerance, 0, closed="left")
        check_int(owner, "patience", self.patience, 1)
        check_real(owner, "recovery_margin", self.recovery_margin, 0, closed="left")
        check_int(owner, "recovery_patience", self.recovery_patience, 1)
        check_int(owner, "min_step", self.min_step, 0)
        check_real(owner, "cusum_threshold", self.cusum_threshold, 0, none_ok=True)
        check_real(owner, "cusum_slack", self.cusum_slack, 0, closed="left")
        check_real(owner, "band_level", self.band_level, 0, 1)
        check_real(owner, "sd_floor", self.sd_floor, 0)


@dataclass(frozen=True)
class DriftState:
    """What :func:`decide` remembers between evaluations of one benchmark.

    Attributes
    ----------
    below : int
        Consecutive below-band evaluations so far.
    recovered : int
        Consecutive evaluations above the recovery threshold while alerting.
    alerting : bool
        Whether a below-band alert stands (raised and not cleared).
    alert_step : int or None
        Step at which the standing alert was raised.
    forecast_missing : bool
        Whether the last judged observation had no forecast (a
        :attr:`~cod_monitor.records.AlertReason.FORECAST_UNAVAILABLE` alert was raised
        for this stretch).
    last_step : int or None
        Step of the last observation seen.
    shortfall : float
        The running cumulative standardised shortfall (0 when the run keeps up).
    shortfall_evaluations : int
        Evaluations since ``shortfall`` was last 0.
    alert_rule : {'band', 'shortfall'} or None
        Which rule raised the standing alert: a band alert clears when the run is back
        above the band's lower edge plus ``recovery_margin``, a shortfall alert when it
        is back at its forecast.
    """

    below: int = 0
    recovered: int = 0
    alerting: bool = False
    alert_step: int | None = None
    forecast_missing: bool = False
    last_step: int | None = None
    shortfall: float = 0.0
    shortfall_evaluations: int = 0
    alert_rule: str | None = None

    def to_dict(self) -> dict:
        """Plain-Python view, for the journal."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> DriftState:
        """Inverse of :meth:`to_dict` (unknown keys are ignored)."""
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def _plural(n: int, word: str) -> str:
    return f"{n} consecutive {word}" + ("s" if n != 1 else "")


def decide(
    observed: Observation | float,
    forecast: ForecastPoint | None,
    state: DriftState,
    config: DriftConfig,
    *,
    step: int | None = None,
    benchmark: str | None = None,
) -> tuple[Alert | None, DriftState]:
    """Judge one observation against its forecast band.

    Parameters
    ----------
    observed : Observation or float
        The measured checkpoint, or its accuracy alone (then ``step`` and
        ``benchmark`` come from the keywords or from ``forecast``).
    forecast : ForecastPoint or None
        The forecast for the same checkpoint; ``None`` when none is available.
    state : DriftState
        The state returned by the previous call for this benchmark
        (``DriftState()`` at first).
    config : DriftConfig
    step, benchmark : optional
        Override or supply the step and benchmark named in the message.

    Returns
    -------
    alert : Alert or None
        A new alert (``BELOW_BAND``, ``RECOVERED`` or ``FORECAST_UNAVAILABLE``), or
        ``None`` when nothing changed.
    state : DriftState
        The state to pass to the next call.

    Examples
    --------
    >>> from cod_monitor.records import ForecastPoint
    >>> fp = ForecastPoint(step=1200, compute=1e21, benchmark="gsm8k", value=0.476,
    ...                    lower=0.475, upper=0.478)
    >>> cfg = DriftConfig(tolerance=0.02, patience=2, cusum_threshold=None)  # band rule alone
    >>> alert, s = decide(0.41, fp, DriftState(), cfg)
    >>> alert is None, s.below
    (True, 1)
    >>> alert, s = decide(0.412, fp, s, cfg)
    >>> print(alert.message)
    cod/gsm8k at step 1200: observed accuracy 0.412 is below the forecast band [0.455, 0.498] (forecast 0.476) for 2 consecutive evaluations.
    """
    if isinstance(observed, Observation):
        accuracy = float(observed.accuracy)
        step = observed.step if step is None else step
        benchmark = observed.benchmark if benchmark is None else benchmark
    else:
        accuracy = float(observed)
    if forecast is not None:
        step = forecast.step if step is None else step
        benchmark = forecast.benchmark if benchmark is None else benchmark
    if step is None or benchmark is None:
        raise invalid("decide", "observed", "an Observation", observed,
                      "decide needs the step and benchmark: pass an Observation, a "
                      "ForecastPoint, or the step= and benchmark= keywords.")
    where = f"cod/{benchmark} at step {step}"
    state = replace(state, last_step=int(step))
    if step < config.min_step:
        return None, state

    if forecast is None:
        if state.forecast_missing:
            return None, state
        message = (f"{where}: no forecast is available, so the observed accuracy "
                   f"{accuracy:.3f} cannot be checked for drift.")
        alert = _alert(step, benchmark, AlertReason.FORECAST_UNAVAILABLE, message, accuracy)
        return alert, replace(state, forecast_missing=True)

    state = replace(state, forecast_missing=False)
    # which forecast: the ladder's, or the one made from the run's earlier checkpoints
    name = ("the one-step-ahead forecast band" if forecast.mode == RUN_MODE
            else "the forecast band")
    lower = float(forecast.lower) - config.tolerance
    upper = float(forecast.upper) + config.tolerance
    band = f"[{lower:.3f}, {upper:.3f}] (forecast {float(forecast.value):.3f})"

    if state.alerting:
        if state.alert_rule == "shortfall":
            # the run fell behind inside the band: it recovers by catching up, not by
            # staying inside the band
            threshold = float(forecast.value)
            what = f"its forecast (band {band})"
        else:
            threshold = lower + config.recovery_margin
            what = (f"the lower edge of {name} {band} plus the recovery margin "
                    f"{config.recovery_margin:.3f}")
        if accuracy >= threshold:
            recovered = state.recovered + 1
            if recovered >= config.recovery_patience:
                message = (f"{where}: observed accuracy {accuracy:.3f} is back above "
                           f"{threshold:.3f}, {what}, for {_plural(recovered, 'evaluation')}; "
                           f"the alert raised at step {state.alert_step} is cleared.")
                alert = _alert(step, benchmark, AlertReason.RECOVERED, message, accuracy,
                               lower, upper)
                return alert, DriftState(last_step=int(step))
            return None, replace(state, recovered=recovered)
        below = state.below + 1 if accuracy < lower else state.below
        return None, replace(state, recovered=0, below=below)

    below = state.below + 1 if accuracy < lower else 0
    shortfall, n_short = _cusum(accuracy, forecast, state, config)
    message, rule = None, "band"
    if below >= config.patience:
        message = (f"{where}: observed accuracy {accuracy:.3f} is below {name} "
                   f"{band} for {_plural(below, 'evaluation')}.")
    elif config.cusum_threshold is not None and shortfall > config.cusum_threshold:
        rule = "shortfall"
        message = (f"{where}: observed accuracy {accuracy:.3f} against {name} "
                   f"{band}: over the last {n_short} evaluation{'s' if n_short != 1 else ''} "
                   f"the run has fallen behind its forecast by a cumulative {shortfall:.1f} "
                   f"standard deviations beyond the slack of {config.cusum_slack:g} per "
                   f"evaluation (threshold {config.cusum_threshold:g}).")
    if message is not None:
        alert = _alert(step, benchmark, AlertReason.BELOW_BAND, message, accuracy, lower, upper)
        return alert, replace(state, below=below, alerting=True, alert_step=int(step),
                              recovered=0, shortfall=0.0, shortfall_evaluations=0,
                              alert_rule=rule)
    return None, replace(state, below=below, shortfall=shortfall,
                         shortfall_evaluations=n_short)


def decide_with_run(
    observed: Observation,
    forecast: ForecastPoint | None,
    run_forecast: ForecastPoint | None,
    state: DriftState,
    run_state: DriftState,
    config: DriftConfig,
) -> tuple[list[Alert], DriftState, DriftState, int]:
    """Judge one observation by both rules of a run-conditioned monitor.

    The **ladder rule** is :func:`decide` against the ladder-only band ``forecast``: it
    catches a run that is off from its first checkpoints, which a forecast learned from
    the run would follow. The **surprise rule** is :func:`decide` against
    ``run_forecast``, the one-step-ahead forecast made from the run's earlier
    checkpoints (:mod:`cod_monitor.cod.conditioning`), whose band is the checkpoint
    noise: a drop, or a steady shortfall, shows against it long before it leaves the
    ladder's wider band. At most one below-band alert stands per benchmark: a rule
    stays quiet while the other's alert stands, and its recovery waits for both.

    Parameters
    ----------
    observed : Observation
    forecast, run_forecast : ForecastPoint or None
    state, run_state : DriftState
        The two rules' states (``DriftState()`` at first).
    config : DriftConfig
        Both rules' thresholds.

    Returns
    -------
    alerts : list of Alert
        New alerts, at most one per rule.
    state, run_state : DriftState
    forgotten : int
        When the surprise rule has just raised an alert: the earlier observations of the
        stretch that made it, which the run-conditioned forecast should stop learning
        from (0 otherwise).
    """
    run_was_alerting = run_state.alerting
    alert, state = decide(observed, forecast, state, config)
    run_alert, forgotten = None, 0
    if run_forecast is not None:
        before = run_state
        run_alert, run_state = decide(observed, run_forecast, run_state, config)
        if run_alert is not None and run_alert.reason is AlertReason.BELOW_BAND:
            forgotten = max(before.below, before.shortfall_evaluations)

    def quiet(a, other_alerting):
        if a is not None and other_alerting and a.reason in (AlertReason.BELOW_BAND,
                                                             AlertReason.RECOVERED):
            return None
        return a

    if alert is not None and alert.reason is AlertReason.BELOW_BAND:
        alert = quiet(alert, run_was_alerting)
    else:
        alert = quiet(alert, run_state.alerting)  # a recovery waits for the other rule
    run_alert = quiet(run_alert, state.alerting)
    return [a for a in (alert, run_alert) if a is not None], state, run_state, forgotten


def _alert(step, benchmark, reason, message, accuracy, lower=None, upper=None) -> Alert:
    return Alert(step=int(step), benchmark=benchmark, reason=reason, message=message,
                 observed=accuracy, lower=lower, upper=upper)


def _cusum(accuracy: float, forecast: ForecastPoint, state: DriftState,
           config: DriftConfig) -> tuple[float, int]:
    """The next one-sided CUSUM of the standardised shortfall, and its run length."""
    if config.cusum_threshold is None:
        return 0.0, 0
    z_band = NormalDist().inv_cdf(0.5 + config.band_level / 2)
    value = float(forecast.value)
    sd = max((value - float(forecast.lower)) / z_band, config.sd_floor)
    shortfall = max(0.0, state.shortfall + (value - accuracy) / sd - config.cusum_slack)
    return shortfall, (state.shortfall_evaluations + 1 if shortfall > 0 else 0)


def evaluation_failure_alert(step: int, benchmark: str, error: str, attempts: int) -> Alert:
    """The alert for an evaluation job that failed on every attempt.

    Parameters
    ----------
    step : int
    benchmark : str
    error : str
        Last error (its last line is quoted in the message).
    attempts : int
        How many times the job ran.

    Returns
    -------
    Alert
        Reason :attr:`~cod_monitor.records.AlertReason.EVALUATION_FAILING`.

    Examples
    --------
    >>> print(evaluation_failure_alert(300, "gsm8k", "RuntimeError: boom", 3).message)
    cod/gsm8k at step 300: evaluation failed after 3 attempts (RuntimeError: boom); this checkpoint has no observation.
    """
    lines = [ln.strip() for ln in str(error).strip().splitlines() if ln.strip()]
    last = lines[-1] if lines else "unknown error"
    if len(last) > 300:
        last = last[:297] + "..."
    tries = f"{attempts} attempt" + ("s" if attempts != 1 else "")
    return Alert(
        step=int(step),
        benchmark=benchmark,
        reason=AlertReason.EVALUATION_FAILING,
        message=(
            f"cod/{benchmark} at step {step}: evaluation failed after {tries} ({last}); "
            "this checkpoint has no observation."
        ),
    )
