"""The monitor's forecasts: fitted from the ladder, refreshed when it changes, versioned.

:class:`Forecasts` fits one :class:`~cod_monitor.cod.trajectory.TrajectoryForecaster`
per benchmark on its own thread (so neither training nor result processing waits for a
fit), watches a ladder directory for changes and re-fits, and publishes each fit as a
new forecast version (journal record and ``Tracker.log_forecast``) on the processing
thread. :meth:`Forecasts.point` is the forecast of one checkpoint of the run;
:meth:`Forecasts.curve` the forecast along the run.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from cod_monitor.cod.conditioning import RunPrior, estimate_run_prior
from cod_monitor.cod.trajectory import TrajectoryForecaster
from cod_monitor.exceptions import InputError
from cod_monitor.ladder import Ladder, ladder_fingerprint, load_ladder
from cod_monitor.methods import make_forecaster
from cod_monitor.monitor.config import ForecastConfig
from cod_monitor.monitor.fanout import TrackerFanout
from cod_monitor.monitor.journal import Journal, JournalState
from cod_monitor.monitor.ledger import Inbox, Ledger
from cod_monitor.records import Alert, AlertReason, ForecastPoint
from cod_monitor.runtime.priority import lower_priority

__all__ = ["Forecasts", "backtest_forecaster_factory", "make_trajectory_forecaster"]

logger = logging.getLogger(__name__)

#: Points of the forecast curve drawn to the end of a run of known length.
CURVE_POINTS = 32


def make_trajectory_forecaster(config: ForecastConfig, benchmark: str, *,
                               finished=None) -> TrajectoryForecaster:
    """The unfitted forecaster of ``benchmark`` that ``config`` describes.

    Parameters
    ----------
    config : ForecastConfig
    benchmark : str
        Picks the benchmark's ``run_sd``.
    finished : estimator, optional
        The unfitted forecaster of finished models to use instead of the one ``config``
        names (``trajectory_method``, or the routed default).

    Returns
    -------
    TrajectoryForecaster
    """
    if finished is None and config.trajectory_method is not None:
        finished = make_forecaster(config.trajectory_method, n_bootstrap=config.n_bootstrap,
                                   random_state=0)
    return TrajectoryForecaster(mode=config.trajectory, cod_params=config.cod_params,
                                finished=finished, n_bootstrap=config.n_bootstrap,
                                run_sd=config.run_sd_for(benchmark),
                                law_form=config.trajectory_law)


def backtest_forecaster_factory(config: ForecastConfig, benchmark: str, model=None):
    """What the run prior's backtests (:func:`~cod_monitor.cod.conditioning.estimate_run_prior`)
    refit on each sub-ladder: ``config``'s forecaster without a bootstrap (the backtests
    read points only).

    When ``model`` (the fitted forecaster of the whole ladder) forecasts finished models
    with the routed default, the backtests use the route it chose instead of routing
    again on every sub-ladder: they measure the pipeline the run is forecast with, at a
    fraction of the cost (each routing fits and backtests every route).

    Parameters
    ----------
    config : ForecastConfig
    benchmark : str
    model : TrajectoryForecaster, optional
        Fitted on the whole ladder.

    Returns
    -------
    callable
        ``factory() -> TrajectoryForecaster``, unfitted.
    """
    quick = replace(config, n_bootstrap=0)
    finished = getattr(model, "finished_", None)
    route = getattr(finished, "route_", None)
    if config.trajectory_method is not None or route is None:  # not the routed default
        return lambda: make_trajectory_forecaster(quick, benchmark)
    chosen = finished.route_forecaster(route).set_params(n_bootstrap=0)
    return lambda: make_trajectory_forecaster(quick, benchmark, finished=chosen)


def _sample_ids(ladder: Ladder, benchmark: str) -> frozenset:
    """The sample ids of ``benchmark`` in ``ladder`` (empty when it is not there)."""
    if benchmark not in ladder.benchmarks:
        return frozenset()
    return frozenset(ladder.matrix(benchmark, roles=("ladder",)).sample_ids)


def _stat_key(path) -> tuple:
    """Modification times and sizes of a ladder directory's files (a cheap change test)."""
    path = Path(path)
    out = []
    for name in ("ladder.json", "scores.csv", "scores.csv.gz"):
        try:
            st = (path / name).stat()
            out.append((name, st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((name, None, None))
    return tuple(out)


@dataclass
class _Version:
    number: int
    model: TrajectoryForecaster
    fingerprint: str
    run_prior: RunPrior | None = None
    recipe: dict | None = None


#: A run whose peak learning rate is off the ladder's trend by more than this factor
#: (either way) departs from the ladder's recipe.
LR_DEPARTURE_FACTOR = 1.5
#: How much wider the run-conditioned prior is for such a run.
LR_DEPARTURE_WIDENING = 2.0


class Forecasts:
    """Fitted, versioned forecasts of every monitored benchmark.

    Parameters
    ----------
    ladder : Ladder or path
        A directory is re-read when its files change (every
        ``config.refresh_interval`` seconds).
    benchmarks : list of str
    config : ForecastConfig
    ledger : Ledger
        The checkpoints taken (the curve's steps) and the run's ``params``.
    journal : Journal
    fanout : TrackerFanout
    inbox : Inbox
        Fits are published through it, on the processing thread.

    Notes
    -----
    Lifecycle: :meth:`restore` (a resumed journal's versions), :meth:`start` (the
    forecaster thread), :meth:`stop`. A version number is kept across a restart when the
    ladder's fingerprint did not change.
    """

    def __init__(self, ladder, benchmarks: list[str], config: ForecastConfig, ledger: Ledger,
                 journal: Journal, fanout: TrackerFanout, inbox: Inbox):
        self.ladder = ladder
        self.benchmarks = list(benchmarks)
        self.config = config
        self._ledger = ledger
        self._journal = journal
        self._fanout = fanout
        self._inbox = inbox
        self._versions: dict[str, _Version] = {}
        self._errors: dict[str, str] = {}
        self._point_failures: set[tuple[str, int]] = set()
        self._prior: dict[str, tuple[int, str | None]] = {}
        self._compute_scale = 1.0
        self._recipe_warned = False
        self._fitted: set[str] = set()  # benchmarks fitted once (forecaster thread)
        self._sample_ids: dict[str, frozenset] = {}  # of the first fit, per benchmark
        #: ``emit(alert)`` for alerts about the ladder (the monitor sets it to its judge's)
        self.emit = None
        #: ``check_settings(ladder, benchmark)``: raises ``InputError`` when a changed
        #: ladder records evaluation settings the run is not scored with (the monitor
        #: sets it; the first ladder is checked at start)
        self.check_settings = None
        self._stop = threading.Event()
        self._request = threading.Event()
        self._force = False
        self._done = threading.Condition()
        self._generation = 0
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def restore(self, state: JournalState) -> None:
        """Continue the version numbers of a replayed journal."""
        for b, rec in state.forecasts.items():
            self._prior[b] = (int(rec["version"]), rec.get("fingerprint"))

    def start(self) -> None:
        """Start the forecaster thread: a first fit now, then ladder checks."""
        self._thread = threading.Thread(target=self._loop, name="cod-forecast", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the forecaster thread to end (a fit in progress finishes its benchmark)."""
        self._stop.set()
        self._request.set()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the forecaster thread to end."""
        if self._thread is not None:
            self._thread.join(timeout)

    def wait_first_fit(self, timeout: float | None = None) -> bool:
        """Block until the first fit has been attempted (or stopped, or ``timeout``)."""
        with self._done:
            return self._done.wait_for(lambda: self._generation > 0 or self._stop.is_set(),
                                       timeout=timeout)

    def refresh(self, *, force: bool = False, wait: bool = True,
                timeout: float | None = None) -> bool:
        """Check the ladder now: re-fit if it changed (always with ``force``).

        Returns
        -------
        bool
            False if ``wait`` timed out.
        """
        with self._done:
            target = self._generation + 1
        if force:
            self._force = True
        self._request.set()
        if not wait:
            return True
        with self._done:
            return self._done.wait_for(lambda: self._generation >= target, timeout=timeout)

    # ------------------------------------------------------------------ forecaster thread
    def _loop(self):
        if self.config.fit_priority == "low":
            # fits take the CPU time training leaves free, and little of the rest
            lower_priority()
        source = None if isinstance(self.ladder, Ladder) else Path(self.ladder)
        last_stat = last_fp = None
        first = True
        while not self._stop.is_set():
            force, self._force = self._force, False
            try:
                if first or force:
                    stat = None if source is None else _stat_key(source)
                    fp = "in-memory" if source is None else ladder_fingerprint(source)
                    self._fit_all(fp, force=force)
                    last_stat, last_fp = stat, fp
                elif source is not None:
                    stat = _stat_key(source)
                    if stat != last_stat:
                        fp = ladder_fingerprint(source)
                        if fp != last_fp:
                            logger.info("the ladder %s changed; re-fitting the forecasts", source)
                            self._fit_all(fp)
                        last_stat, last_fp = stat, fp
            except Exception as exc:
                # an unreadable ladder (e.g. caught mid-rewrite): retried at the next check
                logger.warning("CODMonitor could not load the ladder %s: %s", self.ladder, exc)
                if first:
                    for b in self.benchmarks:
                        self._inbox.post(self._publish_error, b, f"could not load the ladder: {exc}")
            finally:
                first = False
                with self._done:
                    self._generation += 1
                    self._done.notify_all()
                self._inbox.wake()
            interval = self.config.refresh_interval
            self._request.wait(None if source is None or interval is None else interval)
            self._request.clear()

    def _fit_all(self, fingerprint: str, force: bool = False) -> None:
        ladder = load_ladder(self.ladder)
        comp = np.array([m.compute / (6.0 * m.params * m.tokens) for m in ladder.models])
        # the ladder's compute convention (e.g. 6ND, or more with attention FLOPs) applied
        # to the run's 6ND
        self._compute_scale = float(np.median(comp)) if len(comp) else 1.0
        for b in self.benchmarks:
            if self._stop.is_set():
                return
            t0 = time.perf_counter()
            try:
                ids = _sample_ids(ladder, b)
                first = self._sample_ids.get(b)
                if first is not None and ids != first:
                    # checked before fitting, so the alert comes at once: a ladder of other
                    # samples would judge the run against samples it is not evaluated on
                    self._inbox.post(self._reject, b, (
                        f"the ladder now has {len(ids)} samples for {b!r}, not the "
                        f"{len(first)} the run is evaluated on ({len(ids & first)} in "
                        "common); forecast version kept. Restore the ladder, or start a new "
                        "monitor (another out_dir) for the new evaluation set."))
                    continue
                if first is not None and self.check_settings is not None:
                    try:
                        self.check_settings(ladder, b)
                    except InputError as exc:
                        # as for other samples: the run would be compared with a forecast
                        # of pass rates scored another way
                        self._inbox.post(self._reject, b, (
                            f"the changed ladder records other evaluation settings: {exc} "
                            "Forecast version kept."))
                        continue
                model = make_trajectory_forecaster(self.config, b).fit(ladder, b).prepare()
            except Exception as exc:
                logger.warning("CODMonitor could not fit the forecast of %s: %s", b, exc)
                self._inbox.post(self._publish_error, b, f"{type(exc).__name__}: {exc}")
                if b in self._fitted:  # a refit: the run goes on with the version in use
                    self._inbox.post(self._reject, b, (
                        f"the changed ladder could not be fitted for {b!r} "
                        f"({type(exc).__name__}: {exc}); forecast version kept. Fix or "
                        "restore the ladder."))
                continue
            self._fitted.add(b)
            self._sample_ids.setdefault(b, ids)
            run_prior = recipe = None
            if self.config.condition_on_run:
                run_prior, recipe = self._run_prior(ladder, b, model)
            logger.debug("forecast of %s fitted in %.1fs (mode %s)", b, time.perf_counter() - t0,
                         model.mode_)
            self._inbox.post(self._publish, b, model, fingerprint, force, run_prior, recipe)

    def _run_prior(self, ladder: Ladder, b: str, model) -> tuple[RunPrior, dict | None]:
        """How far the run may depart from the ladder's forecast (backtests on the
        ladder), widened when its learning rate departs from the ladder's trend."""
        try:
            prior = estimate_run_prior(ladder, b,
                                       backtest_forecaster_factory(self.config, b, model))
        except Exception as exc:  # the defaults keep the run-conditioned forecast going
            prior = RunPrior(reason=f"defaults: the backtests failed ({type(exc).__name__}: {exc})")
        prior = prior.with_run_sd(self.config.run_sd_for(b))
        recipe = self.recipe_check(ladder)
        if recipe is not None and recipe["departs"]:
            prior = prior.widened(LR_DEPARTURE_WIDENING, recipe["message"])
        return prior, recipe

    def recipe_check(self, ladder: Ladder) -> dict | None:
        """The run's peak learning rate against the ladder's trend, or ``None`` when
        either is unknown: ``ratio``, ``expected``, ``departs`` and a ``message``."""
        lr, params = self._ledger.run.learning_rate, self._ledger.params
        if lr is None or params is None:
            return None
        try:
            trend = ladder.learning_rate_trend()
        except Exception:  # a ladder without rates, or unreadable ones
            trend = None
        if trend is None:
            return None
        expected = float(trend.at(params))
        ratio = lr / expected
        departs = not (1 / LR_DEPARTURE_FACTOR <= ratio <= LR_DEPARTURE_FACTOR)
        message = (f"the run's peak learning rate {lr:.3g} is {ratio:.2f}x the ladder's trend at "
                   f"{params:.3g} parameters ({expected:.3g}, fitted on {trend.n_runs} ladder runs)")
        if departs:
            message += (": the run departs from the ladder's recipe, so the ladder's forecast is "
                        "less reliable and the run-conditioned forecast leans more on the run's "
                        "own checkpoints")
        return {"learning_rate": lr, "expected": expected, "ratio": ratio, "departs": departs,
                "message": message}

    # ------------------------------------------------------------------ processing thread
    def _publish(self, b: str, model: TrajectoryForecaster, fingerprint: str, force: bool,
                 run_prior: RunPrior | None = None, recipe: dict | None = None) -> None:
        """Make a fit the current version of ``b``: journal it and log it to the trackers."""
        prior = self._versions.get(b)
        if prior is not None:
            if prior.fingerprint == fingerprint and not force:
                return
            number = prior.number + 1
        elif b in self._prior:
            v, fp = self._prior[b]
            number = v if fp == fingerprint else v + 1
        else:
            number = 1
        self._versions[b] = _Version(number, model, fingerprint, run_prior, recipe)
        self._errors.pop(b, None)
        report = model.report()
        report["fingerprint"] = fingerprint
        report["run_prior"] = None if run_prior is None else run_prior.to_dict()
        report["recipe"] = recipe
        if recipe is not None and recipe["departs"] and not self._recipe_warned:
            self._recipe_warned = True
            logger.warning("CODMonitor: %s.", recipe["message"])
        self._journal.append("forecast", benchmark=b, version=number, mode=model.mode_,
                             fingerprint=fingerprint, report=report)
        self._fanout.log_forecast(b, number, self.curve(b), report)
        logger.info("%s", self._ready_line(b, number, model, report))

    def _ready_line(self, b: str, number: int, model: TrajectoryForecaster, report: dict) -> str:
        """One line saying what a new forecast version decided: its mode, the COD route
        and why, and the forecast at the run's last step when that is known."""
        parts = [f"cod/{b}: forecast version {number} ready ({model.mode_} mode"]
        if report.get("route"):
            parts.append(f", COD route {report['route']}")
        parts.append(")")
        end = self._ledger.run.max_steps
        fp = None if end is None else self.point(b, int(end))
        if fp is not None:
            parts.append(f"; at the last step {end}: {fp.value:.3f} "
                         f"[{fp.lower:.3f}, {fp.upper:.3f}]")
        elif end is not None:
            parts.append(f"; the forecast at the last step {end} waits for the run's "
                         "parameters and tokens per step (given, or learned from the first "
                         "checkpoint that reports them)")
        why = report.get("why") or (report.get("trajectory") or {}).get("reason")
        if why:
            parts.append(f". Why: {why}")
        return "".join(parts)

    def _reject(self, b: str, message: str) -> None:
        """A changed ladder refused for ``b``: journal it and raise ``LADDER_REJECTED``."""
        self._journal.append("error", where=f"forecast/{b}", error=message)
        logger.warning("CODMonitor: %s", message)
        if self.emit is not None:
            step = max((s for s, _, _ in self._ledger.positions()), default=0)
            self.emit(Alert(step=int(step), benchmark=b, reason=AlertReason.LADDER_REJECTED,
                            message=f"cod/{b}: {message}"))

    def _publish_error(self, b: str, error: str) -> None:
        if b not in self._versions:
            self._errors[b] = error
        self._journal.append("error", where=f"forecast/{b}", error=error)

    # ------------------------------------------------------------------ queries
    def model(self, benchmark: str) -> TrajectoryForecaster | None:
        """The fitted forecaster in use (``None`` before the first fit)."""
        v = self._versions.get(benchmark)
        return None if v is None else v.model

    def run_prior(self, benchmark: str) -> RunPrior | None:
        """The run-conditioned forecast's prior of the current version (``None`` before
        the first fit, or with ``condition_on_run=False``)."""
        v = self._versions.get(benchmark)
        return None if v is None else v.run_prior

    def recipe(self, benchmark: str) -> dict | None:
        """:meth:`recipe_check` of the current version's fit."""
        v = self._versions.get(benchmark)
        return None if v is None else v.recipe

    def model_compute(self, params: float, tokens):
        """The ladder's compute convention applied to the run's ``6 N D``."""
        return self._compute_scale * 6.0 * params * np.asarray(tokens, dtype=float)

    def version(self, benchmark: str) -> int | None:
        """The current forecast version (``None`` before the first fit)."""
        v = self._versions.get(benchmark)
        return None if v is None else v.number

    def error(self, benchmark: str) -> str | None:
        """Why no forecast exists, when the first fit failed."""
        return self._errors.get(benchmark)

    def settled(self, benchmark: str) -> bool:
        """Whether the first fit of ``benchmark`` is over (a version or an error)."""
        return benchmark in self._versions or benchmark in self._errors

    def point(self, benchmark: str, step: int, *, tokens=None, compute=None) -> ForecastPoint | None:
        """:meth:`CODMonitor.forecast_point <cod_monitor.monitor.CODMonitor.forecast_point>`:
        the current forecast of a checkpoint at ``step`` (tokens default to
        ``step * tokens_per_step``), or ``None``."""
        v = self._versions.get(benchmark)
        if v is None:
            return None
        if tokens is None:
            tokens = self._ledger.tokens_at(step)
        params = self._ledger.params
        if params is None and tokens and compute:
            params = compute / (6.0 * tokens)
        model_compute = None
        if params and tokens:
            model_compute = self._compute_scale * 6.0 * params * tokens
        elif compute:
            model_compute = compute
        try:
            fp = v.model.forecast(step, params, tokens, compute=model_compute,
                                  level=self.config.level, version=v.number)
        except ValueError:
            return None  # e.g. a checkpoint without the params or tokens its mode needs
        except Exception as exc:
            # this checkpoint goes without a forecast; the next one is tried afresh, so a
            # failure never stops the forecasts for the rest of the run
            if (benchmark, v.number) not in self._point_failures:  # once per version
                self._point_failures.add((benchmark, v.number))
                logger.warning("CODMonitor could not forecast %s at step %s: %s: %s",
                               benchmark, step, type(exc).__name__, exc)
            return None
        if compute is not None and compute != fp.compute:
            fp = replace(fp, compute=float(compute))
        return fp

    def curve(self, benchmark: str) -> list[ForecastPoint]:
        """The forecast at every checkpoint taken and, when the run's length and tokens
        per step (given or learned) are known, on a grid to its end; by step."""
        points = {s: (tok, comp) for s, tok, comp in self._ledger.positions()}
        run = self._ledger.run
        rate = self._ledger.tokens_per_step()  # once: it scans the ledger
        if run.max_steps and rate:
            grid = np.linspace(0, run.max_steps, CURVE_POINTS + 1)[1:].round().astype(int)
            for s in np.unique(grid):
                points.setdefault(int(s), (float(s) * rate, None))
        out = []
        for s in sorted(points):
            tok, comp = points[s]
            fp = self.point(benchmark, s, tokens=tok, compute=comp)
            if fp is not None:
                out.append(fp)
        return out

    def ladder_summary(self) -> dict:
        """Source, model counts and compute unit of the ladder (``ladder.json`` only)."""
        if isinstance(self.ladder, Ladder):
            models = [m.to_dict() for m in self.ladder.models]
            out = {"source": "in-memory", "compute_unit": self.ladder.compute_unit}
        else:
            out = {"source": str(self.ladder)}
            try:
                meta = json.loads((Path(self.ladder) / "ladder.json").read_text())
                models = list(meta.get("models") or [])
                out["compute_unit"] = meta.get("compute_unit")
            except (OSError, ValueError, AttributeError):
                return out
        ladder = [m for m in models if m.get("role", "ladder") == "ladder"]
        out.update(
            n_models=len(models),
            n_ladder=len(ladder),
            runs=len({m.get("run") or f"params={m.get('params')}" for m in ladder}),
            n_target=sum(m.get("role") == "target" for m in models),
        )
        return out
