"""Trackers: where the monitor sends forecasts, observations and alerts.

- :class:`~cod_monitor.trackers.wandb.WandbTracker`: Weights & Biases (needs ``wandb``).
- :class:`~cod_monitor.trackers.local.LocalTracker`: CSV tables, PNG plots (needs
  ``matplotlib``) and a static HTML report.

Every tracker follows the :class:`~cod_monitor.trackers.base.Tracker` protocol
(``start``, ``log_forecast``, ``log_observation``, ``log_alert``, ``finish``).
Importing this package imports neither wandb nor matplotlib: the classes load on first
attribute access.
"""

from __future__ import annotations

from cod_monitor._lazy import lazy_attributes

__all__ = ["LocalTracker", "Tracker", "WandbTracker", "render_report"]

_LAZY = {
    "LocalTracker": "cod_monitor.trackers.local",
    "Tracker": "cod_monitor.trackers.base",
    "WandbTracker": "cod_monitor.trackers.wandb",
    "render_report": "cod_monitor.trackers.html",
}


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
