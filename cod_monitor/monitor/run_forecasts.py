"""The monitor's run-conditioned forecasts: the ladder's forecast, learned from the run.

:class:`RunForecasts` keeps one :class:`~cod_monitor.cod.conditioning.RunConditioner`
per benchmark on the monitor's processing thread. Its prior is the current ladder
forecast version (:class:`~cod_monitor.monitor.forecasts.Forecasts`); every judged
observation is first forecast (:meth:`RunForecasts.one_step`, the band the surprise
rule of :class:`~cod_monitor.monitor.judging.Judge` judges it against), then learned
from (:meth:`RunForecasts.observe`). A new ladder version rebuilds the conditioner and
replays the run's observations, as does a resumed monitor (:meth:`RunForecasts.restore`).
"""

from __future__ import annotations

import logging
import math

import numpy as np

from cod_monitor.cod.conditioning import RunConditioner, RunPrior, Surprise
from cod_monitor.monitor.drift import RUN_MODE
from cod_monitor.monitor.forecasts import Forecasts
from cod_monitor.monitor.journal import JournalState
from cod_monitor.monitor.ledger import Ledger
from cod_monitor.records import FinalForecast, ForecastPoint

__all__ = ["RUN_MODE", "RunForecasts", "build_conditioner"]

logger = logging.getLogger(__name__)

_Z90 = 1.6448536269514722


def build_conditioner(model, prior: RunPrior, params: float, end_tokens=None, *,
                      compute=None) -> RunConditioner:
    """The :class:`~cod_monitor.cod.conditioning.RunConditioner` of a run of ``params``
    parameters whose ladder-only forecast is ``model``.

    Parameters
    ----------
    model : TrajectoryForecaster
        Fitted; its ``predict(params, tokens)`` is the prior curve.
    prior : RunPrior
        Widened, at the end of the run, to at least the ladder band's spread there (the
        fit's uncertainty, the ladder's residuals and the seed spread), so that the run
        can move the forecast as far as the ladder's own band allows.
    params : float
    end_tokens : array_like, optional
        Tokens at the end of the run (:func:`~cod_monitor.cod.conditioning.final_tokens`).
    compute : callable, optional
        ``compute(tokens)``: the ladder's compute of the run's checkpoints (default
        ``6 * params * tokens``).

    Returns
    -------
    RunConditioner
    """
    def flops(tokens):
        tokens = np.asarray(tokens, dtype=float)
        return 6.0 * params * tokens if compute is None else compute(tokens)

    def curve(tokens):
        tokens = np.asarray(tokens, dtype=float)
        return model.predict(params, tokens, compute=flops(tokens))

    if end_tokens is not None:
        end_tokens = np.atleast_1d(np.asarray(end_tokens, dtype=float))
        lo, hi = model.predict_interval(params, end_tokens, compute=flops(end_tokens), level=0.9)
        band_sd = float(np.mean(np.asarray(hi) - np.asarray(lo))) / (2 * _Z90)
        prior = prior.with_level_floor(band_sd, "the ladder band at the end of the run added")
    return RunConditioner(curve, prior, end_tokens=end_tokens)


