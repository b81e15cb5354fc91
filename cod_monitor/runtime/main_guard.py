"""The ``if __name__ == "__main__":`` guard that spawn-started workers need.

The local backend starts its evaluation workers with ``multiprocessing``'s ``spawn``
method, which runs the parent's main script again in every worker (as the module
``__mp_main__``) before the worker does anything else. A training script that starts
training at its top level, outside the guard, therefore starts a second training and
a second monitor in each worker. Two checks stop that with an error that names the
fix:

- :func:`check_not_spawn_child` (when a monitor is built): refuses to build a monitor
  while Python is importing the main script in a spawned child;
- :func:`check_main_guard` (when a monitor starts, before any worker exists): refuses
  to start workers from top-level code of the main script that is not under the guard,
  found by matching the executing line of the script with its syntax tree.

Both are silent where they cannot tell (an interactive session, ``python -c``, a
script whose source cannot be read).
"""

from __future__ import annotations

import ast
import multiprocessing
import sys
from types import FrameType

from cod_monitor.exceptions import CODError

__all__ = ["MainGuardError", "check_main_guard", "check_not_spawn_child"]

_FIX = (
    "Put the training (and the monitor or callback it builds) under "
    '`if __name__ == "__main__":` at the bottom of the script, e.g. `def main(): ...` and '
    '`if __name__ == "__main__": main()`.'
)


class MainGuardError(CODError, RuntimeError):
    """A monitor started from the top level of a script without the ``__main__`` guard
    (its spawn-started workers would run the script, and so the training, again)."""


def check_not_spawn_child(owner: str = "CODMonitor") -> None:
    """Refuse to build a monitor while a spawned child imports the parent's main script.

    Raises
    ------
    MainGuardError
        This process is a ``spawn`` child still importing the main script: the script
        builds its monitor at the top level, outside the ``__main__`` guard.
    """
    if not getattr(multiprocessing.current_process(), "_inheriting", False):
        return
    main = sys.modules.get("__main__")
    script = getattr(main, "__file__", None) or "the main script"
    raise MainGuardError(
        f"{owner} is being built in a process that multiprocessing's 'spawn' start method "
        f"started (an evaluation worker) while it re-runs {script}: the script builds its "
        f"monitor, and so runs its training, at the top level. {_FIX}"
    )


def check_main_guard(owner: str = "CODMonitor", frame: FrameType | None = None) -> None:
    """Refuse to start spawn workers from unguarded top-level code of the main script.

    Parameters
    ----------
    owner : str
        Named in the error.
    frame : frame, optional
        Where to look from (default: the caller's frame); the stack above it is walked
        to the main script's module-level frame.

    Raises
    ------
    MainGuardError
        The stack passes through a module-level statement of the main script that is
        not inside an ``if __name__ == "__main__":`` block.
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if not path:
        return  # interactive, python -c, a notebook: nothing is re-run by spawn
    f = frame if frame is not None else sys._getframe(1)
    while f is not None:
        if f.f_code.co_name == "<module>" and f.f_globals is vars(main):
            break
        f = f.f_back
    if f is None:
        return
    try:
        with open(path, encoding="utf-8") as fh:
            tree = ast.parse(fh.read(), filename=path)
    except (OSError, SyntaxError, ValueError):
        return
    line = f.f_lineno
    for stmt in tree.body:
        if stmt.lineno <= line <= (stmt.end_lineno or stmt.lineno):
            if _is_main_guard(stmt):
                return
            raise MainGuardError(
                f"{owner} starts its evaluation workers from line {line} of {path}, at the "
                "top level of the script, outside `if __name__ == \"__main__\":`. The "
                "workers are started with multiprocessing's 'spawn' method, which runs the "
                f"script again in each of them: each would train and monitor again. {_FIX}"
            )


def _is_main_guard(stmt: ast.stmt) -> bool:
    """Whether ``stmt`` is ``if __name__ == "__main__":`` (either operand order, or as
    one term of an ``and``)."""
    if not isinstance(stmt, ast.If):
        return False
    tests = stmt.test.values if isinstance(stmt.test, ast.BoolOp) and isinstance(
        stmt.test.op, ast.And) else [stmt.test]
    return any(_is_main_test(t) for t in tests)


def _is_main_test(test: ast.expr) -> bool:
    if not isinstance(test, ast.Compare):
        return False
    if len(test.ops) != 1 or not isinstance(test.ops[0], ast.Eq):
        return False
    sides = [test.left, test.comparators[0]]
    names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
    consts = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
    return len(names) == 1 and len(consts) == 1
