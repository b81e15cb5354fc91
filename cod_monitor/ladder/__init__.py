"""The ladder: models of one recipe and their per-sample pass rates, on disk and in memory.

- :mod:`~cod_monitor.ladder.model`: :class:`ModelInfo` and :class:`PassRateMatrix`;
- :mod:`~cod_monitor.ladder.ladder`: :class:`Ladder` and :func:`load_ladder`;
- :mod:`~cod_monitor.ladder.builder`: long tables (columns or records) to a ladder's tables;
- :mod:`~cod_monitor.ladder.settings`: :class:`EvalSettings`, how a benchmark was scored;
- :mod:`~cod_monitor.ladder.storage`: the on-disk format and :func:`ladder_fingerprint`;
- :mod:`~cod_monitor.ladder.importers`: long tables and lm-evaluation-harness samples;
- :mod:`~cod_monitor.ladder.selection`: which ladder points a forecaster fits;
- :mod:`~cod_monitor.ladder.diagnostics`: checks of COD's premise on a ladder;
- :mod:`~cod_monitor.ladder.trend`: the ladder's learning rate as a power law of size.

Needs numpy only.
"""

from cod_monitor.ladder.ladder import Ladder, load_ladder
from cod_monitor.ladder.model import (
    COUNT_COLUMNS,
    DEFAULT_COMPUTE_UNIT,
    LR_SCHEDULES,
    ROLES,
    SCORE_COLUMNS,
    ModelInfo,
    PassRateMatrix,
)
from cod_monitor.ladder.settings import UNKNOWN, EvalSettings
from cod_monitor.ladder.storage import SCHEMA_VERSION, ladder_fingerprint
from cod_monitor.ladder.trend import LearningRateTrend, learning_rate_trend

__all__ = [
    "COUNT_COLUMNS",
    "DEFAULT_COMPUTE_UNIT",
    "LR_SCHEDULES",
    "ROLES",
    "SCHEMA_VERSION",
    "SCORE_COLUMNS",
    "UNKNOWN",
    "EvalSettings",
    "Ladder",
    "LearningRateTrend",
    "ModelInfo",
    "PassRateMatrix",
    "ladder_fingerprint",
    "learning_rate_trend",
    "load_ladder",
]