class RunForecasts:
    """Run-conditioned forecasts of every monitored benchmark.

    Parameters
    ----------
    benchmarks : list of str
    forecasts : Forecasts
        The ladder-only forecasts (the prior, and its run prior).
    ledger : Ledger
        The run's parameters, tokens per step and length.
    level : float
        Coverage of the intervals.
    """

    def __init__(self, benchmarks: list[str], forecasts: Forecasts, ledger: Ledger, level: float):
        self.benchmarks = list(benchmarks)
        self.level = float(level)
        self._forecasts = forecasts
        self._ledger = ledger
        self._conditioners: dict[str, tuple[tuple, RunConditioner]] = {}
        # (step, tokens, accuracy, excluded) of every observation learned from, by benchmark
        self._seen: dict[str, list[tuple[int, float, float, bool]]] = {b: [] for b in benchmarks}
        self._failed: set[tuple[str, int | None]] = set()

    # ------------------------------------------------------------------ resume
    def restore(self, state: JournalState) -> None:
        """The observations of a replayed journal, in step order, with the exclusions
        their decisions recorded."""
        for (step, b), rec in sorted(state.decisions.items()):
            if b not in self._seen or (step, b) not in state.results:
                continue
            tokens = state.results[(step, b)].get("tokens") or self._ledger.tokens_at(step)
            surprise = rec.get("surprise")
            if tokens is None or surprise is None:
                continue
            seen = self._seen[b]
            n = int(rec.get("forgotten") or 0)
            for i in range(max(len(seen) - n, 0), len(seen)):  # as exclude_last did
                seen[i] = seen[i][:3] + (True,)
            seen.append((int(step), float(tokens), float(rec["accuracy"]),
                         float(surprise.get("weight", 1.0)) == 0.0))

    # ------------------------------------------------------------------ the model
    def conditioner(self, benchmark: str) -> RunConditioner | None:
        """The conditioner of ``benchmark`` for the current ladder version, its
        observations replayed; ``None`` without a forecast, a run prior, or the run's
        parameters."""
        prior = self._forecasts.run_prior(benchmark)
        model = self._forecasts.model(benchmark)
        params = self._ledger.params
        if prior is None or model is None or params is None:
            return None
        end = self._end_tokens()
        key = (self._forecasts.version(benchmark), params, None if end is None else float(end[0]))
        cached = self._conditioners.get(benchmark)
        if cached is not None and cached[0] == key:
            return cached[1]
        try:
            rc = self._build(benchmark, model, prior, params, end)
        except Exception as exc:  # the ladder-only forecast and band still judge the run
            if (benchmark, key[0]) not in self._failed:
                self._failed.add((benchmark, key[0]))
                logger.warning("CODMonitor could not condition the forecast of %s on the run: "
                               "%s: %s", benchmark, type(exc).__name__, exc)
            return None
        self._conditioners[benchmark] = (key, rc)
        return rc

    def _end_tokens(self):
        run = self._ledger.run
        end = None if run.max_steps is None else self._ledger.tokens_at(run.max_steps)
        if end is None:
            return None
        # 4 significant digits: a learned tokens-per-step rate that wobbles with
        # padding does not rebuild the conditioner at every checkpoint
        return np.array([float(f"{end:.4g}")])

    def _build(self, b: str, model, prior: RunPrior, params: float, end) -> RunConditioner:
        rc = build_conditioner(model, prior, params, end,
                               compute=lambda t: self._forecasts.model_compute(params, t))
        for _step, tokens, accuracy, excluded in self._seen[b]:
            rc.observe(tokens, accuracy, exclude=excluded)
        return rc

    # ------------------------------------------------------------------ per observation
    def one_step(self, benchmark: str, step: int, tokens: float | None) -> ForecastPoint | None:
        """The forecast of the checkpoint at ``step`` from the run's earlier checkpoints
        (before it is seen), as a :class:`ForecastPoint` of mode :data:`RUN_MODE`."""
        if tokens is None or not tokens > 0:
            return None
        rc = self.conditioner(benchmark)
        if rc is None:
            return None
        mean, sd = rc.predict(float(tokens))
        lo, hi = rc.interval(mean, sd, self.level)
        params = self._ledger.params
        return ForecastPoint(step=int(step), compute=float(6.0 * params * tokens),
                             benchmark=benchmark, value=float(mean[0]), lower=float(lo[0]),
                             upper=float(hi[0]),
                             version=int(self._forecasts.version(benchmark) or 0),
                             mode=RUN_MODE, tokens=float(tokens))

    def observe(self, benchmark: str, step: int, tokens: float | None, accuracy: float, *,
                exclude: bool) -> Surprise | None:
        """Learn from one judged observation (``exclude``: only record it)."""
        if tokens is None or not tokens > 0 or not math.isfinite(accuracy):
            return None
        rc = self.conditioner(benchmark)  # built (and replayed) before this observation
        self._seen[benchmark].append((int(step), float(tokens), float(accuracy), bool(exclude)))
        if rc is None:
            return None  # a conditioner built later replays it
        return rc.observe(float(tokens), float(accuracy), exclude=exclude)

    def exclude_last(self, benchmark: str, n: int) -> None:
        """Take the last ``n`` observations of ``benchmark`` out of the update (those a
        drift alert has just found to be a departure)."""
        seen = self._seen[benchmark]
        if n <= 0 or not seen:
            return
        first = max(len(seen) - n, 0)
        for i in range(first, len(seen)):
            seen[i] = seen[i][:3] + (True,)
        rc = self.conditioner(benchmark)
        if rc is not None:
            rc.exclude(seen[first][1])

    def final(self, benchmark: str, step: int) -> FinalForecast | None:
        """The forecast of the run's final accuracy after the checkpoint at ``step``,
        with the ladder-only forecast beside it; ``None`` when the run's length, tokens
        per step (given, or learned from the checkpoints' tokens) or parameters are
        unknown."""
        rc = self.conditioner(benchmark)
        run = self._ledger.run
        if rc is None or rc.end_tokens is None:
            return None
        out = rc.final()
        if out is None:
            return None
        mean, sd = out
        lo, hi = rc.interval(mean, sd, self.level)
        prior = self._forecasts.point(benchmark, run.max_steps)
        dep = rc.departure
        return FinalForecast(
            step=int(step), benchmark=benchmark, final_step=int(run.max_steps),
            value=float(mean), lower=float(lo), upper=float(hi),
            prior_value=math.nan if prior is None else prior.value,
            prior_lower=math.nan if prior is None else prior.lower,
            prior_upper=math.nan if prior is None else prior.upper,
            n_used=dep["n_used"], level=dep["level"], rate=dep["rate"],
            version=int(self._forecasts.version(benchmark) or 0))

    def curve(self, benchmark: str, steps) -> list[ForecastPoint]:
        """The run-conditioned forecast at ``steps`` (e.g. the next checkpoints)."""
        rc = self.conditioner(benchmark)
        if rc is None:
            return []
        out = []
        for s in steps:
            fp = self.one_step(benchmark, int(s), self._ledger.tokens_at(int(s)))
            if fp is not None:
                out.append(fp)
        return out
