import numpy as np
import pytest
from numpy.testing import assert_allclose

from cod_monitor.cod.laws import LAW_FORMS, expected_accuracy, fit_law, fit_laws, fit_local_trend

C = np.logspace(np.log10(1.7), np.log10(1.7e4), 8)  # the synthetic ladder's compute


@pytest.mark.parametrize(
    "a, b, c, g",
    [
        (5.0, 0.5, 0.1, 0.0),
        (40.0, 0.6, 0.15, 0.0),
        (30.0, 0.45, 0.2, 0.25),
        (3.0, 0.4, 0.03, 0.0),
        (300.0, 0.7, 0.05, 0.1),
    ],
)
def test_recovers_parameters_from_noiseless_curve(a, b, c, g):
    fit = fit_law(C, expected_accuracy(C, a, b, c, g))
    assert fit.success
    assert fit.rmse < 1e-5
    # the curve itself is recovered everywhere, including 30x beyond the ladder
    grid = np.logspace(0, 6, 50)
    assert_allclose(fit(grid), expected_accuracy(grid, a, b, c, g), atol=2e-3)
    assert_allclose([fit.a, fit.b, fit.c, fit.g], [a, b, c, g], rtol=0.05, atol=0.01)


def test_noisy_curve_extrapolates_within_tolerance():
    rng = np.random.default_rng(3)
    truth = expected_accuracy(C, 40.0, 0.6, 0.15)
    noisy = truth + rng.normal(0, 0.005, C.shape)
    fit = fit_law(C, noisy)
    target = 6e5
    assert abs(fit(target) - expected_accuracy(target, 40.0, 0.6, 0.15)) < 0.03


@pytest.mark.parametrize("form", sorted(LAW_FORMS))
def test_ablation_forms_hold_the_other_parameters_at_zero(form):
    fit = fit_law(C, expected_accuracy(C, 20.0, 0.5, 0.1, 0.2), form=form)
    for name in ("c", "g"):
        if name not in LAW_FORMS[form]:
            assert getattr(fit, name) == 0.0
    assert fit.form == form


def test_plain_law_cannot_fit_a_floor_the_full_law_can():
    y = expected_accuracy(C, 20.0, 0.5, 0.1, 0.25)
    assert fit_law(C, y, form="plain").rmse > 10 * fit_law(C, y, form="full").rmse


def test_fit_laws_matches_single_fits_and_warm_start_reproduces():
    rng = np.random.default_rng(0)
    params = [(10 ** rng.uniform(0.3, 3), rng.uniform(0.3, 0.8), rng.uniform(0, 0.4)) for _ in range(6)]
    Y = np.array([expected_accuracy(C, a, b, c) for a, b, c in params])
    fits = fit_laws(C, Y)
    for row, fit in zip(Y, fits):
        assert_allclose(fit(C), row, atol=1e-4)
    warm = fit_laws(C, Y, init=fits)
    for f, w in zip(fits, warm):
        assert_allclose(w(C), f(C), atol=1e-5)


def test_unit_change_rescales_a_but_not_the_curve():
    y = expected_accuracy(C, 40.0, 0.6, 0.15)
    in_units = fit_law(C, y)
    in_flops = fit_law(C * 1e18, y)
    assert_allclose(in_flops.a, in_units.a * 1e18**in_units.b, rtol=1e-3)
    assert_allclose(in_flops(6e5 * 1e18), in_units(6e5), atol=1e-4)


@pytest.mark.parametrize(
    "compute, accuracy, match",
    [
        (np.ones(3), np.ones(4), "match the last axis"),
        (np.array([1.0, -1.0, 2.0]), np.ones(3), "positive"),
        (np.array([2.0, 2.0, 2.0]), np.ones(3), "two distinct"),
    ],
)
def test_bad_input(compute, accuracy, match):
    with pytest.raises(ValueError, match=match):
        fit_laws(compute, accuracy)


def test_unknown_form():
    with pytest.raises(ValueError, match="'form' parameter"):
        fit_law(C, expected_accuracy(C, 5, 0.5), form="quadratic")


# --------------------------------------------------------------------- local trend


def test_local_trend_recovers_a_line_in_log_compute_rising_or_falling():
    for slope in (0.04, -0.05):
        y = 0.5 + slope * np.log(C)
        trend = fit_local_trend(C, y)
        assert_allclose([trend.slope, trend.intercept], [slope, 0.5], atol=1e-10)
        assert_allclose(trend(6e5), np.clip(0.5 + slope * np.log(6e5), 0, 1), atol=1e-10)
        assert trend.rmse < 1e-12


