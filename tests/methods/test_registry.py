import subprocess
import sys
import warnings

import numpy as np
import pytest

from cod_monitor.cod.configs import CONFIGURATIONS
from cod_monitor.cod.forecaster import CODForecaster
from cod_monitor.cod.routing import ROUTES, RoutedCOD
from cod_monitor.exceptions import ConfigurationWarning
from cod_monitor.methods.registry import (
    METHODS,
    available_methods,
    compare_methods,
    make_forecaster,
    method_description,
)

COD_DEFAULTS = dict(CONFIGURATIONS["cod-trend"])

#: Ablations of ``cod-trend``: the one parameter each changes back (or elsewhere).
COD_ABLATIONS = {
    "cod-spline-mapping": {"combine": "mapping"},
    "cod-linear-tail": {"combine": "mapping", "mapping": "linear_tail"},
    "cod-rest-law": {"rest": "law"},
    "cod-pass-rate-features": {"features": "pass_rate"},
    "cod-paper-unit": {"compute_unit": None},
    "cod-bootstrap-interval": {"interval": "bootstrap"},
    "cod-ceiling-filter": {"c_max": 1.0},
}


def _changed(estimator, reference):
    a, b = estimator.get_params(deep=False), reference.get_params(deep=False)
    return {k: a[k] for k in a if a[k] != b[k]}


def test_cod_is_the_routed_default_and_its_routes_are_registered():
    assert isinstance(make_forecaster("cod"), RoutedCOD)
    assert available_methods()[:4] == ["cod", "cod-mapping", "cod-trend", "cod-paper"]
    for route, config in ROUTES.items():
        if config in available_methods():
            assert make_forecaster(config).get_params() == RoutedCOD().route_forecaster(
                route).get_params()


def test_cod_trend_is_the_documented_configuration_and_cod_paper_the_paper():
    cod = make_forecaster("cod-trend")
    assert {k: cod.get_params()[k] for k in COD_DEFAULTS} == COD_DEFAULTS
    assert set(_changed(cod, CODForecaster())) <= set(COD_DEFAULTS)
    assert _changed(cod, CODForecaster())  # it is not the paper's configuration
    assert _changed(make_forecaster("cod-paper"), CODForecaster()) == {}


@pytest.mark.parametrize("name, change", sorted(COD_ABLATIONS.items()))
def test_each_cod_ablation_undoes_one_change(name, change):
    estimator = make_forecaster(name)
    assert _changed(estimator, make_forecaster("cod-trend")) == {
        k: v for k, v in change.items() if COD_DEFAULTS.get(k, CODForecaster().get_params()[k]) != v
    }
    assert method_description(name)


def test_paper_ablations_stay_on_the_paper_configuration():
    for name in ("cod-no-mapping", "cod-quartic", "cod-kmeans", "cod-no-g"):
        changed = _changed(make_forecaster(name), CODForecaster())
        assert len(changed) == 1 and not set(changed) & set(COD_DEFAULTS)


def test_cod_settings_win_over_common_arguments_the_rest_apply():
    with pytest.warns(ConfigurationWarning) as record:
        est = make_forecaster("cod-trend", compute_unit=1e15, fallback="error",
                              n_bootstrap=7, random_state=3)
    assert est.compute_unit == "ladder" and est.fallback == "rest"
    assert {str(w.message).split(";")[0] for w in record} == {
        "method 'cod-trend' fixes compute_unit='ladder'",
        "method 'cod-trend' fixes fallback='rest'"}
    assert all(w.filename == __file__ for w in record)  # points at the caller
    assert est.n_bootstrap == 7 and est.random_state == 3
    paper = make_forecaster("cod-paper", compute_unit=1e15, fallback="end_to_end")
    assert paper.compute_unit == 1e15 and paper.fallback == "end_to_end"


def test_equal_or_ignored_arguments_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_forecaster("cod-trend", fallback="rest", compute_unit="ladder",
                        tokens_per_param=20.0)
        # the routed default takes the recipe and the bootstrap, not route settings
        routed = make_forecaster("cod", fallback="error", compute_unit=1e15,
                                 tokens_per_param=20.0, n_bootstrap=5)
        assert routed.tokens_per_param == 20.0 and routed.n_bootstrap == 5
        make_forecaster("cod-paper", tokens_per_param=20.0)  # the paper fits compute alone
        make_forecaster("e2e-exp", fallback="error")  # not a parameter of the baseline


def test_configurations_are_the_registry_entries():
    for name in ("cod-trend", "cod-mapping"):
        assert make_forecaster(name).get_params() == CODForecaster.from_config(
            name).get_params()
    assert make_forecaster("cod-paper").get_params() == CODForecaster().get_params()


def test_unknown_method_names_the_choices():
    with pytest.raises(ValueError, match="'name' parameter of make_forecaster must be a str among"):
        make_forecaster("cod-magic")


def test_default_path_does_not_import_the_ablations():
    code = ("import sys, cod_monitor.cli.predict, cod_monitor.methods as m; m.make_forecaster('cod');"
            "m.make_forecaster('e2e-exp');"
            "print([n for n in sys.modules if 'ablations' in n or 'methods.clustering' in n])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_cod_trend_beats_cod_paper_on_a_ladder_with_an_unpredictable_rest(syn):
    truth = syn.expected_accuracy[syn.target.name]
    res = compare_methods(
        syn.ladder, syn.benchmark, syn.target.compute, ["cod-trend", "cod-paper", "e2e-exp"],
        n_bootstrap=20,
    )
    err = {k: abs(v["value"] - truth) for k, v in res.items()}
    assert err["cod-trend"] < 0.01 < 0.02 < err["cod-paper"]
    assert err["cod-trend"] < err["e2e-exp"]
    lo, hi = res["cod-trend"]["interval"]
    assert lo <= truth <= hi
    assert set(METHODS) >= set(res)
    assert np.isfinite(res["cod-trend"]["value"])
