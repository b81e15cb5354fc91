r"""Accuracy laws in model parameters :math:`N` and training tokens :math:`D`.

:mod:`cod_monitor.cod.laws` fits accuracy against compute :math:`C = 6ND` alone, which is
all a ladder trained by one recipe can identify. When the ladder's points vary tokens
per parameter (intermediate checkpoints, over-trained runs), the two can be told apart:

.. math:: y(N, D) = g + (1-g)\exp\left(-A N^{-\alpha} - B D^{-\beta} - c\right),

the COD law with its answer loss written as a Chinchilla-style sum of a model-size and
a data term. The live monitor's trajectory forecasts
(:mod:`cod_monitor.cod.trajectory`) and COD's recipe transport
(:mod:`cod_monitor.cod.transport`) use it.

``form='two_phase'`` adds a transient data term that larger models shed sooner,

.. math:: y(N, D) = g + (1-g)\exp\left(-A N^{-\alpha} - B D^{-\beta}
          - E D^{-\delta} N^{-\gamma} - c\right),

for ladders whose runs rise steeply early in training, and the faster the larger the
model, before settling on a slower power law in :math:`D` (the demo ladder). The
additive law is the case :math:`E = 0`; the fit starts from it.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from cod_monitor._io import to_jsonable
from cod_monitor._validation import check_choice
from cod_monitor.cod._trf import solve_trf
from cod_monitor.exceptions import FitWarning, InputError

__all__ = ["TRAJECTORY_FORMS", "TrajectoryLaw", "fit_trajectory_laws", "fit_trajectory_laws_many",
           "trajectory_accuracy"]

# parameter vector (log a_n, alpha, log a_d, beta, c, g) with N, D scaled by their
# geometric means over the fitted points
_LOWER = np.array([np.log(1e-6), 0.02, np.log(1e-6), 0.02, 0.0, 0.0])
_UPPER = np.array([np.log(1e4), 3.0, np.log(1e4), 3.0, 20.0, 0.999])
_GRID_LOGA = np.log(np.logspace(-2.5, 1.5, 9))
_GRID_EXP = np.array([0.1, 0.3, 0.6, 1.0, 1.6])
_GRID_C = np.array([0.0, 0.1, 0.4, 1.5])
_GRID_G = np.array([0.0, 0.15, 0.35])
_NAMES = ("A", "alpha", "B", "beta", "c", "g")
# the transient term of form='two_phase': (log e, delta, gamma)
_LOWER_T = np.array([np.log(1e-6), 0.02, 0.0])
_UPPER_T = np.array([np.log(1e4), 6.0, 4.0])
_GRID_T = np.array([(le, de, ga) for le in (-3.0, -1.0, 1.0) for de in (1.0, 2.5, 4.0)
                    for ga in (0.0, 1.0, 2.5)])
_NAMES_T = ("E", "delta", "gamma")
#: Forms of the law: ``additive`` (six parameters) and ``two_phase`` (nine).
TRAJECTORY_FORMS = ("additive", "two_phase")


def trajectory_accuracy(params, tokens, A, alpha, B, beta, c=0.0, g=0.0, E=0.0, delta=0.0,
                        gamma=0.0):
    """Evaluate :math:`g + (1-g)\\exp(-A N^{-\\alpha} - B D^{-\\beta} - E D^{-\\delta}
    N^{-\\gamma} - c)`.

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
    E, delta, gamma : float, default 0
        The transient data term of ``form='two_phase'`` (none when ``E = 0``).

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
        if E:
            t = t + np.exp(np.log(E) - delta * np.log(d) - gamma * np.log(n))
        return g + (1.0 - g) * np.exp(-t - c)


