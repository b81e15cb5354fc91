"""What COD and the baselines share as forecasters of finished models: their intervals.

COD (:class:`~cod_monitor.cod.forecaster.CODForecaster`) and every baseline of
:mod:`cod_monitor.methods` build their interval the same two ways, implemented once here:

- a bootstrap over evaluation samples (rows) and ladder points (columns), refitting the
  forecaster's curve on each replicate: :func:`ladder_bootstrap` draws the indices;
- optionally (``interval='backtest'``), that bootstrap interval widened by the spread of
  the errors the forecaster makes when it forecasts the ladder's own largest runs from
  the runs below them (:func:`backtest_forecaster`): :func:`backtest_halfwidth` turns
  those errors into a half-width at the target's extrapolation distance and
  :func:`widen_interval` combines the two.

:class:`ForecastMixin` gives an estimator :meth:`~ForecastMixin.predict`,
:meth:`~ForecastMixin.predict_interval`, :meth:`~ForecastMixin.bootstrap_predictions`
and :meth:`~ForecastMixin.backtest` from its fitted curve and its refits (and its
ladder points, from the same selection), so that the forecasts and intervals of COD and
of the baselines differ only by the curve fitted.

An interval never takes its point forecast down with it: when the bootstrap or the
backtests fail, or ``interval='backtest'`` finds no run to backtest,
:meth:`~ForecastMixin.predict_interval` returns NaN bounds, records why in
``interval_error_`` and warns with a :class:`~cod_monitor.exceptions.FitWarning`;
:meth:`~ForecastMixin.predict` is unaffected.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence

import numpy as np
from scipy.special import stdtrit

from cod_monitor._estimator import check_is_fitted, clone
from cod_monitor._validation import check_choice, check_int, check_real
from cod_monitor.exceptions import FitWarning, InputError
from cod_monitor.ladder import load_ladder
from cod_monitor.ladder.selection import (MIN_LADDER_POINTS, final_checkpoints, select_fit_points,
                                          smooth_over_neighbours)

__all__ = [
    "FITTED_LADDER_ATTRIBUTES",
    "INTERVALS",
    "ForecastMixin",
    "as_scalar",
    "backtest_forecaster",
    "backtest_halfwidth",
    "ladder_bootstrap",
    "widen_interval",
]

#: Interval constructions: ``'bootstrap'`` alone, or ``'backtest'`` (widened by backtests).
INTERVALS = ("bootstrap", "backtest")

#: The numpydoc of the fitted attributes a :class:`ForecastMixin` host sets.
FITTED_LADDER_ATTRIBUTES = """
    benchmark_ : str
    compute_unit_ : float
    models_ : tuple of ModelInfo
        The ladder points fitted, by compute.
    compute_ : ndarray of shape (n_models,)
        Their compute in ``compute_unit_``.
    interval_error_ : str or None
        Why the interval is unavailable (:meth:`predict_interval` then returns NaN
        bounds): the bootstrap or the backtests failed, or ``interval='backtest'`` found
        no run to backtest. ``None`` while the interval is fine or not yet computed.
