"""Where evaluations run: the worker pool and the checkpoint snapshots it reads.

- :class:`EvalPool` (:mod:`~cod_monitor.runtime.pool`): the bookkeeping (queue and
  policy, attempts, timeouts, outcomes) over a worker backend.
- :class:`Job`, :class:`JobOutcome`, :class:`QueuePolicy`
  (:mod:`~cod_monitor.runtime.jobs`): what the pool queues and reports.
- :class:`WorkerBackend` (:mod:`~cod_monitor.runtime.backend`): the seam between the
  bookkeeping and the workers.
- :class:`LocalProcesses`, :func:`device_env` (:mod:`~cod_monitor.runtime.local`): the
  backend of spawn-started worker processes on held-out devices.
- :class:`RayEvalPool`, :class:`RayActors` (:mod:`~cod_monitor.runtime.ray_backend`):
  the pool over Ray actors (``pip install 'cod_monitor[ray]'``; Ray is imported when
  such a pool is built).
- :func:`run_evaluation` (:mod:`~cod_monitor.runtime.worker`): what a worker runs.
- :func:`score_ladder` (:mod:`~cod_monitor.runtime.score`): a ladder's checkpoints
  scored by that same job function (``cod-monitor ladder score``).
- :func:`snapshot_directory`, :class:`SnapshotWriter`
  (:mod:`~cod_monitor.runtime.snapshots`): private copies of checkpoints.

A spawned evaluation worker imports this package and the evaluators alone: nothing
here imports scikit-learn, SciPy's optimisers or the forecasting stack.
"""

from typing import TYPE_CHECKING

from cod_monitor._lazy import lazy_attributes

_EXPORTS: dict[str, str] = {
    "EvalPool": "cod_monitor.runtime.pool",
    "Job": "cod_monitor.runtime.jobs",
    "JobOutcome": "cod_monitor.runtime.jobs",
    "QueuePolicy": "cod_monitor.runtime.jobs",
    "LocalProcesses": "cod_monitor.runtime.local",
    "RayActors": "cod_monitor.runtime.ray_backend",
    "RayEvalPool": "cod_monitor.runtime.ray_backend",
    "WorkerBackend": "cod_monitor.runtime.backend",
    "device_env": "cod_monitor.runtime.local",
    "worker_env": "cod_monitor.runtime.local",
    "run_evaluation": "cod_monitor.runtime.worker",
    "score_ladder": "cod_monitor.runtime.score",
    "Snapshot": "cod_monitor.runtime.snapshots",
    "SnapshotWriter": "cod_monitor.runtime.snapshots",
    "cpu_state_dict": "cod_monitor.runtime.snapshots",
    "snapshot_directory": "cod_monitor.runtime.snapshots",
    "write_state_dict": "cod_monitor.runtime.snapshots",
}

if TYPE_CHECKING:
    from cod_monitor.runtime.backend import WorkerBackend
    from cod_monitor.runtime.jobs import Job, JobOutcome, QueuePolicy
    from cod_monitor.runtime.local import LocalProcesses, device_env, worker_env
    from cod_monitor.runtime.pool import EvalPool
    from cod_monitor.runtime.ray_backend import RayActors, RayEvalPool
    from cod_monitor.runtime.score import score_ladder
    from cod_monitor.runtime.snapshots import (
        Snapshot,
        SnapshotWriter,
        cpu_state_dict,
        snapshot_directory,
        write_state_dict,
    )
    from cod_monitor.runtime.worker import run_evaluation

__all__ = [
    "EvalPool",
    "Job",
    "JobOutcome",
    "LocalProcesses",
    "QueuePolicy",
    "RayActors",
    "RayEvalPool",
    "Snapshot",
    "SnapshotWriter",
    "cpu_state_dict",
    "device_env",
    "run_evaluation",
    "score_ladder",
    "snapshot_directory",
    "worker_env",
    "write_state_dict",
    "WorkerBackend",
]

__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS, globals())
