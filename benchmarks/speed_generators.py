"""Difficulty matrices for the clustering speed benchmark (benchmarks only, not the package).

Three generators of ``(n_samples, n_models)`` pass-rate matrices, all seeded:

- :func:`separated_pass_rates`: the package's own ``synthetic_pass_rates``, a mix of
  well-separated difficulty clusters;
- :func:`continuous_pass_rates`: one logistic curve in log-compute per sample, with
  threshold, slope and ceiling drawn uniformly, so difficulty spreads continuously;
- :func:`real_shaped_pass_rates`: real per-problem pass rates of 9 Pythia sizes on MATH
  (``../shared/cod_data/pythia_monkeys/math_sweep.csv``), resampled and perturbed to the
  requested number of rows.  The data stay in the shared folder; when it is absent,
  :func:`real_data_available` is false and the benchmark skips this generator.
"""

from __future__ import annotations

import csv
import functools
from pathlib import Path

import numpy as np

from cod_monitor.synthetic import synthetic_pass_rates

__all__ = [
    "GENERATORS",
    "MONKEYS",
    "continuous_pass_rates",
    "real_data_available",
    "real_shaped_pass_rates",
    "separated_pass_rates",
]

#: Where the real evaluation data live (never copied into the repository).
MONKEYS = Path(__file__).resolve().parents[2] / "shared" / "cod_data" / "pythia_monkeys"
_SWEEP = "math_sweep.csv"
_FINAL = "@step143000"


def separated_pass_rates(n_samples, n_models=9, *, seed=0):
    """``synthetic_pass_rates(n_samples, n_models, seed=seed)``: well-separated clusters.

    Parameters
    ----------
    n_samples, n_models : int
        Shape of the matrix.
    seed : int
        Seed of the generator.

    Returns
    -------
    ndarray of shape (n_samples, n_models)
        Pass rates on a 1/100 grid.
    """
    return synthetic_pass_rates(n_samples, n_models, seed=seed)


def continuous_pass_rates(n_samples, n_models=9, *, n_trials=100, seed=0):
    """Pass rates of logistic difficulty curves whose parameters spread continuously.

    Sample ``i`` passes model ``j`` with probability
    ``c_i / (1 + exp(-s_i (x_j - t_i)))``, where ``x_j`` runs over ``[0, 1]`` evenly (the
    models' log-compute, rescaled), the threshold ``t_i ~ U(-0.3, 1.3)`` (some samples
    are solved or unsolved across the whole ladder), the slope ``s_i ~ U(2, 15)`` and the
    ceiling ``c_i ~ U(0.3, 1)``.  The observed rate is ``Binomial(n_trials, p) / n_trials``.
    Unlike :func:`separated_pass_rates` there are no clusters to find: MeanShift has to
    carve a continuum, which is the hard case for its speed.

    Parameters
    ----------
    n_samples, n_models : int
        Shape of the matrix.
    n_trials : int, default 100
        Attempts per sample and model.
    seed : int
        Seed of the generator.

    Returns
    -------
    ndarray of shape (n_samples, n_models)
        Pass rates on a ``1 / n_trials`` grid.
    """
    rng = np.random.default_rng(seed)
    x = np.linspace(0.0, 1.0, n_models)
    t = rng.uniform(-0.3, 1.3, n_samples)[:, None]
    s = rng.uniform(2.0, 15.0, n_samples)[:, None]
    c = rng.uniform(0.3, 1.0, n_samples)[:, None]
    p = c / (1.0 + np.exp(-s * (x[None, :] - t)))
    return rng.binomial(n_trials, p) / n_trials


def real_data_available():
    """Whether the shared Pythia MATH sweep can be read."""
    return (MONKEYS / _SWEEP).is_file() and (MONKEYS / "models.csv").is_file()


@functools.cache
def _math_sweep_final():
    """``(n_correct, n_attempts)`` of the 128 MATH problems x 9 final Pythia checkpoints.

    Columns ordered by parameter count (hence by compute: all final checkpoints saw the
    same tokens).
    """
    with open(MONKEYS / "models.csv", newline="") as f:
        params = {r["model"]: float(r["params_total"]) for r in csv.DictReader(f)}
    with open(MONKEYS / _SWEEP, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["model"].endswith(_FINAL)]
    models = sorted({r["model"] for r in rows}, key=params.__getitem__)
    problems = sorted({r["problem_id"] for r in rows}, key=int)
    col = {m: j for j, m in enumerate(models)}
    row = {p: i for i, p in enumerate(problems)}
    correct = np.full((len(problems), len(models)), -1, dtype=np.int64)
    attempts = np.full_like(correct, -1)
    for r in rows:
        i, j = row[r["problem_id"]], col[r["model"]]
        correct[i, j] = int(r["n_correct"])
        attempts[i, j] = int(r["n_samples"])
    if (attempts < 1).any():
        raise ValueError(f"{MONKEYS / _SWEEP}: a problem lacks a final checkpoint")
    return correct, attempts


def real_shaped_pass_rates(n_samples, n_models=9, *, jitter=0.3, seed=0):
    """Real MATH pass rates of 9 Pythia sizes, resampled and perturbed to ``n_samples`` rows.

    Each row copies a problem drawn at random from the 128 of the Pythia MATH sweep (final
    checkpoints of 14M .. 12B, ``math_sweep.csv``), moves each of its pass rates by
    ``N(0, jitter)`` in log-odds, and redraws the number of correct answers from a
    binomial with the problem's real number of attempts (128 to 79,488).  The shape of real
    difficulty is kept: a quarter of all-zero rows (zeros stay zero), pass rates spread
    continuously near zero, and ties on each problem's ``1 / attempts`` grid.

    Parameters
    ----------
    n_samples : int
        Number of rows.
    n_models : int, default 9
        Must be 9, the sizes of the sweep.
    jitter : float, default 0.3
        Standard deviation of the log-odds perturbation.
    seed : int
        Seed of the resampling.

    Returns
    -------
    ndarray of shape (n_samples, 9)
        Pass rates, columns ordered by compute.

    Raises
    ------
    FileNotFoundError
        The shared data folder is absent (check :func:`real_data_available` first).
    ValueError
        ``n_models`` is not 9.
    """
    if not real_data_available():
        raise FileNotFoundError(f"{MONKEYS / _SWEEP} is not available")
    correct, attempts = _math_sweep_final()
    if n_models != correct.shape[1]:
        raise ValueError(f"the Pythia sweep has {correct.shape[1]} models; got {n_models = }")
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(correct), n_samples)
    n = attempts[pick]
    p = correct[pick] / n
    with np.errstate(divide="ignore"):
        logit = np.log(p) - np.log1p(-p)  # +-inf at 0 and 1: those stay put
    p = 1.0 / (1.0 + np.exp(-(logit + rng.normal(0.0, jitter, logit.shape))))
    return rng.binomial(n, p) / n


#: name -> generator ``f(n_samples, n_models, seed=...)``, in table order.
GENERATORS = {
    "separated": separated_pass_rates,
    "continuous": continuous_pass_rates,
    "real-shaped": real_shaped_pass_rates,
}
