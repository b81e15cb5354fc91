"""Numeric kernels of the difficulty clusterers (private).

A vectorised flat-kernel MeanShift that reproduces scikit-learn's
``MeanShift(bandwidth=R, bin_seeding=True)`` on distinct rows weighted by their
multiplicity, Algorithm 1's loop around any clusterer (:func:`filtered_rounds`), COD's
bandwidth rule with its shortcut for large inputs (:func:`resolve_bandwidth`), and the
label conventions every clusterer shares (:func:`order_clusters`).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial import cKDTree
from sklearn.utils import check_random_state

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
_SEED_BLOCK = 32
# Largest m * n * k of one matrix product.  OpenBLAS runs products above ~2**18 on all
# threads; these are too small to gain from it and, when another process holds a core,
# every such call stalls for milliseconds.  Splitting keeps them single-threaded.
_GEMM_SIZE = 1 << 18

# Bandwidth shortcut: above this many rows the exact k-th-neighbour estimate (quadratic)
# is only computed when a cheap estimate cannot show that the cap U binds.
_SHORTCUT_MIN_ROWS = 2000
_SHORTCUT_CELLS = 48  # most populated grid cells whose proxy is computed exactly
_SHORTCUT_QUERIES = 128  # sampled rows whose exact k-th-neighbour distance is computed
_SHORTCUT_Z = 6.0  # standard errors the estimate must clear the cap by
_SHORTCUT_MARGIN = 0.01  # ... plus this relative margin


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
    """sklearn's n_jobs convention (None -> 1, -1 -> all cores) as scipy ``workers``."""
    return 1 if n_jobs is None else int(n_jobs)


# --------------------------------------------------------------------------- bandwidth


def _exact_kth_distance(tree, queries, k, workers):
    """Distance from each query to its k-th nearest row of ``tree`` (itself included)."""
    return tree.query(queries, k=[k], workers=workers)[0][:, 0]


def _capped_bandwidth(X, unique, counts, quantile, cap, random_state, workers):
    """``min(estimate_bandwidth(X, quantile=quantile), cap)``.

    ``estimate_bandwidth`` is the mean, over the rows of ``X``, of the distance to the
    ``int(n * quantile)``-th nearest row (the row itself included).  It is computed exactly
    on the distinct rows ``unique`` (weighted by ``counts``) unless ``X`` is large and a
    cheap estimate shows that it exceeds ``cap``; see :func:`_cap_binds`.
    """
    n = X.shape[0]
    k = max(1, int(n * quantile))
    tree = cKDTree(X)
    if n > _SHORTCUT_MIN_ROWS and _cap_binds(tree, unique, counts, k, cap, random_state, workers):
        return cap
    bw = counts @ _exact_kth_distance(tree, unique, k, workers) / n
    return min(float(bw), cap)


def _cap_binds(tree, unique, counts, k, cap, random_state, workers):
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
    proxy = _exact_kth_distance(tree, cell_mean[top], k, workers)[nearest_top]
    rng = check_random_state(random_state)
    rows = rng.choice(len(unique), _SHORTCUT_QUERIES, p=counts / n)
    resid = _exact_kth_distance(tree, unique[rows], k, workers) - proxy[cell_of[rows]]
    estimate = cell_n @ proxy / n + resid.mean()
    se = resid.std(ddof=1) / math.sqrt(rows.size)
    return estimate * (1.0 - _SHORTCUT_MARGIN) - _SHORTCUT_Z * se > cap


def resolve_bandwidth(owner, X_used, unique, counts, params):
    """The radius R of Algorithm 1 from the estimator's parameters."""
    d = X_used.shape[1]
    if params["bandwidth"] is not None:
        return params["bandwidth"]
    cap = params["max_bandwidth"]
    if cap is None:
        cap = math.sqrt(d) / 10.0
    R = _capped_bandwidth(
        X_used,
        unique,
        counts,
        params["quantile"],
        cap,
        params["random_state"],
        _workers(params["n_jobs"]),
    )
    if not R > 0.0:
        raise InputError(
            f"{owner}: estimate_bandwidth(quantile={params['quantile']}) is 0 on these "
            f"{X_used.shape[0]} samples: the int(quantile * n_samples)-th nearest neighbour "
            f"of each sample is an identical difficulty vector (or the sample itself when "
            f"quantile * n_samples < 2). Pass bandwidth= explicitly or raise quantile."
        )
    return R


