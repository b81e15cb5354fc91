import numpy as np
import pytest

from cod_monitor.synthetic import DEFAULT_CLUSTERS, synthetic_ladder, synthetic_pass_rates


def test_seeded_and_reproducible():
    a = synthetic_ladder(n_samples=300, seed=4)
    b = synthetic_ladder(n_samples=300, seed=4)
    np.testing.assert_array_equal(
        a.ladder.matrix(a.benchmark).pass_rates, b.ladder.matrix(b.benchmark).pass_rates
    )
    c = synthetic_ladder(n_samples=300, seed=5)
    assert not np.array_equal(a.ladder.matrix(a.benchmark).pass_rates, c.ladder.matrix(c.benchmark).pass_rates)


def test_truth_is_the_mean_of_true_probabilities_and_rises_with_compute():
    syn = synthetic_ladder(n_samples=500, seed=1)
    names = [m.name for m in syn.ladder.models]
    truth = np.array([syn.expected_accuracy[n] for n in names])
    np.testing.assert_allclose(truth, syn.probabilities.mean(axis=0))
    assert np.all(np.diff(truth) > 0)
    assert names[-1] == syn.target.name and syn.target.role == "target"
    observed = syn.ladder.matrix(syn.benchmark).pass_rates.mean(axis=0)
    np.testing.assert_allclose(observed, truth[:-1], atol=0.01)  # binomial noise only


def test_cluster_shares_and_pass_rate_shape():
    syn = synthetic_ladder(n_samples=1000, seed=0)
    names, counts = np.unique(syn.cluster_names, return_counts=True)
    assert set(names) == {c.name for c in DEFAULT_CLUSTERS}
    X = synthetic_pass_rates(n_samples=1319, n_models=9, seed=0)
    assert X.shape == (1319, 9) and X.min() >= 0 and X.max() <= 1
    assert np.any(X.sum(axis=1) == 0)  # some all-zero rows, as on real benchmarks


def test_synthetic_run_has_checkpointed_runs_and_a_rising_target():
    from cod_monitor.synthetic import synthetic_run

    run = synthetic_run(n_samples=120, seed=2, eta_sd=0.0)  # no checkpoint wobble
    ladder_models = run.ladder.models_with_role("ladder")
    assert {m.run for m in ladder_models} == {f"L{i}" for i in range(1, 7)}
    assert all(m.step is not None for m in run.ladder.models)
    assert len(run.target) == 16 and run.target_pass_rates.shape == (120, 16)
    expected = [t["expected"] for t in run.target]
    assert np.all(np.diff(expected) > 0)  # the true curve of a healthy run rises
    assert not any(t["sabotaged"] for t in run.target)


def test_synthetic_run_sabotage_slows_only_the_checkpoints_after_it():
    from cod_monitor.synthetic import synthetic_run

    healthy = synthetic_run(n_samples=200, seed=4)
    hurt = synthetic_run(n_samples=200, seed=4, sabotage_at=0.5, slowdown=10.0)
    flags = [t["sabotaged"] for t in hurt.target]
    assert flags == [t["tokens"] > 0.5 * hurt.target[-1]["tokens"] for t in hurt.target]
    for h, s, flag in zip(healthy.target, hurt.target, flags):
        if flag:
            assert s["expected"] < h["expected"]
        else:
            assert s["expected"] == pytest.approx(h["expected"])
