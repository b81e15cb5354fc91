"""Evaluators: per-sample pass rates of a checkpoint on an evaluation set.

- :class:`EvalSet` / :class:`EvalSample` (:mod:`~cod_monitor.evaluators.evalset`):
  prompts, reference answers, a scorer and a stop marker (JSONL on disk); the scorers
  are in :mod:`~cod_monitor.evaluators.scoring`.
- :class:`Evaluator` (:mod:`~cod_monitor.evaluators.base`): the Protocol the monitor
  and the worker pool use, with :class:`BaseEvaluator` and the errors.
- :func:`make_evaluator`, :func:`register_backend`
  (:mod:`~cod_monitor.evaluators.registry`): an evaluator from a plain config dict.
- :class:`HFEvaluator` (transformers, CPU or CUDA) and :class:`VLLMEvaluator` (vLLM,
  engine in a subprocess), built on :mod:`~cod_monitor.evaluators.tokens` (token ids)
  and :mod:`~cod_monitor.evaluators.policy` (the sampling policy's log-probabilities).
- :func:`run_settings` (:mod:`~cod_monitor.evaluators.settings`): the evaluation
  settings (stop marker, scorer, mode, temperature, ...) of an evaluation set and an
  evaluator config, which a ladder records and the monitor compares.
- :func:`register_dcp_mapping`, :func:`dcp_to_hf_state_dict`
  (:mod:`~cod_monitor.evaluators.dcp`): torch DCP checkpoints (torchtitan, Megatron-core
  ``torch_dist``) read as HF weights through a pluggable name mapping.

Names are loaded on first use (PEP 562): importing this package imports no backend,
and neither torch nor transformers nor vllm; the backends import them when they
evaluate.
"""

from typing import TYPE_CHECKING

from cod_monitor._lazy import lazy_attributes

_BASE = "cod_monitor.evaluators.base"
_SCORING = "cod_monitor.evaluators.scoring"
_EXPORTS: dict[str, str] = {
    "BaseEvaluator": _BASE,
    "CheckpointError": _BASE,
    "CorruptCheckpointError": _BASE,
    "Evaluator": _BASE,
    "EvaluatorConfigError": _BASE,
    "EvalSetValidationError": _BASE,
    "ExactModeError": _BASE,
    "dcp_mappings": "cod_monitor.evaluators.dcp",
    "dcp_to_hf_state_dict": "cod_monitor.evaluators.dcp",
    "register_dcp_mapping": "cod_monitor.evaluators.dcp",
    "make_evaluator": "cod_monitor.evaluators.registry",
    "register_backend": "cod_monitor.evaluators.registry",
    "run_settings": "cod_monitor.evaluators.settings",
    "SCORERS": _SCORING,
    "cut_at_stop": _SCORING,
    "normalize_text": _SCORING,
    "resolve_scorer": _SCORING,
    "EvalSample": "cod_monitor.evaluators.evalset",
    "EvalSet": "cod_monitor.evaluators.evalset",
    "HFEvaluator": "cod_monitor.evaluators.hf",
    "VLLMEvaluator": "cod_monitor.evaluators.vllm",
}

if TYPE_CHECKING:
    from cod_monitor.evaluators.base import (
        BaseEvaluator,
        CheckpointError,
        CorruptCheckpointError,
        EvalSetValidationError,
        Evaluator,
        EvaluatorConfigError,
        ExactModeError,
    )
    from cod_monitor.evaluators.dcp import dcp_mappings, dcp_to_hf_state_dict, register_dcp_mapping
    from cod_monitor.evaluators.evalset import EvalSample, EvalSet
    from cod_monitor.evaluators.hf import HFEvaluator
    from cod_monitor.evaluators.registry import make_evaluator, register_backend
    from cod_monitor.evaluators.scoring import SCORERS, cut_at_stop, normalize_text, resolve_scorer
    from cod_monitor.evaluators.settings import run_settings
    from cod_monitor.evaluators.vllm import VLLMEvaluator

__all__ = [
    "SCORERS",
    "BaseEvaluator",
    "CheckpointError",
    "CorruptCheckpointError",
    "EvalSample",
    "EvalSet",
    "EvalSetValidationError",
    "Evaluator",
    "EvaluatorConfigError",
    "ExactModeError",
    "HFEvaluator",
    "VLLMEvaluator",
    "cut_at_stop",
    "dcp_mappings",
    "dcp_to_hf_state_dict",
    "make_evaluator",
    "normalize_text",
    "register_backend",
    "register_dcp_mapping",
    "resolve_scorer",
    "run_settings",
]

__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS, globals())
