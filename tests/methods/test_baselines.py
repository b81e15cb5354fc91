import json
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.base import clone
from cod_monitor.exceptions import NotFittedError

from cod_monitor.exceptions import ConfigurationWarning, FitWarning, MethodUnavailableError
from cod_monitor.methods.bnsl import BNSL, broken_power_law
from cod_monitor.methods.end_to_end import EndToEndExp, EndToEndPassRate, passrate_power_law
from cod_monitor.methods.loss_intermediate import LossIntermediate, sigmoid_link
from cod_monitor.ladder import Ladder, ModelInfo
from cod_monitor.cod.laws import expected_accuracy
from cod_monitor.methods import compare_methods, make_forecaster
from cod_monitor.synthetic import synthetic_ladder

UNIT = 1e18
C = np.logspace(np.log10(1.7), np.log10(1.7e4), 8)  # the synthetic ladder's compute, units
TARGET = 5.88e5  # the synthetic 70B target, 35x beyond the largest ladder model
BEYOND = np.logspace(np.log10(C[-1]), np.log10(TARGET), 7)
BASELINES = (EndToEndExp, EndToEndPassRate, BNSL, LossIntermediate)


def loss_law(c):
    return 1.8 + 3.0 * c**-0.15


# One curve per baseline that the baseline can represent exactly. Each rises across the
# ladder (a curve flat on most ladder points leaves the laws unidentified).
CURVES = {
    EndToEndExp: lambda c: expected_accuracy(c, 5.0, 0.5, 0.1, 0.0),
    EndToEndPassRate: lambda c: passrate_power_law(c, 3.0, 0.25),
    BNSL: lambda c: 1.0 - broken_power_law(c, 0.1, 0.8, 0.02, [0.5], [100.0], [0.5]),
    LossIntermediate: lambda c: sigmoid_link(loss_law(c), 0.2, 0.9, 3.0, 3.3),
}


def curve_ladder(accuracy, *, losses=None, n_samples=50, n_trials=None, seed=0):
    """A one-benchmark ('b') ladder at compute ``C`` whose full-set accuracy is ``accuracy``.

    Every sample has pass probability ``accuracy[j]`` on model ``j``. Without ``n_trials``
    the pass rates are exact; with it they are Binomial(n_trials, p) / n_trials.
    """
    rng = np.random.default_rng(seed)
    models = [
        ModelInfo(
            f"m{j}", params=1e8 * (j + 1), tokens=1e10, compute=c * UNIT,
            loss=None if losses is None or losses[j] is None else float(losses[j]),
        )
        for j, c in enumerate(C)
    ]
    rows = []
    for j, m in enumerate(models):
        if n_trials is None:
            scores = np.full(n_samples, accuracy[j])
        else:
            scores = rng.binomial(n_trials, accuracy[j], n_samples) / n_trials
        rows += [
            {"benchmark": "b", "sample_id": f"s{i}", "model": m.name, "score": float(s)}
            for i, s in enumerate(scores)
        ]
    return Ladder.from_records(models, rows, compute_unit=UNIT)


@pytest.fixture(scope="module")
def syn600():
    return synthetic_ladder(n_samples=600, seed=0)


# ----------------------------------------------------------------- recovery


@pytest.mark.parametrize("cls", BASELINES, ids=lambda c: c.__name__)
def test_recovers_a_curve_it_can_represent(cls):
    """Noiseless data from the baseline's own law: the forecast 35x beyond the ladder is
    exact up to optimiser tolerance (the fits reach RMSE ~1e-12 on these curves; 2e-3 is
    the tolerance the COD law tests allow for its 4-parameter fits)."""
    truth = CURVES[cls]
    est = cls(n_bootstrap=0).fit(curve_ladder(truth(C), losses=loss_law(C)), "b")
    assert_allclose(est.predict(BEYOND * UNIT), truth(BEYOND), atol=2e-3)
    assert_allclose(est.predict(C * UNIT), truth(C), atol=1e-4)
    assert est.report()["rmse"] < 1e-4


