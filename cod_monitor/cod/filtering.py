"""The extrapolatable-cluster filter, with a reason for every rejected cluster.

The paper keeps a cluster iff its fitted law has ``a > 1``, ``b > 0.1`` and
``0 <= c < 1`` (compute in 1e18 FLOPs).  The decision here is exactly that test; the
*reason* attached to a rejection is read off the cluster's own accuracy curve, so a
report can say "saturated" or "non-monotone" rather than only "a = 0.3".
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

from cod_monitor.cod.laws import LawFit

__all__ = ["Verdict", "ClusterVerdict", "ExtrapolatableFilter"]


class Verdict(str, Enum):
    """Outcome of the filter for one cluster."""

    KEPT = "kept"
    FIT_FAILED = "fit_failed"
    SATURATED = "saturated"
    NON_EMERGENT = "non_emergent"
    NON_MONOTONE = "non_monotone"
    OUT_OF_RANGE = "out_of_range"


@dataclass(frozen=True)
class ClusterVerdict:
    """Filter outcome for one cluster.

    Attributes
    ----------
    verdict : Verdict
    detail : str
        A readable explanation with the numbers, e.g. ``"a=0.31 <= 1"``.
    """

    verdict: Verdict
    detail: str

    @property
    def kept(self) -> bool:
        return self.verdict is Verdict.KEPT


@dataclass(frozen=True)
class ExtrapolatableFilter:
    """Decide which fitted cluster laws may be extrapolated.

    Parameters
    ----------
    a_min : float, default 1.0
        Keep only ``a > a_min``.
    b_min : float, default 0.1
        Keep only ``b > b_min``.
    c_min, c_max : float, default 0.0, 1.0
        Keep only ``c_min <= c < c_max``.
    saturation_level : float, default 0.9
        Used only to name a rejection: a cluster whose accuracy on the smallest
        model is already at least this is called saturated.
    emergence_level : float, default 0.02
        A cluster whose best accuracy on the ladder is below this is called
        non-emergent.
    monotone_rho : float, default 0.5
        A cluster whose Spearman correlation between compute and accuracy is below
        this is called non-monotone.

    Notes
    -----
    The thresholds depend on the compute unit (``a`` scales as ``unit^-b``), which is
    why the forecaster rescales compute to its ``compute_unit`` before fitting.

    References
    ----------
    Xu et al., arXiv:2502.17262, Section 3.3.
    """

    a_min: float = 1.0
    b_min: float = 0.1
    c_min: float = 0.0
    c_max: float = 1.0
    saturation_level: float = 0.9
    emergence_level: float = 0.02
    monotone_rho: float = 0.5

    def failed_thresholds(self, fit: LawFit) -> list[str]:
        """The threshold tests ``fit`` fails, as readable strings (empty if it passes)."""
        failed = []
        if not fit.a > self.a_min:
            failed.append(f"a={fit.a:.3g} <= {self.a_min:g}")
        if not fit.b > self.b_min:
            failed.append(f"b={fit.b:.3g} <= {self.b_min:g}")
        if not self.c_min <= fit.c < self.c_max:
            failed.append(f"c={fit.c:.3g} outside [{self.c_min:g}, {self.c_max:g})")
        return failed

    def keeps(self, fit: LawFit) -> bool:
        """Whether :meth:`judge` keeps ``fit`` (without working out why not).

        Parameters
        ----------
        fit : LawFit

        Returns
        -------
        bool
        """
        return bool(fit.success and np.isfinite([fit.a, fit.b, fit.c, fit.g]).all()
                    and not self.failed_thresholds(fit))

    def judge(self, fit: LawFit, accuracy) -> ClusterVerdict:
        """Filter one cluster.

        Parameters
        ----------
        fit : LawFit
            The cluster's fitted law.
        accuracy : array_like of shape (n_models,)
            The cluster's mean accuracy on each ladder model, ordered by compute.

        Returns
        -------
        ClusterVerdict
        """
        y = np.asarray(accuracy, dtype=float)
        if not fit.success or not np.isfinite([fit.a, fit.b, fit.c, fit.g]).all():
            return ClusterVerdict(Verdict.FIT_FAILED, f"law fit failed: {fit.message}")
        failed = self.failed_thresholds(fit)
        if not failed:
            return ClusterVerdict(Verdict.KEPT, f"a={fit.a:.3g}, b={fit.b:.3g}, c={fit.c:.3g}")
        why = "; ".join(failed)
        if y[0] >= self.saturation_level:
            return ClusterVerdict(
                Verdict.SATURATED, f"accuracy {y[0]:.2f} already on the smallest model ({why})"
            )
        if y.max() < self.emergence_level:
            return ClusterVerdict(
                Verdict.NON_EMERGENT, f"best ladder accuracy only {y.max():.3f} ({why})"
            )
        rho = _rank_trend(y) if np.ptp(y) > 0 else 0.0
        if not rho >= self.monotone_rho:
            return ClusterVerdict(
                Verdict.NON_MONOTONE, f"Spearman rho with compute {rho:.2f} ({why})"
            )
        return ClusterVerdict(Verdict.OUT_OF_RANGE, why)


def _rank_trend(y):
    """Spearman's rho between ``y`` and its order (ties get their mean rank)."""
    y = np.asarray(y, dtype=float)
    order = np.argsort(y, kind="stable")
    sorted_y = y[order]
    # mean rank of each run of equal values
    starts = np.flatnonzero(np.r_[True, sorted_y[1:] != sorted_y[:-1]])
    ends = np.r_[starts[1:], len(y)]
    ranks = np.empty(len(y))
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return float(np.corrcoef(np.arange(len(y), dtype=float), ranks)[0, 1])
