"""The base of the baselines: COD's ladder input, interface and intervals, on the full set.

Every baseline (:mod:`~cod_monitor.methods.end_to_end`, :mod:`~cod_monitor.methods.bnsl`,
:mod:`~cod_monitor.methods.loss_intermediate`) fits the *full-set* accuracy of the ladder
models (the mean pass rate over all evaluation samples), not difficulty clusters. They
see exactly the ladder points COD sees
(:func:`cod_monitor.ladder.selection.select_fit_points` with the same ``anchors``,
``checkpoints`` and ``smooth_checkpoints``) and share COD's estimator interface:
``fit(ladder, benchmark)``, ``predict(compute)``, ``predict_interval(compute, level)``,
``bootstrap_predictions(compute)`` and ``report()``. Intervals come from COD's bootstrap
without the clusters (:class:`~cod_monitor.cod.intervals.ForecastMixin`): evaluation
samples (rows) and ladder models (columns) are resampled with replacement and the curve
is refitted, warm-started from the main fit; with ``interval='backtest'`` that interval
is widened by the method's own errors on the ladder's largest runs, as for COD.
"""

from __future__ import annotations

import inspect
import warnings

import numpy as np
from scipy.optimize import least_squares

from cod_monitor._estimator import Estimator, check_is_fitted
from cod_monitor._io import to_jsonable
from cod_monitor._validation import check_bool, check_choice, check_int, check_real
from cod_monitor.cod.intervals import FITTED_LADDER_ATTRIBUTES, ForecastMixin
from cod_monitor.exceptions import FitWarning
from cod_monitor.ladder import load_ladder

__all__ = [
    "COMMON_ATTRIBUTES",
    "COMMON_PARAMETERS",
    "EXP_CLIP",
    "LadderBaseline",
    "affine_fit",
    "at_bound",
    "geomean",
    "refine",
]

#: Exponents are clipped to +-EXP_CLIP before ``exp`` so that no grid point overflows.
EXP_CLIP = 60.0
TINY = 1e-300

#: The numpydoc of the parameters every baseline shares (after its own).
COMMON_PARAMETERS = """
    anchors : sequence of str, optional
        As in :class:`~cod_monitor.cod.forecaster.CODForecaster`: the named anchor models
        (``None``: every model with role ``anchor``) are left out of the fit points so
        that the baseline fits exactly the ladder points COD fits; they are otherwise
        unused.
    compute_unit : float, optional
        FLOPs per compute unit before fitting; ``None`` takes the ladder's.
    checkpoints : {'final', 'all'}, default 'final'
        Which checkpoints are ladder points (see
        :func:`~cod_monitor.ladder.selection.select_fit_points`).
    smooth_checkpoints : bool, default False
        Average each ladder point's pass rates with its two neighbouring checkpoints.
    n_bootstrap : int, default 200
        Bootstrap replicates for :meth:`predict_interval`.
    random_state : int or None, default 0
        Seed of the bootstrap.
    interval : {'bootstrap', 'backtest'}, default 'bootstrap'
        The interval construction; see :meth:`predict_interval`.
    n_backtest : int, default 3
        Largest runs held out, one at a time, by ``interval='backtest'``.
"""

#: The numpydoc of the attributes every baseline shares (before its own).
COMMON_ATTRIBUTES = FITTED_LADDER_ATTRIBUTES.rstrip("\n") + """
    n_samples_ : int
        Evaluation samples of the benchmark.
    full_accuracy_ : ndarray of shape (n_models,)
        Full-set accuracy (mean pass rate) of every ladder point.
    backtest_ : list of dict
        Only after :meth:`predict_interval` with ``interval='backtest'`` (or
        :meth:`backtest`): see :func:`cod_monitor.cod.intervals.backtest_forecaster`.
"""


