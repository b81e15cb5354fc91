"""Recipe transport: effective compute on the target's tokens-per-parameter line."""

import warnings

import numpy as np
import pytest

from cod_monitor.exceptions import LadderValidationError
from cod_monitor.cod.forecaster import CODForecaster
from cod_monitor.cod.laws_nd import TrajectoryLaw
from cod_monitor.methods.registry import make_forecaster
from cod_monitor.synthetic import synthetic_ladder, synthetic_mixed_recipe_ladder
from cod_monitor.cod.transport import effective_compute, recipe_compute, transport_ladder

LAW = TrajectoryLaw(A=400.0, alpha=0.34, B=410.0, beta=0.28, c=0.0, g=0.0, rmse=0.0,
                    success=True, n_points=0)


def mixed_recipe_ladder(seed, n_samples=300):
    return synthetic_mixed_recipe_ladder(seed, n_samples=n_samples, benchmark="b")


def test_effective_compute_leaves_the_line_alone_and_is_monotone_in_tokens():
    on_line = effective_compute([1e6, 4e6], [2e7, 8e7], [1.2e14, 1.92e15], LAW, 20.0)
    np.testing.assert_allclose(on_line, [1.2e14, 1.92e15])
    tokens = np.array([1e7, 2e7, 8e7, 3.2e8])
    eff = effective_compute(np.full(4, 1e6), tokens, 6e6 * tokens, LAW, 20.0)
    assert np.all(np.diff(eff) > 0)  # more tokens, equally good as a bigger 20x model


def test_effective_compute_equalises_the_law():
    n, d = 5e5, 4e8  # heavily over-trained for a 20 tokens-per-parameter target
    eff = effective_compute(n, d, 6 * n * d, LAW, 20.0)[0]
    n_eff = np.sqrt(eff / 6 / 20.0)
    before = LAW.A * n ** -LAW.alpha + LAW.B * d ** -LAW.beta
    after = LAW.A * n_eff ** -LAW.alpha + LAW.B * (20 * n_eff) ** -LAW.beta
    assert after == pytest.approx(before, rel=1e-8)
    assert eff < 6 * n * d  # an over-trained model is worth less compute on the line


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_transport_fixes_a_mixed_recipe_ladder(seed):
    ladder, target, truth = mixed_recipe_ladder(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = CODForecaster.from_config("cod-trend", n_bootstrap=0).fit(ladder, "b")
        moved = CODForecaster.from_config("cod-trend", n_bootstrap=0, tokens_per_param=2.0).fit(ladder, "b")
    err_plain = abs(plain.predict(target.compute) - truth)
    err_moved = abs(moved.predict(target.compute) - truth)
    assert err_plain > 0.04  # compute alone under-forecasts: over-trained points lead
    assert err_moved < 0.4 * err_plain
    assert moved.transport_.applied and moved.report()["transport"]["applied"]
    # models trained at the target's ratio stay where they are; the others move
    for m in ladder.models_with_role("ladder"):
        before, after = moved.transport_.compute[m.name]
        assert (after == before) == (m.tokens == 2.0 * m.params)


def test_transport_is_skipped_when_params_and_tokens_are_confounded():
    syn = synthetic_ladder(n_samples=200, seed=0)  # one recipe: 20 tokens per parameter
    same, info = transport_ladder(syn.ladder, syn.benchmark, 5.0)
    assert same is syn.ladder and not info.applied
    assert "confounded" in info.reason and info.tokens_spread < 0.1
    est = CODForecaster(n_bootstrap=0, tokens_per_param=5.0).fit(syn.ladder, syn.benchmark)
    ref = CODForecaster(n_bootstrap=0).fit(syn.ladder, syn.benchmark)
    assert est.predict(syn.target.compute) == ref.predict(syn.target.compute)


@pytest.mark.parametrize("bad", [0.0, -3.0, float("nan"), "20", True])
def test_bad_tokens_per_param_names_the_field(bad):
    ladder, _, _ = mixed_recipe_ladder(0, n_samples=60)
    with pytest.raises(LadderValidationError, match="tokens_per_param") as info:
        transport_ladder(ladder, "b", bad)
    assert "tokens divided by its parameters" in str(info.value)


def test_registry_transport_reaches_cod_only():
    ladder, target, _ = mixed_recipe_ladder(1, n_samples=120)
    common = {"n_bootstrap": 0, "tokens_per_param": 2.0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cod = make_forecaster("cod-trend", **common).fit(ladder, "b")
        routed = make_forecaster("cod", **common).fit(ladder, "b")
        off = make_forecaster("cod-no-transport", **common).fit(ladder, "b")
        paper = make_forecaster("cod-paper", fallback="all_clusters", **common).fit(ladder, "b")
    assert cod.transport_.applied and routed.forecaster_.transport_.applied
    assert off.transport_ is None and paper.transport_ is None
    assert cod.predict(target.compute) != off.predict(target.compute)



def test_recipe_compute_follows_a_power_law_recipe():
    """The demo recipe's line D = e^b N^k (k = 0.3): an under-trained checkpoint of a big run
    is worth the compute of a smaller finished run with the same law value."""
    k, b = 0.3, np.log(250e3) - 0.3 * np.log(18e3)
    n_run = 4e6
    d_end = np.exp(b) * n_run ** k
    d = np.array([0.1, 0.5, 1.0]) * d_end
    eff = recipe_compute(n_run, d, 6 * n_run * d, LAW, slope=k, intercept=b)
    assert eff[-1] == 6 * n_run * d_end  # the finished run is on its own recipe
    assert np.all(np.diff(eff) > 0) and np.all(eff[:2] < 6 * n_run * d[:2])
    n_eq = np.exp(brentq_log_n(eff[0], k, b))
    before = LAW.A * n_run ** -LAW.alpha + LAW.B * d[0] ** -LAW.beta
    after = LAW.A * n_eq ** -LAW.alpha + LAW.B * (np.exp(b) * n_eq ** k) ** -LAW.beta
    assert after == pytest.approx(before, rel=1e-8)
    # the fixed-ratio transport is the slope-1 case
    np.testing.assert_allclose(
        recipe_compute(5e5, 4e8, 1.2e15, LAW, slope=1.0, intercept=np.log(20.0)),
        effective_compute(5e5, 4e8, 1.2e15, LAW, 20.0))
    with pytest.raises(ValueError, match="slope"):
        recipe_compute(n_run, d, 6 * n_run * d, LAW, slope=0.0, intercept=b)


def brentq_log_n(compute, k, b):
    """log N of the model on the line D = e^b N^k with 6 N D = compute."""
    return (np.log(compute / 6) - b) / (1 + k)


def test_recipe_compute_equalises_a_two_phase_law():
    # the transient term counts in the loss that is matched along the recipe line
    from dataclasses import replace

    law = replace(LAW, E=LAW.B * 50.0, delta=1.2, gamma=0.4)
    k, b = 0.3, np.log(250e3) - 0.3 * np.log(18e3)
    n_run = 4e6
    d = 0.1 * np.exp(b) * n_run ** k
    eff = recipe_compute(n_run, d, 6 * n_run * d, law, slope=k, intercept=b)[0]
    n_eq = np.exp(brentq_log_n(eff, k, b))
    assert law(n_eq, np.exp(b) * n_eq ** k) == pytest.approx(float(law(n_run, d)), rel=1e-8)
    assert eff != recipe_compute(n_run, d, 6 * n_run * d, LAW, slope=k, intercept=b)[0]
