"""The ladder: models of one recipe and their per-sample pass rates, on disk and in memory.

- :mod:`~cod_monitor.ladder.model`: :class:`ModelInfo`, :class:`PassRateMatrix`,
  :class:`Ladder`, the on-disk format, :func:`load_ladder` and :func:`ladder_fingerprint`.
- :mod:`~cod_monitor.ladder.importers`: long tables and lm-evaluation-harness samples.
- :mod:`~cod_monitor.ladder.selection`: which ladder points a forecaster fits.
- :mod:`~cod_monitor.ladder.diagnostics`: checks of COD's premise on a ladder.

Needs numpy only.
"""

from cod_monitor.ladder.model import (
    COUNT_COLUMNS,
    DEFAULT_COMPUTE_UNIT,
    ROLES,
    SCHEMA_VERSION,
    SCORE_COLUMNS,
    Ladder,
    ModelInfo,
    PassRateMatrix,
    ladder_fingerprint,
    load_ladder,
)

__all__ = [
    "COUNT_COLUMNS",
    "DEFAULT_COMPUTE_UNIT",
    "ROLES",
    "SCHEMA_VERSION",
    "SCORE_COLUMNS",
    "Ladder",
    "ModelInfo",
    "PassRateMatrix",
    "ladder_fingerprint",
    "load_ladder",
]
