"""The evaluation pool: one spawn-started worker process per held-out device.

A :class:`Job` is *(snapshot directory, evaluation set, evaluator config)*; a worker
turns it into an :class:`~cod_monitor.records.EvalResult` with
``cod_monitor.evaluators.make_evaluator(config).evaluate(snapshot, eval_set)``
(:func:`run_evaluation`), or with any picklable ``job_fn(snapshot, eval_set, config)``
given to the pool (tests and custom harnesses).

Guarantees
----------
* **Isolation.** Workers are started with the ``spawn`` method, so they share no
  state (and no CUDA context) with the training process. ``CUDA_VISIBLE_DEVICES`` is
  set in the worker's environment before anything else runs in it (torch initialises
  CUDA lazily, so this is before any CUDA call); ``"cpu"`` workers also hide every
  GPU and run at a lower priority (``os.nice``). Workers ignore ``SIGINT``, so
  Ctrl-C in the training terminal leaves the parent free to drain or cancel them, and
  exit on their own when the parent process dies.
* **Retries.** A job that raises is retried on a free worker; a worker that dies
  (segfault, OOM kill, ``SIGKILL``) or exceeds the per-job ``timeout`` is killed and
  restarted and its job retried. After ``max_retries`` retries the job is reported
  as a ``'failed'`` :class:`JobOutcome` with the last error; nothing is raised into
  the caller.
* **Bounded queue.** Jobs waiting for a worker are grouped (one group per checkpoint
  step); at most ``QueuePolicy.max_pending`` groups wait. When a new group would
  exceed that, the policy drops waiting groups (reported as ``'skipped'`` outcomes):

  ``'latest'``
      drop the oldest waiting groups: when evaluation falls behind, it skips ahead
      to the newest checkpoints (with ``max_pending=1`` it always evaluates the newest
      checkpoint next). Best for alerting: the freshest state of the run is judged.
  ``'every_nth'``
      thin the waiting groups to every ``n``-th one, counted back from the newest
      (which is always kept): the evaluated checkpoints stay spread over the whole
      run, with a spacing that grows the further evaluation falls behind. Best for
      a complete trajectory curve.

  Groups already running are never dropped. Waiting jobs are dispatched oldest first.

Lifecycle: ``EvalPool(...)`` → :meth:`~EvalPool.start` (idempotent; ``submit`` calls
it) → :meth:`~EvalPool.submit` jobs and collect :meth:`~EvalPool.poll` outcomes → 
:meth:`~EvalPool.close` (drain with a timeout, then stop the workers). A dispatcher
thread in the parent owns the workers; ``submit`` and ``poll`` only touch queues.
"""

from __future__ import annotations

import collections
import importlib
import logging
import multiprocessing
import os
import queue
import signal
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from multiprocessing.connection import wait as mp_wait
from typing import Any

__all__ = [
    "QUEUE_POLICIES",
    "EvalPool",
    "Job",
    "JobOutcome",
    "QueuePolicy",
    "device_env",
    "run_evaluation",
]

logger = logging.getLogger(__name__)

#: Names of the queue policies.
QUEUE_POLICIES = ("latest", "every_nth")

# consecutive start failures of one device's worker before the device is given up
_MAX_START_FAILURES = 5


@dataclass(frozen=True)
class Job:
    """One evaluation: a snapshot, an evaluation set and an evaluator config.

    Attributes
    ----------
    job_id : str
        Unique id (the monitor uses ``"<step>:<benchmark>"``).
    snapshot : str
        Checkpoint directory to evaluate.
    eval_set : EvalSet, str or dict
        The evaluation set, or a JSON-lines path, or ``EvalSet.from_jsonl`` keyword
        arguments (``{"path": ..., "stop": ...}``); it must pickle.
    config : dict
        Evaluator config for :func:`cod_monitor.evaluators.make_evaluator`.
    group : int or None
        Queue-policy group (the checkpoint step): a policy drops whole groups.
    attempt : int
        Attempts made so far (0 for a new job).
    """

    job_id: str
    snapshot: str
    eval_set: Any
    config: dict = field(default_factory=dict)
    group: int | None = None
    attempt: int = 0


