"""Map accuracy on the predictable subset to accuracy on the full evaluation set.

The mapping ``f`` is fitted on the ladder models' (subset accuracy, full accuracy)
pairs, plus optional anchors (external models evaluated on both), and is forced to be
continuous, monotone increasing and to pass through (0, 0) and (1, 1).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.interpolate import PchipInterpolator, UnivariateSpline
from scipy.optimize import minimize

from cod_monitor._estimator import Estimator, check_is_fitted
from cod_monitor._validation import check_choice
from cod_monitor.exceptions import FitWarning, InputError

__all__ = ["MAPPINGS", "SubsetToFullMapping"]

#: The mapping methods of :class:`SubsetToFullMapping`.
MAPPINGS = ("spline", "quartic", "pchip", "linear_tail", "identity")

_GRID = np.linspace(0.0, 1.0, 401)


class SubsetToFullMapping(Estimator):
    """Monotone map from predictable-subset accuracy to full-set accuracy.

    Parameters
    ----------
    method : {'spline', 'quartic', 'pchip', 'linear_tail', 'identity'}, default 'spline'
        ``'spline'``: the paper's cubic smoothing spline, smoothing lowered until the
        fit RMSE is below ``rmse_target``. ``'quartic'``: a quartic polynomial through
        the end points, fitted under a monotonicity constraint (the paper's earlier
        version). ``'pchip'``: monotone piecewise-cubic interpolation of the
        isotonic-regressed points (also the fallback). ``'linear_tail'``: the same
        pchip through (0, 0) and the points but *not* through (1, 1); beyond the largest
        subset accuracy it continues as a straight line whose slope is the
        least-squares slope of the top half of the points (at least 2, and never
        negative). It does not assume that the samples outside the subset are solved
        when the subset is. ``'identity'``: no mapping.
    rmse_target : float, default 0.005
        The paper's T.
    monotone_fallback : bool, default True
        If the fitted spline is not monotone on [0, 1], fall back to ``'pchip'``
        (with a :class:`FitWarning`) instead of returning a non-monotone map.

    Attributes
    ----------
    method_ : str
        The method actually used (differs from ``method`` after a fallback).
    points_ : ndarray of shape (n_points, 2)
        The (subset, full) points the map was fitted on, end points included.
    rmse_ : float
        RMSE of the map on the data points (end points excluded).
    smoothing_ : float or None
        The spline's final smoothing factor ``s``.
    monotone_ : bool
        Whether the map is non-decreasing on a 401-point grid of [0, 1].

    Notes
    -----
    Exactly passing the end points: the spline is fitted with heavy weights on (0, 0)
    and (1, 1) and the small residual at the ends is removed by subtracting the line
    through the two end-point errors, which keeps the curve smooth.

    References
    ----------
    Xu et al., arXiv:2502.17262, Section 3.4.

    Examples
    --------
    >>> m = SubsetToFullMapping().fit([0.2, 0.4, 0.6, 0.8], [0.1, 0.25, 0.45, 0.7])
    >>> float(m.predict(0.0)), float(m.predict(1.0))
    (0.0, 1.0)
    """

    def __init__(self, *, method: str = "spline", rmse_target: float = 0.005,
                 monotone_fallback: bool = True):
        self.method = method
        self.rmse_target = rmse_target
        self.monotone_fallback = monotone_fallback

    def fit(self, subset_accuracy, full_accuracy):
        """Fit the map.

        Parameters
        ----------
        subset_accuracy, full_accuracy : array_like of shape (n_points,)
            Accuracy of each ladder model (and anchor) on the predictable subset and
            on the full set. Values in [0, 1].

        Returns
        -------
        self
        """
        check_choice(type(self).__name__, "method", self.method, MAPPINGS)
        x = np.asarray(subset_accuracy, dtype=float).ravel()
        y = np.asarray(full_accuracy, dtype=float).ravel()
        if x.shape != y.shape:
            raise InputError(f"`subset_accuracy` and `full_accuracy` differ: {x.shape = } != {y.shape = }")
        if not (np.isfinite(x).all() and np.isfinite(y).all()):
            raise InputError("`subset_accuracy` and `full_accuracy` should be finite")
        # x closer than 1e-6 counts as one point: near-duplicates make the spline and
        # pchip systems singular; their y values are averaged
        x, y = np.round(np.clip(x, 0, 1), 6), np.clip(y, 0, 1)
        ux, inv = np.unique(x, return_inverse=True)
        uy = np.bincount(inv, weights=y) / np.bincount(inv)
        interior = (ux > 0) & (ux < 1)  # the end points are fixed at (0, 0) and (1, 1)
        ux, uy = ux[interior], uy[interior]
        if self.method == "linear_tail":
            self.points_ = np.column_stack([np.r_[0.0, ux], np.r_[0.0, uy]])
        else:
            self.points_ = np.column_stack([np.r_[0.0, ux, 1.0], np.r_[0.0, uy, 1.0]])

        method, smoothing = self.method, None
        if method == "spline" and len(ux) < 2:
            method = "pchip"  # a cubic spline needs >= 4 points, end points included
        if method == "spline":
            f, smoothing = self._fit_spline(ux, uy)
        elif method == "quartic":
            f = self._fit_quartic(ux, uy)
        elif method == "pchip":
            f = self._fit_pchip(ux, uy)
        elif method == "linear_tail":
            f = self._fit_linear_tail(ux, uy)
        else:
            f = lambda v: np.asarray(v, dtype=float)  # noqa: E731
        with np.errstate(over="ignore", invalid="ignore"):
            values = f(_GRID)
        monotone = bool(np.all(np.isfinite(values)) and np.all(np.diff(values) >= -1e-9))
        if not monotone and self.monotone_fallback:
            warnings.warn(
                f"subset-to-full {method} map is not monotone on [0, 1]; "
                "falling back to monotone pchip on isotonic points",
                FitWarning,
                stacklevel=2,
            )
            method, f, monotone = "pchip", self._fit_pchip(ux, uy), True
        self._f = f
        self.method_ = method
        self.smoothing_ = smoothing
        self.monotone_ = monotone
        self.rmse_ = float(np.sqrt(np.mean((f(ux) - uy) ** 2))) if len(ux) else 0.0
        return self

    def predict(self, subset_accuracy):
        """Full-set accuracy for the given subset accuracy (clipped to [0, 1])."""
        check_is_fitted(self, "points_")
        x = np.clip(np.asarray(subset_accuracy, dtype=float), 0.0, 1.0)
        return np.clip(self._f(x), 0.0, 1.0)

    # --- the three fitters ------------------------------------------------------------

    def _fit_spline(self, ux, uy):
        px, py = np.r_[0.0, ux, 1.0], np.r_[0.0, uy, 1.0]
        w = np.r_[1e3, np.ones_like(ux), 1e3]
        s = len(ux) * 0.05**2
        while True:
            with warnings.catch_warnings(), np.errstate(over="ignore", invalid="ignore"):
                # FITPACK warns when s is below what it can reach; lowering s further
                # until the RMSE target is met is exactly the intended search
                warnings.simplefilter("ignore", UserWarning)
                spline = UnivariateSpline(px, py, w=w, k=3, s=s)
                rmse = np.sqrt(np.mean((spline(ux) - uy) ** 2))
            if rmse < self.rmse_target or s < 1e-12:
                break
            s /= 2.0  # smaller s lets the spline add knots
        e0, e1 = float(spline(0.0)), float(spline(1.0)) - 1.0

        def f(v, _s=spline, _e0=e0, _e1=e1):
            v = np.asarray(v, dtype=float)
            return _s(v) - (_e0 * (1 - v) + _e1 * v)

        return f, float(s)

    def _fit_quartic(self, ux, uy):
        # f(x) = x + x(1-x)(p0 + p1 x + p2 x^2): through (0,0) and (1,1) by construction;
        # f' is linear in p, so monotonicity is a set of linear inequality constraints.
        def basis(v):
            v = np.asarray(v, dtype=float)
            return np.stack([v * (1 - v) * v**j for j in range(3)], axis=-1)

        def dbasis(v):
            return np.stack([(j + 1) * v**j - (j + 2) * v ** (j + 1) for j in range(3)], axis=-1)

        A, r = basis(ux), uy - ux
        D = dbasis(_GRID)
        res = minimize(
            lambda p: np.sum((A @ p - r) ** 2),
            np.zeros(3),
            jac=lambda p: 2 * A.T @ (A @ p - r),
            constraints=[{"type": "ineq", "fun": lambda p: 1.0 + D @ p, "jac": lambda p: D}],
            method="SLSQP",
        )
        p = res.x
        # SLSQP meets the constraint only to its tolerance: shrink p towards the identity
        # (slope 1) until the slope is non-negative on a grid finer than the constraint's
        worst = float((dbasis(np.linspace(0.0, 1.0, 4001)) @ p).min())
        if 1.0 + worst < 1e-9:
            p = p * (1.0 - 1e-6) / -worst

        def f(v, _p=p):
            v = np.asarray(v, dtype=float)
            return v + basis(v) @ _p

        return f

    def _fit_linear_tail(self, ux, uy):
        px, py = np.r_[0.0, ux], np.r_[0.0, uy]
        py = _isotonic(py)
        n_top = max(2, int(np.ceil(len(px) / 2)))
        tx, ty = px[-n_top:], py[-n_top:]
        slope = max(float(np.polyfit(tx, ty, 1)[0]), 0.0) if np.ptp(tx) > 0 else 0.0
        x_end, y_end = float(px[-1]), float(py[-1])
        inner = PchipInterpolator(px, py, extrapolate=True) if len(px) > 1 else None

        def f(v, _inner=inner, _x=x_end, _y=y_end, _s=slope):
            v = np.asarray(v, dtype=float)
            tail = _y + _s * (v - _x)
            if _inner is None:
                return tail
            return np.where(v <= _x, _inner(np.minimum(v, _x)), tail)

        return f

    def _fit_pchip(self, ux, uy):
        px, py = np.r_[0.0, ux, 1.0], np.r_[0.0, uy, 1.0]
        py = _isotonic(py)
        return PchipInterpolator(px, py, extrapolate=True)


def _isotonic(y):
    """The non-decreasing sequence closest to ``y`` in least squares (pool adjacent
    violators, equal weights), for values at strictly increasing x."""
    means, sizes = [], []
    for v in np.asarray(y, dtype=float):
        means.append(v)
        sizes.append(1)
        # merge the last two blocks while they are out of order
        while len(means) > 1 and means[-2] > means[-1]:
            n = sizes[-2] + sizes[-1]
            means[-2] = (means[-2] * sizes[-2] + means[-1] * sizes[-1]) / n
            sizes[-2] = n
            del means[-1], sizes[-1]
    return np.clip(np.repeat(means, sizes), 0.0, 1.0)
