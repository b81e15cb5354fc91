"""`RoutedCOD`: COD with its route to the full set chosen by evidence from the ladder.

COD forecasts the kept clusters with their own laws; the rest of the evaluation set
can then be reached by more than one route, and which one holds depends on the
benchmark (:data:`ROUTES`):

``clusters+trend``
    The kept clusters' laws at their share of the samples, plus the local trend of
    the rest's accuracy in log-compute. It holds where the rest moves slowly or not
    at all (no cluster passes the filter on most public ladders, and this route then
    is the trend of the whole set).
``clusters+mapping``
    The paper: the kept clusters' laws, then the subset-to-full mapping fitted on the
    ladder (through (0, 0) and (1, 1)). It assumes the rest is solved as the subset
    is; it holds where difficulty is intrinsic and graded, so that the hard samples
    follow the easy ones up.
``end-to-end``
    One COD law fitted to the full-set accuracy, no clusters: what is left when the
    per-sample difficulties are mostly noise (recall tasks whose rare facts a small
    model learns by luck, outside COD's premise).

:class:`RoutedCOD` fits every route and forecasts the ladder's own largest runs from
the runs below them with each (the leave-largest-out backtests of
:func:`~cod_monitor.cod.intervals.backtest_forecaster`). The first route in the order
of preference that could be backtested is the incumbent; another route replaces it
only on decisive evidence: a mean absolute backtest error, on the runs both
backtested, at most ``switch_ratio`` (0.4) times the incumbent's and at least
``switch_margin`` (1 point) below it. A handful of backtests on a noisy ladder cannot
separate routes whose errors differ by less (a lower score by a few tenths picked the
wrong route on synthetic ladders whose target lies 34x beyond the ladder: see
BENCHMARKS.md), while a route that fails the ladder's own largest runs by several
points (the trend route on recall-style benchmarks) is left behind. The report says
which route, why, and every route's backtest errors.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from types import MappingProxyType

import numpy as np

from cod_monitor._estimator import Estimator, check_is_fitted
from cod_monitor._validation import check_choice, check_int, check_real, invalid
from cod_monitor.cod._memo import shared_fits
from cod_monitor.cod.forecaster import CODForecaster
from cod_monitor.cod.intervals import backtest_candidates
from cod_monitor.cod.laws import fit_laws_many
from cod_monitor.exceptions import FitWarning
from cod_monitor.ladder import load_ladder
from cod_monitor.ladder.selection import MIN_LADDER_POINTS

__all__ = ["ROUTES", "RoutedCOD"]

#: Route -> the configuration of :data:`cod_monitor.cod.configs.CONFIGURATIONS` that
#: takes it, in order of preference when the evidence does not separate them.
ROUTES: Mapping[str, str] = MappingProxyType({
    "clusters+trend": "cod-trend",
    "clusters+mapping": "cod-mapping",
    "end-to-end": "cod-end-to-end",
})

# The parameters of RoutedCOD that every route's CODForecaster receives.
_SHARED = ("anchors", "checkpoints", "smooth_checkpoints", "tokens_per_param",
           "n_bootstrap", "n_backtest", "random_state")


class RoutedCOD(Estimator):
    """Forecast full-set accuracy with COD, choosing the route to the full set by the
    ladder's own backtests.

    Parameters
    ----------
    routes : sequence of str, default all of :data:`ROUTES`
        The candidate routes, in order of preference: the first that could be
        backtested is the incumbent.
    switch_ratio : float, default 0.4
        Another route replaces the incumbent only if its mean absolute backtest error
        is at most this fraction of the incumbent's ...
    switch_margin : float, default 0.01
        ... and at least this much below it (accuracy units: 0.01 is one point). Among
        the routes that qualify, the one with the smallest error is taken.
    anchors, checkpoints, smooth_checkpoints, tokens_per_param : optional
        As in :class:`~cod_monitor.cod.forecaster.CODForecaster`; every route gets them.
    n_bootstrap : int, default 200
        Bootstrap replicates of the chosen route's :meth:`predict_interval`.
    n_backtest : int, default 3
        Largest ladder runs each route forecasts from the runs below them. They decide
        the route and widen the chosen route's interval.
    random_state : int, default 0

    Attributes
    ----------
    route_ : str
        The chosen route.
    route_why_ : str
        Why, in one sentence with the numbers.
    routes_ : list of dict
        Every candidate: ``route``, ``configuration``, ``status`` (``'fitted'`` or
        ``'failed'``), ``error`` (why it failed), ``backtest`` (held-out run ->
        residual) and ``score`` (mean absolute backtest error: the incumbent's over all
        its backtests, another route's over the runs it shares with the incumbent).
    forecaster_ : CODForecaster
        The fitted forecaster of the chosen route; :meth:`predict`,
        :meth:`predict_interval` and :meth:`bootstrap_predictions` are its.
    benchmark_, compute_unit_, models_, compute_ :
        The chosen forecaster's.

    Examples
    --------
    >>> from cod_monitor.synthetic import synthetic_ladder
    >>> syn = synthetic_ladder(n_samples=600, seed=0)
    >>> cod = RoutedCOD(n_bootstrap=0).fit(syn.ladder, "synthetic")
    >>> cod.route_ in ROUTES
    True
    """

    def __init__(self, *, routes=tuple(ROUTES), switch_ratio: float = 0.4,
                 switch_margin: float = 0.01, anchors=None,
                 checkpoints: str = "final", smooth_checkpoints: bool = False,
                 tokens_per_param: float | None = None, n_bootstrap: int = 200,
                 n_backtest: int = 3, random_state: int = 0):
        self.routes = routes
        self.switch_ratio = switch_ratio
        self.switch_margin = switch_margin
        self.anchors = anchors
        self.checkpoints = checkpoints
        self.smooth_checkpoints = smooth_checkpoints
        self.tokens_per_param = tokens_per_param
        self.n_bootstrap = n_bootstrap
        self.n_backtest = n_backtest
        self.random_state = random_state

    def _validate_params(self):
        owner = type(self).__name__
        if isinstance(self.routes, str) or not len(self.routes):
            raise invalid(owner, "routes", f"a non-empty sequence of {list(ROUTES)}",
                          self.routes)
        for route in self.routes:
            check_choice(owner, "routes", route, list(ROUTES))
        check_real(owner, "switch_ratio", self.switch_ratio, 0.0, 1.0)
        check_real(owner, "switch_margin", self.switch_margin, 0.0)
        check_int(owner, "n_backtest", self.n_backtest, 0)

    def route_forecaster(self, route: str) -> CODForecaster:
        """The unfitted forecaster of ``route`` with this estimator's shared parameters."""
        check_choice(type(self).__name__, "route", route, list(ROUTES))
        # every route's configuration sets interval='backtest': its backtests are the evidence
        return CODForecaster.from_config(ROUTES[route], **{k: getattr(self, k) for k in _SHARED})

    def fit(self, ladder, benchmark: str):
        """Fit every route, backtest each on the ladder's largest runs, keep the best.

        Parameters
        ----------
        ladder : Ladder or path
        benchmark : str

        Returns
        -------
        self

        Raises
        ------
        ParameterError
            A parameter is invalid.
        LadderValidationError
            Unknown benchmark or too few ladder points (the error of the first route).
        CODError
            Every route failed (the first route's error).
        """
        self._validate_params()
        ladder = load_ladder(ladder)
        candidates, fitted = [], {}
        with shared_fits():  # routes that cluster alike share clusterings and law fits
            self._prefetch(ladder, benchmark)
            for route in self.routes:
                self._fit_route(route, ladder, benchmark, candidates, fitted)
        errors = [c for c in candidates if c["status"] == "failed"]
        if not fitted:
            raise errors[0]["exception"]
        for c in candidates:
            c.pop("exception", None)
        self.route_, self.route_why_ = self._choose(candidates)
        self.routes_ = candidates
        self.forecaster_ = fitted[self.route_]
        for name in ("benchmark_", "compute_unit_", "models_", "compute_"):
            setattr(self, name, getattr(self.forecaster_, name))
        return self

    def _prefetch(self, ladder, benchmark):
        """Fit, in one batch, the cluster laws that every route's fit and backtests are
        about to ask for; they then find them in the shared cache (a speed-up only:
        whatever is not prefetched is fitted when asked for)."""
        requests = {}
        for route in self.routes:
            est = self.route_forecaster(route)
            try:
                est._validate_params()
                cur = est._curves(ladder, benchmark)
                curves = [cur]
                n_bt = int(self.n_backtest)
                # as the backtests will: on the fit's own (possibly transported) ladder
                fitted_on = cur.ladder
                for held, drop, n_left in backtest_candidates(cur.fit_matrix.models, fitted_on):
                    if n_bt <= 0:
                        break
                    if n_left >= MIN_LADDER_POINTS:
                        curves.append(est._curves(fitted_on.without_models(sorted(drop)),
                                                  benchmark))
                        n_bt -= 1
            except Exception:  # the route's own fit meets and reports the problem
                continue
            for c in curves:
                if len(c.acc) and est.law == "full":
                    key = (c.compute.tobytes(), c.acc.tobytes())
                    requests.setdefault(key, (c.compute, c.acc))
        if requests:
            try:
                fit_laws_many(list(requests.values()))
            except Exception:  # pragma: no cover - the fits themselves report it
                pass

    def _fit_route(self, route, ladder, benchmark, candidates, fitted):
        """Fit and backtest one route; record it in ``candidates`` (and ``fitted``)."""
        est = self.route_forecaster(route)
        entry = {"route": route, "configuration": ROUTES[route], "status": "fitted",
                 "error": None, "backtest": {}, "score": None}
        try:
            with warnings.catch_warnings():
                # a route's fit warnings (a mapping fallback, ...) are its own report's
                warnings.simplefilter("ignore", FitWarning)
                est.fit(ladder, benchmark)
                bt = est.backtest() if int(self.n_backtest) > 0 else []
        except Exception as exc:
            entry.update(status="failed", error=f"{type(exc).__name__}: {exc}",
                         exception=exc)
        else:
            fitted[route] = est
            entry["backtest"] = {b["model"]: float(b["residual"]) for b in bt}
        candidates.append(entry)

    def _choose(self, candidates: list[dict]) -> tuple[str, str]:
        """The incumbent route unless another beats its backtests decisively, and the
        sentence that says why (see the module docstring)."""
        fitted = [c for c in candidates if c["status"] == "fitted"]
        failed = [c for c in candidates if c["status"] == "failed"]
        note = "".join(f" Route {c['route']} failed ({c['error']})." for c in failed)
        # a route without a backtest brings no evidence: it cannot compete, nor empty
        # the set of runs the others are compared on
        tested = [c for c in fitted if c["backtest"]]
        untested = "".join(f" Route {c['route']} could not be backtested." for c in fitted
                           if not c["backtest"])
        if not tested:
            first = fitted[0]["route"]
            return first, (f"route {first}: the first candidate that fitted; no route could "
                           "forecast any ladder run from the runs below it, so no evidence "
                           "separates them." + note + untested)
        incumbent, ratio, margin = tested[0], float(self.switch_ratio), float(self.switch_margin)
        incumbent["score"] = float(np.mean([abs(v) for v in incumbent["backtest"].values()]))
        best, others = incumbent, []
        for c in tested[1:]:
            runs = sorted(set(c["backtest"]) & set(incumbent["backtest"]))
            if not runs:
                others.append(f"{c['route']} shares no backtested run with it")
                continue
            mine = float(np.mean([abs(incumbent["backtest"][m]) for m in runs]))
            c["score"] = float(np.mean([abs(c["backtest"][m]) for m in runs]))
            decisive = c["score"] <= ratio * mine and mine - c["score"] >= margin
            others.append(f"{c['route']} {100 * c['score']:.2f} against its {100 * mine:.2f} "
                          f"on {', '.join(runs)}" + (" (decisive)" if decisive else ""))
            if decisive and (best is incumbent or c["score"] < best["score"]):
                best = c
        runs = ", ".join(sorted(incumbent["backtest"]))
        head = (f"route {best['route']}: " + (
            "the preferred route that could be backtested; " if best is incumbent else
            f"its backtests beat those of the preferred route {incumbent['route']} "
            f"decisively (at most {ratio:g}x its error and {100 * margin:g} point(s) "
            "below); "))
        why = (head + f"forecasting the ladder's largest runs from the runs below them, "
               f"{incumbent['route']} missed {runs} by {100 * incumbent['score']:.2f} points "
               "on average" + (f"; {'; '.join(others)}" if others else "") + "."
               + note + untested)
        return best["route"], why

    # ----------------------------------------------------------- the chosen route

    def predict(self, compute):
        """Forecast full-set accuracy at ``compute`` FLOPs with the chosen route.

        Parameters
        ----------
        compute : float or array_like

        Returns
        -------
        float or ndarray
        """
        check_is_fitted(self, "forecaster_")
        return self.forecaster_.predict(compute)

    def predict_interval(self, compute, level: float = 0.9):
        """The chosen route's interval (bootstrap widened by its backtests).

        Parameters
        ----------
        compute : float or array_like
        level : float, default 0.9

        Returns
        -------
        (lower, upper)
            NaN bounds when the interval is unavailable (see ``interval_error_``).
        """
        check_is_fitted(self, "forecaster_")
        return self.forecaster_.predict_interval(compute, level)

    def bootstrap_predictions(self, compute) -> np.ndarray:
        """The chosen route's bootstrap forecasts (see
        :meth:`CODForecaster.bootstrap_predictions`)."""
        check_is_fitted(self, "forecaster_")
        return self.forecaster_.bootstrap_predictions(compute)

    def backtest(self) -> list[dict]:
        """The chosen route's backtests."""
        check_is_fitted(self, "forecaster_")
        return self.forecaster_.backtest()

    @property
    def interval_error_(self):
        """Why the chosen route's interval is unavailable (``None`` when it is fine)."""
        check_is_fitted(self, "forecaster_")
        return getattr(self.forecaster_, "interval_error_", None)

    def report(self) -> dict:
        """The chosen route's report, with ``route``, ``why`` and ``routes`` first.

        Returns
        -------
        dict
        """
        check_is_fitted(self, "forecaster_")
        return {"route": self.route_, "why": self.route_why_,
                "routes": [dict(c) for c in self.routes_], **self.forecaster_.report()}
