import json
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from cod_monitor.exceptions import NotFittedError

from cod_monitor.exceptions import FitWarning, LadderValidationError, NoExtrapolatableClusterError
from cod_monitor.cod.filtering import Verdict
from cod_monitor.cod.forecaster import CODForecaster
from cod_monitor.cod.laws import expected_accuracy, fit_local_trend
from cod_monitor.synthetic import SyntheticCluster, synthetic_ladder

EMERGENT = {"easy", "early", "middle", "late", "choice", "hard"}


def test_subset_forecast_matches_the_true_subset_accuracy(syn, fitted_cod):
    in_subset = np.isin(fitted_cod.labels_, np.flatnonzero(fitted_cod.kept_))
    true_subset = syn.probabilities[in_subset, -1].mean()
    assert abs(fitted_cod.predict_subset(syn.target.compute) - true_subset) < 0.01


def test_forecast_within_tolerance_of_the_known_truth(syn, fitted_cod):
    # the mapping through (1, 1) overshoots here because 20% of the samples are
    # saturated, unsolved or inverse-scaling: the paper's mapping assumes none are
    truth = syn.expected_accuracy[syn.target.name]
    assert abs(fitted_cod.predict(syn.target.compute) - truth) < 0.05
    # and it reproduces the ladder it was fitted on
    for m in syn.ladder.models_with_role("ladder"):
        assert abs(fitted_cod.predict(m.compute) - syn.expected_accuracy[m.name]) < 0.02


def test_interval_brackets_the_point_forecast(syn, fitted_cod):
    point = fitted_cod.predict(syn.target.compute)
    lo, hi = fitted_cod.predict_interval(syn.target.compute, level=0.9)
    assert lo <= point <= hi
    assert 0 < hi - lo < 0.2
    lo50, hi50 = fitted_cod.predict_interval(syn.target.compute, level=0.5)
    assert lo <= lo50 <= hi50 <= hi


def test_predict_is_vectorised_and_increasing_in_compute(syn, fitted_cod):
    grid = np.logspace(19, 24, 30)
    values = fitted_cod.predict(grid)
    assert values.shape == grid.shape
    assert np.all(np.diff(values) >= -1e-9)
    lo, hi = fitted_cod.predict_interval(grid)
    assert lo.shape == hi.shape == grid.shape and np.all(lo <= hi)


def test_filter_verdicts_follow_the_design(syn, fitted_cod):
    """Emergent clusters are kept; saturated and inverse-scaling ones are not."""
    labels, kept = fitted_cod.labels_, fitted_cod.kept_
    in_kept = np.zeros(len(labels), dtype=bool)
    in_kept[labels >= 0] = kept[labels[labels >= 0]]
    share = {name: in_kept[syn.cluster_names == name].mean() for name in set(syn.cluster_names)}
    assert np.mean([share[n] for n in EMERGENT if n != "hard"]) > 0.8
    assert share["saturated"] < 0.1
    assert share["inverse"] < 0.1
    assert share["unsolved"] < 0.1
    verdicts = {v.verdict for v in fitted_cod.verdicts_}
    assert Verdict.KEPT in verdicts
    assert verdicts & {Verdict.SATURATED, Verdict.NON_MONOTONE, Verdict.OUT_OF_RANGE}


def test_recovered_cluster_laws_match_the_generating_ones(syn, fitted_cod):
    """The kept cluster dominated by a true cluster extrapolates like its true law."""
    C_target = syn.target.compute / 1e18
    for k in np.flatnonzero(fitted_cod.kept_):
        members = syn.cluster_names[fitted_cod.labels_ == k]
        names, counts = np.unique(members, return_counts=True)
        if counts.max() < 0.9 * len(members) or len(members) < 50:
            continue
        true = next(c for c in syn.clusters if c.name == names[counts.argmax()])
        fit = fitted_cod.cluster_fits_[k]
        # the generating law's curve at the target (per-sample spread shifts it a bit)
        assert abs(fit(C_target) - expected_accuracy(C_target, true.a, true.b, true.c, true.g)) < 0.08


