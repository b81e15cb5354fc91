"""A tracker that logs forecasts, observations and alerts to Weights & Biases."""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from datetime import timedelta

from cod_monitor._io import to_jsonable
from cod_monitor._validation import check_real, invalid
from cod_monitor.exceptions import CODError, MissingExtraError
from cod_monitor.records import (
    METRIC_NAMES,
    Alert,
    AlertReason,
    FinalForecast,
    ForecastPoint,
    Observation,
)

__all__ = ["TrackerFinishedError", "TrackerUnavailableError", "WandbTracker"]

logger = logging.getLogger(__name__)


#: Custom x-axes. Results arrive asynchronously, after the trainer's step has moved on,
#: so rows never pass ``step=`` (W&B drops a step older than its current one).
STEP_KEY = "cod/ckpt_step"
COMPUTE_KEY = "cod/compute"

#: Per-benchmark keys plotted against :data:`STEP_KEY` (``cod/<benchmark>/<name>``).
STEP_METRICS = (
    "observed", "forecast", "lower", "upper", "residual", "final_forecast", "final_lower",
    "final_upper", "forecast_version", "drift",
    # the run-conditioned forecast (:meth:`WandbTracker.log_run_forecast`)
    "run/one_step", "run/one_step_lower", "run/one_step_upper", "run/final", "run/final_lower",
    "run/final_upper", "run/final_ladder", "run/level", "run/rate",
)
#: Per-benchmark keys plotted against :data:`COMPUTE_KEY` (``cod/<benchmark>/by_compute/<name>``).
COMPUTE_METRICS = ("observed", "forecast", "lower", "upper")
#: Entries of the monitor's per-benchmark summary left out of the run summary: the
#: tracker's own keys say the same (``n_observations``, ``last_observed``,
#: ``final_forecast``/``final_lower``/``final_upper``).
_SAME_AS_OWN = ("observations", "last_accuracy", "final_forecast")

_LEVELS = {
    AlertReason.BELOW_BAND: "WARN",
    AlertReason.EVALUATION_FAILING: "ERROR",
    AlertReason.FORECAST_UNAVAILABLE: "WARN",
    AlertReason.RECOVERED: "INFO",
    AlertReason.EVALUATION_TIMEOUT: "WARN",
    AlertReason.WORKER_DIED: "WARN",
    AlertReason.EVALUATION_UNFINISHED: "ERROR",
    AlertReason.JOURNAL_FAILING: "ERROR",
    AlertReason.MONITOR_ERROR: "ERROR",
    AlertReason.TRACKER_FAILING: "WARN",
    AlertReason.EVALUATION_SKIPPED: "WARN",
    AlertReason.LADDER_REJECTED: "ERROR",
}


class TrackerFinishedError(CODError, RuntimeError):
    """An event was logged to a tracker after its ``finish``."""


class TrackerUnavailableError(CODError, RuntimeError):
    """The tracker could not open its W&B run; it does not try again."""


def _import_wandb():
    MissingExtraError.check("WandbTracker", "wandb", "wandb")
    import wandb

    return wandb


def _plain(x):
    """JSON-safe copy for ``run.config`` and ``run.summary`` (other objects as ``str``)."""
    return to_jsonable(x, other=str)


def _flatten(d: dict, prefix: str) -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}/{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key))
        else:
            out[key] = _plain(v)
    return out


