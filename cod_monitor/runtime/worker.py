"""What runs inside an evaluation worker, whichever backend started it.

A worker calls ``job_fn(snapshot, eval_set, config)`` for each :class:`~cod_monitor.
runtime.jobs.Job`; the default :func:`run_evaluation` builds the evaluator from the
config (:func:`cod_monitor.evaluators.make_evaluator`) and keeps it, and the loaded
evaluation sets, for the worker's later jobs. A job that raises one of
:data:`PERMANENT_ERRORS` (a configuration error) is not retried by the pool. Importing
this module imports the evaluators' light modules only: no torch, no scikit-learn, no
forecasting stack.

:func:`run_job` is the one place where a worker runs a job and turns what happened
into the message its backend sends back (a local process and a Ray actor alike).
"""

from __future__ import annotations

import importlib
import os
import time
import traceback
from collections.abc import Callable

from cod_monitor.evaluators.base import CorruptCheckpointError, ExactModeError
from cod_monitor.evaluators.evalset import EvalSet
from cod_monitor.evaluators.registry import make_evaluator
from cod_monitor.exceptions import LadderValidationError, MissingExtraError, ParameterError

__all__ = ["EVAL_SET_SPEC_KEYS", "PERMANENT_ERRORS", "load_eval_set", "resolve_job_fn",
           "run_evaluation", "run_job"]

#: Errors of a job's configuration or of its checkpoint's files, not of its run: a retry
#: would fail the same way, so the pool reports them after one attempt (an invalid
#: evaluator parameter or config key, a missing optional dependency, a broken evaluation
#: set, ``exact`` mode on a set it cannot score, a truncated or corrupt checkpoint file).
PERMANENT_ERRORS = (ParameterError, MissingExtraError, LadderValidationError, ExactModeError,
                    CorruptCheckpointError)

#: The keys of an evaluation-set spec dict: ``EvalSet.from_jsonl``'s arguments.
EVAL_SET_SPEC_KEYS = ("path", "name", "scorer", "stop")

_EVALUATORS: dict = {}  # per worker process: evaluator per config (engines are reused)
_EVAL_SETS: dict = {}


def load_eval_set(spec) -> EvalSet:
    """The :class:`~cod_monitor.evaluators.EvalSet` an evaluation-set spec describes.

    Parameters
    ----------
    spec : EvalSet, str, path or dict
        An evaluation set (returned as is), a JSON-lines path, or
        :meth:`EvalSet.from_jsonl <cod_monitor.evaluators.EvalSet.from_jsonl>` keyword
        arguments with ``path`` (``{"path": ..., "stop": "\\n"}``).

    Returns
    -------
    EvalSet

    Raises
    ------
    EvalSetValidationError
        The file breaks the evaluation-set format.
    OSError
        The file cannot be read.
    """
    if isinstance(spec, EvalSet):
        return spec
    kwargs = dict(spec) if isinstance(spec, dict) else {"path": spec}
    return EvalSet.from_jsonl(kwargs.pop("path"), **kwargs)


def _load_eval_set(spec) -> EvalSet:
    """:func:`load_eval_set`, read once per worker process."""
    if isinstance(spec, EvalSet):
        return spec
    key = repr(sorted(spec.items())) if isinstance(spec, dict) else os.fspath(spec)
    if key not in _EVAL_SETS:
        _EVAL_SETS[key] = load_eval_set(spec)
    return _EVAL_SETS[key]


def run_evaluation(snapshot: str, eval_set, config: dict):
    """The default job function: build the evaluator from ``config`` and evaluate.

    Runs inside a worker process. The evaluator is built once per distinct config and
    reused for later jobs (the HF evaluator keeps its tokenized sets; the vLLM one starts
    a fresh engine process per evaluation). An ``hf`` or ``vllm`` config without a
    ``device`` gets the worker's device (``COD_MONITOR_DEVICE``): a vLLM worker on a GPU
    then runs its engine compiled, not in the eager mode of CPU workers.

    Parameters
    ----------
    snapshot : str
        Checkpoint directory.
    eval_set : EvalSet, str or dict
        See :attr:`~cod_monitor.runtime.jobs.Job.eval_set`.
    config : dict
        Evaluator config for :func:`cod_monitor.evaluators.make_evaluator`.

    Returns
    -------
    EvalResult
    """
    cfg = dict(config)
    if cfg.get("backend", "hf") in ("hf", "vllm") and "device" not in cfg:
        cfg["device"] = os.environ.get("COD_MONITOR_DEVICE", "cpu")
    key = repr(sorted(cfg.items(), key=lambda kv: kv[0]))
    evaluator = _EVALUATORS.get(key)
    if evaluator is None:
        evaluator = _EVALUATORS[key] = make_evaluator(cfg)
    return evaluator.evaluate(snapshot, _load_eval_set(eval_set))


def resolve_job_fn(job_fn: Callable | str | None) -> Callable:
    """The job function: :func:`run_evaluation` for ``None``, a ``'module:function'``
    string imported, or the callable itself."""
    if job_fn is None:
        return run_evaluation
    if isinstance(job_fn, str):
        module, _, name = job_fn.partition(":")
        obj = importlib.import_module(module)
        for part in name.split("."):
            obj = getattr(obj, part)
        return obj
    return job_fn


def run_job(fn: Callable, job) -> tuple:
    """Run one job in a worker and say what happened, as the worker's reply message.

    Parameters
    ----------
    fn : callable
        The resolved job function (:func:`resolve_job_fn`).
    job : Job
        The job; ``fn(job.snapshot, job.eval_set, job.config)`` is called.

    Returns
    -------
    tuple
        ``("ok", job_id, result, wall_s)``; ``("fatal", job_id, traceback, wall_s)``
        for one of :data:`PERMANENT_ERRORS`, whose last line says that it is not
        retried and quotes the error; ``("error", job_id, traceback, wall_s)`` for
        anything else raised (see :mod:`cod_monitor.runtime.backend`).
    """
    t0 = time.perf_counter()
    try:
        result = fn(job.snapshot, job.eval_set, job.config)
        return ("ok", job.job_id, result, time.perf_counter() - t0)
    except PERMANENT_ERRORS as exc:
        # the job's configuration or its checkpoint's files are wrong: the last line is
        # what an alert quotes
        why = ("a broken checkpoint file" if isinstance(exc, CorruptCheckpointError)
               else "a configuration error")
        error = f"{traceback.format_exc()}Not retried ({why}): {type(exc).__name__}: {exc}"
        return ("fatal", job.job_id, error, time.perf_counter() - t0)
    except BaseException:
        return ("error", job.job_id, traceback.format_exc(), time.perf_counter() - t0)
