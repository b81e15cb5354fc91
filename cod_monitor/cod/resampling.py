"""Resampling and interval widening shared by COD and the baselines.

Every forecaster of :mod:`cod_monitor.methods` builds its interval the same two ways:

- a bootstrap over evaluation samples (rows) and ladder points (columns), refitting its
  curve on each replicate: :func:`ladder_bootstrap` draws the indices;
- optionally (``interval='backtest'``), that bootstrap interval widened by the spread of
  the errors the method makes when it forecasts the ladder's own largest runs:
  :func:`backtest_halfwidth` turns those errors into a half-width at the target's
  extrapolation distance and :func:`widen_interval` combines the two.

Keeping one copy of each makes the intervals of COD and of the baselines comparable by
construction: they differ only by the curve refitted.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from scipy.stats import t as student_t

__all__ = ["ladder_bootstrap", "backtest_halfwidth", "widen_interval"]


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
        From :func:`cod_monitor.cod.forecaster.backtest_forecaster`: each has ``residual``
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
    return student_t.ppf((1 + level) / 2, df=len(backtests)) * sigma


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
