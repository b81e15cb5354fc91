"""The local worker backend: one spawn-started process per held-out device.

:class:`LocalProcesses` starts, feeds, watches and stops worker processes on this
machine for the pool's bookkeeping (:class:`~cod_monitor.runtime.pool.EvalPool`).
Isolation:

* Workers are started with the ``spawn`` method, so they share no state (and no CUDA
  context) with the training process.
* ``CUDA_VISIBLE_DEVICES`` is set in the worker's environment before anything else
  runs in it (torch initialises CUDA lazily, so this is before any CUDA call);
  ``"cpu"`` workers also hide every GPU and run at a lower priority (``SCHED_IDLE`` by
  default, or a niceness).
* Workers ignore ``SIGINT``, so Ctrl-C in the training terminal leaves the parent free
  to drain or cancel them, and exit on their own when the parent process dies.

It implements :class:`~cod_monitor.runtime.backend.WorkerBackend`: the events
:meth:`LocalProcesses.wait` reports are those of :mod:`cod_monitor.runtime.backend`
(``"unusable"`` aside, which a local process never sends), and ``("exit", why)``
comes when the process ended or its pipe broke.
"""

from __future__ import annotations

import importlib.util
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from multiprocessing.connection import wait as mp_wait

from cod_monitor._validation import invalid
from cod_monitor.exceptions import ParameterError
from cod_monitor.runtime.priority import check_worker_priority, lower_process_priority
from cod_monitor.runtime.worker import resolve_job_fn, run_job

__all__ = ["LocalProcesses", "LocalWorker", "device_env", "thread_cpu_waits", "unusable_gpus",
           "worker_env"]

logger = logging.getLogger(__name__)


def device_env(device) -> tuple[str, dict]:
    """Normalised device name and the environment a worker on it gets.

    Parameters
    ----------
    device : str or int
        ``'cpu'``, ``'cuda'`` (GPU 0), ``'cuda:1'``, ``'cuda:0,1'`` (a worker spanning
        two GPUs, e.g. tensor-parallel vLLM), or a GPU index.

    Returns
    -------
    name : str
        ``'cpu'`` or ``'cuda:<ids>'``.
    env : dict
        ``CUDA_VISIBLE_DEVICES`` (empty for CPU workers) and ``COD_MONITOR_DEVICE``
        (``'cpu'`` or ``'cuda'``, what the evaluator should use inside the worker).

    Raises
    ------
    ParameterError
        Any other value.

    Examples
    --------
    >>> device_env("cuda:1")
    ('cuda:1', {'CUDA_VISIBLE_DEVICES': '1', 'COD_MONITOR_DEVICE': 'cuda'})
    """
    if isinstance(device, bool):
        raise invalid("device_env", "device", "'cpu', 'cuda[:ids]' or a GPU index", device)
    dev = f"cuda:{device}" if isinstance(device, int) else str(device).strip().lower()
    if dev == "cpu":
        return "cpu", {"CUDA_VISIBLE_DEVICES": "", "COD_MONITOR_DEVICE": "cpu"}
    parts = [p.strip() for p in ("cuda:0" if dev == "cuda" else dev).removeprefix("cuda:").split(",")]
    if not all(p.isdigit() for p in parts):
        raise invalid("device_env", "device", "'cpu', 'cuda[:ids]' or a GPU index", device)
    ids = ",".join(parts)
    return f"cuda:{ids}", {"CUDA_VISIBLE_DEVICES": ids, "COD_MONITOR_DEVICE": "cuda"}


def worker_env(device_vars: dict, *, cpu_threads: int | None = None,
               env: dict | None = None) -> dict:
    """The environment of an evaluation worker, whichever backend starts it.

    Parameters
    ----------
    device_vars : dict
        The device's variables (:func:`device_env`); ``COD_MONITOR_DEVICE`` says
        whether it is a CPU worker.
    cpu_threads : int, optional
        ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` of a CPU worker.
    env : dict, optional
        Extra variables; they win over the defaults.

    Returns
    -------
    dict
        ``device_vars`` with ``HF_HUB_DISABLE_PROGRESS_BARS`` (1 unless this process
        sets it), and for a CPU worker ``OMP_WAIT_POLICY`` (``PASSIVE`` unless this
        process sets it) and the thread counts.

    Examples
    --------
    >>> worker_env(device_env("cpu")[1], cpu_threads=1)["OMP_NUM_THREADS"]
    '1'
    """
    # progress bars of model loading would interleave with the training logs
    out = {"HF_HUB_DISABLE_PROGRESS_BARS": os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS", "1"),
           **device_vars}
    if out.get("COD_MONITOR_DEVICE") == "cpu":
        if cpu_threads is not None:
            out.update(OMP_NUM_THREADS=str(cpu_threads), MKL_NUM_THREADS=str(cpu_threads))
        # a CPU worker shares cores with training: busy-waiting OpenMP threads on an
        # oversubscribed core slow both sides many times over
        out.setdefault("OMP_WAIT_POLICY", os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))
    out.update(env or {})
    return out


