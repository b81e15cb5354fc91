import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from cod_monitor.exceptions import FitWarning
from cod_monitor.cod.mapping import SubsetToFullMapping

GRID = np.linspace(0, 1, 1001)
METHODS = ["spline", "quartic", "pchip"]


def smooth_points(n=7):
    x = np.linspace(0.08, 0.85, n)
    return x, x**1.4 * 0.9 + 0.02 * np.sin(3 * x)


@pytest.mark.parametrize("method", METHODS)
def test_passes_through_end_points_and_is_monotone(method):
    x, y = smooth_points()
    m = SubsetToFullMapping(method=method).fit(x, y)
    assert m.predict(0.0) == pytest.approx(0.0, abs=1e-9)
    assert m.predict(1.0) == pytest.approx(1.0, abs=1e-9)
    assert np.all(np.diff(m.predict(GRID)) >= -1e-9)
    assert m.monotone_


def test_spline_meets_the_rmse_target_on_smooth_data():
    x, y = smooth_points()
    m = SubsetToFullMapping(rmse_target=0.005).fit(x, y)
    assert m.method_ == "spline"
    assert m.rmse_ < 0.005
    loose = SubsetToFullMapping(rmse_target=0.05).fit(x, y)
    assert loose.smoothing_ > m.smoothing_  # a looser target keeps more smoothing


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=12
    ),
    st.sampled_from(METHODS),
)
def test_monotone_on_adversarial_points(points, method):
    x, y = np.array(points).T
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)
        m = SubsetToFullMapping(method=method).fit(x, y)
    values = m.predict(GRID)
    assert np.all(np.diff(values) >= -1e-9)
    assert values[0] == pytest.approx(0.0, abs=1e-9) and values[-1] == pytest.approx(1.0, abs=1e-9)


def test_non_monotone_spline_falls_back_with_a_warning():
    x = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    y = np.array([0.4, 0.1, 0.5, 0.15, 0.6, 0.2])
    with pytest.warns(FitWarning, match="not monotone"):
        m = SubsetToFullMapping(method="spline").fit(x, y)
    assert m.method_ == "pchip"


def test_one_point_uses_pchip():
    m = SubsetToFullMapping().fit([0.5], [0.3])
    assert m.method_ == "pchip"
    assert m.predict(0.5) == pytest.approx(0.3)


def test_anchor_points_change_the_map_above_the_ladder():
    x, y = smooth_points()
    plain = SubsetToFullMapping().fit(x, y)
    anchored = SubsetToFullMapping().fit(np.r_[x, 0.95], np.r_[y, 0.8])
    assert anchored.method_ == "spline"
    assert anchored.predict(0.95) == pytest.approx(0.8, abs=0.01)
    assert abs(plain.predict(0.95) - 0.8) > 0.03


def test_bad_method_and_shapes():
    with pytest.raises(ValueError, match="'method' parameter"):
        SubsetToFullMapping(method="cubic").fit([0.5], [0.5])
    with pytest.raises(ValueError, match="differ"):
        SubsetToFullMapping().fit([0.1, 0.2], [0.1])
    with pytest.raises(ValueError, match="finite"):
        SubsetToFullMapping().fit([0.1, np.nan], [0.1, 0.2])


def test_unfitted():
    from cod_monitor.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        SubsetToFullMapping().predict(0.5)


# ------------------------------------------------------------------- linear tail


def test_linear_tail_follows_the_top_slope_instead_of_going_to_one():
    # full = 0.8 * subset + 0.08: a rest that stays at 0.4 of the samples' weight
    x = np.linspace(0.1, 0.7, 7)
    y = 0.8 * x + 0.08
    tail = SubsetToFullMapping(method="linear_tail").fit(x, y)
    assert tail.method_ == "linear_tail" and tail.monotone_
    assert_allclose(tail.predict(x), y, atol=1e-9)  # through the points
    assert tail.predict(0.9) == pytest.approx(0.8 * 0.9 + 0.08, abs=1e-9)  # slope 0.8 beyond
    assert tail.predict(1.0) == pytest.approx(0.88, abs=1e-9)  # not pinned at (1, 1)
    assert tail.predict(0.0) == pytest.approx(0.0, abs=1e-9)
    pinned = SubsetToFullMapping(method="spline").fit(x, y)
    assert pinned.predict(0.9) - tail.predict(0.9) > 0.01  # the spline bends up to (1, 1)
    assert len(tail.points_) == len(x) + 1  # (0, 0) but no (1, 1)


def test_linear_tail_never_slopes_down():
    x = np.array([0.2, 0.4, 0.5, 0.6])
    y = np.array([0.3, 0.5, 0.45, 0.4])  # falling at the top
    m = SubsetToFullMapping(method="linear_tail").fit(x, y)
    values = m.predict(GRID)
    assert np.all(np.diff(values) >= -1e-12)
    assert m.predict(0.95) == pytest.approx(m.predict(0.6))  # flat tail, not falling
