"""Live monitoring of a training run against its COD forecast.

- :class:`CODMonitor` (:mod:`~cod_monitor.monitor.monitor`): the object a training loop
  talks to: ``on_checkpoint`` / ``poll`` / ``close``.
- :class:`ForecastConfig`, :class:`PoolConfig`, :class:`RunGeometry`,
  :class:`CheckpointConfig` (:mod:`~cod_monitor.monitor.config`): its typed settings.
- :func:`decide`, :class:`DriftConfig`, :class:`DriftState`
  (:mod:`~cod_monitor.monitor.drift`): the pure drift decision.
- :class:`Journal` (:mod:`~cod_monitor.monitor.journal`): the durable record a
  restarted monitor resumes from.
- :func:`~cod_monitor.monitor.checks.check_eval_sets`
  (:mod:`~cod_monitor.monitor.checks`): what :meth:`CODMonitor.start` checks before
  training proceeds (every evaluation set holds the ladder benchmark's samples).
- :class:`QueuePolicy` (from :mod:`cod_monitor.runtime.jobs`): what happens when
  evaluation falls behind.

The monitor's parts (:mod:`~cod_monitor.monitor.intake`,
:mod:`~cod_monitor.monitor.forecasts`, :mod:`~cod_monitor.monitor.judging`,
:mod:`~cod_monitor.monitor.ledger`) are wired by :class:`CODMonitor` and need not be
used directly.

Importing this package imports neither torch nor transformers nor wandb.
"""

from typing import TYPE_CHECKING

from cod_monitor._lazy import lazy_attributes

_EXPORTS: dict[str, str] = {
    "CheckpointConfig": "cod_monitor.monitor.config",
    "ForecastConfig": "cod_monitor.monitor.config",
    "PoolConfig": "cod_monitor.monitor.config",
    "RunGeometry": "cod_monitor.monitor.config",
    "DriftConfig": "cod_monitor.monitor.drift",
    "DriftState": "cod_monitor.monitor.drift",
    "decide": "cod_monitor.monitor.drift",
    "decide_with_run": "cod_monitor.monitor.drift",
    "evaluation_failure_alert": "cod_monitor.monitor.drift",
    "Journal": "cod_monitor.monitor.journal",
    "JournalState": "cod_monitor.monitor.journal",
    "read_journal": "cod_monitor.monitor.journal",
    "ALERT_LOGGER": "cod_monitor.monitor.judging",
    "PROGRESS_LOGGER": "cod_monitor.monitor.judging",
    "CODMonitor": "cod_monitor.monitor.monitor",
    "MonitorClosedError": "cod_monitor.monitor.monitor",
    "OutDirInUseError": "cod_monitor.monitor.monitor",
    "QueuePolicy": "cod_monitor.runtime.jobs",
    "MainGuardError": "cod_monitor.runtime.main_guard",
}

if TYPE_CHECKING:
    from cod_monitor.monitor.config import (
        CheckpointConfig,
        ForecastConfig,
        PoolConfig,
        RunGeometry,
    )
    from cod_monitor.monitor.drift import (
        DriftConfig,
        DriftState,
        decide,
        decide_with_run,
        evaluation_failure_alert,
    )
    from cod_monitor.monitor.journal import Journal, JournalState, read_journal
    from cod_monitor.monitor.judging import ALERT_LOGGER, PROGRESS_LOGGER
    from cod_monitor.monitor.monitor import CODMonitor, MonitorClosedError, OutDirInUseError
    from cod_monitor.runtime.jobs import QueuePolicy
    from cod_monitor.runtime.main_guard import MainGuardError

__all__ = [
    "ALERT_LOGGER",
    "PROGRESS_LOGGER",
    "CODMonitor",
    "CheckpointConfig",
    "DriftConfig",
    "DriftState",
    "ForecastConfig",
    "Journal",
    "JournalState",
    "MainGuardError",
    "MonitorClosedError",
    "OutDirInUseError",
    "PoolConfig",
    "QueuePolicy",
    "RunGeometry",
    "decide",
    "decide_with_run",
    "evaluation_failure_alert",
    "read_journal",
]

__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS, globals())
