"""The evaluation pool: the bookkeeping of jobs over a worker backend.

:class:`EvalPool` keeps the queue and its policy, the attempts, the timeouts and the
outcomes of :class:`~cod_monitor.runtime.jobs.Job` objects; a worker backend
(:class:`~cod_monitor.runtime.backend.WorkerBackend`) runs them:
:class:`~cod_monitor.runtime.local.LocalProcesses` (one spawn-started process per
held-out device, the default) or :class:`~cod_monitor.runtime.ray_backend.RayActors`
(one Ray actor per slot, :class:`~cod_monitor.runtime.ray_backend.RayEvalPool`). The
guarantees below hold for both: the backend starts, feeds and stops workers, and
every decision is taken here. A worker turns a job into an
:class:`~cod_monitor.records.EvalResult` with
``cod_monitor.evaluators.make_evaluator(config).evaluate(snapshot, eval_set)``
(:func:`~cod_monitor.runtime.worker.run_evaluation`), or with any picklable
``job_fn(snapshot, eval_set, config)`` given to the pool (tests and custom harnesses).

Guarantees
----------
* **Isolation.** See :mod:`~cod_monitor.runtime.local`: spawned processes,
  ``CUDA_VISIBLE_DEVICES`` set before anything runs, low-priority CPU workers that ignore
  ``SIGINT`` and exit with their parent (Ray actors: see
  :mod:`~cod_monitor.runtime.ray_backend`).
* **Retries.** A job that raises is retried on a free worker; a worker that dies
  (segfault, OOM kill, ``SIGKILL``) or exceeds the per-attempt time limit is killed
  and restarted and its job retried, and the lost attempt is reported at once
  (:class:`~cod_monitor.runtime.jobs.AttemptFailure`, to ``on_attempt_failure``).
  After ``max_retries`` retries the job is reported as a ``'failed'``
  :class:`JobOutcome` with the last error; nothing is raised into the caller. A
  configuration error (one of :data:`~cod_monitor.runtime.worker.PERMANENT_ERRORS`:
  an invalid evaluator parameter or config key, a missing extra, a broken evaluation
  set) is never retried: the job is reported ``'failed'`` after its one attempt.
* **A finite time limit by default.** With ``timeout='auto'`` an attempt may take
  :data:`AUTO_TIMEOUT_FACTOR` times the slowest attempt that succeeded so far, and
  never less than ``timeout_floor`` (:data:`AUTO_TIMEOUT_FLOOR_S` by default, also the
  limit before any attempt has succeeded): a hung evaluation is found without any
  setting, and a slow but healthy one is not cut short. Time a local worker's threads
  spend waiting for a CPU (Linux scheduler statistics) is not counted: a low-priority
  worker kept off the cores by training is slow, not hung. ``timeout=None`` turns the
  limit off (and is warned about when the pool starts).
* **Bounded queue.** Jobs waiting for a worker are grouped (one group per checkpoint
  step); at most ``QueuePolicy.max_pending`` groups wait, and the policy drops
  waiting groups (reported as ``'skipped'`` outcomes) to make room
  (:class:`~cod_monitor.runtime.jobs.QueuePolicy`). Groups already running are never
  dropped. Waiting jobs are dispatched oldest first.

Lifecycle: ``EvalPool(...)`` → :meth:`~EvalPool.start` (idempotent; ``submit`` calls
it) → :meth:`~EvalPool.submit` jobs and collect :meth:`~EvalPool.poll` outcomes →
:meth:`~EvalPool.close` (drain with a timeout, then stop the workers). A dispatcher
thread in the parent owns the workers; ``submit`` and ``poll`` only touch queues.
"""

from __future__ import annotations

import collections
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from cod_monitor._validation import check_int, check_real, invalid
from cod_monitor.exceptions import ParameterError
from cod_monitor.runtime.backend import WorkerBackend
from cod_monitor.runtime.jobs import AttemptFailure, Job, JobOutcome, QueuePolicy
from cod_monitor.runtime.local import LocalProcesses
from cod_monitor.runtime.priority import check_worker_priority

