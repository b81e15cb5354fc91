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

:class:`RoutedCOD` fits every route, forecasts the ladder's own largest runs from
the runs below them with each (the leave-largest-out backtests of
:func:`~cod_monitor.cod.intervals.backtest_forecaster`), and forecasts with the
route whose backtests missed least, compared on the runs every route could
backtest. Its report says which route, why, and every route's backtest errors.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from types import MappingProxyType

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from cod_monitor._validation import check_choice, check_int, check_real, invalid
from cod_monitor.cod.forecaster import CODForecaster
from cod_monitor.exceptions import FitWarning
from cod_monitor.ladder import load_ladder

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


class RoutedCOD(BaseEstimator):
    """Forecast full-set accuracy with COD, choosing the route to the full set by the
    ladder's own backtests.

    Parameters
    ----------
    routes : sequence of str, default all of :data:`ROUTES`
        The candidate routes, in order of preference (the first wins a tie).
    tolerance : float, default 0.002
        Backtest errors (mean absolute, accuracy units) closer than this count as a
        tie: the earlier route in ``routes`` is taken.
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
        residual) and ``score`` (mean absolute backtest error on the runs compared).
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

    def __init__(self, *, routes=tuple(ROUTES), tolerance: float = 0.002, anchors=None,
                 checkpoints: str = "final", smooth_checkpoints: bool = False,
                 tokens_per_param: float | None = None, n_bootstrap: int = 200,
                 n_backtest: int = 3, random_state: int = 0):
        self.routes = routes
        self.tolerance = tolerance
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
        check_real(owner, "tolerance", self.tolerance, 0.0)
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
        candidates, fitted, first_error = [], {}, None
        for route in self.routes:
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
                first_error = first_error or exc
                entry.update(status="failed", error=f"{type(exc).__name__}: {exc}")
            else:
                fitted[route] = est
                entry["backtest"] = {b["model"]: float(b["residual"]) for b in bt}
            candidates.append(entry)
        if not fitted:
            raise first_error
        self.route_, self.route_why_ = self._choose(candidates)
        self.routes_ = candidates
        self.forecaster_ = fitted[self.route_]
        for name in ("benchmark_", "compute_unit_", "models_", "compute_"):
            setattr(self, name, getattr(self.forecaster_, name))
        return self

    def _choose(self, candidates: list[dict]) -> tuple[str, str]:
        """The route with the smallest mean absolute backtest error on the held-out
        runs every fitted route backtested, and the sentence that says why."""
        fitted = [c for c in candidates if c["status"] == "fitted"]
        failed = [c for c in candidates if c["status"] == "failed"]
        common = set.intersection(*(set(c["backtest"]) for c in fitted))
        note = "".join(f" Route {c['route']} failed ({c['error']})." for c in failed)
        if not common:
            first = fitted[0]["route"]
            return first, (f"route {first}: the first candidate that fitted; no ladder run "
                           "could be backtested by every route, so no evidence separates "
                           "them." + note)
        for c in fitted:
            c["score"] = float(np.mean([abs(c["backtest"][m]) for m in sorted(common)]))
        best_score = min(c["score"] for c in fitted)
        best = next(c for c in fitted if c["score"] <= best_score + float(self.tolerance))
        others = ", ".join(f"{c['route']} {100 * c['score']:.2f}" for c in fitted
                           if c is not best)
        held = ", ".join(sorted(common))
        why = (f"route {best['route']}: its forecasts of the ladder's largest runs "
               f"({held}) from the runs below them missed by {100 * best['score']:.2f} "
               f"points on average" + (f", against {others}" if others else "") + "."
               + (" (A tie within the tolerance goes to the earlier route.)"
                  if best["score"] > best_score else "") + note)
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
