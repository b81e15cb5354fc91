"""Lower the CPU priority of the calling thread, so that training keeps the cores.

On Linux a thread is a task of its own, with its own niceness: :func:`lower_priority`
raises the niceness of the calling thread, not of its process. The monitor's forecast
fits run on a thread of the training process; at niceness 19 the kernel gives it about
1/70 of a core that training also wants, and all of the time training leaves free.
(``SCHED_IDLE`` would give it none of a busy core: on a training loop that keeps every
core busy the first forecast could wait for the whole run.)
"""

from __future__ import annotations

import os
import sys
import threading

__all__ = ["lower_priority"]


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

