"""Seeded synthetic ladders generated from known per-cluster COD laws.

Used by the offline demo, the tests and the benchmarks: because every sample's true
pass-rate curve is known, a forecast can be scored against the exact expected accuracy
of the target model rather than against a noisy measurement.

The default cluster mix follows what real exact-answer benchmarks show: a spread of
difficulties that emerge at different compute, one cluster already saturated on the
smallest model, one still unsolved at the target scale, and one showing inverse
scaling (accuracy falls as compute grows), which no COD law can extrapolate.

:func:`synthetic_run` generates a ladder *with intermediate checkpoints* and a target
run from a known law in parameters and tokens seen, for the live monitor's trajectory
forecasts and drift alerts (optionally with a sabotaged target).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cod_monitor.ladder import Ladder, ModelInfo
from cod_monitor.cod.laws import expected_accuracy

__all__ = [
    "SyntheticCluster",
    "DEFAULT_CLUSTERS",
    "SyntheticLadder",
    "synthetic_ladder",
    "synthetic_pass_rates",
    "ladder_compute",
    "TrajectoryCluster",
    "TRAJECTORY_CLUSTERS",
    "SyntheticRun",
    "synthetic_run",
    "synthetic_mixed_recipe_ladder",
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
        The ladder (its target included, with role ``'target'``), the clusters and the
        exact expected accuracy of every model.

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


# ----------------------------------------------------------- runs with checkpoints


@dataclass(frozen=True)
class TrajectoryCluster:
    """One difficulty cluster of :func:`synthetic_run`, a law in parameters and tokens.

    A sample of the cluster passes with probability
    ``g + (1 - g) * exp(-s * ((n_c / N) ** alpha + (d_c / D) ** beta) - c)`` after
    ``D`` tokens in a model of ``N`` parameters (``s``: the sample's own scale).
    """

    name: str
    share: float
    n_c: float
    d_c: float
    alpha: float
    beta: float
    c: float = 0.0
    g: float = 0.0


#: The default cluster mix of :func:`synthetic_run`: saturated, graded, a
#: multiple-choice-like floor (``g = 0.25``) and an unsolved cluster.
TRAJECTORY_CLUSTERS: tuple[TrajectoryCluster, ...] = (
    TrajectoryCluster("saturated", 0.06, 3e2, 3e3, 0.5, 0.5, 0.02),
    TrajectoryCluster("easy", 0.14, 6e3, 4e4, 0.5, 0.6, 0.03),
    TrajectoryCluster("early", 0.15, 3e4, 1e5, 0.5, 0.6, 0.05),
    TrajectoryCluster("middle", 0.15, 1.5e5, 2.5e5, 0.6, 0.7, 0.10),
    TrajectoryCluster("late", 0.14, 6e5, 5e5, 0.5, 0.6, 0.10),
    TrajectoryCluster("choice", 0.10, 3e5, 3e5, 0.45, 0.5, 0.20, 0.25),
    TrajectoryCluster("hard", 0.14, 3e6, 1.2e6, 0.45, 0.5, 0.20),
    TrajectoryCluster("unsolved", 0.12, 1e9, 1e9, 0.6, 0.6, 0.0),
)

_RUN_LADDER_PARAMS = (25.8e3, 49.4e3, 105e3, 228e3, 593e3, 1.25e6)
_RUN_TARGET_PARAMS = 3.97e6


def _run_tokens(params):
    """Tokens of a run of the synthetic recipe (the demo recipe's sub-linear shape)."""
    return 250e3 * (np.asarray(params, float) / 18e3) ** 0.3


@dataclass
class SyntheticRun:
    """A generated ladder with intermediate checkpoints, and a target run.

    Attributes
    ----------
    ladder : Ladder
        Ladder runs (role ``'ladder'``) and the target's checkpoints (role ``'target'``),
        every model with ``step`` and ``run``.
    benchmark : str
    target_params : float
    target : list of dict
        Per target checkpoint: ``step``, ``tokens``, ``compute``, ``accuracy`` (the
        binomially sampled mean pass rate), ``expected`` (its true expectation) and
        ``sabotaged`` (whether the slowdown applies there).
    sample_ids : list of str
    target_pass_rates : ndarray of shape (n_samples, n_target_checkpoints)
    """

    ladder: Ladder
    benchmark: str
    target_params: float
    target: list
    sample_ids: list
    target_pass_rates: np.ndarray


def _assign_clusters(clusters, n_samples, spread, rng):
    """Cluster label of every sample (by the clusters' shares) and its log-normal scale."""
    shares = np.array([c.share for c in clusters])
    counts = np.floor(shares / shares.sum() * n_samples).astype(int)
    counts[0] += n_samples - counts.sum()
    labels = np.repeat(np.arange(len(clusters)), counts)
    return labels, np.exp(rng.normal(0.0, spread, n_samples))


def _ladder_from_rates(models, sample_ids, benchmark, rates, source) -> Ladder:
    """A one-benchmark ladder from a (n_samples, n_models) matrix of pass rates."""
    n, k = len(sample_ids), len(models)
    cols = {"benchmark": [benchmark] * (n * k), "sample_id": list(sample_ids) * k,
            "model": [m.name for m in models for _ in range(n)],
            "score": rates.T.ravel().tolist()}  # model by model, samples in order
    return Ladder.from_columns(models, cols, compute_unit=1e10, source=source)


def _run_probabilities(clusters, labels, scale, N, D, eta):
    """(n_samples, n_points) true pass probabilities."""
    out = np.empty((len(labels), len(N)))
    for k, cl in enumerate(clusters):
        rows = labels == k
        t = (cl.n_c / N) ** cl.alpha + (cl.d_c / D) ** cl.beta
        t = t[None, :] * np.exp(eta)[None, :] * scale[rows, None]
        out[rows] = cl.g + (1 - cl.g) * np.exp(-t - cl.c)
    return out


def synthetic_run(
    n_samples: int = 600,
    *,
    seed: int = 0,
    ladder_checkpoints: int = 8,
    target_checkpoints: int = 16,
    eta_sd: float = 0.04,
    spread: float = 0.3,
    n_trials: int = 100,
    sabotage_at: float | None = None,
    slowdown: float = 8.0,
    ladder_params=_RUN_LADDER_PARAMS,
    target_params: float = _RUN_TARGET_PARAMS,
    clusters=TRAJECTORY_CLUSTERS,
    benchmark: str = "synthetic",
    tokens_per_step: float = 2048.0,
    sample_ids=None,
) -> SyntheticRun:
    """A seeded ladder of training runs with checkpoints, plus a target run.

    Every run trains ``D(N) = 250e3 (N / 18e3)^0.3`` tokens (the demo recipe's
    sub-linear shape) with checkpoints evenly spaced in steps. Each checkpoint gets
    one log-normal wobble ``eta`` shared by all its samples (the checkpoint-to-
    checkpoint noise of a constant learning-rate run); pass rates are
    ``Binomial(n_trials, p) / n_trials``.

    Parameters
    ----------
    n_samples : int, default 600
    seed : int, default 0
    ladder_checkpoints, target_checkpoints : int, default 8, 16
    eta_sd : float, default 0.04
        Standard deviation of the per-checkpoint wobble.
    spread : float, default 0.3
        Standard deviation of the per-sample log scale ``s``.
    n_trials : int, default 100
    sabotage_at : float, optional
        Share of the target's tokens after which it learns ``slowdown`` times slower
        (its effective tokens grow that much slower); ``None``: a healthy run.
    slowdown : float, default 8.0
    ladder_params : sequence of float
        Parameters of the ladder runs (default 25.8k to 1.25M).
    target_params : float, default 3.97e6
    clusters : sequence of TrajectoryCluster, default TRAJECTORY_CLUSTERS
    benchmark : str, default 'synthetic'
    tokens_per_step : float, default 2048
    sample_ids : sequence of str, optional
        Default ``s00000``, ``s00001``, ...

    Returns
    -------
    SyntheticRun

    Examples
    --------
    >>> run = synthetic_run(n_samples=200, seed=0)
    >>> len(run.target), run.ladder.compute_unit
    (16, 10000000000.0)
    >>> run.target[0]["accuracy"] < run.target[-1]["accuracy"]
    True
    """
    rng = np.random.default_rng(seed)
    labels, scale = _assign_clusters(clusters, n_samples, spread, rng)
    if sample_ids is None:
        sample_ids = [f"s{i:05d}" for i in range(n_samples)]
    sample_ids = list(sample_ids)

    def steps_of(params, n_checkpoints):
        spacing = int(np.ceil(_run_tokens(params) / tokens_per_step / n_checkpoints))
        return np.arange(1, n_checkpoints + 1) * spacing

    models, columns = [], []
    for r, n in enumerate(ladder_params):
        steps = steps_of(n, ladder_checkpoints)
        D = (steps * tokens_per_step).astype(float)
        eta = rng.normal(0.0, eta_sd, len(steps))
        p = _run_probabilities(clusters, labels, scale, np.full(len(steps), n), D, eta)
        columns.append(rng.binomial(n_trials, p) / n_trials)
        for s, d in zip(steps, D):
            models.append(ModelInfo(f"L{r + 1}-s{int(s)}", params=n, tokens=float(d),
                                    compute=6.0 * n * d, step=int(s), run=f"L{r + 1}"))

    steps = steps_of(target_params, target_checkpoints)
    D = (steps * tokens_per_step).astype(float)
    D_eff = D.copy()
    if sabotage_at is not None:
        d0 = sabotage_at * D[-1]
        D_eff = np.where(D > d0, d0 + (D - d0) / slowdown, D)
    eta = rng.normal(0.0, eta_sd, len(steps))
    p_t = _run_probabilities(clusters, labels, scale, np.full(len(steps), target_params),
                             D_eff, eta)
    rates_t = rng.binomial(n_trials, p_t) / n_trials
    columns.append(rates_t)
    target = []
    for j, (s, d) in enumerate(zip(steps, D)):
        models.append(ModelInfo(f"target-s{int(s)}", params=target_params, tokens=float(d),
                                compute=6.0 * target_params * d, step=int(s), run="target",
                                role="target"))
        target.append({"step": int(s), "tokens": float(d), "compute": 6.0 * target_params * d,
                       "accuracy": float(rates_t[:, j].mean()),
                       "expected": float(p_t[:, j].mean()),
                       "sabotaged": bool(D_eff[j] < D[j])})

    ladder = _ladder_from_rates(models, sample_ids, benchmark,
                                np.concatenate(columns, axis=1), "synthetic_run")
    return SyntheticRun(ladder, benchmark, target_params, target, sample_ids, rates_t)


def synthetic_mixed_recipe_ladder(
    seed: int = 0,
    *,
    n_samples: int = 300,
    sizes=(2e4, 5e4, 1.2e5, 3e5),
    multipliers=(1, 4, 16),
    tokens_per_param: float = 2.0,
    target_params: float = 1.2e6,
    n_trials: int = 100,
    spread: float = 0.3,
    clusters=TRAJECTORY_CLUSTERS,
    benchmark: str = "synthetic",
):
    """A ladder that trains every size at several token multipliers (OpenLM-style).

    Ladder model ``(N, m)`` trains ``m * tokens_per_param * N`` tokens; the target
    trains at multiplier 1. Every sample follows its cluster's law in parameters and
    tokens (as in :func:`synthetic_run`); ladder pass rates are binomial, the target's
    are the exact probabilities.

    Parameters
    ----------
    seed : int, default 0
    n_samples : int, default 300
    sizes : sequence of float
        Ladder parameters.
    multipliers : sequence of float
        Token multipliers of every ladder size.
    tokens_per_param : float, default 2.0
        Tokens per parameter at multiplier 1 (the target's recipe).
    target_params : float, default 1.2e6
    n_trials : int, default 100
    spread : float, default 0.3
    clusters : sequence of TrajectoryCluster
    benchmark : str, default 'synthetic'

    Returns
    -------
    ladder : Ladder
        Ladder models and the target (role ``'target'``), no checkpoints.
    target : ModelInfo
    truth : float
        The target's expected accuracy.

    Examples
    --------
    >>> ladder, target, truth = synthetic_mixed_recipe_ladder(0, n_samples=60)
    >>> len(ladder.models_with_role("ladder")), target.tokens / target.params
    (12, 2.0)
    """
    rng = np.random.default_rng(seed)
    labels, scale = _assign_clusters(clusters, n_samples, spread, rng)
    specs = [(n, tokens_per_param * m * n, "ladder") for n in sizes for m in multipliers]
    specs.append((target_params, tokens_per_param * target_params, "target"))
    models, columns = [], []
    for n, d, role in specs:
        models.append(ModelInfo(f"N{n:g}-D{d:g}", params=n, tokens=d, compute=6.0 * n * d,
                                role=role))
        p = _run_probabilities(clusters, labels, scale, np.array([n]), np.array([d]),
                               np.zeros(1))
        # the target's pass rates are its exact probabilities: the truth is known
        columns.append(p if role == "target" else rng.binomial(n_trials, p) / n_trials)
    ids = [f"s{i:05d}" for i in range(n_samples)]
    ladder = _ladder_from_rates(models, ids, benchmark, np.concatenate(columns, axis=1),
                                "synthetic_mixed_recipe_ladder")
    return ladder, models[-1], float(columns[-1].mean())
