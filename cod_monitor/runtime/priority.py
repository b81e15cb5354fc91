"""Lower the CPU priority of the monitor's own work, so that training keeps the cores.

On Linux a thread is a task of its own, with its own niceness: :func:`lower_priority`
raises the niceness of the calling thread, not of its process. The monitor's forecast
fits run on a thread of the training process; at niceness 19 the kernel gives it about
1/70 of a core that training also wants, and all of the time training leaves free.
(``SCHED_IDLE`` would give it none of a busy core: on a training loop that keeps every
core busy the first forecast could wait for the whole run.)

:func:`lower_process_priority` sets the priority of an evaluation worker process: a
niceness, or :data:`IDLE`, Linux's ``SCHED_IDLE`` policy. A niced worker still delays
training: when a training thread wakes (every parallel region of a torch step), the
kernel may let the worker finish its time slice first, and the step waits for its
slowest thread. A ``SCHED_IDLE`` worker is preempted at once; it runs only on CPU time
training leaves unused, so on a loop that keeps every core busy its evaluations wait
for the gaps (they are queued, not lost).
"""

from __future__ import annotations

import os
import sys
import threading

from cod_monitor._validation import check_int, invalid

__all__ = ["IDLE", "check_worker_priority", "lower_priority", "lower_process_priority"]

#: The worker priority that runs only on CPU time nothing else wants (``SCHED_IDLE``).
IDLE = "idle"


def lower_priority(niceness: int = 19) -> bool:
    """Raise the calling thread's niceness to ``niceness`` where the OS allows it.

    Parameters
    ----------
    niceness : int, default 19
        The lowest priority is 19.

    Returns
    -------
    bool
        Whether the thread's priority was changed (Linux: yes; elsewhere ``setpriority``
        may apply to the whole process, which is not done, or not exist).
    """
    if not sys.platform.startswith("linux"):  # elsewhere setpriority means the process
        return False
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, max(os.getpriority(os.PRIO_PROCESS, tid), niceness))
        return True
    except (AttributeError, OSError):
        return False


def check_worker_priority(owner: str, name: str, value) -> int | str:
    """A worker priority: a niceness from 0 to 19, or :data:`IDLE`.

    Raises
    ------
    ParameterError
        Anything else, naming ``owner``, ``name`` and the value.
    """
    if isinstance(value, str):
        if value == IDLE:
            return IDLE
        raise invalid(owner, name, f"a niceness from 0 to 19 or {IDLE!r}", value,
                      f"Use an int, or {IDLE!r} for a worker that only takes idle CPU time.")
    return check_int(owner, name, value, 0, 19)


def lower_process_priority(priority: int | str) -> None:
    """Lower the calling process's CPU priority where the OS permits it.

    Parameters
    ----------
    priority : int or 'idle'
        A niceness to add (0: leave it), or :data:`IDLE`: the ``SCHED_IDLE`` policy
        where the OS has it (Linux), niceness 19 elsewhere.
    """
    if priority == IDLE:
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            return
        except (AttributeError, OSError):  # no SCHED_IDLE here, or not permitted
            priority = 19
    if priority:
        try:
            os.nice(priority)
        except OSError:  # pragma: no cover - not permitted
            pass
