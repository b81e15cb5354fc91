"""Checkpoint intake: snapshot a checkpoint, queue its evaluations, resume pending ones.

:class:`Intake` is what :meth:`CODMonitor.on_checkpoint
<cod_monitor.monitor.CODMonitor.on_checkpoint>` runs on the training thread: it
snapshots the checkpoint (hard links of a directory now, or a CPU copy of a state dict
written by a background thread), records it in the journal and the
:class:`~cod_monitor.monitor.ledger.Ledger`, and submits one job per benchmark to the
:class:`~cod_monitor.runtime.pool.EvalPool`. On a resumed journal it resubmits the
jobs left pending.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from numbers import Real
from pathlib import Path

from cod_monitor._validation import invalid
from cod_monitor.monitor.config import CheckpointConfig, PoolConfig
from cod_monitor.monitor.drift import evaluation_failure_alert
from cod_monitor.monitor.journal import Journal, JournalState
from cod_monitor.monitor.ledger import Inbox, Ledger
from cod_monitor.records import Alert, AlertReason
from cod_monitor.runtime.jobs import Job, JobOutcome
from cod_monitor.runtime.pool import EvalPool
from cod_monitor.runtime.snapshots import SnapshotWriter, cpu_state_dict, snapshot_directory

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

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Create the snapshot directory, the evaluation pool (not yet running) and the
        snapshot writer."""
        self.snapshot_dir.mkdir(parents=True, exist_ok=True)
        p = self.pool_config
        self._pool = EvalPool(p.devices, job_fn=p.job_fn, timeout=p.timeout,
                              max_retries=p.max_retries, queue_policy=p.queue_policy,
                              cpu_threads=p.cpu_threads,
                              on_outcome=lambda _o: self._inbox.wake())
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

    # ------------------------------------------------------------------ resume
    def resume(self, state: JournalState) -> int:
        """Resubmit the jobs a replayed journal left pending; returns how many.

        A pending job of a benchmark no longer monitored is skipped; one whose snapshot
        is gone fails with an ``EVALUATION_FAILING`` alert.
        """
        resubmitted = 0
        for step, b in state.pending:
            if b not in self.eval_sets:
                self._ledger.settle(step, b, "skipped", reason="benchmark no longer monitored")
                continue
            snapshot = self._ledger.snapshot(step)
            if not Path(snapshot).is_dir():
                error = f"the snapshot {snapshot} of a pending job is gone (crash while writing it?)"
                self._ledger.settle(step, b, "failed", error=error, attempts=0)
                self._inbox.post(self._on_alert, evaluation_failure_alert(step, b, error, 0))
                continue
            self._pool.submit(self._job(step, b))
            resubmitted += 1
        self._ledger.release_all()
        return resubmitted

    # ------------------------------------------------------------------ training thread
    def take(self, step, tokens, compute, path, state_dict, config_dir) -> None:
        """Snapshot a checkpoint and queue its evaluations (see ``on_checkpoint``).

        Raises
        ------
        ParameterError
            A bad ``step``, or not exactly one of ``path`` and ``state_dict``, or a
            state dict without a config directory.
        OSError
            The snapshot could not be made.
        """
        self._n_calls += 1
        if (self._n_calls - 1) % self.checkpoints.every:
            return
        step = _checked_step(step)
        if path is None and state_dict is None:
            raise invalid(_OWNER, "path", "a checkpoint directory when no state_dict is given",
                          path, "on_checkpoint needs exactly one of path= and state_dict=.")
        if path is not None and state_dict is not None:
            raise invalid(_OWNER, "state_dict", "None when a path is given",
                          type(state_dict).__name__,
                          "on_checkpoint needs exactly one of path= and state_dict=.")
        if self._ledger.knows(step):
            logger.debug("step %d already submitted or evaluated; not evaluated again", step)
            return
        tokens, compute, params = self._ledger.resolve(step, tokens, compute)
        dest = self.snapshot_dir / f"step-{step:012d}"
        config_dir = config_dir if config_dir is not None else self.checkpoints.config_dir
        record = {"step": step, "compute": compute, "tokens": tokens, "params": params,
                  "snapshot": str(dest), "benchmarks": list(self.benchmarks)}
        if path is not None:
            snap = snapshot_directory(path, dest, link=self.checkpoints.link,
                                      extra_from=config_dir)
            self._ledger.register(step, compute, tokens, dest)
            self._journal.append("checkpoint", method=snap.method, **record)
            self._submit_all(step)
            logger.debug("checkpoint %d snapshotted (%s, %d files) in %.1f ms", step,
                         snap.method, snap.n_files, 1e3 * snap.seconds)
            return
        if config_dir is None:
            raise invalid(_OWNER, "config_dir", "a directory path when "
                          "state_dict is given", None,
                          "A state-dict snapshot needs the model's config.json and tokenizer; "
                          "pass config_dir= here or CheckpointConfig(config_dir=...).")
        cpu = cpu_state_dict(state_dict)
        self._ledger.register(step, compute, tokens, dest, writing=True)
        self._journal.append("checkpoint", method="safetensors", **record)
        self._writer.submit(cpu, dest, config_dir=config_dir,
                            on_done=lambda fut, s=step: self._after_write(s, fut))

    def refuse(self, step, exc: Exception) -> None:
        """Record that the checkpoint at ``step`` could not be taken, with an alert per
        benchmark (it will have no observation)."""
        step_id = _int_or_none(step)
        self._journal.append("error", step=step_id, where="on_checkpoint", error=repr(exc))
        for b in self.benchmarks:
            self._inbox.post(self._on_alert, Alert(
                step=step_id or 0, benchmark=b, reason=AlertReason.EVALUATION_FAILING,
                message=(f"cod/{b} at step {step}: the checkpoint could not be queued for "
                         f"evaluation ({type(exc).__name__}: {exc}); it has no observation."),
            ))

    def _after_write(self, step: int, fut) -> None:
        self._ledger.write_done()
        exc = fut.exception()
        if exc is None:
            self._submit_all(step)
            return
        logger.warning("CODMonitor could not write the snapshot of step %d: %s", step, exc)
        error = f"could not write the snapshot: {exc!r}"
        for b in self.benchmarks:
            self._ledger.settle(step, b, "failed", error=error, attempts=0)
            self._inbox.post(self._on_alert, evaluation_failure_alert(step, b, error, 0))
        self._inbox.wake()

    def _job(self, step: int, b: str) -> Job:
        return Job(job_id=f"{step}:{b}", snapshot=self._ledger.snapshot(step),
                   eval_set=self.eval_sets[b], config=self.evaluator, group=step)

    def _submit_all(self, step: int) -> None:
        for b in self.benchmarks:
            self._pool.submit(self._job(step, b))


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
