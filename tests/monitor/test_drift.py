"""The pure drift decision: patience, hysteresis, recovery, tolerance, messages."""

import pytest

from cod_monitor.monitor.drift import (
    DriftConfig,
    DriftState,
    decide,
    evaluation_failure_alert,
)
from cod_monitor.records import AlertReason, ForecastPoint, Observation

# forecast band [0.45, 0.50] around 0.475 at every step
BAND = {"value": 0.475, "lower": 0.45, "upper": 0.50}
# the band rule alone (the cumulative-shortfall rule has its own tests below)
NO_CUSUM = {"cusum_threshold": None}


def fp(step, **kw):
    return ForecastPoint(step=step, compute=1e20 * step, benchmark="gsm8k", **{**BAND, **kw})


def run(values, config, forecasts=None):
    """Feed observations in order; return the alert reason (or None) of each."""
    state, out = DriftState(), []
    for i, v in enumerate(values):
        step = 100 * (i + 1)
        f = fp(step) if forecasts is None else forecasts[i]
        alert, state = decide(Observation(step, 1e20, "gsm8k", v), f, state, config)
        out.append(None if alert is None else alert.reason)
    return out, state


B, R, U = AlertReason.BELOW_BAND, AlertReason.RECOVERED, AlertReason.FORECAST_UNAVAILABLE


@pytest.mark.parametrize(
    "values, patience, expected",
    [
        # tolerance 0.02: the band edge is 0.43
        ([0.44, 0.44, 0.44], 1, [None, None, None]),  # inside the widened band
        ([0.42], 1, [B]),
        ([0.42, 0.42, 0.42], 2, [None, B, None]),  # alerts once, not on every evaluation
        ([0.42, 0.44, 0.42], 2, [None, None, None]),  # an in-band value resets the count
        ([0.42, 0.42, 0.44, 0.42, 0.42], 3, [None, None, None, None, None]),
        ([0.42, 0.42, 0.42], 3, [None, None, B]),
        ([0.60, 0.60], 1, [None, None]),  # above the band is not drift
    ],
)
def test_patience(values, patience, expected):
    reasons, _ = run(values, DriftConfig(tolerance=0.02, patience=patience, **NO_CUSUM))
    assert reasons == expected


@pytest.mark.parametrize(
    "values, margin, recovery_patience, expected",
    [
        # alert at the 1st value; threshold to clear = 0.43 + margin
        ([0.40, 0.435, 0.45], 0.01, 1, [B, None, R]),  # 0.435 < 0.44: hysteresis holds
        ([0.40, 0.445], 0.01, 1, [B, R]),
        ([0.40, 0.445, 0.445], 0.01, 2, [B, None, R]),
        ([0.40, 0.445, 0.42, 0.445, 0.445], 0.01, 2, [B, None, None, None, R]),
        ([0.40, 0.431], 0.0, 1, [B, R]),  # no margin: back inside the band clears
        ([0.40, 0.45, 0.40], 0.01, 1, [B, R, B]),  # re-raised after recovery (patience 1)
    ],
)
def test_hysteresis_and_recovery(values, margin, recovery_patience, expected):
    cfg = DriftConfig(tolerance=0.02, patience=1, recovery_margin=margin,
                      recovery_patience=recovery_patience, **NO_CUSUM)
    reasons, _ = run(values, cfg)
    assert reasons == expected


@pytest.mark.parametrize(
    "tolerance, value, alerts",
    [(0.0, 0.449, True), (0.0, 0.45, False), (0.05, 0.401, False), (0.05, 0.399, True)],
)
def test_tolerance_widens_the_band(tolerance, value, alerts):
    reasons, _ = run([value], DriftConfig(tolerance=tolerance, patience=1, **NO_CUSUM))
    assert (reasons[0] is B) is alerts


def test_message_is_a_sentence_with_the_numbers():
    cfg = DriftConfig(tolerance=0.02, patience=3, **NO_CUSUM)
    state = DriftState()
    for step, v in ((1000, 0.41), (1100, 0.415), (1200, 0.412)):
        alert, state = decide(Observation(step, 1.0, "gsm8k", v),
                              ForecastPoint(step, 1.0, "gsm8k", 0.476, 0.475, 0.478), state, cfg)
    assert alert.message == (
        "cod/gsm8k at step 1200: observed accuracy 0.412 is below the forecast band "
        "[0.455, 0.498] (forecast 0.476) for 3 consecutive evaluations."
    )
    assert (alert.step, alert.observed, alert.lower, alert.upper) == (1200, 0.412, pytest.approx(0.455),
                                                                      pytest.approx(0.498))
    assert state.alerting and state.alert_step == 1200

    alert, state = decide(Observation(1300, 1.0, "gsm8k", 0.47),
                          ForecastPoint(1300, 1.0, "gsm8k", 0.476, 0.475, 0.478), state, cfg)
    assert alert.reason is R
    assert alert.message.startswith("cod/gsm8k at step 1300: observed accuracy 0.470 is back above 0.465")
    assert alert.message.endswith("the alert raised at step 1200 is cleared.")
    assert not state.alerting


