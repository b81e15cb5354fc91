"""Many small bound-constrained least-squares problems solved at once.

A forecast fits hundreds of four-parameter laws to a handful of points each; one
``scipy.optimize.least_squares`` call per (curve, start) spends almost all of its time
in per-iteration Python overhead. :func:`solve_trf` runs the same algorithm as
``least_squares(method='trf', x_scale='jac', tr_solver='exact')`` with bounds (the
trust-region reflective method of Branch, Coleman and Li, with Moré's trust-region
subproblem solved through one SVD per iteration) on a whole batch of problems in
lock step: every iteration is a few numpy calls on stacked arrays, and each problem
keeps its own trust radius, Levenberg-Marquardt parameter, evaluation count and
termination. The last few problems of a batch, often the slowest (a law crawling along
a flat valley), are finished one at a time in plain Python floats, where a numpy call's
fixed cost would dominate. The steps, acceptance tests and termination tests are those
of scipy's implementation, so a problem follows the same path and ends at the same point
up to floating-point round-off (which a flat valley can amplify); that matters here
because the laws are often fitted to as many points as parameters, where many fits are
equally good and the path decides which one is returned.

The problems share their parameter bounds and the number of residuals; the caller
evaluates residuals and Jacobians for any subset of them (``evaluate``).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg.lapack import dgesdd as _gesdd

__all__ = ["TERMINATION_MESSAGES", "solve_trf"]

#: Status -> message, as ``least_squares`` reports them. ``-3`` is this module's own:
#: the start could not be used (non-finite residuals at the initial point, or a
#: degenerate reflected step), where ``least_squares`` raises ``ValueError``.
TERMINATION_MESSAGES = {
    -3: "The problem could not be started or continued (non-finite residuals at the "
        "initial point or a degenerate reflected step).",
    0: "The maximum number of function evaluations is exceeded.",
    1: "`gtol` termination condition is satisfied.",
    2: "`ftol` termination condition is satisfied.",
    3: "`xtol` termination condition is satisfied.",
    4: "Both `ftol` and `xtol` termination conditions are satisfied.",
}

_EPS = np.finfo(float).eps
_RUNNING = -99
_FAILED = -3


def _dot(a, b):
    """Row-wise dot products of two (k, n) arrays."""
    return (a * b).sum(axis=1)


def _norm(a):
    return np.sqrt(_dot(a, a))


def _matvec(M, v):
    """(k, m, n) @ (k, n) -> (k, m)."""
    return (M @ v[:, :, None])[:, :, 0]


def _strictly_feasible(x, lb, ub, rstep):
    """Shift points off the bounds, as ``least_squares`` does before and during TRF."""
    x = x.copy()
    if rstep == 0:
        lower, upper = x <= lb, x >= ub
        lb_b, ub_b = np.broadcast_to(lb, x.shape), np.broadcast_to(ub, x.shape)
        x[lower] = np.nextafter(lb_b[lower], ub_b[lower])
        x[upper] = np.nextafter(ub_b[upper], lb_b[upper])
    else:
        lower_dist, upper_dist = x - lb, ub - x
        upper = upper_dist <= np.minimum(lower_dist, rstep * np.maximum(1, np.abs(ub)))
        lower = ~upper & (lower_dist <= np.minimum(upper_dist, rstep * np.maximum(1, np.abs(lb))))
        shift_lb = np.broadcast_to(lb + rstep * np.maximum(1, np.abs(lb)), x.shape)
        shift_ub = np.broadcast_to(ub - rstep * np.maximum(1, np.abs(ub)), x.shape)
        x[lower] = shift_lb[lower]
        x[upper] = shift_ub[upper]
    tight = (x < lb) | (x > ub)
    if tight.any():
        x[tight] = np.broadcast_to(0.5 * (lb + ub), x.shape)[tight]
    return x


def _scaling_vector(x, g, lb, ub):
    """Coleman-Li scaling vector ``v`` and its derivative ``dv`` (finite bounds)."""
    v = np.ones_like(x)
    dv = np.zeros_like(x)
    neg = g < 0
    v = np.where(neg, ub - x, v)
    dv[neg] = -1
    pos = g > 0
    v = np.where(pos, x - lb, v)
    dv[pos] = 1
    return v, dv


def _step_to_bound(x, s, lb, ub):
    """Smallest positive step along ``s`` that reaches a bound, and which bounds it hits."""
    steps = np.where(s != 0, np.maximum((lb - x) / s, (ub - x) / s), np.inf)
    min_step = steps.min(axis=1)
    hits = (steps == min_step[:, None]) * np.sign(s).astype(int)
    return min_step, hits


def _quadratic(J, g, s, diag):
    """``0.5 s'(J'J + diag)s + g's`` per row."""
    Js = _matvec(J, s)
    return 0.5 * (_dot(Js, Js) + _dot(s * diag, s)) + _dot(s, g)


