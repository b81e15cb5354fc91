"""Registry of forecasting methods selectable by name (``--method`` on the command line).

Every method is an estimator with ``fit(ladder, benchmark)``, ``predict(compute)`` and
``predict_interval(compute, level)``. ``cod`` and ``cod-paper`` are the configurations
of the same names in :mod:`cod_monitor.cod.configs` (this package's COD and the
paper's); the baselines (``e2e-exp``, ``e2e-passrate``, ``bnsl``,
``loss-intermediate``) use the interval construction of ``cod``. The ablations of
``cod`` and ``cod-paper`` (:mod:`cod_monitor.methods.ablations`, one changed setting
each) are registered too, and loaded on the first request of one of them or of the full
list: the default path (``cod``) never imports them.

A method's configuration is fixed: a common argument of :func:`make_forecaster` that
it sets to another value is not applied, with a
:class:`~cod_monitor.exceptions.ConfigurationWarning`. A caller's ``tokens_per_param``
(the target's recipe) reaches ``cod`` and its one-change ablations, which then apply
the recipe transport (:mod:`cod_monitor.cod.transport`); ``cod-paper``, the paper's
ablations and ``cod-no-transport`` do not take it.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Mapping
from functools import cache
from types import MappingProxyType

from cod_monitor._validation import invalid
from cod_monitor.exceptions import CODError, ConfigurationWarning, LadderValidationError
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
    "cod": cod_method(
        "cod",
        "COD: arcsine features, filter in ladder units without the ceiling test, subset "
        "laws + rest local trend by share, backtest-widened interval",
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
                    f"CODForecaster.from_config('cod', {key}=...)).",
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


def compare_methods(ladder, benchmark: str, compute: float, methods=None, *, level=0.9, **common):
    """Fit several methods on one ladder and forecast the same compute.

    A method that cannot forecast (e.g. COD with no extrapolatable cluster, or a fit
    that fails numerically) gets ``value=None`` and an ``error`` string instead of
    aborting the others; a :class:`~cod_monitor.exceptions.LadderValidationError`
    (the ladder itself is wrong: every method would fail the same way) is raised.

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
        Passed to every method's constructor, as :func:`make_forecaster`.

    Returns
    -------
    dict
        name -> ``{"value", "interval": [lo, hi], "error"?, "estimator"}``; the
        estimator is the fitted object (``None`` when it failed).
    """
    out = {}
    for name in available_methods() if methods is None else methods:
        estimator = _build(name, common)
        try:
            estimator.fit(ladder, benchmark)
            value = float(estimator.predict(compute))
            lo, hi = estimator.predict_interval(compute, level=level)
            out[name] = {"value": value, "interval": [float(lo), float(hi)], "estimator": estimator}
        except LadderValidationError:
            raise
        except (CODError, ValueError, RuntimeError, FloatingPointError) as exc:
            out[name] = {"value": None, "interval": None, "error": str(exc), "estimator": None}
    return out