def test_report_is_json_and_complete(fitted_cod):
    rep = fitted_cod.report()
    json.dumps(rep)
    assert rep["n_clusters"] == len(rep["clusters"]) > 0
    assert 0 < rep["subset_share"] < 1
    assert sum(c["size"] for c in rep["clusters"]) + rep["n_outliers"] == rep["n_samples"]
    assert {c["verdict"] for c in rep["clusters"]} <= {v.value for v in Verdict}
    assert rep["mapping"]["monotone"]


def test_unfitted_raises():
    with pytest.raises(NotFittedError):
        CODForecaster().predict(1e23)


def test_bad_parameters_name_the_parameter(syn):
    with pytest.raises(ValueError, match="'law' parameter of CODForecaster"):
        CODForecaster(law="cubic").fit(syn.ladder, syn.benchmark)
    with pytest.raises(ValueError, match="'compute_unit' parameter"):
        CODForecaster(compute_unit=-1).fit(syn.ladder, syn.benchmark)


def test_bad_compute_at_predict(fitted_cod):
    with pytest.raises(ValueError, match="positive and finite"):
        fitted_cod.predict(-1.0)


@pytest.fixture(scope="module")
def unpredictable():
    """A ladder with only inverse-scaling and unsolved samples."""
    clusters = (
        SyntheticCluster("unsolved", 0.3, a=1e8**0.6, b=0.6, kind="unsolved"),
        SyntheticCluster("inverse", 0.5, a=1.0, b=0.5, kind="inverse"),
    )
    return synthetic_ladder(n_samples=600, clusters=clusters, seed=2)


def test_no_extrapolatable_cluster_is_a_named_error(unpredictable):
    with pytest.raises(NoExtrapolatableClusterError, match="no extrapolatable cluster") as err:
        CODForecaster().fit(unpredictable.ladder, unpredictable.benchmark)
    assert sum(err.value.reasons.values()) >= 1
    assert "fallback" in str(err.value)


@pytest.mark.parametrize("fallback", ["all_clusters", "end_to_end"])
def test_fallbacks_forecast_anyway(unpredictable, fallback):
    cod = CODForecaster(fallback=fallback, n_bootstrap=10).fit(
        unpredictable.ladder, unpredictable.benchmark
    )
    assert cod.fallback_used_ in ("all_clusters", "end_to_end")
    assert 0 <= cod.predict(unpredictable.target.compute) <= 1


def test_anchor_enters_the_mapping_and_target_cannot_be_an_anchor(syn):
    names = [m.name for m in syn.ladder.models_with_role("ladder")]
    ladder = syn.ladder.with_roles({names[-1]: "anchor"})
    cod = CODForecaster(n_bootstrap=0).fit(ladder, syn.benchmark)
    assert [m.name for m in cod.anchor_models_] == [names[-1]]
    assert names[-1] not in [m.name for m in cod.models_]
    assert len(cod.mapping_.points_) == len(names) + 2  # 7 ladder + 1 anchor + 2 ends
    with pytest.raises(LadderValidationError, match="anchors"):
        CODForecaster(anchors=[syn.target.name]).fit(syn.ladder, syn.benchmark)


def test_too_few_ladder_points(syn):
    names = [m.name for m in syn.ladder.models_with_role("ladder")]
    small = syn.ladder.without_models(names[2:])
    with pytest.raises(LadderValidationError):
        CODForecaster().fit(small, syn.benchmark)


def _with_checkpoints(syn):
    """Give every ladder model two earlier checkpoints (copies with noise)."""
    from cod_monitor.ladder import Ladder, ModelInfo

    rng = np.random.default_rng(5)
    full = syn.ladder.matrix(syn.benchmark, roles=("ladder",))
    models, rows = [], []
    for j, m in enumerate(full.models):
        for step, frac in ((1000, 0.6), (2000, 0.8), (3000, 1.0)):
            name = f"{m.name}@{step}"
            models.append(ModelInfo(name, m.params, m.tokens * frac, m.compute * frac, step=step))
            scores = full.pass_rates[:, j] if frac == 1.0 else np.clip(
                full.pass_rates[:, j] * frac + rng.normal(0, 0.01, len(full.sample_ids)), 0, 1)
            rows += [
                {"benchmark": syn.benchmark, "sample_id": s, "model": name, "score": float(v)}
                for s, v in zip(full.sample_ids, scores)
            ]
    return Ladder.from_records(models, rows)


