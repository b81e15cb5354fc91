"""Registry of forecasting methods selectable by name (``--method`` on the command line).

Every method is an estimator with ``fit(ladder, benchmark)``, ``predict(compute)`` and
``predict_interval(compute, level)``. ``cod`` is the default,
:class:`~cod_monitor.cod.routing.RoutedCOD`, which chooses its route by evidence;
``cod-mapping``, ``cod-trend`` and ``cod-paper`` are the configurations of the same
names in :mod:`cod_monitor.cod.configs` (two routes of the default and the paper's);
the baselines (``e2e-exp``, ``e2e-passrate``, ``bnsl``, ``loss-intermediate``) use the
interval construction of ``cod``. The ablations of ``cod-trend`` and ``cod-paper``
(:mod:`cod_monitor.methods.ablations`, one changed setting each) are registered too,
and loaded on the first request of one of them or of the full list: the default path
(``cod``) never imports them.

A method's configuration is fixed: a common argument of :func:`make_forecaster` that
it sets to another value is not applied, with a
:class:`~cod_monitor.exceptions.ConfigurationWarning`. A caller's ``tokens_per_param``
(the target's recipe) reaches ``cod``, ``cod-mapping``, ``cod-trend`` and the one-change
ablations of ``cod-trend``, which then apply the recipe transport
(:mod:`cod_monitor.cod.transport`); ``cod-paper``, the paper's ablations and
``cod-no-transport`` do not take it.
"""

from __future__ import annotations

import importlib
import math
import time
import warnings
from collections.abc import Mapping
from functools import cache
from types import MappingProxyType

from cod_monitor._threads import one_blas_thread
from cod_monitor._validation import check_real, invalid
from cod_monitor.cod.routing import RoutedCOD
from cod_monitor.exceptions import CODError, ConfigurationWarning, FitFailedError
from cod_monitor.ladder import load_ladder
from cod_monitor.ladder.selection import select_fit_points
from cod_monitor.methods.bnsl import BNSL
from cod_monitor.methods.end_to_end import EndToEndExp, EndToEndPassRate
from cod_monitor.methods.entries import PAPER, Method, baseline_method, cod_method
from cod_monitor.methods.loss_intermediate import LossIntermediate

__all__ = [
    "METHODS",
    "available_methods",
    "compare_methods",
    "make_forecaster",
    "method_description",
]


_COD_METHODS: dict[str, Method] = {
    "cod": Method(
        RoutedCOD, MappingProxyType({}),
        "COD (the default): the route to the full set (clusters+mapping, clusters+trend "
        "or end-to-end) chosen by backtests on the ladder's largest runs",
    ),
    "cod-mapping": cod_method(
        "cod-mapping",
        "COD route clusters+mapping: the paper's, with the filter in ladder units",
    ),
    "cod-trend": cod_method(
        "cod-trend",
        "COD route clusters+trend: arcsine features, filter in ladder units without the "
        "ceiling test, subset laws + rest local trend by share",
    ),
    "cod-paper": cod_method(
        description="COD as in the paper: Improved MeanShift, full law, filter (1e18 FLOPs), "
        "spline mapping", **PAPER,
    ),
}

_BASELINES: dict[str, Method] = {
    "e2e-exp": baseline_method(
        EndToEndExp, "Baseline: the COD law fitted once to the full-set accuracy"),
    "e2e-passrate": baseline_method(
        EndToEndPassRate,
        "Baseline: -log(pass rate) = alpha C^-k on the full set (GPT-4 / PassUntil)"),
    "bnsl": baseline_method(
        BNSL, "Baseline: broken neural scaling law (1 break) of the full-set error"),
    "loss-intermediate": baseline_method(
        LossIntermediate,
        "Baseline: compute -> loss power law -> accuracy sigmoid (needs `loss` per model)"),
}

@cache
def _all_methods() -> Mapping[str, Method]:
    """Every method, ``cod`` first; loads the ablations on first use."""
    ablations = importlib.import_module("cod_monitor.methods.ablations").ABLATIONS
    return MappingProxyType({**_COD_METHODS, **ablations, **_BASELINES})


def __getattr__(name: str):
    # METHODS is built on first access, so that importing the registry leaves the
    # ablations (and their clusterers) unimported
    if name == "METHODS":
        return _all_methods()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _method(name: str) -> Method:
    entry = _COD_METHODS.get(name) or _BASELINES.get(name)
    if entry is None:
        methods = _all_methods()
        if name not in methods:
            listed = "{" + ", ".join(repr(m) for m in methods) + "}"
            raise invalid("make_forecaster", "name", f"a str among {listed}", name)
        entry = methods[name]
    return entry


def available_methods() -> list[str]:
    """Names of every registered method, ``cod`` first (loads the ablations)."""
    return list(_all_methods())


def method_description(name: str) -> str:
    """One-line description of a registered method."""
    return _method(name).description


def _same(a, b) -> bool:
    if a is b:
        return True
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def _build(name: str, common: Mapping):
    """The estimator of ``name`` with the common arguments it takes; warns (pointing at
    the caller of the public function that called this one) about fixed ones."""
    entry = _method(name)
    estimator = entry.factory()
    accepted = estimator.get_params(deep=False)
    applied = {}
    for key, value in common.items():
        if key in entry.ignores or key not in accepted:
            continue
        if key in entry.fixed:
            if not _same(value, entry.fixed[key]):
                warnings.warn(
                    f"method {name!r} fixes {key}={entry.fixed[key]!r}; {key}={value!r} is "
                    f"not applied. Build the estimator yourself to change it (e.g. "
                    f"CODForecaster.from_config('cod-trend', {key}=...)).",
                    ConfigurationWarning,
                    stacklevel=3,
                )
            continue
        applied[key] = value
    return estimator.set_params(**applied)