def test_local_trend_follows_the_top_of_the_ladder_not_its_start():
    # flat at 0.1 over the bottom half, then rising 0.1 per e-fold: the window sees the rise
    x = np.log(C)
    y = np.where(x < x[4], 0.1, 0.1 + 0.1 * (x - x[4]))
    trend = fit_local_trend(C, y, window=0.5)
    assert trend.n_window == 4
    assert_allclose(trend.slope, 0.1, atol=1e-10)
    whole = fit_local_trend(C, y, window=1.0)
    assert whole.n_window == 8 and whole.slope < 0.08  # the flat start drags it down


def test_local_trend_interpolates_below_its_window_and_clips_beyond():
    y = np.array([0.02, 0.3, 0.1, 0.2, 0.5, 0.6, 0.7, 0.8])
    trend = fit_local_trend(C, y)
    assert_allclose(trend(C[:3]), y[:3], atol=1e-12)  # observed points below the window
    assert float(trend(1e12)) == 1.0  # the line is clipped to [0, 1]
    assert np.all(np.isfinite(trend(np.logspace(-2, 12, 50))))


def test_local_trend_averages_repeated_compute_and_needs_three_points():
    c = np.array([1.0, 1.0, 10.0, 100.0, 100.0, 1000.0])
    y = np.array([0.1, 0.3, 0.3, 0.45, 0.55, 0.7])
    trend = fit_local_trend(c, y, window=0.1)
    assert trend.n_window == 3  # min_points wins over a tiny window
    assert float(trend(1.0)) == pytest.approx(0.2)  # the two points at C=1 averaged


@pytest.mark.parametrize(
    "compute, accuracy, window, match",
    [
        (np.ones(3), np.ones(4), 0.5, "1D of one shape"),
        (np.array([1.0, -1.0, 2.0]), np.ones(3), 0.5, "positive"),
        (C, np.ones(8), 0.0, "'window' parameter"),
        (C, np.ones(8), 1.5, "'window' parameter"),
    ],
)
def test_local_trend_bad_input(compute, accuracy, window, match):
    with pytest.raises(ValueError, match=match):
        fit_local_trend(compute, accuracy, window=window)


def test_warm_refits_in_one_batch_equal_one_call_per_replicate():
    from cod_monitor.cod.laws import fit_laws_warm

    rng = np.random.default_rng(1)
    m, K, R = 7, 5, 12
    x = np.logspace(0, 3, m)
    Y = np.clip(np.array([expected_accuracy(x / 30, rng.uniform(.5, 5), rng.uniform(.2, 1.2),
                                            0.1, 0.1) for _ in range(K)])
                + rng.normal(0, 0.01, (K, m)), 0, 1)
    init = fit_laws(x, Y)
    cols = np.sort(rng.integers(0, m, (R, m)), axis=1)
    cols[:, -1] = m - 1  # at least two distinct compute values per replicate
    acc = np.clip(Y[:, cols].transpose(1, 0, 2) + rng.normal(0, 0.01, (R, K, m)), 0, 1)
    batched = fit_laws_warm(x[cols], acc, init)
    for r in range(R):
        assert batched[r] == fit_laws(x[cols[r]], acc[r], init=init)  # to the last bit


def test_warm_batch_refuses_a_replicate_with_one_compute_value():
    from cod_monitor.cod.laws import fit_laws_warm
    from cod_monitor.exceptions import InputError

    init = fit_laws(C, expected_accuracy(C, 5.0, 0.5, 0.1)[None, :])
    compute = np.vstack([C, np.full_like(C, C[0])])
    acc = np.repeat(expected_accuracy(C, 5.0, 0.5, 0.1)[None, None, :], 2, axis=0)
    with pytest.raises(InputError, match="two distinct"):
        fit_laws_warm(compute, acc, init)


def test_shared_fits_reuse_identical_law_fits_only_inside_the_block():
    from cod_monitor.cod._memo import shared_fits

    y = expected_accuracy(C, 40.0, 0.6, 0.15)[None, :]
    outside = fit_laws(C, y)
    with shared_fits():
        first, again = fit_laws(C, y), fit_laws(C, y)
        other = fit_laws(C, y * 0.9)
    assert first[0] is again[0]  # reused
    assert first == outside and other != first
    assert fit_laws(C, y)[0] is not first[0]  # nothing kept after the block
