"""Results shared between the fits of one call, keyed by their exact inputs.

:class:`~cod_monitor.cod.routing.RoutedCOD` fits three routes, each on the full ladder
and on the sub-ladders of its backtests. Routes that cluster the same features see the
same pass-rate matrices and fit the same cluster curves, so inside :func:`shared_fits`
a clustering or a batch of law fits is computed once and reused whenever the inputs
are equal to the last bit. Outside it nothing is cached.
"""

from __future__ import annotations

import contextvars
from contextlib import contextmanager

import numpy as np

__all__ = ["memoized", "remember", "shared_fits"]

_CACHE: contextvars.ContextVar[dict | None] = contextvars.ContextVar("cod_shared_fits",
                                                                   default=None)


@contextmanager
def shared_fits():
    """Reuse identical clusterings and law fits until the block ends (nestable)."""
    token = _CACHE.set({}) if _CACHE.get() is None else None
    try:
        yield
    finally:
        if token is not None:
            _CACHE.reset(token)


def _key(part):
    if isinstance(part, np.ndarray):
        return (part.shape, part.dtype.str, part.tobytes())
    return part


def memoized(kind: str, parts: tuple, compute):
    """``compute()``, or its earlier result for equal ``parts`` inside :func:`shared_fits`.

    The result is shared: callers must not modify it (law fits are frozen; arrays are
    returned as read-only views).
    """
    cache = _CACHE.get()
    if cache is None:
        return compute()
    key = (kind, *map(_key, parts))
    if key not in cache:
        result = compute()
        if isinstance(result, np.ndarray):
            result = result.view()
            result.flags.writeable = False
        cache[key] = result
    return cache[key]


def remember(kind: str, parts: tuple, result) -> None:
    """Keep ``result`` for :func:`memoized` calls with equal ``parts`` (inside
    :func:`shared_fits`; nothing happens outside it)."""
    cache = _CACHE.get()
    if cache is not None:
        cache.setdefault((kind, *map(_key, parts)), result)
