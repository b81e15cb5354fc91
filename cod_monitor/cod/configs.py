"""Named configurations of COD, and which one each entry point uses by default.

A configuration is data: the parameters of
:class:`~cod_monitor.cod.forecaster.CODForecaster` that differ from the class defaults
(which are the paper's). Build one with
:meth:`CODForecaster.from_config <cod_monitor.cod.forecaster.CODForecaster.from_config>`.
The research registry (:mod:`cod_monitor.methods`) registers them under the same
names, and its ablations each change one setting of ``cod-trend`` or ``cod-paper``.
The default forecaster, :class:`~cod_monitor.cod.routing.RoutedCOD` (``cod`` in the
registry), chooses among the routes ``cod-mapping``, ``cod-trend`` and
``cod-end-to-end`` by evidence from the ladder.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from cod_monitor._validation import check_choice

__all__ = ["CONFIGURATIONS", "DEFAULT_CONFIGURATIONS", "FALLBACKS", "configuration"]

#: What COD does when no cluster passes the filter (``CODForecaster(fallback=...)``);
#: here, not in ``forecaster``, so the command line's parser needs no scikit-learn.
FALLBACKS = ("error", "all_clusters", "end_to_end", "rest")

#: Configuration name -> the :class:`~cod_monitor.cod.forecaster.CODForecaster`
#: parameters it sets (read-only).
CONFIGURATIONS: Mapping[str, Mapping] = MappingProxyType({
    # the kept clusters' laws at their share, plus the rest's local trend (the route
    # ``clusters+trend`` of cod_monitor.cod.routing); where it departs from the paper:
    "cod-trend": MappingProxyType({
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
    # the paper's route (kept clusters' laws, then the subset-to-full mapping) with the
    # filter made unit-free: its thresholds read against the smallest ladder model, so
    # the same ladder keeps the same clusters whatever FLOPs unit it is stored in (route
    # ``clusters+mapping``); fails when no cluster passes the filter
    "cod-mapping": MappingProxyType({"compute_unit": "ladder", "interval": "backtest"}),
    # one COD law fitted to the full-set accuracy (route ``end-to-end``): no cluster can
    # pass an infinite threshold, and the end-to-end fallback is that law
    "cod-end-to-end": MappingProxyType({
        "a_min": float("inf"), "fallback": "end_to_end", "compute_unit": "ladder",
        "interval": "backtest",
    }),
    # the paper's configuration: the class defaults
    "cod-paper": MappingProxyType({}),
    # the paper's, but when no cluster passes the filter every fitted cluster is kept
    "cod-paper-all-clusters": MappingProxyType({"fallback": "all_clusters"}),
})

#: Entry point -> what it uses by default.
#:
#: - ``predict`` (``cod-monitor predict``, ``--method`` default, and the finished-model
#:   forecasts of the demo): ``cod``, the registry's name for
#:   :class:`~cod_monitor.cod.routing.RoutedCOD`, which chooses among the routes
#:   ``cod-mapping``, ``cod-trend`` and ``cod-end-to-end`` by the ladder's own backtests.
#:   The monitor's finished-model forecaster (modes ``'compute'`` and ``'recipe'`` of
#:   :class:`~cod_monitor.cod.trajectory.TrajectoryForecaster`) is the same estimator.
#: - ``monitor``: the configuration behind the per-cluster checkpoint trajectories of
#:   the monitor's ``'trajectory'`` mode: ``cod-paper-all-clusters``, so that a monitor
#:   keeps forecasting when no cluster passes the filter.
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