def _torch_gpus() -> tuple[str, bool, int] | None:
    """This process's torch: its version, whether it is a GPU build, how many GPUs it
    sees; ``None`` when torch is not installed. Imports torch, so call it only for a
    GPU device."""
    if "torch" not in sys.modules and importlib.util.find_spec("torch") is None:
        return None
    import torch

    gpu_build = bool(getattr(torch.version, "cuda", None) or getattr(torch.version, "hip", None))
    return torch.__version__, gpu_build, (torch.cuda.device_count() if gpu_build else 0)


def unusable_gpus(device) -> str | None:
    """Why a worker on ``device`` could not use its GPUs, or ``None`` when it can (or
    when that cannot be known here).

    Asks torch, when it is installed (it is imported only for a GPU device): a CPU
    build of torch can use no GPU; without ``CUDA_VISIBLE_DEVICES`` in this process's
    environment, torch here sees the GPUs a worker can be given, so an index beyond
    them is refused too. With ``CUDA_VISIBLE_DEVICES`` set here, only the build is
    checked (a worker sets its own).

    Parameters
    ----------
    device : str or int
        See :func:`device_env`.

    Returns
    -------
    str or None
        A clause such as ``"torch here is the CPU-only build 2.13.0+cpu and can use no
        GPU"``.

    Raises
    ------
    ParameterError
        An invalid device (as :func:`device_env`).

    Examples
    --------
    >>> unusable_gpus("cpu") is None
    True
    """
    name, env = device_env(device)
    if name == "cpu":
        return None
    probe = _torch_gpus()
    if probe is None:
        return None
    version, gpu_build, count = probe
    if not gpu_build:
        return f"torch here is the CPU-only build {version} and can use no GPU"
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        return None
    ids = [int(i) for i in env["CUDA_VISIBLE_DEVICES"].split(",")]
    if count == 0:
        return "torch sees no GPU on this machine (no device or no driver)"
    if max(ids) >= count:
        return f"torch sees {count} GPU(s) on this machine, numbered 0 to {count - 1}"
    return None


def thread_cpu_waits(pid: int | None) -> dict[int, float]:
    """Seconds each thread of process ``pid`` has spent runnable but waiting for a CPU.

    Read from Linux's ``/proc/<pid>/task/<tid>/schedstat`` (its second field, in
    nanoseconds); empty where that is not available or the process has ended.
    """
    out: dict[int, float] = {}
    if pid is None:
        return out
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                out[int(tid)] = int(f.read().split()[1]) / 1e9
        except (OSError, IndexError, ValueError):
            continue  # the thread ended, or no scheduler statistics
    return out


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(1.0)
        if os.getppid() != parent_pid:
            os._exit(3)  # orphaned: the training process is gone


def _worker_main(conn, env: dict, nice: int, job_fn, parent_pid: int) -> None:
    """Entry point of a worker process."""
    os.environ.update(env)  # first: CUDA_VISIBLE_DEVICES before any CUDA import
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    lower_process_priority(nice)
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    try:
        fn = resolve_job_fn(job_fn)
    except BaseException:
        conn.send(("dead", traceback.format_exc()))
        return
    conn.send(("ready", os.getpid()))
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        msg = run_job(fn, job)
        try:
            conn.send(msg)
        except (EOFError, OSError):
            return
        except Exception:  # the result does not pickle
            conn.send(("error", job.job_id, traceback.format_exc(), msg[3]))


@dataclass(eq=False)
class LocalWorker:
    """One worker process on one device: the handle :class:`LocalProcesses` gives out.

    Attributes
    ----------
    device : str
        Normalised device name (:func:`device_env`).
    env : dict
        Environment variables set in the process before anything else runs.
    nice : int or 'idle'
        Niceness added to the process, or ``'idle'`` (``SCHED_IDLE``; see
        :func:`~cod_monitor.runtime.priority.lower_process_priority`).
    process : multiprocessing.Process or None
        None while not started.
    conn : multiprocessing.connection.Connection or None
        The parent's end of the pipe to the process.
    """

    device: str
    env: dict
    nice: int | str
    process: Any = None
    conn: Any = None

    @property
    def started(self) -> bool:
        """A process was started and not stopped since."""
        return self.process is not None

    @property
    def pid(self) -> int | None:
        """Process id, None while not started."""
        return None if self.process is None else self.process.pid

    @property
    def exitcode(self) -> int | None:
        """Exit code of an ended process, else None."""
        return None if self.process is None else self.process.exitcode

    def send(self, job) -> None:
        """Send a job; raises when it does not pickle or the pipe is closed."""
        self.conn.send(job)


