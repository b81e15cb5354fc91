"""Shared fixtures: seeded synthetic ladders with known per-cluster laws."""

import os

import numpy as np
import pytest

from cod_monitor.synthetic import synthetic_ladder

# Keep BLAS from oversubscribing the 2 cores when pytest runs alongside other work.
os.environ.setdefault("OMP_NUM_THREADS", "2")


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
