"""Shared fixtures: seeded synthetic ladders with known per-cluster laws."""

import os

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
    from cod_monitor.forecast import CODForecaster

    return CODForecaster(n_bootstrap=60).fit(syn.ladder, syn.benchmark)