def affine_fit(H, y, a_bounds, b_max=np.inf):
    """Best ``a + b h`` for every row ``h`` of ``H``: a in ``a_bounds``, 0 <= b <= b_max.

    Variable projection for the laws that are linear in two of their parameters: the grid
    covers the nonlinear ones and this solves the linear pair in closed form (exact when
    no bound is active, a good start for the refinement otherwise).

    Returns ``a, b, sse``, each of shape (n_rows,).
    """
    H = np.asarray(H, dtype=float)
    n = H.shape[1]
    hm, ym = H.mean(axis=1), y.mean()
    dh = H - hm[:, None]
    var = (dh**2).sum(axis=1)
    b = np.where(var > TINY, dh @ (y - ym) / np.maximum(var, TINY), 0.0)
    b = np.clip(b, 0.0, b_max)
    a = np.clip(ym - b * hm, *a_bounds)
    # with a clipped, the best b given a (the normal equation of b alone)
    hh = (H**2).sum(axis=1)
    b = np.where(hh > TINY, (H @ y - a * H.sum(axis=1)) / np.maximum(hh, TINY), 0.0)
    b = np.clip(b, 0.0, b_max)
    resid = a[:, None] + b[:, None] * H - y[None, :]
    sse = (resid**2).sum(axis=1) / max(n, 1)
    return a, b, np.where(np.isfinite(sse), sse, np.inf)


def refine(resid, starts, lower, upper, max_nfev):
    """Bounded least squares from each start; the lowest cost wins (or None)."""
    best = None
    for theta0 in starts:
        theta0 = np.clip(np.asarray(theta0, dtype=float), lower, upper)
        try:
            with np.errstate(all="ignore"):
                res = least_squares(
                    resid, theta0, bounds=(lower, upper), method="trf", x_scale="jac",
                    max_nfev=max_nfev,
                )
        except (ValueError, FloatingPointError, np.linalg.LinAlgError):
            continue
        if np.all(np.isfinite(res.x)) and np.isfinite(res.cost):
            if best is None or res.cost < best.cost:
                best = res
    return best


def at_bound(names, theta, lower, upper):
    """Names of the parameters within a millionth of the search box's width of a bound."""
    tol = 1e-6 * (upper - lower)
    return [
        n for n, v, lo, hi, t in zip(names, theta, lower, upper, tol)
        if v <= lo + t or v >= hi - t
    ]


def geomean(x) -> float:
    """Geometric mean of positive values."""
    return float(np.exp(np.mean(np.log(x))))