class WandbTracker:
    """Log a monitored run to Weights & Biases.

    Reuses the open run (``wandb.run``, e.g. the one the ``Trainer``'s
    ``WandbCallback`` opened) or a run passed in; otherwise opens one in :meth:`start`
    and closes it in :meth:`finish`. A run it did not open is never finished by it.

    Logged keys (``<b>`` is the benchmark):

    - ``cod/ckpt_step`` and ``cod/compute``: the x-axes, declared with
      ``define_metric``. Every row carries them; rows never pass ``step=``, because
      results arrive after the trainer's step has moved on and W&B silently drops a
      row whose ``step`` is older than the run's current one.
    - ``cod/<b>/{observed,forecast,lower,upper,residual,drift}`` per checkpoint, and
      ``cod/<b>/{final_forecast,final_lower,final_upper,forecast_version}`` per forecast
      version, plotted against ``cod/ckpt_step``; ``drift`` is 1 on a ``below_band``
      alert and 0 on ``recovered``.
    - ``cod/<b>/by_compute/{observed,forecast,lower,upper}``: the same numbers plotted
      against ``cod/compute`` (FLOPs).
    - ``cod/<b>/forecast_vs_observed``: a line chart (``wandb.plot.line_series``) of the
      whole forecast trajectory with its interval and the observed points against the
      step; re-logged on each forecast version, at most every ``chart_interval_s`` on
      observations, and at finish.
    - ``cod/<b>/clusters`` (table per forecast version: cluster, size, verdict, fitted
      law a/b/c/g, rmse, ceiling, detail) and ``cod/<b>/forecast_curve`` (table of the
      trajectory points).
    - Alerts go to ``run.alert(title, text, level, wait_duration)``, rate-limited on the
      client per (benchmark, reason) by ``alert_cooldown_s`` (W&B's ``wait_duration`` is
      enforced by the server only, so offline runs would record every repeat).
    - At finish, ``run.summary`` gets ``cod/<b>/{final_forecast,final_lower,final_upper,
      forecast_version,last_observed,last_step,n_observations,n_alerts,
      n_alerts_suppressed}``, the rest of the monitor's per-benchmark summary flattened
      under ``cod/<b>/`` and the rest of it under ``cod/summary/`` (``status``:
      ``finished`` or ``stopped_by_drift``, ``drift_detected``, ``stopped_at``, ...).
      One key per quantity: the scalar series above are kept out of the summary
      (``define_metric(summary='none')``), since their last value is already there
      under its own name.

    When the training loop's own logger already brings the per-checkpoint scalars
    into the same run (``log_stream_prefix``), the tracker logs none of the scalar
    series above: W&B plots the loop's ``<prefix>cod/<b>/<name>`` keys (see
    :data:`~cod_monitor.records.METRIC_NAMES`) against ``<prefix>cod/<b>/checkpoint_step``
    and keeps them out of the summary; charts, tables, alerts and the summary are the
    tracker's as above.

    ``final_*`` is the last point of the forecast curve: the end of the run when the
    monitor knows its length, else the latest evaluated checkpoint.

    Parameters
    ----------
    project : str, optional
        Project of a run this tracker opens; defaults to ``$WANDB_PROJECT`` or
        ``'cod-monitor'``.
    run : wandb Run, optional
        Log to this run (never finished by the tracker).
    alert_cooldown_s : float, default 600
        Minimum seconds between two alerts with the same (benchmark, reason); repeats
        inside it are counted and dropped.
    entity, name, tags, config : optional
        Passed to ``wandb.init`` when the tracker opens the run.
    dir : str, optional
        Directory of a run this tracker opens; defaults to ``$WANDB_DIR`` when set, else
        the ``out_dir`` of ``run_info``.
    chart_interval_s : float, default 300
        Minimum seconds between re-logs of the line chart triggered by observations.
    clock : callable, default time.monotonic
        Time source of the alert cooldown and chart interval.
    log_stream_prefix : str, optional
        Set when the run also receives :meth:`CODMonitor.metrics
        <cod_monitor.monitor.CODMonitor.metrics>` through the training loop's logger,
        to the prefix that logger puts before ``cod/``: ``'train/'`` for the HF
        ``Trainer``'s ``WandbCallback`` (its :class:`~cod_monitor.integrations.hf.CODCallback`
        sets it), ``''`` for a Lightning ``WandbLogger``. ``None`` (default): the
        tracker logs its own scalar series.

    Attributes
    ----------
    fallback_dir_ : str or None
        Where W&B wrote a run this tracker opened, when that is not the directory asked
        for (``dir``, ``$WANDB_DIR`` or ``out_dir``): W&B falls back to the system temp
        directory when that one is not writable. Logged as a warning.

    Notes
    -----
    Environment variables read by wandb itself: ``WANDB_MODE`` (``offline`` writes the
    run to disk only; ``wandb sync`` uploads it later), ``WANDB_DIR``,
    ``WANDB_PROJECT``, ``WANDB_ENTITY``, ``WANDB_API_KEY``, ``WANDB_SILENT``.

    Examples
    --------
    >>> tracker = WandbTracker(project="my-run", alert_cooldown_s=1800)  # doctest: +SKIP
    >>> monitor = CODMonitor(..., trackers=[tracker])  # doctest: +SKIP
    """

    def __init__(self, project: str | None = None, run=None, *, alert_cooldown_s: float = 600.0,
                 entity: str | None = None, name: str | None = None, tags=None,
                 config: dict | None = None, dir: str | None = None,
                 chart_interval_s: float = 300.0, clock=time.monotonic,
                 log_stream_prefix: str | None = None):
        MissingExtraError.check("WandbTracker", "wandb", "wandb")
        self.project = project
        self.run = run
        self.alert_cooldown_s = check_real("WandbTracker", "alert_cooldown_s", alert_cooldown_s,
                                           0, closed="left")
        self.entity = entity
        self.name = name
        self.tags = tags
        self.config = config
        self.dir = dir
        self.chart_interval_s = check_real("WandbTracker", "chart_interval_s", chart_interval_s,
                                           0, closed="left")
        self.clock = clock
        if log_stream_prefix is not None and not isinstance(log_stream_prefix, str):
            raise invalid("WandbTracker", "log_stream_prefix", "a str or None", log_stream_prefix)
        self.log_stream_prefix = log_stream_prefix
        self._lock = threading.RLock()
        self._run = None
        self._owns_run = False
        self._finished = False
        self._defined: set[str] = set()
        self._curves: dict[str, list[ForecastPoint]] = {}
        self._versions: dict[str, int] = {}
        self._observed: dict[str, dict[int, Observation]] = {}
        self._obs_forecasts: dict[str, dict[int, ForecastPoint]] = {}
        self._finals: dict[str, dict[int, FinalForecast]] = {}
        self._last_chart: dict[str, float] = {}
        self._last_alert: dict[tuple[str, str], float] = {}
        self._n_alerts: dict[str, int] = {}
        self._n_suppressed: dict[str, int] = {}
        self._step = None
        self._compute = None
        self._start_error: str | None = None
        self.fallback_dir_: str | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self, run_info: dict) -> None:
        """Attach to (or open) the run, declare the axes, store ``run_info`` in the config.

        A ``wandb.init`` that fails is not tried again (online without network it waits
        its ``init_timeout``, 90 s by default, each time): this call and every later
        event raise :class:`TrackerUnavailableError` at once. When W&B writes the run
        somewhere else than the directory asked for (it silently falls back to the
        system temp directory when that one is not writable), a warning names both and
        :attr:`fallback_dir_` holds where the run went.

        Raises
        ------
        TrackerUnavailableError
            ``wandb.init`` failed, now or before.
        """
        with self._lock:
            run_info = dict(run_info or {})
            if self._run is None and self._start_error is not None:
                raise TrackerUnavailableError(
                    f"WandbTracker could not open its W&B run ({self._start_error}) and does "
                    "not try again; fix the cause (network, WANDB_API_KEY, WANDB_DIR) or set "
                    "WANDB_MODE=offline.")
            if self._run is None:
                wandb = _import_wandb()
                if self.run is not None:
                    self._run = self.run
                elif wandb.run is not None:
                    self._run = wandb.run
                    logger.debug("WandbTracker reuses the open W&B run %s.", wandb.run.id)
                else:
                    d = self.dir or (None if os.environ.get("WANDB_DIR") else run_info.get("out_dir"))
                    try:
                        if d:
                            os.makedirs(d, exist_ok=True)
                        run = wandb.init(
                            project=self.project or os.environ.get("WANDB_PROJECT", "cod-monitor"),
                            entity=self.entity, name=self.name, tags=self.tags,
                            config=self.config, dir=d,
                        )
                    except Exception as exc:
                        self._start_error = f"{type(exc).__name__}: {exc}".strip()
                        raise
                    self._run, self._owns_run = run, True
                    self._check_directory(d or os.environ.get("WANDB_DIR"))
                self._run.define_metric(STEP_KEY)
                self._run.define_metric(COMPUTE_KEY)
            if run_info:
                self._run.config.update({"cod": _plain(run_info)}, allow_val_change=True)
            for b in run_info.get("benchmarks") or []:
                self._define(str(b))

    def log_forecast(self, benchmark: str, version: int, curve: list[ForecastPoint],
                     report: dict) -> None:
        """Log a forecast version: final forecast, cluster table, trajectory and chart."""
        with self._lock:
            run = self._ensure(benchmark)
            wandb = _import_wandb()
            curve = sorted(curve, key=lambda p: p.step)
            self._curves[benchmark] = curve
            self._versions[benchmark] = int(version)
            p = f"cod/{benchmark}"
            row = {}
            if not self._streamed:
                row[f"{p}/forecast_version"] = int(version)
                if self._step is not None:
                    row[STEP_KEY] = self._step
                if self._compute is not None:
                    row[COMPUTE_KEY] = self._compute
                if curve:
                    row.update({f"{p}/final_forecast": curve[-1].value,
                                f"{p}/final_lower": curve[-1].lower,
                                f"{p}/final_upper": curve[-1].upper})
            if curve:
                row[f"{p}/forecast_curve"] = wandb.Table(
                    columns=["version", "step", "compute", "value", "lower", "upper", "mode"],
                    data=[[int(version), q.step, q.compute, q.value, q.lower, q.upper, q.mode]
                          for q in curve],
                )
            clusters = (report or {}).get("clusters") or []
            if clusters:
                row[f"{p}/clusters"] = wandb.Table(
                    columns=["version", "cluster", "size", "verdict", "a", "b", "c", "g",
                             "rmse", "ceiling", "detail"],
                    data=[_cluster_row(int(version), cl) for cl in clusters],
                )
            if row:
                run.log(row)
            self._log_chart(benchmark)

    def log_observation(self, observation: Observation, forecast: ForecastPoint | None) -> None:
        """Log an observed accuracy beside the forecast it was compared with."""
        with self._lock:
            o = observation
            run = self._ensure(o.benchmark)
            p = f"cod/{o.benchmark}"
            if self._step is None or o.step >= self._step:
                self._step, self._compute = int(o.step), float(o.compute)
            self._observed.setdefault(o.benchmark, {})[int(o.step)] = o
            if forecast is not None:
                self._obs_forecasts.setdefault(o.benchmark, {})[int(o.step)] = forecast
            row = {STEP_KEY: int(o.step), COMPUTE_KEY: float(o.compute),
                   f"{p}/observed": float(o.accuracy), f"{p}/by_compute/observed": float(o.accuracy)}
            if forecast is not None:
                for name, v in (("forecast", forecast.value), ("lower", forecast.lower),
                                ("upper", forecast.upper)):
                    row[f"{p}/{name}"] = row[f"{p}/by_compute/{name}"] = float(v)
                row[f"{p}/residual"] = float(o.accuracy) - float(forecast.value)
            if not self._streamed:  # else the loop's logger brings them
                run.log(row)
            if self.clock() - self._last_chart.get(o.benchmark, -math.inf) >= self.chart_interval_s:
                self._log_chart(o.benchmark)

    def log_run_forecast(self, observation: Observation, one_step: ForecastPoint | None,
                         final: FinalForecast | None) -> None:
        """Log the run-conditioned forecasts made at one judged checkpoint.

        ``cod/<benchmark>/run/one_step`` (with ``_lower``, ``_upper``) is the forecast of
        this checkpoint made before it was seen; ``run/final`` (``_lower``, ``_upper``)
        the forecast of the final accuracy made after it, beside the ladder-only one
        (``run/final_ladder``); ``run/level`` and ``run/rate`` the run's estimated
        departure from the ladder. The chart ``final_forecast_vs_step`` draws the
        forecast of the final accuracy against the training step.
        """
        if one_step is None and final is None:
            return
        with self._lock:
            o = observation
            run = self._ensure(o.benchmark)
            p = f"cod/{o.benchmark}/run"
            row = {STEP_KEY: int(o.step), COMPUTE_KEY: float(o.compute)}
            if one_step is not None:
                row.update({f"{p}/one_step": float(one_step.value),
                            f"{p}/one_step_lower": float(one_step.lower),
                            f"{p}/one_step_upper": float(one_step.upper)})
            if final is not None:
                self._finals.setdefault(o.benchmark, {})[int(o.step)] = final
                row.update({f"{p}/final": final.value, f"{p}/final_lower": final.lower,
                            f"{p}/final_upper": final.upper, f"{p}/level": final.level,
                            f"{p}/rate": final.rate})
                if math.isfinite(final.prior_value):
                    row[f"{p}/final_ladder"] = final.prior_value
            if not self._streamed:
                run.log(row)
            if final is not None and self.clock() - self._last_chart.get(
                    ("final", o.benchmark), -math.inf) >= self.chart_interval_s:
                self._log_final_chart(o.benchmark)

    def _log_final_chart(self, benchmark: str):
        """The forecast of the final accuracy (and its band, and the ladder's) by step."""
        wandb = _import_wandb()
        finals = [f for _, f in sorted((self._finals.get(benchmark) or {}).items())]
        if not finals:
            return
        steps = [f.step for f in finals]
        series = [("final forecast", [f.value for f in finals]),
                  ("lower", [f.lower for f in finals]), ("upper", [f.upper for f in finals]),
                  ("ladder only", [f.prior_value for f in finals])]
        chart = wandb.plot.line_series(
            xs=[steps] * len(series), ys=[v for _, v in series], keys=[k for k, _ in series],
            title=f"{benchmark}: forecast of the final accuracy (step {finals[-1].final_step})",
            xname="step")
        self._run.log({f"cod/{benchmark}/final_forecast_vs_step": chart})
        self._last_chart[("final", benchmark)] = self.clock()

    def log_alert(self, alert: Alert) -> None:
        """Send ``run.alert`` unless the same (benchmark, reason) fired within the cooldown."""
        with self._lock:
            run = self._ensure(alert.benchmark)
            wandb = _import_wandb()
            reason = AlertReason(alert.reason)
            if reason in (AlertReason.BELOW_BAND, AlertReason.RECOVERED) and not self._streamed:
                run.log({STEP_KEY: int(alert.step),
                         f"cod/{alert.benchmark}/drift": int(reason is AlertReason.BELOW_BAND)})
            key = (alert.benchmark, reason.value)
            now = self.clock()
            last = self._last_alert.get(key)
            if last is not None and now - last < self.alert_cooldown_s:
                self._n_suppressed[alert.benchmark] = self._n_suppressed.get(alert.benchmark, 0) + 1
                logger.debug("W&B alert %s suppressed: %.0f s since the last one (cooldown %.0f s).",
                             key, now - last, self.alert_cooldown_s)
                return
            self._last_alert[key] = now
            self._n_alerts[alert.benchmark] = self._n_alerts.get(alert.benchmark, 0) + 1
            run.alert(
                title=f"COD {reason.value.replace('_', ' ')}: {alert.benchmark}",
                text=alert.message,
                level=getattr(wandb.AlertLevel, _LEVELS.get(reason, "WARN")),
                wait_duration=timedelta(seconds=max(1.0, float(self.alert_cooldown_s))),
            )

    def finish(self, summary: dict) -> None:
        """Log the final charts and summary; finish the run if this tracker opened it.

        Idempotent. Failures are logged, not raised.
        """
        with self._lock:
            if self._finished or self._run is None:
                self._finished = True
                return
            self._finished = True
            run = self._run
            try:
                for b in sorted(set(self._curves) | set(self._observed)):
                    self._log_chart(b)
                for b in self._finals:
                    self._log_final_chart(b)
                final = {}
                for b in sorted(set(self._curves) | set(self._observed) | set(self._n_alerts)):
                    p = f"cod/{b}"
                    curve = self._curves.get(b)
                    if curve:
                        final.update({f"{p}/final_forecast": curve[-1].value,
                                      f"{p}/final_lower": curve[-1].lower,
                                      f"{p}/final_upper": curve[-1].upper,
                                      f"{p}/forecast_version": self._versions[b]})
                    obs = self._observed.get(b) or {}
                    if obs:
                        last = obs[max(obs)]
                        final.update({f"{p}/last_observed": last.accuracy,
                                      f"{p}/last_step": last.step})
                    final.update({f"{p}/n_observations": len(obs),
                                  f"{p}/n_alerts": self._n_alerts.get(b, 0),
                                  f"{p}/n_alerts_suppressed": self._n_suppressed.get(b, 0)})
                summary = dict(summary or {})
                for b, d in (summary.pop("benchmarks", None) or {}).items():
                    if isinstance(d, dict):
                        d = {k: v for k, v in d.items() if k not in _SAME_AS_OWN
                             or (k == "final_forecast" and not self._curves.get(b))}
                    final.update(_flatten(d, f"cod/{b}") if isinstance(d, dict)
                                 else {f"cod/{b}": _plain(d)})
                final.update(_flatten(summary, "cod/summary"))
                run.summary.update(final)
            except Exception:
                logger.warning("WandbTracker could not write the final summary.", exc_info=True)
            if self._owns_run:
                try:
                    run.finish()
                except Exception:
                    logger.warning("WandbTracker could not finish its W&B run.", exc_info=True)

    # ------------------------------------------------------------------ helpers
    def _check_directory(self, wanted) -> None:
        """Warn when W&B put the run somewhere else than ``wanted`` (its fallback)."""
        if not wanted:
            return
        settings = getattr(self._run, "settings", None)
        actual = getattr(settings, "root_dir", None)
        if not actual or os.path.realpath(actual) == os.path.realpath(os.fspath(wanted)):
            return
        self.fallback_dir_ = str(actual)
        logger.warning(
            "WandbTracker asked W&B to write the run under %s, but W&B wrote it under %s "
            "(its fallback when a directory is not writable): the run's files are at %s. "
            "Make %s writable, or set WANDB_DIR to a writable directory.",
            wanted, actual, getattr(self._run, "dir", actual), wanted)
        try:
            self._run.config.update({"cod_wandb_dir_fallback": {"wanted": str(wanted),
                                                                "actual": str(actual)}},
                                    allow_val_change=True)
        except Exception:  # the warning above is what matters
            logger.debug("could not record the W&B directory fallback", exc_info=True)

    def _ensure(self, benchmark: str):
        if self._run is None:
            self.start({})
        if self._finished:
            raise TrackerFinishedError("WandbTracker.finish() was called; no more events can be logged.")
        self._define(benchmark)
        return self._run

    @property
    def _streamed(self) -> bool:
        """Whether the loop's own logger brings the scalars (see ``log_stream_prefix``)."""
        return self.log_stream_prefix is not None

    def _define(self, benchmark: str):
        if benchmark in self._defined:
            return
        self._defined.add(benchmark)
        # summary="none": their last values are in the summary under names of their own
        if self._streamed:
            p = f"{self.log_stream_prefix}cod/{benchmark}"
            for name in METRIC_NAMES:
                self._run.define_metric(
                    f"{p}/{name}", summary="none",
                    step_metric=None if name == "checkpoint_step" else f"{p}/checkpoint_step")
            return
        for name in STEP_METRICS:
            self._run.define_metric(f"cod/{benchmark}/{name}", step_metric=STEP_KEY,
                                    summary="none")
        for name in COMPUTE_METRICS:
            self._run.define_metric(f"cod/{benchmark}/by_compute/{name}", step_metric=COMPUTE_KEY,
                                    summary="none")

    def _log_chart(self, benchmark: str):
        """Forecast trajectory (value, lower, upper) and observed points against the step."""
        wandb = _import_wandb()
        obs = sorted((self._observed.get(benchmark) or {}).values(), key=lambda o: o.step)
        curve = _merge_curve(self._curves.get(benchmark) or [],
                             self._obs_forecasts.get(benchmark) or {},
                             self._versions.get(benchmark))
        xs, ys, keys = [], [], []
        if curve:
            steps = [q.step for q in curve]
            for key, attr in (("forecast", "value"), ("lower", "lower"), ("upper", "upper")):
                xs.append(steps)
                ys.append([getattr(q, attr) for q in curve])
                keys.append(key)
        if obs:
            xs.append([o.step for o in obs])
            ys.append([o.accuracy for o in obs])
            keys.append("observed")
        if not keys:
            return
        chart = wandb.plot.line_series(
            xs=xs, ys=ys, keys=keys, title=f"{benchmark}: forecast vs observed", xname="step",
        )
        self._run.log({f"cod/{benchmark}/forecast_vs_observed": chart})
        self._last_chart[benchmark] = self.clock()


def _cluster_row(version: int, cl: dict) -> list:
    law = cl.get("law") or {}
    g, c = law.get("g"), law.get("c")
    ceiling = g + (1 - g) * math.exp(-c) if g is not None and c is not None else None
    return [version, int(cl.get("cluster", -1)), int(cl.get("size", 0)), str(cl.get("verdict", "")),
            law.get("a"), law.get("b"), c, g, law.get("rmse"), ceiling, str(cl.get("detail", ""))]


def _merge_curve(curve, at_steps: dict, version) -> list[ForecastPoint]:
    """The version's curve plus the forecasts attached to observations of that version."""
    by_step = {p.step: p for p in at_steps.values() if version is None or p.version == version}
    by_step.update({p.step: p for p in curve})
    return [by_step[s] for s in sorted(by_step)]
