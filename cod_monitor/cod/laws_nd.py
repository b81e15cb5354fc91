r"""Accuracy laws in model parameters :math:`N` and training tokens :math:`D`.

:mod:`cod_monitor.cod.laws` fits accuracy against compute :math:`C = 6ND` alone, which is
all a ladder trained by one recipe can identify. When the ladder's points vary tokens
per parameter (intermediate checkpoints, over-trained runs), the two can be told apart:

.. math:: y(N, D) = g + (1-g)\exp\left(-A N^{-\alpha} - B D^{-\beta} - c\right),

the COD law with its answer loss written as a Chinchilla-style sum of a model-size and
a data term. The live monitor's trajectory forecasts
(:mod:`cod_monitor.cod.trajectory`) and COD's recipe transport
(:mod:`cod_monitor.cod.transport`) use it.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from cod_monitor._io import to_jsonable
from cod_monitor.cod._trf import solve_trf
from cod_monitor.exceptions import FitWarning, InputError

__all__ = ["TrajectoryLaw", "fit_trajectory_laws", "fit_trajectory_laws_many", "trajectory_accuracy"]

# parameter vector (log a_n, alpha, log a_d, beta, c, g) with N, D scaled by their
# geometric means over the fitted points
_LOWER = np.array([np.log(1e-6), 0.02, np.log(1e-6), 0.02, 0.0, 0.0])
_UPPER = np.array([np.log(1e4), 3.0, np.log(1e4), 3.0, 20.0, 0.999])
_GRID_LOGA = np.log(np.logspace(-2.5, 1.5, 9))
_GRID_EXP = np.array([0.1, 0.3, 0.6, 1.0, 1.6])
_GRID_C = np.array([0.0, 0.1, 0.4, 1.5])
_GRID_G = np.array([0.0, 0.15, 0.35])
_NAMES = ("A", "alpha", "B", "beta", "c", "g")


def trajectory_accuracy(params, tokens, A, alpha, B, beta, c=0.0, g=0.0):
    """Evaluate :math:`g + (1-g)\\exp(-A N^{-\\alpha} - B D^{-\\beta} - c)`.

    Parameters
    ----------
    params : array_like
        Model parameters :math:`N` (positive).
    tokens : array_like
        Training tokens seen :math:`D` (positive), broadcast against ``params``.
    A, alpha, B, beta : float
        Size and data terms of the answer loss.
    c : float, default 0
        Irreducible term; the ceiling is ``g + (1-g) exp(-c)``.
    g : float, default 0
        Floor.

    Returns
    -------
    ndarray

    Examples
    --------
    >>> round(float(trajectory_accuracy(1e6, 1e8, A=1e3, alpha=0.5, B=1e4, beta=0.5)), 4)
    0.1353
    """
    n = np.asarray(params, dtype=float)
    d = np.asarray(tokens, dtype=float)
    with np.errstate(over="ignore", divide="ignore", under="ignore"):
        t = np.exp(np.log(A) - alpha * np.log(n)) + np.exp(np.log(B) - beta * np.log(d))
        return g + (1.0 - g) * np.exp(-t - c)


@dataclass(frozen=True)
class TrajectoryLaw:
    """A fitted law :math:`y(N, D)` and its diagnostics.

    Attributes
    ----------
    A, alpha, B, beta, c, g : float
        Parameters, with :math:`N` in parameters and :math:`D` in tokens.
    rmse : float
        Root-mean-square residual over the fitted points.
    success : bool
        Whether the optimiser returned finite parameters.
    n_points : int
    at_bound : tuple of str
        Parameters that ended on a bound of the search box.
    """

    A: float
    alpha: float
    B: float
    beta: float
    c: float
    g: float
    rmse: float
    success: bool
    n_points: int
    at_bound: tuple = field(default=())

    def __call__(self, params, tokens):
        """Expected accuracy at ``params`` parameters after ``tokens`` tokens."""
        return trajectory_accuracy(params, tokens, self.A, self.alpha, self.B, self.beta,
                                   self.c, self.g)

    @property
    def ceiling(self) -> float:
        """Accuracy approached with unlimited parameters and tokens."""
        return float(self.g + (1 - self.g) * math.exp(-self.c))

    def as_dict(self) -> dict:
        """Plain-Python view for reports and JSON."""
        out = {k: getattr(self, k) for k in _NAMES}
        out.update(rmse=self.rmse, success=self.success, n_points=self.n_points,
                   at_bound=list(self.at_bound))
        return to_jsonable(out)


_FAILED = TrajectoryLaw(*(np.nan,) * 7, success=False, n_points=0)


def _grid() -> np.ndarray:
    mesh = np.meshgrid(_GRID_LOGA, _GRID_EXP, _GRID_LOGA, _GRID_EXP, _GRID_C, _GRID_G,
                       indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=1)


def _grid_predictions(grid, lx, lz) -> np.ndarray:
    """(n_grid, n_points) predictions; the part over (log a, exponent) is shared."""
    with np.errstate(over="ignore", under="ignore"):
        tn = np.exp(grid[:, 0:1] - grid[:, 1:2] * lx[None, :])
        td = np.exp(grid[:, 2:3] - grid[:, 3:4] * lz[None, :])
        e = np.exp(-tn - td - grid[:, 4:5])
    g = grid[:, 5:6]
    return g + (1 - g) * e


def _to_theta(law: TrajectoryLaw, n_ref: float, d_ref: float) -> np.ndarray:
    theta = np.array([
        math.log(max(law.A, 1e-300)) - law.alpha * math.log(n_ref),
        law.alpha,
        math.log(max(law.B, 1e-300)) - law.beta * math.log(d_ref),
        law.beta,
        law.c,
        law.g,
    ])
    return np.clip(theta, _LOWER, _UPPER)


def fit_trajectory_laws(
    params,
    tokens,
    accuracy,
    *,
    n_refine: int = 3,
    init: list[TrajectoryLaw] | None = None,
) -> list[TrajectoryLaw]:
    """Fit one law :math:`y(N, D)` per row of ``accuracy``.

    A vectorised grid of starting points is scored for every curve at once, then the
    best ``n_refine`` are refined with bounded least squares (analytic Jacobian), as
    :func:`cod_monitor.cod.laws.fit_laws` does for the compute law.

    Parameters
    ----------
    params, tokens : array_like of shape (n_points,)
        Parameters :math:`N` and tokens seen :math:`D` of every checkpoint (positive).
    accuracy : array_like of shape (n_curves, n_points) or (n_points,)
        Accuracy of every curve (e.g. every difficulty cluster) at every checkpoint.
    n_refine : int, default 3
    init : list of TrajectoryLaw, optional
        Warm starts (one per curve); the grid is skipped.

    Returns
    -------
    list of TrajectoryLaw

    Raises
    ------
    ValueError
        Shapes that disagree, non-positive ``params`` or ``tokens``, or fewer than two
        distinct values of either.

    Warns
    -----
    FitWarning
        A curve that no start could fit (its ``success`` is False).

    Examples
    --------
    >>> N = np.repeat([1e5, 3e5, 1e6, 3e6], 4)
    >>> D = np.tile([1e6, 2e6, 4e6, 8e6], 4)
    >>> y = trajectory_accuracy(N, D, A=300.0, alpha=0.5, B=2000.0, beta=0.5, c=0.1)
    >>> law = fit_trajectory_laws(N, D, y)[0]
    >>> round(float(law(1e7, 1.6e7)), 3), round(float(trajectory_accuracy(
    ...     1e7, 1.6e7, A=300.0, alpha=0.5, B=2000.0, beta=0.5, c=0.1)), 3)
    (0.499, 0.499)
    """
    return fit_trajectory_laws_many([(params, tokens, accuracy, init)], n_refine=n_refine)[0]


def fit_trajectory_laws_many(requests, *, n_refine: int = 3) -> list[list[TrajectoryLaw]]:
    """:func:`fit_trajectory_laws` for many ``(params, tokens, accuracy, init)`` requests
    at once (e.g. every bootstrap replicate), their refinements solved in one batch.

    Parameters
    ----------
    requests : sequence of tuple
        The arguments of :func:`fit_trajectory_laws`, one tuple per call.
    n_refine : int, default 3

    Returns
    -------
    list of list of TrajectoryLaw
        One list per request.
    """
    problems = [_problems(*req, n_refine=n_refine) for req in requests]
    return _solve_problems(problems)


def _problems(params, tokens, accuracy, init, *, n_refine):
    """Validated data and starting points of one request: (x, z, lx, lz, y, starts,
    n_ref, d_ref), ``starts`` one list per curve."""
    n = np.asarray(params, dtype=float)
    d = np.asarray(tokens, dtype=float)
    y = np.atleast_2d(np.asarray(accuracy, dtype=float))
    if n.ndim != 1 or n.shape != d.shape or y.shape[1] != n.shape[0]:
        raise InputError(
            f"`params` and `tokens` should be 1D and match the last axis of `accuracy`: "
            f"{n.shape = }, {d.shape = }, {y.shape = }"
        )
    if not (np.all(np.isfinite(n)) and np.all(np.isfinite(d)) and n.min() > 0 and d.min() > 0):
        raise InputError("`params` and `tokens` should be positive and finite")
    if len(np.unique(n)) < 2 or len(np.unique(d)) < 2:
        raise InputError("`params` and `tokens` need at least two distinct values each to fit a law")
    n_ref, d_ref = float(np.exp(np.log(n).mean())), float(np.exp(np.log(d).mean()))
    x, z = n / n_ref, d / d_ref
    lx, lz = np.log(x), np.log(z)
    if init is None:
        grid = _grid()
        pred = _grid_predictions(grid, lx, lz)
        sse = (y**2).sum(1)[:, None] - 2 * y @ pred.T + (pred**2).sum(1)[None, :]
        best = np.argsort(sse, axis=1)[:, :n_refine]
        starts = [grid[row] for row in best]
    else:
        if len(init) != len(y):
            raise InputError(f"`init` has {len(init)} laws for {len(y)} curves")
        starts = [[_to_theta(law, n_ref, d_ref)] if law.success else [] for law in init]
        if any(not s for s in starts):  # a failed warm start: fall back to the grid for it
            grid = _grid()
            pred = _grid_predictions(grid, lx, lz)
            for i, s in enumerate(starts):
                if not s:
                    sse = ((pred - y[i]) ** 2).sum(1)
                    starts[i] = list(grid[np.argsort(sse)[:n_refine]])
    return x, z, lx, lz, y, starts, n_ref, d_ref


def _solve_problems(problems) -> list[list[TrajectoryLaw]]:
    """Refine every (request, curve, start) with the batched trust-region solver (as
    ``least_squares(method='trf', x_scale='jac')``, see :mod:`cod_monitor.cod._trf`);
    requests with the same number of points share a batch."""
    out = [[None] * len(p[4]) for p in problems]
    by_m: dict[int, list] = {}
    for r, (x, z, lx, lz, y, starts, n_ref, d_ref) in enumerate(problems):
        for k, st in enumerate(starts):
            for theta0 in st:
                by_m.setdefault(len(x), []).append((r, k, np.clip(np.asarray(theta0, float),
                                                                   _LOWER, _UPPER)))
    best: dict[tuple[int, int], tuple[float, np.ndarray]] = {}
    for rows in by_m.values():
        X = np.array([problems[r][0] for r, _, _ in rows])
        Z = np.array([problems[r][1] for r, _, _ in rows])
        LX = np.array([problems[r][2] for r, _, _ in rows])
        LZ = np.array([problems[r][3] for r, _, _ in rows])
        Y = np.array([problems[r][4][k] for r, k, _ in rows])

        def evaluate(index, theta, X=X, Z=Z, LX=LX, LZ=LZ, Y=Y):
            pred, J = _predict_and_jac(theta, LX[index], LZ[index])
            return pred - Y[index], J

        def evaluate_one(i, theta, LX=LX, LZ=LZ, Y=Y):
            # the same law in plain floats, for the last few problems of the batch
            la, alpha, lb, beta, c, g = theta
            one_g = 1 - g
            f, J = [], []
            for lxj, lzj, yj in zip(LX[i].tolist(), LZ[i].tolist(), Y[i].tolist()):
                tn, td = math.exp(la - alpha * lxj), math.exp(lb - beta * lzj)
                e = math.exp(-tn - td - c)
                f.append(g + one_g * e - yj)
                J.append([-one_g * e * tn, one_g * e * tn * lxj, -one_g * e * td,
                          one_g * e * td * lzj, -one_g * e, 1 - e])
            return f, J

        theta, cost, status, _ = solve_trf(evaluate, np.array([t for _, _, t in rows]),
                                           _LOWER, _UPPER, max_nfev=300,
                                           evaluate_one=evaluate_one)
        for (r, k, _), th, c, st in zip(rows, theta, cost, status):
            if st == -3 or not np.all(np.isfinite(th)):
                continue
            if (r, k) not in best or c < best[(r, k)][0]:
                best[(r, k)] = (c, th)
    for r, (x, z, lx, lz, y, starts, n_ref, d_ref) in enumerate(problems):
        for k in range(len(y)):
            if (r, k) not in best:
                warnings.warn("trajectory law fit failed from every start", FitWarning,
                              stacklevel=4)
                out[r][k] = _FAILED
            else:
                out[r][k] = _law(best[(r, k)][1], lx, lz, y[k], n_ref, d_ref)
    return out


def _predict_and_jac(theta, lx, lz):
    """Predictions and Jacobians of many problems at once: ``theta`` (k, 6), ``lx`` and
    ``lz`` the logs of the scaled N and D, (k, m) or (m,)."""
    la, alpha, lb, beta, c, g = (theta[:, i:i + 1] for i in range(6))
    tn = np.exp(la - alpha * lx)
    td = np.exp(lb - beta * lz)
    e = np.exp(-tn - td - c)
    one_g = 1 - g
    J = np.stack([-one_g * e * tn, one_g * e * tn * lx, -one_g * e * td,
                  one_g * e * td * lz, -one_g * e, np.broadcast_to(1 - e, e.shape)], axis=2)
    return g + one_g * e, J


def _law(theta, lx, lz, y, n_ref, d_ref) -> TrajectoryLaw:
    la, alpha, lb, beta, c, g = (float(v) for v in theta)
    tol = 1e-6 * (_UPPER - _LOWER)
    at_bound = tuple(
        nm for nm, v, lo, hi, t in zip(_NAMES, theta, _LOWER, _UPPER, tol)
        if v <= lo + t or v >= hi - t
    )
    rmse = float(np.sqrt(np.mean((_predict_and_jac(theta[None], lx, lz)[0][0] - y) ** 2)))
    return TrajectoryLaw(
        A=math.exp(la + alpha * math.log(n_ref)),
        alpha=alpha,
        B=math.exp(lb + beta * math.log(d_ref)),
        beta=beta,
        c=c,
        g=g,
        rmse=rmse,
        success=True,
        n_points=len(y),
        at_bound=at_bound,
    )
