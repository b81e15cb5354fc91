"""The seam between the pool's bookkeeping and the processes that run its jobs.

:class:`~cod_monitor.runtime.pool.EvalPool` keeps the queue and its policy, the
attempts, the time limits and the outcomes; a *worker backend* only starts, feeds,
watches and stops workers. Two backends implement :class:`WorkerBackend`:

* :class:`~cod_monitor.runtime.local.LocalProcesses`: spawn-started processes on this
  machine, one per held-out device;
* :class:`~cod_monitor.runtime.ray_backend.RayActors`: one Ray actor per evaluation
  slot, anywhere in a Ray cluster.

Lifecycle, all on the pool's dispatcher thread except :meth:`WorkerBackend.wake`::

    backend.worker(device, ...)   # one handle per slot, when the pool is built
    backend.open()                # once, before the first start (connect, check)
    backend.start(h)              # a worker for slot h; it reports "ready" later
    backend.send(h, job)          # only after h reported "ready", one job at a time
    backend.wait(handles, t)      # the events of the started handles
    backend.cpu_waits(h)          # how long h's threads waited for a CPU (time limits)
    backend.stop(h, kill=...)     # end h's worker; the pool may start h again
    backend.close()               # once, after every handle was stopped

Events
------
:meth:`WorkerBackend.wait` returns ``(handle, event)`` pairs, each event a tuple:

``("ready", pid)``
    The worker can take a job.
``("dead", traceback)``
    The worker could not start (e.g. its job function does not import); the pool
    starts it again with a back-off and gives its slot up after a few failures.
``("unusable", message)``
    The worker can never run on what it was given (e.g. its node cannot read the
    snapshots); the pool gives its slot up at once and quotes ``message`` when no
    slot is left.
``("ok", job_id, result, wall_s)``
    The job's :class:`~cod_monitor.records.EvalResult`.
``("error", job_id, traceback, wall_s)``
    The job raised; the pool retries it.
``("fatal", job_id, traceback, wall_s)``
    The job raised one of :data:`~cod_monitor.runtime.worker.PERMANENT_ERRORS` (a
    configuration error): the pool does not retry it.
``("exit", why)``
    The worker ended or was lost (a crash, a lost node); its job, if any, is retried
    on a fresh worker. It is the last event of that worker.

Job messages come from :func:`~cod_monitor.runtime.worker.run_job`, whichever
backend runs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from cod_monitor.runtime.jobs import Job

__all__ = ["WorkerBackend", "WorkerHandle"]


@runtime_checkable
class WorkerHandle(Protocol):
    """One evaluation slot of a backend: what the pool reads of it.

    Attributes
    ----------
    device : str
        Where the slot's worker runs (``'cpu'``, ``'cuda:1'``, ``'ray:cuda@1a2b3c4d'``);
        quoted in outcomes and logs.
    started : bool
        A worker was started (:meth:`WorkerBackend.start`) and not stopped since.
    pid : int or None
        Process id of the worker (on its node), ``None`` before it reported ready.
    exitcode : int or None
        Exit code of a worker that ended, when the backend knows it.
    """

    device: str

    @property
    def started(self) -> bool: ...

    @property
    def pid(self) -> int | None: ...

    @property
    def exitcode(self) -> int | None: ...


@runtime_checkable
class WorkerBackend(Protocol):
    """Starts, feeds, watches and stops evaluation workers (see the module docstring).

    A backend knows nothing of attempts, retries, time limits or queues: the pool
    decides, the backend does. Methods other than :meth:`wake` are called on the
    pool's dispatcher thread only.
    """

    def worker(self, device, *, cpu_threads: int | None = None, env: dict | None = None,
               owner: str = "EvalPool") -> WorkerHandle:
        """The handle of a slot on ``device`` (nothing started).

        Parameters
        ----------
        device : str or int
            What the slot runs on, in the backend's terms.
        cpu_threads : int, optional
            ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` of a CPU worker.
        env : dict, optional
            Extra environment variables of the worker.
        owner : str
            Named in the error for an invalid device.

        Raises
        ------
        ParameterError
            A device the backend cannot run a worker on.
        """

    def open(self) -> None:
        """Get ready to start workers (connect to a cluster, write a probe); idempotent.

        Raises
        ------
        Exception
            When no worker can be started at all; the pool fails its jobs with the
            message.
        """

    def start(self, handle: WorkerHandle) -> None:
        """Start the slot's worker; it reports ``("ready", pid)`` once it can take a job."""

    def send(self, handle: WorkerHandle, job: Job) -> None:
        """Give the ready worker one job; raises when the job cannot be sent (pickled)."""

    def wait(self, handles: Sequence[WorkerHandle], timeout: float) -> list[tuple[WorkerHandle, tuple]]:
        """Events of the started ``handles``, waiting up to ``timeout`` seconds or until
        :meth:`wake` is called; in arrival order per handle, ``("exit", why)`` last."""

    def cpu_waits(self, handle: WorkerHandle) -> dict[int, float]:
        """Seconds each thread of the slot's worker has spent runnable but waiting for a
        CPU, by thread id; empty when the backend cannot tell.

        The pool does not count that time against an attempt's time limit: a worker that
        runs at a low priority (``SCHED_IDLE``) and waits while training holds the cores
        is not hung.
        """

    def stop(self, handle: WorkerHandle, *, kill: bool) -> None:
        """End the slot's worker: at once (``kill``, its job abandoned) or when idle;
        idempotent. The pool may :meth:`start` the handle again."""

    def wake(self) -> None:
        """Make a :meth:`wait` in progress return now (thread-safe)."""

    def close(self) -> None:
        """Release what :meth:`open` acquired; idempotent."""