"""


class ForecastMixin:
    """``predict``, ``predict_interval``, ``bootstrap_predictions`` and ``backtest``.

    The host is an estimator with the parameters ``anchors``, ``checkpoints``,
    ``smooth_checkpoints``, ``interval``, ``n_backtest``, ``n_bootstrap`` and
    ``random_state``. Its ``fit`` sets ``compute_unit_``,
    ``compute_`` (its ladder points in that unit), ``benchmark_``, ``models_`` and
    ``_state`` (the fitted curve), then calls :meth:`_reset_lazy_intervals`; it
    implements ``_bootstrap()`` (the refitted curves, computed once on first use) and
    ``_replicate_predict(state, compute_units)`` (the full-set forecast of one curve).

    The bootstrap and the backtests are computed once per fit, and so is their failure:
    they are deterministic given the fit and ``random_state``, and a caller that asks
    for many intervals (the monitor, a forecast curve) must not redo a failing
    computation at every call.
    """

    def _check_interval_params(self) -> None:
        """Raise :class:`~cod_monitor.exceptions.ParameterError` on a bad interval setting."""
        owner = type(self).__name__
        check_int(owner, "n_bootstrap", self.n_bootstrap, 0)
        check_choice(owner, "interval", self.interval, INTERVALS)
        check_int(owner, "n_backtest", self.n_backtest, 0)

    def _to_units(self, compute):
        c = np.asarray(compute, dtype=float)
        if not np.all(np.isfinite(c)) or np.any(c <= 0):
            raise InputError(f"`compute` should be positive and finite FLOPs, got {compute!r}")
        return c / self.compute_unit_

    def _reset_lazy_intervals(self, ladder) -> None:
        """At the end of ``fit``: keep the ladder for the backtests and the bootstrap, and
        drop what a previous fit computed lazily."""
        self._ladder = ladder
        self._backtest = None
        if hasattr(self, "backtest_"):
            del self.backtest_  # belongs to the previous fit
        self._replicates = None
        self.interval_error_ = None
        self._bootstrap_error = None
        self._backtest_error = None
        self._backtest_skipped = []

    def _fit_points(self, ladder, benchmark):
        """The ladder points to fit and the anchors:
        :func:`~cod_monitor.ladder.selection.select_fit_points` with this estimator's
        ``anchors``, ``checkpoints`` and ``smooth_checkpoints``."""
        return select_fit_points(ladder, benchmark, anchors=self.anchors,
                                 checkpoints=self.checkpoints,
                                 smooth_checkpoints=self.smooth_checkpoints)

    def _resamples(self, groups):
        """Bootstrap draws of :func:`ladder_bootstrap` seeded with ``random_state``."""
        return ladder_bootstrap(
            np.random.default_rng(self.random_state), groups, self.compute_, self.n_bootstrap
        )

    def predict(self, compute):
        """Forecast full-set accuracy at ``compute`` FLOPs.

        Parameters
        ----------
        compute : float or array_like
            Training compute in FLOPs (positive).

        Returns
        -------
        float or ndarray
            Accuracy in [0, 1]; a float for scalar input.
        """
        check_is_fitted(self, "compute_")
        return as_scalar(self._replicate_predict(self._state, self._to_units(compute)))

    def predict_interval(self, compute, level: float = 0.9):
        """Interval of the full-set forecast: bootstrap, widened by backtests if asked.

        With ``interval='bootstrap'`` the bounds are quantiles of
        :meth:`bootstrap_predictions`, widened if needed to contain the point forecast.
        With ``interval='backtest'`` each half-width is then combined in quadrature with
        :math:`t_\\nu \\sigma(d)` from :meth:`backtest` (see :func:`backtest_halfwidth`);
        the first call runs the backtests (``n_backtest=0`` turns the widening off).

        When the interval cannot be built (the bootstrap raised or every replicate's
        refit failed; the backtests raised; ``interval='backtest'`` with
        ``n_backtest > 0`` found no run to backtest) the bounds are NaN, the reason is
        in ``interval_error_`` and a :class:`~cod_monitor.exceptions.FitWarning` says
        it; :meth:`predict` still forecasts. A narrower interval than the one asked
        for is never returned in its place.

        Parameters
        ----------
        compute : float or array_like
            Training compute in FLOPs.
        level : float, default 0.9
            Central coverage of the interval.

        Returns
        -------
        (lower, upper) : tuple of float or ndarray
            NaN where the interval is unavailable (see ``interval_error_``).

        Raises
        ------
        InputError, ParameterError
            A bad ``compute`` or ``level`` (the arguments, not the interval).
        """
        check_is_fitted(self, "compute_")
        check_real(f"{type(self).__name__}.predict_interval", "level", level, 0.0, 1.0)
        point = np.asarray(self.predict(compute), dtype=float)
        try:
            lo, hi, reason = self._interval(compute, point, level)
        except Exception as exc:  # any failure of the interval leaves the point forecast
            lo = hi = point
            reason = f"the interval failed ({type(exc).__name__}: {exc})"
        self.interval_error_ = reason
        if reason is not None:
            warnings.warn(f"{type(self).__name__}: interval unavailable: {reason}",
                          FitWarning, stacklevel=2)
            lo = hi = np.full_like(point, np.nan)
        return as_scalar(lo), as_scalar(hi)

    def _interval(self, compute, point, level):
        """``(lo, hi, reason)``: the bounds of :meth:`predict_interval`, or a reason."""
        draws = self.bootstrap_predictions(compute)
        if self._bootstrap_error is not None:
            return point, point, self._bootstrap_error
        if draws.shape[0] == 0:
            lo = hi = point  # n_bootstrap=0: no bootstrap asked for
        else:
            lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2], axis=0)
            # the point forecast belongs inside its own interval even when the bootstrap
            # is skewed
            lo, hi = np.minimum(lo, point), np.maximum(hi, point)
        if self.interval == "backtest" and int(self.n_backtest) > 0:
            bt = self.backtest()
            if not bt:
                # the bootstrap alone would pass for the wider interval asked for
                return point, point, self._backtest_error or self._no_backtest_reason()
            extra = backtest_halfwidth(bt, self._to_units(compute), self.compute_, level)
            lo, hi = widen_interval(point, lo, hi, extra)
        return lo, hi, None

    def _no_backtest_reason(self) -> str:
        # the runs too close to the bottom are the rule, not news: name the other skips
        other = [f"{name}: {why}" for name, why, too_few in self._backtest_skipped
                 if not too_few]
        return (
            f"interval='backtest' found no run to backtest among {len(self.compute_)} "
            f"ladder points: a held-out run needs at least {MIN_LADDER_POINTS} points of "
            "distinct compute below it and a fit on them"
            + (f" (skipped {'; '.join(other[:3])})" if other else "")
            + ". Add ladder runs, or use interval='bootstrap'."
        )

    def bootstrap_predictions(self, compute) -> np.ndarray:
        """Full-set forecasts of every bootstrap replicate, shape (n_replicates, *shape).

        Replicates resample the evaluation samples and the ladder points with
        replacement (redrawing the points until at least ``min(4, n)`` distinct compute
        values are drawn) and refit the curve, warm-started from the main fit. They are
        computed once, on first use. The backtest widening of ``interval='backtest'`` is
        applied by :meth:`predict_interval`, not to these draws.

        A bootstrap that raises, or whose every refit fails, gives no replicate
        (``n_replicates`` is 0), sets ``interval_error_`` and warns with a
        :class:`~cod_monitor.exceptions.FitWarning`, once per fit.

        Parameters
        ----------
        compute : float or array_like
            Training compute in FLOPs.

        Returns
        -------
        ndarray of shape (n_replicates, *np.shape(compute))
        """
        check_is_fitted(self, "compute_")
        c = self._to_units(compute)
        if self._replicates is None:
            try:
                self._replicates = self._bootstrap()
            except Exception as exc:  # the interval's failure, not the point forecast's
                self._replicates = []
                self._bootstrap_failed(f"the bootstrap failed ({type(exc).__name__}: {exc})")
            else:
                if int(self.n_bootstrap) > 0 and not self._replicates:
                    self._bootstrap_failed(
                        f"every one of the {int(self.n_bootstrap)} bootstrap refits failed")
        out = [self._replicate_predict(rep, c) for rep in self._replicates]
        return np.asarray(out, dtype=float).reshape((len(out),) + np.shape(c))

    def _bootstrap_failed(self, reason: str) -> None:
        self._bootstrap_error = self.interval_error_ = reason
        warnings.warn(f"{type(self).__name__}: interval unavailable: {reason}", FitWarning,
                      stacklevel=3)

    def backtest(self) -> list[dict]:
        """The backtests of this fit (computed once): see :func:`backtest_forecaster`.

        A failure of the backtests themselves (not of one held-out run, which is
        skipped) gives no backtest and a :class:`~cod_monitor.exceptions.FitWarning`;
        :meth:`predict_interval` then reports the interval unavailable.

        Returns
        -------
        list of dict
        """
        check_is_fitted(self, "compute_")
        if self._backtest is None:
            skipped: list[tuple[str, str, bool]] = []
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", FitWarning)
                    self._backtest = _backtests(
                        self, self._ladder, self.benchmark_, int(self.n_backtest),
                        skipped=skipped,
                    )
            except Exception as exc:
                self._backtest = []
                self._backtest_error = f"the backtests failed ({type(exc).__name__}: {exc})"
                warnings.warn(f"{type(self).__name__}: {self._backtest_error}", FitWarning,
                              stacklevel=2)
            self._backtest_skipped = skipped
            self.backtest_ = self._backtest
        return self._backtest


def as_scalar(x):
    """``float(x)`` for a 0-d value, ``x`` itself otherwise."""
    return float(x) if np.ndim(x) == 0 else x


def ladder_bootstrap(
    rng: np.random.Generator,
    groups: int | Sequence[np.ndarray],
    compute,
    n_replicates: int,
    *,
    min_distinct: int = 4,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Row and column indices of bootstrap replicates of a ladder's pass-rate matrix.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of the draws (seed it for reproducible replicates).
    groups : int or sequence of ndarray
        ``n``: the rows ``0 .. n-1`` are resampled with replacement as one group.
        A sequence of index arrays: each group is resampled within itself (COD keeps
        every cluster's size, so a replicate has the clustering of the fit).
    compute : array_like of shape (n_models,)
        Compute of the ladder points (columns), in any unit.
    n_replicates : int
        Replicates to draw.
    min_distinct : int, default 4
        Columns are redrawn until at least ``min(min_distinct, distinct values of
        compute)`` distinct compute values are drawn: a law with four parameters is not
        identified on fewer.

    Yields
    ------
    rows : ndarray of int
        Resampled row indices, group after group.
    cols : ndarray of int of shape (n_models,)
        Resampled column indices.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> draws = list(ladder_bootstrap(rng, [np.arange(3), np.arange(3, 5)], [1, 2, 3, 4, 5], 2))
    >>> [(len(r), len(c)) for r, c in draws]
    [(5, 5), (5, 5)]
    >>> all(set(r[:3]) <= {0, 1, 2} and set(r[3:]) <= {3, 4} for r, _ in draws)
    True
    """
    compute = np.asarray(compute, dtype=float)
    m = len(compute)
    need = min(int(min_distinct), len(np.unique(compute)))
    group_list = None if isinstance(groups, (int, np.integer)) else [np.asarray(g) for g in groups]
    for _ in range(int(n_replicates)):
        if group_list is None:
            rows = rng.integers(0, int(groups), size=int(groups))
        else:
            rows = np.concatenate([rng.choice(g, size=len(g)) for g in group_list])
        cols = rng.integers(0, m, size=m)
        while len(np.unique(compute[cols])) < need:
            cols = rng.integers(0, m, size=m)
        yield rows, cols


