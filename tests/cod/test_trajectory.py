"""Trajectory forecasts for a run in progress: modes, compute-mode bias, intervals."""

import json

import numpy as np
import pytest
from cod_monitor.exceptions import NotFittedError

from cod_monitor.cod.routing import RoutedCOD
from cod_monitor.cod.trajectory import TrajectoryForecaster
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
    assert fitted["auto"].mode_ == "blend"
    assert "6 ladder runs" in fitted["auto"].reason_ and "recipe-equivalent" in fitted["auto"].reason_


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
    # the finished-model forecast is the package's default, the routed COD
    assert isinstance(tf.finished_, RoutedCOD)
    assert tf.predict(compute=syn.target.compute) == pytest.approx(
        tf.finished_.predict(syn.target.compute))
    with pytest.raises(ValueError, match="needs at least 3 ladder runs"):
        TrajectoryForecaster(mode="trajectory").fit(syn.ladder, syn.benchmark)


def test_parameter_validation_and_unfitted():
    with pytest.raises(ValueError, match="'mode' parameter of TrajectoryForecaster"):
        TrajectoryForecaster(mode="fancy").fit(None, "b")
    with pytest.raises(NotFittedError):
        TrajectoryForecaster().predict(1e6, 1e6)


def test_recipe_mode_forecasts_the_equally_good_finished_model(run):
    """'recipe': the finished-model forecast at the compute of the recipe model the (N, D)
    law rates equal; at the end of a run trained by the ladder's recipe that is the plain
    finished-model forecast at the run's compute."""
    tf = TrajectoryForecaster(mode="recipe", n_bootstrap=20).fit(run.ladder, run.benchmark)
    assert tf.recipe_line_[0] == pytest.approx(0.3, abs=0.01)  # synthetic runs: D ~ N^0.3
    assert isinstance(tf.finished_, RoutedCOD)
    err = trajectory_errors(tf, run)
    assert np.abs(err).mean() < 0.02
    compute_mode = TrajectoryForecaster(mode="compute", n_bootstrap=0).fit(run.ladder, run.benchmark)
    assert err[:4].mean() < trajectory_errors(compute_mode, run)[:4].mean() - 0.05
    # the run's last checkpoint sits within 1.3 % of the recipe's tokens for its size
    last = run.target[-1]
    assert tf.predict(run.target_params, last["tokens"], compute=last["compute"]) == pytest.approx(
        float(tf.finished_.predict(last["compute"])), abs=0.01)
    tokens = np.array([t["tokens"] for t in run.target])
    lo, hi = tf.predict_interval(run.target_params, tokens)
    point = tf.predict(run.target_params, tokens)
    assert lo.shape == point.shape == tokens.shape and np.all((lo <= point) & (point <= hi))
    fp = tf.forecast(step=3, params=run.target_params, tokens=tokens[2])
    assert fp.mode == "recipe" and fp.lower <= fp.value <= fp.upper
    rep = json.loads(json.dumps(tf.report()))["trajectory"]
    assert rep["recipe_line"]["slope"] == pytest.approx(tf.recipe_line_[0])


def test_recipe_mode_takes_a_finished_model_forecaster(run):
    from cod_monitor.methods import make_forecaster
    from cod_monitor.methods.end_to_end import EndToEndExp

    e2e = make_forecaster("e2e-exp", n_bootstrap=0)
    tf = TrajectoryForecaster(mode="recipe", finished=e2e, n_bootstrap=0).fit(
        run.ladder, run.benchmark)
    assert not hasattr(e2e, "models_")  # cloned, not fitted in place
    assert isinstance(tf.finished_, EndToEndExp)
    ref = EndToEndExp(n_bootstrap=0).fit(run.ladder, run.benchmark)
    # on the recipe line the equivalent compute is the compute itself
    n = 2e5
    d = float(np.exp(tf.recipe_line_[1]) * n ** tf.recipe_line_[0])
    assert tf.predict(n, d, compute=6 * n * d) == pytest.approx(float(ref.predict(6 * n * d)), rel=1e-9)
    assert np.abs(trajectory_errors(tf, run)).mean() < 0.03
    compute_mode = TrajectoryForecaster(mode="compute", finished=e2e, n_bootstrap=0).fit(
        run.ladder, run.benchmark)
    assert compute_mode.predict(compute=6 * n * d) == pytest.approx(float(ref.predict(6 * n * d)))


