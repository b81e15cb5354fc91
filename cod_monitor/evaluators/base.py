"""The evaluator seam: a small Protocol, a config-dict factory and shared helpers.

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

This module is light: it imports neither torch nor transformers nor vllm.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from cod_monitor.exceptions import CODError
from cod_monitor.records import EvalResult

__all__ = [
    "Evaluator",
    "BaseEvaluator",
    "ExactModeError",
    "EvaluatorConfigError",
    "make_evaluator",
    "TokenizedSample",
    "tokenize_samples",
    "generation_budget",
    "eos_token_ids",
    "exact_plan",
    "sum_alternatives",
]

MODES = ("exact", "sampled")


class EvaluatorConfigError(CODError, ValueError):
    """An evaluator parameter or config dict is invalid (sklearn-style message)."""


class ExactModeError(CODError, ValueError):
    """``exact`` mode cannot stand for sampled pass rates of this evaluation set."""


@runtime_checkable
class Evaluator(Protocol):
    """What the monitor and the worker pool need from an evaluator.

    Lifecycle
    ---------
    1. **Construct** with plain parameters (cheap; heavy libraries are imported on
       first use). :func:`make_evaluator` builds one from a config dict, so a pool can
       ship the config to a worker process.
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
        The config dict :func:`make_evaluator` rebuilds this evaluator from.
    """

    def evaluate(self, checkpoint: Any, eval_set: Any) -> EvalResult: ...

    def close(self) -> None: ...

    def get_config(self) -> dict: ...

    def __enter__(self) -> Evaluator: ...

    def __exit__(self, *exc: Any) -> None: ...


class BaseEvaluator:
    """Parameter handling shared by the backends (validation, config, context manager).

    Subclasses set ``backend`` and ``_param_names`` and implement ``evaluate``.
    """

    backend = "base"
    _param_names: tuple = ()

    def _validate_common(self) -> None:
        name = type(self).__name__
        if self.mode not in MODES:
            raise EvaluatorConfigError(
                f"The 'mode' parameter of {name} must be a str among {{'exact', 'sampled'}}. Got {self.mode!r} instead."
            )
        if isinstance(self.n, bool) or not isinstance(self.n, int) or self.n < 1:
            raise EvaluatorConfigError(
                f"The 'n' parameter of {name} must be an int in [1, inf). Got {self.n!r} instead."
            )
        t = self.temperature
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not (t > 0 and math.isfinite(t)):
            raise EvaluatorConfigError(
                f"The 'temperature' parameter of {name} must be a float in (0, inf). Got {t!r} instead."
            )
        p = self.top_p
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not (0 < p <= 1):
            raise EvaluatorConfigError(
                f"The 'top_p' parameter of {name} must be a float in (0, 1]. Got {p!r} instead."
            )
        m = self.max_new_tokens
        if m is not None and (isinstance(m, bool) or not isinstance(m, int) or m < 1):
            raise EvaluatorConfigError(
                f"The 'max_new_tokens' parameter of {name} must be an int in [1, inf) or None. Got {m!r} instead."
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise EvaluatorConfigError(f"The 'seed' parameter of {name} must be an int. Got {self.seed!r} instead.")

    def _check_scorer(self, eval_set: Any) -> None:
        if self.mode == "exact" and eval_set.scorer != "exact" and not self.force_exact:
            raise ExactModeError(
                f"exact mode computes the probability of the reference answer verbatim, but eval set "
                f"{eval_set.name!r} uses scorer {eval_set.scorer_name!r}: the exact probability is only a lower "
                "bound of its sampled pass rate. Use mode='sampled', or pass force_exact=True to accept the bound."
            )

    def get_config(self) -> dict:
        """The config dict :func:`make_evaluator` accepts to rebuild this evaluator."""
        cfg = {"backend": self.backend}
        cfg.update({k: getattr(self, k) for k in self._param_names})
        return cfg

    def close(self) -> None:
        """Release resources (no-op by default); idempotent."""

    def __enter__(self):
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._param_names)
        return f"{type(self).__name__}({args})"


def make_evaluator(config: dict) -> Evaluator:
    """Build an evaluator from a plain config dict.

    Plain dicts travel to worker processes (JSON or pickle) where the evaluator is
    rebuilt; :meth:`BaseEvaluator.get_config` is the inverse.

    Parameters
    ----------
    config : dict
        ``backend`` (``'hf'``, the default, or ``'vllm'``) plus the keyword
        arguments of :class:`~cod_monitor.evaluators.hf.HFEvaluator` or
        :class:`~cod_monitor.evaluators.vllm.VLLMEvaluator`, e.g.
        ``{"backend": "hf", "mode": "exact", "n": 100, "temperature": 1.0,
        "top_p": 0.7, "max_new_tokens": None, "batch_size": 32, "seed": 0,
        "device": "cpu"}``.

    Returns
    -------
    Evaluator

    Raises
    ------
    EvaluatorConfigError
        Unknown backend or a key the backend does not take.

    Examples
    --------
    >>> ev = make_evaluator({"backend": "hf", "mode": "exact", "top_p": 0.7})
    >>> ev.get_config()["top_p"]
    0.7
    """
    if not isinstance(config, dict):
        raise EvaluatorConfigError(f"make_evaluator expects a dict. Got {type(config).__name__} instead.")
    cfg = dict(config)
    backend = cfg.pop("backend", "hf")
    if backend == "hf":
        from cod_monitor.evaluators.hf import HFEvaluator as cls
    elif backend == "vllm":
        from cod_monitor.evaluators.vllm import VLLMEvaluator as cls
    else:
        raise EvaluatorConfigError(
            f"The 'backend' key of the evaluator config must be a str among {{'hf', 'vllm'}}. Got {backend!r} instead."
        )
    unknown = sorted(set(cfg) - set(cls._param_names))
    if unknown:
        raise EvaluatorConfigError(
            f"Unknown key(s) {unknown} in the {backend!r} evaluator config; accepted: {sorted(cls._param_names)}."
        )
    return cls(**cfg)


# --------------------------------------------------------------------------- tokens


@dataclass(frozen=True)
class TokenizedSample:
    """Token ids of one sample, as both backends score and generate it.

    Attributes
    ----------
    prompt_ids : list of int
        The prompt, encoded with the tokenizer's special tokens (e.g. BOS).
    alternatives : tuple of tuple of int
        Continuations that count as "the answer, then the end": the answer followed
        by the stop marker, and the answer followed by each end-of-sequence id.
        ``exact`` mode sums their probabilities.
    """

    prompt_ids: list
    alternatives: tuple

    @property
    def max_continuation(self) -> int:
        """Length of the longest alternative (the generation budget it needs)."""
        return max(len(a) for a in self.alternatives)


def _encode(tokenizer: Any, texts: list, special: bool) -> list:
    if not texts:
        return []
    return [list(ids) for ids in tokenizer(list(texts), add_special_tokens=special)["input_ids"]]


def _split_continuation(tokenizer: Any, prompt_ids: list, whole: list, cont: str) -> list:
    # lm-eval's split: encode the whole text, keep what follows the prompt's tokens;
    # when the boundary merges (BPE), encode the continuation alone.
    if whole[: len(prompt_ids)] == prompt_ids and len(whole) > len(prompt_ids):
        return whole[len(prompt_ids):]
    return _encode(tokenizer, [cont], False)[0]


def eos_token_ids(tokenizer: Any, generation_config: Any = None) -> list:
    """End-of-sequence ids: the tokenizer's plus any in the model's generation config."""
    ids = []
    if getattr(tokenizer, "eos_token_id", None) is not None:
        ids.append(int(tokenizer.eos_token_id))
    extra = getattr(generation_config, "eos_token_id", None) if generation_config is not None else None
    if extra is not None:
        for e in ([extra] if isinstance(extra, int) else list(extra)):
            if int(e) not in ids:
                ids.append(int(e))
    return ids


def tokenize_samples(
    tokenizer: Any,
    prompts: Sequence[str],
    answers: Sequence[str],
    stop: str | None,
    eos_ids: Sequence[int],
    *,
    require_end: bool = True,
) -> list:
    """Encode prompts and the accepted continuations of their answers.

    Parameters
    ----------
    tokenizer : transformers tokenizer
        Called as ``tokenizer(text, add_special_tokens=...)["input_ids"]``.
    prompts, answers : sequence of str
    stop : str or None
        Stop marker following the answer.
    eos_ids : sequence of int
        End-of-sequence ids that also end a completion.
    require_end : bool, default=True
        Raise when nothing marks the end of an answer (``exact`` mode needs it);
        otherwise the answer alone is the only alternative.

    Returns
    -------
    list of TokenizedSample

    Raises
    ------
    ExactModeError
        Neither a stop marker nor an end-of-sequence id ends an answer.
    """
    if not stop and not eos_ids and require_end:
        raise ExactModeError(
            "the eval set has no stop marker and the tokenizer no end-of-sequence token, so nothing marks "
            "where an answer ends; give the EvalSet a stop marker (e.g. stop='\\n')."
        )
    prompts, answers = list(prompts), list(answers)
    if len(prompts) != len(answers):
        raise ValueError(f"{len(prompts) = } != {len(answers) = }")
    p_ids = _encode(tokenizer, prompts, True)
    with_stop = _encode(tokenizer, [p + a + stop for p, a in zip(prompts, answers)], True) if stop else None
    bare = _encode(tokenizer, [p + a for p, a in zip(prompts, answers)], True)
    out = []
    for i, (prompt_ids, answer) in enumerate(zip(p_ids, answers)):
        alts = []
        if stop:
            alts.append(tuple(_split_continuation(tokenizer, prompt_ids, with_stop[i], answer + stop)))
        a_ids = tuple(_split_continuation(tokenizer, prompt_ids, bare[i], answer)) if answer else ()
        for e in eos_ids:
            alt = a_ids + (int(e),)
            if alt not in alts:
                alts.append(alt)
        if not alts:
            alts.append(a_ids)
        out.append(TokenizedSample(prompt_ids, tuple(alts)))
    return out


def generation_budget(samples: Sequence[TokenizedSample], max_new_tokens: int | None = None) -> int:
    """New-token budget for sampled mode: the longest answer plus its end marker.

    A shorter budget truncates answers (and can score a truncated answer as right
    when no stop marker is set), so the default is sized from the data.
    """
    if max_new_tokens is not None:
        return int(max_new_tokens)
    return max(s.max_continuation for s in samples)


def exact_plan(batch: Sequence[TokenizedSample], *, share_rows: bool = True) -> tuple:
    """Sequences to run for a batch of samples, and how to sum each alternative.

    Each sample runs its first alternative (the trunk). Another alternative whose
    tokens but the last are a prefix of the trunk is read off the trunk's rows (one
    extra lookup, e.g. EOS after the answer); otherwise, or when `share_rows` is
    False (a backend that only returns the log-probability of the tokens it is
    given), it runs as its own sequence.

    Returns
    -------
    seqs : list of list of int
        Prompt + continuation per sequence.
    conts : list of tuple of int
        Continuation per sequence.
    lookups : list of (seq, row, token)
        Extra (sequence, continuation row, token) log-probabilities to read.
    terms : list of list of (seq, upto, lookup)
        Per sample, its alternatives: the sum of the first `upto` continuation
        log-probabilities of `seq`, plus ``lookups[lookup]`` unless `lookup` is None.
    """
    seqs, conts, lookups, terms = [], [], [], []
    for smp in batch:
        trunk = tuple(smp.alternatives[0])
        t_idx = len(seqs)
        seqs.append(list(smp.prompt_ids) + list(trunk))
        conts.append(trunk)
        t = [(t_idx, len(trunk), None)]
        for alt in smp.alternatives[1:]:
            alt = tuple(alt)
            if share_rows and len(alt) <= len(trunk) and alt[:-1] == trunk[: len(alt) - 1]:
                lookups.append((t_idx, len(alt) - 1, alt[-1]))
                t.append((t_idx, len(alt) - 1, len(lookups) - 1))
            else:
                seqs.append(list(smp.prompt_ids) + list(alt))
                conts.append(alt)
                t.append((len(seqs) - 1, len(alt), None))
        terms.append(t)
    return seqs, conts, lookups, terms


def sum_alternatives(conts: list, terms: list, cont_lp: np.ndarray, lookup_lp: np.ndarray) -> np.ndarray:
    """Probability per sample: sum over alternatives of exp(sum of log-probs)."""
    cum, offset = [], 0
    for c in conts:
        cum.append(np.concatenate([[0.0], np.cumsum(cont_lp[offset:offset + len(c)])]))
        offset += len(c)
    out = np.zeros(len(terms))
    for k, sample_terms in enumerate(terms):
        total = 0.0
        for s, upto, look in sample_terms:
            v = cum[s][upto] + (0.0 if look is None else lookup_lp[look])
            if np.isfinite(v):
                total += math.exp(v)
        out[k] = total
    return out