def backtest_halfwidth(backtests, compute, ladder_compute, level: float):
    r"""Half-width :math:`t_\nu\,\sigma(d)` of the backtest widening at ``compute``.

    Parameters
    ----------
    backtests : list of dict
        From :func:`backtest_forecaster`: each has ``residual``
        (truth - forecast) and ``log_distance`` (log compute ratio of the held-out run
        to the largest point fitted without it).
    compute : float or array_like
        Target compute, in the unit of ``ladder_compute``.
    ladder_compute : array_like
        Compute of the fitted ladder points, same unit.
    level : float
        Central coverage of the interval.

    Returns
    -------
    ndarray
        Half-width, shape of ``compute``; zeros when there is no backtest.

    Notes
    -----
    With :math:`d` the target's log compute ratio to the largest ladder point,
    :math:`d_j, r_j` the distance and error of backtest :math:`j` and :math:`s` the
    median log-compute step of the ladder,
    :math:`\sigma(d)^2 = \mathrm{mean}_j\, r_j^2 ((d + s)/(d_j + s))^2`: the error grows
    linearly with the distance from the level a forecast one ladder step away already
    has. :math:`t_\nu` is Student's quantile with :math:`\nu` = number of backtests.

    Examples
    --------
    >>> bt = [{"residual": 0.02, "log_distance": 0.5}, {"residual": -0.02, "log_distance": 0.5}]
    >>> near = backtest_halfwidth(bt, 1.5, [0.25, 0.5, 1.0], 0.9)
    >>> far = backtest_halfwidth(bt, 30.0, [0.25, 0.5, 1.0], 0.9)
    >>> bool(0 < near < far)
    True
    """
    c = np.asarray(compute, dtype=float)
    if not backtests:
        return np.zeros_like(c)
    ladder_compute = np.asarray(ladder_compute, dtype=float)
    d = np.maximum(np.log(c / ladder_compute.max()), 0.0)
    logc = np.unique(np.log(ladder_compute))
    step = float(np.median(np.diff(logc))) if len(logc) > 1 else 0.0
    r = np.array([b["residual"] for b in backtests])
    dj = np.array([b["log_distance"] for b in backtests])
    scale = (d[..., None] + step) / (dj + step)
    sigma = np.sqrt(np.mean((r * scale) ** 2, axis=-1))
    return stdtrit(len(backtests), (1 + level) / 2) * sigma


