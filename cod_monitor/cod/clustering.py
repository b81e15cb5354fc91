"""Clustering of evaluation samples by difficulty (step 2 of COD).

Every evaluation sample is described by its difficulty vector: its pass rates on the ladder
models, ordered by compute.  COD groups samples whose vectors are close, so that the
samples of one cluster share one scaling law, with the *Improved MeanShift* of the paper
(Algorithm 1): flat-kernel MeanShift with a bandwidth capped at ``U``, repeated on the
samples it leaves unassigned, keeping only clusters of at least ``K`` members that all lie
within the bandwidth of their centre.  Everything else is an outlier (label ``-1``).

:class:`ImprovedMeanShift` is a vectorised implementation (kernels in
:mod:`cod_monitor.cod._meanshift`) that gives the partition of the straightforward loop
over scikit-learn's ``MeanShift``
(:func:`cod_monitor.methods.reference.reference_improved_meanshift`).  The paper's
clustering ablations (:mod:`cod_monitor.methods.clustering`) build on
:class:`DifficultyClusterer` and :class:`CentrePredictMixin`.

Label convention shared by every clusterer: ``-1`` is an outlier (including all-zero
difficulty vectors when ``drop_zero=True``), clusters are numbered ``0 .. k-1`` by ascending
mean of their centre, i.e. from the hardest cluster (lowest pass rates) to the easiest.
"""

from __future__ import annotations

import math
import warnings
from functools import partial
from numbers import Integral

import numpy as np

from cod_monitor._estimator import ClusterMixin, Estimator, check_is_fitted
from cod_monitor._validation import check_bool, check_int, check_real, invalid
from cod_monitor._docstrings import fill_doc
from cod_monitor.cod._meanshift import (
    check_pass_rates,
    distinct_rows,
    filtered_rounds,
    flat_mean_shift,
    nearest,
    order_clusters,
    outside,
    resolve_bandwidth,
)
from cod_monitor.exceptions import FitWarning, InputError

__all__ = [
    "BANDWIDTH_PARAMETERS",
    "CentrePredictMixin",
    "DifficultyClusterer",
    "ImprovedMeanShift",
]

#: The numpydoc of the parameters of COD's radius rule, shared by the clusterers that use it.
BANDWIDTH_PARAMETERS = """
    quantile : float in [0, 1], default 0.1
        ``Q``: quantile of :func:`sklearn.cluster.estimate_bandwidth`.
    max_bandwidth : float > 0 or None, default None
        ``U``: cap on the estimated bandwidth.  ``None`` means ``sqrt(d) / 10``, a tenth of
        the largest distance between two points of ``[0, 1]^d`` (``d`` = number of models).
    bandwidth : float > 0 or None, default None
        Use this ``R`` instead of the capped estimate.
    drop_zero : bool, default True
        Set samples whose difficulty vector is all zeros aside as outliers before anything
        else (they take no part in the bandwidth estimate or the clustering).
"""


def _check_n_jobs(owner, value):
    if value is None or (isinstance(value, Integral) and not isinstance(value, bool)
                         and (value >= 1 or value == -1)):
        return value
    raise invalid(owner, "n_jobs", "an int in the range [1, inf), -1 or None", value)