# --------------------------------------------------------------------------- mean shift


def _within(A, B, sqA, sqB, r2):
    """Boolean ``||A_i - B_j||^2 <= r2``, tie-exact.

    Distances come from one matrix product; the few pairs within rounding error of the
    radius are recomputed with the sequential sum of squares scikit-learn's neighbour
    trees use, so that boundary ties (common: pass rates sit on a 1/n_trials grid and bin
    seeds on a bandwidth grid) fall on the same side as in ``MeanShift``.
    """
    D2 = _matmul(-2.0 * A, B.T)
    D2 += sqB[None, :]
    D2 += sqA[:, None]
    tol = 1e-9 * (1.0 + r2)
    inside = D2 <= r2 + tol
    i, j = np.nonzero(inside != (D2 <= r2 - tol))
    if i.size:
        inside[i, j] = _pair_sq_dist(A, B, i, j) <= r2
    return inside


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


def _climb(seeds, X, w, R):
    """Flat-kernel hill climbing of every seed at once (sklearn ``_mean_shift_single_seed``).

    Returns the converged means and their intensities (weighted number of rows within R
    of the last-but-one mean, as sklearn records it); seeds with no row within R are
    dropped.

    Rows are sorted by their projection on the diagonal ``1/sqrt(d)``: a row within R of
    a mean projects within R of it, so each block of seeds (sorted the same way) only
    meets a contiguous slab of rows.  Seeds whose means coincide are moved once.
    """
    d = X.shape[1]
    r2 = R * R
    stop = _STOP_THRESH * R
    proj = X.sum(axis=1) / math.sqrt(d)
    order = np.argsort(proj, kind="stable")
    X, w, proj = X[order], w[order], proj[order]
    sqX = _sq_norms(X)
    XW = np.hstack([X * w[:, None], w[:, None]])
    slack = R * (1.0 + 1e-9) + 1e-12
    means = seeds.copy()
    active = np.arange(len(seeds))
    out_c, out_n = [], []
    for it in range(_MAX_ITER + 1):
        if active.size == 0:
            break
        cur, inv = np.unique(means[active], axis=0, return_inverse=True)
        inv = inv.reshape(-1)
        p = cur.sum(axis=1) / math.sqrt(d)
        by_p = np.argsort(p, kind="stable")
        sums = np.empty((len(cur), d + 1))
        for s in range(0, len(cur), _SEED_BLOCK):
            blk = by_p[s : s + _SEED_BLOCK]
            A, sqA = cur[blk], _sq_norms(cur[blk])
            lo, hi = np.searchsorted(proj, [p[blk].min() - slack, p[blk].max() + slack])
            acc = np.zeros((len(blk), d + 1))
            piece = max(1, _GEMM_SIZE // (len(blk) * (d + 1)))
            for a in range(lo, hi, piece):
                b = min(a + piece, hi)
                acc += _within(A, X[a:b], sqA, sqX[a:b], r2).astype(float) @ XW[a:b]
            sums[blk] = acc
        cnt = sums[inv, d]
        with np.errstate(invalid="ignore", divide="ignore"):
            new = sums[inv, :d] / cnt[:, None]
        alive = cnt > 0
        moved = np.linalg.norm(new - means[active], axis=1)
        done = alive & ((moved <= stop) | (it == _MAX_ITER))
        out_c.append(new[done])
        out_n.append(cnt[done])
        keep = alive & ~done
        means[active[keep]] = new[keep]
        active = active[keep]
    return np.concatenate(out_c), np.concatenate(out_n)


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

