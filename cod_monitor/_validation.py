"""The one parameter-validation kit of cod_monitor (private).

Every check raises :class:`~cod_monitor.exceptions.ParameterError` with
scikit-learn's sentence, so that users meet one wording everywhere and the command
line's ``CODError`` handler catches every parameter mistake::

    The 'bandwidth' parameter of ImprovedMeanShift must be a float in the range
    (0, inf) or None. Got -1 instead.

``owner`` is what the parameter belongs to, as the user wrote it (a class name such as
``'CODMonitor'``, or ``'cod-monitor predict'``). Each check returns the value
normalised (``int``, ``float``, ``bool``) so callers can store what they checked.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from numbers import Integral, Real

from cod_monitor.exceptions import ParameterError

__all__ = [
    "check_bool",
    "check_choice",
    "check_int",
    "check_real",
    "invalid",
]


def invalid(owner: str, name: str, expected: str, value, hint: str | None = None) -> ParameterError:
    """The :class:`~cod_monitor.exceptions.ParameterError` to raise for ``name`` of ``owner``.

    ``expected`` is a noun phrase (``"an int in the range [1, inf)"``); ``hint``, one
    optional sentence on how to fix it.
    """
    return ParameterError(owner, name, expected, value, hint)


def _is_int(value) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def _or_none(expected: str, none_ok: bool) -> str:
    return f"{expected} or None" if none_ok else expected


def check_int(owner: str, name: str, value, low: int | None = None, high: int | None = None,
              *, none_ok: bool = False) -> int | None:
    """``value`` as an ``int`` in ``[low, high]`` (``None`` bounds are open ends)."""
    if value is None and none_ok:
        return None
    if _is_int(value) and (low is None or value >= low) and (high is None or value <= high):
        return int(value)
    lo = "-inf" if low is None else str(low)
    hi = "inf)" if high is None else f"{high}]"
    bracket = "(" if low is None else "["
    raise invalid(owner, name, _or_none(f"an int in the range {bracket}{lo}, {hi}", none_ok), value)


def check_real(owner: str, name: str, value, low: float = -math.inf, high: float = math.inf,
               *, closed: str = "neither", none_ok: bool = False) -> float | None:
    """``value`` as a finite ``float`` between ``low`` and ``high``.

    ``closed`` says which ends belong to the range: ``'both'``, ``'left'``, ``'right'``
    or ``'neither'`` (scikit-learn's ``Interval`` convention).
    """
    if value is None and none_ok:
        return None
    left = closed in ("both", "left")
    right = closed in ("both", "right")
    if _is_real(value) and (value >= low if left else value > low) and (
            value <= high if right else value < high):
        return float(value)
    interval = f"{'[' if left else '('}{low:g}, {high:g}{']' if right else ')'}"
    raise invalid(owner, name, _or_none(f"a float in the range {interval}", none_ok), value)


def check_bool(owner: str, name: str, value) -> bool:
    """``value`` as a ``bool`` (Python or NumPy); nothing else is truthy enough."""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return bool(value)
    raise invalid(owner, name, "an instance of 'bool'", value)


def check_choice(owner: str, name: str, value, choices: Collection, *, none_ok: bool = False):
    """``value`` if it is one of ``choices`` (compared with ``==``)."""
    if (value is None and none_ok) or (value is not None and _hashable_in(value, choices)):
        return value
    listed = "{" + ", ".join(repr(c) for c in choices) + "}"
    raise invalid(owner, name, _or_none(f"a str among {listed}" if all(
        isinstance(c, str) for c in choices) else f"one of {listed}", none_ok), value)


def _hashable_in(value, choices) -> bool:
    try:
        return value in choices
    except TypeError:  # an unhashable value in a set of choices
        return False
