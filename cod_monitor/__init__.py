"""cod_monitor: forecast downstream accuracy of LLM pre-training runs with COD.

Clustering-On-Difficulty (Xu et al., ICLR 2026, arXiv:2502.17262): cluster evaluation
samples by their pass rates across a ladder of small models, fit a scaling law per
cluster, keep the clusters that extrapolate, and map the predictable subset's accuracy
to the full set.

The names below are what a user needs; the layers behind them are subpackages:
:mod:`~cod_monitor.ladder` (data), :mod:`~cod_monitor.cod` (the forecaster),
:mod:`~cod_monitor.methods` (baselines and ablations), :mod:`~cod_monitor.evaluators`,
:mod:`~cod_monitor.runtime`, :mod:`~cod_monitor.monitor`, :mod:`~cod_monitor.trackers`
and :mod:`~cod_monitor.integrations`.

Importing this package needs only numpy, scipy and scikit-learn; ``CODCallback``,
the evaluators' backends and the trackers import their extras on first use.
"""

from typing import TYPE_CHECKING

from cod_monitor._lazy import lazy_attributes

# Public names and the module that defines each. They are imported on first use
# (PEP 562) so that a freshly spawned evaluation worker, which imports
# ``cod_monitor.runtime``, does not pay for scikit-learn and SciPy's optimisers.
_EXPORTS: dict[str, str] = {
    # the ladder
    "Ladder": "cod_monitor.ladder",
    "ModelInfo": "cod_monitor.ladder",
    "PassRateMatrix": "cod_monitor.ladder",
    "load_ladder": "cod_monitor.ladder",
    "difficulty_reversals": "cod_monitor.ladder.diagnostics",
    # forecasting
    "CODForecaster": "cod_monitor.cod.forecaster",
    "RoutedCOD": "cod_monitor.cod.routing",
    "TrajectoryForecaster": "cod_monitor.cod.trajectory",
    "CONFIGURATIONS": "cod_monitor.cod.configs",
    "DEFAULT_CONFIGURATIONS": "cod_monitor.cod.configs",
    "ImprovedMeanShift": "cod_monitor.cod.clustering",
    "ExtrapolatableFilter": "cod_monitor.cod.filtering",
    "SubsetToFullMapping": "cod_monitor.cod.mapping",
    "LawFit": "cod_monitor.cod.laws",
    "expected_accuracy": "cod_monitor.cod.laws",
    "fit_law": "cod_monitor.cod.laws",
    "available_methods": "cod_monitor.methods",
    "compare_methods": "cod_monitor.methods",
    "make_forecaster": "cod_monitor.methods",
    # evaluation
    "EvalSet": "cod_monitor.evaluators",
    "make_evaluator": "cod_monitor.evaluators",
    "HFEvaluator": "cod_monitor.evaluators",
    "VLLMEvaluator": "cod_monitor.evaluators",
    # monitoring
    "CODMonitor": "cod_monitor.monitor",
    "ForecastConfig": "cod_monitor.monitor",
    "PoolConfig": "cod_monitor.monitor",
    "RunGeometry": "cod_monitor.monitor",
    "CheckpointConfig": "cod_monitor.monitor",
    "DriftConfig": "cod_monitor.monitor",
    "QueuePolicy": "cod_monitor.monitor",
    "CODCallback": "cod_monitor.integrations",
    "Alert": "cod_monitor.records",
    "AlertReason": "cod_monitor.records",
    "ForecastPoint": "cod_monitor.records",
    # errors and warnings
    "CODError": "cod_monitor.exceptions",
    "ParameterError": "cod_monitor.exceptions",
    "LadderValidationError": "cod_monitor.exceptions",
    "NoExtrapolatableClusterError": "cod_monitor.exceptions",
    "MethodUnavailableError": "cod_monitor.exceptions",
    "MissingExtraError": "cod_monitor.exceptions",
    "FitWarning": "cod_monitor.exceptions",
    "ConfigurationWarning": "cod_monitor.exceptions",
}

if TYPE_CHECKING:  # for type checkers and IDEs: the eager imports
    from cod_monitor.cod.clustering import ImprovedMeanShift
    from cod_monitor.cod.configs import CONFIGURATIONS, DEFAULT_CONFIGURATIONS
    from cod_monitor.cod.filtering import ExtrapolatableFilter
    from cod_monitor.cod.forecaster import CODForecaster
    from cod_monitor.cod.laws import LawFit, expected_accuracy, fit_law
    from cod_monitor.cod.mapping import SubsetToFullMapping
    from cod_monitor.cod.routing import RoutedCOD
    from cod_monitor.cod.trajectory import TrajectoryForecaster
    from cod_monitor.evaluators import EvalSet, HFEvaluator, VLLMEvaluator, make_evaluator
    from cod_monitor.exceptions import (
        CODError,
        ConfigurationWarning,
        FitWarning,
        LadderValidationError,
        MethodUnavailableError,
        MissingExtraError,
        NoExtrapolatableClusterError,
        ParameterError,
    )
    from cod_monitor.integrations import CODCallback
    from cod_monitor.ladder import Ladder, ModelInfo, PassRateMatrix, load_ladder
    from cod_monitor.ladder.diagnostics import difficulty_reversals
    from cod_monitor.methods import available_methods, compare_methods, make_forecaster
    from cod_monitor.monitor import (
        CheckpointConfig,
        CODMonitor,
        DriftConfig,
        ForecastConfig,
        PoolConfig,
        QueuePolicy,
        RunGeometry,
    )
    from cod_monitor.records import Alert, AlertReason, ForecastPoint


__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS, globals())

__version__ = "0.1.0"

__all__ = sorted(_EXPORTS)
