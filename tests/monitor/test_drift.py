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
    reasons, _ = run(values, DriftConfig(tolerance=0.02, patience=patience))
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
                      recovery_patience=recovery_patience)
    reasons, _ = run(values, cfg)
    assert reasons == expected


@pytest.mark.parametrize(
    "tolerance, value, alerts",
    [(0.0, 0.449, True), (0.0, 0.45, False), (0.05, 0.401, False), (0.05, 0.399, True)],
)
def test_tolerance_widens_the_band(tolerance, value, alerts):
    reasons, _ = run([value], DriftConfig(tolerance=tolerance, patience=1))
    assert (reasons[0] is B) is alerts


def test_message_is_a_sentence_with_the_numbers():
    cfg = DriftConfig(tolerance=0.02, patience=3)
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
    cfg = DriftConfig(tolerance=0.0, patience=2)
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
        ({"tolerance": -0.1}, "'tolerance' parameter of DriftConfig must be a float in \\[0, inf\\)"),
        ({"patience": 0}, "'patience' parameter of DriftConfig must be an int in \\[1, inf\\)"),
        ({"recovery_patience": 1.5}, "'recovery_patience'"),
        ({"min_step": -1}, "'min_step'"),
    ],
)
def test_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DriftConfig(**kwargs)


def test_evaluation_failure_alert_quotes_the_last_line():
    tb = "Traceback (most recent call last):\n  File x\nRuntimeError: CUDA out of memory\n"
    alert = evaluation_failure_alert(300, "gsm8k", tb, 3)
    assert alert.reason is AlertReason.EVALUATION_FAILING
    assert alert.message == ("cod/gsm8k at step 300: evaluation failed after 3 attempts "
                             "(RuntimeError: CUDA out of memory); this checkpoint has no observation.")
