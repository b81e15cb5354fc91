"""Registry of forecasting methods selectable by name (``--method`` on the command line).

Every method is an estimator with ``fit(ladder, benchmark)``, ``predict(compute)`` and
``predict_interval(compute, level)``.  ``cod`` is COD with this package's defaults
(:data:`COD_DEFAULTS`); ``cod-paper`` is the strict configuration of the paper, and the
``cod-no-mapping`` ... ``cod-plain-law`` entries are the paper's ablations of it
(mapping, clustering, law form).  The ``cod-spline-mapping`` ... ``cod-bootstrap-interval``
entries undo one of the changes of ``cod`` each, so that the benchmark measures every
change on its own.

A caller's ``tokens_per_param`` (the target's recipe) reaches ``cod`` and its one-change
ablations, which then apply the recipe transport (:mod:`cod_monitor.cod.transport`);
``cod-no-transport`` ignores it, and so do ``cod-paper`` and the paper's ablations.
"""

from __future__ import annotations

from typing import Callable

from cod_monitor.methods.baselines import BNSL, EndToEndExp, EndToEndPassRate, LossIntermediate
from cod_monitor.exceptions import CODError
from cod_monitor.cod.forecaster import CODForecaster

__all__ = [
    "BASELINE_DEFAULTS",
    "COD_DEFAULTS",
    "METHODS",
    "available_methods",
    "compare_methods",
    "make_forecaster",
    "method_description",
]


def _method(cls, **overrides) -> Callable:
    """Factory building ``cls(**overrides)`` plus whichever common arguments it accepts."""

    def build(**common):
        estimator = cls(**overrides)
        accepted = estimator.get_params(deep=False)
        estimator.set_params(
            **{k: v for k, v in common.items() if k in accepted and k not in overrides}
        )
        return estimator

    return build


#: The configuration of ``cod``: where it departs from the paper (``cod-paper``).
#: One configuration for every ladder, not tuned per case; see the benchmark notes.
#: These win over the common arguments (``compute_unit``, ``fallback``) of
#: :func:`make_forecaster`: pass them to ``cod-paper`` to choose them yourself.
COD_DEFAULTS: dict = {
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
}


#: What the registry's baselines change from their class defaults: the same interval
#: construction as ``cod`` (bootstrap widened by backtests on the ladder's largest runs),
#: so that the benchmark compares the coverage of equally built intervals.
BASELINE_DEFAULTS: dict = {"interval": "backtest"}


def _cod(**changes):
    return _method(CODForecaster, **{**COD_DEFAULTS, **changes})


def _paper(**changes):
    # the paper fits compute alone: a caller's tokens_per_param does not reach it
    return _method(CODForecaster, tokens_per_param=None, **changes)


