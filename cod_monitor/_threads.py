"""One BLAS thread for the forecasting code (private).

Forecasting is many small array operations: the batched law fits, the clustering's
blocks, the bootstrap.  OpenBLAS runs products above a small size on every core, and on
these shapes the extra threads mostly spin: ``cod-monitor predict`` on the demo ladder
used 15% more CPU for the same wall time.  The limit is OpenBLAS's own setting and is
restored on exit; the OpenBLAS builds in numpy and SciPy's wheels (0.3.30) honour it only
when it is set from the main thread, so it serves the command line and scripts, not the
monitor's forecast thread.
"""

from __future__ import annotations

from threadpoolctl import ThreadpoolController

__all__ = ["one_blas_thread"]

_CONTROLLER: list = []  # built once: building one scans every loaded library (~3 ms)


def one_blas_thread():
    """Context manager: BLAS libraries use one thread inside it."""
    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0].limit(limits=1, user_api="blas")