def _minimize_1d(a, b, lo, hi, c):
    """Minimum of ``a t^2 + b t + c`` over ``[lo, hi]``: (t, value), first of ties in
    the order lower end, upper end, interior extremum."""
    ext = -0.5 * b / a
    interior = (a != 0) & (lo < ext) & (ext < hi)
    t = np.stack([lo, hi, np.where(interior, ext, lo)], axis=1)
    y = t * (a[:, None] * t + b[:, None]) + c[:, None]
    y[~interior, 2] = np.inf
    best = np.argmin(y, axis=1)
    rows = np.arange(len(a))
    return t[rows, best], y[rows, best]


def _trust_region_step(m, uf, s, V, Delta, alpha0, rtol=0.01, max_iter=10):
    """Moré's trust-region subproblem through the SVD, for every row at once.

    Returns the step in the scaled variables and the Levenberg-Marquardt parameter.
    """
    k, n = uf.shape
    suf = s * uf
    full_rank = (s[:, -1] > _EPS * m * s[:, 0]) if m >= n else np.zeros(k, bool)
    gn = -_matvec(V, uf / s)
    gauss_newton = full_rank & (_norm(np.where(full_rank[:, None], gn, 0.0)) <= Delta)
    if gauss_newton.all():
        return gn, np.zeros(k)

    def phi_and_derivative(alpha):
        denom = s**2 + alpha[:, None]
        p_norm = _norm(suf / denom)
        return p_norm - Delta, -np.sum(suf**2 / denom**3, axis=1) / p_norm

    upper = _norm(suf) / Delta
    if full_rank.any():
        phi0, dphi0 = phi_and_derivative(np.zeros(k))
        lower = np.where(full_rank, -phi0 / dphi0, 0.0)
    else:
        lower = np.zeros(k)
    restart = ~full_rank & (alpha0 == 0)
    alpha = np.where(restart, np.maximum(0.001 * upper, np.sqrt(lower * upper)), alpha0)
    active = ~gauss_newton
    for _ in range(max_iter):
        out = (alpha < lower) | (alpha > upper)
        alpha = np.where(active & out, np.maximum(0.001 * upper, np.sqrt(lower * upper)), alpha)
        phi, dphi = phi_and_derivative(alpha)
        upper = np.where(active & (phi < 0), alpha, upper)
        ratio = phi / dphi
        lower = np.where(active, np.maximum(lower, alpha - ratio), lower)
        alpha = np.where(active, alpha - (phi + Delta) * ratio / Delta, alpha)
        active = active & ~(np.abs(phi) < rtol * Delta)
        if not active.any():
            break
    p = -_matvec(V, suf / (s**2 + alpha[:, None]))
    p = p * (Delta / _norm(p))[:, None]
    p = np.where(gauss_newton[:, None], gn, p)
    return p, np.where(gauss_newton, 0.0, alpha)


