"""The COD forecaster and its parts: pure estimators on numpy, SciPy and scikit-learn.

Data flows down one road: difficulty features -> :mod:`~cod_monitor.cod.clustering`
-> per-cluster :mod:`~cod_monitor.cod.laws` -> :mod:`~cod_monitor.cod.filtering` ->
:mod:`~cod_monitor.cod.mapping` -> :class:`CODForecaster`
(:mod:`~cod_monitor.cod.forecaster`, named configurations in
:mod:`~cod_monitor.cod.configs`), with its intervals
(:mod:`~cod_monitor.cod.intervals`, shared with the baselines), the recipe transport
(:mod:`~cod_monitor.cod.transport`, built on the (N, D) laws of
:mod:`~cod_monitor.cod.laws_nd`), and :class:`TrajectoryForecaster`
(:mod:`~cod_monitor.cod.trajectory`), the forecast for a checkpoint of a run in
progress.
"""

from typing import TYPE_CHECKING

from cod_monitor._lazy import lazy_attributes

_EXPORTS: dict[str, str] = {
    "ImprovedMeanShift": "cod_monitor.cod.clustering",
    "CONFIGURATIONS": "cod_monitor.cod.configs",
    "DEFAULT_CONFIGURATIONS": "cod_monitor.cod.configs",
    "ExtrapolatableFilter": "cod_monitor.cod.filtering",
    "Verdict": "cod_monitor.cod.filtering",
    "CODForecaster": "cod_monitor.cod.forecaster",
    "LawFit": "cod_monitor.cod.laws",
    "expected_accuracy": "cod_monitor.cod.laws",
    "fit_law": "cod_monitor.cod.laws",
    "fit_laws": "cod_monitor.cod.laws",
    "TrajectoryLaw": "cod_monitor.cod.laws_nd",
    "fit_trajectory_laws": "cod_monitor.cod.laws_nd",
    "trajectory_accuracy": "cod_monitor.cod.laws_nd",
    "SubsetToFullMapping": "cod_monitor.cod.mapping",
    "ROUTES": "cod_monitor.cod.routing",
    "RoutedCOD": "cod_monitor.cod.routing",
    "TRAJECTORY_MODES": "cod_monitor.cod.trajectory",
    "TrajectoryForecaster": "cod_monitor.cod.trajectory",
}

if TYPE_CHECKING:
    from cod_monitor.cod.clustering import ImprovedMeanShift
    from cod_monitor.cod.configs import CONFIGURATIONS, DEFAULT_CONFIGURATIONS
    from cod_monitor.cod.filtering import ExtrapolatableFilter, Verdict
    from cod_monitor.cod.forecaster import CODForecaster
    from cod_monitor.cod.laws import LawFit, expected_accuracy, fit_law, fit_laws
    from cod_monitor.cod.laws_nd import TrajectoryLaw, fit_trajectory_laws, trajectory_accuracy
    from cod_monitor.cod.mapping import SubsetToFullMapping
    from cod_monitor.cod.routing import ROUTES, RoutedCOD
    from cod_monitor.cod.trajectory import TRAJECTORY_MODES, TrajectoryForecaster

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS, globals())
