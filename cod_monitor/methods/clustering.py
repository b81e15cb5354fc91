"""The paper's clustering ablations of COD, and every difficulty clusterer by name.

COD clusters with :class:`~cod_monitor.cod.clustering.ImprovedMeanShift`; the paper's
ablation replaces it with plain MeanShift, KMeans or an improved KMeans (Algorithm 1's
filtering around KMeans), and DBSCAN is a density-based variant. All share COD's label
convention and radius rule (:class:`~cod_monitor.cod.clustering.DifficultyClusterer`);
:func:`make_clusterer` builds any of them by name.

References
----------
Xu et al., "Unveiling Downstream Performance Scaling of LLMs: A Clustering-Based
Perspective", ICLR 2026, arXiv:2502.17262 (the clustering ablation).
"""

from __future__ import annotations

import numpy as np

from cod_monitor._validation import check_choice, check_int
from cod_monitor._docstrings import fill_doc
from cod_monitor.cod._meanshift import flat_mean_shift
from cod_monitor.cod.clustering import (
    BANDWIDTH_PARAMETERS,
    CentrePredictMixin,
    DifficultyClusterer,
    ImprovedMeanShift,
)

__all__ = [
    "CLUSTERERS",
    "DifficultyDBSCAN",
    "DifficultyKMeans",
    "ImprovedKMeans",
    "PlainMeanShift",
    "make_clusterer",
]


@fill_doc(bandwidth_parameters=BANDWIDTH_PARAMETERS)
class PlainMeanShift(CentrePredictMixin, DifficultyClusterer):
    """One MeanShift run with COD's bandwidth rule: the "MeanShift" clustering ablation.

    Every sample that is not an all-zero row (with ``drop_zero=True``) joins the cluster
    of its nearest mode: no radius check, no minimum size, no further rounds.

    Parameters
    ----------
    {bandwidth_parameters}
    random_state : int, RandomState instance or None, default 0
        Seeds the bandwidth shortcut (see :class:`ImprovedMeanShift`).
    n_jobs : int or None, default None
        Threads of the bandwidth estimate's neighbour queries.

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
        Cluster of every sample; ``-1`` only for dropped all-zero rows.
    cluster_centers_ : ndarray of shape (n_clusters_, n_models)
        MeanShift modes, clusters numbered by ascending centre mean.
    radius_ : float
        The bandwidth used.
    n_clusters_ : int
        Number of clusters.
    n_features_in_ : int
        Number of ladder models.

    Notes
    -----
    The same result as ``sklearn.cluster.MeanShift(bandwidth=R, bin_seeding=True)`` on the
    non-zero rows (see the Notes of :class:`ImprovedMeanShift`), computed by the same
    vectorised engine.

    Examples
    --------
    >>> from cod_monitor.methods.clustering import PlainMeanShift
    >>> from cod_monitor.synthetic import synthetic_pass_rates
    >>> X = synthetic_pass_rates(n_samples=2000, n_models=8, seed=0)
    >>> pms = PlainMeanShift().fit(X)
    >>> pms.n_clusters_, int((pms.labels_ == -1).sum())  # only the all-zero rows are -1
    (7, 79)
    """

    _strict = False

    def _fit_rows(self, X, used, Xu, inverse, counts):
        R = self._radius(X[used], Xu, counts)
        found = flat_mean_shift(Xu, counts.astype(float), R) if len(Xu) else None
        if found is None:
            return self._finish(X, used, np.full(len(inverse), -1), [], R)
        centers, labels = found
        return self._finish(X, used, labels[inverse], centers, R)


def _kmeans(X, w, n_clusters, n_init, random_state):
    """Weighted KMeans on distinct rows; ``n_clusters`` capped by the number of rows."""
    from sklearn.cluster import KMeans  # only this ablation needs scikit-learn's clusterers

    km = KMeans(n_clusters=min(n_clusters, len(X)), n_init=n_init, random_state=random_state)
    km.fit(X, sample_weight=w)
    return km.labels_.astype(np.intp), km.cluster_centers_


