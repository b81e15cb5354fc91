"""cod_monitor: forecast downstream accuracy of LLM pre-training runs with COD.

Clustering-On-Difficulty (Xu et al., ICLR 2026, arXiv:2502.17262): cluster evaluation
samples by their pass rates across a ladder of small models, fit a scaling law per
cluster, keep the clusters that extrapolate, and map the predictable subset's accuracy
to the full set.

Importing this package needs only numpy, scipy and scikit-learn.
"""

from cod_monitor.clustering import ImprovedMeanShift
from cod_monitor.exceptions import (
    CODError,
    FitWarning,
    LadderValidationError,
    MethodUnavailableError,
    NoExtrapolatableClusterError,
)
from cod_monitor.filtering import ExtrapolatableFilter, Verdict
from cod_monitor.forecast import CODForecaster
from cod_monitor.ladder import Ladder, ModelInfo, PassRateMatrix
from cod_monitor.laws import LawFit, expected_accuracy, fit_law, fit_laws
from cod_monitor.mapping import SubsetToFullMapping
from cod_monitor.methods import available_methods, compare_methods, make_forecaster

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
    "expected_accuracy",
    "fit_law",
    "fit_laws",
    "make_forecaster",
]
