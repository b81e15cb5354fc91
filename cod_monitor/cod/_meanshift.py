"""Numeric kernels of the difficulty clusterers (private).

A vectorised flat-kernel MeanShift that reproduces scikit-learn's
``MeanShift(bandwidth=R, bin_seeding=True)`` on distinct rows weighted by their
multiplicity, Algorithm 1's loop around any clusterer (:func:`filtered_rounds`), COD's
bandwidth rule with its shortcut for large inputs (:func:`resolve_bandwidth`), and the
label conventions every clusterer shares (:func:`order_clusters`).
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy.spatial import cKDTree

from cod_monitor._estimator import check_random_state
from cod_monitor._threads import one_blas_thread
from cod_monitor.exceptions import InputError

__all__ = [
    "check_pass_rates",
    "distinct_rows",
    "flat_mean_shift",
    "filtered_rounds",
    "nearest",
    "order_clusters",
    "outside",
    "resolve_bandwidth",
]


# sklearn MeanShift's defaults, reproduced by flat_mean_shift.
_MAX_ITER = 300
_STOP_THRESH = 1e-3  # times the bandwidth

# Seeds moved together: each block meets the slab of rows its means can reach.
_SEED_BLOCK = 64
# Rows met by one block of seeds at a time: the matrices stay small enough to be cheap.
_PIECE_ROWS = 8192
# Relative rounding bound of the squared distances of _Windows, per dtype: pairs this
# close to R^2 (times the magnitudes involved) are recomputed exactly.
_TOL = {np.float32: 32 * 2.0**-23, np.float64: 32 * 2.0**-52}
# Largest m * n * k of one matrix product in ``_matmul``.  OpenBLAS runs products above
# ~2**18 on all threads; these are too small to gain from it and, when another process
# holds a core, every such call stalls for milliseconds.  Splitting keeps them
# single-threaded.  The larger products of the climb and the bandwidth estimate run
# under one BLAS thread (``one_blas_thread``) for the same reason.
_GEMM_SIZE = 1 << 18

# Bandwidth shortcut: above this many rows the exact k-th-neighbour estimate (quadratic)
# is only computed when a cheap estimate cannot show that the cap U binds.
_SHORTCUT_MIN_ROWS = 2000
_SHORTCUT_CELLS = 48  # most populated grid cells whose proxy is computed exactly
_SHORTCUT_QUERIES = 128  # sampled rows whose exact k-th-neighbour distance is computed
_SHORTCUT_Z = 6.0  # standard errors the estimate must clear the cap by
_SHORTCUT_MARGIN = 0.01  # ... plus this relative margin
# Exact k-th-neighbour distances: a systematic subsample bounds each point's distance by
# its order statistic this many standard deviations past the rank (verified after).
_KTH_Z = 4.0
_KTH_STEP = 16  # largest subsample step
_KTH_BRACKET_Z = 2.5  # ... and the bracket of the k-th value (a miss costs one row)
_KTH_BRACKET_MIN = 4096  # shortest row worth a Python loop over the rows to bracket
_KTH_BLOCK = 32  # points per block


def check_pass_rates(X):
    """Validate a difficulty matrix: 2D, non-empty, finite, within [0, 1]."""
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
        raise InputError(
            f"``X`` should be a non-empty 2D array of shape (n_samples, n_models); "
            f"got {X.shape = }"
        )
    finite = np.isfinite(X)
    if not finite.all():
        raise InputError(
            f"``X`` should be finite; found {int(X.size - finite.sum())} NaN or inf "
            f"values in an array of {X.shape = }"
        )
    lo, hi = float(X.min()), float(X.max())
    if lo < 0.0 or hi > 1.0:
        raise InputError(f"``X`` should hold pass rates in [0, 1]; got {lo = } and {hi = }")
    return np.ascontiguousarray(X)


def _workers(n_jobs):
    """sklearn's n_jobs convention (None -> 1, -1 -> all cores) as a thread count."""
    return 1 if n_jobs is None else int(n_jobs)


# --------------------------------------------------------------------------- bandwidth


