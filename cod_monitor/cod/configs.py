"""Named configurations of COD, and which one each entry point uses by default.

A configuration is data: the parameters of
:class:`~cod_monitor.cod.forecaster.CODForecaster` that differ from the class defaults
(which are the paper's). Build one with
:meth:`CODForecaster.from_config <cod_monitor.cod.forecaster.CODForecaster.from_config>`.
The research registry (:mod:`cod_monitor.methods`) registers ``cod`` and ``cod-paper``
under the same names, and its ablations each change one setting of one of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from cod_monitor._validation import check_choice

__all__ = ["CONFIGURATIONS", "DEFAULT_CONFIGURATIONS", "configuration"]

#: Configuration name -> the :class:`~cod_monitor.cod.forecaster.CODForecaster`
#: parameters it sets (read-only).
CONFIGURATIONS: Mapping[str, Mapping] = MappingProxyType({
    # this package's COD: where it departs from the paper
    "cod": MappingProxyType({
        # cluster on the variance-stabilised pass rate, not the raw one
        "features": "arcsine",
        # filter thresholds read against the smallest ladder model, whatever the FLOPs unit
        "compute_unit": "ladder",
        # no ceiling test (the paper's c < 1): a kept cluster is forecast by its own law at
        # its own share, so a low ceiling contradicts nothing; the paper needs it for the
        # mapping pinned at (1, 1), which `combine='share'` does not use
        "c_max": float("inf"),
        # full = share * subset law forecast + (1 - share) * rest's local trend, no mapping
        "combine": "share",
        "rest": "trend",
        # no extrapolatable cluster: forecast everything with the rest model, never fail
        "fallback": "rest",
        # bootstrap interval widened by the spread of backtests on the ladder's largest runs
        "interval": "backtest",
    }),
    # the paper's configuration: the class defaults
    "cod-paper": MappingProxyType({}),
    # the paper's, but when no cluster passes the filter every fitted cluster is kept
    "cod-paper-all-clusters": MappingProxyType({"fallback": "all_clusters"}),
})

#: Entry point -> the configuration it uses by default.
#:
#: - ``predict`` (``cod-monitor predict``, ``--method`` default): ``cod``, the
#:   configuration chosen for forecasting a finished target across ladders.
#: - ``monitor`` (the COD of :class:`~cod_monitor.cod.trajectory.TrajectoryForecaster`
#:   behind :class:`~cod_monitor.monitor.CODMonitor`): ``cod-paper-all-clusters``, so that
#:   a monitor keeps forecasting when no cluster passes the filter.
#:
#: The demo (``cod-monitor demo``) has no default of its own: its live run is a monitored
#: run (``monitor``) and its table of finished-model forecasts is ``predict``'s.
DEFAULT_CONFIGURATIONS: Mapping[str, str] = MappingProxyType({
    "predict": "cod",
    "monitor": "cod-paper-all-clusters",
})


def configuration(name: str) -> dict:
    """The parameters of the configuration ``name``, as a new dict.

    Parameters
    ----------
    name : str
        A key of :data:`CONFIGURATIONS`.

    Returns
    -------
    dict

    Raises
    ------
    ParameterError
        An unknown name.

    Examples
    --------
    >>> configuration("cod-paper-all-clusters")
    {'fallback': 'all_clusters'}
    """
    check_choice("configuration", "name", name, list(CONFIGURATIONS))
    return dict(CONFIGURATIONS[name])
