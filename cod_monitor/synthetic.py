"""Seeded synthetic ladders generated from known per-cluster COD laws.

Used by the offline demo, the tests and the benchmarks: because every sample's true
pass-rate curve is known, a forecast can be scored against the exact expected accuracy
of the target model rather than against a noisy measurement.

The default cluster mix follows what real exact-answer benchmarks show: a spread of
difficulties that emerge at different compute, one cluster already saturated on the
smallest model, one still unsolved at the target scale, and one showing inverse
scaling (accuracy falls as compute grows), which no COD law can extrapolate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cod_monitor.laws import expected_accuracy
from cod_monitor.ladder import Ladder, ModelInfo

__all__ = [
    "SyntheticCluster",
    "DEFAULT_CLUSTERS",
    "SyntheticLadder",
    "synthetic_ladder",
    "synthetic_pass_rates",
    "ladder_compute",
]

# Compute unit the cluster laws below are written in (the paper's, 1e18 FLOPs).
_UNIT = 1e18


@dataclass(frozen=True)
class SyntheticCluster:
    """One group of samples sharing a scaling law.

    Attributes
    ----------
    name : str
        Label used in reports and tests.
    share : float
        Fraction of the samples drawn from this cluster (shares are renormalised).
    a, b, c, g : float
        Law parameters, compute in units of 1e18 FLOPs.
    kind : {'emergent', 'saturated', 'unsolved', 'inverse'}
        ``inverse`` ignores the law: accuracy falls linearly in log-compute from 0.85
        at 1 unit (by 0.12 per decade, clipped to [0.05, 0.95]), the inverse-scaling
        pattern some real tasks show.
    """

    name: str
    share: float
    a: float
    b: float
    c: float = 0.0
    g: float = 0.0
    kind: str = "emergent"


def _emergent(name, share, c_star, b, c=0.0, g=0.0):
    # a = C*^b puts the knee of the curve (a C^-b = 1) at compute C*.
    return SyntheticCluster(name, share, a=c_star**b, b=b, c=c, g=g)


#: Cluster mix of :func:`synthetic_ladder`; ladder compute spans ~1.7 to 1.7e4 units.
DEFAULT_CLUSTERS: tuple[SyntheticCluster, ...] = (
    _emergent("easy", 0.15, c_star=3.0, b=0.40, c=0.03),
    _emergent("early", 0.15, c_star=20.0, b=0.50, c=0.08),
    _emergent("middle", 0.15, c_star=150.0, b=0.60, c=0.15),
    _emergent("late", 0.13, c_star=1_000.0, b=0.50, c=0.10),
    _emergent("choice", 0.11, c_star=400.0, b=0.45, c=0.20, g=0.25),
    _emergent("hard", 0.11, c_star=8_000.0, b=0.45, c=0.25),
    SyntheticCluster("saturated", 0.07, a=0.02, b=0.5, c=0.02, kind="saturated"),
    SyntheticCluster("unsolved", 0.04, a=1e8**0.6, b=0.6, kind="unsolved"),
    SyntheticCluster("inverse", 0.09, a=1.0, b=0.5, kind="inverse"),
)


def ladder_compute(n_models: int, *, smallest=1.2e8, largest=1.2e10, tokens_per_param=20.0):
    """Parameters, tokens and compute (FLOPs, 6ND) of a log-spaced ladder.

    Parameters
    ----------
    n_models : int
        Number of ladder models.
    smallest, largest : float
        Parameter counts of the smallest and largest model.
    tokens_per_param : float, default 20
        Training tokens per parameter (held fixed, as in the paper's ladder).

    Returns
    -------
    params, tokens, compute : ndarray of shape (n_models,)
    """
    params = np.logspace(np.log10(smallest), np.log10(largest), n_models)
    tokens = tokens_per_param * params
    return params, tokens, 6.0 * params * tokens


@dataclass(frozen=True)
class SyntheticLadder:
    """A generated ladder with its ground truth.

    Attributes
    ----------
    ladder : Ladder
        Ladder models (role ``ladder``) plus the target (role ``target``), one benchmark.
    benchmark : str
        Name of the benchmark.
    target : ModelInfo
        The held-out target model.
    expected_accuracy : dict of str to float
        Exact expected full-set accuracy of every model (target included), i.e. the
        mean of the per-sample true pass probabilities.
    cluster_names : ndarray of shape (n_samples,)
        True cluster of every sample.
    clusters : tuple of SyntheticCluster
        The generating clusters.
    probabilities : ndarray of shape (n_samples, n_models + 1)
        True pass probability of every sample on every model (target last), columns
        in the order of ``ladder.models``.
    """

    ladder: Ladder
    benchmark: str
    target: ModelInfo
    expected_accuracy: dict
    cluster_names: np.ndarray
    clusters: tuple
    probabilities: np.ndarray


def _true_probabilities(clusters, n_samples, compute_units, spread, rng):
    """Per-sample true pass probabilities, shape (n_samples, n_points)."""
    shares = np.array([cl.share for cl in clusters], dtype=float)
    counts = np.floor(shares / shares.sum() * n_samples).astype(int)
    counts[0] += n_samples - counts.sum()
    labels = np.repeat(np.arange(len(clusters)), counts)
    probs = np.empty((n_samples, len(compute_units)))
    for k, cl in enumerate(clusters):
        rows = labels == k
        n = int(rows.sum())
        if cl.kind == "inverse":
            level = 0.85 - 0.12 * np.log10(compute_units)
            jitter = rng.normal(0, 0.03, (n, 1))
            probs[rows] = np.clip(level[None, :] + jitter, 0.05, 0.95)
            continue
        # per-sample heterogeneity: scale a log-normally around the cluster's law
        a = cl.a * np.exp(rng.normal(0.0, spread, size=(n, 1)))
        probs[rows] = expected_accuracy(compute_units[None, :], a, cl.b, cl.c, cl.g)
    return labels, probs


def synthetic_ladder(
    n_samples: int = 2000,
    n_models: int = 8,
    *,
    clusters: tuple[SyntheticCluster, ...] = DEFAULT_CLUSTERS,
    n_trials: int = 100,
    spread: float = 0.15,
    target_params: float = 7e10,
    benchmark: str = "synthetic",
    compute_unit: float = _UNIT,
    seed: int = 0,
) -> SyntheticLadder:
    """Generate a ladder whose per-sample pass rates follow known COD laws.

    Pass rates are ``Binomial(n_trials, p) / n_trials`` of the true probability ``p``,
    as if each sample were answered ``n_trials`` times.

    Parameters
    ----------
    n_samples : int, default 2000
        Evaluation samples.
    n_models : int, default 8
        Ladder models, log-spaced from 120M to 12B parameters at 20 tokens/parameter.
    clusters : tuple of SyntheticCluster, default DEFAULT_CLUSTERS
        Generating clusters.
    n_trials : int, default 100
        Sampled answers per (sample, model).
    spread : float, default 0.15
        Log-normal spread of ``a`` across samples of one cluster.
    target_params : float, default 7e10
        Parameters of the target model (same recipe).
    benchmark : str, default 'synthetic'
    compute_unit : float, default 1e18
        Stored in the ladder (the laws themselves are written in 1e18 FLOPs).
    seed : int, default 0

    Returns
    -------
    SyntheticLadder

    Examples
    --------
    >>> syn = synthetic_ladder(n_samples=300, seed=1)
    >>> syn.ladder.models_with_role("target")[0].name
    'syn-target-70B'
    """
    rng = np.random.default_rng(seed)
    params, tokens, compute = ladder_compute(n_models)
    t_tokens = 20.0 * target_params
    all_compute = np.append(compute, 6.0 * target_params * t_tokens)
    labels, probs = _true_probabilities(clusters, n_samples, all_compute / _UNIT, spread, rng)
    passes = rng.binomial(n_trials, probs)

    models = [
        ModelInfo(name=f"syn-{p / 1e9:.3g}B", params=float(p), tokens=float(t), compute=float(c))
        for p, t, c in zip(params, tokens, compute)
    ]
    target = ModelInfo(
        name=f"syn-target-{target_params / 1e9:.3g}B",
        params=float(target_params),
        tokens=float(t_tokens),
        compute=float(all_compute[-1]),
        role="target",
    )
    models.append(target)
    sample_ids = [f"s{i:05d}" for i in range(n_samples)]
    rows = [
        {
            "benchmark": benchmark,
            "sample_id": sid,
            "model": m.name,
            "score": passes[i, j] / n_trials,
            "n_samples": n_trials,
            "n_correct": int(passes[i, j]),
        }
        for j, m in enumerate(models)
        for i, sid in enumerate(sample_ids)
    ]
    ladder = Ladder.from_records(models, rows, compute_unit=compute_unit, source="synthetic")
    truth = {m.name: float(probs[:, j].mean()) for j, m in enumerate(models)}
    names = np.array([clusters[k].name for k in labels], dtype=object)
    return SyntheticLadder(ladder, benchmark, target, truth, names, tuple(clusters), probs)


def synthetic_pass_rates(
    n_samples: int = 17944,
    n_models: int = 9,
    *,
    n_trials: int = 100,
    seed: int = 0,
    clusters: tuple[SyntheticCluster, ...] = DEFAULT_CLUSTERS,
) -> np.ndarray:
    """Only the (n_samples, n_models) pass-rate matrix of a synthetic ladder.

    Cheap enough for clustering benchmarks at the paper's benchmark sizes.

    Parameters
    ----------
    n_samples, n_models, n_trials, seed, clusters
        As in :func:`synthetic_ladder`.

    Returns
    -------
    ndarray of shape (n_samples, n_models)
        Pass rates, columns ordered by compute.
    """
    rng = np.random.default_rng(seed)
    _, _, compute = ladder_compute(n_models)
    _, probs = _true_probabilities(clusters, n_samples, compute / _UNIT, 0.15, rng)
    return rng.binomial(n_trials, probs) / n_trials