class DifficultyClusterer(ClusterMixin, Estimator):
    """Base of the difficulty clusterers: input checks, zero-vector prefilter, radius rule.

    It stores the parameters of the radius rule (:data:`BANDWIDTH_PARAMETERS`,
    ``random_state`` and ``n_jobs``); a subclass stores its own in ``__init__``, passes
    these on, and implements ``_fit_rows``; it may check its own parameters first in
    ``_check_params``, whose dict reaches ``_fit_rows`` as keyword arguments.
    """

    def __init__(self, *, quantile=0.1, max_bandwidth=None, bandwidth=None, drop_zero=True,
                 random_state=0, n_jobs=None):
        self.quantile = quantile
        self.max_bandwidth = max_bandwidth
        self.bandwidth = bandwidth
        self.drop_zero = drop_zero
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(self, X, y=None):
        """Cluster difficulty vectors.

        Parameters
        ----------
        X : array_like of shape (n_samples, n_models)
            Pass rates in [0, 1], columns ordered by compute.
        y : Ignored
            Present for API consistency.

        Returns
        -------
        self
            The fitted estimator.

        Raises
        ------
        ParameterError
            A parameter is out of range.
        ValueError
            ``X`` is not a finite 2D array in [0, 1].
        """
        checked = self._check_params()
        X = check_pass_rates(X)
        drop = check_bool(type(self).__name__, "drop_zero", self.drop_zero)
        used = ~np.all(X == 0.0, axis=1) if drop else np.ones(X.shape[0], dtype=bool)
        Xu, inverse, counts = distinct_rows(X[used])
        return self._fit_rows(X, used, Xu, inverse, counts, **checked)

    def _check_params(self) -> dict:
        """The subclass's own parameters, checked before ``X`` is read."""
        return {}

    def _fit_rows(self, X, used, Xu, inverse, counts, **checked):  # pragma: no cover
        """Cluster the distinct used rows ``Xu`` (multiplicities ``counts``); return
        :meth:`_finish`."""
        raise NotImplementedError

    def _check_rounds(self) -> dict:
        """``K`` and ``max_rounds`` of Algorithm 1's loop."""
        name = type(self).__name__
        return {"K": check_int(name, "min_cluster_size", self.min_cluster_size, 1),
                "max_rounds": check_int(name, "max_rounds", self.max_rounds, 1)}

    def _radius(self, X_used, Xu, counts):
        """R = min(estimate_bandwidth(X_used, quantile), U), or ``bandwidth`` if given."""
        name = type(self).__name__
        params = {
            "quantile": check_real(name, "quantile", self.quantile, 0.0, 1.0, closed="both"),
            "max_bandwidth": check_real(
                name, "max_bandwidth", self.max_bandwidth, 0.0, math.inf, none_ok=True
            ),
            "bandwidth": check_real(name, "bandwidth", self.bandwidth, 0.0, math.inf,
                                    none_ok=True),
            "random_state": self.random_state,
            "n_jobs": _check_n_jobs(name, self.n_jobs),
        }
        if len(Xu) == 0:
            return math.nan
        return resolve_bandwidth(name, X_used, Xu, counts, params)

    def _fit_in_rounds(self, X, used, Xu, inverse, counts, K, max_rounds, round_clusterer):
        """Algorithm 1's loop (:func:`~cod_monitor.cod._meanshift.filtered_rounds`) with the
        per-round clusterer ``round_clusterer(R)`` builds; sets ``n_iter_`` and warns when
        ``max_rounds`` ran out; returns :meth:`_finish`."""
        R = self._radius(X[used], Xu, counts)
        if len(Xu) == 0:
            self.n_iter_ = 0
            return self._finish(X, used, [], [], R)
        labels, centers, rounds, converged = filtered_rounds(
            Xu, counts.astype(float), R, K, max_rounds, round_clusterer(R)
        )
        if not converged:
            warnings.warn(
                f"{type(self).__name__} stopped after max_rounds={max_rounds} rounds with "
                f"labels still changing; raise max_rounds.",
                FitWarning,
                stacklevel=4,
            )
        self.n_iter_ = rounds
        return self._finish(X, used, labels[inverse], centers, R)

    def _finish(self, X, used, sub_labels, centers, R=None):
        """Scatter labels of the used rows back, order the clusters, set attributes."""
        labels = np.full(X.shape[0], -1, dtype=np.intp)
        labels[used] = sub_labels
        centers = np.asarray(centers, dtype=float).reshape(-1, X.shape[1])
        labels, centers = order_clusters(labels, centers)
        self.labels_ = labels
        self.cluster_centers_ = centers
        self.n_clusters_ = int(len(centers))
        if R is not None:
            self.radius_ = float(R)
        self.n_features_in_ = X.shape[1]
        return self


