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


def test_fit_keeps_the_incumbent_unless_another_route_wins_decisively(routed, small):
    tested = [c for c in routed.routes_ if c["backtest"]]
    assert tested, routed.routes_
    incumbent = tested[0]
    chosen = next(c for c in routed.routes_ if c["route"] == routed.route_)
    if chosen is not incumbent:
        assert chosen["score"] <= routed.switch_ratio * incumbent["score"]
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


def test_a_route_replaces_the_incumbent_only_on_decisive_evidence():
    def choose(trend, mapping, **params):
        cands = _candidates(("clusters+trend", trend, None), ("clusters+mapping", mapping, None))
        return RoutedCOD(**params)._choose(cands)

    # lower, but not decisively: 0.6x the incumbent's error
    route, why = choose({"L5": 0.05, "L6": -0.05}, {"L5": 0.03, "L6": 0.03})
    assert route == "clusters+trend" and "5.00" in why and "3.00" in why
    # 0.2x the incumbent's error and 4 points below: decisive
    route, why = choose({"L5": 0.05, "L6": -0.05}, {"L5": 0.01, "L6": -0.01})
    assert route == "clusters+mapping" and "decisive" in why
    # a small ratio but less than the margin: noise on a near-perfect ladder
    assert choose({"L6": 0.004}, {"L6": 0.0})[0] == "clusters+trend"
    assert choose({"L6": 0.004}, {"L6": 0.0}, switch_margin=0.0)[0] == "clusters+mapping"
    assert choose({"L6": 0.05}, {"L6": 0.03}, switch_ratio=1.0)[0] == "clusters+mapping"


def test_routes_are_compared_on_the_runs_both_backtested():
    cands = _candidates(
        ("clusters+trend", {"L4": 0.0, "L5": 0.05, "L6": -0.05}, None),
        # L4 is not compared: the mapping route could not backtest it
        ("clusters+mapping", {"L5": 0.01, "L6": 0.01}, None),
        ("end-to-end", {}, "FitFailedError: boom"),
    )
    route, why = RoutedCOD()._choose(cands)
    assert route == "clusters+mapping"
    assert cands[1]["score"] == pytest.approx(0.01)
    assert "5.00" in why and "end-to-end failed" in why


def test_the_best_of_several_decisive_routes_is_taken():
    cands = _candidates(("clusters+trend", {"L6": 0.10}, None),
                        ("clusters+mapping", {"L6": 0.03}, None),
                        ("end-to-end", {"L6": 0.01}, None))
    assert RoutedCOD()._choose(cands)[0] == "end-to-end"


def test_a_route_without_backtests_brings_no_evidence():
    # the preferred route could not be backtested: the next one is the incumbent
    cands = _candidates(("clusters+mapping", {}, None),
                        ("clusters+trend", {"L6": 0.01}, None),
                        ("end-to-end", {"L6": 0.011}, None))
    route, why = RoutedCOD()._choose(cands)
    assert route == "clusters+trend" and "clusters+mapping could not be backtested" in why


def test_without_any_backtest_the_first_fitted_route_is_taken():
    cands = _candidates(("clusters+mapping", {}, "NoExtrapolatableClusterError: none"),
                        ("clusters+trend", {}, None),
                        ("end-to-end", {}, None))
    route, why = RoutedCOD()._choose(cands)
    assert route == "clusters+trend" and "no evidence" in why


@pytest.mark.parametrize("params", [{"switch_ratio": 1.5}, {"switch_ratio": -0.1},
                                    {"switch_margin": -0.01}])
def test_bad_switch_thresholds_are_named(small, params):
    with pytest.raises(ParameterError, match=next(iter(params))):
        RoutedCOD(**params).fit(small.ladder, small.benchmark)


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