__all__ = ["AUTO_TIMEOUT_FACTOR", "AUTO_TIMEOUT_FLOOR_S", "EvalPool"]

logger = logging.getLogger(__name__)

#: With ``timeout='auto'``, an attempt may take this many times the slowest attempt
#: that succeeded so far: an evaluation's time varies with the load of its machine,
#: not by this much.
AUTO_TIMEOUT_FACTOR = 5.0

#: With ``timeout='auto'``, the least time an attempt is given, and its limit before
#: any attempt has succeeded (the first one also builds the evaluator and loads
#: the model): five minutes.
AUTO_TIMEOUT_FLOOR_S = 300.0

# consecutive start failures of one device's worker before the device is given up
_MAX_START_FAILURES = 5


class _Slot:
    """The bookkeeping of one worker: its backend handle, its job, its restarts."""

    def __init__(self, handle):
        self.handle = handle
        self.ready = False
        self.job: Job | None = None
        self.started_at = 0.0  # when the current job was sent
        self.waits_at_start: dict[int, float] = {}  # its threads' CPU waits then
        self.limit: float | None = None  # its time limit, fixed when it was sent
        self.restarts = 0
        self.start_failures = 0
        self.not_before = 0.0  # restart back-off
        self.dead = False  # given up
        self.start_error: str | None = None  # why it last failed to start

    @property
    def device(self) -> str:
        """Where the worker runs (a Ray actor's node is known once it is ready)."""
        return self.handle.device


