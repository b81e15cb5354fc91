"""Forecasting methods beside COD, for side-by-side comparison (the research path).

- :mod:`~cod_monitor.methods.registry`: every method by name (``cod``, ``cod-paper``, the
  ablations, the baselines), :func:`make_forecaster` and :func:`compare_methods`;
- :mod:`~cod_monitor.methods.end_to_end`, :mod:`~cod_monitor.methods.bnsl`,
  :mod:`~cod_monitor.methods.loss_intermediate`: the baselines, on the shared base of
  :mod:`~cod_monitor.methods.base`;
- :mod:`~cod_monitor.methods.ablations`, :mod:`~cod_monitor.methods.clustering`: the
  ablations of COD and the clusterers they use;
- :mod:`~cod_monitor.methods.reference`: the reference loop of Algorithm 1.
"""

from typing import TYPE_CHECKING

from cod_monitor._lazy import lazy_attributes

_EXPORTS: dict[str, str] = {
    "METHODS": "cod_monitor.methods.registry",
    "available_methods": "cod_monitor.methods.registry",
    "compare_methods": "cod_monitor.methods.registry",
    "make_forecaster": "cod_monitor.methods.registry",
    "method_description": "cod_monitor.methods.registry",
    "BNSL": "cod_monitor.methods.bnsl",
    "EndToEndExp": "cod_monitor.methods.end_to_end",
    "EndToEndPassRate": "cod_monitor.methods.end_to_end",
    "LossIntermediate": "cod_monitor.methods.loss_intermediate",
}

if TYPE_CHECKING:
    from cod_monitor.methods.bnsl import BNSL
    from cod_monitor.methods.end_to_end import EndToEndExp, EndToEndPassRate
    from cod_monitor.methods.loss_intermediate import LossIntermediate
    from cod_monitor.methods.registry import (
        METHODS,
        available_methods,
        compare_methods,
        make_forecaster,
        method_description,
    )

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS, globals())
