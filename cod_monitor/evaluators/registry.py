"""The evaluator registry: backend names, and :func:`make_evaluator` from a config dict.

A backend is found by name, and its module imported only when an evaluator of it is
built: the built-in ``'hf'`` and ``'vllm'`` map to their modules, which import
:mod:`~cod_monitor.evaluators.base` and nothing here. :func:`register_backend` adds
another. A pool worker rebuilds evaluators from their config dicts, so a backend
registered in the training process must be registered in the worker too: register a
``'module:Class'`` path (imported in whichever process builds the evaluator), from a
module the worker's job function imports.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any

from cod_monitor._validation import check_choice
from cod_monitor.evaluators.base import BaseEvaluator, Evaluator, EvaluatorConfigError, config_errors

__all__ = ["backends", "evaluator_class", "make_evaluator", "register_backend"]

#: Backend name -> evaluator class, or its ``'module:Class'`` path until first use.
_BACKENDS: dict[str, Any] = {
    "hf": "cod_monitor.evaluators.hf:HFEvaluator",
    "vllm": "cod_monitor.evaluators.vllm:VLLMEvaluator",
}


def register_backend(name: str, evaluator: type | str) -> None:
    """Make ``make_evaluator({"backend": name, ...})`` build `evaluator`.

    Parameters
    ----------
    name : str
        The backend name (replaces an earlier registration of it).
    evaluator : type or str
        A :class:`~cod_monitor.evaluators.base.BaseEvaluator` subclass (its
        ``param_names()`` are the config keys it accepts), or its
        ``'module:Class'`` path, imported when first used.

    Examples
    --------
    >>> register_backend("hf-again", "cod_monitor.evaluators.hf:HFEvaluator")
    >>> "hf-again" in backends()
    True
    """
    if not isinstance(name, str) or not name:
        raise EvaluatorConfigError("register_backend", "name", "a non-empty str", name)
    if isinstance(evaluator, str):
        if evaluator.count(":") != 1:
            raise EvaluatorConfigError("register_backend", "evaluator", "a class or a 'module:Class' str",
                                       evaluator)
    elif not (isinstance(evaluator, type) and issubclass(evaluator, BaseEvaluator)):
        raise EvaluatorConfigError("register_backend", "evaluator", "a BaseEvaluator subclass or a "
                                   "'module:Class' str", evaluator)
    _BACKENDS[name] = evaluator


def backends() -> tuple[str, ...]:
    """The registered backend names, in registration order."""
    return tuple(_BACKENDS)


def evaluator_class(name: str) -> type:
    """The evaluator class of backend `name`, importing its module on first use.

    Raises
    ------
    EvaluatorConfigError
        An unregistered name.
    """
    with config_errors():
        check_choice("the evaluator config", "backend", name, tuple(_BACKENDS))
    cls = _BACKENDS[name]
    if isinstance(cls, str):
        module, _, attr = cls.partition(":")
        cls = _BACKENDS[name] = getattr(importlib.import_module(module), attr)
    return cls


def make_evaluator(config: dict) -> Evaluator:
    """Build an evaluator from a plain config dict.

    Plain dicts travel to worker processes (JSON or pickle) where the evaluator is
    rebuilt; :meth:`~cod_monitor.evaluators.base.BaseEvaluator.get_config` is the
    inverse.

    Parameters
    ----------
    config : dict
        ``backend`` (``'hf'``, the default, ``'vllm'`` or a name given to
        :func:`register_backend`) plus the keyword arguments of its class, e.g.
        ``{"backend": "hf", "mode": "exact", "n": 100, "temperature": 1.0,
        "top_p": 0.7, "max_new_tokens": None, "batch_size": 32, "seed": 0,
        "device": "cpu"}``.

    Returns
    -------
    Evaluator

    Raises
    ------
    EvaluatorConfigError
        Not a dict, an unknown backend, a key the backend does not take, or an
        invalid value.

    Examples
    --------
    >>> ev = make_evaluator({"backend": "hf", "mode": "exact", "top_p": 0.7})
    >>> ev.get_config()["top_p"]
    0.7
    """
    if not isinstance(config, dict):
        raise EvaluatorConfigError("make_evaluator", "config", "a dict", config)
    cfg = dict(config)
    cls = evaluator_class(cfg.pop("backend", "hf"))
    accepted = cls.param_names()
    unknown = sorted((k for k in cfg if k not in accepted), key=str)
    if unknown:
        guesses = [f"{close[0]!r} for {k!r}" for k in unknown
                   if (close := difflib.get_close_matches(str(k), accepted, n=1))]
        hint = f"Unknown key(s) {unknown}"
        hint += f" (did you mean {', '.join(guesses)}?)." if guesses else "."
        raise EvaluatorConfigError(
            "make_evaluator", "config", f"a dict of 'backend' and parameters of {cls.__name__}", config,
            f"{hint} The accepted keys are {['backend', *sorted(accepted)]}.",
        )
    return cls(**cfg)