def widen_interval(point, lo, hi, extra):
    """Combine each half-width of ``[lo, hi]`` with ``extra`` in quadrature, in [0, 1].

    Parameters
    ----------
    point, lo, hi : float or ndarray
        Point forecast and bootstrap bounds (``lo <= point <= hi``).
    extra : float or ndarray
        Extra half-width (e.g. :func:`backtest_halfwidth`).

    Returns
    -------
    (lower, upper) : tuple of ndarray

    Examples
    --------
    >>> [round(float(v), 3) for v in widen_interval(0.5, 0.47, 0.54, 0.04)]
    [0.45, 0.557]
    """
    point = np.asarray(point, dtype=float)
    lower = np.clip(point - np.hypot(point - lo, extra), 0.0, 1.0)
    upper = np.clip(point + np.hypot(hi - point, extra), 0.0, 1.0)
    return lower, upper


def backtest_forecaster(
    estimator, ladder, benchmark: str, *, n_backtest: int = 3, min_log_distance: float = 0.1
) -> list[dict]:
    """Forecast the ladder's own largest runs from the runs below them.

    For each of the ``n_backtest`` largest runs of the fitted ``estimator``'s ladder
    points (the final checkpoint of each run; a model without ``step`` is a run of its
    own), an unfitted copy of the estimator, with the same parameters and no bootstrap,
    is fitted on the ladder without that run and without every run that ends at or
    beyond its compute (all their checkpoints: an early checkpoint of a larger run is
    not a finished model; anchors included), and forecasts the run's final checkpoint.
    A run is skipped for the next largest when the estimator's ladder points left
    below it have fewer than :data:`~cod_monitor.ladder.selection.MIN_LADDER_POINTS`
    (3) distinct compute values (checked before the smaller ladder is built, so a
    ladder without a target is never emptied), when the copy's fit or forecast raises
    (any exception), or when it lies less than ``min_log_distance`` beyond the points
    left (an interpolation, not an extrapolation). The list may therefore be shorter
    than ``n_backtest``, or empty.

    Parameters
    ----------
    estimator : fitted estimator
        COD or any forecaster of :mod:`cod_monitor.methods` after ``fit`` (it has
        ``models_``).
    ladder : Ladder
        The ladder it was fitted on.
    benchmark : str
    n_backtest : int, default 3
        Largest runs to hold out, one at a time.
    min_log_distance : float, default 0.1
        Smallest log compute ratio between a held-out run and the largest model fitted
        without it.

    Returns
    -------
    list of dict
        One per backtest, largest run first: ``model``, ``compute`` (FLOPs),
        ``truth`` (its measured full-set accuracy), ``forecast``, ``residual``
        (truth - forecast) and ``log_distance`` (log of its compute over the largest
        compute fitted).

    Notes
    -----
    The errors of these forecasts hold everything the bootstrap holds fixed or cannot
    see: a wrong law or cluster structure, a filter decision, a ladder model off the
    trend. ``CODForecaster(interval='backtest')`` scales their spread to the target's
    extrapolation distance.

    Examples
    --------
    >>> from cod_monitor.cod.forecaster import CODForecaster
    >>> from cod_monitor.synthetic import synthetic_ladder
    >>> syn = synthetic_ladder(n_samples=400, seed=0)
    >>> cod = CODForecaster(combine="share", fallback="rest", n_bootstrap=0)
    >>> bt = backtest_forecaster(cod.fit(syn.ladder, "synthetic"), syn.ladder, "synthetic")
    >>> len(bt), all(abs(b["residual"]) < 0.05 for b in bt)
    (3, True)
    """
    return _backtests(estimator, ladder, benchmark, n_backtest,
                      min_log_distance=min_log_distance)