def _capped_bandwidth(unique, counts, quantile, cap, random_state, workers=1):
    """``min(estimate_bandwidth(X, quantile=quantile), cap)`` from the distinct rows of ``X``.

    ``estimate_bandwidth`` is the mean, over the rows of ``X``, of the distance to the
    ``int(n * quantile)``-th nearest row (the row itself included).  It is computed exactly
    on the distinct rows ``unique`` (weighted by ``counts``; :func:`_kth_sq_distances`)
    unless ``X`` is large and a cheap estimate shows that it exceeds ``cap``; see
    :func:`_cap_binds`.
    """
    n = int(counts.sum())
    k = max(1, int(n * quantile))
    rows = _SortedRows(unique, counts.astype(float))
    with one_blas_thread():
        if n > _SHORTCUT_MIN_ROWS and _cap_binds(rows, unique, counts, k, cap, random_state,
                                                  workers):
            return cap
        bw = counts @ np.sqrt(_kth_sq_distances(rows, unique, k, workers)) / n
    return min(float(bw), cap)


def _cap_binds(rows, unique, counts, k, cap, random_state, workers=1):
    """Whether the bandwidth estimate surely exceeds ``cap``, from a small sample.

    Control-variate estimate of the mean k-th-neighbour distance.  The proxy, known for
    every row, is the exact distance at the mean of the row's cell in a grid of side
    ``cap`` (for the ``_SHORTCUT_CELLS`` most populated cells; other cells borrow the
    value of the nearest of those).  The estimate is the proxy's mean plus the mean
    proxy error over a random sample of rows.  The distance is 1-Lipschitz, so the error
    is small (about a tenth of the spread of the distances on pass-rate data) and about a
    hundred rows decide by ``_SHORTCUT_Z`` standard errors.
    """
    if not math.isfinite(cap):
        return False
    n = counts.sum()
    cells, cell_of = _row_keys(np.round(unique / cap))
    cell_n = np.bincount(cell_of, weights=counts, minlength=len(cells))
    cell_mean = np.column_stack(
        [np.bincount(cell_of, weights=counts * col, minlength=len(cells)) for col in unique.T]
    ) / cell_n[:, None]
    top = np.argsort(-cell_n, kind="stable")[:_SHORTCUT_CELLS]
    nearest_top = cKDTree(cell_mean[top]).query(cell_mean)[1]
    proxy = np.sqrt(_kth_sq_distances(rows, cell_mean[top], k, workers))[nearest_top]
    rng = check_random_state(random_state)
    sample = rng.choice(len(unique), _SHORTCUT_QUERIES, p=counts / n)
    resid = np.sqrt(_kth_sq_distances(rows, unique[sample], k, workers))
    resid -= proxy[cell_of[sample]]
    estimate = cell_n @ proxy / n + resid.mean()
    se = resid.std(ddof=1) / math.sqrt(sample.size)
    return estimate * (1.0 - _SHORTCUT_MARGIN) - _SHORTCUT_Z * se > cap


def resolve_bandwidth(owner, X_used, unique, counts, params):
    """The radius R of Algorithm 1 from the estimator's parameters."""
    d = X_used.shape[1]
    if params["bandwidth"] is not None:
        return params["bandwidth"]
    cap = params["max_bandwidth"]
    if cap is None:
        cap = math.sqrt(d) / 10.0
    R = _capped_bandwidth(unique, counts, params["quantile"], cap, params["random_state"],
                          _workers(params["n_jobs"]))
    if not R > 0.0:
        raise InputError(
            f"{owner}: estimate_bandwidth(quantile={params['quantile']}) is 0 on these "
            f"{X_used.shape[0]} samples: the int(quantile * n_samples)-th nearest neighbour "
            f"of each sample is an identical difficulty vector (or the sample itself when "
            f"quantile * n_samples < 2). Pass bandwidth= explicitly or raise quantile."
        )
    return R


# --------------------------------------------------------------------------- mean shift


def _pair_sq_dist(A, B, i, j):
    """``||A_i - B_j||^2`` summed column by column, the order sklearn's trees use."""
    s = np.zeros(len(i))
    for col in range(A.shape[1]):
        t = A[i, col] - B[j, col]
        s += t * t
    return s


def _sq_norms(A):
    return np.einsum("ij,ij->i", A, A)


