"""Baseline forecasters to set beside COD, with COD's ladder input and interface.

Every baseline fits the *full-set* accuracy of the ladder models (the mean pass rate over
all evaluation samples), not difficulty clusters:

- :class:`EndToEndExp`: the COD law fitted once to the full-set accuracy;
- :class:`EndToEndPassRate`: the GPT-4 / PassUntil power law of ``-log(pass rate)``;
- :class:`BNSL`: a broken neural scaling law of the error ``1 - accuracy``;
- :class:`LossIntermediate`: compute to validation loss (power law), then loss to accuracy
  (sigmoid or linear), which needs a ``loss`` per ladder model in ``ladder.json``.

They see exactly the ladder points COD sees (:func:`cod_monitor.ladder.selection.select_fit_points`
with the same ``anchors``, ``checkpoints`` and ``smooth_checkpoints``) and share COD's
estimator interface: ``fit(ladder, benchmark)``, ``predict(compute)``,
``predict_interval(compute, level)``, ``bootstrap_predictions(compute)`` and ``report()``.
Intervals come from COD's bootstrap without the clusters: evaluation samples (rows) and
ladder models (columns) are resampled with replacement and the curve is refitted,
warm-started from the main fit. With ``interval='backtest'`` that interval is widened by
the method's own errors on the ladder's largest runs, the construction ``cod`` uses
(:mod:`cod_monitor.cod.resampling`); the registry (:mod:`cod_monitor.methods`) builds the
baselines that way so that coverage compares like with like.
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from cod_monitor.exceptions import FitWarning, MethodUnavailableError
from cod_monitor.cod.forecaster import INTERVALS, _LadderIntervals
from cod_monitor.ladder import load_ladder
from cod_monitor.cod.laws import LAW_FORMS, LawFit, fit_laws
from cod_monitor.cod.resampling import ladder_bootstrap
from cod_monitor.ladder.selection import select_fit_points

__all__ = [
    "EndToEndExp",
    "EndToEndPassRate",
    "BNSL",
    "LossIntermediate",
    "passrate_power_law",
    "broken_power_law",
    "loss_power_law",
    "sigmoid_link",
    "MIN_LOSS_POINTS",
]

#: Fewest ladder points carrying a ``loss`` that :class:`LossIntermediate` accepts.
MIN_LOSS_POINTS = 3

# Exponents are clipped to +-_EXP_CLIP before ``exp`` so that no grid point overflows.
_EXP_CLIP = 60.0
_TINY = 1e-300


# ----------------------------------------------------------------------------- laws


def passrate_power_law(compute, alpha, k):
    """Evaluate the pass-rate law :math:`p = \\exp(-\\alpha C^{-k})`.

    Parameters
    ----------
    compute : array_like
        Training compute, in the unit ``alpha`` was fitted in. Positive.
    alpha : float
        Scale of ``-log p``; positive.
    k : float
        Exponent; positive when the pass rate grows with compute.

    Returns
    -------
    ndarray
        Pass rate, same shape as ``compute``.

    Examples
    --------
    >>> round(float(passrate_power_law(4.0, alpha=2.0, k=0.5)), 4)
    0.3679
    """
    c = np.asarray(compute, dtype=float)
    with np.errstate(over="ignore"):
        return np.exp(-alpha * c ** (-k))


def broken_power_law(x, a, b, c0, c=(), d=(), f=()):
    """Evaluate a broken neural scaling law (BNSL) with ``len(c)`` breaks.

    .. math::

        y = a + b\\,x^{-c_0} \\prod_{i=1}^{n} \\left(1 + (x / d_i)^{1/f_i}\\right)^{-c_i f_i}

    Computed in log space (``log(1 + z) = logaddexp(0, log z)``) so that sharp breaks
    (small ``f_i``) never overflow.

    Parameters
    ----------
    x : array_like
        The scaled quantity (here compute), positive.
    a : float
        Limit of ``y`` as the product vanishes (the irreducible error).
    b : float
        Scale of the first power-law segment.
    c0 : float
        Exponent of the first segment: ``y - a`` falls as ``x^-c0`` before any break.
    c, d, f : sequence of float, length n_breaks
        Per break: the change of exponent ``c_i`` (after break ``i`` the slope in
        log-log is ``-(c0 + c_1 + ... + c_i)``), its location ``d_i > 0`` (in the unit
        of ``x``) and its sharpness ``f_i > 0`` (smaller is sharper).

    Returns
    -------
    ndarray
        Same shape as ``x``.

    References
    ----------
    Caballero, Gupta, Rish, Krueger. "Broken Neural Scaling Laws." ICLR 2023.
    arXiv:2210.14891, Eq. (1).

    Examples
    --------
    >>> y = broken_power_law([1.0, 100.0], a=0.0, b=1.0, c0=0.0, c=[1.0], d=[10.0], f=[0.01])
    >>> [round(float(v), 3) for v in y]
    [1.0, 0.1]
    """
    x = np.asarray(x, dtype=float)
    c, d, f = (np.atleast_1d(np.asarray(v, dtype=float)) for v in (c, d, f))
    if not c.shape == d.shape == f.shape or c.ndim != 1:
        raise ValueError(
            f"`c`, `d` and `f` should be 1D of one length: {c.shape = }, {d.shape = }, {f.shape = }"
        )
    logt = _bnsl_logterm(np.log(x).reshape(-1), c0, c, np.log(d), np.log(f))
    return a + b * np.exp(logt).reshape(x.shape)


def loss_power_law(compute, E, A, alpha):
    """Evaluate the loss law :math:`L(C) = E + A\\,C^{-\\alpha}`.

    Parameters
    ----------
    compute : array_like
        Training compute in the unit ``A`` was fitted in. Positive.
    E : float
        Irreducible loss.
    A, alpha : float
        Scale and exponent of the reducible part.

    Returns
    -------
    ndarray
        Loss, same shape as ``compute``.

    Examples
    --------
    >>> float(loss_power_law(100.0, E=1.5, A=2.0, alpha=0.5))
    1.7
    """
    c = np.asarray(compute, dtype=float)
    with np.errstate(over="ignore"):
        return E + A * c ** (-alpha)


def sigmoid_link(loss, lo, hi, k, L0):
    """Evaluate the loss-to-accuracy sigmoid :math:`lo + (hi - lo) / (1 + e^{k (L - L_0)})`.

    Parameters
    ----------
    loss : array_like
        Validation loss.
    lo, hi : float
        Accuracy approached at high and at low loss (for ``k > 0``).
    k : float
        Steepness; accuracy falls with loss when positive.
    L0 : float
        Loss at the midpoint between ``lo`` and ``hi``.

    Returns
    -------
    ndarray
        Accuracy, same shape as ``loss``.

    Examples
    --------
    >>> float(sigmoid_link(2.0, lo=0.25, hi=0.75, k=4.0, L0=2.0))
    0.5
    """
    z = np.clip(k * (np.asarray(loss, dtype=float) - L0), -_EXP_CLIP, _EXP_CLIP)
    return lo + (hi - lo) / (1.0 + np.exp(z))


# ------------------------------------------------------------------ shared helpers


def _affine_fit(H, y, a_bounds, b_max=np.inf):
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
    b = np.where(var > _TINY, dh @ (y - ym) / np.maximum(var, _TINY), 0.0)
    b = np.clip(b, 0.0, b_max)
    a = np.clip(ym - b * hm, *a_bounds)
    # with a clipped, the best b given a (the normal equation of b alone)
    hh = (H**2).sum(axis=1)
    b = np.where(hh > _TINY, (H @ y - a * H.sum(axis=1)) / np.maximum(hh, _TINY), 0.0)
    b = np.clip(b, 0.0, b_max)
    resid = a[:, None] + b[:, None] * H - y[None, :]
    sse = (resid**2).sum(axis=1) / max(n, 1)
    return a, b, np.where(np.isfinite(sse), sse, np.inf)


def _refine(resid, starts, lower, upper, max_nfev):
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


def _at_bound(names, theta, lower, upper):
    tol = 1e-6 * (upper - lower)
    return [
        n for n, v, lo, hi, t in zip(names, theta, lower, upper, tol)
        if v <= lo + t or v >= hi - t
    ]


def _scalar(x):
    return float(x) if np.ndim(x) == 0 else x


def _clean(value):
    """JSON-safe float: non-finite -> None."""
    value = float(value)
    return value if np.isfinite(value) else None


def _geomean(x):
    return float(np.exp(np.mean(np.log(x))))


# ------------------------------------------------------------------ the base class


class _LadderBaseline(_LadderIntervals, BaseEstimator):
    """Shared fit/predict/bootstrap plumbing of the baselines (not public).

    Subclasses define ``__init__`` (keyword-only, storing params), ``_method_name``,
    ``_validate_own``, ``_fit_curve``, ``_curve``, ``_set_fitted`` and ``_fit_report``.
    """

    _method_name = ""

    # -------------------------------------------------------------- validation

    def _param_error(self, name, expected):
        value = getattr(self, name)
        return ValueError(
            f"The {name!r} parameter of {type(self).__name__} must be {expected}. "
            f"Got {value!r} instead."
        )

    def _check_choice(self, name, valid):
        if getattr(self, name) not in valid:
            raise self._param_error(name, f"one of {list(valid)}")

    def _check_real(self, name, lo, hi, *, allow_none=False):
        """A real number in the open interval (lo, hi)."""
        value = getattr(self, name)
        if value is None and allow_none:
            return
        expected = f"a float in ({lo}, {hi})" + (" or None" if allow_none else "")
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise self._param_error(name, expected)
        if not (np.isfinite(value) and lo < value < hi):
            raise self._param_error(name, expected)

    def _check_int(self, name, lo, hi=None, *, allow_none=False):
        value = getattr(self, name)
        if value is None and allow_none:
            return
        bound = f"[{lo}, {'inf)' if hi is None else f'{hi}]'}"
        expected = f"an int in {bound}" + (" or None" if allow_none else "")
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise self._param_error(name, expected)
        if value < lo or (hi is not None and value > hi):
            raise self._param_error(name, expected)

    def _validate_params(self):
        self._check_choice("checkpoints", ("final", "all"))
        self._check_choice("smooth_checkpoints", (True, False))
        self._check_real("compute_unit", 0, np.inf, allow_none=True)
        self._check_int("n_bootstrap", 0)
        self._check_int("random_state", 0, allow_none=True)
        self._check_choice("interval", INTERVALS)
        self._check_int("n_backtest", 0)
        self._validate_own()

    def _validate_own(self):  # pragma: no cover - overridden
        pass

    # ------------------------------------------------------------------ fitting

    def fit(self, ladder, benchmark: str):
        """Fit the baseline on the ladder's full-set accuracy on ``benchmark``.

        Parameters
        ----------
        ladder : Ladder or path
            The ladder (models and per-sample pass rates). Models with role
            ``target`` are never used; anchors are left out of the fit points.
        benchmark : str
            Benchmark to forecast.

        Returns
        -------
        self

        Raises
        ------
        LadderValidationError
            Unknown benchmark, an anchor that is a target, too few ladder points.
        MethodUnavailableError
            The ladder lacks what the method needs (``LossIntermediate``: a ``loss``).
        ValueError
            A parameter is invalid or the curve cannot be fitted.
        """
        self._validate_params()
        ladder = load_ladder(ladder)
        unit = float(self.compute_unit or ladder.compute_unit)
        fit_matrix, _ = select_fit_points(
            ladder,
            benchmark,
            anchors=self.anchors,
            checkpoints=self.checkpoints,
            smooth_checkpoints=self.smooth_checkpoints,
        )
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
        check_is_fitted(self, "full_accuracy_")
        c = self._to_units(compute)
        return _scalar(np.clip(self._curve(self._state, c), 0.0, 1.0))

    def predict_interval(self, compute, level: float = 0.9):
        """Bootstrap percentile interval of the forecast, widened by backtests if asked.

        The interval is widened, if needed, to contain the point forecast. With
        ``interval='backtest'`` each half-width is then combined in quadrature with the
        spread of the method's own errors on the ladder's largest runs, exactly as
        :class:`~cod_monitor.cod.forecaster.CODForecaster` does (see
        :func:`cod_monitor.cod.resampling.backtest_halfwidth`); the first call runs the
        backtests (:meth:`backtest`).

        Parameters
        ----------
        compute : float or array_like
            Training compute in FLOPs.
        level : float, default 0.9
            Central coverage of the interval.

        Returns
        -------
        (lower, upper) : tuple of float or ndarray
        """
        check_is_fitted(self, "full_accuracy_")
        if not 0 < level < 1:
            raise ValueError(f"`level` should be in (0, 1), got {level!r}")
        point = np.asarray(self.predict(compute), dtype=float)
        draws = self.bootstrap_predictions(compute)
        if draws.shape[0] == 0:
            lo = hi = point
        else:
            lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2], axis=0)
            lo, hi = np.minimum(lo, point), np.maximum(hi, point)
        return self._finish_interval(point, lo, hi, compute, level)

    def bootstrap_predictions(self, compute) -> np.ndarray:
        """Forecasts of every bootstrap replicate, shape (n_replicates, *shape).

        Replicates resample the evaluation samples and the ladder models with
        replacement (redrawing the models until at least ``min(4, n)`` distinct
        compute values are drawn) and refit the curve, warm-started from the main
        fit. They are computed once, on first use. A replicate whose refit fails is
        dropped, so ``n_replicates <= n_bootstrap``.

        Parameters
        ----------
        compute : float or array_like
            Training compute in FLOPs.

        Returns
        -------
        ndarray of shape (n_replicates, *np.shape(compute))
        """
        check_is_fitted(self, "full_accuracy_")
        c = self._to_units(compute)
        if self._replicates is None:
            self._replicates = self._bootstrap()
        out = [np.clip(self._curve(state, c), 0.0, 1.0) for state in self._replicates]
        return np.asarray(out, dtype=float).reshape((len(out),) + np.shape(c))

    def _bootstrap(self) -> list:
        X, compute, aux = self._X, self.compute_, self._aux
        n = X.shape[0]
        replicates = []
        draws = ladder_bootstrap(
            np.random.default_rng(self.random_state), n, compute, self.n_bootstrap
        )
        for rows, cols in draws:
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

    # ------------------------------------------------------------------- report

    def report(self) -> dict:
        """The fitted curve and its diagnostics, as plain Python (JSON-serialisable).

        Returns
        -------
        dict
            Keys: ``method``, ``benchmark``, ``compute_unit``, ``n_samples``,
            ``models`` (name, compute in FLOPs, full-set accuracy, fitted accuracy),
            ``rmse`` (of the fitted accuracy on the ladder points) and ``fit`` (the
            method's parameters, compute in ``compute_unit``).
        """
        check_is_fitted(self, "full_accuracy_")
        fitted = np.clip(self._curve(self._state, self.compute_), 0.0, 1.0)
        models = []
        for m, acc, fit in zip(self.models_, self.full_accuracy_, fitted):
            entry = {
                "name": m.name,
                "compute": m.compute,
                "full_accuracy": float(acc),
                "fitted_accuracy": _clean(fit),
            }
            if m.loss is not None:
                entry["loss"] = m.loss
            models.append(entry)
        return {
            "method": self._method_name,
            "benchmark": self.benchmark_,
            "compute_unit": self.compute_unit_,
            "n_samples": self.n_samples_,
            "models": models,
            "rmse": _clean(np.sqrt(np.mean((fitted - self.full_accuracy_) ** 2))),
            "fit": self._fit_report(),
        }


# ------------------------------------------------------------------ end-to-end exp


class EndToEndExp(_LadderBaseline):
    """The COD law fitted once to the full-set accuracy ("end-to-end exp" baseline).

    Parameters
    ----------
    law : {'full', 'no_g', 'no_c', 'plain'}, default 'full'
        Law form; see :data:`cod_monitor.cod.laws.LAW_FORMS`.
    anchors : sequence of str, optional
        As in :class:`~cod_monitor.cod.forecaster.CODForecaster`: the named anchor models
        (``None``: every model with role ``anchor``) are left out of the fit points so
        that the baseline fits exactly the ladder points COD fits; they are otherwise
        unused.
    compute_unit : float, optional
        FLOPs per compute unit before fitting; ``None`` takes the ladder's.
    checkpoints : {'final', 'all'}, default 'final'
        Which checkpoints are ladder points (see :func:`~cod_monitor.ladder.selection.select_fit_points`).
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

    Attributes
    ----------
    benchmark_ : str
    compute_unit_ : float
    models_ : tuple of ModelInfo
        The ladder points fitted, by compute.
    compute_ : ndarray of shape (n_models,)
        Their compute in ``compute_unit_``.
    n_samples_ : int
        Evaluation samples of the benchmark.
    full_accuracy_ : ndarray of shape (n_models,)
        Full-set accuracy (mean pass rate) of every ladder point.
    backtest_ : list of dict
        Only after :meth:`predict_interval` with ``interval='backtest'`` (or
        :meth:`backtest`): see :func:`cod_monitor.cod.forecaster.backtest_forecaster`.
    law_ : LawFit
        The fitted law (compute in ``compute_unit_``).

    Notes
    -----
    .. math:: y(C) = g + (1 - g)\\,\\exp(-a C^{-b} - c)

    fitted by :func:`cod_monitor.cod.laws.fit_laws` (dense grid, then bounded least squares)
    to the ladder's full-set accuracy. Without clustering, the law must describe a mix
    of samples with very different difficulties, which is what COD improves on.

    References
    ----------
    Xu, Chen, Li, Shen, Li. "Unveiling Downstream Performance Scaling of LLMs: A
    Clustering-Based Perspective." ICLR 2026. arXiv:2502.17262 (baseline "end-to-end
    exp", Table 2).

    Examples
    --------
    >>> from cod_monitor.synthetic import synthetic_ladder
    >>> syn = synthetic_ladder(n_samples=300, seed=0)
    >>> est = EndToEndExp(n_bootstrap=10).fit(syn.ladder, "synthetic")
    >>> lo, hi = est.predict_interval(syn.target.compute)
    >>> bool(lo <= est.predict(syn.target.compute) <= hi)
    True
    """

    _method_name = "e2e-exp"

    def __init__(
        self,
        *,
        law: str = "full",
        anchors=None,
        compute_unit: float | None = None,
        checkpoints: str = "final",
        smooth_checkpoints: bool = False,
        n_bootstrap: int = 200,
        random_state: int | None = 0,
        interval: str = "bootstrap",
        n_backtest: int = 3,
    ):
        self.law = law
        self.anchors = anchors
        self.compute_unit = compute_unit
        self.checkpoints = checkpoints
        self.smooth_checkpoints = smooth_checkpoints
        self.n_bootstrap = n_bootstrap
        self.random_state = random_state
        self.interval = interval
        self.n_backtest = n_backtest

    def _validate_own(self):
        self._check_choice("law", LAW_FORMS)

    def _fit_curve(self, compute, accuracy, aux, init):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FitWarning)
            fit = fit_laws(
                compute, accuracy[None, :], form=self.law,
                init=None if init is None else [init],
            )[0]
        if not np.isfinite([fit.a, fit.b, fit.c, fit.g]).all():
            raise ValueError(
                "end-to-end exp: the law fit to the full-set accuracy failed from every start"
            )
        return fit

    def _curve(self, state: LawFit, c):
        return state(c)

    def _set_fitted(self, state, aux):
        self.law_ = state

    def _fit_report(self):
        law = self.law_.as_dict()
        return {k: (_clean(v) if isinstance(v, float) else v) for k, v in law.items()}


# ------------------------------------------------------------ end-to-end pass rate


@dataclass(frozen=True)
class _PowerFit:
    alpha: float
    k: float
    r2: float


class EndToEndPassRate(_LadderBaseline):
    """GPT-4 / PassUntil-style power law of ``-log(pass rate)`` on the full set.

    Parameters
    ----------
    eps : float, default 1e-4
        Full-set pass rates are clipped to ``[eps, 1 - eps]`` before the double log, so
        that a ladder point at exactly 0 or 1 (possible on small benchmarks) has a finite
        but bounded influence. Must be in (0, 0.5).
    anchors : sequence of str, optional
        As in :class:`~cod_monitor.cod.forecaster.CODForecaster`: the named anchor models
        (``None``: every model with role ``anchor``) are left out of the fit points so
        that the baseline fits exactly the ladder points COD fits; they are otherwise
        unused.
    compute_unit : float, optional
        FLOPs per compute unit before fitting; ``None`` takes the ladder's.
    checkpoints : {'final', 'all'}, default 'final'
        Which checkpoints are ladder points (see :func:`~cod_monitor.ladder.selection.select_fit_points`).
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

    Attributes
    ----------
    benchmark_ : str
    compute_unit_ : float
    models_ : tuple of ModelInfo
        The ladder points fitted, by compute.
    compute_ : ndarray of shape (n_models,)
        Their compute in ``compute_unit_``.
    n_samples_ : int
        Evaluation samples of the benchmark.
    full_accuracy_ : ndarray of shape (n_models,)
        Full-set accuracy (mean pass rate) of every ladder point.
    backtest_ : list of dict
        Only after :meth:`predict_interval` with ``interval='backtest'`` (or
        :meth:`backtest`): see :func:`cod_monitor.cod.forecaster.backtest_forecaster`.
    alpha_ : float
        Scale of ``-log p`` (compute in ``compute_unit_``).
    k_ : float
        Exponent.
    r2_ : float
        Coefficient of determination of the fit in log space.

    Notes
    -----
    .. math::

        -\\log p(C) = \\alpha\\,C^{-k}
        \\quad\\Longleftrightarrow\\quad
        \\log(-\\log p) = \\log\\alpha - k \\log C

    fitted by ordinary least squares on the right-hand form, with :math:`p` the mean
    pass rate of each ladder model. Forecast: :math:`p = \\exp(-\\alpha C^{-k})`.

    References
    ----------
    OpenAI. "GPT-4 Technical Report." arXiv:2303.08774, 2023 (Sec. 3.1, HumanEval
    capability prediction).
    Hu et al. "Predicting Emergent Abilities with Infinite Resolution Evaluation"
    (PassUntil). ICLR 2024. arXiv:2310.03262.

    Examples
    --------
    >>> from cod_monitor.synthetic import synthetic_ladder
    >>> syn = synthetic_ladder(n_samples=300, seed=0)
    >>> est = EndToEndPassRate(n_bootstrap=10).fit(syn.ladder, "synthetic")
    >>> 0 < est.predict(syn.target.compute) < 1
    True
    """

    _method_name = "e2e-passrate"

    def __init__(
        self,
        *,
        eps: float = 1e-4,
        anchors=None,
        compute_unit: float | None = None,
        checkpoints: str = "final",
        smooth_checkpoints: bool = False,
        n_bootstrap: int = 200,
        random_state: int | None = 0,
        interval: str = "bootstrap",
        n_backtest: int = 3,
    ):
        self.eps = eps
        self.anchors = anchors
        self.compute_unit = compute_unit
        self.checkpoints = checkpoints
        self.smooth_checkpoints = smooth_checkpoints
        self.n_bootstrap = n_bootstrap
        self.random_state = random_state
        self.interval = interval
        self.n_backtest = n_backtest

    def _validate_own(self):
        self._check_real("eps", 0, 0.5)

    def _fit_curve(self, compute, accuracy, aux, init):
        p = np.clip(accuracy, self.eps, 1.0 - self.eps)
        t = np.log(-np.log(p))
        u = np.log(compute)
        if np.ptp(u) <= 0:
            raise ValueError("end-to-end pass rate: `compute` needs two distinct values")
        slope, intercept = np.polyfit(u, t, 1)
        resid = t - (intercept + slope * u)
        sst = float(((t - t.mean()) ** 2).sum())
        r2 = 1.0 - float((resid**2).sum()) / sst if sst > 0 else 1.0
        return _PowerFit(alpha=float(np.exp(intercept)), k=float(-slope), r2=r2)

    def _curve(self, state: _PowerFit, c):
        return passrate_power_law(c, state.alpha, state.k)

    def _set_fitted(self, state, aux):
        self.alpha_ = state.alpha
        self.k_ = state.k
        self.r2_ = state.r2

    def _fit_report(self):
        return {"alpha": _clean(self.alpha_), "k": _clean(self.k_), "r2_log": _clean(self.r2_),
                "eps": float(self.eps)}


# --------------------------------------------------------------------------- BNSL

# Grid of the nonlinear BNSL parameters (the linear pair a, b is solved per grid point).
_BNSL_GRID_C0 = np.array([-0.2, 0.0, 0.1, 0.25, 0.5, 1.0])
_BNSL_GRID_C = np.array([-0.3, 0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.5, 4.0])
_BNSL_GRID_LOGF = np.log([0.03, 0.1, 0.3, 1.0, 3.0])
_BNSL_GRID_N_D = 12
# Above this many grid points (two or more breaks), score a seeded random subset instead
# (random search; Caballero's advice for BNSLs with many parameters).
_BNSL_MAX_GRID = 60_000
_BNSL_C0_BOUNDS = (-1.0, 2.0)
_BNSL_C_BOUNDS = (-1.0, 5.0)
_BNSL_LOGF_BOUNDS = (np.log(0.01), np.log(10.0))
_BNSL_LOGB_BOUNDS = (np.log(1e-8), np.log(1e4))


def _bnsl_logterm(logx, c0, c, logd, logf):
    """log of ``x^-c0 prod (1 + (x/d)^(1/f))^(-c f)``; parameters broadcast against logx."""
    out = -c0 * logx
    for i in range(c.shape[-1]):
        f = np.exp(logf[..., i : i + 1])
        out = out - c[..., i : i + 1] * f * np.logaddexp(0.0, (logx - logd[..., i : i + 1]) / f)
    return np.clip(out, -_EXP_CLIP, _EXP_CLIP)


def _bnsl_eval(theta, logx, n_breaks):
    """BNSL at ``logx`` for theta = (a, log b, c0, [c_i, log d_i, log f_i] * n)."""
    theta = np.asarray(theta, dtype=float)
    logx = np.asarray(logx, dtype=float)
    br = theta[3:].reshape(n_breaks, 3)
    logt = _bnsl_logterm(logx.reshape(-1), theta[2], br[:, 0], br[:, 1], br[:, 2])
    return theta[0] + np.exp(np.clip(theta[1] + logt, -_EXP_CLIP, _EXP_CLIP)).reshape(logx.shape)


@dataclass(frozen=True)
class _BNSLFit:
    theta: np.ndarray  # (a, log b, c0, [c_i, log d_i, log f_i]...) with x = C / c_ref
    c_ref: float
    n_breaks: int
    rmse: float
    at_bound: tuple

    def error(self, c):
        logx = np.log(np.asarray(c, dtype=float) / self.c_ref)
        return _bnsl_eval(self.theta, logx, self.n_breaks)


class BNSL(_LadderBaseline):
    """Broken neural scaling law of the full-set error ``1 - accuracy``.

    Parameters
    ----------
    n_breaks : int, default 1
        Number of breaks ``n`` (0 gives a plain power law plus constant). At most 3.
    n_refine : int, default 3
        Best grid points refined by bounded least squares.
    anchors : sequence of str, optional
        As in :class:`~cod_monitor.cod.forecaster.CODForecaster`: the named anchor models
        (``None``: every model with role ``anchor``) are left out of the fit points so
        that the baseline fits exactly the ladder points COD fits; they are otherwise
        unused.
    compute_unit : float, optional
        FLOPs per compute unit before fitting; ``None`` takes the ladder's.
    checkpoints : {'final', 'all'}, default 'final'
        Which checkpoints are ladder points (see :func:`~cod_monitor.ladder.selection.select_fit_points`).
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

    Attributes
    ----------
    benchmark_ : str
    compute_unit_ : float
    models_ : tuple of ModelInfo
        The ladder points fitted, by compute.
    compute_ : ndarray of shape (n_models,)
        Their compute in ``compute_unit_``.
    n_samples_ : int
        Evaluation samples of the benchmark.
    full_accuracy_ : ndarray of shape (n_models,)
        Full-set accuracy (mean pass rate) of every ladder point.
    backtest_ : list of dict
        Only after :meth:`predict_interval` with ``interval='backtest'`` (or
        :meth:`backtest`): see :func:`cod_monitor.cod.forecaster.backtest_forecaster`.
    params_ : dict
        ``a``, ``b``, ``c0`` and per break ``c``, ``d``, ``f`` (lists), with compute in
        ``compute_unit_``; ``rmse`` of the error fit and ``at_bound``, the parameters
        that ended on a bound of the search box.

    Notes
    -----
    The error :math:`e = 1 - y` is modelled as

    .. math::

        e(C) = a + b\\,C^{-c_0} \\prod_{i=1}^{n}
        \\left(1 + (C / d_i)^{1/f_i}\\right)^{-c_i f_i}

    and the forecast is :math:`y = 1 - e` clipped to [0, 1]. As in the BNSL reference
    code, the fit is a brute-force grid search followed by a local refinement; here the
    grid covers the nonlinear parameters :math:`c_0, c_i, \\log d_i, \\log f_i` and, for
    every grid point, the linear pair :math:`(a, b)` is solved in closed form under
    :math:`0 \\le a \\le 1,\\ b \\ge 0` (variable projection), so a few thousand points
    cost one matrix product. The best points are refined with bounded
    :func:`scipy.optimize.least_squares` in the parametrisation
    :math:`(a, \\log b, c_0, c_i, \\log d_i, \\log f_i)`, compute scaled by its
    geometric mean over the ladder. Break locations are searched within one ladder span
    on either side of the ladder. The reference code minimises squared errors of
    :math:`\\log(1 + e)`; on errors in [0, 1] this is nearly plain least squares, which
    is used here.

    References
    ----------
    Caballero, Gupta, Rish, Krueger. "Broken Neural Scaling Laws." ICLR 2023.
    arXiv:2210.14891.
    Xu et al. arXiv:2502.17262 (the BNSL baseline of Table 2).

    Examples
    --------
    >>> from cod_monitor.synthetic import synthetic_ladder
    >>> syn = synthetic_ladder(n_samples=300, seed=0)
    >>> est = BNSL(n_bootstrap=10).fit(syn.ladder, "synthetic")
    >>> 0 <= est.predict(syn.target.compute) <= 1
    True
    """

    _method_name = "bnsl"

    def __init__(
        self,
        *,
        n_breaks: int = 1,
        n_refine: int = 3,
        anchors=None,
        compute_unit: float | None = None,
        checkpoints: str = "final",
        smooth_checkpoints: bool = False,
        n_bootstrap: int = 200,
        random_state: int | None = 0,
        interval: str = "bootstrap",
        n_backtest: int = 3,
    ):
        self.n_breaks = n_breaks
        self.n_refine = n_refine
        self.anchors = anchors
        self.compute_unit = compute_unit
        self.checkpoints = checkpoints
        self.smooth_checkpoints = smooth_checkpoints
        self.n_bootstrap = n_bootstrap
        self.random_state = random_state
        self.interval = interval
        self.n_backtest = n_backtest

    def _validate_own(self):
        self._check_int("n_breaks", 0, 3)
        self._check_int("n_refine", 1)

    def _bounds(self, logx):
        lo, hi = float(logx.min()), float(logx.max())
        span = max(hi - lo, np.log(10.0))
        lower = [0.0, _BNSL_LOGB_BOUNDS[0], _BNSL_C0_BOUNDS[0]]
        upper = [1.0, _BNSL_LOGB_BOUNDS[1], _BNSL_C0_BOUNDS[1]]
        for _ in range(self.n_breaks):
            lower += [_BNSL_C_BOUNDS[0], lo - span, _BNSL_LOGF_BOUNDS[0]]
            upper += [_BNSL_C_BOUNDS[1], hi + span, _BNSL_LOGF_BOUNDS[1]]
        return np.array(lower), np.array(upper), (lo - span / 2, hi + span / 2)

    def _grid_starts(self, logx, err, d_range):
        nb = int(self.n_breaks)
        logd = np.linspace(*d_range, _BNSL_GRID_N_D)
        per_break = [_BNSL_GRID_C, logd, _BNSL_GRID_LOGF]
        axes = [_BNSL_GRID_C0] + per_break * nb
        sizes = [len(ax) for ax in axes]
        total = int(np.prod(sizes))
        if total > _BNSL_MAX_GRID:
            rng = np.random.default_rng(self.random_state)
            flat = rng.choice(total, size=_BNSL_MAX_GRID, replace=False)
        else:
            flat = np.arange(total)
        idx = np.unravel_index(flat, sizes)
        cols = [ax[i] for ax, i in zip(axes, idx)]
        c0 = cols[0][:, None]
        br = np.stack(cols[1:], axis=1).reshape(len(flat), nb, 3) if nb else np.zeros(
            (len(flat), 0, 3)
        )
        logt = _bnsl_logterm(logx[None, :], c0, br[:, :, 0], br[:, :, 1], br[:, :, 2])
        a, b, sse = _affine_fit(np.exp(logt), err, (0.0, 1.0))
        best = np.argsort(sse)[: int(self.n_refine)]
        logb = np.log(np.maximum(b[best], 1e-8))
        return [
            np.concatenate([[a[i], lb, c0[i, 0]], br[i].ravel()]) for i, lb in zip(best, logb)
        ]

    def _fit_curve(self, compute, accuracy, aux, init):
        nb = int(self.n_breaks)
        c_ref = _geomean(compute)
        logx = np.log(compute / c_ref)
        err = 1.0 - accuracy
        lower, upper, d_range = self._bounds(logx)
        if init is None:
            starts = self._grid_starts(logx, err, d_range)
        else:
            theta = init.theta.copy()
            # same curve, expressed against this sample's reference compute
            shift = np.log(init.c_ref / c_ref)
            theta[1] += theta[2] * shift
            theta[4::3] += shift
            starts = [theta]

        def resid(theta):
            return _bnsl_eval(theta, logx, nb) - err

        res = _refine(resid, starts, lower, upper, max_nfev=400 if init is None else 100)
        if res is None:
            raise ValueError("BNSL: the least-squares refinement failed from every start")
        names = ["a", "log_b", "c0"] + [
            f"{p}_{i + 1}" for i in range(nb) for p in ("c", "log_d", "log_f")
        ]
        return _BNSLFit(
            theta=res.x, c_ref=c_ref, n_breaks=nb,
            rmse=float(np.sqrt(np.mean(resid(res.x) ** 2))),
            at_bound=tuple(_at_bound(names, res.x, lower, upper)),
        )

    def _curve(self, state: _BNSLFit, c):
        return 1.0 - state.error(c)

    def _set_fitted(self, state: _BNSLFit, aux):
        th, c_ref = state.theta, state.c_ref
        br = th[3:].reshape(state.n_breaks, 3)
        # x = C / c_ref: b x^-c0 = (b c_ref^c0) C^-c0 and x / d = C / (c_ref d)
        self.params_ = {
            "a": float(th[0]),
            "b": float(np.exp(th[1] + th[2] * np.log(c_ref))),
            "c0": float(th[2]),
            "c": [float(v) for v in br[:, 0]],
            "d": [float(c_ref * np.exp(v)) for v in br[:, 1]],
            "f": [float(np.exp(v)) for v in br[:, 2]],
            "rmse": state.rmse,
            "at_bound": list(state.at_bound),
        }

    def _fit_report(self):
        out = {"n_breaks": int(self.n_breaks)}
        for key, value in self.params_.items():
            out[key] = [_clean(v) for v in value] if key in ("c", "d", "f") else (
                _clean(value) if isinstance(value, float) else value
            )
        return out


# -------------------------------------------------------------- loss-intermediate

_LINKS = ("sigmoid", "linear")


@dataclass(frozen=True)
class _LossFit:
    loss_theta: np.ndarray  # (E, log A, alpha) with x = C / c_ref
    c_ref: float
    link: str
    link_theta: np.ndarray  # sigmoid: (lo, hi, log k, L0); linear: (intercept, slope)
    loss_rmse: float
    link_rmse: float

    def loss(self, c):
        E, logA, alpha = self.loss_theta
        return loss_power_law(np.asarray(c, dtype=float) / self.c_ref, E, np.exp(logA), alpha)

    def accuracy_at_loss(self, L):
        return _link_eval(self.link, self.link_theta, L)


def _link_eval(link, theta, L):
    if link == "linear":
        return theta[0] + theta[1] * np.asarray(L, dtype=float)
    lo, hi, logk, L0 = theta
    return sigmoid_link(L, lo, hi, np.exp(logk), L0)


class LossIntermediate(_LadderBaseline):
    """Two-step forecast through the validation loss (Chen et al. 2024, OLMo ladder).

    Parameters
    ----------
    link : {'sigmoid', 'linear'}, default 'sigmoid'
        Loss-to-accuracy link of step 2.
    anchors : sequence of str, optional
        As in :class:`~cod_monitor.cod.forecaster.CODForecaster`: the named anchor models
        (``None``: every model with role ``anchor``) are left out of the fit points so
        that the baseline fits exactly the ladder points COD fits; they are otherwise
        unused.
    compute_unit : float, optional
        FLOPs per compute unit before fitting; ``None`` takes the ladder's.
    checkpoints : {'final', 'all'}, default 'final'
        Which checkpoints are ladder points (see :func:`~cod_monitor.ladder.selection.select_fit_points`).
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

    Attributes
    ----------
    benchmark_ : str
    compute_unit_ : float
    models_ : tuple of ModelInfo
        The ladder points fitted, by compute.
    compute_ : ndarray of shape (n_models,)
        Their compute in ``compute_unit_``.
    n_samples_ : int
        Evaluation samples of the benchmark.
    full_accuracy_ : ndarray of shape (n_models,)
        Full-set accuracy (mean pass rate) of every ladder point.
    backtest_ : list of dict
        Only after :meth:`predict_interval` with ``interval='backtest'`` (or
        :meth:`backtest`): see :func:`cod_monitor.cod.forecaster.backtest_forecaster`.
    loss_ : ndarray of shape (n_models,)
        The ``loss`` of every fitted ladder point.
    loss_params_ : dict
        ``E``, ``A``, ``alpha`` of step 1 (compute in ``compute_unit_``) and ``rmse``.
    link_params_ : dict
        Step 2: ``lo``, ``hi``, ``k``, ``L0`` (sigmoid) or ``intercept``, ``slope``
        (linear), and ``rmse``.

    Raises
    ------
    MethodUnavailableError
        At :meth:`fit`, when fewer than 3 ladder points carry a ``loss``.

    Warns
    -----
    FitWarning
        At :meth:`fit`, when some (but at least 3) ladder points lack a ``loss``; only
        those with one are fitted.

    Notes
    -----
    Step 1, compute to loss, on the ladder points that carry a ``loss``:

    .. math:: L(C) = E + A\\,C^{-\\alpha}

    Step 2, loss to full-set accuracy, on the same points' (loss, accuracy) pairs:

    .. math::

        y(L) = lo + \\frac{hi - lo}{1 + \\exp(k (L - L_0))}
        \\quad\\text{or}\\quad y(L) = p + q L

    Forecast: :math:`y(L(C))` clipped to [0, 1]. Both nonlinear fits solve the linear
    pair in closed form over a grid of the nonlinear parameters (:math:`\\alpha`;
    :math:`k, L_0`) and refine the best start with bounded least squares, with
    :math:`E \\in [0, \\min L]`, :math:`A, k > 0` and :math:`lo, hi \\in [0, 1]`.
    The bootstrap resamples samples (which changes the accuracies) and models (which
    changes both steps); the losses themselves carry no per-sample noise.

    References
    ----------
    Chen, Li, Sun, Ma, Zhang, Zhou. "Scaling Laws for Predicting Downstream Performance
    in LLMs." arXiv:2410.08527, 2024.
    Bhagia et al. "Establishing Task Scaling Laws via Compute-Efficient Model Ladders."
    arXiv:2412.04403, 2024 (OLMo 2 ladder).
    Xu et al. arXiv:2502.17262 (the loss-intermediate baseline of Table 2).

    Examples
    --------
    >>> from cod_monitor.synthetic import synthetic_ladder
    >>> from cod_monitor.exceptions import MethodUnavailableError
    >>> syn = synthetic_ladder(n_samples=300, seed=0)   # synthetic ladders carry no loss
    >>> try:
    ...     LossIntermediate().fit(syn.ladder, "synthetic")
    ... except MethodUnavailableError as exc:
    ...     "loss" in str(exc)
    True
    """

    _method_name = "loss-intermediate"

    def __init__(
        self,
        *,
        link: str = "sigmoid",
        anchors=None,
        compute_unit: float | None = None,
        checkpoints: str = "final",
        smooth_checkpoints: bool = False,
        n_bootstrap: int = 200,
        random_state: int | None = 0,
        interval: str = "bootstrap",
        n_backtest: int = 3,
    ):
        self.link = link
        self.anchors = anchors
        self.compute_unit = compute_unit
        self.checkpoints = checkpoints
        self.smooth_checkpoints = smooth_checkpoints
        self.n_bootstrap = n_bootstrap
        self.random_state = random_state
        self.interval = interval
        self.n_backtest = n_backtest

    def _validate_own(self):
        self._check_choice("link", _LINKS)

    def _columns(self, models, benchmark):
        has = np.array([m.loss is not None for m in models], dtype=bool)
        n_distinct = len({m.compute for m, h in zip(models, has) if h})
        if n_distinct < MIN_LOSS_POINTS:
            raise MethodUnavailableError(
                f"loss-intermediate needs a validation loss per ladder model: only "
                f"{int(has.sum())} of the {len(models)} ladder points of benchmark "
                f"{benchmark!r} carry a `loss` ({MIN_LOSS_POINTS} of distinct compute are "
                "needed). Add a \"loss\" field (a float, e.g. each model's validation "
                "cross-entropy on one held-out text set) to every model entry in "
                "ladder.json, or pass ModelInfo(..., loss=...) to Ladder.from_records."
            )
        if not has.all():
            missing = [m.name for m, h in zip(models, has) if not h]
            warnings.warn(
                f"loss-intermediate: {len(missing)} ladder points have no `loss` and are "
                f"left out: {', '.join(missing)}",
                FitWarning,
                stacklevel=3,
            )
        keep = np.flatnonzero(has)
        return keep, np.array([models[j].loss for j in keep], dtype=float)

    # --- step 1
    @staticmethod
    def _fit_loss_law(compute, loss, init):
        c_ref = _geomean(compute)
        x = compute / c_ref
        lmin, spread = float(loss.min()), float(np.ptp(loss))
        e_lo = 0.0 if lmin > 0 else lmin - max(spread, 1.0)
        e_hi = lmin if lmin > e_lo else e_lo + 1e-12
        lower = np.array([e_lo, np.log(1e-12), 1e-4])
        upper = np.array([e_hi, np.log(1e6), 5.0])
        if init is None:
            alphas = np.logspace(-3, np.log10(3.0), 80)
            H = x[None, :] ** (-alphas[:, None])
            E, A, sse = _affine_fit(H, loss, (e_lo, e_hi))
            order = np.argsort(sse)[:3]
            starts = [[E[i], np.log(max(A[i], 1e-12)), alphas[i]] for i in order]
        else:
            E, logA, alpha = init.loss_theta
            starts = [[E, logA + alpha * np.log(init.c_ref / c_ref), alpha]]

        def resid(th):
            return th[0] + np.exp(th[1]) * x ** (-th[2]) - loss

        res = _refine(resid, starts, lower, upper, max_nfev=300 if init is None else 100)
        if res is None:
            raise ValueError("loss-intermediate: the compute-to-loss power law fit failed")
        return res.x, c_ref, float(np.sqrt(np.mean(resid(res.x) ** 2)))

    # --- step 2
    def _fit_link(self, loss, accuracy, init):
        if self.link == "linear":
            if np.ptp(loss) <= 0:
                raise ValueError("loss-intermediate: the ladder losses are all equal")
            slope, intercept = np.polyfit(loss, accuracy, 1)
            theta = np.array([intercept, slope])
        else:
            spread = max(float(np.ptp(loss)), 1e-6)
            lmin, lmax = float(loss.min()), float(loss.max())
            lower = np.array([0.0, 0.0, np.log(0.01 / spread), lmin - 3 * spread])
            upper = np.array([1.0, 1.0, np.log(1000.0 / spread), lmax + 3 * spread])
            if init is None:
                logk = np.log(np.logspace(np.log10(0.3), np.log10(300.0), 16) / spread)
                L0 = np.linspace(lmin - spread, lmax + spread, 25)
                gk, g0 = (g.ravel() for g in np.meshgrid(logk, L0, indexing="ij"))
                z = np.exp(gk)[:, None] * (loss[None, :] - g0[:, None])
                S = 1.0 / (1.0 + np.exp(np.clip(z, -_EXP_CLIP, _EXP_CLIP)))
                lo, span, sse = _affine_fit(S, accuracy, (0.0, 1.0), b_max=1.0)
                order = np.argsort(sse)[:3]
                starts = [[lo[i], min(lo[i] + span[i], 1.0), gk[i], g0[i]] for i in order]
            else:
                starts = [init.link_theta]

            def resid(th):
                return _link_eval("sigmoid", th, loss) - accuracy

            res = _refine(resid, starts, lower, upper, max_nfev=300 if init is None else 100)
            if res is None:
                raise ValueError("loss-intermediate: the loss-to-accuracy sigmoid fit failed")
            theta = res.x
        rmse = float(np.sqrt(np.mean((_link_eval(self.link, theta, loss) - accuracy) ** 2)))
        return theta, rmse

    def _fit_curve(self, compute, accuracy, aux, init):
        loss_theta, c_ref, loss_rmse = self._fit_loss_law(compute, aux, init)
        link_theta, link_rmse = self._fit_link(aux, accuracy, init)
        return _LossFit(loss_theta, c_ref, self.link, link_theta, loss_rmse, link_rmse)

    def _curve(self, state: _LossFit, c):
        return state.accuracy_at_loss(state.loss(c))

    def _set_fitted(self, state: _LossFit, aux):
        E, logA, alpha = state.loss_theta
        self.loss_ = aux
        self.loss_params_ = {
            "E": float(E),
            "A": float(np.exp(logA + alpha * np.log(state.c_ref))),
            "alpha": float(alpha),
            "rmse": state.loss_rmse,
        }
        if state.link == "linear":
            link = {"intercept": float(state.link_theta[0]), "slope": float(state.link_theta[1])}
        else:
            lo, hi, logk, L0 = state.link_theta
            link = {"lo": float(lo), "hi": float(hi), "k": float(np.exp(logk)), "L0": float(L0)}
        link["rmse"] = state.link_rmse
        self.link_params_ = link

    def loss_at(self, compute):
        """Step 1 alone: the forecast validation loss at ``compute`` FLOPs.

        Parameters
        ----------
        compute : float or array_like
            Training compute in FLOPs.

        Returns
        -------
        float or ndarray
        """
        check_is_fitted(self, "full_accuracy_")
        return _scalar(self._state.loss(self._to_units(compute)))

    def _fit_report(self):
        return {
            "link": self.link,
            "loss_law": {k: _clean(v) for k, v in self.loss_params_.items()},
            "link_fit": {k: _clean(v) for k, v in self.link_params_.items()},
        }
