import numpy as np
import pytest

from cod_monitor.cod.intervals import backtest_halfwidth, ladder_bootstrap, widen_interval


def test_ladder_bootstrap_resamples_within_groups_and_keeps_sizes():
    groups = [np.arange(0, 5), np.arange(5, 7), np.arange(7, 20)]
    draws = list(ladder_bootstrap(np.random.default_rng(1), groups, np.arange(1, 9), 50))
    assert len(draws) == 50
    for rows, cols in draws:
        assert len(rows) == 20 and len(cols) == 8
        assert set(rows[:5]) <= set(range(5)) and set(rows[5:7]) <= {5, 6}
        assert set(rows[7:]) <= set(range(7, 20))


def test_ladder_bootstrap_one_group_and_seeding():
    a = list(ladder_bootstrap(np.random.default_rng(3), 30, np.arange(1, 7), 5))
    b = list(ladder_bootstrap(np.random.default_rng(3), 30, np.arange(1, 7), 5))
    for (ra, ca), (rb, cb) in zip(a, b):
        assert np.array_equal(ra, rb) and np.array_equal(ca, cb)
        assert ra.min() >= 0 and ra.max() < 30


@pytest.mark.parametrize("compute, need", [(np.arange(1, 9), 4), ([1, 1, 2, 2, 3], 3)])
def test_ladder_bootstrap_draws_enough_distinct_compute(compute, need):
    compute = np.asarray(compute, dtype=float)
    for _, cols in ladder_bootstrap(np.random.default_rng(0), 10, compute, 200):
        assert len(np.unique(compute[cols])) >= need


def test_backtest_halfwidth_grows_with_distance_and_level():
    bt = [{"residual": 0.03, "log_distance": 0.7}, {"residual": -0.01, "log_distance": 0.7},
          {"residual": 0.02, "log_distance": 1.4}]
    ladder = np.logspace(0, 3, 7)
    near, far = backtest_halfwidth(bt, [ladder[-1] * 2, ladder[-1] * 50], ladder, 0.9)
    assert 0 < near < far
    assert backtest_halfwidth(bt, ladder[-1] * 2, ladder, 0.5) < near
    # at a distance equal to every backtest's, sigma is their RMS error
    same = backtest_halfwidth(bt[:2], ladder[-1] * np.exp(0.7), ladder, 0.9)
    from scipy.stats import t

    assert same == pytest.approx(t.ppf(0.95, 2) * np.sqrt((0.03**2 + 0.01**2) / 2))
    assert np.all(backtest_halfwidth([], [1.0, 2.0], ladder, 0.9) == 0)


def test_widen_interval_adds_in_quadrature_and_clips():
    lo, hi = widen_interval(0.5, 0.47, 0.54, 0.04)
    assert lo == pytest.approx(0.5 - 0.05) and hi == pytest.approx(0.5 + np.hypot(0.04, 0.04))
    lo, hi = widen_interval(0.02, 0.01, 0.03, 0.2)
    assert lo == 0.0 and hi < 1.0
    lo, hi = widen_interval(np.array([0.2, 0.8]), np.array([0.2, 0.8]), np.array([0.2, 0.8]), 0.0)
    assert np.allclose(lo, [0.2, 0.8]) and np.allclose(hi, [0.2, 0.8])
