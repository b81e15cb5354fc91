"""The evaluator seam: the Protocol, the parameters every backend shares, the errors.

An evaluator turns a checkpoint and an :class:`~cod_monitor.evaluators.evalset.EvalSet`
into per-sample pass rates (:class:`~cod_monitor.records.EvalResult`). Two modes:

``sampled``
    Draw `n` completions per prompt with the sampling policy (temperature, top-p),
    cut each at the stop marker and score it; the pass rate is ``n_correct / n``.
``exact``
    Teacher-force the reference answer and compute the probability that the same
    sampling policy emits it followed by the stop marker (or an end-of-sequence
    token): the expectation of the sampled pass rate, without sampling noise, for
    exact-answer sets scored with ``'exact'``.

Backends (:mod:`~cod_monitor.evaluators.hf`, :mod:`~cod_monitor.evaluators.vllm`)
import this module; it imports none of them (the registry,
:mod:`~cod_monitor.evaluators.registry`, finds them by name). It imports neither torch
nor transformers nor vllm.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any, Protocol, runtime_checkable

import numpy as np

from cod_monitor._validation import check_bool, check_choice, check_int, check_real
from cod_monitor.exceptions import CODError, LadderValidationError, ParameterError
from cod_monitor.records import Checkpoint, EvalResult

__all__ = [
    "MODES",
    "Evaluator",
    "BaseEvaluator",
    "EvaluatorConfigError",
    "EvalSetValidationError",
    "ExactModeError",
    "CheckpointError",
    "CorruptCheckpointError",
    "config_errors",
    "checkpoint_location",
]

logger = logging.getLogger(__name__)

#: The evaluation modes every backend implements.
MODES = ("exact", "sampled")


class EvaluatorConfigError(ParameterError):
    """A parameter of an evaluator, or a key of its config dict, is invalid.

    A :class:`~cod_monitor.exceptions.ParameterError` (so a ``CODError`` and a
    ``ValueError``) with its sentence: "The 'top_p' parameter of HFEvaluator must be a
    float in the range (0, 1]. Got 0.0 instead."
    """


class ExactModeError(CODError, ValueError):
    """``exact`` mode cannot stand for sampled pass rates of this evaluation set."""


class CheckpointError(CODError, ValueError):
    """A checkpoint's files do not make the model its config describes."""


class CorruptCheckpointError(CheckpointError):
    """A file of a checkpoint is unusable: truncated, corrupt, missing, or not what the
    others say (weights whose shapes are not the config's).

    Permanent: every attempt would read the same bytes, so the evaluation pool does not
    retry it (it is one of :data:`~cod_monitor.runtime.worker.PERMANENT_ERRORS`).

    Parameters
    ----------
    path : str
        The file (or directory) at fault.
    detail : str
        What is wrong with it, as a phrase (``"truncated or corrupt (SafetensorError:
        ...)"``, ``"missing"``).
    fix : str, optional
        What to do, as a sentence; the default says to check the disk and save again.

    Attributes
    ----------
    path, detail, fix : as given (``fix`` with the default filled in).

    Examples
    --------
    >>> print(CorruptCheckpointError("ckpt/model.safetensors",
    ...                              "truncated or corrupt (SafetensorError: header too small)"))
    Checkpoint file ckpt/model.safetensors: truncated or corrupt (SafetensorError: header too small). Check the disk and the save that wrote it, and save the checkpoint again to evaluate it.
    """

    def __init__(self, path: str, detail: str, fix: str | None = None):
        self.path = str(path)
        self.detail = str(detail)
        self.fix = fix or ("Check the disk and the save that wrote it, and save the checkpoint "
                           "again to evaluate it.")
        super().__init__(f"Checkpoint file {self.path}: {self.detail}. {self.fix}")

    def __reduce__(self):  # picklable across the evaluation workers' process boundary
        return type(self), (self.path, self.detail, self.fix)


