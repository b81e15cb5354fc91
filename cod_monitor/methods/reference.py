"""Reference implementations: the straightforward loops the fast estimators are checked against."""

from __future__ import annotations

import math
import warnings

import numpy as np
from sklearn.cluster import MeanShift, estimate_bandwidth

from cod_monitor.cod._meanshift import check_pass_rates, order_clusters

__all__ = ["reference_improved_meanshift"]


def reference_improved_meanshift(X, *, min_cluster_size=10, quantile=0.1, max_bandwidth=None,
                                 bandwidth=None, drop_zero=True, max_rounds=100,
                                 random_state=0, n_jobs=None):
    """Algorithm 1 written as the straightforward loop over sklearn's ``MeanShift`` (slow).

    What :class:`~cod_monitor.cod.clustering.ImprovedMeanShift` is checked and timed
    against: it calls :func:`sklearn.cluster.estimate_bandwidth` on all non-zero rows and
    refits ``MeanShift(bandwidth=R, bin_seeding=True)`` on the unassigned rows every
    round.

    Parameters
    ----------
    X : array_like of shape (n_samples, n_models)
        Pass rates in [0, 1].
    min_cluster_size, quantile, max_bandwidth, bandwidth, drop_zero, max_rounds, \
random_state, n_jobs
        As in :class:`~cod_monitor.cod.clustering.ImprovedMeanShift` (``random_state``
        is unused: the bandwidth is always estimated exactly).

    Returns
    -------
    labels : ndarray of shape (n_samples,)
        ``-1`` for outliers; clusters numbered by ascending centre mean.
    centers : ndarray of shape (n_clusters, n_models)
        MeanShift modes of the clusters.
    radius : float
        The bandwidth ``R`` used.

    Examples
    --------
    >>> from cod_monitor.cod.clustering import ImprovedMeanShift
    >>> from cod_monitor.synthetic import synthetic_pass_rates
    >>> X = synthetic_pass_rates(n_samples=1000, n_models=8, seed=0)
    >>> labels, centers, radius = reference_improved_meanshift(X)
    >>> bool((labels == ImprovedMeanShift().fit(X).labels_).all())
    True
    """
    X = check_pass_rates(X)
    d = X.shape[1]
    used = ~np.all(X == 0.0, axis=1) if drop_zero else np.ones(X.shape[0], dtype=bool)
    X0 = X[used]
    if bandwidth is not None:
        R = float(bandwidth)
    else:
        cap = math.sqrt(d) / 10.0 if max_bandwidth is None else float(max_bandwidth)
        R = float(min(estimate_bandwidth(X0, quantile=quantile, n_jobs=n_jobs), cap))
    sub = np.full(X0.shape[0], -1, dtype=np.intp)
    centers = []
    for _ in range(max_rounds):
        free = np.flatnonzero(sub == -1)
        if free.size < min_cluster_size:
            break
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "Binning data failed"
                ms = MeanShift(bandwidth=R, bin_seeding=True, n_jobs=n_jobs).fit(X0[free])
        except ValueError:  # no point within R of any seed: nothing new to label
            break
        new = ms.labels_.copy()
        new[np.linalg.norm(X0[free] - ms.cluster_centers_[new], axis=1) > R] = -1
        for j in range(len(ms.cluster_centers_)):
            if np.sum(new == j) < min_cluster_size:
                new[new == j] = -1
        kept = [j for j in range(len(ms.cluster_centers_)) if np.any(new == j)]
        if not kept:
            break
        for j in kept:
            sub[free[new == j]] = len(centers)
            centers.append(ms.cluster_centers_[j])
    labels = np.full(X.shape[0], -1, dtype=np.intp)
    labels[used] = sub
    centers = np.array(centers, dtype=float).reshape(-1, d)
    labels, centers = order_clusters(labels, centers)
    return labels, centers, R
