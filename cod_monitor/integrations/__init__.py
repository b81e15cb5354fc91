"""Adapters that attach a :class:`~cod_monitor.monitor.CODMonitor` to training loops.

- :class:`~cod_monitor.integrations.hf.CODCallback`: a Hugging Face ``Trainer``
  callback (needs ``transformers``).
- :class:`~cod_monitor.integrations.lightning.CODCallback`: a Lightning 2.x
  ``Trainer`` callback (needs ``lightning`` and ``transformers``); import it from
  ``cod_monitor.integrations.lightning`` (``CODCallback`` here is the HF one).

Importing this package imports no training framework; the adapters load on first
attribute access.
"""

from __future__ import annotations

from cod_monitor._lazy import lazy_attributes

__all__ = ["CODCallback"]

_LAZY = {"CODCallback": "cod_monitor.integrations.hf"}


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