@fill_doc(bandwidth_parameters=BANDWIDTH_PARAMETERS)
class DifficultyKMeans(CentrePredictMixin, DifficultyClusterer):
    """KMeans on difficulty vectors: the "KMeans" clustering ablation of COD.

    Parameters
    ----------
    n_clusters : int or None, default None
        Number of clusters.  ``None`` uses the number of clusters
        :class:`ImprovedMeanShift` finds with the parameters below, so that the ablation
        changes the clustering method and nothing else (the paper does not state its
        choice).
    min_cluster_size : int, default 10
        ``K``: smallest number of samples a cluster may keep.
    {bandwidth_parameters}
    n_init : int or 'auto', default 'auto'
        Passed to :class:`sklearn.cluster.KMeans`.
    random_state : int, RandomState instance or None, default 0
        Seeds KMeans and the bandwidth shortcut.
    n_jobs
        As in :class:`PlainMeanShift`.

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters_, n_models)
        KMeans centroids (the members' weighted means), numbered by ascending mean.
    labels_, n_clusters_, n_features_in_
        As in :class:`PlainMeanShift`.

    Notes
    -----
    ``min_cluster_size``, ``quantile``, ``max_bandwidth`` and ``bandwidth`` only matter
    when ``n_clusters=None``.  KMeans runs on the distinct rows weighted by their
    multiplicity, which minimises the same objective as running it on all rows.

    Examples
    --------
    >>> from cod_monitor.methods.clustering import DifficultyKMeans
    >>> from cod_monitor.synthetic import synthetic_pass_rates
    >>> X = synthetic_pass_rates(n_samples=2000, n_models=8, seed=0)
    >>> DifficultyKMeans().fit(X).n_clusters_  # as many as ImprovedMeanShift finds
    7
    >>> DifficultyKMeans(n_clusters=4).fit(X).n_clusters_
    4
    """

    _strict = False

    def __init__(self, *, n_clusters=None, min_cluster_size=10, quantile=0.1,
                 max_bandwidth=None, bandwidth=None, drop_zero=True, n_init="auto",
                 random_state=0, n_jobs=None):
        self.n_clusters = n_clusters
        self.min_cluster_size = min_cluster_size
        self.n_init = n_init
        super().__init__(quantile=quantile, max_bandwidth=max_bandwidth, bandwidth=bandwidth,
                         drop_zero=drop_zero, random_state=random_state, n_jobs=n_jobs)

    def _n_clusters(self, X):
        name = type(self).__name__
        n_clusters = check_int(name, "n_clusters", self.n_clusters, 1, none_ok=True)
        if n_clusters is None:
            ims = ImprovedMeanShift(
                min_cluster_size=self.min_cluster_size,
                quantile=self.quantile,
                max_bandwidth=self.max_bandwidth,
                bandwidth=self.bandwidth,
                drop_zero=self.drop_zero,
                random_state=self.random_state,
                n_jobs=self.n_jobs,
            ).fit(X)
            n_clusters = max(1, ims.n_clusters_)
        return n_clusters

    def _fit_rows(self, X, used, Xu, inverse, counts):
        n_clusters = self._n_clusters(X)
        if len(Xu) == 0:
            return self._finish(X, used, [], [])
        labels, centers = _kmeans(Xu, counts, n_clusters, self.n_init, self.random_state)
        return self._finish(X, used, labels[inverse], centers)


@fill_doc(bandwidth_parameters=BANDWIDTH_PARAMETERS)
class ImprovedKMeans(DifficultyKMeans):
    """KMeans inside Algorithm 1's filtering loop: the "Improved KMeans" ablation of COD.

    Each round runs KMeans on the samples still labelled ``-1``, resets to ``-1`` every
    member farther than ``R`` from its centroid and every cluster left with fewer than
    ``min_cluster_size`` members, and keeps the rest; rounds repeat until one changes no
    label.  ``R`` follows the bandwidth rule of :class:`ImprovedMeanShift`.

    Parameters
    ----------
    n_clusters : int or None, default None
        Clusters per KMeans round (capped by the number of distinct unassigned rows).
        ``None`` uses the number of clusters :class:`ImprovedMeanShift` finds.
    min_cluster_size : int, default 10
        ``K``: smallest number of samples a cluster may keep.
    {bandwidth_parameters}
    max_rounds : int, default 100
        Most KMeans rounds (a :class:`~cod_monitor.exceptions.FitWarning` if exhausted).
    n_init, random_state, n_jobs
        As in :class:`DifficultyKMeans`.

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
        Cluster of every sample, ``-1`` for outliers.
    cluster_centers_ : ndarray of shape (n_clusters_, n_models)
        The KMeans centroid each cluster's radius check used (computed before the
        filtering, so not exactly the mean of the kept members).
    radius_ : float
        The radius ``R`` used.
    n_clusters_ : int
        Number of clusters kept.
    n_iter_ : int
        KMeans rounds run.
    n_features_in_ : int
        Number of ladder models.

    Examples
    --------
    >>> from cod_monitor.methods.clustering import ImprovedKMeans
    >>> from cod_monitor.synthetic import synthetic_pass_rates
    >>> ikm = ImprovedKMeans().fit(synthetic_pass_rates(n_samples=2000, n_models=8, seed=0))
    >>> ikm.n_clusters_, int((ikm.labels_ == -1).sum())
    (11, 94)
    """

    _strict = True

    def __init__(self, *, n_clusters=None, min_cluster_size=10, quantile=0.1,
                 max_bandwidth=None, bandwidth=None, drop_zero=True, max_rounds=100,
                 n_init="auto", random_state=0, n_jobs=None):
        self.max_rounds = max_rounds
        super().__init__(n_clusters=n_clusters, min_cluster_size=min_cluster_size,
                         quantile=quantile, max_bandwidth=max_bandwidth, bandwidth=bandwidth,
                         drop_zero=drop_zero, n_init=n_init, random_state=random_state,
                         n_jobs=n_jobs)

    def _check_params(self) -> dict:
        return self._check_rounds()

    def _fit_rows(self, X, used, Xu, inverse, counts, *, K, max_rounds):
        def round_clusterer(R):
            n_clusters = self._n_clusters(X)  # once, when there are rows to cluster

            def kmeans(Xf, wf):
                labels, centers = _kmeans(Xf, wf, n_clusters, self.n_init, self.random_state)
                return centers, labels

            return kmeans

        return self._fit_in_rounds(X, used, Xu, inverse, counts, K, max_rounds,
                                   round_clusterer)