#: name -> (factory taking the common keyword arguments, one-line description)
METHODS: dict[str, tuple[Callable, str]] = {
    "cod": (
        _cod(),
        "COD: arcsine features, filter in ladder units without the ceiling test, subset "
        "laws + rest local trend by share, backtest-widened interval",
    ),
    "cod-paper": (
        _paper(),
        "COD as in the paper: Improved MeanShift, full law, filter (1e18 FLOPs), spline mapping",
    ),
    "cod-no-mapping": (
        _paper(mapping="identity"),
        "cod-paper without the subset-to-full mapping",
    ),
    "cod-quartic": (
        _paper(mapping="quartic"),
        "cod-paper with the monotone quartic mapping",
    ),
    "cod-meanshift": (
        _paper(clustering="meanshift"),
        "cod-paper with plain MeanShift clustering",
    ),
    "cod-kmeans": (_paper(clustering="kmeans"), "cod-paper with KMeans clustering"),
    "cod-improved-kmeans": (
        _paper(clustering="improved_kmeans"),
        "cod-paper with improved KMeans (radius and size filtering)",
    ),
    "cod-dbscan": (_paper(clustering="dbscan"), "cod-paper with DBSCAN clustering"),
    "cod-no-g": (_paper(law="no_g"), "cod-paper with the law without the floor g"),
    "cod-no-c": (_paper(law="no_c"), "cod-paper with the law without the constant c"),
    "cod-plain-law": (
        _paper(law="plain"),
        "cod-paper with the plain law exp(-a C^-b)",
    ),
    "cod-spline-mapping": (
        _cod(combine="mapping"),
        "cod with the paper's spline mapping through (1, 1) instead of the share combination",
    ),
    "cod-linear-tail": (
        _cod(combine="mapping", mapping="linear_tail"),
        "cod with a monotone mapping whose tail follows the top ladder points' slope",
    ),
    "cod-rest-law": (
        _cod(rest="law"),
        "cod with the rest forecast by one COD law (end-to-end on the rest), not its trend",
    ),
    "cod-pass-rate-features": (
        _cod(features="pass_rate"),
        "cod clustering on the raw pass rates (the paper's features)",
    ),
    "cod-paper-unit": (
        _cod(compute_unit=None),
        "cod with the filter thresholds in the ladder's compute unit (1e18 FLOPs)",
    ),
    "cod-ceiling-filter": (
        _cod(c_max=1.0),
        "cod with the paper's ceiling test c < 1 in the filter",
    ),
    "cod-no-transport": (
        _cod(tokens_per_param=None),
        "cod without the recipe transport (compute alone, even when the target's tokens "
        "per parameter are given)",
    ),
    "cod-bootstrap-interval": (
        _cod(interval="bootstrap"),
        "cod with the plain bootstrap interval (no backtest widening)",
    ),
    "e2e-exp": (
        _method(EndToEndExp, **BASELINE_DEFAULTS),
        "Baseline: the COD law fitted once to the full-set accuracy",
    ),
    "e2e-passrate": (
        _method(EndToEndPassRate, **BASELINE_DEFAULTS),
        "Baseline: -log(pass rate) = alpha C^-k on the full set (GPT-4 / PassUntil)",
    ),
    "bnsl": (
        _method(BNSL, **BASELINE_DEFAULTS),
        "Baseline: broken neural scaling law (1 break) of the full-set error",
    ),
    "loss-intermediate": (
        _method(LossIntermediate, **BASELINE_DEFAULTS),
        "Baseline: compute -> loss power law -> accuracy sigmoid (needs `loss` per model)",
    ),
}


def available_methods() -> list[str]:
    """Names of every registered method, ``cod`` first."""
    return list(METHODS)


def method_description(name: str) -> str:
    """One-line description of a registered method."""
    return METHODS[_check(name)][1]


def _check(name: str) -> str:
    if name not in METHODS:
        raise ValueError(
            f"The 'method' parameter must be one of {available_methods()} or 'all'. "
            f"Got {name!r} instead."
        )
    return name


def make_forecaster(name: str, **common):
    """Build the estimator registered as ``name``.

    Parameters
    ----------
    name : str
        A key of :data:`METHODS`.
    **common
        Keyword arguments shared by the methods (e.g. ``anchors``, ``compute_unit``,
        ``n_bootstrap``, ``random_state``, ``fallback``); each method takes the ones
        among its parameters, and its own overrides win.

    Returns
    -------
    estimator
        Unfitted.
    """
    return METHODS[_check(name)][0](**common)


def compare_methods(ladder, benchmark: str, compute: float, methods=None, *, level=0.9, **common):
    """Fit several methods on one ladder and forecast the same compute.

    A method that cannot forecast (e.g. COD with no extrapolatable cluster, or a fit
    that fails numerically) gets ``value=None`` and an ``error`` string instead of
    aborting the others; errors in the ladder itself still raise.

    Parameters
    ----------
    ladder : Ladder
    benchmark : str
    compute : float
        Target compute in FLOPs.
    methods : sequence of str, optional
        Method names; ``None`` runs every registered method.
    level : float, default 0.9
        Interval coverage.
    **common
        Passed to every method's constructor.

    Returns
    -------
    dict
        name -> ``{"value", "interval": [lo, hi], "error"?, "estimator"}``; the
        estimator is the fitted object (``None`` when it failed).
    """
    out = {}
    for name in available_methods() if methods is None else methods:
        estimator = make_forecaster(name, **common)
        try:
            estimator.fit(ladder, benchmark)
            value = float(estimator.predict(compute))
            lo, hi = estimator.predict_interval(compute, level=level)
            out[name] = {"value": value, "interval": [float(lo), float(hi)], "estimator": estimator}
        except (CODError, ValueError, RuntimeError, FloatingPointError) as exc:
            if isinstance(exc, CODError) and getattr(exc, "field", None) is not None:
                raise  # the ladder itself is wrong: every method would fail the same way
            out[name] = {"value": None, "interval": None, "error": str(exc), "estimator": None}
    return out