@dataclass(frozen=True)
class JobOutcome:
    """What became of a job.

    Attributes
    ----------
    job : Job
    status : {'done', 'failed', 'skipped', 'cancelled'}
        ``'skipped'``: dropped by the queue policy; ``'cancelled'``: still unfinished
        when the pool closed (the monitor's journal keeps it pending).
    result : EvalResult or None
        Set when ``status == 'done'``.
    error : str or None
        Last error (a traceback, a timeout or a crash description).
    attempts : int
        Times the job was started.
    worker : str or None
        Device of the worker that produced the result.
    wall_s : float
        Wall time of the last attempt.
    """

    job: Job
    status: str
    result: Any = None
    error: str | None = None
    attempts: int = 0
    worker: str | None = None
    wall_s: float = 0.0


@dataclass(frozen=True)
class QueuePolicy:
    """What to do when evaluation falls behind the checkpoints (see the module docstring).

    Parameters
    ----------
    kind : {'latest', 'every_nth'}, default 'latest'
    max_pending : int, default 2
        Most checkpoint groups waiting for a worker.
    n : int, default 2
        Thinning factor of ``'every_nth'``.

    Examples
    --------
    >>> QueuePolicy.parse("every_nth:3")
    QueuePolicy(kind='every_nth', max_pending=2, n=3)
    """

    kind: str = "latest"
    max_pending: int = 2
    n: int = 2

    def __post_init__(self):
        if self.kind not in QUEUE_POLICIES:
            raise ValueError(
                f"The 'kind' parameter of QueuePolicy must be a str among {list(QUEUE_POLICIES)}. "
                f"Got {self.kind!r} instead."
            )
        for name, low in (("max_pending", 1), ("n", 2 if self.kind == "every_nth" else 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(
                    f"The {name!r} parameter of QueuePolicy must be an int in [{low}, inf). "
                    f"Got {v!r} instead."
                )

    @classmethod
    def parse(cls, policy) -> QueuePolicy:
        """A policy from a :class:`QueuePolicy`, ``'latest'``, ``'every_nth'`` or ``'every_nth:N'``."""
        if isinstance(policy, QueuePolicy):
            return policy
        if isinstance(policy, str):
            kind, _, n = policy.partition(":")
            if n:
                try:
                    return cls(kind=kind, n=int(n))
                except ValueError:
                    pass
            else:
                return cls(kind=kind)
        raise ValueError(
            "The 'queue_policy' parameter must be a QueuePolicy or a str among "
            f"{{'latest', 'every_nth', 'every_nth:<n>'}}. Got {policy!r} instead."
        )


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

    Examples
    --------
    >>> device_env("cuda:1")
    ('cuda:1', {'CUDA_VISIBLE_DEVICES': '1', 'COD_MONITOR_DEVICE': 'cuda'})
    """
    if isinstance(device, bool):
        raise ValueError(f"device should be 'cpu', 'cuda[:ids]' or a GPU index, got {device!r}")
    if isinstance(device, int):
        device = f"cuda:{device}"
    dev = str(device).strip().lower()
    if dev == "cpu":
        return "cpu", {"CUDA_VISIBLE_DEVICES": "", "COD_MONITOR_DEVICE": "cpu"}
    if dev == "cuda":
        dev = "cuda:0"
    ids = dev.removeprefix("cuda:")
    parts = [p.strip() for p in ids.split(",")]
    if not parts or not all(p.isdigit() for p in parts):
        raise ValueError(f"device should be 'cpu', 'cuda[:ids]' or a GPU index, got {device!r}")
    ids = ",".join(parts)
    return f"cuda:{ids}", {"CUDA_VISIBLE_DEVICES": ids, "COD_MONITOR_DEVICE": "cuda"}


# ------------------------------------------------------------------ worker side

_EVALUATORS: dict = {}  # per worker process: evaluator per config (engines are reused)
_EVAL_SETS: dict = {}


def _load_eval_set(spec):
    from cod_monitor.evaluators import EvalSet

    if isinstance(spec, EvalSet):
        return spec
    key = repr(sorted(spec.items())) if isinstance(spec, dict) else os.fspath(spec)
    if key not in _EVAL_SETS:
        kwargs = dict(spec) if isinstance(spec, dict) else {"path": spec}
        _EVAL_SETS[key] = EvalSet.from_jsonl(kwargs.pop("path"), **kwargs)
    return _EVAL_SETS[key]


def run_evaluation(snapshot: str, eval_set, config: dict):
    """The default job function: build the evaluator from ``config`` and evaluate.

    Runs inside a worker process. The evaluator is built once per distinct config and
    reused for later jobs (so an engine or a tokenizer is loaded once). An HF config
    without a ``device`` gets the worker's device.

    Parameters
    ----------
    snapshot : str
        Checkpoint directory.
    eval_set : EvalSet, str or dict
        See :attr:`Job.eval_set`.
    config : dict
        Evaluator config for :func:`cod_monitor.evaluators.make_evaluator`.

    Returns
    -------
    EvalResult
    """
    from cod_monitor.evaluators import make_evaluator

    cfg = dict(config)
    if cfg.get("backend", "hf") == "hf" and "device" not in cfg:
        cfg["device"] = os.environ.get("COD_MONITOR_DEVICE", "cpu")
    key = repr(sorted(cfg.items(), key=lambda kv: kv[0]))
    evaluator = _EVALUATORS.get(key)
    if evaluator is None:
        evaluator = _EVALUATORS[key] = make_evaluator(cfg)
    return evaluator.evaluate(snapshot, _load_eval_set(eval_set))


def _resolve_job_fn(job_fn):
    if job_fn is None:
        return run_evaluation
    if isinstance(job_fn, str):
        module, _, name = job_fn.partition(":")
        obj = importlib.import_module(module)
        for part in name.split("."):
            obj = getattr(obj, part)
        return obj
    return job_fn


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(1.0)
        if os.getppid() != parent_pid:
            os._exit(3)  # orphaned: the training process is gone


def _worker_main(conn, env: dict, nice: int, job_fn, parent_pid: int) -> None:
    """Entry point of a worker process."""
    os.environ.update(env)  # first: CUDA_VISIBLE_DEVICES before any CUDA import
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if nice:
        try:
            os.nice(nice)
        except OSError:  # pragma: no cover - not permitted
            pass
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    try:
        fn = _resolve_job_fn(job_fn)
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
        t0 = time.perf_counter()
        try:
            result = fn(job.snapshot, job.eval_set, job.config)
            msg = ("ok", job.job_id, result, time.perf_counter() - t0)
        except BaseException:
            msg = ("error", job.job_id, traceback.format_exc(), time.perf_counter() - t0)
        try:
            conn.send(msg)
        except (EOFError, OSError):
            return
        except Exception:  # the result does not pickle
            conn.send(("error", job.job_id, traceback.format_exc(), time.perf_counter() - t0))


# ------------------------------------------------------------------ parent side


class _Worker:
    def __init__(self, device: str, env: dict):
        self.device = device
        self.env = env
        self.process = None
        self.conn = None
        self.ready = False
        self.job: Job | None = None
        self.started_at = 0.0  # when the current job was sent
        self.restarts = 0
        self.start_failures = 0
        self.not_before = 0.0  # restart back-off
        self.dead = False  # given up


class EvalPool:
    """Evaluation workers on held-out devices (see the module docstring).

    Parameters
    ----------
    devices : sequence of str or int, default ('cpu',)
        One worker per entry (see :func:`device_env`); repeat ``'cpu'`` for several
        CPU workers.
    job_fn : callable or str, optional
        ``job_fn(snapshot, eval_set, config) -> EvalResult`` run in the workers; a
        picklable module-level function or a ``'module:function'`` string. Default
        :func:`run_evaluation`.
    timeout : float, optional
        Seconds one attempt may take before its worker is killed; ``None``: no limit.
    max_retries : int, default 2
        Retries after the first attempt before a job is reported ``'failed'``.
    queue_policy : QueuePolicy or str, default 'latest'
    nice : int, default 10
        Niceness added to CPU workers.
    cpu_threads : int, optional
        ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` of CPU workers (e.g. 1 next to a CPU
        training process).
    env : dict, optional
        Extra environment variables of every worker (``HF_HUB_DISABLE_PROGRESS_BARS``
        is set to 1 unless the parent sets it).
    on_outcome : callable, optional
        Called with each :class:`JobOutcome` on the dispatcher thread (must not block);
        outcomes are also queued for :meth:`poll`.

    Attributes
    ----------
    stats : dict
        Counters: ``submitted``, ``done``, ``failed``, ``skipped``, ``retries``,
        ``restarts``, ``timeouts``, ``crashes``.

    Examples
    --------
    >>> pool = EvalPool(["cpu"], job_fn="mypkg.jobs:fake_eval", timeout=60)  # doctest: +SKIP
    >>> pool.submit(Job("10:gsm8k", "/snap/10", "gsm8k.jsonl", group=10))  # doctest: +SKIP
    >>> pool.close(timeout=120); [o.status for o in pool.poll()]  # doctest: +SKIP
    ['done']
    """

    def __init__(
        self,
        devices: Sequence = ("cpu",),
        *,
        job_fn: Callable | str | None = None,
        timeout: float | None = None,
        max_retries: int = 2,
        queue_policy: QueuePolicy | str = "latest",
        nice: int = 10,
        cpu_threads: int | None = None,
        env: dict | None = None,
        on_outcome: Callable[[JobOutcome], None] | None = None,
    ):
        if isinstance(devices, (str, int)):
            devices = [devices]
        if not devices:
            raise ValueError("The 'devices' parameter of EvalPool must be a non-empty sequence. Got [] instead.")
        if timeout is not None and not timeout > 0:
            raise ValueError(
                f"The 'timeout' parameter of EvalPool must be a float in (0, inf) or None. Got {timeout!r} instead."
            )
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(
                f"The 'max_retries' parameter of EvalPool must be an int in [0, inf). Got {max_retries!r} instead."
            )
        self.policy = QueuePolicy.parse(queue_policy)
        self.timeout = timeout
        self.max_retries = max_retries
        self.job_fn = job_fn
        self.nice = int(nice)
        self.on_outcome = on_outcome
        self._workers = []
        for d in devices:
            name, denv = device_env(d)
            # progress bars of model loading would interleave with the training logs
            denv = {"HF_HUB_DISABLE_PROGRESS_BARS": os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS", "1"),
                    **denv}
            if name == "cpu" and cpu_threads is not None:
                denv.update(OMP_NUM_THREADS=str(cpu_threads), MKL_NUM_THREADS=str(cpu_threads))
            if name == "cpu":
                # a CPU worker shares cores with training: busy-waiting OpenMP threads
                # on an oversubscribed core slow both sides many times over
                denv.setdefault("OMP_WAIT_POLICY",
                                os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))
            denv.update(env or {})
            self._workers.append(_Worker(name, denv))
        self._ctx = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._pending: collections.deque[Job] = collections.deque()
        self._outcomes: queue.Queue = queue.Queue()
        self._wake_r, self._wake_w = self._ctx.Pipe(duplex=False)
        self._thread = None
        self._stopping = False
        self._deadline = None
        self._closed = threading.Event()
        self.stats = collections.Counter(
            submitted=0, done=0, failed=0, skipped=0, retries=0, restarts=0, timeouts=0, crashes=0
        )

    # ---------------------------------------------------------------- public

    def start(self) -> EvalPool:
        """Start the dispatcher thread (workers start on it); idempotent."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="cod-pool", daemon=True)
                self._thread.start()
        return self

    def submit(self, job: Job) -> None:
        """Queue a job; never blocks. Raises ``RuntimeError`` after :meth:`close`."""
        self.start()
        dropped = []
        with self._lock:
            if self._stopping:
                raise RuntimeError("EvalPool is closed")
            self.stats["submitted"] += 1
            dropped = self._admit(job)
        for j in dropped:
            self._emit(JobOutcome(j, "skipped", error=f"dropped by queue policy {self.policy.kind!r}",
                                  attempts=j.attempt))
        self._wake()

    def poll(self) -> list[JobOutcome]:
        """Outcomes that arrived since the last call (never blocks)."""
        out = []
        while True:
            try:
                out.append(self._outcomes.get_nowait())
            except queue.Empty:
                return out

    @property
    def n_pending(self) -> int:
        """Jobs waiting for a worker."""
        with self._lock:
            return len(self._pending)

    @property
    def n_running(self) -> int:
        """Jobs on a worker now."""
        with self._lock:
            return sum(w.job is not None for w in self._workers)

    @property
    def idle(self) -> bool:
        """No job waiting or running."""
        with self._lock:
            return not self._pending and all(w.job is None for w in self._workers)

    def worker_pids(self) -> list[int | None]:
        """Process id of every worker (``None`` while not started)."""
        with self._lock:
            return [w.process.pid if w.process is not None else None for w in self._workers]

    def running_jobs(self) -> dict:
        """Job id -> pid of the worker running it."""
        with self._lock:
            return {w.job.job_id: w.process.pid for w in self._workers
                    if w.job is not None and w.process is not None}

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no job is waiting or running; returns False on timeout."""
        end = None if timeout is None else time.monotonic() + timeout
        while not self.idle:
            if end is not None and time.monotonic() > end:
                return False
            time.sleep(0.02)
        return True

    def close(self, timeout: float | None = None, *, cancel: bool = False) -> None:
        """Drain the queue (up to ``timeout`` seconds), then stop every worker.

        Jobs still waiting or running at the deadline (or at once with
        ``cancel=True``) are reported as ``'cancelled'`` outcomes. Idempotent.
        """
        with self._lock:
            started = self._thread is not None
            if not self._stopping:
                self._stopping = True
                now = time.monotonic()
                self._deadline = now if cancel else (None if timeout is None else now + timeout)
        if not started:
            self._closed.set()
            self._cancel_all("pool closed before it started")
            return
        self._wake()
        self._thread.join()

    def __enter__(self) -> EvalPool:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------- internals

    def _emit(self, outcome: JobOutcome) -> None:
        self.stats[outcome.status] += 1
        self._outcomes.put(outcome)
        if self.on_outcome is not None:
            try:
                self.on_outcome(outcome)
            except Exception:  # pragma: no cover - the callback's bug, not ours
                logger.warning("EvalPool on_outcome callback raised", exc_info=True)

    def _wake(self) -> None:
        try:
            with self._lock:
                self._wake_w.send_bytes(b"x")
        except OSError:  # pragma: no cover - closed at shutdown
            pass

    def _admit(self, job: Job) -> list[Job]:
        """Add a job under the queue policy; returns dropped jobs. Holds the lock."""
        groups = list(dict.fromkeys(j.group for j in self._pending))
        if job.group not in groups and len(groups) >= self.policy.max_pending:
            if self.policy.kind == "latest":
                drop = set(groups[: len(groups) - self.policy.max_pending + 1])
            else:  # every_nth: keep every n-th waiting group counting back from the newest
                all_groups = groups + [job.group]
                keep = {g for i, g in enumerate(reversed(all_groups)) if i % self.policy.n == 0}
                drop = set(groups) - keep
                if len(all_groups) - len(drop) > self.policy.max_pending:
                    waiting = [g for g in groups if g not in drop]
                    drop |= set(waiting[: len(waiting) + 1 - self.policy.max_pending])
            dropped = [j for j in self._pending if j.group in drop]
            self._pending = collections.deque(j for j in self._pending if j.group not in drop)
        else:
            dropped = []
        self._pending.append(job)
        return dropped

    def _cancel_all(self, why: str) -> None:
        with self._lock:
            jobs = list(self._pending)
            self._pending.clear()
            for w in self._workers:
                if w.job is not None:
                    jobs.append(w.job)
                    w.job = None
        for j in jobs:
            self._emit(JobOutcome(j, "cancelled", error=why, attempts=j.attempt))

    def _start_worker(self, w: _Worker) -> None:
        parent, child = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(
            target=_worker_main,
            args=(child, w.env, self.nice if w.device == "cpu" else 0, self.job_fn, os.getpid()),
            name=f"cod-eval-{w.device}",
            daemon=True,
        )
        proc.start()
        child.close()
        w.process, w.conn, w.ready = proc, parent, False
        logger.debug("started evaluation worker pid %s on %s", proc.pid, w.device)

    def _stop_worker(self, w: _Worker, *, kill: bool) -> None:
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
        w.process, w.conn, w.ready = None, None, False

    def _retry_or_fail(self, job: Job, error: str, worker: str | None, wall: float) -> None:
        attempts = job.attempt  # already counted when sent
        if attempts <= self.max_retries and not self._stopping_now():
            self.stats["retries"] += 1
            logger.debug("retrying evaluation job %s (attempt %d failed: %s)",
                         job.job_id, attempts, error.strip().splitlines()[-1] if error else "")
            with self._lock:
                self._pending.appendleft(job)
        elif attempts <= self.max_retries:
            self._emit(JobOutcome(job, "cancelled", error=error, attempts=attempts, worker=worker,
                                  wall_s=wall))
        else:
            logger.debug("evaluation job %s failed after %d attempts", job.job_id, attempts)
            self._emit(JobOutcome(job, "failed", error=error, attempts=attempts, worker=worker,
                                  wall_s=wall))

    def _stopping_now(self) -> bool:
        return self._stopping and self._deadline is not None and time.monotonic() >= self._deadline

    def _on_death(self, w: _Worker, why: str) -> None:
        """A worker exited or broke its pipe: retry its job, schedule a restart."""
        job, w.job = w.job, None
        code = w.process.exitcode if w.process is not None else None
        was_ready = w.ready
        self._stop_worker(w, kill=True)
        if job is not None:
            self.stats["crashes"] += 1
            detail = f"evaluation worker on {w.device} died ({why}, exit code {code}) while running the job"
            logger.warning("%s %s; restarting it", detail, job.job_id)
            self._retry_or_fail(job, detail, w.device, time.monotonic() - w.started_at)
        if was_ready:
            w.start_failures = 0
        else:
            w.start_failures += 1
            w.not_before = time.monotonic() + min(0.5 * 2 ** w.start_failures, 30.0)
            if w.start_failures >= _MAX_START_FAILURES:
                w.dead = True
                logger.error("evaluation worker on %s failed to start %d times; giving up on it",
                             w.device, w.start_failures)

    def _handle(self, w: _Worker, msg) -> None:
        kind = msg[0]
        if kind == "ready":
            w.ready = True
            w.start_failures = 0
            return
        if kind == "dead":
            logger.error("evaluation worker on %s could not start:\n%s", w.device, msg[1])
            return
        _, job_id, payload, wall = msg
        job, w.job = w.job, None
        if job is None or job.job_id != job_id:  # pragma: no cover - protocol guard
            logger.warning("evaluation worker on %s returned an unexpected job %s", w.device, job_id)
            return
        if kind == "ok":
            logger.debug("evaluation job %s finished on %s in %.2fs", job_id, w.device, wall)
            self._emit(JobOutcome(job, "done", result=payload, attempts=job.attempt,
                                  worker=w.device, wall_s=wall))
        else:
            self._retry_or_fail(job, payload, w.device, wall)

    def _dispatch(self) -> None:
        now = time.monotonic()
        for w in self._workers:
            if w.dead:
                continue
            if w.process is None:
                if now >= w.not_before and (self._pending or not self._stopping):
                    if w.restarts or w.start_failures:
                        self.stats["restarts"] += 1
                    w.restarts += 1
                    self._start_worker(w)
                continue
            if w.ready and w.job is None:
                with self._lock:
                    job = self._pending.popleft() if self._pending else None
                if job is None:
                    continue
                job = replace(job, attempt=job.attempt + 1)
                w.job, w.started_at = job, time.monotonic()
                try:
                    w.conn.send(job)
                    logger.debug("evaluation job %s sent to %s (attempt %d)", job.job_id, w.device,
                                 job.attempt)
                except Exception as exc:  # a job that does not pickle fails at once
                    w.job = None
                    self._emit(JobOutcome(job, "failed", error=f"could not send the job: {exc!r}",
                                          attempts=job.attempt, worker=w.device))
        if all(w.dead for w in self._workers):
            self._cancel_dead()

    def _cancel_dead(self) -> None:
        with self._lock:
            jobs = list(self._pending)
            self._pending.clear()
        for j in jobs:
            self._emit(JobOutcome(j, "failed", attempts=j.attempt,
                                  error="no evaluation worker could start on any device"))

    def _check_timeouts(self) -> None:
        if self.timeout is None:
            return
        now = time.monotonic()
        for w in self._workers:
            if w.job is not None and now - w.started_at > self.timeout:
                self.stats["timeouts"] += 1
                job, w.job = w.job, None
                logger.warning("evaluation job %s timed out after %.1fs on %s; killing the worker",
                               job.job_id, now - w.started_at, w.device)
                self._stop_worker(w, kill=True)
                self._retry_or_fail(job, f"timed out after {self.timeout:g}s on {w.device}",
                                    w.device, now - w.started_at)

    def _run(self) -> None:
        try:
            self._loop()
        except Exception:  # pragma: no cover - a bug here must not kill training
            logger.exception("evaluation pool dispatcher crashed")
        finally:
            for w in self._workers:
                try:
                    self._stop_worker(w, kill=self._stopping_now())
                except Exception:  # pragma: no cover
                    pass
            self._cancel_all("evaluation pool closed before the job finished")
            self._closed.set()

    def _loop(self) -> None:
        while True:
            with self._lock:
                busy = bool(self._pending) or any(w.job is not None for w in self._workers)
                stopping = self._stopping
            if stopping and (not busy or self._stopping_now() or all(w.dead for w in self._workers)):
                return
            self._dispatch()
            objs = {self._wake_r: None}
            for w in self._workers:
                if w.process is not None:
                    objs[w.conn] = w
                    objs[w.process.sentinel] = w
            wait_s = 0.5
            if self.timeout is not None:
                running = [w.started_at for w in self._workers if w.job is not None]
                if running:
                    wait_s = max(0.0, min(wait_s, min(running) + self.timeout - time.monotonic()))
            if self._deadline is not None:
                wait_s = max(0.0, min(wait_s, self._deadline - time.monotonic()))
            ready = mp_wait(list(objs), timeout=wait_s)
            for obj in ready:
                if obj is self._wake_r:
                    try:
                        while self._wake_r.poll():
                            self._wake_r.recv_bytes()
                    except (EOFError, OSError):  # pragma: no cover
                        pass
                    continue
                w = objs[obj]
                if w.process is None:
                    continue  # already handled through its other handle
                if obj is w.conn:
                    try:
                        while w.conn is not None and w.conn.poll():
                            self._handle(w, w.conn.recv())
                    except (EOFError, OSError):
                        self._on_death(w, "pipe closed")
                else:
                    # drain what it sent before exiting, then treat the exit
                    try:
                        while w.conn is not None and w.conn.poll():
                            self._handle(w, w.conn.recv())
                    except (EOFError, OSError):
                        pass
                    if w.process is not None and not w.process.is_alive():
                        self._on_death(w, "process exited")
            self._check_timeouts()
