"""The ladder's learning-rate trend: peak learning rate against model size.

A ladder is trained with one recipe, and the recipe's learning rate usually falls with
size (e.g. :math:`\\eta \\propto N^{-0.2}`). :func:`learning_rate_trend` fits that power
law, :math:`\\log \\eta = \\text{intercept} + \\text{slope} \\cdot \\log N`, on the final
checkpoint of every run that records its ``learning_rate``, so that a monitor can say
when a target's rate departs from the trend (its forecast, fitted on the ladder, is
then less reliable).

Needs numpy only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cod_monitor.exceptions import LadderValidationError
from cod_monitor.ladder.model import ROLES, ModelInfo, _finite_float

__all__ = ["LearningRateTrend", "learning_rate_trend"]


@dataclass(frozen=True)
class LearningRateTrend:
    """A power law of peak learning rate in parameters, fitted on a ladder's runs.

    ``log(learning_rate) = intercept + slope * log(params)`` (natural logarithms).

    Attributes
    ----------
    slope : float
        Exponent of the power law (negative when larger models use lower rates).
    intercept : float
        Natural log of the rate the law gives at one parameter.
    n_runs : int
        Runs fitted on (the final checkpoint of each).
    n_sizes : int
        Distinct parameter counts among them (at least 2).
    rmse_log : float
        Root mean square residual of ``log(learning_rate)`` (0 when the runs lie on
        the law exactly, as a recipe's rule makes them).
    schedules : tuple of str
        The distinct ``lr_schedule`` names of the runs fitted on (empty when none
        records one). More than one means the rates compared are not like for like.
    runs : tuple of str
        Run keys fitted on, by parameters.

    Examples
    --------
    >>> t = LearningRateTrend(slope=-0.2, intercept=math.log(3e-3) + 0.2 * math.log(1e5),
    ...                       n_runs=3, n_sizes=3, rmse_log=0.0, schedules=(), runs=())
    >>> round(t.at(1e5), 6), round(t.ratio(1.5e-3, 1e5), 3)
    (0.003, 0.5)
    """

    slope: float
    intercept: float
    n_runs: int
    n_sizes: int
    rmse_log: float
    schedules: tuple[str, ...]
    runs: tuple[str, ...]

    def at(self, params: float) -> float:
        """The trend's peak learning rate for a model of ``params`` parameters.

        Raises
        ------
        LadderValidationError
            ``params`` not a finite positive number.
        """
        n = _finite_float(params, "params", "LearningRateTrend.at", positive=True)
        return float(math.exp(self.intercept + self.slope * math.log(n)))

    def ratio(self, learning_rate: float, params: float) -> float:
        """``learning_rate`` divided by the trend's rate at ``params`` (1 on the trend).

        Raises
        ------
        LadderValidationError
            ``learning_rate`` or ``params`` not a finite positive number.
        """
        lr = _finite_float(learning_rate, "learning_rate", "LearningRateTrend.ratio",
                           positive=True)
        return lr / self.at(params)

    def to_dict(self) -> dict:
        """The fields as plain Python (for reports and JSON)."""
        return {"slope": self.slope, "intercept": self.intercept, "n_runs": self.n_runs,
                "n_sizes": self.n_sizes, "rmse_log": self.rmse_log,
                "schedules": list(self.schedules), "runs": list(self.runs)}


def learning_rate_trend(models: Sequence[ModelInfo], *,
                        roles: Sequence[str] = ("ladder",)) -> LearningRateTrend | None:
    """Fit ``log(learning_rate)`` against ``log(params)`` over runs' final checkpoints.

    Parameters
    ----------
    models : sequence of ModelInfo
        A ladder's models (every checkpoint; the last one, highest ``step``, of each run
        is used, and every model without a ``step`` is a run of its own).
    roles : sequence of str, default ('ladder',)
        Use the runs whose final checkpoint has one of these roles.

    Returns
    -------
    LearningRateTrend or None
        ``None`` when fewer than 2 distinct sizes among those runs record a
        ``learning_rate`` (a ladder built before rates were recorded has none).
        Runs without a rate are left out of the fit.

    Raises
    ------
    LadderValidationError
        An unknown role.

    Examples
    --------
    >>> models = [ModelInfo(f"m{i}", params=p, tokens=1e9, compute=6e9 * p,
    ...                     learning_rate=3e-3 * (p / 1e5) ** -0.2)
    ...           for i, p in enumerate([1e5, 2e5, 4e5])]
    >>> round(learning_rate_trend(models).slope, 6)
    -0.2
    >>> learning_rate_trend(models[:1]) is None
    True
    """
    roles = (roles,) if isinstance(roles, str) else tuple(roles)
    for role in roles:
        if role not in ROLES:
            raise LadderValidationError("roles", role,
                                        f"Use some of {', '.join(map(repr, ROLES))}.")
    # the rate of a run is its recipe's, recorded on every checkpoint; the final one
    # stands for the run, as it does in COD's fit
    from cod_monitor.ladder.selection import final_checkpoints

    models = tuple(models)
    finals = [models[i] for i in final_checkpoints(models)]
    used = sorted((m for m in finals if m.role in roles and m.learning_rate is not None),
                  key=lambda m: (m.params, m.run_key))
    sizes = sorted({m.params for m in used})
    if len(sizes) < 2:
        return None
    x = np.log([m.params for m in used])
    y = np.log([m.learning_rate for m in used])
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (intercept + slope * x)
    return LearningRateTrend(
        slope=float(slope),
        intercept=float(intercept),
        n_runs=len(used),
        n_sizes=len(sizes),
        rmse_log=float(np.sqrt(np.mean(resid ** 2))),
        schedules=tuple(sorted({m.lr_schedule for m in used if m.lr_schedule is not None})),
        runs=tuple(m.run_key for m in used),
    )