def test_final_checkpoints_and_smoothing(syn):
    ladder = _with_checkpoints(syn)
    final = CODForecaster(n_bootstrap=0).fit(ladder, syn.benchmark)
    assert all(m.step == 3000 for m in final.models_)
    assert len(final.models_) == 8
    allpts = CODForecaster(n_bootstrap=0, checkpoints="all").fit(ladder, syn.benchmark)
    assert len(allpts.models_) == 24
    smooth = CODForecaster(n_bootstrap=0, smooth_checkpoints=True).fit(ladder, syn.benchmark)
    # a run enters as the mean of its last three checkpoints (steps 1000..3000), placed at
    # the middle one: step 2000's tokens and compute
    assert all(m.step == 2000 for m in smooth.models_) and len(smooth.models_) == 8
    mat = ladder.matrix(syn.benchmark)
    for m, acc in zip(smooth.models_, smooth.full_accuracy_):
        cols = [mat.model_names.index(f"{m.name.split('@')[0]}@{s}") for s in (1000, 2000, 3000)]
        assert acc == pytest.approx(mat.pass_rates[:, cols].mean(), abs=1e-12)
    assert np.all(smooth.full_accuracy_ < final.full_accuracy_ + 1e-12)
    assert np.any(smooth.full_accuracy_ < final.full_accuracy_ - 0.005)
    # its backtests judge a held-out run by that same smoothed point
    from cod_monitor.cod.intervals import backtest_forecaster
    bt = backtest_forecaster(smooth, ladder, syn.benchmark, n_backtest=2)
    assert bt, "no run could be backtested"
    for row in bt:
        i = [m.name for m in smooth.models_].index(row["model"])
        assert row["truth"] == pytest.approx(smooth.full_accuracy_[i], abs=1e-12)


@pytest.mark.parametrize("law", ["no_g", "no_c", "plain"])
def test_law_ablations_fit(syn, law):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)
        try:
            cod = CODForecaster(law=law, n_bootstrap=0).fit(syn.ladder, syn.benchmark)
        except NoExtrapolatableClusterError:
            return  # an ablation may legitimately keep nothing
    assert all(f.form == law for f in cod.cluster_fits_)


# ----------------------------------------------------------- beyond the paper's pipeline

#: The options the ``cod`` configuration adds to the paper (cod_monitor.cod.configs).
IMPROVED = dict(
    features="arcsine", compute_unit="ladder", combine="share", rest="trend",
    fallback="rest", interval="backtest", c_max=float("inf"),
)


@pytest.fixture(scope="module")
def shared_cod(syn):
    return CODForecaster(n_bootstrap=40, **IMPROVED).fit(syn.ladder, syn.benchmark)


def test_share_combination_removes_the_mapping_overshoot(syn, fitted_cod, shared_cod):
    truth = syn.expected_accuracy[syn.target.name]
    assert shared_cod.combine_ == "share"
    assert abs(shared_cod.predict(syn.target.compute) - truth) < 0.01
    # the paper's mapping through (1, 1) on the same ladder overshoots by several points
    assert fitted_cod.predict(syn.target.compute) - truth > 0.02


def test_share_forecast_is_the_share_weighted_sum(syn, shared_cod):
    c = np.array([syn.target.compute, 10 * syn.target.compute])
    s = shared_cod.subset_share_
    sub = shared_cod.predict_subset(c)
    rest = shared_cod.rest_model_(c / shared_cod.compute_unit_)
    assert 0.5 < s < 1
    assert_allclose(shared_cod.predict(c), s * sub + (1 - s) * rest)
    assert_allclose(shared_cod.full_from_subset(sub, c), shared_cod.predict(c))
    # on the ladder itself it reproduces the measured full-set accuracy
    for m in syn.ladder.models_with_role("ladder"):
        assert abs(shared_cod.predict(m.compute) - syn.expected_accuracy[m.name]) < 0.02


def test_rest_trend_follows_inverse_scaling_a_rest_law_cannot(syn, shared_cod):
    truth = syn.expected_accuracy[syn.target.name]
    assert shared_cod.rest_model_.slope < 0  # the rest is dominated by inverse scaling
    law = CODForecaster(n_bootstrap=0, **{**IMPROVED, "rest": "law"}).fit(syn.ladder, syn.benchmark)
    assert law.rest_model_.form == "full"
    err_law = abs(law.predict(syn.target.compute) - truth)
    err_trend = abs(shared_cod.predict(syn.target.compute) - truth)
    assert err_law > err_trend + 0.01


