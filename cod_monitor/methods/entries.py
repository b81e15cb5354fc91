"""What a registered method is: an estimator factory, its fixed configuration, a description.

:func:`cod_method` and :func:`baseline_method` build the entries of the registry
(:mod:`cod_monitor.methods.registry`) and of its ablations
(:mod:`cod_monitor.methods.ablations`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from types import MappingProxyType


from cod_monitor._estimator import clone
from cod_monitor.cod.configs import configuration
from cod_monitor.cod.forecaster import CODForecaster

__all__ = ["BASELINE_CONFIGURATION", "PAPER", "Method", "baseline_method", "cod_method"]


@dataclass(frozen=True)
class Method:
    """A registered forecasting method.

    Parameters
    ----------
    factory : callable
        Builds the unfitted estimator with the method's configuration.
    fixed : mapping
        The parameters the configuration sets: a common argument of
        :func:`make_forecaster` that differs from one of them is not applied (with a
        :class:`~cod_monitor.exceptions.ConfigurationWarning`).
    description : str
        One line, for ``--help`` and tables.
    ignores : tuple of str, default ()
        Common arguments the method does not take although its estimator has the
        parameter (``cod-paper`` fits compute alone: no ``tokens_per_param``); they
        are dropped without a warning.
    """

    factory: Callable
    fixed: Mapping
    description: str
    ignores: tuple = field(default=())


def _build_cod(config: str, changes: Mapping) -> CODForecaster:
    # an estimator among the changes (a clusterer) is cloned: every build gets its own
    return CODForecaster.from_config(
        config, **{k: clone(v) if hasattr(v, "get_params") else v for k, v in changes.items()}
    )


def cod_method(config: str, description: str, *, ignores=(), **changes) -> Method:
    """The method of a named COD configuration with some settings changed.

    Parameters
    ----------
    config : str
        A configuration of :data:`cod_monitor.cod.configs.CONFIGURATIONS`.
    description : str
    ignores : tuple of str, default ()
        See :class:`Method`.
    **changes
        :class:`~cod_monitor.cod.forecaster.CODForecaster` parameters set on top of the
        configuration.

    Returns
    -------
    Method
    """
    return Method(
        factory=partial(_build_cod, config, MappingProxyType(changes)),
        fixed=MappingProxyType({**configuration(config), **changes}),
        description=description,
        ignores=tuple(ignores),
    )


#: What the registry's baselines change from their class defaults: the same interval
#: construction as ``cod`` (bootstrap widened by backtests on the ladder's largest runs),
#: so that intervals compare like with like.
BASELINE_CONFIGURATION: Mapping = MappingProxyType({"interval": "backtest"})


def baseline_method(cls: type, description: str) -> Method:
    """The method of a baseline class with :data:`BASELINE_CONFIGURATION`."""
    return Method(partial(cls, **BASELINE_CONFIGURATION), BASELINE_CONFIGURATION, description)


#: ``cod-paper`` and its ablations: the paper fits compute alone, so a caller's
#: ``tokens_per_param`` does not reach them (keyword arguments of :func:`cod_method`).
PAPER: Mapping = MappingProxyType({"config": "cod-paper", "ignores": ("tokens_per_param",)})