def test_passrate_recovers_alpha_and_k_exactly():
    est = EndToEndPassRate(n_bootstrap=0).fit(curve_ladder(CURVES[EndToEndPassRate](C)), "b")
    assert_allclose([est.alpha_, est.k_], [3.0, 0.25], rtol=1e-6)
    assert est.r2_ == pytest.approx(1.0)


def test_passrate_clips_pass_rates_of_zero_and_one():
    acc = CURVES[EndToEndPassRate](C)
    acc[0], acc[-1] = 0.0, 1.0
    est = EndToEndPassRate(n_bootstrap=0, eps=1e-3).fit(curve_ladder(acc), "b")
    assert np.isfinite([est.alpha_, est.k_]).all()
    assert 0.9 < est.predict(TARGET * UNIT) <= 1.0


def test_bnsl_parameters_are_reported_in_the_compute_unit():
    """The fit is scale-free: a 1000x larger compute unit gives the same forecast, with
    ``d`` 1000x smaller and ``b`` divided by 1000^c0 (b C^-c0 is unit-free)."""
    ladder = curve_ladder(CURVES[BNSL](C))
    e18 = BNSL(n_bootstrap=0).fit(ladder, "b")
    e21 = BNSL(n_bootstrap=0, compute_unit=1e21).fit(ladder, "b")
    assert_allclose(e18.predict(BEYOND * UNIT), e21.predict(BEYOND * UNIT), atol=1e-6)
    assert_allclose(e18.params_["d"], [100.0], rtol=1e-4)
    assert_allclose(e21.params_["d"], [0.1], rtol=1e-4)
    assert_allclose(e18.params_["c0"], 0.02, atol=1e-4)
    assert_allclose(e21.params_["b"], e18.params_["b"] / 1000.0 ** e18.params_["c0"], rtol=1e-4)


@pytest.mark.parametrize("n_breaks", [0, 2])
def test_bnsl_other_break_counts_fit(n_breaks):
    est = BNSL(n_breaks=n_breaks, n_bootstrap=0).fit(curve_ladder(CURVES[BNSL](C)), "b")
    assert len(est.params_["c"]) == n_breaks
    # two breaks can represent the one-break curve; no break is a plain power law
    tol = 1e-3 if n_breaks else 0.05
    assert abs(est.predict(TARGET * UNIT) - CURVES[BNSL](TARGET)) < tol


def test_loss_intermediate_recovers_both_steps():
    truth = CURVES[LossIntermediate]
    est = LossIntermediate(n_bootstrap=0).fit(curve_ladder(truth(C), losses=loss_law(C)), "b")
    lp, kp = est.loss_params_, est.link_params_
    assert_allclose([lp["E"], lp["A"], lp["alpha"]], [1.8, 3.0, 0.15], rtol=1e-3)
    assert_allclose([kp["lo"], kp["hi"], kp["k"], kp["L0"]], [0.2, 0.9, 3.0, 3.3], rtol=1e-3)
    assert est.loss_at(TARGET * UNIT) == pytest.approx(loss_law(TARGET), rel=1e-6)


def test_loss_intermediate_linear_link():
    acc = 1.2 - 0.22 * loss_law(C)
    est = LossIntermediate(link="linear", n_bootstrap=0).fit(
        curve_ladder(acc, losses=loss_law(C)), "b"
    )
    assert_allclose([est.link_params_["intercept"], est.link_params_["slope"]], [1.2, -0.22])
    assert est.predict(TARGET * UNIT) == pytest.approx(1.2 - 0.22 * loss_law(TARGET), abs=1e-6)


def test_loss_intermediate_skips_models_without_loss_with_a_warning():
    truth = CURVES[LossIntermediate]
    losses = [None if j in (0, 3) else v for j, v in enumerate(loss_law(C))]
    with pytest.warns(FitWarning, match="m0, m3"):
        est = LossIntermediate(n_bootstrap=0).fit(curve_ladder(truth(C), losses=losses), "b")
    assert [m.name for m in est.models_] == ["m1", "m2", "m4", "m5", "m6", "m7"]
    assert abs(est.predict(TARGET * UNIT) - truth(TARGET)) < 2e-3


