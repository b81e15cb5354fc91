"""The ``cod-monitor`` command line.

Each sub-command lives in its own module exposing ``add_parser(subparsers)``; the
parser it registers sets ``func`` to the callable that runs it.  Errors that
cod_monitor raises on purpose (:class:`~cod_monitor.exceptions.CODError`) become
one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

from cod_monitor import __version__
from cod_monitor.exceptions import CODError

__all__ = ["main", "build_parser", "configure_process"]


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level argument parser with every sub-command registered."""
    from cod_monitor.cli import demo, ladder, predict

    parser = argparse.ArgumentParser(
        prog="cod-monitor",
        description="Forecast downstream accuracy of LLM pre-training runs with "
        "Clustering-On-Difficulty (COD).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}",
                        help="print the version of cod_monitor and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in (predict, ladder, demo):
        module.add_parser(sub)
    return parser


def configure_process(argv: list[str]) -> None:
    """Process-wide settings the command ``argv`` wants, applied before numpy loads.

    ``predict``: one OpenBLAS thread unless ``OPENBLAS_NUM_THREADS`` is set. The forecast
    is many small array operations; the thread pool OpenBLAS starts at numpy's import
    (one thread per core) would only spin, about a tenth of ``predict``'s CPU time on
    the demo ladder. Without effect once numpy is imported.
    """
    if argv[:1] == ["predict"] and "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    configure_process(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (CODError, FileNotFoundError) as exc:
        print(f"cod-monitor {args.command}: error: {exc}", file=sys.stderr)
        return 2