class LadderBaseline(ForecastMixin, Estimator):
    """Shared fit, predict, bootstrap and report of the baselines.

    A subclass's ``__init__`` stores its own keyword-only parameters and passes the
    common ones (:data:`COMMON_PARAMETERS`) here; it defines ``_method_name`` and
    implements ``_fit_curve(compute, accuracy, aux, init)`` (the curve's state, warm
    started from ``init``), ``_curve(state, compute_units)``, ``_set_fitted(state,
    aux)`` and ``_fit_report()``, and may override ``_validate_own`` and ``_columns``.
    """

    _method_name = ""

    def __init__(self, *, anchors=None, compute_unit=None, checkpoints="final",
                 smooth_checkpoints=False, n_bootstrap=200, random_state=0,
                 interval="bootstrap", n_backtest=3):
        self._store_params(locals())

    def _store_params(self, arguments: dict) -> None:
        """Store every parameter of the signature from ``__init__``'s ``locals()``.

        scikit-learn reads the parameters off ``__init__``'s signature, so each baseline
        lists them there; storing them by name keeps every ``__init__`` to that list.
        """
        for name in inspect.signature(type(self).__init__).parameters:
            if name != "self":
                setattr(self, name, arguments[name])

    # -------------------------------------------------------------- validation

    def _validate_params(self):
        owner = type(self).__name__
        check_choice(owner, "checkpoints", self.checkpoints, ("final", "all"))
        check_bool(owner, "smooth_checkpoints", self.smooth_checkpoints)
        check_real(owner, "compute_unit", self.compute_unit, 0.0, none_ok=True)
        check_int(owner, "random_state", self.random_state, 0, none_ok=True)
        self._check_interval_params()
        self._validate_own()

    def _validate_own(self):
        """Check the subclass's own parameters."""

    # ------------------------------------------------------------------ fitting

    def fit(self, ladder, benchmark: str):
        """Fit the baseline on the ladder's full-set accuracy on ``benchmark``.

        Parameters
        ----------
        ladder, benchmark
            As :meth:`CODForecaster.fit <cod_monitor.cod.forecaster.CODForecaster.fit>`;
            anchors are left out of the fit points.

        Returns
        -------
        self

        Raises
        ------
        ParameterError, LadderValidationError
            As :meth:`CODForecaster.fit <cod_monitor.cod.forecaster.CODForecaster.fit>`.
        MethodUnavailableError
            The ladder lacks what the method needs (``LossIntermediate``: a ``loss``).
        ValueError
            The curve cannot be fitted.
        """
        self._validate_params()
        ladder = load_ladder(ladder)
        unit = float(self.compute_unit or ladder.compute_unit)
        fit_matrix, _ = self._fit_points(ladder, benchmark)
        X = fit_matrix.pass_rates
        models = fit_matrix.models
        keep, aux = self._columns(models, benchmark)
        X, models = X[:, keep], tuple(models[j] for j in keep)
        compute = np.array([m.compute for m in models]) / unit
        accuracy = X.mean(axis=0)
        state = self._fit_curve(compute, accuracy, aux, init=None)

        self.benchmark_ = benchmark
        self.compute_unit_ = unit
        self.models_ = models
        self.compute_ = compute
        self.n_samples_ = int(X.shape[0])
        self.full_accuracy_ = accuracy
        self._set_fitted(state, aux)
        self._state = state
        self._aux = aux
        self._X = X
        self._reset_lazy_intervals(ladder)
        return self

    def _columns(self, models, benchmark):
        """Which fit columns the method uses, and per-column side data (``None``)."""
        return np.arange(len(models)), None

    # --------------------------------------------------------------- prediction

    def _bootstrap(self) -> list:
        """Replicates of :meth:`bootstrap_predictions`: the curve refitted on resamples
        of the samples and ladder points; a replicate whose refit fails is dropped, so
        there may be fewer than ``n_bootstrap``."""
        X, compute, aux = self._X, self.compute_, self._aux
        n = X.shape[0]
        replicates = []
        for rows, cols in self._resamples(n):
            weights = np.bincount(rows, minlength=n) / n
            accuracy = (weights @ X)[cols]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FitWarning)
                try:
                    state = self._fit_curve(
                        compute[cols], accuracy, None if aux is None else aux[cols],
                        init=self._state,
                    )
                except (ValueError, FloatingPointError, np.linalg.LinAlgError):
                    continue
            replicates.append(state)
        return replicates

    def _replicate_predict(self, state, c):
        return np.clip(self._curve(state, c), 0.0, 1.0)

    # ------------------------------------------------------------------- report

    def report(self) -> dict:
        """The fitted curve and its diagnostics, as plain Python (JSON-serialisable).

        Returns
        -------
        dict
            Keys: ``method``, ``benchmark``, ``compute_unit``, ``n_samples``,
            ``models`` (name, compute in FLOPs, full-set accuracy, fitted accuracy),
            ``rmse`` (of the fitted accuracy on the ladder points), ``fit`` (the
            method's parameters, compute in ``compute_unit``) and ``interval_error``
            (``interval_error_``: why the interval is unavailable, ``None`` when it is
            fine or not computed yet); non-finite numbers are ``None``.
        """
        check_is_fitted(self, "full_accuracy_")
        fitted = np.clip(self._curve(self._state, self.compute_), 0.0, 1.0)
        models = []
        for m, acc, fit in zip(self.models_, self.full_accuracy_, fitted):
            entry = {
                "name": m.name,
                "compute": m.compute,
                "full_accuracy": float(acc),
                "fitted_accuracy": float(fit),
            }
            if m.loss is not None:
                entry["loss"] = m.loss
            models.append(entry)
        return to_jsonable({
            "method": self._method_name,
            "benchmark": self.benchmark_,
            "compute_unit": self.compute_unit_,
            "n_samples": self.n_samples_,
            "models": models,
            "rmse": float(np.sqrt(np.mean((fitted - self.full_accuracy_) ** 2))),
            "fit": self._fit_report(),
            "interval_error": self.interval_error_,
        })