class LocalProcesses:
    """Worker backend: spawn-started processes on this machine, one per device.

    A :class:`~cod_monitor.runtime.backend.WorkerBackend`.

    Parameters
    ----------
    job_fn : callable, str or None
        What the workers run (see :func:`~cod_monitor.runtime.worker.resolve_job_fn`).
    nice : int or 'idle', default 'idle'
        Niceness added to CPU workers, or ``'idle'``: the ``SCHED_IDLE`` policy
        (:func:`~cod_monitor.runtime.priority.lower_process_priority`).
    """

    def __init__(self, job_fn: Callable | str | None = None, *, nice: int | str = "idle"):
        self.job_fn = job_fn
        self.nice = check_worker_priority(type(self).__name__, "nice", nice)
        self._ctx = multiprocessing.get_context("spawn")
        self._wake_lock = threading.Lock()
        self._wake_r, self._wake_w = self._ctx.Pipe(duplex=False)

    def worker(self, device, *, cpu_threads: int | None = None, env: dict | None = None,
               owner: str = "LocalProcesses") -> LocalWorker:
        """The handle of a worker on `device` (not started).

        Parameters
        ----------
        device : str or int
            See :func:`device_env`.
        cpu_threads : int, optional
            ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` of a CPU worker.
        env : dict, optional
            Extra environment variables (they win over the defaults).
        owner : str
            Named in the error for an invalid device.

        Raises
        ------
        ParameterError
            An invalid device.
        """
        try:
            name, denv = device_env(device)
        except ParameterError:
            raise invalid(owner, "devices", "a sequence of 'cpu', 'cuda[:ids]' or GPU indices",
                          device) from None
        denv = worker_env(denv, cpu_threads=cpu_threads, env=env)
        return LocalWorker(name, denv, self.nice if name == "cpu" else 0)

    def open(self) -> None:
        """Nothing to prepare: processes start on this machine."""

    def close(self) -> None:
        """Nothing to release (every worker was stopped by :meth:`stop`)."""

    def send(self, w: LocalWorker, job) -> None:
        """Send a job to `w`'s process; raises when it does not pickle or the pipe is closed."""
        w.send(job)

    def start(self, w: LocalWorker) -> None:
        """Start `w`'s process; it reports ``("ready", pid)`` once it can take jobs."""
        parent, child = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(
            target=_worker_main,
            args=(child, w.env, w.nice, self.job_fn, os.getpid()),
            name=f"cod-eval-{w.device}",
            daemon=True,
        )
        proc.start()
        child.close()
        w.process, w.conn = proc, parent
        logger.debug("started evaluation worker pid %s on %s", proc.pid, w.device)

    def cpu_waits(self, w: LocalWorker) -> dict[int, float]:
        """Seconds each thread of ``w``'s process waited for a CPU (Linux
        ``/proc/<pid>/task/<tid>/schedstat``); empty elsewhere or once it ended."""
        return thread_cpu_waits(w.pid)

    def stop(self, w: LocalWorker, *, kill: bool) -> None:
        """Stop `w`'s process: at once (``kill``) or after its current job; idempotent."""
        if w.process is None:
            return
        if kill:
            w.process.kill()
        else:
            try:
                w.conn.send(None)
            except (OSError, EOFError):
                pass
            w.process.join(5.0)
            if w.process.is_alive():
                w.process.kill()
        w.process.join(5.0)
        try:
            w.conn.close()
        except OSError:  # pragma: no cover
            pass
        w.process, w.conn = None, None

    def wake(self) -> None:
        """Make a :meth:`wait` in progress return now (thread-safe)."""
        try:
            with self._wake_lock:
                self._wake_w.send_bytes(b"x")
        except OSError:  # pragma: no cover - closed at shutdown
            pass

    def wait(self, workers: Sequence[LocalWorker], timeout: float) -> list[tuple[LocalWorker, tuple]]:
        """Events of the started `workers`, waiting up to `timeout` s (or a :meth:`wake`).

        Returns
        -------
        list of (worker, event)
            In arrival order per worker; an ``("exit", why)`` event comes last for its
            worker (see the module docstring).
        """
        objs = {self._wake_r: None}
        for w in workers:
            if w.process is not None:
                objs[w.conn] = w
                objs[w.process.sentinel] = w
        events: list[tuple[LocalWorker, tuple]] = []
        exited: set = set()
        for obj in mp_wait(list(objs), timeout=timeout):
            w = objs[obj]
            if w is None:
                self._drain_wake()
                continue
            if id(w) in exited:
                continue  # already reported through its other handle
            try:
                while w.conn.poll():
                    events.append((w, w.conn.recv()))
                broken = False
            except (EOFError, OSError):
                broken = True
            if obj is w.conn:
                why = "pipe closed" if broken else None
            else:  # its sentinel: it exited, after sending what was read above
                why = None if w.process.is_alive() else "process exited"
            if why is not None:
                exited.add(id(w))
                events.append((w, ("exit", why)))
        return events

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.poll():
                self._wake_r.recv_bytes()
        except (EOFError, OSError):  # pragma: no cover
            pass
