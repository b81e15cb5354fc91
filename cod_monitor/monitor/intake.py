"""Checkpoint intake: snapshot a checkpoint, queue its evaluations, resume pending ones.

:class:`Intake` is what :meth:`CODMonitor.on_checkpoint
<cod_monitor.monitor.CODMonitor.on_checkpoint>` runs on the training thread: it
records the checkpoint in the journal and the
:class:`~cod_monitor.monitor.ledger.Ledger`, snapshots it (hard links of a directory
now, or a CPU copy of a state dict written by a background thread), and submits one
job per benchmark to the :class:`~cod_monitor.runtime.pool.EvalPool`. On a resumed
journal it resubmits the jobs left pending.

Nothing taken is lost without a word
------------------------------------
* The journal record comes before the snapshot: a crash while making it leaves a
  pending record, and the resumed monitor makes the snapshot again from the
  checkpoint directory the record names (or, when that is gone too, fails the job
  with an alert).
* A checkpoint that cannot be taken or snapshotted gets an ``EVALUATION_FAILING``
  alert per benchmark, raised before the journal is written (a failing journal
  must not silence it).
* An evaluation attempt whose worker timed out or died raises an
  ``EVALUATION_TIMEOUT`` or ``WORKER_DIED`` alert at once, while it is retried.
* :meth:`Intake.recorded` says whether the journal has any record of a step, so that
  checkpoints found on disk (:meth:`CODMonitor.reconcile
  <cod_monitor.monitor.CODMonitor.reconcile>`) are taken exactly when the monitor
  never saw them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from numbers import Real
from pathlib import Path

from cod_monitor._validation import invalid
from cod_monitor.monitor.config import CheckpointConfig, PoolConfig
from cod_monitor.monitor.drift import evaluation_failure_alert
from cod_monitor.monitor.incidents import attempt_failure_alert
from cod_monitor.monitor.journal import Journal, JournalState
from cod_monitor.monitor.ledger import Inbox, Ledger
from cod_monitor.records import Alert, AlertReason
from cod_monitor.runtime.jobs import AttemptFailure, Job, JobOutcome
from cod_monitor.runtime.pool import EvalPool
from cod_monitor.runtime.ray_backend import RayEvalPool
from cod_monitor.runtime.snapshots import (
    SnapshotWriter,
    clear_partial_snapshots,
    cpu_state_dict,
    snapshot_directory,
)

__all__ = ["SNAPSHOT_DIR", "Intake"]

logger = logging.getLogger(__name__)

#: Directory of the snapshots inside the monitor's output directory.
SNAPSHOT_DIR = "snapshots"

_OWNER = "CODMonitor.on_checkpoint"


class Intake:
    """Take checkpoints into the monitor and hand their evaluations to the pool.

    Parameters
    ----------
    out_dir : path
        The monitor's output directory (snapshots go to ``out_dir/snapshots``).
    eval_sets : mapping of str to object
        Benchmark -> evaluation set of its jobs.
    evaluator : dict
        Evaluator config of every job.
    checkpoints : CheckpointConfig
    pool : PoolConfig
    ledger : Ledger
    journal : Journal
    inbox : Inbox
        Alerts raised off the processing thread are posted to it.
    on_alert : callable
        ``on_alert(alert)``, run on the processing thread through ``inbox``.

    Notes
    -----
    Lifecycle: :meth:`start` (pool and writer created), :meth:`resume` (pending jobs
    queued), :meth:`run_pool`, :meth:`take` any number of times, then
    :meth:`drain_writes` and :meth:`close`.
    """

    def __init__(self, out_dir, eval_sets: Mapping, evaluator: dict, checkpoints: CheckpointConfig,
                 pool: PoolConfig, ledger: Ledger, journal: Journal, inbox: Inbox,
                 on_alert: Callable[[Alert], None]):
        self.snapshot_dir = Path(out_dir) / SNAPSHOT_DIR
        self.eval_sets = dict(eval_sets)
        self.benchmarks = list(self.eval_sets)
        self.evaluator = evaluator
        self.checkpoints = checkpoints
        self.pool_config = pool
        self._ledger = ledger
        self._journal = journal
        self._inbox = inbox
        self._on_alert = on_alert
        self._pool: EvalPool | None = None
        self._writer: SnapshotWriter | None = None
        self._n_calls = 0
        self._recorded: set[int] = set()  # steps refused or thinned (journaled)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Create the snapshot directory, the evaluation pool (not yet running; local
        processes or Ray actors, as ``PoolConfig.backend`` says) and the snapshot
        writer; remove what a crash left of a snapshot being made."""
        self.snapshot_dir.mkdir(parents=True, exist_ok=True)
        for tmp in clear_partial_snapshots(self.snapshot_dir):
            logger.info("CODMonitor removed %s, a snapshot a crash cut short (its step is "
                        "completed from the journal, or from the checkpoints on disk)", tmp)
        p = self.pool_config
        common = dict(job_fn=p.job_fn, timeout=p.timeout, timeout_floor=p.timeout_floor,
                      max_retries=p.max_retries, queue_policy=p.queue_policy,
                      cpu_threads=p.cpu_threads, nice=p.cpu_nice,
                      on_outcome=lambda _o: self._inbox.wake(),
                      on_attempt_failure=self._lost_attempt)
        if p.backend == "ray":
            # the actors read the snapshots where they are written: checked with a probe
            self._pool = RayEvalPool(p.devices, address=p.ray_address, resources=p.ray_resources,
                                     num_gpus=p.ray_num_gpus, shared_dir=self.snapshot_dir,
                                     **common)
        else:
            self._pool = EvalPool(p.devices, **common)
        self._writer = SnapshotWriter()

    def run_pool(self) -> None:
        """Start the evaluation workers (after :meth:`resume` queued the pending jobs)."""
        self._pool.start()

    def drain_writes(self) -> None:
        """Wait for the background snapshot writes (their jobs are then submitted)."""
        self._writer.close(wait=True)

    def close(self, timeout: float | None = None) -> None:
        """Drain the pool (up to ``timeout`` seconds) and stop its workers."""
        self._pool.close(timeout=timeout)

    def outcomes(self) -> list[JobOutcome]:
        """The pool's outcomes since the last call."""
        return self._pool.poll()

    @property
    def stats(self) -> dict:
        """The pool's counters (empty before :meth:`start`)."""
        return {} if self._pool is None else dict(self._pool.stats)

    def recorded(self, step: int) -> bool:
        """Whether the journal has a record of ``step``: taken, refused or thinned."""
        return self._ledger.knows(step) or step in self._recorded

    def _lost_attempt(self, failure: AttemptFailure) -> None:
        """The pool lost an attempt's worker (dispatcher thread): alert now. An attempt
        that is not retried gets the alert of its failed (or unfinished) outcome."""
        if failure.retried:
            self._inbox.post(self._on_alert, attempt_failure_alert(failure))

    # ------------------------------------------------------------------ resume
    def resume(self, state: JournalState) -> int:
        """Resubmit the jobs a replayed journal left pending; returns how many.

        A pending job of a benchmark no longer monitored is skipped. One whose snapshot
        is gone (a crash while it was being made) gets it made again from the
        checkpoint directory its record names, and fails with an
        ``EVALUATION_FAILING`` alert when that cannot be done. The durations of the
        journal's evaluations count in the pool's ``'auto'`` time limit.
        """
        self._recorded |= state.refused | state.thinned
        for rec in state.results.values():
            if isinstance(rec.get("wall_s"), (int, float)):
                self._pool.record_duration(float(rec["wall_s"]))
        resubmitted = 0
        remade: dict[int, str | None] = {}  # step -> why its snapshot cannot be made
        for step, b in state.pending:
            if b not in self.eval_sets:
                self._ledger.settle(step, b, "skipped", reason="benchmark no longer monitored")
                continue
            if not Path(self._ledger.snapshot(step)).is_dir():
                if step not in remade:
                    remade[step] = self._remake_snapshot(step, state.checkpoints[step])
                if remade[step] is not None:
                    self._ledger.settle(step, b, "failed", error=remade[step], attempts=0)
                    self._inbox.post(self._on_alert,
                                     evaluation_failure_alert(step, b, remade[step], 0))
                    continue
            self._pool.submit(self._job(step, b))
            resubmitted += 1
        self._ledger.release_all()
        return resubmitted

    def _remake_snapshot(self, step: int, record: dict) -> str | None:
        """Make the snapshot of a pending checkpoint again from its directory; ``None``
        when done, else why it cannot be."""
        snapshot, source = record["snapshot"], record.get("path")
        gone = f"the snapshot {snapshot} of a pending job is gone (crash while writing it?)"
        if source is None:  # a state dict: its weights lived in the dead process only
            return gone
        try:
            snapshot_directory(source, snapshot, link=self.checkpoints.link,
                               extra_from=self.checkpoints.config_dir)
        except Exception as exc:
            return (f"{gone}, and it could not be made again from {source}: "
                    f"{type(exc).__name__}: {exc}")
        logger.info("CODMonitor made the snapshot of step %d again from %s (a crash had cut "
                    "it short)", step, source)
        return None

    # ------------------------------------------------------------------ training thread
    def take(self, step, tokens, compute, path, state_dict, config_dir, *,
             thin: bool = True) -> bool:
        """Record a checkpoint, snapshot it and queue its evaluations (see ``on_checkpoint``).

        ``thin``: apply ``CheckpointConfig.every`` (a call it leaves out is journaled
        as ``thinned``); checkpoints found on disk by a reconciliation are not thinned.

        Returns
        -------
        bool
            Whether the checkpoint was recorded now (False: thinned, or a step already
            taken). A snapshot that fails once recorded fails its evaluations, with
            alerts, and does not raise.

        Raises
        ------
        ParameterError
            A bad ``step``, ``tokens`` or ``compute`` (not a finite number >= 0), a
            ``state_dict`` that is not a mapping, not exactly one of ``path`` and
            ``state_dict``, or a state dict without a config directory.
        FileNotFoundError
            ``path`` is not a directory.
        """
        if thin:
            self._n_calls += 1
            if (self._n_calls - 1) % self.checkpoints.every:
                thinned = _int_or_none(step)
                if thinned is not None and not self.recorded(thinned):
                    self._recorded.add(thinned)
                    self._journal.append("thinned", step=thinned)
                return False
        step = _checked_step(step)
        tokens = _checked_amount("tokens", tokens)
        compute = _checked_amount("compute", compute)
        if state_dict is not None and not isinstance(state_dict, Mapping):
            raise invalid(_OWNER, "state_dict", "a mapping of parameter names to tensors or None",
                          type(state_dict).__name__, "Pass model.state_dict().")
        if path is None and state_dict is None:
            raise invalid(_OWNER, "path", "a checkpoint directory when no state_dict is given",
                          path, "on_checkpoint needs exactly one of path= and state_dict=.")
        if path is not None and state_dict is not None:
            raise invalid(_OWNER, "state_dict", "None when a path is given",
                          type(state_dict).__name__,
                          "on_checkpoint needs exactly one of path= and state_dict=.")
        if self._ledger.knows(step):
            logger.debug("step %d already submitted or evaluated; not evaluated again", step)
            return False
        tokens, compute, params = self._ledger.resolve(step, tokens, compute)
        dest = self.snapshot_dir / f"step-{step:012d}"
        config_dir = config_dir if config_dir is not None else self.checkpoints.config_dir
        record = {"step": step, "compute": compute, "tokens": tokens, "params": params,
                  "snapshot": str(dest), "benchmarks": list(self.benchmarks),
                  "path": None if path is None else str(path)}
        if path is not None:
            if not Path(path).is_dir():
                what = "is a file, not a directory" if Path(path).exists() else "does not exist"
                raise FileNotFoundError(f"checkpoint directory {str(path)!r} {what}; pass the "
                                        "directory the checkpoint was saved to")
            # journaled first: a crash while snapshotting leaves a pending record that
            # the next monitor completes from `path`, not a snapshot nobody knows of
            self._ledger.register(step, compute, tokens, dest)
            self._journal.append("checkpoint", **record)
            try:
                snap = snapshot_directory(path, dest, link=self.checkpoints.link,
                                          extra_from=config_dir)
            except Exception as exc:  # e.g. an unreadable file, a full disk
                self._snapshot_failed(step, f"could not snapshot the checkpoint {path}: "
                                            f"{type(exc).__name__}: {exc}")
                return True
            self._submit_all(step)
            logger.debug("checkpoint %d snapshotted (%s, %d files) in %.1f ms", step,
                         snap.method, snap.n_files, 1e3 * snap.seconds)
            return True
        if config_dir is None:
            raise invalid(_OWNER, "config_dir", "a directory path when "
                          "state_dict is given", None,
                          "A state-dict snapshot needs the model's config.json and tokenizer; "
                          "pass config_dir= here or CheckpointConfig(config_dir=...).")
        cpu = cpu_state_dict(state_dict)
        self._ledger.register(step, compute, tokens, dest, writing=True)
        self._journal.append("checkpoint", **record)
        self._writer.submit(cpu, dest, config_dir=config_dir,
                            on_done=lambda fut, s=step: self._after_write(s, fut))
        return True

    def refuse(self, step, exc: Exception) -> None:
        """Record that the checkpoint at ``step`` could not be taken, with an alert per
        benchmark (it will have no observation)."""
        step_id = _int_or_none(step)
        # the alerts first: a journal that cannot record the failure must not silence it
        for b in self.benchmarks:
            self._inbox.post(self._on_alert, Alert(
                step=step_id or 0, benchmark=b, reason=AlertReason.EVALUATION_FAILING,
                message=(f"cod/{b} at step {step}: the checkpoint could not be queued for "
                         f"evaluation ({type(exc).__name__}: {exc}); it has no observation."),
            ))
        if step_id is not None:
            self._recorded.add(step_id)
        self._journal.append("error", step=step_id, where="on_checkpoint", error=repr(exc))

    def _after_write(self, step: int, fut) -> None:
        self._ledger.write_done()
        exc = fut.exception()
        if exc is None:
            self._submit_all(step)
            return
        self._snapshot_failed(step, f"could not write the snapshot: {exc!r}")
        self._inbox.wake()

    def _snapshot_failed(self, step: int, error: str) -> None:
        """A recorded checkpoint has no snapshot: fail its evaluations, with alerts."""
        logger.warning("CODMonitor: step %d %s", step, error)
        for b in self.benchmarks:
            self._inbox.post(self._on_alert, evaluation_failure_alert(step, b, error, 0))
            self._ledger.settle(step, b, "failed", error=error, attempts=0)

    def _job(self, step: int, b: str) -> Job:
        return Job(job_id=f"{step}:{b}", snapshot=self._ledger.snapshot(step),
                   eval_set=self.eval_sets[b], config=self.evaluator, group=step)

    def _submit_all(self, step: int) -> None:
        for b in self.benchmarks:
            self._pool.submit(self._job(step, b))


def _checked_amount(name: str, value) -> float | None:
    """``tokens`` or ``compute`` as a float: a finite number >= 0 (a tensor or NumPy scalar
    included), or ``None``."""
    if value is None:
        return None
    try:
        number = math.nan if isinstance(value, (str, bytes, bool)) else float(value)
    except (TypeError, ValueError):
        number = math.nan
    if math.isfinite(number) and number >= 0:
        return number
    raise invalid(_OWNER, name, "a finite number >= 0 or None", value,
                  f"Pass the training {'tokens seen' if name == 'tokens' else 'FLOPs spent'} "
                  "so far, or None to have it worked out (RunGeometry).")


def _checked_step(step) -> int:
    """``step`` as an ``int``: a non-negative whole number (``5.0`` is step 5)."""
    if isinstance(step, Real) and not isinstance(step, bool) and step >= 0 and float(step).is_integer():
        return int(step)
    raise invalid(_OWNER, "step", "a non-negative int", step)


def _int_or_none(x):
    try:
        return int(x)
    except (TypeError, ValueError):
        return None
