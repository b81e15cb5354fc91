"""What the monitor's parts share: the checkpoint ledger and the inbox.

:class:`Ledger` knows every checkpoint the monitor took (its tokens, compute and
snapshot) and where each of its evaluations stands: ``'pending'``, then exactly one of
``'result'``, ``'failed'`` or ``'skipped'``. Intake registers checkpoints, judging
settles their evaluations, the forecasts read their positions; each settlement is
journaled and a snapshot is deleted once nothing waits for it.

:class:`Inbox` carries work from the monitor's other threads (forecaster, snapshot
writer, evaluation pool) to the one thread that processes results, in the order it was
posted, and wakes that thread.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

from cod_monitor.monitor.config import RunGeometry
from cod_monitor.monitor.journal import Journal, JournalState
from cod_monitor.runtime.snapshots import delete_snapshot

__all__ = ["Inbox", "Ledger", "TERMINAL"]

logger = logging.getLogger(__name__)

#: The statuses that end an evaluation; the first one recorded wins.
TERMINAL = ("result", "failed", "skipped")
#: Relative difference between a checkpoint's reported tokens and ``step *
#: RunGeometry.tokens_per_step`` above which the monitor warns (once).
TOKENS_RATE_TOLERANCE = 0.02


@dataclass
class _Step:
    compute: float | None
    tokens: float | None
    snapshot: str
    remaining: set
    deleted: bool = False


class Ledger:
    """Every checkpoint taken and the status of each of its evaluations.

    Parameters
    ----------
    journal : Journal
        Where settlements and snapshot deletions are recorded.
    benchmarks : list of str
        The benchmarks every checkpoint is evaluated on.
    run : RunGeometry
        What is known of the run; ``params`` is completed from the first checkpoint
        that gives both tokens and compute.
    keep_snapshots : bool
        Keep snapshots after their evaluations.

    Attributes
    ----------
    params : float or None
        Parameters of the monitored model, given or learned.

    Notes
    -----
    Thread-safe: the training thread registers checkpoints while the processing
    thread settles them.
    """

    def __init__(self, journal: Journal, benchmarks: list[str], run: RunGeometry,
                 keep_snapshots: bool):
        self.journal = journal
        self.benchmarks = list(benchmarks)
        self.run = run
        self.keep_snapshots = keep_snapshots
        self.params = run.params
        self._lock = threading.RLock()
        self._written = threading.Condition(self._lock)
        self._steps: dict[int, _Step] = {}
        self._status: dict[tuple[int, str], str] = {}
        self._writes = 0
        self._rate_warned = False

    # ------------------------------------------------------------------ checkpoints
    def knows(self, step: int) -> bool:
        """Whether ``step`` was taken before (in this session or in the journal)."""
        with self._lock:
            return step in self._steps

    def register(self, step: int, compute, tokens, snapshot, *, writing: bool = False) -> None:
        """Record a checkpoint whose evaluations are now pending on every benchmark.

        ``writing``: its snapshot is still being written by a background thread (see
        :meth:`write_done`).
        """
        with self._lock:
            self._steps[step] = _Step(compute, tokens, str(snapshot), set(self.benchmarks))
            for b in self.benchmarks:
                self._status[(step, b)] = "pending"
            self._writes += int(writing)

    def write_done(self) -> None:
        """A snapshot registered with ``writing=True`` is written (or failed)."""
        with self._lock:
            self._writes -= 1
            self._written.notify_all()

    def wait_writes(self, timeout: float | None = None) -> bool:
        """Block until no snapshot is being written; False on timeout."""
        with self._lock:
            return self._written.wait_for(lambda: self._writes == 0, timeout=timeout)

    def position(self, step: int) -> tuple[float | None, float | None]:
        """``(tokens, compute)`` of a checkpoint taken, ``(None, None)`` if unknown."""
        with self._lock:
            st = self._steps.get(step)
        return (None, None) if st is None else (st.tokens, st.compute)

    def snapshot(self, step: int) -> str:
        """The snapshot directory of a checkpoint taken."""
        with self._lock:
            return self._steps[step].snapshot

    def positions(self) -> list[tuple[int, float | None, float | None]]:
        """``(step, tokens, compute)`` of every checkpoint taken, by step."""
        with self._lock:
            return sorted((s, st.tokens, st.compute) for s, st in self._steps.items())

    def tokens_per_step(self) -> float | None:
        """Training tokens per step: those the newest checkpoint reported (its tokens over
        its step) when any did, else ``RunGeometry.tokens_per_step``, else ``None``.

        Reported tokens win over the given rate: they are what the training loop counted
        (on every process), while a rate given by hand is easily a per-device one.
        """
        with self._lock:
            newest = max(((s, st.tokens) for s, st in self._steps.items()
                          if s > 0 and st.tokens), default=None)
        if newest is not None:
            return newest[1] / newest[0]
        return self.run.tokens_per_step

    def tokens_at(self, step: int) -> float | None:
        """``step * tokens_per_step()`` (the tokens of a step no checkpoint reported)."""
        rate = self.tokens_per_step()
        return None if rate is None else float(step) * rate

    def resolve(self, step: int, tokens, compute) -> tuple[float | None, float | None, float | None]:
        """Complete a checkpoint's ``(tokens, compute, params)`` from what is known.

        Tokens default to ``step * tokens_per_step()``; ``params`` is learned as
        ``compute / (6 * tokens)``; compute defaults to ``6 * params * tokens``. Reported
        tokens that disagree with ``RunGeometry.tokens_per_step`` by more than
        :data:`TOKENS_RATE_TOLERANCE` are warned about once (a per-device rate in a
        multi-process run is the usual cause); the reported tokens are used.
        """
        if tokens is None:
            tokens = self.tokens_at(step)
        elif step > 0 and self.run.tokens_per_step and not self._rate_warned:
            ratio = float(tokens) / (step * self.run.tokens_per_step)
            if abs(ratio - 1.0) > TOKENS_RATE_TOLERANCE:
                self._rate_warned = True
                logger.warning(
                    "CODMonitor: the checkpoint at step %d reports %.6g tokens, %.3gx "
                    "step * RunGeometry.tokens_per_step (%.6g); the reported tokens are used. "
                    "RunGeometry.tokens_per_step counts the tokens of one optimizer step on "
                    "all processes together (a per-device count is short by the world size), "
                    "or leave it out when every checkpoint reports its tokens.",
                    step, float(tokens), ratio, self.run.tokens_per_step)
        tokens = None if tokens is None else float(tokens)
        compute = None if compute is None else float(compute)
        if self.params is None and tokens and compute:
            self.params = compute / (6.0 * tokens)
        if compute is None and tokens and self.params:
            compute = 6.0 * self.params * tokens
        return tokens, compute, self.params

    # ------------------------------------------------------------------ evaluations
    def settle(self, step: int, benchmark: str, status: str, **fields) -> bool:
        """End an evaluation with ``status`` (one of :data:`TERMINAL`) and journal it.

        Returns
        -------
        bool
            False when the evaluation had already ended (nothing is recorded).
        """
        with self._lock:
            if self._status.get((step, benchmark)) in TERMINAL:
                return False
            self._status[(step, benchmark)] = status
            st = self._steps.get(step)
            if st is not None:
                st.remaining.discard(benchmark)
        self.journal.append(status, step=step, benchmark=benchmark, **fields)
        self.release(step)
        return True

    def release(self, step: int) -> None:
        """Delete the snapshot of ``step`` once none of its evaluations is pending."""
        if self.keep_snapshots:
            return
        with self._lock:
            st = self._steps.get(step)
            if st is None or st.remaining or st.deleted:
                return
            st.deleted = True
        if delete_snapshot(st.snapshot):
            logger.debug("deleted the snapshot of step %d", step)
        self.journal.append("snapshot_deleted", step=step, snapshot=st.snapshot)

    def pending_steps(self, benchmark: str) -> list[int]:
        """Steps whose evaluation on ``benchmark`` is pending, in order."""
        with self._lock:
            return sorted(s for (s, b), v in self._status.items()
                          if b == benchmark and v == "pending")

    def steps_with(self, benchmark: str, status: str) -> list[int]:
        """Steps whose evaluation on ``benchmark`` has ``status``, in order."""
        with self._lock:
            return sorted(s for (s, b), v in self._status.items()
                          if b == benchmark and v == status)

    def busy(self) -> bool:
        """Whether a snapshot is being written or an evaluation is pending."""
        with self._lock:
            return self._writes > 0 or any(v == "pending" for v in self._status.values())

    def count(self, benchmark: str, status: str) -> int:
        """Evaluations of ``benchmark`` with ``status``."""
        with self._lock:
            return sum(1 for (_, b), v in self._status.items() if b == benchmark and v == status)

    # ------------------------------------------------------------------ resume
    def restore(self, state: JournalState) -> None:
        """Take the checkpoints, statuses and learned ``params`` of a replayed journal."""
        with self._lock:
            self._status.update(state.status)
            for step, rec in state.checkpoints.items():
                remaining = {b for b in rec.get("benchmarks", ())
                             if state.status.get((step, b)) == "pending"}
                self._steps[step] = _Step(rec.get("compute"), rec.get("tokens"), rec["snapshot"],
                                          remaining, deleted=step in state.deleted)
                if self.params is None and rec.get("params"):
                    self.params = float(rec["params"])

    def release_all(self) -> None:
        """:meth:`release` every checkpoint (after a resume)."""
        with self._lock:
            steps = list(self._steps)
        for step in steps:
            self.release(step)

    def __len__(self) -> int:
        with self._lock:
            return len(self._steps)


class Inbox:
    """Work posted by any thread, run in posting order on the processing thread.

    Posting wakes the processing thread; so does :meth:`wake` (e.g. when an
    evaluation finished).
    """

    def __init__(self):
        self._queue: queue.Queue = queue.Queue()
        self._event = threading.Event()

    def post(self, fn: Callable, *args) -> None:
        """Queue ``fn(*args)`` and wake the processing thread."""
        self._queue.put((fn, args))
        self._event.set()

    def wake(self) -> None:
        """Wake the processing thread."""
        self._event.set()

    def wait(self, timeout: float | None) -> None:
        """Sleep until woken or ``timeout`` seconds have passed; clears the wake-up."""
        self._event.wait(timeout)
        self._event.clear()

    def run_all(self) -> None:
        """Run everything posted so far (on the processing thread)."""
        while True:
            try:
                fn, args = self._queue.get_nowait()
            except queue.Empty:
                return
            fn(*args)