@fill_doc(bandwidth_parameters=BANDWIDTH_PARAMETERS)
class DifficultyDBSCAN(DifficultyClusterer):
    """DBSCAN with ``eps = R`` and ``min_samples = K``: a density-clustering ablation.

    Parameters
    ----------
    min_cluster_size : int, default 10
        ``K``, used as DBSCAN's ``min_samples``.
    {bandwidth_parameters}
    random_state : int, RandomState instance or None, default 0
        Seeds the bandwidth shortcut (see :class:`ImprovedMeanShift`).
    n_jobs : int or None, default None
        Threads of the neighbour queries (bandwidth estimate and DBSCAN).

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
        Cluster of every sample; ``-1`` for DBSCAN noise and dropped all-zero rows.
    cluster_centers_ : ndarray of shape (n_clusters_, n_models)
        Mean of each cluster's members, clusters numbered by ascending centre mean.
    radius_ : float
        ``eps`` used (the radius ``R`` of :class:`ImprovedMeanShift`).
    n_clusters_, n_features_in_
        As in :class:`PlainMeanShift`.

    Notes
    -----
    DBSCAN runs on the distinct rows with their multiplicities as ``sample_weight``,
    which is equivalent to running it on all rows.  ``min_cluster_size`` is DBSCAN's
    ``min_samples`` (a core sample counts itself).  Unlike Algorithm 1 there is no member
    radius and no minimum size (a border sample joins the first cluster that reaches it,
    so a cluster can end up smaller than ``min_samples``), and chains of core samples can
    join distant difficulty levels into one cluster.

    References
    ----------
    .. [1] M. Ester, H.-P. Kriegel, J. Sander, X. Xu, "A Density-Based Algorithm for
       Discovering Clusters in Large Spatial Databases with Noise", KDD 1996.

    Examples
    --------
    >>> from cod_monitor.methods.clustering import DifficultyDBSCAN
    >>> from cod_monitor.synthetic import synthetic_pass_rates
    >>> X = synthetic_pass_rates(n_samples=2000, n_models=8, seed=0)
    >>> DifficultyDBSCAN().fit(X).n_clusters_  # dense regions chain into few clusters
    3
    """

    def __init__(self, *, min_cluster_size=10, quantile=0.1, max_bandwidth=None,
                 bandwidth=None, drop_zero=True, random_state=0, n_jobs=None):
        self.min_cluster_size = min_cluster_size
        super().__init__(quantile=quantile, max_bandwidth=max_bandwidth, bandwidth=bandwidth,
                         drop_zero=drop_zero, random_state=random_state, n_jobs=n_jobs)

    def _check_params(self) -> dict:
        return {"K": check_int(type(self).__name__, "min_cluster_size", self.min_cluster_size, 1)}

    def _fit_rows(self, X, used, Xu, inverse, counts, *, K):
        R = self._radius(X[used], Xu, counts)
        if len(Xu) == 0:
            return self._finish(X, used, [], [], R)
        from sklearn.cluster import DBSCAN

        db = DBSCAN(eps=R, min_samples=K, n_jobs=self.n_jobs)
        labels = db.fit(Xu, sample_weight=counts).labels_.astype(np.intp)
        k = labels.max() + 1
        member = labels >= 0
        size = np.bincount(labels[member], weights=counts[member], minlength=k)
        centers = np.column_stack(
            [np.bincount(labels[member], weights=(counts * col)[member], minlength=k)
             for col in Xu.T]
        ) / np.maximum(size, 1)[:, None]
        return self._finish(X, used, labels[inverse], centers, R)

#: Clusterer classes by the name :func:`make_clusterer` and ``CODForecaster`` accept.
CLUSTERERS = {
    "improved_meanshift": ImprovedMeanShift,
    "meanshift": PlainMeanShift,
    "kmeans": DifficultyKMeans,
    "improved_kmeans": ImprovedKMeans,
    "dbscan": DifficultyDBSCAN,
}


def make_clusterer(name, **params):
    """Build a difficulty clusterer by name.

    Parameters
    ----------
    name : {'improved_meanshift', 'meanshift', 'kmeans', 'improved_kmeans', 'dbscan'}
        ``improved_meanshift`` is COD's clustering; the others are its ablations.
    **params
        Keyword parameters of the clusterer's class.

    Returns
    -------
    estimator
        An unfitted clusterer with ``fit``, ``fit_predict`` and ``labels_``.

    Raises
    ------
    ParameterError
        If ``name`` is not one of the names above.
    TypeError
        If a parameter does not belong to the chosen class.

    Examples
    --------
    >>> from cod_monitor.methods.clustering import make_clusterer
    >>> make_clusterer("kmeans", n_clusters=4)
    DifficultyKMeans(n_clusters=4)
    """
    check_choice("make_clusterer", "name", name, sorted(CLUSTERERS))
    return CLUSTERERS[name](**params)
