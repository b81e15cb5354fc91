"""Failure isolation of the intervals: a backtest or bootstrap that cannot be built
leaves the point forecast, with NaN bounds and a reason (issue 14).

Small ladders of 3, 4 and 5 finished models (no checkpoints), with and without a
target model, at one recipe or at mixed tokens per parameter.
"""

import json
import math
import warnings

import numpy as np
import pytest

from cod_monitor.cod.forecaster import CODForecaster
from cod_monitor.cod.intervals import backtest_forecaster
from cod_monitor.cod.trajectory import TrajectoryForecaster
from cod_monitor.exceptions import FitWarning
from cod_monitor.methods.end_to_end import EndToEndExp
from cod_monitor.synthetic import synthetic_run

#: (n_models, with a target, recipe) of the ``small_ladder`` fixture.
LADDERS = [(n, target, recipe) for recipe in ("fixed", "mixed") for n in (3, 4, 5)
           for target in (True, False)]


@pytest.mark.parametrize("n, target, recipe", LADDERS)
def test_backtests_skip_runs_too_close_to_the_bottom(n, target, recipe, small_ladder):
    """Before the fix, a ladder without a target asked ``without_models`` to drop every
    model (LadderValidationError); now each run that would leave fewer than 3 points
    is skipped, and a 3-model ladder has no backtest at all."""
    ladder, bench, _, _ = small_ladder(n, target, recipe)
    est = EndToEndExp(n_bootstrap=0).fit(ladder, bench)
    bt = backtest_forecaster(est, ladder, bench, n_backtest=3)
    assert [b["model"] for b in bt] == [m.name for m in est.models_[::-1][:n - 3]]
    assert all(math.isfinite(b["forecast"]) and b["log_distance"] > 0 for b in bt)


def _cod(ratio):
    """COD with a backtest interval (the class's own settings otherwise), moved to the
    target's recipe on mixed ladders."""
    return CODForecaster(interval="backtest", fallback="end_to_end", n_bootstrap=10,
                         tokens_per_param=ratio)


@pytest.mark.parametrize("method", ["cod", "e2e-exp"])
@pytest.mark.parametrize("n, target, recipe", LADDERS)
def test_backtest_interval_is_finite_or_nan_with_a_reason(method, n, target, recipe,
                                                          small_ladder):
    ladder, bench, compute, ratio = small_ladder(n, target, recipe)
    est = _cod(ratio) if method == "cod" else EndToEndExp(n_bootstrap=10, interval="backtest")
    est.fit(ladder, bench)
    point = est.predict(compute)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lo, hi = est.predict_interval(compute)
    assert 0.0 <= point <= 1.0
    assert est.predict(compute) == point  # the interval never moves the forecast
    if n == 3:
        # no run can be held out: the bootstrap alone is not passed off as the interval
        assert math.isnan(lo) and math.isnan(hi)
        assert "no run to backtest" in est.interval_error_
        assert any(issubclass(w.category, FitWarning) and est.interval_error_ in str(w.message)
                   for w in caught)
    else:
        assert est.interval_error_ is None
        assert lo <= point <= hi and math.isfinite(lo) and math.isfinite(hi)
        # cod's recipe transport refits on the smaller ladder, which may move its points
        # past a held-out run (skipped as an interpolation)
        assert 1 <= len(est.backtest_) <= n - 3


def test_report_carries_the_interval_error(small_ladder):
    ladder, bench, compute, _ = small_ladder(3, False, "fixed")
    est = EndToEndExp(n_bootstrap=5, interval="backtest").fit(ladder, bench)
    assert est.report()["interval_error"] is None  # not computed yet
    with pytest.warns(FitWarning, match="interval unavailable"):
        est.predict_interval([compute, 2 * compute])
    rep = json.loads(json.dumps(est.report()))
    assert rep["interval_error"] == est.interval_error_ and "backtest" in rep["interval_error"]
    # a new fit forgets the previous one's failure
    est.set_params(interval="bootstrap").fit(ladder, bench)
    assert est.interval_error_ is None
    lo, hi = est.predict_interval(compute)
    assert math.isfinite(lo) and lo <= hi and est.interval_error_ is None


class _RefitsFail(EndToEndExp):
    """EndToEndExp whose warm-started refits (the bootstrap's, never the fit's) raise
    ``error``: a FloatingPointError drops each replicate, a RuntimeError escapes."""

    error = FloatingPointError

    def _fit_curve(self, compute, accuracy, aux, init):
        if init is not None:
            raise self.error("injected refit failure")
        return super()._fit_curve(compute, accuracy, aux, init)


class _RefitsRaise(_RefitsFail):
    error = RuntimeError


@pytest.mark.parametrize("cls, reason", [
    (_RefitsFail, "every one of the 5 bootstrap refits failed"),
    (_RefitsRaise, "the bootstrap failed (RuntimeError: injected refit failure)"),
])
def test_bootstrap_failure_leaves_the_point_forecast(cls, reason, small_ladder):
    ladder, bench, compute, _ = small_ladder(5, True, "fixed")
    est = cls(n_bootstrap=5).fit(ladder, bench)
    plain = EndToEndExp(n_bootstrap=0).fit(ladder, bench)
    with pytest.warns(FitWarning, match="interval unavailable"):
        lo, hi = est.predict_interval(np.array([compute, 10 * compute]))
    assert np.isnan(lo).all() and np.isnan(hi).all() and lo.shape == (2,)
    assert est.interval_error_ == reason
    assert est.predict(compute) == plain.predict(compute)
    assert est.bootstrap_predictions(compute).shape == (0,)  # computed once, not retried


def test_recipe_monitor_forecasts_survive_an_unavailable_finished_interval():
    """The monitor's 'recipe' path: three ladder runs with checkpoints and no target, a
    finished-model forecaster with a backtest interval that cannot be backtested. Its
    forecasts used to raise at every checkpoint; now every checkpoint gets a forecast
    whose band is the one the bootstrap interval gives, and the loss is reported."""
    run = synthetic_run(n_samples=200, seed=0, ladder_params=(25.8e3, 105e3, 593e3))
    ladder = run.ladder.without_models(
        [m.name for m in run.ladder.models_with_role("target")])
    fits = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)
        for interval in ("backtest", "bootstrap"):
            fits[interval] = TrajectoryForecaster(
                mode="recipe", n_bootstrap=10,
                finished=EndToEndExp(n_bootstrap=10, interval=interval),
            ).fit(ladder, run.benchmark).prepare()
    tf, ref = fits["backtest"], fits["bootstrap"]
    assert "finished-model interval is unavailable" in tf.interval_error_
    assert "no run to backtest" in tf.interval_error_
    assert ref.interval_error_ is None
    assert json.loads(json.dumps(tf.report()))["trajectory"]["interval_error"] == tf.interval_error_
    for t in run.target[::3]:
        fp = tf.forecast(t["step"], run.target_params, t["tokens"])
        same = ref.forecast(t["step"], run.target_params, t["tokens"])
        assert math.isfinite(fp.lower) and fp.lower <= fp.value <= fp.upper
        assert fp.upper > fp.lower
        assert (fp.value, fp.lower, fp.upper) == pytest.approx((same.value, same.lower, same.upper))