class EvalSetValidationError(LadderValidationError):
    """An evaluation set (or its JSONL file) breaks the data contract.

    A :class:`~cod_monitor.exceptions.LadderValidationError` (and so a ``CODError``
    and a ``ValueError``): the message names the field, the value found and the fix.
    """


@contextmanager
def config_errors() -> Iterator[None]:
    """Raise the :class:`ParameterError` of a validation-kit check as an
    :class:`EvaluatorConfigError`, with the same fields and sentence."""
    try:
        yield
    except EvaluatorConfigError:
        raise
    except ParameterError as exc:
        raise EvaluatorConfigError(exc.owner, exc.name, exc.expected, exc.value, exc.hint) from None


def checkpoint_location(checkpoint: Any, owner: str) -> Any:
    """The path of a :class:`~cod_monitor.records.Checkpoint`; any other value as given.

    Parameters
    ----------
    checkpoint : object
        What ``evaluate`` was given.
    owner : str
        The function it was given to, for the error message.

    Raises
    ------
    EvaluatorConfigError
        A ``Checkpoint`` without a path.
    """
    if not isinstance(checkpoint, Checkpoint):
        return checkpoint
    if checkpoint.path is None:
        raise EvaluatorConfigError(
            owner, "checkpoint", "a Checkpoint with a path", checkpoint,
            "Save the checkpoint, or pass an in-memory (model, tokenizer) pair to HFEvaluator.",
        )
    return checkpoint.path


@runtime_checkable
class Evaluator(Protocol):
    """What the monitor and the worker pool need from an evaluator.

    Lifecycle
    ---------
    1. **Construct** with plain parameters (cheap; heavy libraries are imported on
       first use). :func:`~cod_monitor.evaluators.registry.make_evaluator` builds one
       from a config dict, so a pool can ship the config to a worker process.
    2. **evaluate(checkpoint, eval_set)** any number of times. Each call is
       independent: it loads the checkpoint, evaluates every sample, and returns an
       :class:`~cod_monitor.records.EvalResult` whose ``pass_rates`` follow
       ``eval_set``'s order. It never modifies the checkpoint (an in-memory model is
       put back in its training mode).
    3. **close()** releases models, engines and device memory; idempotent. Using the
       evaluator as a context manager calls it on exit.

    Methods
    -------
    evaluate(checkpoint, eval_set) -> EvalResult
        `checkpoint` is a directory in the HF ``save_pretrained`` layout
        (``config.json``, weights, tokenizer files), a
        :class:`~cod_monitor.records.Checkpoint` with a ``path``, or, for the HF
        backend, an in-memory ``(model, tokenizer)`` pair or a
        ``{"state_dict": ..., "config_dir": path}`` dict.
    close() -> None
    get_config() -> dict
        The config dict ``make_evaluator`` rebuilds this evaluator from.
    """

    def evaluate(self, checkpoint: Any, eval_set: Any) -> EvalResult: ...

    def close(self) -> None: ...

    def get_config(self) -> dict: ...

    def __enter__(self) -> Evaluator: ...

    def __exit__(self, *exc: Any) -> None: ...


