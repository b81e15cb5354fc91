"""Where evaluations run: the worker pool and the checkpoint snapshots it reads.

- :class:`EvalPool`, :class:`Job`, :class:`JobOutcome`, :class:`QueuePolicy`
  (:mod:`~cod_monitor.runtime.pool`): evaluation worker processes on held-out devices.
- :func:`snapshot_directory`, :class:`SnapshotWriter`
  (:mod:`~cod_monitor.runtime.snapshots`): private copies of checkpoints.

A spawned evaluation worker imports this package and the evaluators alone: nothing
here imports scikit-learn, SciPy's optimisers or the forecasting stack.
"""

from typing import TYPE_CHECKING

from cod_monitor._lazy import lazy_attributes

_EXPORTS: dict[str, str] = {
    "EvalPool": "cod_monitor.runtime.pool",
    "Job": "cod_monitor.runtime.pool",
    "JobOutcome": "cod_monitor.runtime.pool",
    "QueuePolicy": "cod_monitor.runtime.pool",
    "run_evaluation": "cod_monitor.runtime.pool",
    "Snapshot": "cod_monitor.runtime.snapshots",
    "SnapshotWriter": "cod_monitor.runtime.snapshots",
    "cpu_state_dict": "cod_monitor.runtime.snapshots",
    "snapshot_directory": "cod_monitor.runtime.snapshots",
    "write_state_dict": "cod_monitor.runtime.snapshots",
}

if TYPE_CHECKING:
    from cod_monitor.runtime.pool import EvalPool, Job, JobOutcome, QueuePolicy, run_evaluation
    from cod_monitor.runtime.snapshots import (
        Snapshot,
        SnapshotWriter,
        cpu_state_dict,
        snapshot_directory,
        write_state_dict,
    )

__all__ = [
    "EvalPool",
    "Job",
    "JobOutcome",
    "QueuePolicy",
    "Snapshot",
    "SnapshotWriter",
    "cpu_state_dict",
    "run_evaluation",
    "snapshot_directory",
    "write_state_dict",
]

__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS, globals())