class EvalPool:
    """Evaluation workers on held-out devices (see the module docstring).

    Parameters
    ----------
    devices : sequence of str or int, default ('cpu',)
        One worker per entry, in the backend's terms (local processes:
        :func:`~cod_monitor.runtime.local.device_env`; Ray actors:
        :func:`~cod_monitor.runtime.ray_backend.ray_device`); repeat ``'cpu'`` for
        several CPU workers.
    job_fn : callable or str, optional
        ``job_fn(snapshot, eval_set, config) -> EvalResult`` run in the workers; a
        picklable module-level function or a ``'module:function'`` string. Default
        :func:`~cod_monitor.runtime.worker.run_evaluation`. With a ``backend``, give
        it to the backend instead.
    timeout : float, 'auto' or None, default 'auto'
        Seconds one attempt may take before its worker is killed, not counting the
        time its worker's threads waited for a CPU (local workers on Linux). ``'auto'``:
        :data:`AUTO_TIMEOUT_FACTOR` times the slowest successful attempt so far (see
        :meth:`record_duration`), at least ``timeout_floor``. ``None``: no limit (a
        hung evaluation then holds its worker for ever; warned about at
        :meth:`start`).
    timeout_floor : float, default AUTO_TIMEOUT_FLOOR_S
        Seconds: the least limit of ``timeout='auto'``, and its limit before any
        attempt has succeeded. Raise it when loading the model alone takes minutes.
    max_retries : int, default 2
        Retries after the first attempt before a job is reported ``'failed'``
        (configuration errors are never retried).
    queue_policy : QueuePolicy or str, default 'latest'
    nice : int or 'idle', default 'idle'
        Niceness added to CPU workers, or ``'idle'``: the ``SCHED_IDLE`` policy, so
        that they run only on CPU time training leaves unused
        (:func:`~cod_monitor.runtime.priority.lower_process_priority`).
    cpu_threads : int, optional
        ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` of CPU workers (e.g. 1 next to a CPU
        training process).
    env : dict, optional
        Extra environment variables of every worker (``HF_HUB_DISABLE_PROGRESS_BARS``
        is set to 1 unless the parent sets it).
    on_outcome : callable, optional
        Called with each :class:`JobOutcome` on the dispatcher thread (must not block);
        outcomes are also queued for :meth:`poll`.
    on_attempt_failure : callable, optional
        Called with an :class:`~cod_monitor.runtime.jobs.AttemptFailure` on the
        dispatcher thread (must not block) each time an attempt's worker is lost: it
        timed out or died.
    backend : WorkerBackend, optional
        What runs the workers; default ``LocalProcesses(job_fn, nice=nice)``.
        :class:`~cod_monitor.runtime.ray_backend.RayEvalPool` passes a
        :class:`~cod_monitor.runtime.ray_backend.RayActors`.

    Raises
    ------
    ParameterError
        An empty or invalid ``devices``, a bad ``timeout``, ``timeout_floor``,
        ``max_retries`` or ``queue_policy``, or a ``job_fn`` given beside a
        ``backend``.

    Attributes
    ----------
    stats : dict
        Counters: ``submitted``, ``done``, ``failed``, ``skipped``, ``retries``,
        ``restarts``, ``timeouts``, ``crashes``.
    attempt_timeout : float or None
        The time limit of an attempt sent now (see ``timeout``).

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
        timeout: float | str | None = "auto",
        timeout_floor: float = AUTO_TIMEOUT_FLOOR_S,
        max_retries: int = 2,
        queue_policy: QueuePolicy | str = "latest",
        nice: int | str = "idle",
        cpu_threads: int | None = None,
        env: dict | None = None,
        on_outcome: Callable[[JobOutcome], None] | None = None,
        on_attempt_failure: Callable[[AttemptFailure], None] | None = None,
        backend: WorkerBackend | None = None,
    ):
        owner = type(self).__name__
        if isinstance(devices, (str, int)):
            devices = [devices]
        if not devices:
            raise invalid(owner, "devices", "a non-empty sequence", devices)
        self.timeout = check_timeout(owner, timeout)
        self.timeout_floor = check_real(owner, "timeout_floor", timeout_floor, 0.0)
        self.max_retries = check_int(owner, "max_retries", max_retries, 0)
        self.policy = QueuePolicy.parse(queue_policy)
        self.job_fn = job_fn
        self.nice = check_worker_priority(owner, "nice", nice)
        self.on_outcome = on_outcome
        self.on_attempt_failure = on_attempt_failure
        self._slowest = 0.0  # the longest successful attempt so far (seconds)
        if backend is None:
            backend = LocalProcesses(job_fn, nice=self.nice)
        elif job_fn is not None:
            raise invalid(owner, "job_fn", "None when a backend is given", job_fn,
                          "Give the job function to the backend, e.g. RayActors(job_fn=...).")
        self._backend = backend
        self._workers = [_Slot(self._backend.worker(d, cpu_threads=cpu_threads, env=env, owner=owner))
                         for d in devices]
        self._slot_of = {id(w.handle): w for w in self._workers}
        self._lock = threading.Lock()
        self._pending: collections.deque[Job] = collections.deque()
        self._outcomes: queue.Queue = queue.Queue()
        self._thread = None
        self._stopping = False
        self._deadline = None
        self._closed = threading.Event()
        self.stats = collections.Counter(
            submitted=0, done=0, failed=0, skipped=0, retries=0, restarts=0, timeouts=0, crashes=0
        )

    # ---------------------------------------------------------------- public

    def start(self) -> EvalPool:
        """Start the dispatcher thread (workers start on it); idempotent.

        With ``timeout=None`` a warning says, once, that a hung evaluation will not be
        detected.
        """
        with self._lock:
            if self._thread is not None:
                return self
            self._thread = threading.Thread(target=self._run, name="cod-pool", daemon=True)
            self._thread.start()
        if self.timeout is None:
            logger.warning(
                "EvalPool runs with timeout=None: an evaluation that hangs holds its worker "
                "for ever and is never reported. Leave timeout='auto' (the default: %g x the "
                "slowest evaluation so far, at least %g s) or give a number of seconds.",
                AUTO_TIMEOUT_FACTOR, self.timeout_floor)
        return self

    @property
    def attempt_timeout(self) -> float | None:
        """The time limit of an attempt sent now, in seconds (``None``: no limit)."""
        if self.timeout != "auto":
            return self.timeout
        return max(self.timeout_floor, AUTO_TIMEOUT_FACTOR * self._slowest)

    def record_duration(self, seconds: float) -> None:
        """Count an earlier successful attempt of this run (e.g. from a resumed
        journal) in the ``'auto'`` time limit."""
        if seconds is not None and math.isfinite(seconds) and seconds > self._slowest:
            self._slowest = float(seconds)

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
        self._backend.wake()

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
            return [w.handle.pid for w in self._workers]

    def running_jobs(self) -> dict:
        """Job id -> pid of the worker running it."""
        with self._lock:
            return {w.job.job_id: w.handle.pid for w in self._workers
                    if w.job is not None and w.handle.started}

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
        self._backend.wake()
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

    def _admit(self, job: Job) -> list[Job]:
        """Add a job under the queue policy; returns dropped jobs. Holds the lock."""
        kept, dropped = self.policy.admit(self._pending, job)
        self._pending = collections.deque(kept)
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

    def _stop_worker(self, w: _Slot, *, kill: bool) -> None:
        self._backend.stop(w.handle, kill=kill)
        w.ready = False

    def _retry_or_fail(self, job: Job, error: str, worker: str | None, wall: float) -> bool:
        """Queue ``job`` again, or report it failed (cancelled when closing); whether it
        was queued again."""
        attempts = job.attempt  # already counted when sent
        if attempts <= self.max_retries and not self._stopping_now():
            self.stats["retries"] += 1
            logger.debug("retrying evaluation job %s (attempt %d failed: %s)",
                         job.job_id, attempts, error.strip().splitlines()[-1] if error else "")
            with self._lock:
                self._pending.appendleft(job)
            return True
        if attempts <= self.max_retries:
            self._emit(JobOutcome(job, "cancelled", error=error, attempts=attempts, worker=worker,
                                  wall_s=wall))
        else:
            logger.debug("evaluation job %s failed after %d attempts", job.job_id, attempts)
            self._emit(JobOutcome(job, "failed", error=error, attempts=attempts, worker=worker,
                                  wall_s=wall))
        return False

    def _lost_attempt(self, job: Job, kind: str, error: str, worker: str, wall: float) -> None:
        """Retry (or fail) the job of a lost worker, and report the lost attempt."""
        retried = self._retry_or_fail(job, error, worker, wall)
        if self.on_attempt_failure is None:
            return
        try:
            self.on_attempt_failure(AttemptFailure(job, kind, error, worker, wall, retried))
        except Exception:  # pragma: no cover - the callback's bug, not ours
            logger.warning("EvalPool on_attempt_failure callback raised", exc_info=True)

    def _stopping_now(self) -> bool:
        return self._stopping and self._deadline is not None and time.monotonic() >= self._deadline

    def _on_death(self, w: _Slot, why: str) -> None:
        """A worker exited or broke its pipe: retry its job, schedule a restart."""
        job, w.job = w.job, None
        code = w.handle.exitcode
        was_ready = w.ready
        self._stop_worker(w, kill=True)
        if job is not None:
            self.stats["crashes"] += 1
            how = why if code is None else f"{why}, exit code {code}"  # Ray gives no code
            detail = f"evaluation worker on {w.device} died ({how}) while running the job"
            logger.warning("%s %s; restarting it", detail, job.job_id)
            self._lost_attempt(job, "crash", detail, w.device, time.monotonic() - w.started_at)
        if was_ready:
            w.start_failures = 0
        else:
            w.start_failures += 1
            w.not_before = time.monotonic() + min(0.5 * 2 ** w.start_failures, 30.0)
            if w.start_failures >= _MAX_START_FAILURES:
                w.dead = True
                logger.error("evaluation worker on %s failed to start %d times; giving up on it",
                             w.device, w.start_failures)

    def _handle(self, w: _Slot, msg: tuple) -> None:
        """One event of the backend's worker protocol (see cod_monitor.runtime.backend)."""
        kind = msg[0]
        if kind == "exit":
            self._on_death(w, msg[1])
            return
        if kind == "ready":
            w.ready = True
            w.start_failures = 0
            return
        if kind == "dead":
            w.start_error = msg[1]
            logger.error("evaluation worker on %s could not start:\n%s", w.device, msg[1])
            return
        if kind == "unusable":  # no restart can cure it: give the slot up now
            w.start_error, w.dead = msg[1], True
            logger.error("evaluation worker on %s cannot run here; giving up on it: %s",
                         w.device, msg[1])
            self._stop_worker(w, kill=True)
            return
        _, job_id, payload, wall = msg
        job, w.job = w.job, None
        if job is None or job.job_id != job_id:  # pragma: no cover - protocol guard
            logger.warning("evaluation worker on %s returned an unexpected job %s", w.device, job_id)
            return
        if kind == "ok":
            logger.debug("evaluation job %s finished on %s in %.2fs", job_id, w.device, wall)
            # measured here, as the time limit is: from sending the job to its result
            self.record_duration(self._attempt_time(w, time.monotonic()))
            self._emit(JobOutcome(job, "done", result=payload, attempts=job.attempt,
                                  worker=w.device, wall_s=wall))
        elif kind == "fatal":  # a configuration error: a retry would fail the same way
            logger.debug("evaluation job %s failed with a configuration error; not retried",
                         job_id)
            self._emit(JobOutcome(job, "failed", error=payload, attempts=job.attempt,
                                  worker=w.device, wall_s=wall))
        else:
            self._retry_or_fail(job, payload, w.device, wall)

    def _dispatch(self) -> None:
        now = time.monotonic()
        for w in self._workers:
            if w.dead:
                continue
            if not w.handle.started:
                if now >= w.not_before and (self._pending or not self._stopping):
                    if w.restarts or w.start_failures:
                        self.stats["restarts"] += 1
                    w.restarts += 1
                    self._backend.start(w.handle)
                    w.ready = False
                continue
            if w.ready and w.job is None:
                with self._lock:
                    job = self._pending.popleft() if self._pending else None
                if job is None:
                    continue
                job = replace(job, attempt=job.attempt + 1)
                w.job, w.started_at = job, time.monotonic()
                w.waits_at_start = self._cpu_waits(w)
                w.limit = self.attempt_timeout
                try:
                    self._backend.send(w.handle, job)
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
        error = "no evaluation worker could start on any device"
        why = [w.start_error.strip().splitlines()[-1] for w in self._workers if w.start_error]
        if why:  # the last line of a traceback, or a whole one-line message
            error += f"; the last error: {why[-1]}"
        for j in jobs:
            self._emit(JobOutcome(j, "failed", attempts=j.attempt, error=error))

    def _cpu_waits(self, w: _Slot) -> dict[int, float]:
        try:
            return self._backend.cpu_waits(w.handle)
        except Exception:  # a backend that cannot tell discounts nothing
            return {}

    def _attempt_time(self, w: _Slot, now: float) -> float:
        """Seconds the current attempt on ``w`` has run, less the longest time one of its
        worker's threads waited for a CPU meanwhile: a low-priority worker kept off the
        cores by training is slow, not hung."""
        waits = self._cpu_waits(w) if w.waits_at_start else {}
        held = max((t - w.waits_at_start.get(tid, 0.0) for tid, t in waits.items()),
                   default=0.0)
        return now - w.started_at - max(held, 0.0)

    def _check_timeouts(self) -> None:
        now = time.monotonic()
        for w in self._workers:
            if w.job is None or w.limit is None or now - w.started_at <= w.limit:
                continue
            ran = self._attempt_time(w, now)  # read only past the limit: /proc costs
            if ran > w.limit:
                self.stats["timeouts"] += 1
                job, w.job = w.job, None
                logger.warning("evaluation job %s timed out after %.1fs on %s (%.1fs of it "
                               "waiting for a CPU); killing the worker", job.job_id,
                               now - w.started_at, w.device, now - w.started_at - ran)
                self._stop_worker(w, kill=True)
                self._lost_attempt(job, "timeout", self._timeout_error(w), w.device,
                                   now - w.started_at)

    def _timeout_error(self, w: _Slot) -> str:
        """Why the attempt on ``w`` was stopped, with the limit and where it came from."""
        if self.timeout != "auto":
            why = "the pool's timeout"
        elif AUTO_TIMEOUT_FACTOR * self._slowest > self.timeout_floor:
            why = (f"timeout='auto': {AUTO_TIMEOUT_FACTOR:g} x {self._slowest:.1f} s, the "
                   "slowest evaluation so far")
        else:
            why = f"timeout='auto': its floor of {self.timeout_floor:g} s"
        return f"timed out after {w.limit:g}s on {w.device} ({why}); its worker was killed"

    def _open_backend(self) -> None:
        """Open the backend; when it cannot open, no worker can start: every slot is
        given up with the reason (queued jobs then fail with it, nothing is raised)."""
        try:
            self._backend.open()
        except Exception as exc:
            error = f"the worker backend could not start: {type(exc).__name__}: {exc}"
            logger.error("evaluation pool: %s", error)
            for w in self._workers:
                w.dead, w.start_error = True, error

    def _run(self) -> None:
        try:
            self._open_backend()
            self._loop()
        except Exception:  # pragma: no cover - a bug here must not kill training
            logger.exception("evaluation pool dispatcher crashed")
        finally:
            for w in self._workers:
                try:
                    self._stop_worker(w, kill=self._stopping_now())
                except Exception:  # pragma: no cover
                    pass
            try:
                self._backend.close()
            except Exception:  # pragma: no cover - a backend bug must not kill training
                logger.warning("evaluation pool: closing the worker backend failed", exc_info=True)
            self._cancel_all("evaluation pool closed before the job finished")
            self._closed.set()

    def _loop(self) -> None:
        while True:
            with self._lock:
                busy = bool(self._pending) or any(w.job is not None for w in self._workers)
                stopping = self._stopping
            if stopping and (not busy or self._stopping_now() or all(w.dead for w in self._workers)):
                if all(w.dead for w in self._workers):
                    self._cancel_dead()  # failed with the reason, not merely unfinished
                return
            self._dispatch()
            wait_s = 0.5
            ends = [w.started_at + w.limit for w in self._workers
                    if w.job is not None and w.limit is not None]
            if ends:
                wait_s = max(0.0, min(wait_s, min(ends) - time.monotonic()))
            if self._deadline is not None:
                wait_s = max(0.0, min(wait_s, self._deadline - time.monotonic()))
            for handle, event in self._backend.wait([w.handle for w in self._workers], wait_s):
                self._handle(self._slot_of[id(handle)], event)
            self._check_timeouts()


def check_timeout(owner: str, timeout) -> float | str | None:
    """A per-attempt ``timeout``: ``'auto'``, ``None``, or a float in (0, inf).

    Raises
    ------
    ParameterError
        Anything else, named with its owner.
    """
    if isinstance(timeout, str) and timeout == "auto":
        return timeout
    try:
        return check_real(owner, "timeout", timeout, 0.0, none_ok=True)
    except ParameterError:
        raise invalid(owner, "timeout", "a float in the range (0, inf), 'auto' or None",
                      timeout, "Leave timeout='auto' for a limit measured on the run's own "
                      "evaluations, or give the seconds one attempt may take.") from None