@pytest.mark.parametrize("n_with_loss", [0, 2])
def test_loss_intermediate_without_losses_is_unavailable(n_with_loss):
    losses = [v if j < n_with_loss else None for j, v in enumerate(loss_law(C))]
    ladder = curve_ladder(CURVES[LossIntermediate](C), losses=losses)
    with pytest.raises(MethodUnavailableError, match=r"`loss`.*ladder\.json") as info:
        LossIntermediate().fit(ladder, "b")
    assert f"only {n_with_loss} of the 8" in str(info.value)


# ---------------------------------------------------------------- intervals


@pytest.mark.parametrize("cls", BASELINES, ids=lambda c: c.__name__)
def test_interval_brackets_the_point_and_widens_with_noise(cls):
    """Half-width shrinks with more samples (200 -> 2000 single answers) and with more
    answers per sample (1 -> 100): both cut the noise on the full-set accuracy ~3x."""
    truth = CURVES[cls]
    widths = {}
    for n_samples, n_trials in [(200, 1), (2000, 1), (200, 100)]:
        ladder = curve_ladder(
            truth(C), losses=loss_law(C), n_samples=n_samples, n_trials=n_trials, seed=1
        )
        est = cls(n_bootstrap=40).fit(ladder, "b")
        point = est.predict(TARGET * UNIT)
        lo, hi = est.predict_interval(TARGET * UNIT, level=0.9)
        assert lo <= point <= hi
        lo50, hi50 = est.predict_interval(TARGET * UNIT, level=0.5)
        assert lo <= lo50 <= hi50 <= hi
        widths[n_samples, n_trials] = hi - lo
    # sqrt(10) less noise would give ~0.32x; the margins absorb the bootstrap's own noise
    assert widths[2000, 1] < 0.75 * widths[200, 1]
    assert widths[200, 100] < 0.6 * widths[200, 1]


@pytest.mark.parametrize("cls", BASELINES, ids=lambda c: c.__name__)
def test_exact_data_gives_a_degenerate_interval(cls):
    """Without noise every bootstrap replicate refits the same curve (warm start)."""
    truth = CURVES[cls]
    est = cls(n_bootstrap=15).fit(curve_ladder(truth(C), losses=loss_law(C)), "b")
    draws = est.bootstrap_predictions(TARGET * UNIT)
    assert draws.shape == (15,)
    assert np.ptp(draws) < 2e-3


@pytest.mark.parametrize("cls", (EndToEndExp, EndToEndPassRate, BNSL), ids=lambda c: c.__name__)
def test_vectorised_predictions_and_intervals(cls, syn600):
    est = cls(n_bootstrap=20).fit(syn600.ladder, syn600.benchmark)
    grid = np.logspace(19, 24, 9)
    values = est.predict(grid)
    assert isinstance(est.predict(1e22), float) and values.shape == grid.shape
    assert np.all((0 <= values) & (values <= 1))
    lo, hi = est.predict_interval(grid)
    assert lo.shape == hi.shape == grid.shape
    assert np.all(lo <= values) and np.all(values <= hi)
    assert est.bootstrap_predictions(grid).shape == (20, 9)
    assert est.bootstrap_predictions(grid[:, None]).shape == (20, 9, 1)


def test_no_bootstrap_gives_the_point_as_interval(syn600):
    est = EndToEndExp(n_bootstrap=0).fit(syn600.ladder, syn600.benchmark)
    point = est.predict(syn600.target.compute)
    assert est.predict_interval(syn600.target.compute) == (point, point)


def test_bootstrap_is_seeded(syn600):
    a = BNSL(n_bootstrap=10, random_state=3).fit(syn600.ladder, syn600.benchmark)
    b = BNSL(n_bootstrap=10, random_state=3).fit(syn600.ladder, syn600.benchmark)
    c = BNSL(n_bootstrap=10, random_state=4).fit(syn600.ladder, syn600.benchmark)
    t = syn600.target.compute
    assert_allclose(a.bootstrap_predictions(t), b.bootstrap_predictions(t))
    assert not np.allclose(a.bootstrap_predictions(t), c.bootstrap_predictions(t))


# ---------------------------------------------------- ladder points and registry