def backtest_candidates(models, ladder):
    """The runs a backtest holds out, largest first, with what it drops.

    Parameters
    ----------
    models : sequence of ModelInfo
        The ladder points a forecaster was fitted on (its ``models_``).
    ladder : Ladder

    Yields
    ------
    (held, drop, n_left)
        The held-out run's final checkpoint, the names of the ladder models fitted
        without it (every run that ends at or beyond its compute, anchors included, and
        its own checkpoints), and how many distinct compute values of ``models`` are
        left.
    """
    models = tuple(models)
    finals = sorted((models[i] for i in final_checkpoints(models)), key=lambda m: -m.compute)
    # compute at which each run ends: a run ending beyond the held-out one goes entirely
    run_end: dict[str, float] = {}
    for m in ladder.models:
        if m.step is not None and m.role in ("ladder", "anchor"):
            run_end[m.run_key] = max(run_end.get(m.run_key, 0.0), m.compute)

    def ends_at(m):
        return run_end[m.run_key] if m.step is not None else m.compute

    for held in finals:
        drop = {
            m.name for m in ladder.models
            if m.role in ("ladder", "anchor")
            and (ends_at(m) >= held.compute or (held.step is not None and m.step is not None
                                                 and m.run_key == held.run_key))
        }
        yield held, drop, len({m.compute for m in models if m.name not in drop})