def test_missing_forecast_alerts_once_per_stretch_and_keeps_counts():
    cfg = DriftConfig(tolerance=0.0, patience=2, **NO_CUSUM)
    forecasts = [fp(100), None, None, fp(400)]
    reasons, state = run([0.40, 0.40, 0.40, 0.40], cfg, forecasts)
    # the count of below-band evaluations survives the gap: 100 and 400 are consecutive judged ones
    assert reasons == [None, U, None, B]
    assert state.alerting


def test_min_step_skips_warmup():
    cfg = DriftConfig(tolerance=0.0, patience=1, min_step=250)
    reasons, _ = run([0.1, 0.1, 0.1], cfg)
    assert reasons == [None, None, B]


def test_decide_is_pure():
    cfg = DriftConfig(patience=1)
    state = DriftState()
    a1, s1 = decide(0.1, fp(100), state, cfg)
    a2, s2 = decide(0.1, fp(100), state, cfg)
    assert a1 == a2 and s1 == s2 and state == DriftState()


def test_float_observation_needs_a_step():
    with pytest.raises(ValueError, match="needs the step and benchmark"):
        decide(0.3, None, DriftState(), DriftConfig())


def test_state_round_trips_through_dict():
    _, state = run([0.40, 0.40], DriftConfig(patience=2))
    assert DriftState.from_dict(state.to_dict()) == state


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"tolerance": -0.1}, "'tolerance' parameter of DriftConfig must be a float in the range \\[0, inf\\)"),
        ({"patience": 0}, "'patience' parameter of DriftConfig must be an int in the range \\[1, inf\\)"),
        ({"recovery_patience": 1.5}, "'recovery_patience'"),
        ({"min_step": -1}, "'min_step'"),
        ({"cusum_threshold": 0.0}, "'cusum_threshold' parameter of DriftConfig must be a float in the range \\(0, inf\\) or None"),
        ({"cusum_slack": -1.0}, "'cusum_slack'"),
        ({"band_level": 1.0}, "'band_level' parameter of DriftConfig must be a float in the range \\(0, 1\\)"),
        ({"sd_floor": 0.0}, "'sd_floor'"),
        ({"cusum_threshold": True}, "'cusum_threshold'"),
    ],
)
def test_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DriftConfig(**kwargs)


# ------------------------------------------------------------ cumulative shortfall
# BAND's lower half-width 0.025 at level 0.9: sd = 0.025 / 1.645 = 0.0152


def test_a_run_falling_behind_inside_the_band_alerts_on_its_cumulative_shortfall():
    # 0.46 every time: 1 sd short, inside the band, so the band rule never fires; each
    # evaluation adds 0.99 - 0.5 = 0.49 to the sum, which passes 5 at the 11th
    values = [0.46] * 12
    reasons, state = run(values, DriftConfig())
    assert reasons == [None] * 10 + [B, None]  # still behind: the alert stands
    band_only, _ = run(values, DriftConfig(**NO_CUSUM))
    assert band_only == [None] * 12
    assert state.alerting and state.alert_rule == "shortfall" and state.shortfall == 0.0
    # it clears when the run is back at its forecast, not merely inside the band
    reasons, state = run(values[:11] + [0.47, 0.476], DriftConfig())
    assert reasons[-2:] == [None, R] and not state.alerting


def test_cumulative_message_names_the_shortfall_and_its_length():
    state, cfg = DriftState(), DriftConfig()
    for i in range(11):
        alert, state = decide(Observation(100 * (i + 1), 1.0, "gsm8k", 0.46), fp(100 * (i + 1)),
                              state, cfg)
    assert alert.reason is B
    assert alert.message.startswith(
        "cod/gsm8k at step 1100: observed accuracy 0.460 against the forecast band "
        "[0.440, 0.510] (forecast 0.475): over the last 11 evaluations the run has fallen "
        "behind its forecast by a cumulative 5.4 standard deviations")
    assert alert.message.endswith("beyond the slack of 0.5 per evaluation (threshold 5).")


def test_noise_around_the_forecast_does_not_accumulate():
    # +-1 sd around the forecast: each shortfall is eaten by the slack and the next excess
    values = [0.475 - 0.0152, 0.475 + 0.0152] * 20
    reasons, state = run(values, DriftConfig())
    assert reasons == [None] * 40
    assert state.shortfall < 1.0
    ahead, state = run([0.49] * 20, DriftConfig())  # ahead of the forecast: nothing at all
    assert ahead == [None] * 20 and state.shortfall == 0.0


def test_sd_floor_bounds_the_shortfall_of_a_narrow_band():
    narrow = [fp(100 * (i + 1), value=0.475, lower=0.4749, upper=0.4751) for i in range(3)]
    # 0.005 below a band 0.0001 wide: 1 sd with the floor, 82 sd without it
    reasons, state = run([0.47] * 3, DriftConfig(tolerance=0.01), narrow)
    assert reasons == [None] * 3 and state.shortfall == pytest.approx(3 * 0.5, rel=1e-6)


def test_evaluation_failure_alert_quotes_the_last_line():
    tb = "Traceback (most recent call last):\n  File x\nRuntimeError: CUDA out of memory\n"
    alert = evaluation_failure_alert(300, "gsm8k", tb, 3)
    assert alert.reason is AlertReason.EVALUATION_FAILING
    assert alert.message == ("cod/gsm8k at step 300: evaluation failed after 3 attempts "
                             "(RuntimeError: CUDA out of memory); this checkpoint has no observation.")
