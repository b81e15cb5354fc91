"""Forecasting methods beside COD, for side-by-side comparison (the research path).

- :mod:`~cod_monitor.methods.registry`: every method by name (``cod``, ``cod-paper``, the
  ablations, the baselines), :func:`make_forecaster` and :func:`compare_methods`.
- :mod:`~cod_monitor.methods.baselines`: end-to-end exp, end-to-end pass rate, BNSL and
  loss-intermediate.
"""

from cod_monitor.methods.registry import (
    METHODS,
    available_methods,
    compare_methods,
    make_forecaster,
    method_description,
)

__all__ = [
    "METHODS",
    "available_methods",
    "compare_methods",
    "make_forecaster",
    "method_description",
]
