"""Recipe transport: put every ladder model on the target's tokens-per-parameter line.

COD reads a ladder as one recipe, accuracy against compute. Real ladders often mix
recipes: OpenLM's (Gadre et al. 2024) trains each size at several token multipliers,
and a sweep over intermediate checkpoints holds under-trained points. An over-trained
small model gets less accuracy per FLOP than a model trained at the target's ratio,
so a compute-only fit placed on such points under-forecasts a target trained at a
lower ratio.

The transport fits one law in parameters and tokens to the ladder's full-set accuracy
(:func:`cod_monitor.cod.laws_nd.fit_trajectory_laws`),

.. math:: L(N, D) = A N^{-\\alpha} + B D^{-\\beta},

and gives each model the compute of the model *on the target's line*
:math:`D' = r N'` with the same :math:`L`: solve :math:`L(N', rN') = L(N, D)`, then
:math:`C_\\text{eff} = C \\cdot N' D' / (N D)` (the ladder's own compute convention
is kept). A ladder already on the line is unchanged (:math:`N' = N`). COD then fits,
filters and forecasts on :math:`C_\\text{eff}` as on a one-recipe ladder.

The law separates :math:`N` from :math:`D` only when the fitted points do not lie on
one curve :math:`D(N)`: a ladder of final checkpoints with a fixed token budget
(Pythia) or one recipe :math:`D \\propto N^k` (the demo ladder) leaves them
confounded, and the transport is then skipped (``applied=False`` with the reason).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import brentq

from cod_monitor._validation import check_real
from cod_monitor.cod.laws_nd import TrajectoryLaw, fit_trajectory_laws
from cod_monitor.exceptions import FitWarning, LadderValidationError
from cod_monitor.ladder.selection import select_fit_points

__all__ = ["MIN_TOKENS_SPREAD", "RecipeTransport", "effective_compute", "recipe_compute",
           "tokens_spread", "transport_ladder"]

#: The transport needs log tokens to vary by at least this much (standard deviation)
#: around the best straight line in log parameters: below it N and D are confounded.
MIN_TOKENS_SPREAD = 0.1


@dataclass(frozen=True)
class RecipeTransport:
    """What the transport did to a ladder.

    Attributes
    ----------
    tokens_per_param : float
        The target's ratio :math:`r = D_T / N_T`.
    applied : bool
        Whether the models' compute was replaced.
    reason : str
        Why it was (not) applied.
    law : TrajectoryLaw or None
        The law in :math:`N` and :math:`D` fitted to the full-set accuracy.
    tokens_spread : float
        Standard deviation of log tokens around the line in log params (the
        identifiability check against :data:`MIN_TOKENS_SPREAD`).
    compute : dict
        Model name -> (compute, effective compute), FLOPs, for every ladder model.
    """

    tokens_per_param: float
    applied: bool
    reason: str
    law: TrajectoryLaw | None = None
    tokens_spread: float = 0.0
    compute: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        """Plain-Python view for reports and JSON."""
        return {
            "tokens_per_param": self.tokens_per_param,
            "applied": self.applied,
            "reason": self.reason,
            "law": None if self.law is None else self.law.as_dict(),
            "tokens_spread": self.tokens_spread,
            "compute": {k: list(v) for k, v in self.compute.items()},
        }


def effective_compute(params, tokens, compute, law: TrajectoryLaw, tokens_per_param: float):
    """Compute of the equally good model on the line ``tokens = tokens_per_param * params``.

    Parameters
    ----------
    params, tokens, compute : array_like
        Each model's parameters, tokens and compute (FLOPs, any convention).
    law : TrajectoryLaw
        Gives :math:`L(N, D) = A N^{-\\alpha} + B D^{-\\beta}`; ``g`` and ``c`` are not
        used (equal :math:`L` is equal accuracy whatever they are).
    tokens_per_param : float

    Returns
    -------
    ndarray
        :math:`C \\cdot N' D' / (N D)` per model.

    Examples
    --------
    >>> from cod_monitor.cod.laws_nd import TrajectoryLaw
    >>> law = TrajectoryLaw(A=400.0, alpha=0.34, B=410.0, beta=0.28, c=0.0, g=0.0,
    ...                     rmse=0.0, success=True, n_points=0)
    >>> float(effective_compute(1e6, 2e7, 1.2e14, law, 20.0)[0])  # on the line: unchanged
    120000000000000.0
    >>> bool(effective_compute(1e6, 3e8, 1.8e15, law, 20.0)[0] < 1.8e15)  # over-trained
    True
    """
    return recipe_compute(params, tokens, compute, law, slope=1.0,
                          intercept=math.log(float(tokens_per_param)))


def recipe_compute(params, tokens, compute, law: TrajectoryLaw, *, slope: float,
                   intercept: float):
    """Compute of the equally good model on the recipe ``log D = slope log N + intercept``.

    The general form of :func:`effective_compute` (whose line is ``slope = 1``): a ladder
    whose tokens grow as a power of its parameters (the demo recipe, :math:`D \\propto
    N^{0.3}`) puts its finished runs on such a line, and an intermediate checkpoint of a
    run lies below it.

    Parameters
    ----------
    params, tokens, compute : array_like
        Each model's (or checkpoint's) parameters, tokens seen and compute.
    law : TrajectoryLaw
        Gives :math:`L(N, D) = A N^{-\\alpha} + B D^{-\\beta}` (plus
        :math:`E D^{-\\delta} N^{-\\gamma}` for a two-phase law).
    slope, intercept : float
        The recipe line in natural logs; ``slope`` must be positive.

    Returns
    -------
    ndarray
        :math:`C \\cdot N' D' / (N D)` with :math:`(N', D')` on the line and
        :math:`L(N', D') = L(N, D)`.

    Raises
    ------
    ParameterError
        ``slope <= 0`` (tokens must grow with parameters for the line to cross every
        level of :math:`L` once).
    ValueError
        No model on the line within :math:`e^{60}` of :math:`N` matches (a law flat in
        both :math:`N` and :math:`D`).
    """
    check_real("recipe_compute", "slope", slope, 0.0)
    n = np.atleast_1d(np.asarray(params, dtype=float))
    d = np.atleast_1d(np.asarray(tokens, dtype=float))
    c = np.atleast_1d(np.asarray(compute, dtype=float))
    n, d, c = np.broadcast_arrays(n, d, c)

    def loss(ln):
        out = (law.A * math.exp(-law.alpha * ln)
               + law.B * math.exp(-law.beta * (intercept + slope * ln)))
        if law.E:  # the transient term of a two-phase law
            out += law.E * math.exp(-law.delta * (intercept + slope * ln) - law.gamma * ln)
        return out

    out = np.empty(c.shape, dtype=float)
    for i, (ni, di, ci) in enumerate(zip(n, d, c)):
        ln0 = math.log(ni)
        if math.isclose(math.log(di), intercept + slope * ln0, rel_tol=0.0, abs_tol=1e-9):
            out[i] = ci
            continue
        target = law.A * ni ** -law.alpha + law.B * di ** -law.beta
        if law.E:
            target += law.E * di ** -law.delta * ni ** -law.gamma
        # loss(ln) falls monotonically from +inf to 0: one root in a wide bracket
        ln = brentq(lambda x: loss(x) - target, ln0 - 60.0, ln0 + 60.0, xtol=1e-10)
        out[i] = ci * math.exp(ln + intercept + slope * ln) / (ni * di)
    return out


def tokens_spread(params, tokens) -> float:
    """Standard deviation of log tokens around the best line in log params.

    0 when every model's tokens follow one power law of its parameters (one recipe, or
    a fixed token budget); the recipe transport needs at least :data:`MIN_TOKENS_SPREAD`.

    Examples
    --------
    >>> round(tokens_spread([1e6, 1e7, 1e8], [2e7, 2e8, 2e9]), 6)  # 20 tokens/param
    0.0
    >>> tokens_spread([1e6, 1e6, 1e7, 1e7], [2e7, 3.2e8, 2e8, 3.2e9]) > 0.1  # 1x and 16x
    True
    """
    ln = np.log(np.asarray(params, dtype=float))
    ld = np.log(np.asarray(tokens, dtype=float))
    if np.ptp(ln) == 0:
        return float(np.std(ld))
    slope, intercept = np.polyfit(ln, ld, 1)
    return float(np.std(ld - (slope * ln + intercept)))


def transport_ladder(ladder, benchmark: str, tokens_per_param: float, *, checkpoints="final",
                     smooth_checkpoints: bool = False):
    """The ladder with every ladder model's compute replaced by its effective compute.

    Parameters
    ----------
    ladder : Ladder
    benchmark : str
        Benchmark whose full-set accuracy the law is fitted to.
    tokens_per_param : float
        The target's tokens per parameter (positive).
    checkpoints, smooth_checkpoints
        Which points the law is fitted to, as in :class:`~cod_monitor.cod.forecaster.CODForecaster`.

    Returns
    -------
    ladder : Ladder
        The same ladder when the transport is not applied.
    transport : RecipeTransport

    Raises
    ------
    LadderValidationError
        ``tokens_per_param`` that is not a positive number.

    Warns
    -----
    FitWarning
        When the law cannot be fitted: the ladder is returned unchanged.
    """
    r = tokens_per_param
    if isinstance(r, bool) or not isinstance(r, (int, float)) or not (math.isfinite(r) and r > 0):
        raise LadderValidationError(
            "tokens_per_param", tokens_per_param,
            "Pass the target run's training tokens divided by its parameters (a positive "
            "number, e.g. 20 for a Chinchilla-style run).",
        )
    r = float(r)
    fit_matrix, _ = select_fit_points(ladder, benchmark, checkpoints=checkpoints,
                                      smooth_checkpoints=smooth_checkpoints)
    models = fit_matrix.models
    N = np.array([m.params for m in models], dtype=float)
    D = np.array([m.tokens for m in models], dtype=float)
    spread = tokens_spread(N, D)
    if spread < MIN_TOKENS_SPREAD:
        return ladder, RecipeTransport(
            r, False,
            f"tokens follow one curve in params on the fitted points (spread {spread:.3f} "
            f"< {MIN_TOKENS_SPREAD}): params and tokens are confounded",
            tokens_spread=spread)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)
        law = fit_trajectory_laws(N, D, fit_matrix.pass_rates.mean(axis=0))[0]
    if not law.success:
        warnings.warn("recipe transport: the law in params and tokens could not be fitted; "
                      "forecasting on compute", FitWarning, stacklevel=2)
        return ladder, RecipeTransport(r, False, "the law in params and tokens failed to fit",
                                       law=law, tokens_spread=spread)
    movable = [m for m in ladder.models if m.role in ("ladder", "anchor")]
    try:
        eff = effective_compute([m.params for m in movable], [m.tokens for m in movable],
                                [m.compute for m in movable], law, r)
    except (ValueError, OverflowError, ZeroDivisionError):
        # a law so flat that no model on the line within e^60 of a ladder model matches
        warnings.warn("recipe transport: no equally good model on the target's line; "
                      "forecasting on compute", FitWarning, stacklevel=2)
        return ladder, RecipeTransport(r, False, "no equivalent model on the target's line",
                                       law=law, tokens_spread=spread)
    new = {m.name: float(c) for m, c in zip(movable, eff)}
    moved = ladder.with_compute(new)
    return moved, RecipeTransport(
        r, True, f"{len(new)} models moved to {r:g} tokens per parameter", law=law,
        tokens_spread=spread, compute={m.name: (float(m.compute), new[m.name]) for m in movable})