class CentrePredictMixin:
    """Nearest-centre prediction; rows beyond ``radius_`` are outliers when ``_strict``."""

    _strict = True

    def predict(self, X):
        """Assign new difficulty vectors to the fitted clusters.

        Parameters
        ----------
        X : array_like of shape (n_samples, n_models)
            Pass rates in [0, 1], columns in the order used in :meth:`fit`.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Index of the nearest cluster centre; ``-1`` for all-zero rows when
            ``drop_zero=True``, for rows farther than ``radius_`` from the nearest centre
            (estimators with a member radius), and for every row if no cluster was found.

        Raises
        ------
        cod_monitor.exceptions.NotFittedError
            If the estimator is not fitted yet.
        """
        check_is_fitted(self)
        X = check_pass_rates(X)
        if X.shape[1] != self.n_features_in_:
            raise InputError(
                f"``X`` should have as many columns as the fitted data; got {X.shape = } "
                f"and {self.n_features_in_ = }"
            )
        if self.n_clusters_ == 0:
            return np.full(X.shape[0], -1, dtype=np.intp)
        labels = nearest(X, self.cluster_centers_)
        if self._strict:
            labels[outside(X, self.cluster_centers_, labels, self.radius_)] = -1
        if self.drop_zero:
            labels[np.all(X == 0.0, axis=1)] = -1
        return labels