def test_recipe_interval_contains_the_finished_forecasters_own(run):
    """On the recipe line the equivalent compute is the compute itself, and the band adds
    the equivalence's spread and the residual spread to the method's own interval."""
    from cod_monitor.methods import make_forecaster

    e2e = make_forecaster("e2e-exp", n_bootstrap=20, random_state=0)
    tf = TrajectoryForecaster(mode="recipe", finished=e2e, n_bootstrap=20).fit(
        run.ladder, run.benchmark)
    n = 2e6
    d = float(np.exp(tf.recipe_line_[1]) * n ** tf.recipe_line_[0])
    lo, hi = tf.predict_interval(n, d, compute=6 * n * d)
    own_lo, own_hi = tf.finished_.predict_interval(6 * n * d)
    assert lo <= float(own_lo) + 1e-9 and hi >= float(own_hi) - 1e-9
    assert hi - lo > float(own_hi) - float(own_lo)  # the residual spread is added


def test_blend_is_the_mean_of_the_law_and_the_recipe_forecasts(run):
    """'blend' (what 'auto' picks on a ladder of runs with checkpoints): the mean of the
    'trajectory_e2e' and 'recipe' forecasts, with the band of their equal mixture, which
    holds both components' points and is at least half their distance wide each side."""
    kw = dict(n_bootstrap=20, noise=False)
    law = TrajectoryForecaster(mode="trajectory_e2e", **kw).fit(run.ladder, run.benchmark)
    recipe = TrajectoryForecaster(mode="recipe", **kw).fit(run.ladder, run.benchmark)
    blend = TrajectoryForecaster(mode="blend", **kw).fit(run.ladder, run.benchmark)
    tokens = np.array([t["tokens"] for t in run.target])
    a = law.predict(run.target_params, tokens)
    b = recipe.predict(run.target_params, tokens)
    point = blend.predict(run.target_params, tokens)
    np.testing.assert_allclose(point, 0.5 * (a + b), rtol=1e-12)
    assert np.abs(a - b).max() > 0.002  # the two components differ on this run
    lo, hi = blend.predict_interval(run.target_params, tokens)
    z = 1.6448536269514722
    assert np.all(lo <= np.minimum(a, b) + 1e-12) and np.all(hi >= np.maximum(a, b) - 1e-12)
    np.testing.assert_array_less(z * 0.5 * np.abs(a - b) - 1e-12, np.minimum(point - lo, hi - point) + 1e-9)
    (law_lo, law_hi), (rec_lo, rec_hi) = (law.predict_interval(run.target_params, tokens),
                                          recipe.predict_interval(run.target_params, tokens))
    # never narrower than the narrower of the two components' bands
    assert np.all(hi - lo >= np.minimum(law_hi - law_lo, rec_hi - rec_lo) - 1e-9)
    fp = blend.forecast(step=3, params=run.target_params, tokens=tokens[2])
    assert fp.mode == "blend" and fp.lower <= fp.value <= fp.upper
    assert json.loads(json.dumps(blend.report()))["trajectory"]["mode"] == "blend"


def test_auto_uses_the_law_alone_without_a_recipe_line(run):
    """Runs whose tokens do not grow with their size give no recipe-equivalent compute:
    'auto' falls back to the (N, D) law and says why; 'blend' refuses."""
    import dataclasses

    from cod_monitor.ladder import Ladder

    mat = run.ladder.matrix(run.benchmark)  # the ladder runs, not the target
    finals = {}
    for m in mat.models:
        finals[m.run_key] = max(finals.get(m.run_key, 0.0), m.tokens)
    d_max = max(finals.values())
    # every run stretched to the same final token count: a flat recipe line
    models = [dataclasses.replace(m, tokens=m.tokens * d_max / finals[m.run_key],
                                  compute=m.compute * d_max / finals[m.run_key])
              for m in mat.models]
    order = sorted(range(len(models)), key=lambda j: (models[j].compute, models[j].name))
    models = tuple(models[j] for j in order)
    flat = Ladder(models, {run.benchmark: dataclasses.replace(
        mat, models=models, pass_rates=mat.pass_rates[:, order])})
    tf = TrajectoryForecaster(n_bootstrap=0).fit(flat, run.benchmark)
    assert tf.mode_ == "trajectory_e2e" and "no recipe line" in tf.reason_
    with pytest.raises(ValueError, match="recipe line"):
        TrajectoryForecaster(mode="blend", n_bootstrap=0).fit(flat, run.benchmark)


