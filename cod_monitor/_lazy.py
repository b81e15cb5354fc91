"""Lazy package attributes (PEP 562), shared by the package ``__init__`` modules.

A package lists its public names and the module defining each; the module is imported
when a name is first read. This keeps ``import cod_monitor`` and the subpackages cheap
(a spawned evaluation worker should not pay for scikit-learn, and ``import
cod_monitor.trackers`` should not import wandb).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping


def lazy_attributes(
    package: str, exports: Mapping[str, str], namespace: dict
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """Module-level ``__getattr__`` and ``__dir__`` functions for a package.

    Parameters
    ----------
    package : str
        The package's ``__name__`` (for the error message).
    exports : mapping of str to str
        Public name -> the module that defines it.
    namespace : dict
        The package's ``globals()``; a loaded name is cached there, so later
        lookups bypass ``__getattr__``.

    Returns
    -------
    getattr_, dir_ : callable
        Assign them to ``__getattr__`` and ``__dir__``.
    """

    def getattr_(name: str):
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def dir_() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return getattr_, dir_
