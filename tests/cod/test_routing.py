import json
import warnings

import numpy as np
import pytest

from cod_monitor.cod.configs import CONFIGURATIONS
from cod_monitor.cod.forecaster import CODForecaster
from cod_monitor.cod.routing import ROUTES, RoutedCOD
from cod_monitor.exceptions import CODError, FitWarning, ParameterError
from cod_monitor.synthetic import synthetic_ladder


@pytest.fixture(scope="module")
def small():
    return synthetic_ladder(n_samples=600, n_models=7, seed=1)


@pytest.fixture(scope="module")
def routed(small):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)
        return RoutedCOD(n_bootstrap=10).fit(small.ladder, small.benchmark)


def test_every_route_is_a_configuration():
    assert set(ROUTES.values()) <= set(CONFIGURATIONS)


def test_route_forecaster_is_the_configuration_with_the_shared_parameters():
    est = RoutedCOD(n_bootstrap=7, tokens_per_param=20.0).route_forecaster("clusters+trend")
    ref = CODForecaster.from_config("cod-trend", n_bootstrap=7, tokens_per_param=20.0)
    assert est.get_params() == ref.get_params()
    with pytest.raises(ParameterError, match="route"):
        RoutedCOD().route_forecaster("clusters")


def test_fit_chooses_the_route_with_the_smallest_backtest_error(routed, small):
    scored = [c for c in routed.routes_ if c["score"] is not None]
    assert scored, routed.routes_
    best = min(c["score"] for c in scored)
    chosen = next(c for c in routed.routes_ if c["route"] == routed.route_)
    assert chosen["score"] <= best + routed.tolerance
    # the forecast is the chosen route's, and so is everything fitted
    c = small.target.compute
    assert routed.predict(c) == routed.forecaster_.predict(c)
    assert routed.models_ == routed.forecaster_.models_
    assert routed.route_ in routed.route_why_ and "points" in routed.route_why_


def test_report_says_route_why_and_every_candidate(routed):
    rep = routed.report()
    assert rep["route"] == routed.route_ and rep["why"] == routed.route_why_
    assert [r["route"] for r in rep["routes"]] == list(ROUTES)
    json.dumps(rep)  # JSON-safe, as predict --json prints it
    assert rep["n_samples"] == 600  # the chosen forecaster's report follows


def test_interval_is_the_chosen_routes(routed, small):
    lo, hi = routed.predict_interval(small.target.compute)
    lo2, hi2 = routed.forecaster_.predict_interval(small.target.compute)
    assert (lo, hi) == (lo2, hi2)
    assert lo <= routed.predict(small.target.compute) <= hi


def _candidates(*rows):
    return [{"route": r, "configuration": ROUTES[r], "status": "failed" if err else "fitted",
             "error": err, "backtest": bt, "score": None} for r, bt, err in rows]


def test_choice_compares_routes_on_the_runs_every_route_backtested():
    est = RoutedCOD()
    cands = _candidates(
        ("clusters+mapping", {"L5": 0.05, "L6": 0.01}, None),
        # L4 is not compared: the mapping route could not backtest it
        ("clusters+trend", {"L4": 0.0, "L5": 0.02, "L6": -0.02}, None),
        ("end-to-end", {}, "FitFailedError: boom"),
    )
    route, why = est._choose(cands)
    assert route == "clusters+trend"
    assert cands[1]["score"] == pytest.approx(0.02) and cands[0]["score"] == pytest.approx(0.03)
    assert "2.00" in why and "3.00" in why and "end-to-end failed" in why


def test_a_tie_within_the_tolerance_goes_to_the_earlier_route():
    cands = _candidates(("clusters+mapping", {"L6": 0.0110}, None),
                        ("clusters+trend", {"L6": 0.0100}, None))
    assert RoutedCOD(tolerance=0.002)._choose(cands)[0] == "clusters+mapping"
    assert RoutedCOD(tolerance=0.0)._choose(cands)[0] == "clusters+trend"


def test_without_a_common_backtest_the_first_fitted_route_is_taken():
    cands = _candidates(("clusters+mapping", {}, "NoExtrapolatableClusterError: none"),
                        ("clusters+trend", {"L6": 0.01}, None),
                        ("end-to-end", {}, None))
    route, why = RoutedCOD()._choose(cands)
    assert route == "clusters+trend" and "no evidence" in why


def test_a_failed_route_is_reported_and_the_others_forecast(small):
    # a filter no cluster can pass: the mapping route fails (it has no fallback)
    est = RoutedCOD(routes=("clusters+mapping", "end-to-end"), n_bootstrap=0)
    est.route_forecaster = lambda route, _f=est.route_forecaster: (
        _f(route).set_params(a_min=np.inf) if route == "clusters+mapping" else _f(route))
    est.fit(small.ladder, small.benchmark)
    assert est.route_ == "end-to-end"
    failed = est.routes_[0]
    assert failed["status"] == "failed" and "NoExtrapolatableCluster" in failed["error"]
    assert "clusters+mapping failed" in est.route_why_
    assert np.isfinite(est.predict(small.target.compute))


def test_every_route_failing_raises_the_first_error(small):
    est = RoutedCOD(routes=("clusters+mapping",), n_bootstrap=0)
    est.route_forecaster = lambda route, _f=est.route_forecaster: _f(route).set_params(
        a_min=np.inf)
    with pytest.raises(CODError, match="no extrapolatable cluster"):
        est.fit(small.ladder, small.benchmark)


@pytest.mark.parametrize("routes", [(), "end-to-end", ("clusters", "end-to-end")])
def test_bad_routes_are_named(small, routes):
    with pytest.raises(ParameterError, match="routes"):
        RoutedCOD(routes=routes).fit(small.ladder, small.benchmark)


def test_every_route_widens_its_interval_by_its_backtests():
    # the backtests that choose the route are the ones that widen its interval
    assert all(RoutedCOD().route_forecaster(r).interval == "backtest" for r in ROUTES)
