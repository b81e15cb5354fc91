"""The shared record types own their JSON form."""

import json
import math

import numpy as np

from cod_monitor.records import Alert, AlertReason, EvalResult, ForecastPoint, Observation


def test_record_helpers_round_trip():
    fp = ForecastPoint(10, 1e20, "gsm8k", 0.5, 0.4, 0.6, version=2, mode="trajectory", tokens=1e9)
    assert ForecastPoint.from_dict(json.loads(json.dumps(fp.to_dict()))) == fp
    alert = Alert(10, "gsm8k", AlertReason.BELOW_BAND, "msg", 0.3, 0.4, 0.6)
    d = json.loads(json.dumps(alert.to_dict()))
    assert d["reason"] == "below_band" and Alert.from_dict(d) == alert


def test_non_finite_numbers_become_null_and_unknown_keys_are_ignored():
    fp = ForecastPoint(10, float("nan"), "gsm8k", 0.5, 0.4, np.float64("inf"))
    d = fp.to_dict()
    assert d["compute"] is None and d["upper"] is None
    json.dumps(d, allow_nan=False)
    assert ForecastPoint.from_dict({**fp.to_dict(), "extra": 1}).step == 10


def test_observation_round_trips_with_its_result():
    result = EvalResult("gsm8k", ("a", "b"), np.array([0.25, 0.75]), "exact")
    obs = Observation(100, float("nan"), "gsm8k", 0.5, result=result, tokens=1e6)
    d = json.loads(json.dumps(obs.to_dict(), allow_nan=False))
    assert d["compute"] is None and d["result"]["pass_rates"] == [0.25, 0.75]
    back = Observation.from_dict(d)
    assert math.isnan(back.compute) and back.result.pass_rates.tolist() == [0.25, 0.75]
    assert (back.step, back.benchmark, back.accuracy, back.tokens) == (100, "gsm8k", 0.5, 1e6)
