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

from cod_monitor.cod.trajectory import TrajectoryForecaster
from cod_monitor.ladder import Ladder, ladder_fingerprint, load_ladder
from cod_monitor.methods import make_forecaster
from cod_monitor.monitor.config import ForecastConfig
from cod_monitor.monitor.fanout import TrackerFanout
from cod_monitor.monitor.journal import Journal, JournalState
from cod_monitor.monitor.ledger import Inbox, Ledger
from cod_monitor.records import ForecastPoint

__all__ = ["Forecasts", "make_trajectory_forecaster"]

logger = logging.getLogger(__name__)

#: Points of the forecast curve drawn to the end of a run of known length.
CURVE_POINTS = 32


def make_trajectory_forecaster(config: ForecastConfig, benchmark: str) -> TrajectoryForecaster:
    """The unfitted forecaster of ``benchmark`` that ``config`` describes.

    Parameters
    ----------
    config : ForecastConfig
    benchmark : str
        Picks the benchmark's ``run_sd``.

    Returns
    -------
    TrajectoryForecaster
    """
    finished = None
    if config.trajectory_method is not None:
        finished = make_forecaster(config.trajectory_method, n_bootstrap=config.n_bootstrap,
                                   random_state=0)
    return TrajectoryForecaster(mode=config.trajectory, cod_params=config.cod_params,
                                finished=finished, n_bootstrap=config.n_bootstrap,
                                run_sd=config.run_sd_for(benchmark))


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
                model = make_trajectory_forecaster(self.config, b).fit(ladder, b).prepare()
            except Exception as exc:
                logger.warning("CODMonitor could not fit the forecast of %s: %s", b, exc)
                self._inbox.post(self._publish_error, b, f"{type(exc).__name__}: {exc}")
                continue
            logger.debug("forecast of %s fitted in %.1fs (mode %s)", b, time.perf_counter() - t0,
                         model.mode_)
            self._inbox.post(self._publish, b, model, fingerprint, force)

    # ------------------------------------------------------------------ processing thread
    def _publish(self, b: str, model: TrajectoryForecaster, fingerprint: str, force: bool) -> None:
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
        self._versions[b] = _Version(number, model, fingerprint)
        self._errors.pop(b, None)
        report = model.report()
        report["fingerprint"] = fingerprint
        self._journal.append("forecast", benchmark=b, version=number, mode=model.mode_,
                             fingerprint=fingerprint, report=report)
        self._fanout.log_forecast(b, number, self.curve(b), report)
        logger.info("cod/%s: forecast version %d (%s mode) ready", b, number, model.mode_)

    def _publish_error(self, b: str, error: str) -> None:
        if b not in self._versions:
            self._errors[b] = error
        self._journal.append("error", where=f"forecast/{b}", error=error)

    # ------------------------------------------------------------------ queries
    def model(self, benchmark: str) -> TrajectoryForecaster | None:
        """The fitted forecaster in use (``None`` before the first fit)."""
        v = self._versions.get(benchmark)
        return None if v is None else v.model

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
            tokens = self._ledger.run.tokens_at(step)
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
        per step are known, on a grid to its end; by step."""
        points = {s: (tok, comp) for s, tok, comp in self._ledger.positions()}
        run = self._ledger.run
        if run.max_steps and run.tokens_per_step:
            grid = np.linspace(0, run.max_steps, CURVE_POINTS + 1)[1:].round().astype(int)
            for s in np.unique(grid):
                points.setdefault(int(s), (run.tokens_at(int(s)), None))
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
