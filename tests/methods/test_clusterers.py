"""Tests of cod_monitor.methods.clustering: the clustering ablations and make_clusterer."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.cluster import DBSCAN, MeanShift
from sklearn.metrics import adjusted_rand_score

from cod_monitor.methods.clustering import (
    CLUSTERERS,
    DifficultyDBSCAN,
    DifficultyKMeans,
    ImprovedKMeans,
    PlainMeanShift,
    make_clusterer,
)



@pytest.mark.parametrize("name", sorted(CLUSTERERS))
def test_every_clusterer_gives_sensible_labels(X, name):
    est = make_clusterer(name)
    assert isinstance(est, CLUSTERERS[name])
    assert "random_state" in est.get_params()  # CODForecaster forwards its seed
    labels = est.fit_predict(X)
    assert labels.shape == (len(X),)
    assert np.all(labels[~X.any(axis=1)] == -1)
    assert 1 <= est.n_clusters_ == labels.max() + 1
    assert set(np.unique(labels[labels >= 0])) == set(range(est.n_clusters_))
    assert est.cluster_centers_.shape == (est.n_clusters_, X.shape[1])
    assert np.all(np.diff(est.cluster_centers_.mean(axis=1)) >= 0)
    assert_array_equal(clone(est).fit(X).labels_, labels)


def test_make_clusterer_unknown_name():
    match = (
        r"The 'name' parameter of make_clusterer must be a str among \{'dbscan', "
        r"'improved_kmeans', 'improved_meanshift', 'kmeans', 'meanshift'\}. "
        r"Got 'optics' instead."
    )
    with pytest.raises(ValueError, match=match):
        make_clusterer("optics")


def test_make_clusterer_passes_params():
    est = make_clusterer("improved_meanshift", min_cluster_size=7)
    assert est.min_cluster_size == 7
    with pytest.raises(TypeError):
        make_clusterer("dbscan", n_clusters=3)


def test_plain_meanshift_is_one_sklearn_run(X):
    est = PlainMeanShift().fit(X)
    nonzero = X.any(axis=1)
    sk = MeanShift(bandwidth=est.radius_, bin_seeding=True).fit(X[nonzero])
    assert adjusted_rand_score(sk.labels_, est.labels_[nonzero]) >= 0.95
    assert np.all(est.labels_[nonzero] >= 0)  # no filtering: every sample is clustered


def test_kmeans_defaults_to_improved_meanshift_cluster_count(X, fitted):
    assert DifficultyKMeans().fit(X).n_clusters_ == fitted.n_clusters_
    assert DifficultyKMeans(n_clusters=3).fit(X).n_clusters_ == 3
    with pytest.raises(ValueError, match="'n_clusters' parameter of DifficultyKMeans"):
        DifficultyKMeans(n_clusters=0).fit(X)


def test_improved_kmeans_filters_like_algorithm_1(X, check_clusters):
    est = ImprovedKMeans(n_clusters=12).fit(X)
    check_clusters(X, est, 10)
    assert est.n_iter_ >= 1


def test_dbscan_matches_sklearn(X):
    est = DifficultyDBSCAN().fit(X)
    nonzero = X.any(axis=1)
    sk = DBSCAN(eps=est.radius_, min_samples=10).fit(X[nonzero])
    assert adjusted_rand_score(sk.labels_, est.labels_[nonzero]) == pytest.approx(1.0)
    assert_array_equal(sk.labels_ == -1, est.labels_[nonzero] == -1)
    members = est.labels_ >= 0
    for j in range(est.n_clusters_):
        assert_allclose(est.cluster_centers_[j], X[est.labels_ == j].mean(axis=0))
    assert members.sum() > 0


def test_ablations_on_real_ladder(monkeys):
    M = monkeys
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no convergence or fallback warnings
        for name in sorted(CLUSTERERS):
            est = make_clusterer(name, **({} if name == "meanshift" else {"min_cluster_size": 3}))
            labels = est.fit_predict(M)
            assert labels.shape == (M.shape[0],)
            assert np.all(labels[~M.any(axis=1)] == -1)