def make_forecaster(name: str, **common):
    """Build the estimator registered as ``name``.

    Parameters
    ----------
    name : str
        A name of :func:`available_methods`.
    **common
        Keyword arguments shared by the methods (e.g. ``anchors``, ``compute_unit``,
        ``n_bootstrap``, ``random_state``, ``fallback``); each method takes the ones
        among its parameters, and its own configuration wins.

    Returns
    -------
    estimator
        Unfitted.

    Raises
    ------
    ParameterError
        An unknown name.

    Warns
    -----
    ConfigurationWarning
        A common argument that the method's configuration sets to another value (it
        is not applied).

    Examples
    --------
    >>> make_forecaster("e2e-exp", n_bootstrap=20)
    EndToEndExp(interval='backtest', n_bootstrap=20)
    """
    return _build(name, common)


def compare_methods(ladder, benchmark: str, compute: float, methods=None, *, level=0.9,
                    progress=None, **common):
    """Fit several methods on one ladder and forecast the same compute.

    Every method runs in isolation: whatever one raises (no extrapolatable cluster, a
    fit that fails numerically, a method the ladder cannot serve, a parameter it
    rejects, an unexpected bug) becomes that method's row, with ``value=None`` and an
    ``error`` string, and the next method runs. A failure of the interval alone (the
    bootstrap or the backtests) keeps the forecast: ``interval`` is ``[nan, nan]`` and
    ``interval_error`` says why (see
    :meth:`~cod_monitor.cod.intervals.ForecastMixin.predict_interval`).

    Only input that every method shares is checked before any method runs, and raises:
    the ladder, the benchmark, the method names, ``level``, and the fit points that
    ``anchors``, ``checkpoints`` and ``smooth_checkpoints`` select (unknown or target
    anchors, fewer than 3 ladder points of distinct compute).

    Parameters
    ----------
    ladder : Ladder or path
    benchmark : str
    compute : float
        Target compute in FLOPs.
    methods : sequence of str, optional
        Method names; ``None`` runs every registered method.
    level : float, default 0.9
        Interval coverage.
    progress : callable, optional
        ``progress(name, i, n, seconds, error)`` before each method (the ``i``-th of
        ``n``, from 1; ``seconds`` is ``None``) and after it, with the seconds it took
        and its error (``None`` when it forecast): how the command line reports
        progress. Called only once the shared input is checked.
    **common
        Passed to every method's constructor, as :func:`make_forecaster`.

    Returns
    -------
    dict
        name -> ``{"value", "interval": [lo, hi], "interval_error", "error"?,
        "estimator"}``: ``error`` is present only when the method produced no
        forecast (``value``, ``interval`` and ``estimator`` are then ``None``);
        ``interval_error`` is ``None`` when the interval is fine, else why its bounds
        are NaN.

    Raises
    ------
    LadderValidationError
        The ladder or the fit points every method shares are invalid (e.g. an unknown
        benchmark or anchor, too few ladder points).
    ParameterError
        An unknown method name, or ``level`` outside (0, 1).
    """
    ladder = load_ladder(ladder)
    names = available_methods() if methods is None else list(methods)
    for name in names:
        _method(name)  # an unknown name fails here, before any method has run
    check_real("compare_methods", "level", level, 0.0, 1.0)
    # the fit points every method selects the same way: bad shared input raises once
    select_fit_points(ladder, benchmark, anchors=common.get("anchors"),
                      checkpoints=common.get("checkpoints", "final"),
                      smooth_checkpoints=common.get("smooth_checkpoints", False))
    out = {}
    for i, name in enumerate(names, 1):
        if progress is not None:
            progress(name, i, len(names), None, None)
        t0 = time.perf_counter()
        with one_blas_thread():
            out[name] = _compare_one(name, ladder, benchmark, compute, level, common)
        if progress is not None:
            progress(name, i, len(names), time.perf_counter() - t0, out[name].get("error"))
    return out


def _compare_one(name: str, ladder, benchmark: str, compute: float, level: float,
                 common: dict) -> dict:
    """One method's row of :func:`compare_methods` (never raises)."""
    try:
        estimator = _build(name, common)
        estimator.fit(ladder, benchmark)
        value = float(estimator.predict(compute))
        if not math.isfinite(value):
            raise FitFailedError(f"the forecast of {name!r} is not finite ({value})")
        lo, hi = estimator.predict_interval(compute, level=level)
    except Exception as exc:  # one method's failure never aborts the others
        # cod_monitor's own errors are written for users; anything else names its type
        error = str(exc) if isinstance(exc, CODError) else f"{type(exc).__name__}: {exc}"
        return {"value": None, "interval": None, "interval_error": None,
                "error": error or type(exc).__name__, "estimator": None}
    interval_error = getattr(estimator, "interval_error_", None)
    if interval_error is None and not (math.isfinite(lo) and math.isfinite(hi)):
        interval_error = "the interval is not finite"  # an estimator without the attribute
    # NaN bounds, not None: callers unpack [lo, hi] whenever there is a value
    return {"value": value, "interval": [float(lo), float(hi)],
            "interval_error": interval_error, "estimator": estimator}
