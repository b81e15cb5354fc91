"""The run-conditioned forecast: prior at first, the run's own course after."""

import numpy as np
import pytest

from cod_monitor.cod import TrajectoryForecaster
from cod_monitor.cod.conditioning import (
    LEVEL_SD_FLOOR,
    RATE_SD_FLOOR,
    RunConditioner,
    RunPrior,
    estimate_run_prior,
    final_tokens,
)
from cod_monitor.exceptions import ParameterError
from cod_monitor.synthetic import synthetic_ladder, synthetic_run

TOKENS = np.linspace(2e5, 4e6, 16)
END = TOKENS[-3:]


def ladder_curve(tokens):
    return 0.1 + 0.5 * (1 - np.exp(-np.asarray(tokens, dtype=float) / 1.5e6))


def test_with_no_observation_the_forecast_is_the_prior():
    rc = RunConditioner(ladder_curve, RunPrior(), end_tokens=END)
    mean, sd = rc.predict(TOKENS)
    np.testing.assert_allclose(mean, ladder_curve(TOKENS))
    assert np.all(sd > 0)
    assert rc.final()[0] == pytest.approx(float(np.mean(ladder_curve(END))))


def _run(rc, truth, k, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    for d in TOKENS[:k]:
        rc.observe(d, float(np.clip(truth(d) + noise * rng.standard_normal(), 0, 1)))
    return rc


@pytest.mark.parametrize("shift", [0.06, -0.06])
def test_a_run_off_the_ladder_in_level_is_learned(shift):
    truth = lambda d: ladder_curve(d) + shift  # noqa: E731
    final_truth = float(np.mean(truth(END)))
    prior = RunPrior(level_sd=0.05, rate_sd=0.3, noise_sd=0.01)
    errors = [abs(_run(RunConditioner(ladder_curve, prior, end_tokens=END), truth, k,
                       noise=0.01).final()[0] - final_truth) for k in (0, 4, 8, 12)]
    assert errors[0] == pytest.approx(abs(shift))
    assert errors[-1] < 0.015 and errors[-1] < errors[1] < errors[0]


def test_a_faster_run_is_learned_as_a_rate():
    base = float(np.mean(ladder_curve(END)))
    truth = lambda d: base + 1.2 * (ladder_curve(d) - base)  # noqa: E731  20 % more progress
    assert truth(TOKENS[0]) > 0.02
    rc = _run(RunConditioner(ladder_curve, RunPrior(0.03, 0.5, 0.005), end_tokens=END), truth, 10)
    dep = rc.departure
    assert dep["rate"] == pytest.approx(0.2, abs=0.05)
    assert abs(dep["level"]) < 0.02
    assert dep["n_used"] == 10


def test_a_sudden_drop_is_down_weighted_and_exclusion_forgets_it():
    prior = RunPrior(level_sd=0.03, rate_sd=0.3, noise_sd=0.01)
    rc = _run(RunConditioner(ladder_curve, prior, end_tokens=END), ladder_curve, 8, noise=0.01)
    before = rc.final()[0]
    s = rc.observe(TOKENS[8], float(ladder_curve(TOKENS[8])) - 0.25)
    assert s.z < -5 and 0 < s.weight < 0.5
    dropped = rc.final()[0]
    assert dropped < before
    rc.exclude(TOKENS[8])
    assert rc.history[-1].weight == 0 and rc.final()[0] == pytest.approx(before)
    # an excluded observation is recorded but never learned from
    s = rc.observe(TOKENS[9], 0.0, exclude=True)
    assert s.weight == 0 and rc.final()[0] == pytest.approx(before)


def test_a_run_ahead_of_its_forecast_is_never_down_weighted():
    rc = RunConditioner(ladder_curve, RunPrior(0.01, 0.1, 0.005), end_tokens=END)
    s = rc.observe(TOKENS[3], float(ladder_curve(TOKENS[3])) + 0.2)
    assert s.z > 5 and s.weight == 1.0


def test_the_noise_is_learned_from_the_run():
    prior = RunPrior(level_sd=0.03, rate_sd=0.3, noise_sd=0.005)
    rc = _run(RunConditioner(ladder_curve, prior, end_tokens=END), ladder_curve, 16, noise=0.03)
    assert 0.015 < rc.departure["noise_sd"] < 0.05


def test_replay_gives_the_same_forecast():
    prior = RunPrior(level_sd=0.03, rate_sd=0.3, noise_sd=0.01)
    a = _run(RunConditioner(ladder_curve, prior, end_tokens=END), ladder_curve, 9, noise=0.02)
    b = RunConditioner(ladder_curve, prior, end_tokens=END)
    b.replay([(s.tokens, s.observed, s.weight == 0) for s in a.history])
    assert b.final() == pytest.approx(a.final())


def test_without_the_end_of_the_run_there_is_no_final_forecast():
    rc = _run(RunConditioner(ladder_curve, RunPrior()), ladder_curve, 4)
    assert rc.final() is None
    mean, _ = rc.predict(TOKENS[5])
    assert mean[0] == pytest.approx(float(ladder_curve(TOKENS[5])), abs=0.02)


def test_final_tokens():
    np.testing.assert_allclose(final_tokens(10.0, 100, 20), [600.0, 800.0, 1000.0])
    np.testing.assert_allclose(final_tokens(10.0, 100), [1000.0])
    assert final_tokens(None, 100) is None and final_tokens(10.0, None) is None


def test_bad_inputs_are_named():
    with pytest.raises(ParameterError, match="level_sd"):
        RunPrior(level_sd=-1.0)
    with pytest.raises(ParameterError, match="prior"):
        RunConditioner(ladder_curve, {"level_sd": 0.1})
    rc = RunConditioner(ladder_curve, RunPrior())
    with pytest.raises(ParameterError, match="accuracy"):
        rc.observe(1e6, 1.5)


def test_run_prior_from_ladder_backtests():
    run = synthetic_run(n_samples=300, seed=2)
    ladder = run.ladder.without_models([m.name for m in run.ladder.models_with_role("target")])
    prior = estimate_run_prior(ladder, run.benchmark, lambda: TrajectoryForecaster(n_bootstrap=0))
    assert len(prior.backtests) == 2
    assert prior.level_sd >= LEVEL_SD_FLOOR and prior.rate_sd >= RATE_SD_FLOOR
    assert all(r["n_checkpoints"] >= 3 for r in prior.backtests)
    assert "backtests" in prior.reason
    assert RunPrior.from_dict(prior.to_dict()) == prior
    # the seed spread widens the level only; a recipe departure both
    assert prior.with_run_sd(0.05).level_sd > prior.level_sd
    wide = prior.widened(2.0, "lower learning rate")
    assert wide.rate_sd == pytest.approx(2 * prior.rate_sd) and "lower learning rate" in wide.reason


def test_run_prior_defaults_without_runs_of_checkpoints():
    syn = synthetic_ladder(n_samples=200, seed=0)  # finished models only
    prior = estimate_run_prior(syn.ladder, syn.benchmark,
                               lambda: TrajectoryForecaster(n_bootstrap=0))
    assert prior.backtests == [] and prior.reason.startswith("defaults")
