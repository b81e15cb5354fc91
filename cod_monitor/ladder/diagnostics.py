"""Checks of COD's premises on a ladder, before trusting its forecast.

COD clusters samples by their pass rates across the ladder, assuming that a sample's
difficulty is a property of the sample: a model solves roughly the samples the smaller
models solve, and more. Where that fails, for example when which facts a tiny model
memorises depends on its initialisation and data order, the clusters follow which
model learned what rather than how hard a sample is, and the per-cluster laws
extrapolate noise.

:func:`difficulty_reversals` measures it: of the samples a ladder run solves, the share
that the next larger run fails.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cod_monitor._validation import invalid
from cod_monitor.exceptions import InputError
from cod_monitor.ladder.ladder import Ladder
from cod_monitor.ladder.selection import final_checkpoints

__all__ = ["DifficultyReversals", "difficulty_reversals", "reversal_summary", "REVERSAL_WARNING"]

#: Reversal rate above which ``cod-monitor ladder info`` flags a benchmark (the rates
#: measured on real and demo ladders are in ``BENCHMARKS.md``).
REVERSAL_WARNING = 0.10


@dataclass(frozen=True)
class DifficultyReversals:
    """Result of :func:`difficulty_reversals`.

    Attributes
    ----------
    benchmark : str
    runs : tuple of str
        Ladder runs, by compute of their final checkpoint.
    solved : ndarray of int, shape (n_runs - 1,)
        Samples each run (but the largest) solves.
    reversed : ndarray of int, shape (n_runs - 1,)
        Of those, the samples the next larger run fails.
    rate : float
        ``reversed.sum() / solved.sum()`` (NaN when no run solves any sample).
    """

    benchmark: str
    runs: tuple
    solved: np.ndarray
    reversed: np.ndarray
    rate: float

    def summary(self) -> str:
        """This check in one phrase, flagged above :data:`REVERSAL_WARNING`."""
        solved, flipped = int(self.solved.sum()), int(self.reversed.sum())
        if not solved:
            return "difficulty reversals: no ladder run solves a sample (pass rate > 0.5)"
        text = (f"difficulty reversals {self.rate:.0%} (of {solved} samples solved by a ladder "
                f"run, {flipped} failed by the next larger run)")
        if self.rate > REVERSAL_WARNING:
            text += (f" -- above {REVERSAL_WARNING:.0%}: per-sample difficulty differs between "
                     "models, so COD's clusters follow which model learned what; trust its "
                     "forecast less")
        return text

    @property
    def pair_rates(self) -> np.ndarray:
        """Reversal rate of each pair of consecutive runs (NaN where none is solved)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.solved > 0, self.reversed / np.maximum(self.solved, 1), np.nan)


def difficulty_reversals(
    ladder: Ladder,
    benchmark: str,
    *,
    solved: float = 0.5,
    failed: float = 0.1,
) -> DifficultyReversals:
    """Share of samples solved by a ladder run that the next larger run fails.

    Parameters
    ----------
    ladder : Ladder
    benchmark : str
    solved : float, default 0.5
        Pass rate above which a run solves a sample.
    failed : float, default 0.1
        Pass rate below which the next run fails it. The gap between the two keeps
        sampling noise of pass-rate estimates from counting as a reversal.

    Returns
    -------
    DifficultyReversals

    Raises
    ------
    ParameterError
        ``failed`` not below ``solved``, or either outside [0, 1].
    ValueError
        Fewer than two ladder runs.

    Examples
    --------
    >>> from cod_monitor.synthetic import synthetic_ladder
    >>> rev = difficulty_reversals(synthetic_ladder(seed=0).ladder, "synthetic")
    >>> bool(rev.rate < 0.05)
    True
    """
    if not (0.0 <= failed < solved <= 1.0):
        raise invalid("difficulty_reversals", "failed, solved", "two floats with "
                      "0 <= failed < solved <= 1", (failed, solved))
    mat = ladder.matrix(benchmark, roles=("ladder",))
    finals = sorted(final_checkpoints(mat.models), key=lambda j: mat.models[j].compute)
    if len(finals) < 2:
        raise InputError(
            f"difficulty_reversals needs at least two ladder runs on benchmark {benchmark!r}. "
            f"Got {len(finals)}."
        )
    X = mat.pass_rates[:, finals]
    solved_mask = X[:, :-1] > solved
    reversed_mask = solved_mask & (X[:, 1:] < failed)
    n_solved = solved_mask.sum(axis=0)
    n_reversed = reversed_mask.sum(axis=0)
    total = int(n_solved.sum())
    return DifficultyReversals(
        benchmark=benchmark,
        runs=tuple(mat.models[j].run_key for j in finals),
        solved=n_solved,
        reversed=n_reversed,
        rate=float(n_reversed.sum() / total) if total else float("nan"),
    )


def reversal_summary(ladder: Ladder, benchmark: str) -> str:
    """:meth:`DifficultyReversals.summary` of a benchmark, or why it was not measured."""
    try:
        return difficulty_reversals(ladder, benchmark).summary()
    except ValueError as exc:
        return f"difficulty reversals not measured ({exc})"