def _select_step(x, J_h, diag_h, g_h, p, p_h, d, Delta, lb, ub, theta):
    """The trust-region reflective choice among the Newton step (pulled back into the
    interior), its reflection off the bound it crosses, and the scaled gradient step.

    Returns (step, step in scaled variables, predicted reduction, usable): ``usable`` is
    False where ``least_squares`` would raise (a degenerate reflection).
    """
    k = len(x)
    step, step_h = p.copy(), p_h.copy()
    inside = np.all((x + p >= lb) & (x + p <= ub), axis=1)
    value = _quadratic(J_h, g_h, p_h, diag_h)
    usable = np.ones(k, bool)
    if inside.all():
        return step, step_h, -value, usable
    o = ~inside
    xo, po, pho, do, Do, tho = x[o], p[o], p_h[o], d[o], Delta[o], theta[o]
    Jo, go, diago = J_h[o], g_h[o], diag_h[o]
    p_stride, hits = _step_to_bound(xo, po, lb, ub)
    r_h = np.where(hits != 0, -pho, pho)
    r = do * r_h
    po = po * p_stride[:, None]
    pho = pho * p_stride[:, None]
    x_on_bound = xo + po
    # the far intersection of the reflected ray with the trust region
    a = _dot(r_h, r_h)
    b = _dot(pho, r_h)
    c = _dot(pho, pho) - Do**2
    ok = (a != 0) & ~(c > 0)
    disc = np.sqrt(b * b - a * c)
    q = -(b + np.copysign(disc, b))
    to_tr = np.maximum(q / a, c / q)
    to_bound, _ = _step_to_bound(x_on_bound, r, lb, ub)
    r_stride = np.minimum(to_bound, to_tr)
    positive = r_stride > 0
    r_lo = np.where(positive, (1 - tho) * p_stride / r_stride, 0.0)
    r_hi = np.where(positive, np.where(r_stride == to_bound, tho * to_bound, to_tr), -1.0)
    reflect = r_lo <= r_hi
    # 1D quadratic along the reflected direction from the point on the bound
    v = _matvec(Jo, r_h)
    u = _matvec(Jo, pho)
    qa = 0.5 * (_dot(v, v) + _dot(r_h * diago, r_h))
    qb = _dot(go, r_h) + _dot(u, v) + _dot(pho * diago, r_h)
    qc = 0.5 * _dot(u, u) + _dot(go, pho) + 0.5 * _dot(pho * diago, pho)
    t_r, r_value = _minimize_1d(qa, qb, r_lo, r_hi, qc)
    r_value = np.where(reflect, r_value, np.inf)
    r_h = r_h * t_r[:, None] + pho
    r = r_h * do
    # the Newton step pulled back strictly inside
    po = po * tho[:, None]
    pho = pho * tho[:, None]
    p_value = _quadratic(Jo, go, pho, diago)
    # the scaled gradient step
    ag_h = -go
    ag = do * ag_h
    ag_to_tr = Do / _norm(ag_h)
    ag_to_bound, _ = _step_to_bound(xo, ag, lb, ub)
    ag_stride = np.where(ag_to_bound < ag_to_tr, tho * ag_to_bound, ag_to_tr)
    w = _matvec(Jo, ag_h)
    ga = 0.5 * (_dot(w, w) + _dot(ag_h * diago, ag_h))
    gb = _dot(go, ag_h)
    t_ag, ag_value = _minimize_1d(ga, gb, np.zeros(len(ga)), ag_stride, np.zeros(len(ga)))
    ag_h = ag_h * t_ag[:, None]
    ag = ag * t_ag[:, None]

    take_p = (p_value < r_value) & (p_value < ag_value)
    take_r = ~take_p & (r_value < p_value) & (r_value < ag_value)
    out_step = np.where(take_p[:, None], po, np.where(take_r[:, None], r, ag))
    out_step_h = np.where(take_p[:, None], pho, np.where(take_r[:, None], r_h, ag_h))
    out_value = np.where(take_p, p_value, np.where(take_r, r_value, ag_value))
    # least_squares raises where the reflected ray does not meet the trust region
    usable[o] = ok
    step[o], step_h[o] = out_step, out_step_h
    value = value.copy()
    value[o] = out_value
    return step, step_h, -value, usable