def test_baselines_fit_the_ladder_points_cod_fits(syn600):
    """Anchors and targets are left out exactly as select_fit_points leaves them out."""
    ladder = syn600.ladder
    ladder_models = [m.name for m in ladder.models_with_role("ladder")]
    est = EndToEndExp(n_bootstrap=0).fit(ladder, syn600.benchmark)
    assert [m.name for m in est.models_] == ladder_models
    full = ladder.matrix(syn600.benchmark, roles=("ladder",)).pass_rates.mean(axis=0)
    assert_allclose(est.full_accuracy_, full)
    anchored = EndToEndExp(n_bootstrap=0, anchors=[ladder_models[-1]]).fit(ladder, "synthetic")
    assert [m.name for m in anchored.models_] == ladder_models[:-1]


def test_compare_methods_all_style(syn600):
    names = ["e2e-exp", "e2e-passrate", "bnsl", "loss-intermediate"]
    out = compare_methods(
        syn600.ladder, syn600.benchmark, syn600.target.compute, names, n_bootstrap=10,
        fallback="end_to_end",  # a COD-only argument: the baselines ignore it
    )
    truth = syn600.expected_accuracy[syn600.target.name]
    for name in names[:3]:
        lo, hi = out[name]["interval"]
        assert lo <= out[name]["value"] <= hi
        assert abs(out[name]["value"] - truth) < 0.1, name
        assert out[name]["estimator"].n_bootstrap == 10
    assert out["loss-intermediate"]["value"] is None
    assert "loss" in out["loss-intermediate"]["error"]


def test_registry_builds_the_baselines():
    assert isinstance(make_forecaster("bnsl", n_bootstrap=5, law="plain"), BNSL)
    est = make_forecaster("e2e-exp", law="no_g", clustering="kmeans")
    assert isinstance(est, EndToEndExp) and est.law == "no_g"


@pytest.mark.parametrize("cls", (EndToEndExp, EndToEndPassRate, BNSL), ids=lambda c: c.__name__)
def test_report_is_json_serialisable(cls, syn600):
    est = cls(n_bootstrap=0).fit(syn600.ladder, syn600.benchmark)
    report = json.loads(json.dumps(est.report()))
    assert report["benchmark"] == "synthetic"
    assert len(report["models"]) == 8
    assert report["rmse"] < 0.05
    assert report["fit"]


def test_loss_intermediate_report_is_json_serialisable():
    ladder = curve_ladder(CURVES[LossIntermediate](C), losses=loss_law(C))
    report = json.loads(json.dumps(LossIntermediate(n_bootstrap=0).fit(ladder, "b").report()))
    assert set(report["fit"]) == {"link", "loss_law", "link_fit"}
    assert report["models"][0]["loss"] == pytest.approx(loss_law(C[0]))


# --------------------------------------------------------------- sklearn contract


@pytest.mark.parametrize("cls", BASELINES, ids=lambda c: c.__name__)
def test_unfitted_raises_not_fitted(cls):
    est = cls()
    for call in (
        lambda: est.predict(1e22),
        lambda: est.predict_interval(1e22),
        lambda: est.bootstrap_predictions(1e22),
        lambda: est.report(),
    ):
        with pytest.raises(NotFittedError):
            call()
    assert not [k for k in vars(est) if k.endswith("_")]


@pytest.mark.parametrize("cls", BASELINES, ids=lambda c: c.__name__)
def test_clone_and_params(cls):
    est = cls(n_bootstrap=7, random_state=2)
    params = clone(est).get_params()
    assert params["n_bootstrap"] == 7 and params["random_state"] == 2
    assert {"anchors", "compute_unit", "checkpoints", "smooth_checkpoints"} <= set(params)
    with pytest.raises(TypeError):
        cls(7)  # keyword-only


