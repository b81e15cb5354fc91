"""compare_methods runs every method in isolation (issue 14): one method's failure, or
an unavailable interval, never aborts the others; only input every method shares
raises, before any method runs."""

import math
import warnings

import pytest

from cod_monitor.exceptions import FitWarning, LadderValidationError, ParameterError
from cod_monitor.methods import compare_methods

LADDERS = [(n, target, recipe) for recipe in ("fixed", "mixed") for n in (3, 4, 5)
           for target in (True, False)]

#: COD, the paper's COD, two baselines, and one that fails on a ladder without losses.
METHODS = ["cod", "cod-paper", "e2e-exp", "bnsl", "loss-intermediate"]


@pytest.mark.parametrize("n, target, recipe", LADDERS)
def test_a_row_per_method_whatever_fails(n, target, recipe, small_ladder):
    ladder, bench, compute, ratio = small_ladder(n, target, recipe)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)
        res = compare_methods(ladder, bench, compute, METHODS, n_bootstrap=5,
                              tokens_per_param=ratio)
    assert list(res) == METHODS
    # the synthetic ladders carry no loss: this method fails, alone, with a reason
    failed = res["loss-intermediate"]
    assert failed["value"] is None and failed["interval"] is None and failed["estimator"] is None
    assert "loss" in failed["error"]
    for name in ("e2e-exp", "bnsl"):  # the registry gives the baselines backtest intervals
        r = res[name]
        assert "error" not in r and 0.0 <= r["value"] <= 1.0, name
        lo, hi = r["interval"]
        if n == 3:  # too small to backtest: the forecast stays, the interval goes
            assert math.isnan(lo) and math.isnan(hi), name
            assert "no run to backtest" in r["interval_error"], name
        else:
            assert r["interval_error"] is None and lo <= r["value"] <= hi, name
    for name in ("cod", "cod-paper"):  # a forecast with an interval or a reason, or an error
        r = res[name]
        assert (r["value"] is None) == ("error" in r) == (r["estimator"] is None), name
        if r["value"] is not None:
            lo, hi = r["interval"]
            if r["interval_error"] is None:
                assert lo <= r["value"] <= hi, name
            else:
                assert math.isnan(lo) and math.isnan(hi), name


def test_a_parameter_every_method_rejects_fails_every_row_not_the_call(small_ladder):
    ladder, bench, compute, _ = small_ladder(4, True, "fixed")
    res = compare_methods(ladder, bench, compute, ["cod", "e2e-exp"], n_bootstrap=-3)
    for r in res.values():
        assert r["value"] is None and "'n_bootstrap' parameter" in r["error"]


@pytest.mark.parametrize("kwargs, error, match", [
    ({"benchmark": "nope"}, LadderValidationError, "nope"),
    ({"methods": ["e2e-exp", "magic"]}, ParameterError, "magic"),
    ({"anchors": ["ghost"]}, LadderValidationError, "ghost"),
    ({"level": 1.5}, ParameterError, "level"),
])
def test_shared_bad_input_raises_before_any_method_runs(kwargs, error, match, small_ladder):
    ladder, bench, compute, _ = small_ladder(4, True, "fixed")
    args = {"benchmark": bench, "methods": ["e2e-exp"], **kwargs}
    with pytest.raises(error, match=match):
        compare_methods(ladder, args.pop("benchmark"), compute, args.pop("methods"),
                        n_bootstrap=0, **args)