def solve_trf(evaluate, x0, lb, ub, *, ftol=1e-8, xtol=1e-8, gtol=1e-8, max_nfev=400,
              evaluate_one=None, tail=6):
    """Minimise ``0.5 * ||f_i(x_i)||^2`` for every problem ``i`` within ``[lb, ub]``.

    Parameters
    ----------
    evaluate : callable
        ``evaluate(index, X) -> (F, J)``: residuals ``(k, m)`` and Jacobians
        ``(k, m, n)`` of the problems ``index`` (integer array of length ``k``) at the
        parameters ``X`` (``(k, n)``).
    x0 : ndarray of shape (n_problems, n)
        Starting points, within the bounds.
    lb, ub : ndarray of shape (n,)
        Finite bounds, shared by every problem.
    ftol, xtol, gtol : float, default 1e-8
        The termination tolerances of ``least_squares``.
    max_nfev : int, default 400
        Residual evaluations per problem, the initial one included.
    evaluate_one : callable, optional
        ``evaluate_one(index, x) -> (f, J)`` for one problem with plain floats (``x`` a
        list, ``f`` a list of ``m``, ``J`` a list of ``m`` rows). When given, the last
        ``tail`` running problems are finished one at a time in plain Python.
    tail : int, default 6
        How many running problems are left to ``evaluate_one``.

    Returns
    -------
    x : ndarray of shape (n_problems, n)
    cost : ndarray of shape (n_problems,)
        ``0.5 * ||f||^2`` at ``x`` (NaN where the problem failed).
    status : ndarray of int
        A key of :data:`TERMINATION_MESSAGES`.
    nfev : ndarray of int
    """
    lb, ub = np.asarray(lb, float), np.asarray(ub, float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return _solve(evaluate, np.array(x0, dtype=float, ndmin=2), lb, ub,
                      ftol, xtol, gtol, max_nfev, evaluate_one, tail)


class _Batch:
    """The state of the problems still running, compacted when some stop."""

    _FIELDS = ("idx", "x", "f", "J", "cost", "g", "scale_inv", "Delta", "alpha", "nfev",
               "fresh", "d", "diag_h", "g_h", "J_h", "uf", "sv", "V", "theta")

    def keep(self, mask):
        for name in self._FIELDS:
            setattr(self, name, getattr(self, name)[mask])


def _solve(evaluate, x0, lb, ub, ftol, xtol, gtol, max_nfev, evaluate_one, tail):
    x = _strictly_feasible(x0, lb, ub, rstep=1e-10)
    P, n = x.shape
    f, J = evaluate(np.arange(P), x)
    m = f.shape[1]
    out_x, out_cost = x.copy(), np.full(P, np.nan)
    out_status, out_nfev = np.full(P, _FAILED), np.ones(P, dtype=int)

    b = _Batch()
    good = np.all(np.isfinite(f), axis=1)  # least_squares refuses such a start
    b.idx, b.x, b.f, b.J = np.flatnonzero(good), x[good], f[good], J[good]
    k = len(b.idx)
    b.cost = 0.5 * _dot(b.f, b.f)
    b.g = (np.swapaxes(b.J, 1, 2) @ b.f[:, :, None])[:, :, 0]
    b.scale_inv = np.sqrt(np.sum(b.J**2, axis=1))
    b.scale_inv[b.scale_inv == 0] = 1
    v, dv = _scaling_vector(b.x, b.g, lb, ub)
    v = np.where(dv != 0, v * b.scale_inv, v)
    b.Delta = _norm(b.x * b.scale_inv / v**0.5)
    b.Delta[b.Delta == 0] = 1.0
    b.alpha = np.zeros(k)
    b.nfev = np.ones(k, dtype=int)
    b.fresh = np.ones(k, bool)  # at the top of scipy's outer loop: rebuild the model
    b.d, b.diag_h, b.g_h, b.uf, b.sv = (np.zeros((k, n)) for _ in range(5))
    b.J_h, b.V, b.theta = np.zeros((k, m, n)), np.zeros((k, n, n)), np.zeros(k)
    eye = np.eye(n)

    def finish(mask, status):
        i = b.idx[mask]
        out_x[i], out_cost[i], out_status[i], out_nfev[i] = (
            b.x[mask], b.cost[mask], status, b.nfev[mask])
        b.keep(~mask)

    while len(b.idx):
        if evaluate_one is not None and len(b.idx) <= tail:
            lb_l, ub_l = lb.tolist(), ub.tolist()
            for j, i in enumerate(b.idx):
                state = {name: getattr(b, name)[j].tolist() for name in _Batch._FIELDS[1:]}
                state["V"] = b.V[j].tolist()
                xi, ci, si, ni = _s_solve(state, lambda x, i=i: evaluate_one(i, x), lb_l, ub_l,
                                          m, ftol, xtol, gtol, max_nfev)
                out_x[i], out_cost[i], out_status[i], out_nfev[i] = xi, ci, si, ni
            break
        # ---- the top of the outer loop for the problems that moved: termination
        # tests, then the scaled quadratic model and its SVD
        if b.fresh.any():
            t = b.fresh
            v, dv = _scaling_vector(b.x[t], b.g[t], lb, ub)
            g_norm = np.max(np.abs(b.g[t] * v), axis=1)
            stop = np.zeros(len(b.idx), int)
            stop[t] = np.where(g_norm < gtol, 1, np.where(b.nfev[t] == max_nfev, 0, _RUNNING))
            ended = t & (stop != _RUNNING)
            if ended.any():
                finish(ended, stop[ended])
                keep = ~ended[t]
                t = b.fresh
                v, dv, g_norm = v[keep], dv[keep], g_norm[keep]
                if not len(b.idx):
                    break
            if t.any():
                gs, si, sc = b.g[t], b.scale_inv[t], 1 / b.scale_inv[t]
                v = np.where(dv != 0, v * si, v)
                d = v**0.5 * sc
                diag_h = gs * dv * sc
                Jh = b.J[t] * d[:, None, :]
                aug = np.concatenate([Jh, np.sqrt(diag_h)[:, :, None] * eye], axis=1)
                U, sv, Vt = np.linalg.svd(aug, full_matrices=False)
                b.d[t], b.diag_h[t], b.g_h[t], b.J_h[t] = d, diag_h, d * gs, Jh
                b.sv[t], b.V[t] = sv, np.swapaxes(Vt, 1, 2)
                b.uf[t] = (np.swapaxes(U[:, :m, :], 1, 2) @ b.f[t][:, :, None])[:, :, 0]
                b.theta[t] = np.maximum(0.995, 1 - g_norm)
                b.fresh[t] = False
        # ---- one trial step of scipy's inner loop for every running problem
        p_h, alpha = _trust_region_step(m, b.uf, b.sv, b.V, b.Delta, b.alpha)
        p = b.d * p_h
        step, step_h, predicted, usable = _select_step(
            b.x, b.J_h, b.diag_h, b.g_h, p, p_h, b.d, b.Delta, lb, ub, b.theta)
        if not usable.all():  # least_squares raises here: the start is discarded
            i = b.idx[~usable]
            out_status[i], out_nfev[i] = _FAILED, b.nfev[~usable]
            b.keep(usable)
            p_h, alpha, step, step_h, predicted = (
                a[usable] for a in (p_h, alpha, step, step_h, predicted))
            if not len(b.idx):
                break
        b.alpha = alpha
        x_new = _strictly_feasible(b.x + step, lb, ub, rstep=0)
        f_new, J_new = evaluate(b.idx, x_new)
        b.nfev += 1
        step_h_norm = _norm(step_h)
        finite = np.all(np.isfinite(f_new), axis=1)
        cost_new = 0.5 * _dot(f_new, f_new)
        red = b.cost - cost_new
        ratio = np.where(predicted > 0, red / predicted,
                         np.where((predicted == 0) & (red == 0), 1.0, 0.0))
        Delta = b.Delta
        D_new = np.where(ratio < 0.25, 0.25 * step_h_norm,
                         np.where((ratio > 0.75) & (step_h_norm > 0.95 * Delta),
                                  2.0 * Delta, Delta))
        ftol_ok = (red < ftol * b.cost) & (ratio > 0.25)
        xtol_ok = _norm(step) < xtol * (xtol + _norm(b.x))
        term = np.where(ftol_ok & xtol_ok, 4, np.where(ftol_ok, 2, np.where(xtol_ok, 3, 0)))
        term[~finite] = 0
        cont = finite & (term == 0)
        b.alpha = np.where(cont, alpha * Delta / D_new, alpha)
        # a non-finite trial only shrinks the radius
        b.Delta = np.where(finite, np.where(cont, D_new, Delta), 0.25 * step_h_norm)
        accept = finite & (red > 0)
        if accept.any():
            b.x[accept], b.f[accept], b.cost[accept], b.J[accept] = (
                x_new[accept], f_new[accept], cost_new[accept], J_new[accept])
            Ja = J_new[accept]
            b.g[accept] = (np.swapaxes(Ja, 1, 2) @ f_new[accept][:, :, None])[:, :, 0]
            b.scale_inv[accept] = np.maximum(np.sqrt(np.sum(Ja**2, axis=1)),
                                             b.scale_inv[accept])
        # leave the inner loop: a reduction, a termination, or the evaluations used up
        b.fresh = accept | (term != 0) | (b.nfev >= max_nfev)
        ended = term != 0
        if ended.any():
            # scipy passes the top of its loop once more: its gtol test on the accepted
            # point may restate why the problem stopped
            v, _ = _scaling_vector(b.x[ended], b.g[ended], lb, ub)
            g_norm = np.max(np.abs(b.g[ended] * v), axis=1)
            finish(ended, np.where(g_norm < gtol, 1, term[ended]))
    return out_x, out_cost, out_status, out_nfev


# ------------------------------------------------------------------ one problem at a time
# The last problems of a batch often need hundreds of iterations while the rest have
# stopped (a law crawling along a flat valley). A numpy call costs microseconds whatever
# the batch size, so for them the same steps in plain Python floats are an order of
# magnitude cheaper per iteration.

def _s_dot(a, b):
    return sum([u * w for u, w in zip(a, b)])


def _s_norm(a):
    return math.sqrt(sum([u * u for u in a]))


def _s_matvec(M, v):
    return [sum([u * w for u, w in zip(row, v)]) for row in M]


def _s_scaling(x, g, lb, ub):
    v, dv = [], []
    for xi, gi, lo, hi in zip(x, g, lb, ub):
        if gi > 0:
            v.append(xi - lo)
            dv.append(1.0)
        elif gi < 0:
            v.append(hi - xi)
            dv.append(-1.0)
        else:
            v.append(1.0)
            dv.append(0.0)
    return v, dv


def _s_step_to_bound(x, s, lb, ub):
    steps = [max((lo - xi) / si, (hi - xi) / si) if si != 0 else math.inf
             for xi, si, lo, hi in zip(x, s, lb, ub)]
    best = min(steps)
    return best, [(st == best) * ((si > 0) - (si < 0)) for st, si in zip(steps, s)]


def _s_quadratic(J, g, s, diag):
    Js = _s_matvec(J, s)
    return 0.5 * (_s_dot(Js, Js) + _s_dot([u * w for u, w in zip(s, diag)], s)) + _s_dot(s, g)


def _s_minimize_1d(a, b, lo, hi, c):
    t = [lo, hi]
    if a != 0:
        ext = -0.5 * b / a
        if lo < ext < hi:
            t.append(ext)
    y = [ti * (a * ti + b) + c for ti in t]
    i = y.index(min(y))
    return t[i], y[i]


def _s_trust_region_step(m, uf, s, V, Delta, alpha0, rtol=0.01, max_iter=10):
    n = len(uf)
    suf = [si * ui for si, ui in zip(s, uf)]
    full_rank = m >= n and s[-1] > _EPS * m * s[0]
    if full_rank:
        p = [-u for u in _s_matvec(V, [ui / si for ui, si in zip(uf, s)])]
        if _s_norm(p) <= Delta:
            return p, 0.0

    def phi_and_derivative(alpha):
        denom = [si * si + alpha for si in s]
        p_norm = _s_norm([u / dn for u, dn in zip(suf, denom)])
        return p_norm - Delta, -sum([u * u / dn**3 for u, dn in zip(suf, denom)]) / p_norm

    upper = _s_norm(suf) / Delta
    if full_rank:
        phi, dphi = phi_and_derivative(0.0)
        lower = -phi / dphi
    else:
        lower = 0.0
    if not full_rank and alpha0 == 0:
        alpha = max(0.001 * upper, math.sqrt(lower * upper))
    else:
        alpha = alpha0
    for _ in range(max_iter):
        if alpha < lower or alpha > upper:
            alpha = max(0.001 * upper, math.sqrt(lower * upper))
        phi, dphi = phi_and_derivative(alpha)
        if phi < 0:
            upper = alpha
        ratio = phi / dphi
        lower = max(lower, alpha - ratio)
        alpha -= (phi + Delta) * ratio / Delta
        if abs(phi) < rtol * Delta:
            break
    p = [-u for u in _s_matvec(V, [u / (si * si + alpha) for u, si in zip(suf, s)])]
    scale = Delta / _s_norm(p)
    return [u * scale for u in p], alpha


def _s_select_step(x, J_h, diag_h, g_h, p, p_h, d, Delta, lb, ub, theta):
    """As :func:`_select_step` for one problem; ``None`` where it would raise."""
    if all(lo <= xi + pi <= hi for xi, pi, lo, hi in zip(x, p, lb, ub)):
        return p, p_h, -_s_quadratic(J_h, g_h, p_h, diag_h)
    p_stride, hits = _s_step_to_bound(x, p, lb, ub)
    r_h = [-u if h else u for u, h in zip(p_h, hits)]
    r = [di * u for di, u in zip(d, r_h)]
    p = [u * p_stride for u in p]
    p_h = [u * p_stride for u in p_h]
    x_on_bound = [xi + u for xi, u in zip(x, p)]
    a, b = _s_dot(r_h, r_h), _s_dot(p_h, r_h)
    c = _s_dot(p_h, p_h) - Delta**2
    if a == 0 or c > 0:
        return None
    disc = math.sqrt(b * b - a * c)
    q = -(b + math.copysign(disc, b))
    to_tr = max(q / a, c / q)
    to_bound, _ = _s_step_to_bound(x_on_bound, r, lb, ub)
    r_stride = min(to_bound, to_tr)
    if r_stride > 0:
        r_lo = (1 - theta) * p_stride / r_stride
        r_hi = theta * to_bound if r_stride == to_bound else to_tr
    else:
        r_lo, r_hi = 0.0, -1.0
    if r_lo <= r_hi:
        v, u = _s_matvec(J_h, r_h), _s_matvec(J_h, p_h)
        rd = [w * dg for w, dg in zip(r_h, diag_h)]
        pd = [w * dg for w, dg in zip(p_h, diag_h)]
        qa = 0.5 * (_s_dot(v, v) + _s_dot(rd, r_h))
        qb = _s_dot(g_h, r_h) + _s_dot(u, v) + _s_dot(pd, r_h)
        qc = 0.5 * _s_dot(u, u) + _s_dot(g_h, p_h) + 0.5 * _s_dot(pd, p_h)
        t_r, r_value = _s_minimize_1d(qa, qb, r_lo, r_hi, qc)
        r_h = [w * t_r + u for w, u in zip(r_h, p_h)]
        r = [w * di for w, di in zip(r_h, d)]
    else:
        r_value = math.inf
    p = [u * theta for u in p]
    p_h = [u * theta for u in p_h]
    p_value = _s_quadratic(J_h, g_h, p_h, diag_h)
    ag_h = [-u for u in g_h]
    ag = [di * u for di, u in zip(d, ag_h)]
    ag_norm = _s_norm(ag_h)
    ag_to_tr = Delta / ag_norm if ag_norm else math.inf
    ag_to_bound, _ = _s_step_to_bound(x, ag, lb, ub)
    ag_stride = theta * ag_to_bound if ag_to_bound < ag_to_tr else ag_to_tr
    w = _s_matvec(J_h, ag_h)
    ga = 0.5 * (_s_dot(w, w) + _s_dot([u * dg for u, dg in zip(ag_h, diag_h)], ag_h))
    t_ag, ag_value = _s_minimize_1d(ga, _s_dot(g_h, ag_h), 0.0, ag_stride, 0.0)
    ag_h = [u * t_ag for u in ag_h]
    ag = [u * t_ag for u in ag]
    if p_value < r_value and p_value < ag_value:
        return p, p_h, -p_value
    if r_value < p_value and r_value < ag_value:
        return r, r_h, -r_value
    return ag, ag_h, -ag_value


def _s_feasible(x, lb, ub):
    """``x`` moved strictly inside the bounds by one ulp where it touches them."""
    out = []
    for xi, lo, hi in zip(x, lb, ub):
        if xi <= lo:
            xi = math.nextafter(lo, hi)
        elif xi >= hi:
            xi = math.nextafter(hi, lo)
        if xi < lo or xi > hi:
            xi = 0.5 * (lo + hi)
        out.append(xi)
    return out


def _s_solve(st, evaluate_one, lb, ub, m, ftol, xtol, gtol, max_nfev):
    """Finish one problem from its batch state ``st`` (a dict of plain floats and
    lists); returns (x, cost, status, nfev)."""
    x, f, J, cost, g = st["x"], st["f"], st["J"], st["cost"], st["g"]
    scale_inv, Delta, alpha, nfev, fresh = (st["scale_inv"], st["Delta"], st["alpha"],
                                            st["nfev"], st["fresh"])
    d, diag_h, g_h, J_h = st["d"], st["diag_h"], st["g_h"], st["J_h"]
    uf, sv, V, theta = st["uf"], st["sv"], st["V"], st["theta"]
    n = len(x)

    def g_norm_at(x, g):
        v, _ = _s_scaling(x, g, lb, ub)
        return max(abs(gi * vi) for gi, vi in zip(g, v))

    while True:
        if fresh:
            v, dv = _s_scaling(x, g, lb, ub)
            g_norm = max(abs(gi * vi) for gi, vi in zip(g, v))
            if g_norm < gtol:
                return x, cost, 1, nfev
            if nfev == max_nfev:
                return x, cost, 0, nfev
            v = [vi * si if dvi != 0 else vi for vi, dvi, si in zip(v, dv, scale_inv)]
            scale = [1 / si for si in scale_inv]
            d = [math.sqrt(vi) * sc for vi, sc in zip(v, scale)]
            diag_h = [gi * dvi * sc for gi, dvi, sc in zip(g, dv, scale)]
            g_h = [di * gi for di, gi in zip(d, g)]
            J_h = [[u * di for u, di in zip(row, d)] for row in J]
            aug = np.array(J_h + [[math.sqrt(dh) if i == j else 0.0 for j in range(n)]
                                  for i, dh in enumerate(diag_h)])
            # LAPACK's divide-and-conquer SVD, as scipy.linalg.svd calls it, without
            # the wrapper's checks (a third of numpy's time on a 13 x 4 matrix)
            U, s_, Vt, info = _gesdd(aug, compute_uv=1, full_matrices=0)
            if info != 0:  # least_squares raises LinAlgError: the start is discarded
                return x, math.nan, _FAILED, nfev
            sv, V = s_.tolist(), Vt.T.tolist()
            uf = (U[:m].T @ np.asarray(f)).tolist()
            theta = max(0.995, 1 - g_norm)
            fresh = False
        p_h, alpha = _s_trust_region_step(m, uf, sv, V, Delta, alpha)
        p = [di * u for di, u in zip(d, p_h)]
        chosen = _s_select_step(x, J_h, diag_h, g_h, p, p_h, d, Delta, lb, ub, theta)
        if chosen is None:
            return x, math.nan, _FAILED, nfev
        step, step_h, predicted = chosen
        x_new = _s_feasible([xi + si for xi, si in zip(x, step)], lb, ub)
        try:
            f_new, J_new = evaluate_one(x_new)
        except OverflowError:  # plain floats raise where numpy gives inf: the same step
            f_new, J_new = [math.inf], None
        nfev += 1
        step_h_norm = _s_norm(step_h)
        if not all(map(math.isfinite, f_new)):
            Delta = 0.25 * step_h_norm
            fresh = nfev >= max_nfev
            continue
        cost_new = 0.5 * _s_dot(f_new, f_new)
        red = cost - cost_new
        if predicted > 0:
            ratio = red / predicted
        else:
            ratio = 1.0 if predicted == red == 0 else 0.0
        if ratio < 0.25:
            D_new = 0.25 * step_h_norm
        elif ratio > 0.75 and step_h_norm > 0.95 * Delta:
            D_new = 2.0 * Delta
        else:
            D_new = Delta
        ftol_ok = red < ftol * cost and ratio > 0.25
        xtol_ok = _s_norm(step) < xtol * (xtol + _s_norm(x))
        term = 4 if ftol_ok and xtol_ok else 2 if ftol_ok else 3 if xtol_ok else 0
        if not term:
            alpha *= Delta / D_new
            Delta = D_new
        if red > 0:
            x, f, cost, J = x_new, f_new, cost_new, J_new
            g = [sum([J[r][c] * f[r] for r in range(m)]) for c in range(n)]
            scale_inv = [max(math.sqrt(sum([J[r][c] * J[r][c] for r in range(m)])), si)
                         for c, si in enumerate(scale_inv)]
        if term:
            return x, cost, 1 if g_norm_at(x, g) < gtol else term, nfev
        fresh = red > 0 or nfev >= max_nfev