def _backtests(estimator, ladder, benchmark, n_backtest, *, min_log_distance=0.1,
               skipped=None) -> list[dict]:
    """:func:`backtest_forecaster`; appends ``(run, why, too_few_points)`` of each
    skipped run to ``skipped``."""
    check_is_fitted(estimator, "models_")
    ladder = load_ladder(ladder)
    raw = ladder.matrix(benchmark, roles=("ladder", "anchor"))
    names = raw.model_names
    params = estimator.get_params(deep=False)
    measured = raw.pass_rates
    if params.get("smooth_checkpoints"):
        # the held-out point is what the estimator fits: its smoothed pass rates
        measured = smooth_over_neighbours(raw.models, measured)
    skipped = [] if skipped is None else skipped
    out = []
    for held, drop, n_left in backtest_candidates(estimator.models_, ladder):
        if len(out) >= int(n_backtest):
            break
        # checked before building the sub-ladder, so that a run near the bottom neither
        # fails inside the fit nor empties the ladder
        if n_left < MIN_LADDER_POINTS:
            skipped.append((held.name, f"{n_left} ladder points of distinct compute "
                                       f"below it, fewer than {MIN_LADDER_POINTS}", True))
            continue
        copy = clone(estimator)
        copy.set_params(**{k: v for k, v in (("n_bootstrap", 0), ("interval", "bootstrap"))
                           if k in params})
        try:
            copy.fit(ladder.without_models(sorted(drop)), benchmark)
            forecast = float(copy.predict(held.compute))
        except Exception as exc:  # a backtest that cannot be fitted is skipped, never fatal
            skipped.append((held.name, f"{type(exc).__name__}: {exc}", False))
            continue
        distance = float(np.log(held.compute / max(m.compute for m in copy.models_)))
        if distance < min_log_distance:
            skipped.append((held.name, f"log distance {distance:.3g} < {min_log_distance}",
                            False))
            continue
        truth = float(measured[:, names.index(held.name)].mean())
        out.append(
            {
                "model": held.name,
                "compute": float(held.compute),
                "truth": truth,
                "forecast": forecast,
                "residual": truth - forecast,
                "log_distance": distance,
            }
        )
    return out