@dataclass(frozen=True)
class TrajectoryLaw:
    """A fitted law :math:`y(N, D)` and its diagnostics.

    Attributes
    ----------
    A, alpha, B, beta, c, g : float
        Parameters, with :math:`N` in parameters and :math:`D` in tokens.
    E, delta, gamma : float
        The transient data term (``E = 0``: the additive form).
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
    E: float = 0.0
    delta: float = 0.0
    gamma: float = 0.0

    def __call__(self, params, tokens):
        """Expected accuracy at ``params`` parameters after ``tokens`` tokens."""
        return trajectory_accuracy(params, tokens, self.A, self.alpha, self.B, self.beta,
                                   self.c, self.g, self.E, self.delta, self.gamma)

    @property
    def form(self) -> str:
        """``'two_phase'`` when the transient term is present, else ``'additive'``."""
        return "two_phase" if self.E > 0 else "additive"

    @property
    def ceiling(self) -> float:
        """Accuracy approached with unlimited parameters and tokens."""
        return float(self.g + (1 - self.g) * math.exp(-self.c))

    def as_dict(self) -> dict:
        """Plain-Python view for reports and JSON."""
        out = {k: getattr(self, k) for k in _NAMES}
        if self.E > 0:  # an additive law's view is as it always was
            out.update((k, getattr(self, k)) for k in _NAMES_T)
            out.update(form=self.form)
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
    theta = np.clip(theta, _LOWER, _UPPER)
    if law.E > 0:
        extra = np.array([math.log(law.E) - law.delta * math.log(d_ref)
                          - law.gamma * math.log(n_ref), law.delta, law.gamma])
        theta = np.concatenate([theta, np.clip(extra, _LOWER_T, _UPPER_T)])
    return theta


def fit_trajectory_laws(
    params,
    tokens,
    accuracy,
    *,
    n_refine: int = 3,
    init: list[TrajectoryLaw] | None = None,
    form: str = "additive",
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
        Warm starts (one per curve); the grid is skipped, and each curve keeps the form
        of its start.
    form : {'additive', 'two_phase'}, default 'additive'
        The law (module docstring). ``two_phase`` refines the additive fit with the
        transient term from a small grid of starts and keeps whichever fits better.

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
    return fit_trajectory_laws_many([(params, tokens, accuracy, init)], n_refine=n_refine,
                                    form=form)[0]


def fit_trajectory_laws_many(requests, *, n_refine: int = 3,
                             form: str = "additive") -> list[list[TrajectoryLaw]]:
    """:func:`fit_trajectory_laws` for many ``(params, tokens, accuracy, init)`` requests
    at once (e.g. every bootstrap replicate), their refinements solved in one batch.

    Parameters
    ----------
    requests : sequence of tuple
        The arguments of :func:`fit_trajectory_laws`, one tuple per call.
    n_refine : int, default 3
    form : {'additive', 'two_phase'}, default 'additive'

    Returns
    -------
    list of list of TrajectoryLaw
        One list per request.
    """
    check_choice("fit_trajectory_laws", "form", form, TRAJECTORY_FORMS)
    problems = [_problems(*req, n_refine=n_refine) for req in requests]
    laws = _solve_problems(problems)
    if form == "additive":
        return laws
    # two_phase: the transient term on top of every curve's additive fit (a cold start)
    # or warm start's form; the better of the two fits is kept
    cold = [req[3] is None for req in requests]
    extended = []
    for prob, fits, is_cold in zip(problems, laws, cold):
        x, z, lx, lz, y, starts, n_ref, d_ref = prob
        new_starts = []
        for k, law in enumerate(fits):
            if not is_cold or not law.success:
                new_starts.append([])
                continue
            base = _to_theta(law, n_ref, d_ref)[:6]
            cand = np.hstack([np.repeat(base[None], len(_GRID_T), 0), _GRID_T])
            pred = _predict_and_jac(cand, lx, lz)[0]
            sse = ((pred - y[k]) ** 2).sum(1)
            new_starts.append(list(cand[np.argsort(sse, kind="stable")[:n_refine]]))
        extended.append((x, z, lx, lz, y, new_starts, n_ref, d_ref))
    two = _solve_problems(extended, quiet=True)
    return [[t if t is not None and t.success and t.rmse < f.rmse else f
             for f, t in zip(fits, twos)] for fits, twos in zip(laws, two)]


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


def _bounds(n_params: int):
    if n_params == 6:
        return _LOWER, _UPPER
    return np.concatenate([_LOWER, _LOWER_T]), np.concatenate([_UPPER, _UPPER_T])


def _solve_problems(problems, quiet: bool = False) -> list[list[TrajectoryLaw]]:
    """Refine every (request, curve, start) with the batched trust-region solver (as
    ``least_squares(method='trf', x_scale='jac')``, see :mod:`cod_monitor.cod._trf`);
    requests with the same number of points and parameters share a batch. A curve
    without starts gets ``None`` when ``quiet``."""
    out = [[None] * len(p[4]) for p in problems]
    by_m: dict[tuple[int, int], list] = {}
    for r, (x, z, lx, lz, y, starts, n_ref, d_ref) in enumerate(problems):
        for k, st in enumerate(starts):
            for theta0 in st:
                theta0 = np.asarray(theta0, float)
                lower, upper = _bounds(len(theta0))
                by_m.setdefault((len(x), len(theta0)), []).append(
                    (r, k, np.clip(theta0, lower, upper)))
    best: dict[tuple[int, int], tuple[float, np.ndarray]] = {}
    for (_, n_params), rows in by_m.items():
        lower, upper = _bounds(n_params)
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
            la, alpha, lb, beta, c, g = theta[:6]
            one_g = 1 - g
            f, J = [], []
            for lxj, lzj, yj in zip(LX[i].tolist(), LZ[i].tolist(), Y[i].tolist()):
                tn, td = math.exp(la - alpha * lxj), math.exp(lb - beta * lzj)
                tt = math.exp(theta[6] - theta[7] * lzj - theta[8] * lxj) if len(theta) > 6 else 0.0
                e = math.exp(-tn - td - tt - c)
                f.append(g + one_g * e - yj)
                row = [-one_g * e * tn, one_g * e * tn * lxj, -one_g * e * td,
                       one_g * e * td * lzj, -one_g * e, 1 - e]
                if len(theta) > 6:
                    row += [-one_g * e * tt, one_g * e * tt * lzj, one_g * e * tt * lxj]
                J.append(row)
            return f, J

        theta, cost, status, _ = solve_trf(evaluate, np.array([t for _, _, t in rows]),
                                           lower, upper, max_nfev=300,
                                           evaluate_one=evaluate_one)
        for (r, k, _), th, c, st in zip(rows, theta, cost, status):
            if st == -3 or not np.all(np.isfinite(th)):
                continue
            if (r, k) not in best or c < best[(r, k)][0]:
                best[(r, k)] = (c, th)
    for r, (x, z, lx, lz, y, starts, n_ref, d_ref) in enumerate(problems):
        for k in range(len(y)):
            if (r, k) not in best and quiet:
                continue
            if (r, k) not in best:
                warnings.warn("trajectory law fit failed from every start", FitWarning,
                              stacklevel=4)
                out[r][k] = _FAILED
            else:
                out[r][k] = _law(best[(r, k)][1], lx, lz, y[k], n_ref, d_ref)
    return out


def _predict_and_jac(theta, lx, lz):
    """Predictions and Jacobians of many problems at once: ``theta`` (k, 6) or, with the
    transient term, (k, 9); ``lx`` and ``lz`` the logs of the scaled N and D, (k, m) or
    (m,)."""
    la, alpha, lb, beta, c, g = (theta[:, i:i + 1] for i in range(6))
    tn = np.exp(la - alpha * lx)
    td = np.exp(lb - beta * lz)
    if theta.shape[1] > 6:
        with np.errstate(over="ignore", under="ignore"):
            tt = np.exp(theta[:, 6:7] - theta[:, 7:8] * lz - theta[:, 8:9] * lx)
        e = np.exp(-tn - td - tt - c)
    else:
        e = np.exp(-tn - td - c)
    one_g = 1 - g
    cols = [-one_g * e * tn, one_g * e * tn * lx, -one_g * e * td,
            one_g * e * td * lz, -one_g * e, np.broadcast_to(1 - e, e.shape)]
    if theta.shape[1] > 6:
        cols += [-one_g * e * tt, one_g * e * tt * lz, one_g * e * tt * lx]
    return g + one_g * e, np.stack(cols, axis=2)


def _law(theta, lx, lz, y, n_ref, d_ref) -> TrajectoryLaw:
    la, alpha, lb, beta, c, g = (float(v) for v in theta[:6])
    lower, upper = _bounds(len(theta))
    tol = 1e-6 * (upper - lower)
    at_bound = tuple(
        nm for nm, v, lo, hi, t in zip(_NAMES + _NAMES_T, theta, lower, upper, tol)
        if v <= lo + t or v >= hi - t
    )
    extra = {}
    if len(theta) > 6:
        le, delta, gamma = (float(v) for v in theta[6:])
        extra = dict(E=math.exp(le + delta * math.log(d_ref) + gamma * math.log(n_ref)),
                     delta=delta, gamma=gamma)
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
        **extra,
    )