@dataclass(eq=False, kw_only=True)
class BaseEvaluator:
    """The parameters every backend shares, their validation, the config and the
    context manager.

    A backend is a keyword-only dataclass subclass (``@dataclass(eq=False,
    kw_only=True)``) that sets ``backend`` (its registry name), adds its own parameters
    as fields, extends :meth:`_validate` for them, and implements ``evaluate``. Its
    fields are its parameters: the keys of its config dict (:meth:`param_names`).

    Parameters
    ----------
    mode : {'sampled', 'exact'}, default='sampled'
    n : int, default=100
        Completions per prompt (``sampled`` mode).
    temperature : float, default=1.0
    top_p : float, default=0.7
    max_new_tokens : int or None, default=None
        Generation budget; ``None`` sizes it from the data.
    batch_size : int or None, default=None
    device : str, default='cpu'
    seed : int, default=0
    dtype : object, default=None
    num_threads : int or None, default=None
    force_exact : bool, default=False
        Allow ``exact`` mode with scorers other than ``'exact'``.

    See :class:`~cod_monitor.evaluators.hf.HFEvaluator` for what each means.

    Raises
    ------
    EvaluatorConfigError
        A parameter outside its range.
    """

    backend = "base"

    mode: str = "sampled"
    n: int = 100
    temperature: float = 1.0
    top_p: float = 0.7
    max_new_tokens: int | None = None
    batch_size: int | None = None
    device: str = "cpu"
    seed: int = 0
    dtype: Any = None
    num_threads: int | None = None
    force_exact: bool = False

    def __post_init__(self) -> None:
        self._validate()

    @classmethod
    def param_names(cls) -> tuple[str, ...]:
        """The evaluator's parameters, in signature order: the keys of its config dict."""
        return tuple(f.name for f in fields(cls))

    def _validate(self) -> None:
        """Check the parameters; raises :class:`EvaluatorConfigError`. Backends extend it."""
        owner = type(self).__name__
        with config_errors():
            check_choice(owner, "mode", self.mode, MODES)
            check_int(owner, "n", self.n, 1)
            check_real(owner, "temperature", self.temperature, 0.0)
            check_real(owner, "top_p", self.top_p, 0.0, 1.0, closed="right")
            check_int(owner, "max_new_tokens", self.max_new_tokens, 1, none_ok=True)
            check_int(owner, "batch_size", self.batch_size, 1, none_ok=True)
            check_int(owner, "seed", self.seed)
            check_int(owner, "num_threads", self.num_threads, 1, none_ok=True)
            check_bool(owner, "force_exact", self.force_exact)

    def _check_scorer(self, eval_set: Any) -> None:
        if self.mode == "exact" and eval_set.scorer != "exact" and not self.force_exact:
            raise ExactModeError(
                f"exact mode computes the probability of the reference answer verbatim, but eval set "
                f"{eval_set.name!r} uses scorer {eval_set.scorer_name!r}: the exact probability is only a lower "
                "bound of its sampled pass rate. Use mode='sampled', or pass force_exact=True to accept the bound."
            )

    def _meta(self, eval_set: Any, **extra: Any) -> dict:
        """``EvalResult.meta`` entries every backend records, then `extra`."""
        return {"backend": self.backend, "mode": self.mode, "temperature": float(self.temperature),
                "top_p": float(self.top_p), "seed": self.seed, "scorer": eval_set.scorer_name,
                "stop": eval_set.stop, **extra}

    def _result(self, eval_set: Any, rates: Any, meta: dict, t0: float,
                completions: Any = None) -> EvalResult:
        """The :class:`EvalResult` of an evaluation that started at ``perf_counter()`` `t0`.

        In ``sampled`` mode `completions` (per sample, its `n` completions) are scored
        here and `rates` is ignored; in ``exact`` mode `rates` are the probabilities.
        """
        extra = {}
        if completions is not None:
            correct = np.asarray(eval_set.count_correct(completions), dtype=int)
            rates = correct / self.n
            extra = {"n_samples": np.full(len(eval_set), self.n, dtype=int), "n_correct": correct}
        wall = time.perf_counter() - t0
        logger.debug("%s %s on %r: %d samples in %.2fs", type(self).__name__, self.mode,
                     eval_set.name, len(eval_set), wall)
        return EvalResult(
            eval_set=eval_set.name, sample_ids=eval_set.ids,
            pass_rates=np.clip(np.asarray(rates, dtype=float), 0.0, 1.0),
            mode=self.mode, wall_s=wall, meta=meta, **extra,
        )

    def get_config(self) -> dict:
        """The config dict ``make_evaluator`` accepts to rebuild this evaluator."""
        return {"backend": self.backend, **{k: getattr(self, k) for k in self.param_names()}}

    def close(self) -> None:
        """Release resources (no-op by default); idempotent."""

    def __enter__(self):
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
