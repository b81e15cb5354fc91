"""The ablations of COD registered beside ``cod`` and ``cod-paper`` (the research path).

The paper's ablations of ``cod-paper`` (mapping, clustering, law form) and one-change
ablations of ``cod-trend`` (the route ``clusters+trend`` of the default), each undoing one of its departures from the paper so that the
benchmarks measure every change on its own. The registry
(:mod:`cod_monitor.methods.registry`) loads this module on the first request of one of
these names or of the full list.
"""

from __future__ import annotations

from cod_monitor.methods.clustering import (
    DifficultyDBSCAN,
    DifficultyKMeans,
    ImprovedKMeans,
    PlainMeanShift,
)
from cod_monitor.methods.entries import PAPER, Method, cod_method

__all__ = ["ABLATIONS"]

#: name -> method, in the order of :func:`~cod_monitor.methods.registry.available_methods`.
ABLATIONS: dict[str, Method] = {
    "cod-no-mapping": cod_method(
        description="cod-paper without the subset-to-full mapping", mapping="identity", **PAPER),
    "cod-quartic": cod_method(
        description="cod-paper with the monotone quartic mapping", mapping="quartic", **PAPER),
    "cod-meanshift": cod_method(
        description="cod-paper with plain MeanShift clustering",
        clustering=PlainMeanShift(), **PAPER),
    "cod-kmeans": cod_method(
        description="cod-paper with KMeans clustering", clustering=DifficultyKMeans(), **PAPER),
    "cod-improved-kmeans": cod_method(
        description="cod-paper with improved KMeans (radius and size filtering)",
        clustering=ImprovedKMeans(), **PAPER),
    "cod-dbscan": cod_method(
        description="cod-paper with DBSCAN clustering", clustering=DifficultyDBSCAN(), **PAPER),
    "cod-no-g": cod_method(
        description="cod-paper with the law without the floor g", law="no_g", **PAPER),
    "cod-no-c": cod_method(
        description="cod-paper with the law without the constant c", law="no_c", **PAPER),
    "cod-plain-law": cod_method(
        description="cod-paper with the plain law exp(-a C^-b)", law="plain", **PAPER),
    "cod-spline-mapping": cod_method(
        "cod-trend", "cod-trend with the paper's spline mapping through (1, 1) instead of "
        "the share combination", combine="mapping"),
    "cod-linear-tail": cod_method(
        "cod-trend", "cod-trend with a monotone mapping whose tail follows the top ladder "
        "points' slope", combine="mapping", mapping="linear_tail"),
    "cod-rest-law": cod_method(
        "cod-trend", "cod-trend with the rest forecast by one COD law (end-to-end on the "
        "rest), not its trend", rest="law"),
    "cod-pass-rate-features": cod_method(
        "cod-trend", "cod-trend clustering on the raw pass rates (the paper's features)",
        features="pass_rate"),
    "cod-paper-unit": cod_method(
        "cod-trend", "cod-trend with the filter thresholds in the ladder's compute unit "
        "(1e18 FLOPs)", compute_unit=None),
    "cod-ceiling-filter": cod_method(
        "cod-trend", "cod-trend with the paper's ceiling test c < 1 in the filter",
        c_max=1.0),
    "cod-no-transport": cod_method(
        "cod-trend", "cod-trend without the recipe transport (compute alone, even when the "
        "target's tokens per parameter are given)", ignores=("tokens_per_param",)),
    "cod-bootstrap-interval": cod_method(
        "cod-trend", "cod-trend with the plain bootstrap interval (no backtest widening)",
        interval="bootstrap"),
}
