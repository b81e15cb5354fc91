"""Live monitoring of a training run against its COD forecast.

- :class:`CODMonitor` (:mod:`~cod_monitor.monitor.monitor`): the object a training loop
  talks to: ``on_checkpoint`` / ``poll`` / ``close``.
- :class:`TrajectoryForecaster` (:mod:`~cod_monitor.monitor.trajectory`): the forecast
  for a checkpoint of a run in progress (``'compute'`` or ``'trajectory'`` mode).
- :func:`decide`, :class:`DriftConfig`, :class:`DriftState`
  (:mod:`~cod_monitor.monitor.drift`): the pure drift decision.
- :class:`EvalPool`, :class:`Job`, :class:`QueuePolicy` (:mod:`~cod_monitor.monitor.pool`):
  evaluation worker processes on held-out devices.
- :class:`Journal` (:mod:`~cod_monitor.monitor.journal`): the durable record a
  restarted monitor resumes from.
- :func:`snapshot_directory`, :class:`SnapshotWriter`
  (:mod:`~cod_monitor.monitor.snapshots`): private copies of checkpoints.

Importing this package imports neither torch nor transformers nor wandb.
"""

from typing import TYPE_CHECKING

from cod_monitor._lazy import lazy_attributes

# Loaded on first use: a spawned evaluation worker imports the pool module alone,
# not the forecasting stack behind CODMonitor (scikit-learn, SciPy).
_EXPORTS: dict[str, str] = {
    "DriftConfig": "cod_monitor.monitor.drift",
    "DriftState": "cod_monitor.monitor.drift",
    "decide": "cod_monitor.monitor.drift",
    "evaluation_failure_alert": "cod_monitor.monitor.drift",
    "Journal": "cod_monitor.monitor.journal",
    "JournalState": "cod_monitor.monitor.journal",
    "read_journal": "cod_monitor.monitor.journal",
    "CODMonitor": "cod_monitor.monitor.monitor",
    "ladder_fingerprint": "cod_monitor.monitor.monitor",
    "EvalPool": "cod_monitor.monitor.pool",
    "Job": "cod_monitor.monitor.pool",
    "JobOutcome": "cod_monitor.monitor.pool",
    "QueuePolicy": "cod_monitor.monitor.pool",
    "run_evaluation": "cod_monitor.monitor.pool",
    "Snapshot": "cod_monitor.monitor.snapshots",
    "SnapshotWriter": "cod_monitor.monitor.snapshots",
    "cpu_state_dict": "cod_monitor.monitor.snapshots",
    "snapshot_directory": "cod_monitor.monitor.snapshots",
    "write_state_dict": "cod_monitor.monitor.snapshots",
    "TRAJECTORY_MODES": "cod_monitor.monitor.trajectory",
    "TrajectoryForecaster": "cod_monitor.monitor.trajectory",
    "TrajectoryLaw": "cod_monitor.monitor.trajectory",
    "fit_trajectory_laws": "cod_monitor.monitor.trajectory",
    "trajectory_accuracy": "cod_monitor.monitor.trajectory",
}

if TYPE_CHECKING:
    from cod_monitor.monitor.drift import (
        DriftConfig,
        DriftState,
        decide,
        evaluation_failure_alert,
    )
    from cod_monitor.monitor.journal import Journal, JournalState, read_journal
    from cod_monitor.monitor.monitor import CODMonitor, ladder_fingerprint
    from cod_monitor.monitor.pool import (
        EvalPool,
        Job,
        JobOutcome,
        QueuePolicy,
        run_evaluation,
    )
    from cod_monitor.monitor.snapshots import (
        Snapshot,
        SnapshotWriter,
        cpu_state_dict,
        snapshot_directory,
        write_state_dict,
    )
    from cod_monitor.monitor.trajectory import (
        TRAJECTORY_MODES,
        TrajectoryForecaster,
        TrajectoryLaw,
        fit_trajectory_laws,
        trajectory_accuracy,
    )


__all__ = [
    "TRAJECTORY_MODES",
    "CODMonitor",
    "DriftConfig",
    "DriftState",
    "EvalPool",
    "Job",
    "JobOutcome",
    "Journal",
    "JournalState",
    "QueuePolicy",
    "Snapshot",
    "SnapshotWriter",
    "TrajectoryForecaster",
    "TrajectoryLaw",
    "cpu_state_dict",
    "decide",
    "evaluation_failure_alert",
    "fit_trajectory_laws",
    "ladder_fingerprint",
    "read_journal",
    "run_evaluation",
    "snapshot_directory",
    "trajectory_accuracy",
    "write_state_dict",
]

__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS, globals())