@pytest.mark.parametrize(
    "cls, params, message",
    [
        (EndToEndExp, {"law": "cubic"}, "The 'law' parameter of EndToEndExp must be a str among"),
        (EndToEndPassRate, {"eps": 0.7}, r"The 'eps' parameter of EndToEndPassRate must be a "
         r"float in the range \(0, 0.5\). Got 0.7"),
        (BNSL, {"n_breaks": 4},
         r"The 'n_breaks' parameter of BNSL must be an int in the range \[0, 3\]"),
        (BNSL, {"n_breaks": 1.5}, "The 'n_breaks' parameter of BNSL must be an int"),
        (BNSL, {"n_refine": 0}, "The 'n_refine' parameter of BNSL"),
        (LossIntermediate, {"link": "cubic"}, "The 'link' parameter of LossIntermediate"),
        (EndToEndExp, {"n_bootstrap": -1}, "The 'n_bootstrap' parameter of EndToEndExp"),
        (BNSL, {"compute_unit": 0.0},
         r"The 'compute_unit' parameter of BNSL must be a float in the range \(0, inf\) or None"),
        (EndToEndPassRate, {"checkpoints": "last"}, "The 'checkpoints' parameter"),
    ],
)
def test_bad_params_name_the_parameter(cls, params, message, syn600):
    with pytest.raises(ValueError, match=message):
        cls(**params).fit(syn600.ladder, syn600.benchmark)


def test_bad_compute_and_level(syn600):
    est = EndToEndPassRate(n_bootstrap=5).fit(syn600.ladder, syn600.benchmark)
    with pytest.raises(ValueError, match="compute"):
        est.predict(-1.0)
    with pytest.raises(ValueError, match="level"):
        est.predict_interval(1e22, level=1.5)


def test_fit_warns_nothing_on_clean_synthetic_data(syn600):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for cls in (EndToEndExp, EndToEndPassRate, BNSL):
            cls(n_bootstrap=5).fit(syn600.ladder, syn600.benchmark).predict_interval(1e23)


# ------------------------------------------------------------- backtest interval


@pytest.mark.parametrize("cls", (EndToEndExp, EndToEndPassRate, BNSL), ids=lambda c: c.__name__)
def test_backtest_interval_contains_the_bootstrap_interval(cls, syn600):
    t = syn600.target.compute
    boot = cls(n_bootstrap=20).fit(syn600.ladder, syn600.benchmark)
    wide = cls(n_bootstrap=20, interval="backtest").fit(syn600.ladder, syn600.benchmark)
    assert wide.predict(t) == boot.predict(t)
    (lo, hi), (wlo, whi) = boot.predict_interval(t), wide.predict_interval(t)
    assert wlo <= lo and hi <= whi and whi - wlo > hi - lo
    bt = wide.backtest_
    assert len(bt) == 3 and all(b["log_distance"] > 0 for b in bt)
    # the backtests forecast the held-out runs with this method, not another one
    held = syn600.ladder.model(bt[0]["model"]).compute
    sub = syn600.ladder.without_models(
        [m.name for m in syn600.ladder.models if m.compute >= held and m.role != "target"]
    )
    again = cls(n_bootstrap=0).fit(sub, syn600.benchmark).predict(held)
    assert bt[0]["forecast"] == pytest.approx(again)


def test_backtest_interval_is_refreshed_by_a_new_fit(syn600):
    est = EndToEndExp(n_bootstrap=0, interval="backtest").fit(syn600.ladder, syn600.benchmark)
    est.predict_interval(syn600.target.compute)
    assert hasattr(est, "backtest_")
    est.fit(syn600.ladder, syn600.benchmark)
    assert not hasattr(est, "backtest_")


@pytest.mark.parametrize("params, message", [
    ({"interval": "conformal"}, "The 'interval' parameter of BNSL must be a str among"),
    ({"n_backtest": -1},
     r"The 'n_backtest' parameter of BNSL must be an int in the range \[0, inf\)"),
])
def test_bad_interval_params(params, message, syn600):
    with pytest.raises(ValueError, match=message):
        BNSL(**params).fit(syn600.ladder, syn600.benchmark)


def test_registry_baselines_use_the_backtest_interval():
    for name in ("e2e-exp", "e2e-passrate", "bnsl", "loss-intermediate"):
        assert make_forecaster(name).interval == "backtest"
        with pytest.warns(ConfigurationWarning, match="interval"):
            assert make_forecaster(name, interval="bootstrap").interval == "backtest"