def _matmul(A, B):
    """``A @ B`` in row pieces of at most ``_GEMM_SIZE`` multiply-adds each."""
    step = max(1, _GEMM_SIZE // max(1, B.shape[0] * B.shape[1]))
    if step >= A.shape[0]:
        return A @ B
    out = np.empty((A.shape[0], B.shape[1]))
    for s in range(0, A.shape[0], step):
        out[s : s + step] = A[s : s + step] @ B
    return out


def _row_keys(B):
    """Distinct rows of a small-integer matrix, via one int64 key per row."""
    B = B.astype(np.int64)
    lo = B.min(axis=0)
    span = B.max(axis=0) - lo + 1
    if np.prod(span.astype(float)) >= 2.0**62:
        rows, inverse = np.unique(B, axis=0, return_inverse=True)
        return rows, inverse.reshape(-1)
    key = (B - lo) @ np.cumprod(np.r_[1, span[:-1]])
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return B[first], inverse.reshape(-1)


def _bin_seeds(X, w, R):
    """``sklearn.cluster.get_bin_seeds(X_rows, R, min_bin_freq=1)`` on weighted rows."""
    bins, _ = _row_keys(np.round(X / R))
    if len(bins) == w.sum():
        # sklearn falls back to the data points (every row alone in its bin)
        return X.copy()
    # sklearn stores bin indices as float32 and scales them by the bandwidth in float32
    return (bins.astype(np.float32) * np.float32(R)).astype(np.float64)


class _SortedRows:
    """Distinct rows sorted by their projection on the principal axis, ready for products.

    A row within ``r`` of a point projects within ``r`` of the point's projection, so a
    block of points (sorted the same way) only meets a contiguous slab of rows.  Squared
    distances come from one matrix product ``B @ A.T`` with ``B = [x, |x|^2, 1]`` and
    ``A = [-2 a, 1, |a|^2]`` (coordinates centred on the rows' mean to keep it accurate),
    in float32 unless ``dtype`` says otherwise; :data:`_TOL` bounds its rounding.  ``B``
    is kept both row-major (``B``: a slab is contiguous, rows down the product) and
    transposed (``Bt``: points down the product, for partitions along the rows).

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
        Distinct rows.
    w : ndarray of shape (n_rows,)
        Their multiplicities.
    """

    def __init__(self, X, w, dtype=np.float32):
        n, d = X.shape
        self.centre = X.mean(axis=0)
        Xc = X - self.centre
        if d > 1:
            self.axis = np.linalg.eigh((Xc * w[:, None]).T @ Xc)[1][:, -1]
        else:
            self.axis = np.ones(1)
        proj = Xc @ self.axis
        self.order = np.argsort(proj, kind="stable")
        self.proj = proj[self.order]
        self.X = X[self.order]
        self.w = w[self.order]
        Xc = Xc[self.order]
        self.sq = _sq_norms(Xc)
        self.dtype = dtype
        self.B = np.hstack([Xc, self.sq[:, None], np.ones((n, 1))]).astype(dtype)
        self.Bt = np.ascontiguousarray(self.B.T)

    def factors(self, P):
        """``(A, |p - centre|^2, projection)`` of points ``P``."""
        Pc = P - self.centre
        sqP = _sq_norms(Pc)
        A = np.hstack([-2.0 * Pc, np.ones((len(P), 1)), sqP[:, None]]).astype(self.dtype)
        return A, sqP, Pc @ self.axis

    def band(self, a_max, lo, hi):
        """Rounding bound of the squared distances between points of squared norm at most
        ``a_max`` and the rows ``lo:hi``."""
        return _TOL[self.dtype] * (a_max + float(self.sq[lo:hi].max()))


class _Windows:
    """Flat-kernel windows of radius R over one round's rows: weighted count and sums.

    :meth:`sums` returns, for each position ``m``, the sums over the rows ``x`` with
    ``||m - x||^2 <= R^2`` of ``[w x, w]`` (weighted coordinate sums and weighted count),
    followed by a fingerprint of the set of rows in the window, so that windows holding
    the same rows are recognised (:class:`_Graph`):

    - when the pass rates are multiples of ``1 / scale`` (finite attempts: ``k / n``), the
      coordinate sums are taken over the integers ``scale * x``; they are exact, so they
      are their own fingerprint, and float32 products hold them while below ``2**24``;
    - otherwise two columns of random integers below ``2**26`` per row, whose float64
      sums are exact, follow the float64 sums.

    The squared distances come from :class:`_SortedRows` (float32 where it resolves R);
    the few pairs within the rounding bound of ``R^2`` are recomputed exactly, column by
    column as scikit-learn's neighbour trees do, so that boundary ties fall on the same
    side as in ``MeanShift``.
    """

    def __init__(self, X, w, R):
        n, d = X.shape
        self.r2 = R * R
        sq_max = float(_sq_norms(X - X.mean(axis=0)).max())
        # float32 when its rounding bound is far below R^2 (else every pair is a tie)
        scale = 4.0 * sq_max + 4.0 * d * self.r2
        dtype = np.float32 if _TOL[np.float32] * scale < 1e-2 * self.r2 else np.float64
        self.rows = _SortedRows(X, w, dtype)
        self.scale = _grid_scale(X)
        if self.scale is not None:
            W = np.hstack([np.round(X * self.scale) * w[:, None], w[:, None]])
            exact32 = self.scale * w.sum() < 2.0**24  # every partial sum fits float32
            self.W = W[self.rows.order].astype(np.float32 if exact32 else np.float64)
        else:
            # random integers whose exact sums (below 2**53) fingerprint a window's rows
            H = np.random.default_rng(0).integers(0, 1 << 26, (n, 2)).astype(float)
            self.W = np.hstack([X * w[:, None], w[:, None], H])[self.rows.order]
        self.WT = np.ascontiguousarray(self.W.T)  # sums as WT @ indicator: the faster layout
        self.slack = R * (1.0 + 1e-9) + 1e-12
        # work buffers of one piece, kept across calls: fresh large arrays cost page faults
        size = _SEED_BLOCK * min(_PIECE_ROWS, n)
        self._D = np.empty(size, self.rows.dtype)
        self._inside, self._maybe, self._ties = (np.empty(size, bool) for _ in range(3))
        self._ind = np.empty(size, self.W.dtype)

    def means(self, sums):
        """Window means from :meth:`sums` (rows with a positive count)."""
        d = self.rows.X.shape[1]
        if self.scale is not None:  # one rounding: exact integers over an exact product
            return sums[:, :d] / (self.scale * sums[:, d : d + 1])
        return sums[:, :d] / sums[:, d : d + 1]

    def fingerprints(self, sums):
        """A hashable key per window, equal for windows that hold the same rows."""
        d = self.rows.X.shape[1]
        if self.scale is not None:
            return [bytes(row) for row in np.ascontiguousarray(sums[:, : d + 1])]
        # one 64-bit key from the two exact hash sums (wrapping arithmetic)
        h = sums[:, d + 1 :].astype(np.uint64)
        return (h[:, 0] * np.uint64(0x9E3779B97F4A7C15) + h[:, 1]).tolist()

    def _pieces(self, P):
        """Yield ``(blk, a, e, inside)``: ``inside[j, i]`` is whether row ``a + j`` lies in
        the window of position ``P[blk[i]]``; rows outside the pieces lie in none.

        Rows run down the products (``B[a:e] @ A.T``): OpenBLAS is about twice as fast on
        that shape as on its transpose when the inner dimension is this small.
        """
        rows, r2 = self.rows, self.r2
        A, sqP, p = rows.factors(P)
        by_p = np.argsort(p, kind="stable")
        for s in range(0, len(P), _SEED_BLOCK):
            blk = by_p[s : s + _SEED_BLOCK]
            b = len(blk)
            lo, hi = np.searchsorted(rows.proj, [p[blk[0]] - self.slack, p[blk[-1]] + self.slack])
            At, a_max = np.ascontiguousarray(A[blk].T), float(sqP[blk].max())
            for a in range(lo, hi, _PIECE_ROWS):
                e = min(a + _PIECE_ROWS, hi)
                size = (e - a) * b
                D = np.matmul(rows.B[a:e], At, out=self._D[:size].reshape(e - a, b))
                band = rows.band(a_max, a, e) + _TOL[rows.dtype] * r2
                inside = np.less_equal(D, r2 - band, out=self._inside[:size].reshape(D.shape))
                maybe = np.less_equal(D, r2 + band, out=self._maybe[:size].reshape(D.shape))
                if np.count_nonzero(maybe) != np.count_nonzero(inside):
                    ties = np.not_equal(self._inside[:size], self._maybe[:size],
                                        out=self._ties[:size])
                    k = np.flatnonzero(ties)
                    j, i = np.divmod(k, b)
                    self._inside[k] = _pair_sq_dist(P[blk], rows.X, i, j + a) <= r2
                yield blk, a, e, inside

    def sums(self, P):
        """Window sums at positions ``P`` (class docstring), as float64."""
        out = np.zeros((len(P), self.W.shape[1]))
        for blk, a, e, inside in self._pieces(P):
            # BLAS wants a float matrix; a bool one would take numpy's slow loop
            ind = self._ind[: inside.size].reshape(inside.shape)
            np.copyto(ind, inside)
            out[blk] += (self.WT[:, a:e] @ ind).T
        return out


def _grid_scale(X):
    """The ``L <= 4096`` with every value of ``X`` a multiple ``j / L``, or None.

    Read off the smallest gap between distinct values, then checked exactly: ``j / L``
    must give back each float bit for bit.
    """
    v = np.unique(X)
    gap = np.diff(v).min(initial=1.0)
    if not gap > 1.0 / 4096.5:
        return None
    L = float(round(1.0 / gap))
    return L if np.array_equal(np.round(v * L) / L, v) else None


def _kth_sq_distances(rows, Q, k, workers=1):
    """Exact squared distance from each point of ``Q`` to its ``k``-th nearest row.

    Rows count with their multiplicity (a row of ``Q`` is its own nearest row); distances
    are summed column by column, as scikit-learn's neighbour trees do.

    Points are taken in blocks, against the rows repeated by multiplicity.  A systematic
    subsample of those (every ``step``-th) bounds each point's distance from above: its
    order statistic ``_KTH_Z`` standard deviations past rank ``k / step`` is ``hi >= d_k``
    for nearly every point, so only the slab of rows within ``hi`` (in projection) can
    matter.  On that slab the float32 ``k``-th distance is found up to rounding by
    partitioning only the distances between two narrower order statistics of the
    subsample (:func:`_settled_rows`), and the few rows within the rounding bound of it
    are settled exactly.  A point whose bound turns out too low is computed against every
    row.

    Parameters
    ----------
    rows : _SortedRows
        The rows (float32 products).
    Q : ndarray of shape (n_points, n_features)
        Query points.
    k : int
        Rank, at least 1 and at most the total multiplicity.
    workers : int, default 1
        Threads over blocks of points (-1: all cores); numpy releases the GIL in them.

    Returns
    -------
    ndarray of shape (n_points,)
    """
    reps = rows.w.astype(np.intp)
    Bt = np.repeat(rows.Bt, reps, axis=1)
    proj, sq = np.repeat(rows.proj, reps), np.repeat(rows.sq, reps)
    source = np.repeat(np.arange(len(rows.X)), reps)  # distinct row of each repeated one
    step = int(np.clip(k // 64, 1, _KTH_STEP))
    Bs = np.ascontiguousarray(Bt[:, step // 2 :: step])
    rank = k / step
    r_hi = int(math.ceil(rank + _KTH_Z * math.sqrt(rank) + 1.0))
    # ranks of the bounds that bracket the k-th value (narrower: a miss costs one row)
    b_lo = int(math.floor(rank - _KTH_BRACKET_Z * math.sqrt(rank) - 1.0))
    b_hi = min(int(math.ceil(rank + _KTH_BRACKET_Z * math.sqrt(rank) + 1.0)), r_hi)
    A, sqP, p = rows.factors(Q)
    out = np.full(len(Q), np.nan)

    def block(blk):
        Ab, a_max = A[blk], float(sqP[blk].max())
        if r_hi < Bs.shape[1]:
            S = np.partition(Ab @ Bs, r_hi, axis=1)
            hi2 = S[:, r_hi].astype(float)
        else:
            S, hi2 = None, np.full(len(blk), np.inf)
        hi = np.sqrt(np.maximum(hi2, 0.0)) * (1.0 + 1e-6) + 1e-12
        first, last = np.searchsorted(proj, [np.min(p[blk] - hi), np.max(p[blk] + hi)])
        if last - first < k:
            return
        D = Ab @ Bt[:, first:last]
        beta = 2.0 * _TOL[np.float32] * (a_max + float(sq[first:last].max()))
        # the exact k-th value lies within beta / 2 of the float32 one, so rows farther
        # than beta from it are settled by their float32 value: count those below, and
        # list the rows (i, j) in between for the exact computation
        bounds = (None, None)
        if S is not None and b_lo >= 0 and last - first >= _KTH_BRACKET_MIN:
            S = np.partition(S[:, : r_hi + 1], [b_lo, b_hi], axis=1)
            bounds = (S[:, b_lo], S[:, b_hi])
        below, i, j = _settled_rows(D, k, beta, *bounds)
        v = _pair_sq_dist(Q[blk], rows.X, i, source[j + first])
        srt = np.lexsort((v, i))
        i, v = i[srt], v[srt]
        need = k - below  # rank of d_k among the settled rows
        ok = (need >= 1) & (need <= np.bincount(i, minlength=len(blk)))
        at = np.searchsorted(i, np.arange(len(blk))) + need - 1
        val = np.full(len(blk), np.inf)
        val[ok] = v[at[ok]]
        ok &= val <= hi2  # else a row beyond the slab could be nearer than val
        out[blk[ok]] = val[ok]

    by_p = np.argsort(p, kind="stable")
    blocks = [by_p[s : s + _KTH_BLOCK] for s in range(0, len(Q), _KTH_BLOCK)]
    workers = (os.cpu_count() or 1) if workers == -1 else workers
    if workers > 1 and len(blocks) > 1:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(block, blocks))
    else:
        for blk in blocks:
            block(blk)
    every = np.arange(len(rows.X))
    for q in np.flatnonzero(np.isnan(out)):  # the bound was too low: against every row
        v = _pair_sq_dist(Q[q : q + 1], rows.X, np.zeros_like(every), every)
        order = np.argsort(v, kind="stable")
        out[q] = v[order][np.searchsorted(np.cumsum(rows.w[order]), k)]
    return out


def _band(value, beta):
    """float32 bounds at least ``beta`` below and above ``value`` (widened by more than
    the float32 rounding, so that comparisons in float32 stay conservative)."""
    lo = np.asarray(value, dtype=float) - beta
    hi = lo + 2.0 * beta
    return ((lo - np.abs(lo) * 2.0**-22 - 1e-30).astype(np.float32),
            (hi + np.abs(hi) * 2.0**-22 + 1e-30).astype(np.float32))


def _settled_rows(D, k, beta, lo=None, hi=None):
    """Per row of ``D``: the count of entries below its float32 ``k``-th value minus
    ``beta``, and the entries ``(i, j)`` within ``beta`` of that value.

    ``lo`` and ``hi`` are bounds that likely bracket the ``k``-th value of each row.  A
    partition costs several nanoseconds per value; counting the values below ``lo`` and
    partitioning only those within ``[lo, hi]`` (a tenth of a row or so) costs a fraction
    of that.  A row whose bounds miss the ``k``-th value, or the ``beta`` band around it,
    is partitioned whole.  Short rows (or no bounds) are partitioned whole, all at once.
    """
    m = D.shape[1]
    if lo is None or m < _KTH_BRACKET_MIN:  # one partition of the block: no Python loop
        kth = np.partition(D, k - 1, axis=1)[:, k - 1]
        lo_t, hi_t = _band(kth, beta)
        under = D < lo_t[:, None]
        # flat indices: much cheaper than a 2D nonzero
        i, j = np.divmod(np.flatnonzero(under != (D <= hi_t[:, None])), m)
        return np.count_nonzero(under, axis=1), i, j
    below = np.empty(len(D), np.intp)
    rows, cols = [], []
    for r, d in enumerate(D):
        lo_r, hi_r = np.float32(lo[r]), np.float32(hi[r])
        keep = d >= lo_r
        n_below = m - np.count_nonzero(keep)
        keep &= d <= hi_r
        j = np.flatnonzero(keep)
        need = k - n_below  # rank of the k-th value among the bracketed ones
        bracketed = 1 <= need <= j.size
        if bracketed:
            v = d[j]
            lo_t, hi_t = _band(np.partition(v, need - 1)[need - 1], beta)
            bracketed = lo_t >= lo_r and hi_t <= hi_r
        if not bracketed:
            j, v, n_below = np.arange(m), d, 0
            lo_t, hi_t = _band(np.partition(d, k - 1)[k - 1], beta)
        below[r] = n_below + np.count_nonzero(v < lo_t)
        tie = j[(v >= lo_t) & (v <= hi_t)]
        rows.append(np.full(tie.size, r))
        cols.append(tie)
    return below, np.concatenate(rows), np.concatenate(cols)


# Node states of the climbing graph.
_UNKNOWN = -1  # window not computed yet
_EMPTY = -2  # no row within R: sklearn drops the seed


class _Graph:
    """The positions hill climbing visits, each with its successor once its window is known.

    A position's next mean depends only on the rows in its window, and whether a seed
    stops there only on the position and that mean.  A seed that reaches a visited
    position follows the recorded path instead of recomputing windows, and two windows
    that hold the same rows (same fingerprint) lead to the same node, so that seeds whose
    paths meet share everything after.
    """

    def __init__(self, d, stop):
        self.stop = stop
        self.pos = np.empty((256, d))
        self.next = np.empty(256, np.intp)
        self.count = np.empty(256)
        self.done = np.empty(256, bool)
        self.size = 0
        self.by_fingerprint = {}

    def add(self, P):
        """New nodes at positions ``P``; returns their ids."""
        need = self.size + len(P)
        if need > len(self.pos):
            cap = max(need, 2 * len(self.pos))
            self.pos = np.resize(self.pos, (cap, self.pos.shape[1]))
            self.next = np.resize(self.next, cap)
            self.count = np.resize(self.count, cap)
            self.done = np.resize(self.done, cap)
        ids = np.arange(self.size, need)
        self.pos[ids] = P
        self.next[ids] = _UNKNOWN
        self.size = need
        return ids

    def expand(self, ids, windows):
        """Compute the windows of nodes ``ids``: successor, intensity, convergence."""
        d = self.pos.shape[1]
        sums = windows.sums(self.pos[ids])
        cnt = sums[:, d]
        self.count[ids] = cnt
        empty = cnt == 0
        self.next[ids[empty]] = _EMPTY
        ids, sums = ids[~empty], sums[~empty]
        keys = windows.fingerprints(sums)
        known = self.by_fingerprint
        target = np.array([known.get(key, -1) for key in keys], dtype=np.intp)
        new = np.flatnonzero(target < 0)
        if new.size:
            # windows met for the first time; equal ones within the batch share a node
            first = {}
            for i in new.tolist():
                first.setdefault(keys[i], i)
            heads = np.fromiter(first.values(), np.intp, len(first))
            fresh = self.add(windows.means(sums[heads]))
            known.update(zip(first, fresh.tolist()))
            target[new] = [known[keys[i]] for i in new.tolist()]
        self.next[ids] = target
        self.done[ids] = np.linalg.norm(self.pos[target] - self.pos[ids], axis=1) <= self.stop


def _climb(seeds, X, w, R):
    """Flat-kernel hill climbing of every seed (sklearn ``_mean_shift_single_seed``).

    Returns the converged means and their intensities (weighted number of rows within R
    of the last-but-one mean, as sklearn records it); seeds with no row within R are
    dropped.  Seeds move in lockstep so that ``max_iter`` counts as in sklearn.
    """
    windows = _Windows(X, w, R)
    graph = _Graph(X.shape[1], _STOP_THRESH * R)
    active = graph.add(seeds)
    centers, intensity = [], []
    for it in range(_MAX_ITER + 1):
        if active.size == 0:
            break
        todo = np.unique(active[graph.next[active] == _UNKNOWN])
        if todo.size:
            graph.expand(todo, windows)
        nxt = graph.next[active]
        alive = nxt != _EMPTY
        stop = alive & (graph.done[active] | (it == _MAX_ITER))
        centers.append(graph.pos[nxt[stop]])
        intensity.append(graph.count[active[stop]])
        active = nxt[alive & ~stop]
    return np.concatenate(centers), np.concatenate(intensity)


def _suppress(centers, intensity, R):
    """sklearn's post-processing: keep the densest centres at least R apart."""
    centers, idx = np.unique(centers, axis=0, return_index=True)
    intensity = intensity[idx]
    # descending by (intensity, centre tuple), as sorted(..., reverse=True) in sklearn
    keys = [centers[:, j] for j in reversed(range(centers.shape[1]))] + [intensity]
    order = np.lexsort(keys)[::-1]
    centers = centers[order]
    # pairs within R (a tree query with a hair of slack, then the exact test)
    pairs = cKDTree(centers).query_pairs(R * (1.0 + 1e-9) + 1e-12, output_type="ndarray")
    pairs = pairs[_pair_sq_dist(centers, centers, pairs[:, 0], pairs[:, 1]) <= R * R]
    both = np.concatenate([pairs, pairs[:, ::-1]])
    both = both[np.argsort(both[:, 0], kind="stable")]
    start = np.searchsorted(both[:, 0], np.arange(len(centers) + 1))
    unique = np.ones(len(centers), dtype=bool)
    for i in range(len(centers)):
        if unique[i]:
            unique[both[start[i] : start[i + 1], 1]] = False
    return centers[unique]


def nearest(X, centers):
    """Index of the nearest centre of every row (cluster_all=True assignment)."""
    if len(centers) > 64:  # bound memory: a tree instead of an (n_rows, n_centers) matrix
        return cKDTree(centers).query(X)[1].astype(np.intp)
    D2 = _matmul(X, -2.0 * centers.T)
    D2 += _sq_norms(centers)[None, :]
    return np.argmin(D2, axis=1)


def flat_mean_shift(X, w, R):
    """``MeanShift(bandwidth=R, bin_seeding=True).fit`` on rows ``X`` with multiplicities ``w``.

    Returns ``(centers, labels)``, or ``None`` where sklearn raises "No point was within
    bandwidth ... of any seed".
    """
    with one_blas_thread():
        centers, intensity = _climb(_bin_seeds(X, w, R), X, w, R)
    if len(centers) == 0:
        return None
    centers = _suppress(centers, intensity, R)
    return centers, nearest(X, centers)


def outside(X, centers, labels, R):
    """Rows farther than R from the centre of their cluster."""
    return np.linalg.norm(X - centers[labels], axis=1) > R


def order_clusters(labels, centers):
    """Renumber clusters 0..k-1 by ascending centre mean (ties: lexicographic centre)."""
    if len(centers) == 0:
        return labels, centers
    keys = [centers[:, j] for j in reversed(range(centers.shape[1]))] + [centers.mean(axis=1)]
    order = np.lexsort(keys)
    rank = np.empty(len(order), dtype=np.intp)
    rank[order] = np.arange(len(order))
    out = labels.copy()
    out[labels >= 0] = rank[labels[labels >= 0]]
    return out, centers[order]


def filtered_rounds(X, w, R, K, max_rounds, cluster):
    """Algorithm 1's loop on distinct rows ``X`` with multiplicities ``w``.

    Each round clusters the rows still labelled ``-1`` with ``cluster(X_free, w_free)``,
    which returns ``(centers, labels)`` or ``None`` when it finds nothing; members
    farther than ``R`` from their centre, then clusters left with fewer than ``K``
    members, go back to ``-1``; the rest get labels after the existing ones. The loop
    ends with a round that keeps no cluster, or when fewer than ``K`` rows are left.

    Returns ``(labels, centers, rounds, converged)``; labels index ``centers``.
    """
    labels = np.full(X.shape[0], -1, dtype=np.intp)
    centers = np.empty((0, X.shape[1]))
    rounds = 0
    converged = False
    while rounds < max_rounds:
        free = np.flatnonzero(labels == -1)
        if w[free].sum() < K:  # no new cluster could reach K members
            converged = True
            break
        rounds += 1
        found = cluster(X[free], w[free])
        if found is None:
            converged = True
            break
        new_centers, new = found
        new[outside(X[free], new_centers, new, R)] = -1
        size = np.bincount(new[new >= 0], weights=w[free][new >= 0], minlength=len(new_centers))
        big = size >= K
        new[new >= 0] = np.where(big[new[new >= 0]], new[new >= 0], -1)
        if not big.any():
            converged = True
            break
        # fresh labels after the existing ones, kept clusters only
        fresh = np.cumsum(big) - 1 + len(centers)
        labels[free[new >= 0]] = fresh[new[new >= 0]]
        centers = np.vstack([centers, new_centers[big]])
    return labels, centers, rounds, converged


def distinct_rows(X):
    """Distinct rows, the index of each row's distinct row, and multiplicities."""
    if X.shape[0] == 0:
        return X, np.empty(0, np.intp), np.empty(0, np.intp)
    Xu, inverse, counts = np.unique(X, axis=0, return_inverse=True, return_counts=True)
    return Xu, inverse.reshape(-1), counts

