"""Tests of cod_monitor.cod.clustering: Algorithm 1 and its fast path, against the reference loop."""

import math

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.base import clone
from sklearn.cluster import estimate_bandwidth
from cod_monitor.exceptions import NotFittedError
from sklearn.metrics import adjusted_rand_score

from cod_monitor.cod import _meanshift
from cod_monitor.cod.clustering import ImprovedMeanShift
from cod_monitor.exceptions import FitWarning
from cod_monitor.methods.reference import reference_improved_meanshift
from cod_monitor.synthetic import synthetic_pass_rates


def continuous_pass_rates(n_samples, n_models=9, n_trials=100, seed=0):
    """Logistic difficulty curves with uniform threshold, slope and ceiling, binomial noise:
    no clusters to find (as ``continuous`` in benchmarks/speed_generators.py)."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0.0, 1.0, n_models)
    t = rng.uniform(-0.3, 1.3, (n_samples, 1))
    s = rng.uniform(2.0, 15.0, (n_samples, 1))
    c = rng.uniform(0.3, 1.0, (n_samples, 1))
    return rng.binomial(n_trials, c / (1.0 + np.exp(-s * (x - t)))) / n_trials


def resampled(M, n_samples, n_trials=10_000, seed=0):
    """Rows of real pass rates resampled, moved by N(0, 0.3) in log-odds and redrawn from
    ``n_trials`` attempts: all-zero rows, tiny rates, ties (as ``real-shaped`` there)."""
    rng = np.random.default_rng(seed)
    p = M[rng.integers(0, len(M), n_samples)]
    with np.errstate(divide="ignore"):
        logit = np.log(p) - np.log1p(-p)
    p = 1.0 / (1.0 + np.exp(-(logit + rng.normal(0.0, 0.3, p.shape))))
    return rng.binomial(n_trials, p) / n_trials


# --------------------------------------------------------------------------- Algorithm 1


@pytest.mark.parametrize(
    "data, params",
    [
        (dict(n_samples=1500, n_models=9, seed=0), {}),
        (dict(n_samples=1200, n_models=6, seed=1), dict(min_cluster_size=5)),
        # 20 trials: pass rates on a 0.05 grid, many distances tie with R exactly
        (dict(n_samples=800, n_models=9, n_trials=20, seed=2), {}),
        # cap not binding: R is the exact estimate_bandwidth
        (dict(n_samples=800, n_models=9, seed=3), dict(max_bandwidth=1.0)),
        (dict(n_samples=600, n_models=9, seed=4), dict(bandwidth=0.15, min_cluster_size=5)),
    ],
)
def test_same_partition_as_reference_loop(data, params, check_clusters):
    X = synthetic_pass_rates(**data)
    labels, centers, radius = reference_improved_meanshift(X, **params)
    est = ImprovedMeanShift(**params).fit(X)
    assert est.radius_ == pytest.approx(radius, rel=1e-12)
    assert adjusted_rand_score(labels, est.labels_) >= 0.95
    check_clusters(X, est, params.get("min_cluster_size", 10))


def test_same_partition_as_reference_on_real_ladder(monkeys, check_clusters):
    M = monkeys
    for K in (10, 3):
        labels, _, radius = reference_improved_meanshift(M, min_cluster_size=K)
        est = ImprovedMeanShift(min_cluster_size=K).fit(M)
        assert est.radius_ == pytest.approx(radius, rel=1e-12)
        assert adjusted_rand_score(labels, est.labels_) >= 0.95
        check_clusters(M, est, K)


def test_same_partition_as_reference_on_continuous_difficulty(check_clusters):
    # no clusters in the data: many seeds drift for a hundred steps and paths merge
    X = continuous_pass_rates(400, seed=1)
    labels, _, radius = reference_improved_meanshift(X)
    est = ImprovedMeanShift().fit(X)
    assert est.radius_ == radius
    assert adjusted_rand_score(labels, est.labels_) >= 0.99
    check_clusters(X, est, 10)


def test_same_partition_as_reference_on_resampled_real_rates(monkeys, check_clusters):
    # tiny pass rates: the cap does not bind, R is the exact estimate_bandwidth
    X = resampled(monkeys, 500, seed=1)
    labels, _, radius = reference_improved_meanshift(X)
    est = ImprovedMeanShift().fit(X)
    assert radius < 0.1
    assert est.radius_ == pytest.approx(radius, rel=1e-12)
    assert adjusted_rand_score(labels, est.labels_) >= 0.99
    check_clusters(X, est, 10)


@pytest.mark.parametrize("bracket_min", [1, None], ids=["bracketed rows", "whole blocks"])
@pytest.mark.parametrize("n_trials, k", [(4, 1), (4, 37), (20, 120), (20, 299), (1000, 60)])
def test_kth_neighbour_distances_are_exact(n_trials, k, bracket_min, monkeypatch):
    # coarse grids: many duplicate rows and many distances tied with the k-th
    if bracket_min is not None:  # the per-row bracket, which only long rows take
        monkeypatch.setattr(_meanshift, "_KTH_BRACKET_MIN", bracket_min)
    X = synthetic_pass_rates(n_samples=300, n_models=5, n_trials=n_trials, seed=6)
    U, _, counts = _meanshift.distinct_rows(X)
    rows = _meanshift._SortedRows(U, counts.astype(float))
    got = _meanshift._kth_sq_distances(rows, U, k)
    sq = ((U[:, None, :] - X[None, :, :]) ** 2).sum(axis=2)
    assert_array_equal(got, np.sort(sq, axis=1)[:, k - 1])
    assert_array_equal(_meanshift._kth_sq_distances(rows, U, k, workers=2), got)


def test_bracketed_rows_settle_as_a_whole_partition_does(monkeypatch):
    # bounds that bracket the k-th value, miss it below or above, or are too narrow for
    # the rounding band: every row must come out as without bounds
    monkeypatch.setattr(_meanshift, "_KTH_BRACKET_MIN", 1)
    rng = np.random.default_rng(3)
    D = rng.random((6, 400)).astype(np.float32)
    D[:, ::7] = D[:, :1]  # ties at one value
    k, beta = 90, 1e-3
    srt = np.sort(D, axis=1)
    lo = srt[np.arange(6), [40, 95, 10, 88, 89, 0]].astype(float)
    hi = srt[np.arange(6), [150, 200, 60, 90, 91, 399]].astype(float)
    want = _meanshift._settled_rows(D, k, beta)
    got = _meanshift._settled_rows(D, k, beta, lo, hi)
    assert_array_equal(got[0], want[0])
    assert sorted(zip(*got[1:])) == sorted(zip(*want[1:]))


def test_grid_scale_reads_the_number_of_trials():
    assert _meanshift._grid_scale(np.array([[0.0, 0.25], [0.5, 1.0]])) == 4.0
    assert _meanshift._grid_scale(synthetic_pass_rates(200, 4, n_trials=100, seed=0)) == 100.0
    assert _meanshift._grid_scale(np.array([[0.1234567, 0.5]])) is None


@pytest.mark.parametrize("K", [5, 10, 40])
def test_clusters_are_big_enough_and_members_within_radius(X, K, check_clusters):
    est = ImprovedMeanShift(min_cluster_size=K).fit(X)
    assert est.n_clusters_ > 0
    check_clusters(X, est, K)


def test_radius_is_capped_estimate_bandwidth(X, fitted):
    nonzero = X[X.any(axis=1)]
    estimate = estimate_bandwidth(nonzero, quantile=0.1)
    assert fitted.radius_ == pytest.approx(min(estimate, math.sqrt(9) / 10), rel=1e-12)
    loose = ImprovedMeanShift(max_bandwidth=10.0).fit(X)
    assert loose.radius_ == pytest.approx(estimate, rel=1e-12)
    assert ImprovedMeanShift(bandwidth=0.2).fit(X).radius_ == 0.2


@pytest.mark.parametrize("cap, binds", [(None, True), (0.5, False)])
def test_bandwidth_shortcut_on_large_input_keeps_the_rule(cap, binds):
    # above 2,000 rows the cap is checked on a sample before any exact computation
    X = synthetic_pass_rates(n_samples=2600, n_models=9, seed=5)
    exact = estimate_bandwidth(X[X.any(axis=1)], quantile=0.1)
    U = 0.3 if cap is None else cap
    assert (exact > U) == binds
    radius = ImprovedMeanShift(max_bandwidth=cap).fit(X).radius_
    assert radius == pytest.approx(min(exact, U), rel=1e-12)


def test_zero_vectors_are_outliers(X, fitted):
    zero = ~X.any(axis=1)
    assert zero.sum() > 10
    assert np.all(fitted.labels_[zero] == -1)
    kept = ImprovedMeanShift(drop_zero=False).fit(X)
    # the zero rows are a dense blob: without the prefilter they form a cluster
    assert np.all(kept.labels_[zero] >= 0)


def test_deterministic_and_invariant_to_row_order(X, fitted):
    again = ImprovedMeanShift().fit(X)
    assert_array_equal(fitted.labels_, again.labels_)
    assert_array_equal(fitted.cluster_centers_, again.cluster_centers_)
    perm = np.random.default_rng(0).permutation(len(X))
    shuffled = ImprovedMeanShift().fit(X[perm])
    assert_array_equal(shuffled.labels_, fitted.labels_[perm])


def test_clusters_numbered_by_ascending_centre_mean(fitted):
    means = fitted.cluster_centers_.mean(axis=1)
    assert np.all(np.diff(means) >= 0)
    assert set(np.unique(fitted.labels_)) == set(range(-1, fitted.n_clusters_))


def test_fit_predict_and_predict(X, fitted):
    assert_array_equal(ImprovedMeanShift().fit_predict(X), fitted.labels_)
    assert_array_equal(fitted.predict(fitted.cluster_centers_), np.arange(fitted.n_clusters_))
    far = np.full((1, 9), 1.0)
    far[0, :4] = 0.0  # a step no sample shows: outside every cluster's radius
    assert_array_equal(fitted.predict(np.vstack([np.zeros((1, 9)), far])), [-1, -1])


def test_all_zero_input_gives_no_cluster():
    est = ImprovedMeanShift().fit(np.zeros((20, 4)))
    assert est.n_clusters_ == 0
    assert_array_equal(est.labels_, -1)
    assert est.cluster_centers_.shape == (0, 4)
    assert math.isnan(est.radius_)
    assert_array_equal(est.predict(np.full((2, 4), 0.5)), [-1, -1])


def test_max_rounds_exhausted_warns(X):
    est = ImprovedMeanShift(bandwidth=0.1, min_cluster_size=3, max_rounds=1)
    with pytest.warns(FitWarning, match="max_rounds=1"):
        est.fit(X)
    assert est.n_iter_ == 1


# --------------------------------------------------------------------------- API


def test_unfitted_estimator():
    est = ImprovedMeanShift()
    assert not hasattr(est, "labels_")
    with pytest.raises(NotFittedError):
        est.predict(np.zeros((1, 3)))


def test_clone_and_params():
    est = ImprovedMeanShift(min_cluster_size=5, quantile=0.2, drop_zero=False)
    twin = clone(est)
    assert twin.get_params() == est.get_params()
    assert twin.get_params()["min_cluster_size"] == 5
    assert repr(est) == "ImprovedMeanShift(drop_zero=False, min_cluster_size=5, quantile=0.2)"
    assert twin.set_params(quantile=0.3).quantile == 0.3
    with pytest.raises(TypeError):
        ImprovedMeanShift(5)  # keyword-only


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros(5), r"``X`` should be a non-empty 2D array .* X\.shape = \(5,\)"),
        (np.zeros((0, 3)), r"X\.shape = \(0, 3\)"),
        (np.array([[0.1, np.nan], [0.2, 0.3]]), r"``X`` should be finite; found 1 NaN"),
        (np.array([[0.1, 1.5], [-0.2, 0.3]]), r"pass rates in \[0, 1\]; got lo = -0\.2"),
    ],
)
def test_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        ImprovedMeanShift().fit(bad)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(min_cluster_size=0), "The 'min_cluster_size' parameter of ImprovedMeanShift "
         r"must be an int in the range \[1, inf\). Got 0 instead."),
        (dict(quantile=1.5), r"'quantile' .* float in the range \[0, 1\]. Got 1.5 instead"),
        (dict(bandwidth=-1), r"'bandwidth' .* float in the range \(0, inf\) or None. Got -1"),
        (dict(max_bandwidth=0), r"'max_bandwidth' .* or None. Got 0 instead"),
        (dict(drop_zero="yes"), r"'drop_zero' .* instance of 'bool'. Got 'yes'"),
        (dict(max_rounds=2.5), r"'max_rounds' .* int in the range \[1, inf\). Got 2.5"),
    ],
)
def test_bad_params(X, params, match):
    with pytest.raises(ValueError, match=match):
        ImprovedMeanShift(**params).fit(X)


def test_predict_checks_columns(fitted):
    with pytest.raises(ValueError, match=r"as many columns .* X\.shape = \(2, 3\)"):
        fitted.predict(np.zeros((2, 3)))
