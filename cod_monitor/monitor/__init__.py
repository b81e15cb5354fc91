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