def test_arcsine_features_leave_fewer_outliers_and_purer_clusters(syn, shared_cod):
    raw = CODForecaster(n_bootstrap=0, **{**IMPROVED, "features": "pass_rate"}).fit(
        syn.ladder, syn.benchmark
    )
    assert np.mean(shared_cod.labels_ < 0) < 0.06 < 0.08 < np.mean(raw.labels_ < 0)
    purity = []
    for k in range(len(shared_cod.cluster_sizes_)):
        _, counts = np.unique(syn.cluster_names[shared_cod.labels_ == k], return_counts=True)
        purity.append(counts.max() / counts.sum())
    assert np.median(purity) > 0.95


def test_fallback_rest_forecasts_everything_with_the_trend(unpredictable):
    for combine in ("share", "mapping"):
        cod = CODForecaster(combine=combine, fallback="rest", n_bootstrap=10).fit(
            unpredictable.ladder, unpredictable.benchmark
        )
        assert cod.fallback_used_ == "rest" and cod.combine_ == "share"
        assert cod.subset_share_ == 0 and not cod.kept_.any()
        c = unpredictable.target.compute
        expected = fit_local_trend(cod.compute_, cod.full_accuracy_)(c / cod.compute_unit_)
        assert cod.predict(c) == pytest.approx(float(expected))
        assert abs(cod.predict(c) - unpredictable.expected_accuracy[unpredictable.target.name]) < 0.02
        lo, hi = cod.predict_interval(c)
        assert lo <= cod.predict(c) <= hi


def _rescaled(ladder, benchmark, factor):
    """The same pass rates with every model's compute multiplied by ``factor``."""
    import dataclasses

    from cod_monitor.ladder import Ladder

    models = [dataclasses.replace(m, compute=m.compute * factor) for m in ladder.models]
    mat = ladder.matrix(benchmark, roles=("ladder", "target"))
    rows = [
        {"benchmark": benchmark, "sample_id": s, "model": name, "score": float(mat.pass_rates[i, j])}
        for j, name in enumerate(mat.model_names)
        for i, s in enumerate(mat.sample_ids)
    ]
    return Ladder.from_records(models, rows)


def test_ladder_unit_makes_the_filter_independent_of_the_flops_scale():
    syn = synthetic_ladder(n_samples=600, seed=0)
    small = _rescaled(syn.ladder, syn.benchmark, 1e-3)
    opts = {**IMPROVED, "interval": "bootstrap", "n_bootstrap": 0}
    fits = {
        (unit, name): CODForecaster(**{**opts, "compute_unit": unit}).fit(ladder, syn.benchmark)
        for unit in (None, "ladder")
        for name, ladder in (("orig", syn.ladder), ("small", small))
    }
    # in a fixed unit (1e18 FLOPs) the same pass rates pass or fail by the FLOPs scale
    assert fits[None, "small"].subset_share_ < fits[None, "orig"].subset_share_ - 0.3
    # relative to the smallest ladder model they do not
    a, b = fits["ladder", "orig"], fits["ladder", "small"]
    assert_array_equal(a.kept_, b.kept_)
    assert a.predict(syn.target.compute) == pytest.approx(b.predict(syn.target.compute * 1e-3))


def test_backtests_hold_out_the_largest_runs(syn, shared_cod):
    bt = shared_cod.backtest()
    ladder_models = sorted(syn.ladder.models_with_role("ladder"), key=lambda m: -m.compute)
    assert [b["model"] for b in bt] == [m.name for m in ladder_models[:3]]
    for b in bt:
        assert b["residual"] == pytest.approx(b["truth"] - b["forecast"])
        assert b["log_distance"] > 0
        assert abs(b["residual"]) < 0.02
    assert json.loads(json.dumps(shared_cod.report()))["backtest"] == bt


