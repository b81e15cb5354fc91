"""Per-cluster scaling laws: expected accuracy as a function of training compute.

The COD law (Eq. 4 of the paper) is

.. math:: y(C) = g + (1 - g)\\,\\exp(-a C^{-b} - c)

with compute :math:`C` in the forecaster's ``compute_unit``.  It follows from a power law
of the answer loss :math:`L = \\alpha C^{-\\beta} + \\gamma` with :math:`p = e^{-L}`; ``g``
is the floor reached at small compute (random guessing), ``exp(-c)`` the ceiling the
cluster approaches at infinite compute.

Fitting a four-parameter law to a handful of ladder points is ill-conditioned and a
single starting point often lands in a poor local minimum, so :func:`fit_laws` first
scores a dense grid of starting points for all curves at once (vectorised numpy) and
then refines the best few with bounded least squares.  The grid is laid out in a
scale-free parametrisation, :math:`k = a\\,C_{ref}^{-b}` at the geometric-mean ladder
compute :math:`C_{ref}`, so the same grid works whatever the compute unit.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from cod_monitor._validation import check_choice, check_real
from cod_monitor.cod._memo import memoized, remember
from cod_monitor.cod._trf import TERMINATION_MESSAGES, solve_trf
from cod_monitor.exceptions import FitWarning, InputError

__all__ = [
    "LAW_FORMS",
    "expected_accuracy",
    "LawFit",
    "fit_law",
    "fit_laws",
    "fit_laws_many",
    "fit_laws_warm",
    "LocalTrend",
    "fit_local_trend",
]

#: Free parameters of each law form; the others are held at 0.
#: ``full`` is the paper's law; the rest are its formula ablations.
LAW_FORMS: dict[str, tuple[str, ...]] = {
    "full": ("a", "b", "c", "g"),
    "no_g": ("a", "b", "c"),
    "no_c": ("a", "b", "g"),
    "plain": ("a", "b"),
}

# Bounds of the refined parameters (log k, b, c, g).  c may go slightly negative so that
# the extrapolatable filter (0 <= c) has something to reject; b is capped because beyond
# ~5 the law is a step function that no ladder can pin down.
_LOGK_BOUNDS = (np.log(1e-6), np.log(1e4))
_B_BOUNDS = (1e-3, 5.0)
_C_BOUNDS = (-1.0, 20.0)
_G_BOUNDS = (0.0, 0.999)

_GRID_LOGK = np.log(np.logspace(-3, 2.5, 23))
_GRID_B = np.array([0.02, 0.05, 0.1, 0.2, 0.3, 0.45, 0.6, 0.8, 1.0, 1.3, 1.7, 2.2, 3.0, 4.0])
_GRID_C = np.array([0.0, 0.05, 0.15, 0.3, 0.6, 1.0, 2.0, 4.0])
_GRID_G = np.array([0.0, 0.05, 0.15, 0.25, 0.4, 0.6])


def expected_accuracy(compute, a, b, c=0.0, g=0.0):
    """Evaluate the COD law :math:`g + (1-g)\\exp(-a C^{-b} - c)`.

    Parameters
    ----------
    compute : array_like
        Training compute, in the same unit the parameters were fitted in. Positive.
    a, b : float
        Scale and exponent of the compute power law.
    c : float, default 0
        Irreducible loss term; the ceiling is ``g + (1-g) exp(-c)``.
    g : float, default 0
        Floor (random-guess accuracy).

    Returns
    -------
    ndarray
        Expected accuracy, same shape as ``compute``.

    Examples
    --------
    >>> round(float(expected_accuracy(1.0, a=1.0, b=0.5)), 4)
    0.3679
    """
    compute = np.asarray(compute, dtype=float)
    with np.errstate(over="ignore", divide="ignore"):
        return g + (1.0 - g) * np.exp(-a * compute ** (-b) - c)


@dataclass(frozen=True)
class LawFit:
    """A fitted COD law and its diagnostics.

    Attributes
    ----------
    form : str
        One of :data:`LAW_FORMS`.
    a, b, c, g : float
        Parameters, with compute in the unit the law was fitted in.
    rmse : float
        Root-mean-square residual over the fitted points (unweighted).
    success : bool
        Whether the optimiser converged to finite parameters.
    n_points : int
        Number of (compute, accuracy) points fitted.
    at_bound : tuple of str
        Parameters that ended on a bound of the search box (a sign of an
        under-determined fit).
    message : str
        Optimiser message.
    """

    form: str
    a: float
    b: float
    c: float
    g: float
    rmse: float
    success: bool
    n_points: int
    at_bound: tuple[str, ...] = field(default=())
    message: str = ""

    def __call__(self, compute):
        """Expected accuracy at ``compute`` (in the fitted unit)."""
        return expected_accuracy(compute, self.a, self.b, self.c, self.g)

    @property
    def ceiling(self) -> float:
        """Accuracy approached as compute goes to infinity."""
        return float(self.g + (1.0 - self.g) * np.exp(-self.c))

    def as_dict(self) -> dict:
        """Plain-Python view for reports and JSON."""
        return {
            "form": self.form,
            "a": self.a,
            "b": self.b,
            "c": self.c,
            "g": self.g,
            "rmse": self.rmse,
            "success": self.success,
            "n_points": self.n_points,
            "at_bound": list(self.at_bound),
            "message": self.message,
        }


def _check_form(form: str) -> tuple[str, ...]:
    return LAW_FORMS[check_choice("fit_laws", "form", form, sorted(LAW_FORMS))]


def _grid(free):
    axes = [_GRID_LOGK, _GRID_B]
    if "c" in free:
        axes.append(_GRID_C)
    if "g" in free:
        axes.append(_GRID_G)
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=1)


def _grid_predictions(grid, x, free):
    """(n_grid, n_points) predictions of every grid point, computed once per ladder."""
    logk, b = grid[:, 0:1], grid[:, 1:2]
    rest = dict(zip(free[2:], grid[:, 2:].T))
    c = rest.get("c", np.zeros(len(grid)))[:, None]
    g = rest.get("g", np.zeros(len(grid)))[:, None]
    with np.errstate(over="ignore"):
        t = np.exp(logk) * x[None, :] ** (-b)
    return g + (1 - g) * np.exp(-t - c)


def fit_laws(
    compute,
    accuracy,
    *,
    form: str = "full",
    sigma=None,
    n_refine: int = 3,
    init: list[LawFit] | None = None,
) -> list[LawFit]:
    """Fit one COD law per row of ``accuracy`` against a shared compute axis.

    Parameters
    ----------
    compute : array_like of shape (n_points,)
        Compute of each ladder point, already in the working unit. Positive.
    accuracy : array_like of shape (n_curves, n_points) or (n_points,)
        Mean accuracy of each curve (e.g. each difficulty cluster) at each point.
    form : {'full', 'no_g', 'no_c', 'plain'}, default 'full'
        Which parameters are free; see :data:`LAW_FORMS`.
    sigma : array_like of the same shape as ``accuracy``, optional
        Standard errors used as least-squares weights (``1/sigma``).
    n_refine : int, default 3
        How many of the best grid points are refined with bounded least squares.
    init : list of LawFit, optional
        Warm starts (e.g. from the fit on the original data when bootstrapping);
        when given, only these are refined and the grid is skipped.

    Returns
    -------
    list of LawFit
        One per curve, in the order of the rows of ``accuracy``.

    Warns
    -----
    FitWarning
        When no starting point converges for a curve (its ``success`` is False).

    References
    ----------
    Xu et al., "Unveiling Downstream Performance Scaling of LLMs: A Clustering-Based
    Perspective", ICLR 2026, arXiv:2502.17262, Eq. (4).
    """
    if init is None:
        # a batch of cold fits is the same whenever its inputs are (see _memo)
        parts = _law_key(form, n_refine, compute, accuracy, sigma)
        return list(memoized("laws", parts, lambda: _fit_laws(
            compute, accuracy, form=form, sigma=sigma, n_refine=n_refine)))
    return _fit_laws(compute, accuracy, form=form, sigma=sigma, n_refine=n_refine, init=init)


def _fit_laws(compute, accuracy, *, form, sigma, n_refine, init=None):
    if init is not None:
        return _warm_fits(compute, accuracy, form, sigma, init)
    problem = _cold_problem(compute, accuracy, form, sigma, n_refine)
    return _refine_all([problem], _check_form(form), form)[0]


def _checked(compute, accuracy, form, sigma):
    """Validated inputs: (free, x, y, sw, c_ref), compute scaled by its geometric mean."""
    free = _check_form(form)
    x_raw = np.asarray(compute, dtype=float)
    y = np.atleast_2d(np.asarray(accuracy, dtype=float))
    if x_raw.ndim != 1 or y.shape[1] != x_raw.shape[0]:
        raise InputError(
            f"`compute` should be 1D and match the last axis of `accuracy`: "
            f"{x_raw.shape = } vs {y.shape = }"
        )
    if not np.all(np.isfinite(x_raw)) or np.any(x_raw <= 0):
        raise InputError(f"`compute` should be positive and finite, got {x_raw!r}")
    if len(np.unique(x_raw)) < 2:
        raise InputError("`compute` needs at least two distinct values to fit a law")
    c_ref = float(np.exp(np.mean(np.log(x_raw))))
    sw = np.ones_like(y) if sigma is None else 1.0 / np.maximum(np.asarray(sigma, float), 1e-6)
    return free, x_raw / c_ref, y, np.broadcast_to(sw, y.shape), c_ref


def _cold_problem(compute, accuracy, form, sigma, n_refine):
    """The refinement problem of a cold fit: (x, y, sw, starts, c_ref), the starts the
    best ``n_refine`` points of the grid for each curve."""
    free, x, y, sw, c_ref = _checked(compute, accuracy, form, sigma)
    grid = _grid(free)
    pred = _grid_predictions(grid, x, free)  # (n_grid, n_points)
    # sum over points of w^2 (pred - y)^2, for every (curve, grid point) pair
    w2 = sw**2
    sse = (
        (w2 * y**2).sum(1)[:, None]
        - 2 * (w2 * y) @ pred.T
        + w2 @ (pred**2).T
    )
    if n_refine < sse.shape[1]:  # the n_refine smallest, in order: no full sort of the grid
        best = np.argpartition(sse, n_refine - 1, axis=1)[:, :n_refine]
        best = np.take_along_axis(
            best, np.argsort(np.take_along_axis(sse, best, axis=1), axis=1, kind="stable"), axis=1)
    else:
        best = np.argsort(sse, axis=1, kind="stable")
    return x, y, sw, [grid[row] for row in best], c_ref


def _warm_fits(compute, accuracy, form, sigma, init):
    free, x, y, sw, c_ref = _checked(compute, accuracy, form, sigma)
    lower, upper = _bounds(free)
    if len(init) != len(y):
        raise InputError(f"`init` has {len(init)} fits for {len(y)} curves")
    theta0 = np.array([_to_thetas(f, free, np.array([c_ref]))[0] for f in init])
    theta = _refine_warm(x, y, sw, theta0.reshape(len(y), len(free)), free, lower, upper)
    return _laws_from_thetas(theta, np.broadcast_to(x, y.shape), y, free, form,
                             np.full(len(y), c_ref), "warm start")


def fit_laws_many(requests, *, form: str = "full", n_refine: int = 3) -> list[list[LawFit]]:
    """Cold fits of many batches of curves at once, as many :func:`fit_laws` calls.

    Every batch's (curve, start) refinements run in one solver batch with the others
    of the same number of points, so that the iterations of small batches are shared.
    Inside :func:`~cod_monitor.cod._memo.shared_fits` each result is also kept for the
    :func:`fit_laws` call with the same inputs.

    Parameters
    ----------
    requests : sequence of (compute, accuracy)
        The arguments of one :func:`fit_laws` call each.
    form : str, default 'full'
    n_refine : int, default 3

    Returns
    -------
    list of list of LawFit
        One list per request. A request :func:`fit_laws` would refuse raises here too.
    """
    free = _check_form(form)
    problems = [_cold_problem(c, a, form, None, n_refine) for c, a in requests]
    by_m: dict[int, list[int]] = {}
    for i, pr in enumerate(problems):
        by_m.setdefault(len(pr[0]), []).append(i)
    out: list = [None] * len(problems)
    for ids in by_m.values():
        for i, fits in zip(ids, _refine_all([problems[i] for i in ids], free, form)):
            out[i] = fits
    for (c, a), fits in zip(requests, out):
        remember("laws", _law_key(form, n_refine, c, a, None), fits)
    return out


def _law_key(form, n_refine, compute, accuracy, sigma):
    """The inputs that make a cold :func:`fit_laws` call (see :mod:`~cod_monitor.cod._memo`)."""
    return (form, int(n_refine), np.asarray(compute, float), np.asarray(accuracy, float),
            None if sigma is None else np.asarray(sigma, float))


def _batch_model(theta, x, free):
    """Predictions (n, m) and Jacobians (n, m, p) of n curves at once; ``x`` is the
    shared compute axis (m,) or one per curve (n, m)."""
    n, p = theta.shape
    x = x if x.ndim == 2 else x[None, :]
    c = theta[:, free.index("c")][:, None] if "c" in free else np.zeros((n, 1))
    g = theta[:, free.index("g")][:, None] if "g" in free else np.zeros((n, 1))
    with np.errstate(over="ignore", invalid="ignore"):
        t = np.exp(theta[:, 0:1]) * x ** (-theta[:, 1:2])
        e = np.exp(-t - c)
    pred = g + (1 - g) * e
    cols = [-(1 - g) * e * t, (1 - g) * e * t * np.log(x)]
    for name in free[2:]:
        cols.append(-(1 - g) * e if name == "c" else 1 - e)
    return pred, np.stack(cols, axis=2)


def _refine_warm(x, y, sw, theta, free, lower, upper, n_iter=60, group_size=None):
    """Projected Levenberg-Marquardt on many curves at once, from warm starts.

    Bootstrap replicates start next to the original fit, where one local refinement
    suffices; batching the 4x4 normal equations of all curves avoids the per-call
    overhead of ``least_squares``. With ``group_size`` the curves come in consecutive
    groups of that size (one group per bootstrap replicate) and each group stops as
    it would alone: when every one of its curves has converged.
    """
    theta = np.clip(theta, lower, upper)
    n_curves = len(theta)
    group_size = group_size or n_curves
    n_groups = n_curves // group_size
    x = np.broadcast_to(x if x.ndim == 2 else x[None, :], y.shape)
    pred, J = _batch_model(theta, x, free)
    cost = np.sum(((pred - y) * sw) ** 2, axis=1)
    lam = np.full(n_curves, 1e-3)
    eye = np.eye(theta.shape[1])
    running = np.ones(n_groups, bool)
    for _ in range(n_iter):
        live = np.flatnonzero(np.repeat(running, group_size))
        if not live.size:
            break
        r = (pred[live] - y[live]) * sw[live]
        Jw = J[live] * sw[live][:, :, None]
        JTJ = np.einsum("nmp,nmq->npq", Jw, Jw)
        JTr = np.einsum("nmp,nm->np", Jw, r)
        diag = np.einsum("npp->np", JTJ)[:, :, None] * eye + 1e-12 * eye
        A = JTJ + lam[live][:, None, None] * diag
        try:
            step = -np.linalg.solve(A, JTr[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:  # pragma: no cover - singular despite damping
            # a group whose system is singular stops where it is, as it would alone
            bad = np.unique(live[np.linalg.matrix_rank(A) < A.shape[1]] // group_size)
            running[bad] = False
            continue
        cand = np.clip(theta[live] + step, lower, upper)
        cand_pred, cand_J = _batch_model(cand, x[live], free)
        cand_cost = np.sum(((cand_pred - y[live]) * sw[live]) ** 2, axis=1)
        old = cost[live]
        better = np.isfinite(cand_cost) & (cand_cost < old)
        up = live[better]
        theta[up], pred[up], J[up] = cand[better], cand_pred[better], cand_J[better]
        improvement = np.where(better, old - cand_cost, 0.0)
        cost[up] = cand_cost[better]
        lam[live] = np.where(better, lam[live] / 3.0, lam[live] * 4.0)
        done = (improvement <= 1e-12 * (1 + cost[live])) & (lam[live] > 1e6) | (cost[live] < 1e-20)
        groups = live[::group_size] // group_size
        running[groups[done.reshape(-1, group_size).all(axis=1)]] = False
    return theta


def fit_laws_warm(compute, accuracy, init: list[LawFit], *, form: str = "full"):
    """Refit the same curves on many resampled ladders, warm-started, in one batch.

    Equivalent to ``[fit_laws(compute[r], accuracy[r], form=form, init=init) for r in
    range(R)]``, which bootstrap intervals need once per replicate.

    Parameters
    ----------
    compute : array_like of shape (R, n_points)
        Each replicate's compute axis, in the working unit.
    accuracy : array_like of shape (R, n_curves, n_points)
    init : list of LawFit
        The original fits, one per curve.
    form : {'full', 'no_g', 'no_c', 'plain'}, default 'full'

    Returns
    -------
    list of list of LawFit
        ``R`` lists of ``n_curves`` fits.
    """
    free = _check_form(form)
    x_raw = np.asarray(compute, dtype=float)
    y = np.asarray(accuracy, dtype=float)
    R, K, m = y.shape
    if len(init) != K:
        raise InputError(f"`init` has {len(init)} fits for {K} curves")
    valid = (np.all(np.isfinite(x_raw), axis=1) & np.all(x_raw > 0, axis=1)
             & (x_raw.max(axis=1) > x_raw.min(axis=1)))
    if not valid.all():  # the single fit raises the error that names the problem
        r = int(np.flatnonzero(~valid)[0])
        fit_laws(x_raw[r], y[r], form=form, init=init)
    if K == 0:
        return [[] for _ in range(R)]
    c_ref = np.exp(np.mean(np.log(x_raw), axis=1))
    x = x_raw / c_ref[:, None]
    lower, upper = _bounds(free)
    theta0 = np.stack([_to_thetas(f, free, c_ref) for f in init], axis=1)  # (R, K, p)
    theta = _refine_warm(np.repeat(x, K, axis=0), y.reshape(R * K, m), np.ones((R * K, m)),
                         theta0.reshape(R * K, -1), free, lower, upper, group_size=K)
    fits = _laws_from_thetas(theta, np.repeat(x, K, axis=0), y.reshape(R * K, m), free, form,
                             np.repeat(c_ref, K), "warm start")
    return [fits[i:i + K] for i in range(0, len(fits), K)]


def _laws_from_thetas(theta, x, y, free, form, c_ref, messages) -> list[LawFit]:
    """The :class:`LawFit` of each row of ``theta`` (scaled parameters) with its compute
    axis ``x`` (scaled by ``c_ref``), accuracy ``y`` and message (one for all, or one
    each); ``success`` is whether the parameters are finite."""
    lower, upper = _bounds(free)
    if isinstance(messages, str):
        messages = [messages] * len(theta)
    b = theta[:, 1]
    # back to the caller's unit: a C^-b = k (C / C_ref)^-b  =>  a = k C_ref^b
    a = np.exp(theta[:, 0] + b * np.log(c_ref))
    rest = {name: theta[:, 2 + i] for i, name in enumerate(free[2:])}
    c, g = rest.get("c", np.zeros(len(theta))), rest.get("g", np.zeros(len(theta)))
    rmse = np.sqrt(np.mean((_batch_model(theta, x, free)[0] - y) ** 2, axis=1))
    names = ("a", "b") + free[2:]
    tol = 1e-6 * (upper - lower)
    on_bound = (theta <= lower + tol) | (theta >= upper - tol)
    success = np.all(np.isfinite(theta), axis=1)
    rows = zip(a.tolist(), b.tolist(), c.tolist(), g.tolist(), rmse.tolist(),
               success.tolist(), on_bound.tolist(), messages)
    return [LawFit(form, ai, bi, ci, gi, ri, si, x.shape[1],
                   tuple(nm for nm, hit in zip(names, hits) if hit), msg)
            for ai, bi, ci, gi, ri, si, hits, msg in rows]


def _to_thetas(fit: LawFit, free, c_ref):
    """``fit`` in the scaled parameters of each reference compute ``c_ref`` (an array):
    (len(c_ref), p), clipped to the bounds."""
    logk = np.log(max(fit.a, 1e-300)) - fit.b * np.log(c_ref)
    cols = [np.clip(logk, *_LOGK_BOUNDS), np.full(len(c_ref), np.clip(fit.b, *_B_BOUNDS))]
    for name in free[2:]:
        value = getattr(fit, name)
        cols.append(np.full(len(c_ref), np.clip(value, *(_C_BOUNDS if name == "c" else _G_BOUNDS))))
    return np.stack(cols, axis=1)


def _bounds(free):
    """Lower and upper bounds of the refined parameters of a law form."""
    pairs = [_LOGK_BOUNDS, _B_BOUNDS] + [{"c": _C_BOUNDS, "g": _G_BOUNDS}[n] for n in free[2:]]
    return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])


def _refine_all(problems, free, form) -> list[list[LawFit]]:
    """Refine every curve of every problem from each of its starts; keep each curve's
    lowest cost.

    ``problems`` are ``(x, y, sw, starts, c_ref)`` with the same number of points. All
    (problem, curve, start) rows run together through
    :func:`~cod_monitor.cod._trf.solve_trf` (the trust-region reflective method of
    ``least_squares``, batched). Among a curve's starts the first with the lowest cost
    wins, as the starts come in grid order.
    """
    lower, upper = _bounds(free)
    owner, X, Y, SW, theta0 = [], [], [], [], []
    for p, (x, y, sw, starts, _) in enumerate(problems):
        for i, st in enumerate(starts):
            for th in np.asarray(st, float):
                owner.append((p, i))
                X.append(x)
                Y.append(y[i])
                SW.append(sw[i])
                theta0.append(th)
    X, Y, SW = np.array(X), np.array(Y), np.array(SW)
    LX = np.log(X)
    theta0 = np.clip(np.array(theta0).reshape(len(owner), len(free)), lower, upper)

    def evaluate(index, theta):
        pred, J = _batch_model(theta, X[index], free)
        return (pred - Y[index]) * SW[index], J * SW[index][:, :, None]

    has_c, has_g = "c" in free, "g" in free

    def evaluate_one(i, theta):
        # the law of _batch_model in plain floats, for the last few problems
        c = theta[2] if has_c else 0.0
        g = theta[free.index("g")] if has_g else 0.0
        k, b = math.exp(theta[0]), theta[1]
        f, J = [], []
        for xj, lxj, yj, wj in zip(X[i].tolist(), LX[i].tolist(), Y[i].tolist(),
                                   SW[i].tolist()):
            t = k * xj ** (-b)
            e = math.exp(-t - c)
            f.append((g + (1 - g) * e - yj) * wj)
            row = [-(1 - g) * e * t * wj, (1 - g) * e * t * lxj * wj]
            if has_c:
                row.append(-(1 - g) * e * wj)
            if has_g:
                row.append((1 - e) * wj)
            J.append(row)
        return f, J

    theta, cost, status, _ = solve_trf(evaluate, theta0, lower, upper, max_nfev=400,
                                       evaluate_one=evaluate_one)
    best: dict[tuple[int, int], int] = {}
    for j, key in enumerate(owner):
        if status[j] == -3 or not np.all(np.isfinite(theta[j])):
            continue
        if key not in best or cost[j] < cost[best[key]]:
            best[key] = j
    out = []
    for p, (x, y, _, _, c_ref) in enumerate(problems):
        rows = [best.get((p, i)) for i in range(len(y))]
        found = [i for i, j in enumerate(rows) if j is not None]
        # status 0 (evaluation budget used up) still leaves the best point found, which
        # is a usable fit on these small problems; only a non-finite result is a failure
        made = iter(_laws_from_thetas(
            theta[[rows[i] for i in found]], np.broadcast_to(x, (len(found), len(x))),
            y[found], free, form, np.full(len(found), c_ref),
            [TERMINATION_MESSAGES[int(status[rows[i]])] for i in found]))
        fits = []
        for j in rows:
            if j is None:
                warnings.warn("law fit failed from every start", FitWarning, stacklevel=4)
                fits.append(LawFit(form, np.nan, np.nan, np.nan, np.nan, np.nan, False, len(x),
                                   (), "failed"))
            else:
                fits.append(next(made))
        out.append(fits)
    return out


def fit_law(compute, accuracy, *, form: str = "full", sigma=None, n_refine: int = 3) -> LawFit:
    """Fit one COD law; convenience wrapper around :func:`fit_laws`.

    Parameters
    ----------
    compute : array_like of shape (n_points,)
        Compute in the working unit.
    accuracy : array_like of shape (n_points,)
        Accuracy at each point.
    form : {'full', 'no_g', 'no_c', 'plain'}, default 'full'
    sigma : array_like of shape (n_points,), optional
        Standard errors used as weights.
    n_refine : int, default 3
        Best grid points refined.

    Returns
    -------
    LawFit

    Examples
    --------
    >>> import numpy as np
    >>> C = np.logspace(0, 3, 8)
    >>> fit = fit_law(C, expected_accuracy(C, a=5.0, b=0.5, c=0.1, g=0.0))
    >>> round(fit.a, 2), round(fit.b, 2)
    (5.0, 0.5)
    """
    sig = None if sigma is None else np.atleast_2d(sigma)
    return fit_laws(compute, np.atleast_2d(accuracy), form=form, sigma=sig, n_refine=n_refine)[0]


@dataclass(frozen=True)
class LocalTrend:
    """A straight line in log-compute through the top of a ladder, data below it.

    The forecast of the samples no COD law may extrapolate (see
    :func:`fit_local_trend`): beyond the start of the window it is the least-squares
    line :math:`y = p + q \\log C` of the points in the window, clipped to [0, 1];
    below it, the piecewise-linear interpolation (in :math:`\\log C`) of the observed
    points, joined to the line at the window's start.

    Attributes
    ----------
    intercept, slope : float
        :math:`p` and :math:`q`, with compute in the unit it was fitted in.
    log_start : float
        :math:`\\log C` of the first point of the window.
    knots_x, knots_y : tuple of float
        Interpolation knots below the window (log compute, accuracy), the last one on
        the line at ``log_start``.
    n_window : int
        Points in the window.
    rmse : float
        Root-mean-square residual of the line over the window.
    """

    intercept: float
    slope: float
    log_start: float
    knots_x: tuple
    knots_y: tuple
    n_window: int
    rmse: float

    def __call__(self, compute):
        """Expected accuracy at ``compute`` (in the fitted unit)."""
        x = np.log(np.asarray(compute, dtype=float))
        line = np.clip(self.intercept + self.slope * x, 0.0, 1.0)
        below = np.interp(x, self.knots_x, self.knots_y)
        return np.where(x >= self.log_start, line, below)

    def as_dict(self) -> dict:
        """Plain-Python view for reports and JSON."""
        return {
            "form": "local_trend",
            "intercept": self.intercept,
            "slope": self.slope,
            "log_start": self.log_start,
            "n_window": self.n_window,
            "rmse": self.rmse,
        }


def fit_local_trend(compute, accuracy, *, window: float = 0.5, min_points: int = 3) -> LocalTrend:
    """Fit the local linear trend in log-compute of the top of a ladder.

    Parameters
    ----------
    compute : array_like of shape (n_points,)
        Compute of each ladder point, in the working unit. Positive; repeats allowed.
    accuracy : array_like of shape (n_points,)
        Accuracy at each point.
    window : float in (0, 1], default 0.5
        Fraction of the points, those of largest compute, that the line is fitted on.
    min_points : int, default 3
        Fewest points in the window (all points if there are fewer).

    Returns
    -------
    LocalTrend

    Notes
    -----
    This is the first-order Taylor expansion of the accuracy curve in
    :math:`\\log C` around the top of the ladder. It makes no claim about the
    curve's shape, which is what one can say about samples whose cluster law failed
    the extrapolatable filter (saturated, unsolved, inverse-scaling, outliers): it
    follows their recent slope, rising or falling, for a short extrapolation, and is
    clipped to [0, 1] for a long one.

    Examples
    --------
    >>> import numpy as np
    >>> C = np.logspace(0, 3, 7)
    >>> trend = fit_local_trend(C, 0.8 - 0.05 * np.log(C))
    >>> round(float(trend(1e4)), 4)
    0.3395
    """
    c = np.asarray(compute, dtype=float)
    y = np.asarray(accuracy, dtype=float)
    if c.ndim != 1 or c.shape != y.shape:
        raise InputError(f"`compute` and `accuracy` should be 1D of one shape: {c.shape = } != {y.shape = }")
    if not np.all(np.isfinite(c)) or np.any(c <= 0) or not np.all(np.isfinite(y)):
        raise InputError("`compute` should be positive and finite and `accuracy` finite")
    check_real("fit_local_trend", "window", window, 0.0, 1.0, closed="right")
    order = np.argsort(c, kind="stable")
    x, y = np.log(c[order]), y[order]
    n_win = min(len(x), max(int(min_points), int(np.ceil(window * len(x)))))
    xw, yw = x[-n_win:], y[-n_win:]
    if np.ptp(xw) > 0:
        slope, intercept = np.polyfit(xw, yw, 1)
    else:  # one distinct compute in the window: a flat line at its mean
        slope, intercept = 0.0, float(yw.mean())
    start = float(xw[0])
    rmse = float(np.sqrt(np.mean((intercept + slope * xw - yw) ** 2)))
    # knots below the window: the observed points (repeats averaged), then the line
    below = x < start
    ux, inv = np.unique(x[below], return_inverse=True)
    uy = np.bincount(inv, weights=y[below], minlength=len(ux)) / np.maximum(
        np.bincount(inv, minlength=len(ux)), 1
    )
    line_start = float(np.clip(intercept + slope * start, 0.0, 1.0))
    return LocalTrend(
        float(intercept), float(slope), start,
        tuple(np.r_[ux, start].tolist()), tuple(np.r_[uy, line_start].tolist()),
        int(n_win), rmse,
    )