@fill_doc(bandwidth_parameters=BANDWIDTH_PARAMETERS)
class ImprovedMeanShift(CentrePredictMixin, DifficultyClusterer):
    """Improved MeanShift of COD (Algorithm 1 of Xu et al., ICLR 2026).

    Flat-kernel MeanShift with a capped bandwidth ``R``, repeated on the samples left
    unassigned, keeping only clusters of at least ``min_cluster_size`` samples that all
    lie within ``R`` of their centre.  The remaining samples are outliers (label ``-1``).

    Parameters
    ----------
    min_cluster_size : int, default 10
        ``K``: smallest number of samples a cluster may keep.
    {bandwidth_parameters}
    max_rounds : int, default 100
        Most MeanShift rounds; a :class:`~cod_monitor.exceptions.FitWarning` is issued if
        labels are still changing after them.
    random_state : int, RandomState instance or None, default 0
        Seeds the subsample of the bandwidth shortcut (see Notes).
    n_jobs : int or None, default None
        Threads of the bandwidth estimate's neighbour search (``None``: 1, ``-1``: all
        cores).

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
        Cluster of every sample, ``-1`` for outliers.  Clusters are numbered by ascending
        mean of their centre (hardest first).
    cluster_centers_ : ndarray of shape (n_clusters_, n_models)
        The MeanShift mode of every cluster, i.e. the centre the radius check uses: every
        member lies within ``radius_`` of it.  It is *not* the members' mean; take
        ``X[labels_ == j].mean(axis=0)`` for the cluster's mean pass rates.
    radius_ : float
        The bandwidth ``R`` used (NaN if every sample was an all-zero row).
    n_clusters_ : int
        Number of clusters.
    n_iter_ : int
        Number of MeanShift rounds run.  The loop ends with a round that keeps no new
        cluster, or as soon as fewer than ``min_cluster_size`` samples are unassigned.
    n_features_in_ : int
        Number of ladder models seen in :meth:`fit`.

    See Also
    --------
    cod_monitor.methods.reference.reference_improved_meanshift : The straightforward
        (slow) loop over sklearn's MeanShift.
    cod_monitor.methods.clustering : The paper's clustering ablations.

    Notes
    -----
    Algorithm 1 of the paper, with :math:`X_0` the rows that are not all zeros:

    1. :math:`R = \\min(\\mathrm{estimate\\_bandwidth}(X_0, Q),\\ U)`, once.
    2. All labels are ``-1``.  Repeat until a round changes no label: run
       ``MeanShift(bandwidth=R, bin_seeding=True)`` on the rows labelled ``-1``; reset to
       ``-1`` every member farther than ``R`` from its cluster's centre, then every
       cluster left with fewer than ``K`` members; give the surviving clusters labels
       after the existing ones.
    3. Renumber the clusters by ascending centre mean.

    The MeanShift step reproduces scikit-learn's semantics (bin seeds on a grid of size
    ``R``, flat-kernel hill climbing with ``stop_thresh = 1e-3 R`` and ``max_iter = 300``,
    removal of centres within ``R`` of a denser one, nearest-centre assignment) on the
    distinct rows weighted by their multiplicity.  All seeds move in lockstep; the windows
    of a block of seeds come from one float32 matrix product against the slab of rows
    their projection on the principal axis can reach, and distances within the product's
    rounding bound of ``R`` are recomputed exactly, as scikit-learn's neighbour trees do.
    A position's next mean depends only on the rows in its window, so every window is
    computed once: seeds whose paths meet (the same window, recognised by an exact
    fingerprint) share the rest of the path.  When the pass rates are multiples of
    ``1 / L`` (``L`` trials per sample), window sums are exact integer sums.  The result
    agrees with the reference loop up to the rounding of the means, which can only
    matter where two centres of equal intensity differ by rounding alone (sklearn keeps
    the one with the larger coordinates) or where distances tie exactly with ``R``.

    ``estimate_bandwidth`` (mean distance to the ``int(Q n)``-th nearest neighbour) is
    quadratic in ``n``.  It is computed exactly on the distinct rows: blocks of rows are
    bounded from a subsample, one float32 partition of the slab of rows within the
    bound finds each distance up to rounding, and the rows that close are settled
    exactly.  Above 2,000 rows a control-variate estimate from a sample of rows is
    computed first; if it exceeds ``U`` by six standard errors plus 1 %, ``R = U``
    without the exact computation, so ``R`` follows the paper's rule in every case bar a
    vanishingly unlikely sampling error.

    References
    ----------
    .. [1] Xu et al., "Unveiling Downstream Performance Scaling of LLMs: A
       Clustering-Based Perspective", ICLR 2026, arXiv:2502.17262, Algorithm 1.

    Examples
    --------
    >>> import numpy as np
    >>> from cod_monitor.synthetic import synthetic_pass_rates
    >>> X = synthetic_pass_rates(n_samples=2000, n_models=8, seed=0)
    >>> ims = ImprovedMeanShift().fit(X)
    >>> ims.n_clusters_, round(ims.radius_, 4)  # R = U = sqrt(8) / 10 here
    (7, 0.2828)
    >>> bool(np.all(ims.labels_[X.sum(axis=1) == 0] == -1))  # all-zero rows: outliers
    True
    >>> members = ims.labels_ >= 0
    >>> dist = np.linalg.norm(X[members] - ims.cluster_centers_[ims.labels_[members]], axis=1)
    >>> bool(dist.max() <= ims.radius_)
    True
    """

    def __init__(self, *, min_cluster_size=10, quantile=0.1, max_bandwidth=None,
                 bandwidth=None, drop_zero=True, max_rounds=100, random_state=0, n_jobs=None):
        self.min_cluster_size = min_cluster_size
        self.max_rounds = max_rounds
        super().__init__(quantile=quantile, max_bandwidth=max_bandwidth, bandwidth=bandwidth,
                         drop_zero=drop_zero, random_state=random_state, n_jobs=n_jobs)

    def _check_params(self) -> dict:
        return self._check_rounds()

    def _fit_rows(self, X, used, Xu, inverse, counts, *, K, max_rounds):
        return self._fit_in_rounds(X, used, Xu, inverse, counts, K, max_rounds,
                                   lambda R: partial(flat_mean_shift, R=R))
