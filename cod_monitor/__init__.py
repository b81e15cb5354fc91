"""cod_monitor: forecast downstream accuracy of LLM pre-training runs with COD.

Clustering-On-Difficulty (Xu et al., ICLR 2026, arXiv:2502.17262): cluster evaluation
samples by their pass rates across a ladder of small models, fit a scaling law per
cluster, keep the clusters that extrapolate, and map the predictable subset's accuracy
to the full set.

Importing this package needs only numpy, scipy and scikit-learn.
"""

from typing import TYPE_CHECKING

from cod_monitor._lazy import lazy_attributes

# Public names and the module that defines each. They are imported on first use
# (PEP 562) so that ``import cod_monitor.runtime.pool`` in a freshly spawned evaluation
# worker does not pay for scikit-learn and SciPy's optimisers (about 1 s).
_EXPORTS: dict[str, str] = {
    "ImprovedMeanShift": "cod_monitor.cod.clustering",
    "difficulty_reversals": "cod_monitor.ladder.diagnostics",
    "CODError": "cod_monitor.exceptions",
    "FitWarning": "cod_monitor.exceptions",
    "LadderValidationError": "cod_monitor.exceptions",
    "MethodUnavailableError": "cod_monitor.exceptions",
    "NoExtrapolatableClusterError": "cod_monitor.exceptions",
    "ExtrapolatableFilter": "cod_monitor.cod.filtering",
    "Verdict": "cod_monitor.cod.filtering",
    "CODForecaster": "cod_monitor.cod.forecaster",
    "Ladder": "cod_monitor.ladder",
    "ModelInfo": "cod_monitor.ladder",
    "PassRateMatrix": "cod_monitor.ladder",
    "LawFit": "cod_monitor.cod.laws",
    "expected_accuracy": "cod_monitor.cod.laws",
    "fit_law": "cod_monitor.cod.laws",
    "fit_laws": "cod_monitor.cod.laws",
    "SubsetToFullMapping": "cod_monitor.cod.mapping",
    "available_methods": "cod_monitor.methods",
    "compare_methods": "cod_monitor.methods",
    "make_forecaster": "cod_monitor.methods",
}

if TYPE_CHECKING:  # for type checkers and IDEs: the eager imports
    from cod_monitor.cod.clustering import ImprovedMeanShift
    from cod_monitor.ladder.diagnostics import difficulty_reversals
    from cod_monitor.exceptions import (
        CODError,
        FitWarning,
        LadderValidationError,
        MethodUnavailableError,
        NoExtrapolatableClusterError,
    )
    from cod_monitor.cod.filtering import ExtrapolatableFilter, Verdict
    from cod_monitor.cod.forecaster import CODForecaster
    from cod_monitor.ladder import Ladder, ModelInfo, PassRateMatrix
    from cod_monitor.cod.laws import LawFit, expected_accuracy, fit_law, fit_laws
    from cod_monitor.cod.mapping import SubsetToFullMapping
    from cod_monitor.methods import available_methods, compare_methods, make_forecaster


__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS, globals())

__version__ = "0.1.0"

__all__ = [
    "CODError",
    "CODForecaster",
    "ExtrapolatableFilter",
    "FitWarning",
    "ImprovedMeanShift",
    "Ladder",
    "LadderValidationError",
    "LawFit",
    "MethodUnavailableError",
    "ModelInfo",
    "NoExtrapolatableClusterError",
    "PassRateMatrix",
    "SubsetToFullMapping",
    "Verdict",
    "available_methods",
    "compare_methods",
    "difficulty_reversals",
    "expected_accuracy",
    "fit_law",
    "fit_laws",
    "make_forecaster",
]