def test_backtest_interval_widens_the_bootstrap_with_distance(syn, shared_cod):
    c = syn.target.compute
    boot = CODForecaster(n_bootstrap=40, **{**IMPROVED, "interval": "bootstrap"}).fit(
        syn.ladder, syn.benchmark
    )
    lo_b, hi_b = boot.predict_interval(c)
    lo, hi = shared_cod.predict_interval(c)
    assert lo < lo_b <= hi_b < hi
    assert lo <= syn.expected_accuracy[syn.target.name] <= hi
    far_lo, far_hi = shared_cod.predict_interval(100 * c)
    assert far_hi - far_lo > hi - lo
    assert_allclose(boot.bootstrap_predictions(c), shared_cod.bootstrap_predictions(c))


def test_share_bootstrap_refits_the_rest_and_rejudges_the_filter(shared_cod, syn):
    draws = shared_cod.bootstrap_predictions(syn.target.compute)
    assert draws.shape == (40,) and np.std(draws) > 0
    reps = shared_cod._replicates
    sizes = shared_cod.cluster_sizes_
    for rep in reps:
        assert rep.kept.dtype == bool and rep.mapping is None
        assert rep.share == pytest.approx(sizes[rep.kept].sum() / len(shared_cod.labels_))
        assert rep.rest is not None


def test_backtest_forecaster_works_for_a_baseline(syn):
    from cod_monitor.cod.intervals import backtest_forecaster
    from cod_monitor.methods.end_to_end import EndToEndExp

    e2e = EndToEndExp(n_bootstrap=0).fit(syn.ladder, syn.benchmark)
    bt = backtest_forecaster(e2e, syn.ladder, syn.benchmark, n_backtest=2)
    assert len(bt) == 2 and all(np.isfinite(b["forecast"]) for b in bt)


@pytest.mark.parametrize(
    "param, value",
    [
        ("combine", "blend"),
        ("rest", "poly"),
        ("trend_window", 0.0),
        ("trend_window", 1.5),
        ("interval", "conformal"),
        ("n_backtest", -1),
        ("features", "logit"),
        ("fallback", "nope"),
    ],
)
def test_new_parameters_are_validated(syn, param, value):
    with pytest.raises(ValueError, match=f"'{param}' parameter of CODForecaster"):
        CODForecaster(**{param: value}).fit(syn.ladder, syn.benchmark)


def test_low_ceiling_cluster_is_kept_and_forecast_by_its_law():
    """A cluster that rises to a low ceiling (c = 1.6, ceiling 0.2) extrapolates by its
    law under the share combination; the paper's c < 1 test sends it to the rest trend,
    which keeps rising past the ceiling."""
    from cod_monitor.methods import make_forecaster
    from cod_monitor.synthetic import SyntheticCluster

    clusters = (
        SyntheticCluster("early", 0.5, a=20.0**0.5, b=0.5, c=0.1),
        SyntheticCluster("capped", 0.5, a=60.0**0.6, b=0.6, c=1.6),
    )
    syn = synthetic_ladder(n_samples=600, clusters=clusters, seed=0)
    truth = syn.expected_accuracy[syn.target.name]
    cod = make_forecaster("cod-trend", n_bootstrap=0).fit(syn.ladder, syn.benchmark)
    paper = make_forecaster("cod-ceiling-filter", n_bootstrap=0).fit(syn.ladder, syn.benchmark)
    assert cod.subset_share_ > 0.8 and paper.subset_share_ < 0.5
    rejected = [v for v in paper.verdicts_ if not v.kept]
    assert rejected and all(v.verdict is Verdict.OUT_OF_RANGE and "c=" in v.detail
                            for v in rejected)
    err = abs(cod.predict(syn.target.compute) - truth)
    assert err < 0.025 and err < 0.6 * abs(paper.predict(syn.target.compute) - truth)


def test_cluster_means_equal_the_unbuffered_sums_to_the_last_bit():
    from cod_monitor.cod.forecaster import cluster_means

    rng = np.random.default_rng(0)
    X = rng.random((500, 7))
    labels = rng.integers(-1, 6, 500)
    labels[labels == 4] = -1  # an empty cluster
    means, sizes = cluster_means(X, labels, 6)
    sums = np.zeros((6, 7))
    np.add.at(sums, labels[labels >= 0], X[labels >= 0])
    counts = np.bincount(labels[labels >= 0], minlength=6)
    assert np.array_equal(sizes, counts)
    with np.errstate(invalid="ignore", divide="ignore"):
        assert np.array_equal(means, np.nan_to_num(sums / counts[:, None]))
