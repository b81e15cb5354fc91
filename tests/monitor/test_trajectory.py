"""Trajectory forecasts for a run in progress: modes, compute-mode bias, intervals."""

import json

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from cod_monitor.monitor.trajectory import TrajectoryForecaster
from cod_monitor.synthetic import SyntheticRun, synthetic_ladder, synthetic_run


def trajectory_errors(forecaster, run: SyntheticRun) -> np.ndarray:
    """Forecast minus measured accuracy at every target checkpoint."""
    return np.array([
        forecaster.predict(run.target_params, t["tokens"], compute=t["compute"]) - t["accuracy"]
        for t in run.target
    ])


@pytest.fixture(scope="module")
def run():
    return synthetic_run(n_samples=600, seed=0)


@pytest.fixture(scope="module")
def fitted(run):
    return {mode: TrajectoryForecaster(mode=mode, n_bootstrap=20).fit(run.ladder, run.benchmark)
            for mode in ("compute", "trajectory", "auto")}


def test_trajectory_mode_tracks_the_run(run, fitted):
    err = trajectory_errors(fitted["trajectory"], run)
    assert np.abs(err).mean() < 0.02
    assert fitted["auto"].mode_ == "trajectory_e2e"
    assert "6 ladder runs" in fitted["auto"].reason_


def test_compute_mode_bias_shows_up_early_in_the_run(run, fitted):
    """An early checkpoint of a large model is under-trained for its compute."""
    err = trajectory_errors(fitted["compute"], run)
    early, late = err[:4].mean(), err[-4:].mean()
    assert early > 0.05  # forecasts far above the early checkpoints
    assert abs(late) < early / 3  # the bias fades as tokens per parameter catch up
    assert np.abs(err).mean() > 1.5 * np.abs(trajectory_errors(fitted["trajectory"], run)).mean()


def test_interval_covers_observed_checkpoints(run, fitted):
    tf = fitted["trajectory"]
    tokens = np.array([t["tokens"] for t in run.target])
    measured = np.array([t["accuracy"] for t in run.target])
    lo, hi = tf.predict_interval(run.target_params, tokens, level=0.9)
    point = tf.predict(run.target_params, tokens)
    assert np.all(lo <= point) and np.all(point <= hi)
    assert np.mean((measured >= lo - 0.02) & (measured <= hi + 0.02)) >= 0.8
    fp = tf.forecast(step=7, params=run.target_params, tokens=tokens[3], version=3)
    assert (fp.step, fp.version, fp.mode, fp.benchmark) == (7, 3, "trajectory", run.benchmark)
    assert fp.compute == pytest.approx(6 * run.target_params * tokens[3])
    assert fp.lower <= fp.value <= fp.upper


def test_report_is_json_and_extends_cod_report(fitted):
    rep = json.loads(json.dumps(fitted["trajectory"].report()))
    assert rep["trajectory"]["mode"] == "trajectory"
    assert len(rep["trajectory"]["laws"]) == rep["n_kept"]
    assert {"A", "alpha", "B", "beta", "c", "g", "weight"} <= set(rep["trajectory"]["laws"][0])
    assert "clusters" in rep and "mapping" in rep  # COD's own report, for the trackers


def test_auto_falls_back_to_compute_without_checkpoints():
    syn = synthetic_ladder(n_samples=400, seed=0)
    tf = TrajectoryForecaster(n_bootstrap=0).fit(syn.ladder, syn.benchmark)
    assert tf.mode_ == "compute"
    assert tf.predict(compute=syn.target.compute) == pytest.approx(tf.cod_.predict(syn.target.compute))
    with pytest.raises(ValueError, match="needs at least 3 ladder runs"):
        TrajectoryForecaster(mode="trajectory").fit(syn.ladder, syn.benchmark)


def test_parameter_validation_and_unfitted():
    with pytest.raises(ValueError, match="'mode' parameter of TrajectoryForecaster"):
        TrajectoryForecaster(mode="fancy").fit(None, "b")
    with pytest.raises(NotFittedError):
        TrajectoryForecaster().predict(1e6, 1e6)
