"""Evaluators: per-sample pass rates of a checkpoint on an evaluation set.

- :class:`EvalSet` / :class:`EvalSample`: prompts, reference answers, a scorer and a
  stop marker (JSONL on disk).
- :class:`Evaluator`: the Protocol the monitor and worker pool use, with
  :func:`make_evaluator` building one from a plain config dict.
- :class:`HFEvaluator` (transformers, CPU or CUDA) and :class:`VLLMEvaluator` (vLLM,
  engine in a subprocess).

Importing this package does not import torch, transformers or vllm; the backends
import them when they evaluate.
"""

from cod_monitor.evaluators.base import (
    BaseEvaluator,
    Evaluator,
    EvaluatorConfigError,
    ExactModeError,
    make_evaluator,
)
from cod_monitor.evaluators.evalset import (
    SCORERS,
    EvalSample,
    EvalSet,
    EvalSetValidationError,
    cut_at_stop,
    normalize_text,
    resolve_scorer,
)
from cod_monitor.evaluators.hf import HFEvaluator
from cod_monitor.evaluators.vllm import VLLMEvaluator

__all__ = [
    "BaseEvaluator",
    "Evaluator",
    "EvaluatorConfigError",
    "ExactModeError",
    "make_evaluator",
    "SCORERS",
    "EvalSample",
    "EvalSet",
    "EvalSetValidationError",
    "cut_at_stop",
    "normalize_text",
    "resolve_scorer",
    "HFEvaluator",
    "VLLMEvaluator",
]
