"""Seeded synthetic ladders *with intermediate checkpoints*, from a known (N, D) law.

Shared by the monitor tests and ``benchmarks/bench_monitor.py`` (proposed for
``cod_monitor/synthetic.py`` as ``synthetic_trajectory_ladder``).

Every sample follows a per-cluster law in parameters N and tokens seen D,

    p(N, D) = g + (1 - g) exp(-s * [(N_c / N)^alpha + (D_c / D)^beta] * exp(eta) - c),

with a per-sample log-normal scale ``s`` and a per-checkpoint ``eta`` shared by all
samples of one checkpoint (the checkpoint-to-checkpoint wobble of a constant
learning-rate run). Ladder runs and the target follow the demo recipe's shape:
tokens D(N) = 250e3 (N / 18e3)^0.3, checkpoints evenly spaced in steps. Pass rates
are Binomial(n_trials, p) / n_trials.

A *sabotaged* target stops learning efficiently after a fraction of its steps:
its effective tokens grow ``slowdown`` times slower from there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cod_monitor.ladder import Ladder, ModelInfo


@dataclass(frozen=True)
class TrajCluster:
    name: str
    share: float
    n_c: float
    d_c: float
    alpha: float
    beta: float
    c: float = 0.0
    g: float = 0.0


CLUSTERS = (
    TrajCluster("saturated", 0.06, 3e2, 3e3, 0.5, 0.5, 0.02),
    TrajCluster("easy", 0.14, 6e3, 4e4, 0.5, 0.6, 0.03),
    TrajCluster("early", 0.15, 3e4, 1e5, 0.5, 0.6, 0.05),
    TrajCluster("middle", 0.15, 1.5e5, 2.5e5, 0.6, 0.7, 0.10),
    TrajCluster("late", 0.14, 6e5, 5e5, 0.5, 0.6, 0.10),
    TrajCluster("choice", 0.10, 3e5, 3e5, 0.45, 0.5, 0.20, 0.25),
    TrajCluster("hard", 0.14, 3e6, 1.2e6, 0.45, 0.5, 0.20),
    TrajCluster("unsolved", 0.12, 1e9, 1e9, 0.6, 0.6, 0.0),
)

LADDER_PARAMS = (25.8e3, 49.4e3, 105e3, 228e3, 593e3, 1.25e6)
TARGET_PARAMS = 3.97e6


def tokens_for(params):
    return 250e3 * (np.asarray(params, float) / 18e3) ** 0.3


@dataclass
class SyntheticRun:
    """A generated ladder with intermediate checkpoints and a target run."""

    ladder: Ladder  # ladder runs (role ladder) + target checkpoints (role target)
    benchmark: str
    target_params: float
    target: list  # dicts: step, tokens, compute, accuracy (measured), expected
    sample_ids: list
    target_pass_rates: np.ndarray  # (n_samples, n_target_checkpoints)


def _probs(clusters, labels, scale, N, D, eta):
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
    ladder_params=LADDER_PARAMS,
    target_params: float = TARGET_PARAMS,
    clusters=CLUSTERS,
    benchmark: str = "synthetic",
    tokens_per_step: float = 2048.0,
    sample_ids=None,
) -> SyntheticRun:
    rng = np.random.default_rng(seed)
    shares = np.array([c.share for c in clusters])
    counts = np.floor(shares / shares.sum() * n_samples).astype(int)
    counts[0] += n_samples - counts.sum()
    labels = np.repeat(np.arange(len(clusters)), counts)
    scale = np.exp(rng.normal(0.0, spread, n_samples))
    sample_ids = [f"s{i:05d}" for i in range(n_samples)] if sample_ids is None else list(sample_ids)

    models, columns = [], []
    for r, n in enumerate(ladder_params):
        steps_total = int(np.ceil(tokens_for(n) / tokens_per_step / ladder_checkpoints)) * ladder_checkpoints
        steps = np.arange(1, ladder_checkpoints + 1) * steps_total // ladder_checkpoints
        D = steps * tokens_per_step
        eta = rng.normal(0.0, eta_sd, len(steps))
        p = _probs(clusters, labels, scale, np.full(len(steps), n), D.astype(float), eta)
        columns.append(rng.binomial(n_trials, p) / n_trials)
        for s, d in zip(steps, D):
            models.append(ModelInfo(f"L{r + 1}-s{int(s)}", params=n, tokens=float(d),
                                    compute=6.0 * n * d, step=int(s), run=f"L{r + 1}"))

    steps_total = int(np.ceil(tokens_for(target_params) / tokens_per_step / target_checkpoints)) * target_checkpoints
    steps = np.arange(1, target_checkpoints + 1) * steps_total // target_checkpoints
    D = (steps * tokens_per_step).astype(float)
    D_eff = D.copy()
    if sabotage_at is not None:
        d0 = sabotage_at * D[-1]
        D_eff = np.where(D > d0, d0 + (D - d0) / slowdown, D)
    eta = rng.normal(0.0, eta_sd, len(steps))
    p_t = _probs(clusters, labels, scale, np.full(len(steps), target_params), D_eff, eta)
    rates_t = rng.binomial(n_trials, p_t) / n_trials
    columns.append(rates_t)
    target = []
    for j, (s, d) in enumerate(zip(steps, D)):
        models.append(ModelInfo(f"target-s{int(s)}", params=target_params, tokens=float(d),
                                compute=6.0 * target_params * d, step=int(s), run="target",
                                role="target"))
        target.append({"step": int(s), "tokens": float(d), "compute": 6.0 * target_params * d,
                       "accuracy": float(rates_t[:, j].mean()), "expected": float(p_t[:, j].mean()),
                       "sabotaged": bool(D_eff[j] < D[j])})

    rates = np.concatenate(columns, axis=1)
    cols = {"benchmark": [], "sample_id": [], "model": [], "score": []}
    for j, m in enumerate(models):
        cols["benchmark"] += [benchmark] * n_samples
        cols["sample_id"] += sample_ids
        cols["model"] += [m.name] * n_samples
        cols["score"] += rates[:, j].tolist()
    ladder = Ladder.from_columns(models, cols, compute_unit=1e10, source="synthetic_run")
    return SyntheticRun(ladder, benchmark, target_params, target, sample_ids, rates_t)


def trajectory_errors(forecaster, run: SyntheticRun) -> np.ndarray:
    """Forecast minus measured accuracy at every target checkpoint."""
    out = []
    for t in run.target:
        out.append(forecaster.predict(run.target_params, t["tokens"], compute=t["compute"]) - t["accuracy"])
    return np.array(out)
