"""Which ladder models a method fits on, and which anchor its mapping.

Shared by COD and the baselines so that every method sees the same ladder points:
the final checkpoint of every run by default (the paper), or every checkpoint; with
optional neighbour-checkpoint smoothing; anchors split off; targets never included.
"""

from __future__ import annotations

import numpy as np

from cod_monitor._validation import check_choice
from cod_monitor.exceptions import LadderValidationError
from cod_monitor.ladder.ladder import Ladder
from cod_monitor.ladder.model import ModelInfo, PassRateMatrix

__all__ = ["select_fit_points", "final_checkpoints", "smooth_over_neighbours"]

#: Fewest ladder points of distinct compute any method accepts.
MIN_LADDER_POINTS = 3


def select_fit_points(
    ladder: Ladder,
    benchmark: str,
    *,
    anchors=None,
    checkpoints: str = "final",
    smooth_checkpoints: bool = False,
) -> tuple[PassRateMatrix, PassRateMatrix | None]:
    """The matrix of ladder points to fit and the matrix of anchors.

    Parameters
    ----------
    ladder : Ladder
    benchmark : str
    anchors : sequence of str, optional
        Anchor model names; ``None`` takes every model with role ``anchor``. A named
        anchor is removed from the fit points even if its role is ``ladder``.
    checkpoints : {'final', 'all'}, default 'final'
        ``'final'`` keeps the last checkpoint (highest ``step``) of every run.
    smooth_checkpoints : bool, default False
        Replace each kept checkpoint's pass rates by the mean over it and its two
        nearest checkpoints of the same run (see :func:`smooth_over_neighbours`). With
        ``checkpoints='final'`` a run of at least 3 checkpoints is represented by its
        second-to-last checkpoint carrying the mean of its last three: that mean
        estimates the accuracy at the middle checkpoint, so the point keeps its unbiased
        place on the curve (on the last checkpoint's compute it would sit one
        checkpoint's progress low).

    Returns
    -------
    fit_matrix : PassRateMatrix
        Ladder points, by compute. Smoothed matrices carry no counts.
    anchor_matrix : PassRateMatrix or None

    Raises
    ------
    LadderValidationError
        An anchor that is a target; fewer than 3 ladder points of distinct compute.
    """
    if anchors is None:
        anchors = [m.name for m in ladder.models_with_role("anchor")]
    anchors = list(anchors)
    for name in anchors:
        if ladder.model(name).role == "target":
            raise LadderValidationError(
                "anchors",
                name,
                "A target model is never used for fitting; give it role 'anchor' "
                "in ladder.json or drop it from the anchors.",
            )
    full = ladder.matrix(benchmark, roles=("ladder", "anchor"))
    is_anchor = np.isin(full.model_names, anchors)
    is_ladder = np.array([m.role == "ladder" for m in full.models]) & ~is_anchor
    candidates = full.select_models(is_ladder)

    if checkpoints == "all":
        chosen = list(range(len(candidates.models)))
    elif checkpoints == "final":
        chosen = final_checkpoints(candidates.models)
        if smooth_checkpoints:
            chosen = _centred_finals(candidates.models, chosen)
    else:
        check_choice("select_fit_points", "checkpoints", checkpoints, ("final", "all"))
    if len({candidates.models[i].compute for i in chosen}) < MIN_LADDER_POINTS:
        raise LadderValidationError(
            "models",
            [candidates.models[i].name for i in chosen],
            f"Forecasting needs at least {MIN_LADDER_POINTS} ladder points of distinct "
            "compute; add ladder models or pass checkpoints='all'.",
            where=f"benchmark {benchmark!r}",
        )
    fit_matrix = candidates.select_models(np.array(chosen))
    if smooth_checkpoints:
        smoothed = smooth_over_neighbours(candidates.models, candidates.pass_rates)
        fit_matrix = PassRateMatrix(
            benchmark=fit_matrix.benchmark,
            sample_ids=fit_matrix.sample_ids,
            models=fit_matrix.models,
            pass_rates=smoothed[:, chosen],
            n_samples=None,
            n_correct=None,
        )
    anchor_matrix = full.select_models(is_anchor) if is_anchor.any() else None
    return fit_matrix, anchor_matrix


def _checkpoint_runs(models: tuple[ModelInfo, ...]) -> dict[str, list[int]]:
    """Indices of every run's checkpoints (models with a ``step``), by step."""
    runs: dict[str, list[int]] = {}
    for i, m in enumerate(models):
        if m.step is not None:
            runs.setdefault(m.run_key, []).append(i)
    return {key: sorted(idx, key=lambda i: models[i].step) for key, idx in runs.items()}


def _centred_finals(models: tuple[ModelInfo, ...], finals: list[int]) -> list[int]:
    """``finals`` with each run of at least 3 checkpoints moved to its second-to-last
    checkpoint, the centre of the window :func:`smooth_over_neighbours` gives it."""
    runs = _checkpoint_runs(models)
    out = []
    for i in finals:
        run = runs.get(models[i].run_key) if models[i].step is not None else None
        out.append(run[-2] if run is not None and len(run) >= 3 else i)
    return sorted(out)


def final_checkpoints(models: tuple[ModelInfo, ...]) -> list[int]:
    """Indices of the last checkpoint (highest ``step``) of every run, in input order.

    Models without a ``step`` are finished models, each a ladder point of its own:
    two models of equal size trained on different token budgets are different runs.
    """
    last: dict[str, int] = {}
    keep = []
    for i, m in enumerate(models):
        if m.step is None:
            keep.append(i)
            continue
        j = last.get(m.run_key)
        if j is None or m.step > models[j].step:
            last[m.run_key] = i
    return sorted(keep + list(last.values()))


def smooth_over_neighbours(models: tuple[ModelInfo, ...], X: np.ndarray) -> np.ndarray:
    """Average every checkpoint with its two nearest neighbours of the same run.

    Interior checkpoints use the previous and next step; the first and last of a run
    use the two on their only side (the paper averages "the checkpoint and its two
    neighbours"; a final checkpoint has no later one). Models without a ``step`` and
    runs with fewer than three checkpoints are left as they are.

    Parameters
    ----------
    models : tuple of ModelInfo
        Column metadata of ``X``.
    X : ndarray of shape (n_samples, n_models)

    Returns
    -------
    ndarray of shape (n_samples, n_models)
    """
    out = X.copy()
    for idx in _checkpoint_runs(models).values():
        if len(idx) < 3:
            continue
        for pos, i in enumerate(idx):
            lo = min(max(pos - 1, 0), len(idx) - 3)
            out[:, i] = X[:, idx[lo : lo + 3]].mean(axis=1)
    return out
