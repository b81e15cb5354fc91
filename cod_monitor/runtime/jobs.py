"""What the evaluation pool queues and reports: jobs, outcomes and the queue policy.

A :class:`Job` is *(snapshot directory, evaluation set, evaluator config)*; a
:class:`JobOutcome` says what became of it. :class:`QueuePolicy` decides which waiting
jobs to drop when evaluation falls behind the checkpoints:

``'latest'``
    drop the oldest waiting groups: when evaluation falls behind, it skips ahead to
    the newest checkpoints (with ``max_pending=1`` it always evaluates the newest
    checkpoint next). Best for alerting: the freshest state of the run is judged.
``'every_nth'``
    thin the waiting groups to every ``n``-th one, counted back from the newest
    (which is always kept): the evaluated checkpoints stay spread over the whole run,
    with a spacing that grows the further evaluation falls behind. Best for a
    complete trajectory curve.

Jobs are grouped by checkpoint step (:attr:`Job.group`); a policy drops whole groups.
These records pickle: they cross to worker processes and back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cod_monitor._validation import check_choice, check_int, invalid

__all__ = ["QUEUE_POLICIES", "AttemptFailure", "Job", "JobOutcome", "QueuePolicy"]

#: Names of the queue policies.
QUEUE_POLICIES = ("latest", "every_nth")


@dataclass(frozen=True)
class Job:
    """One evaluation: a snapshot, an evaluation set and an evaluator config.

    The pool copies a job with ``attempt`` raised by one each time it starts it.

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
    """What became of a job: the pool reports exactly one outcome per submitted job.

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
class AttemptFailure:
    """An attempt of a job whose worker was lost: it ran past its time limit, or died.

    The pool reports one for each such attempt as it happens (the job's one
    :class:`JobOutcome` comes later), so that the fault is known within the
    evaluation, even when the retry succeeds.

    Attributes
    ----------
    job : Job
        The job, with ``attempt`` the number of the attempt that was lost.
    kind : {'timeout', 'crash'}
        ``'timeout'``: the attempt ran past the pool's time limit and its worker was
        killed; ``'crash'``: the worker died (a segfault, an OOM kill, a ``SIGKILL``).
    error : str
        What happened, in one sentence with the numbers (limit, exit code, device).
    worker : str
        Device of the worker.
    wall_s : float
        How long the attempt ran.
    retried : bool
        Whether the job was queued again (False: this was its last attempt, and its
        ``'failed'`` outcome follows, or the pool is closing).
    """

    job: Job
    kind: str
    error: str
    worker: str
    wall_s: float
    retried: bool


@dataclass(frozen=True)
class QueuePolicy:
    """What to do when evaluation falls behind the checkpoints (see the module docstring).

    Groups already running are never dropped; waiting jobs are dispatched oldest first.

    Parameters
    ----------
    kind : {'latest', 'every_nth'}, default 'latest'
    max_pending : int, default 2
        Most checkpoint groups waiting for a worker.
    n : int, default 2
        Thinning factor of ``'every_nth'`` (at least 2 for it).

    Raises
    ------
    ParameterError
        A value outside those ranges.

    Examples
    --------
    >>> QueuePolicy.parse("every_nth:3")
    QueuePolicy(kind='every_nth', max_pending=2, n=3)
    """

    kind: str = "latest"
    max_pending: int = 2
    n: int = 2

    def __post_init__(self):
        check_choice("QueuePolicy", "kind", self.kind, QUEUE_POLICIES)
        check_int("QueuePolicy", "max_pending", self.max_pending, 1)
        check_int("QueuePolicy", "n", self.n, 2 if self.kind == "every_nth" else 1)

    @classmethod
    def parse(cls, policy) -> QueuePolicy:
        """A policy from a :class:`QueuePolicy`, ``'latest'``, ``'every_nth'`` or ``'every_nth:N'``.

        Raises
        ------
        ParameterError
            Anything else, or an invalid kind or ``N``.
        """
        if isinstance(policy, QueuePolicy):
            return policy
        if isinstance(policy, str):
            kind, _, n = policy.partition(":")
            if not n:
                return cls(kind=kind)
            if n.isdigit():
                return cls(kind=kind, n=int(n))
        raise invalid("QueuePolicy.parse", "queue_policy", "a QueuePolicy or a str among "
                      "{'latest', 'every_nth', 'every_nth:<n>'}", policy)

    def admit(self, waiting: Sequence[Job], job: Job) -> tuple[list[Job], list[Job]]:
        """The waiting jobs once `job` arrives, and the jobs dropped to make room for it.

        Parameters
        ----------
        waiting : sequence of Job
            Jobs waiting for a worker, oldest first.
        job : Job
            The new job; it is always kept (last).

        Returns
        -------
        kept : list of Job
            What waits afterwards, oldest first: at most `max_pending` groups.
        dropped : list of Job
            Whole groups of `waiting`, oldest first.
        """
        groups = list(dict.fromkeys(j.group for j in waiting))
        drop: set = set()
        if job.group not in groups and len(groups) >= self.max_pending:
            if self.kind == "latest":
                drop = set(groups[: len(groups) - self.max_pending + 1])
            else:  # every_nth: keep every n-th waiting group counting back from the newest
                all_groups = groups + [job.group]
                keep = {g for i, g in enumerate(reversed(all_groups)) if i % self.n == 0}
                drop = set(groups) - keep
                if len(all_groups) - len(drop) > self.max_pending:
                    left = [g for g in groups if g not in drop]
                    drop |= set(left[: len(left) + 1 - self.max_pending])
        kept = [j for j in waiting if j.group not in drop]
        return kept + [job], [j for j in waiting if j.group in drop]
