"""Adapters that attach a :class:`~cod_monitor.monitor.CODMonitor` to training loops.

- :class:`~cod_monitor.integrations.hf.CODCallback`: a Hugging Face ``Trainer``
  callback (needs ``transformers``).

Importing this package imports no training framework; the adapters load on first
attribute access.
"""

from __future__ import annotations

import importlib

__all__ = ["CODCallback"]

_LAZY = {"CODCallback": "cod_monitor.integrations.hf"}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