class _FailingFinished:
    """A forecaster of finished models whose fit raises (the blend's second component)."""

    def fit(self, ladder, benchmark):
        raise RuntimeError("no finished-model fit on this ladder")

    def get_params(self, deep=True):
        return {}

    def set_params(self, **params):
        return self

    predict = predict_interval = bootstrap_predictions = None


def test_auto_keeps_the_law_when_the_finished_model_forecaster_fails(run):
    """'auto' never loses the run's forecast to its second component: the law alone, and
    the reason says why; an explicit 'blend' raises."""
    tf = TrajectoryForecaster(finished=_FailingFinished(), n_bootstrap=0).fit(
        run.ladder, run.benchmark)
    assert tf.mode_ == "trajectory_e2e"
    assert "finished-model forecaster failed (RuntimeError: no finished-model fit" in tf.reason_
    law = TrajectoryForecaster(mode="trajectory_e2e", n_bootstrap=0).fit(run.ladder, run.benchmark)
    tokens = np.array([t["tokens"] for t in run.target])
    np.testing.assert_array_equal(tf.predict(run.target_params, tokens),
                                  law.predict(run.target_params, tokens))
    with pytest.raises(RuntimeError, match="no finished-model fit"):
        TrajectoryForecaster(mode="blend", finished=_FailingFinished(), n_bootstrap=0).fit(
            run.ladder, run.benchmark)


def test_run_sd_widens_the_band_in_quadrature(run):
    """A run's own seed spread is added to the band: a ladder of seed means cannot show it."""
    base = TrajectoryForecaster(mode="trajectory_e2e", n_bootstrap=0).fit(run.ladder, run.benchmark)
    wide = TrajectoryForecaster(mode="trajectory_e2e", n_bootstrap=0, run_sd=0.02).fit(
        run.ladder, run.benchmark)
    tokens = np.array([t["tokens"] for t in run.target])
    lo0, hi0 = base.predict_interval(run.target_params, tokens)
    lo1, hi1 = wide.predict_interval(run.target_params, tokens)
    point = base.predict(run.target_params, tokens)
    np.testing.assert_allclose(wide.predict(run.target_params, tokens), point)
    z = 1.6448536269514722  # the 95% normal quantile: a 90% band
    inside = (lo1 > 0) & (lo0 > 0)
    assert inside.any()
    np.testing.assert_allclose((point - lo1)[inside],
                               np.hypot((point - lo0)[inside], z * 0.02), rtol=1e-9)
    with pytest.raises(ValueError, match="'run_sd' parameter of TrajectoryForecaster"):
        TrajectoryForecaster(run_sd=-0.1).fit(run.ladder, run.benchmark)


def test_recipe_mode_needs_runs_of_several_sizes():
    syn = synthetic_ladder(n_samples=300, seed=0)
    with pytest.raises(ValueError, match="needs at least 3 ladder runs"):
        TrajectoryForecaster(mode="recipe").fit(syn.ladder, syn.benchmark)
    with pytest.raises(ValueError, match="'finished' parameter of TrajectoryForecaster"):
        TrajectoryForecaster(mode="recipe", finished="e2e-exp").fit(syn.ladder, syn.benchmark)


def test_law_form_two_phase_and_auto_on_the_e2e_law(run):
    # the synthetic run's ladder follows the additive law: 'auto' judges both forms on
    # the largest runs and says which it kept; 'two_phase' never fits worse
    add = TrajectoryForecaster(mode="trajectory_e2e", n_bootstrap=5).fit(run.ladder, run.benchmark)
    two = TrajectoryForecaster(mode="trajectory_e2e", n_bootstrap=5, law_form="two_phase").fit(
        run.ladder, run.benchmark)
    auto = TrajectoryForecaster(mode="trajectory_e2e", n_bootstrap=5, law_form="auto").fit(
        run.ladder, run.benchmark)
    assert add.law_form_ == "additive" and add.laws_[0].E == 0.0
    assert two.laws_[0].rmse <= add.laws_[0].rmse + 1e-12
    assert auto.law_form_ in ("additive", "two_phase")
    assert "trajectory law (fitted without the largest runs" in auto.reason_
    lo, hi = two.predict_interval(run.target_params, 2e6)  # the bootstrap keeps the form
    assert lo <= two.predict(run.target_params, 2e6) <= hi
    with pytest.raises(ValueError, match="law_form"):
        TrajectoryForecaster(law_form="cubic").fit(run.ladder, run.benchmark)
