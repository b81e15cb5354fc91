"""The broken neural scaling law (BNSL) baseline: a BNSL of the full-set error."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cod_monitor._validation import check_int
from cod_monitor._docstrings import fill_doc
from cod_monitor.exceptions import FitFailedError, InputError
from cod_monitor.methods.base import (
    COMMON_ATTRIBUTES,
    COMMON_PARAMETERS,
    EXP_CLIP,
    LadderBaseline,
    affine_fit,
    at_bound,
    geomean,
    refine,
)

__all__ = ["BNSL", "broken_power_law"]


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
        raise InputError(
            f"`c`, `d` and `f` should be 1D of one length: {c.shape = }, {d.shape = }, {f.shape = }"
        )
    logt = _bnsl_logterm(np.log(x).reshape(-1), c0, c, np.log(d), np.log(f))
    return a + b * np.exp(logt).reshape(x.shape)


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
    return np.clip(out, -EXP_CLIP, EXP_CLIP)


def _bnsl_eval(theta, logx, n_breaks):
    """BNSL at ``logx`` for theta = (a, log b, c0, [c_i, log d_i, log f_i] * n)."""
    theta = np.asarray(theta, dtype=float)
    logx = np.asarray(logx, dtype=float)
    br = theta[3:].reshape(n_breaks, 3)
    logt = _bnsl_logterm(logx.reshape(-1), theta[2], br[:, 0], br[:, 1], br[:, 2])
    return theta[0] + np.exp(np.clip(theta[1] + logt, -EXP_CLIP, EXP_CLIP)).reshape(logx.shape)


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


@fill_doc(common_parameters=COMMON_PARAMETERS, common_attributes=COMMON_ATTRIBUTES)
class BNSL(LadderBaseline):
    """Broken neural scaling law of the full-set error ``1 - accuracy``.

    Parameters
    ----------
    n_breaks : int, default 1
        Number of breaks ``n`` (0 gives a plain power law plus constant). At most 3.
    n_refine : int, default 3
        Best grid points refined by bounded least squares.
    {common_parameters}

    Attributes
    ----------
    {common_attributes}
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

    def __init__(self, *, n_breaks: int = 1, n_refine: int = 3, anchors=None, compute_unit=None,
                 checkpoints="final", smooth_checkpoints=False, n_bootstrap=200,
                 random_state=0, interval="bootstrap", n_backtest=3):
        self._store_params(locals())

    def _validate_own(self):
        owner = type(self).__name__
        check_int(owner, "n_breaks", self.n_breaks, 0, 3)
        check_int(owner, "n_refine", self.n_refine, 1)

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
        a, b, sse = affine_fit(np.exp(logt), err, (0.0, 1.0))
        best = np.argsort(sse)[: int(self.n_refine)]
        logb = np.log(np.maximum(b[best], 1e-8))
        return [
            np.concatenate([[a[i], lb, c0[i, 0]], br[i].ravel()]) for i, lb in zip(best, logb)
        ]

    def _fit_curve(self, compute, accuracy, aux, init):
        nb = int(self.n_breaks)
        c_ref = geomean(compute)
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

        res = refine(resid, starts, lower, upper, max_nfev=400 if init is None else 100)
        if res is None:
            raise FitFailedError("BNSL: the least-squares refinement failed from every start")
        names = ["a", "log_b", "c0"] + [
            f"{p}_{i + 1}" for i in range(nb) for p in ("c", "log_d", "log_f")
        ]
        return _BNSLFit(
            theta=res.x, c_ref=c_ref, n_breaks=nb,
            rmse=float(np.sqrt(np.mean(resid(res.x) ** 2))),
            at_bound=tuple(at_bound(names, res.x, lower, upper)),
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
        return {"n_breaks": int(self.n_breaks), **self.params_}
