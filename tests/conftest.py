"""Shared fixtures: seeded synthetic ladders with known per-cluster laws."""

import csv
import functools
import os
from pathlib import Path

import numpy as np
import pytest

from cod_monitor.synthetic import (
    synthetic_ladder,
    synthetic_mixed_recipe_ladder,
    synthetic_pass_rates,
)

# Keep BLAS from oversubscribing the 2 cores when pytest runs alongside other work.
os.environ.setdefault("OMP_NUM_THREADS", "2")

MONKEYS = Path(__file__).resolve().parents[2] / "shared" / "cod_data" / "pythia_monkeys"


@pytest.fixture(scope="session")
def syn():
    """A 2,000-sample, 8-model synthetic ladder plus a 70B target (seed 0)."""
    return synthetic_ladder(n_samples=2000, n_models=8, seed=0)


@pytest.fixture(scope="session")
def fitted_cod(syn):
    """COD fitted on the synthetic ladder with a small bootstrap."""
    from cod_monitor.cod.forecaster import CODForecaster

    return CODForecaster(n_bootstrap=60).fit(syn.ladder, syn.benchmark)


def shuffle_samples(ladder, benchmark: str, seed: int = 0):
    """The ladder with each model's per-sample pass rates permuted independently: the same
    accuracies, but difficulty becomes model-specific (COD's premise broken on purpose)."""
    from cod_monitor.ladder import Ladder

    mat = ladder.matrix(benchmark, roles=("ladder", "anchor", "target"))
    rng = np.random.default_rng(seed)
    rows = []
    for j, m in enumerate(mat.models):
        col = rng.permutation(mat.pass_rates[:, j])
        rows += [{"benchmark": benchmark, "sample_id": s, "model": m.name, "score": v}
                 for s, v in zip(mat.sample_ids, col)]
    return Ladder.from_records(list(mat.models), rows, compute_unit=ladder.compute_unit)


@pytest.fixture(scope="session")
def shuffle():
    """:func:`shuffle_samples`, for tests."""
    return shuffle_samples


@pytest.fixture(scope="session")
def shuffled_syn_dir(tmp_path_factory, syn):
    """A saved copy of ``syn`` with shuffled samples (difficulty reversals far above 10 %)."""
    path = tmp_path_factory.mktemp("shuffled") / "ladder"
    shuffle_samples(syn.ladder, syn.benchmark).save(path)
    return path


@pytest.fixture(scope="session")
def monkeys():
    """MATH pass rates of 7 Pythia models x 128 problems, columns by model size."""
    if not (MONKEYS / "math_llmonkeys.csv").exists():
        pytest.skip("../shared/cod_data/pythia_monkeys is not available")
    with open(MONKEYS / "models.csv", newline="") as f:
        params = {r["model"]: float(r["params_total"]) for r in csv.DictReader(f)}
    with open(MONKEYS / "math_llmonkeys.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    models = sorted({r["model"] for r in rows}, key=params.__getitem__)
    problems = sorted({r["problem_id"] for r in rows})
    col = {m: j for j, m in enumerate(models)}
    row = {p: i for i, p in enumerate(problems)}
    M = np.full((len(problems), len(models)), np.nan)
    for r in rows:
        M[row[r["problem_id"]], col[r["model"]]] = float(r["pass_rate"])
    assert not np.isnan(M).any()
    return M


def check_cluster_invariants(X, est, K):
    """Algorithm 1's guarantees: clusters of at least ``K`` members, all within ``radius_``."""
    members = est.labels_ >= 0
    sizes = np.bincount(est.labels_[members], minlength=est.n_clusters_)
    assert sizes.shape == (est.n_clusters_,)
    assert est.cluster_centers_.shape == (est.n_clusters_, X.shape[1])
    assert np.all(sizes >= K)
    dist = np.linalg.norm(X[members] - est.cluster_centers_[est.labels_[members]], axis=1)
    assert np.all(dist <= est.radius_)


@pytest.fixture(scope="session")
def check_clusters():
    """:func:`check_cluster_invariants`, for tests."""
    return check_cluster_invariants


@pytest.fixture(scope="session")
def X():
    """1,500 samples x 9 models of difficulty vectors, with some all-zero rows."""
    return synthetic_pass_rates(n_samples=1500, n_models=9, seed=0)


@pytest.fixture(scope="session")
def fitted(X):
    """:class:`ImprovedMeanShift` fitted on :func:`X`."""
    from cod_monitor.cod.clustering import ImprovedMeanShift

    return ImprovedMeanShift().fit(X)


_SMALL_SIZES = (2e4, 5e4, 1.2e5, 3e5, 7e5)


@functools.cache
def _small_ladder(n: int, target: bool, recipe: str):
    """``(ladder, benchmark, target_compute, tokens_per_param)``: ``n`` finished ladder
    models and, if ``target``, the target (role ``'target'``)."""
    if recipe == "fixed":
        syn = synthetic_ladder(n_samples=200, n_models=n, seed=0)
        ladder, tgt, ratio = syn.ladder, syn.target, 20.0
    else:
        # one model per size, the token multiplier alternating 1, 4, 1, ...: mixed ratios
        ladder, tgt, _ = synthetic_mixed_recipe_ladder(0, n_samples=200, sizes=_SMALL_SIZES,
                                                       multipliers=(1, 4))
        keep = {f"N{s:g}-D{2.0 * (4 if i % 2 else 1) * s:g}"
                for i, s in enumerate(_SMALL_SIZES[:n])}
        ladder = ladder.without_models(
            [m.name for m in ladder.models if m.role == "ladder" and m.name not in keep])
        ratio = 2.0
    assert len(ladder.models_with_role("ladder")) == n
    if not target:
        ladder = ladder.without_models(tgt.name)
    return ladder, "synthetic", tgt.compute, ratio


@pytest.fixture(scope="session")
def small_ladder():
    """Builds small ladders of finished models (no checkpoints) for failure-isolation
    tests: ``small_ladder(n, target, recipe)`` with ``n`` ladder models, with or
    without the target model, at one recipe (``'fixed'``: 20 tokens per parameter)
    or at mixed tokens per parameter (``'mixed'``: multipliers 1 and 4 alternating);
    returns ``(ladder, benchmark, target_compute, tokens_per_param)``."""
    return _small_ladder
