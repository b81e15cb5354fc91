"""The vLLM engine process of :class:`~cod_monitor.evaluators.vllm.VLLMEvaluator`.

:func:`main` runs in a fresh Python process started by ``VLLMEvaluator.evaluate``: it
reads the job (a JSON file: checkpoint, mode, sampling policy, prompts and answers),
starts a ``vllm.LLM`` on the checkpoint, and writes the result (JSON: per-sample log
pass rates in ``exact`` mode, completions in ``sampled`` mode, or ``{"error": ...}``).
Scoring happens in the calling process. vllm, transformers and torch are imported
inside the functions that use them.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
import time
import traceback
from typing import Any

import numpy as np

from cod_monitor._io import atomic_write
from cod_monitor.evaluators.policy import nucleus_logprob_from_topk, processed_logprobs
from cod_monitor.evaluators.tokens import (
    eos_token_ids,
    exact_plan,
    generation_budget,
    sum_alternatives,
    tokenize_samples,
)

__all__ = ["main"]


def _row_dicts(prompt_logprobs: Any, start: int, stop: int) -> list:
    """Rows ``start..stop-1`` of a vLLM ``prompt_logprobs`` as ``{token: (logprob, rank)}``."""
    rows = []
    for pos in range(start, stop):
        d = prompt_logprobs[pos]
        rows.append({int(t): (float(lp.logprob), lp.rank) for t, lp in d.items()})
    return rows


class _RowScorer:
    """Processed log-probability of a token in a row of raw prompt log-probs."""

    def __init__(self, temperature: float, top_p: float, k: int, vocab_size: int):
        self.t, self.p, self.k, self.vocab = temperature, top_p, k, vocab_size

    def __call__(self, row: dict, token: int) -> float | None:
        if len(row) >= self.vocab:
            return self._full(row, token)
        if self.t == 1.0 and self.p >= 1.0:
            hit = row.get(token)
            return None if hit is None else hit[0]
        if self.t == 1.0:
            top = [lp for lp, rank in row.values() if rank is not None and rank <= self.k]
            hit = row.get(token)
            in_top = hit is not None and hit[1] is not None and hit[1] <= self.k
            return nucleus_logprob_from_topk(hit[0] if in_top else None, top, self.p)
        return None

    def _full(self, row: dict, token: int) -> float:
        import torch

        cache = getattr(self, "_cache", None)
        if cache is None or cache[0] is not row:
            vec = torch.full((self.vocab,), -math.inf, dtype=torch.float32)
            ids = torch.tensor(list(row), dtype=torch.long)
            vec[ids] = torch.tensor([v[0] for v in row.values()], dtype=torch.float32)
            self._cache = (row, processed_logprobs(vec, self.t, self.p))
        return float(self._cache[1][token])


def _run_exact(llm: Any, samples: list, job: dict, vocab: int) -> tuple:
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    t, p = job["temperature"], job["top_p"]
    if t == 1.0 and p >= 1.0:
        k = 0
    elif t == 1.0:
        k = job["exact_topk"] or 20
    else:
        k = -1
    scorer = _RowScorer(t, p, k, vocab)

    def score(idx: list, kk: int) -> tuple:
        batch = [samples[i] for i in idx]
        seqs, conts, lookups, terms = exact_plan(batch, share_rows=kk != 0)
        params = SamplingParams(max_tokens=1, prompt_logprobs=kk, detokenize=False, temperature=1.0)
        outs = llm.generate([TokensPrompt(prompt_token_ids=s) for s in seqs], params, use_tqdm=False)
        rows = [_row_dicts(o.prompt_logprobs, len(s) - len(c), len(s)) for o, s, c in zip(outs, seqs, conts)]
        cont_lp, unknown = [], set()
        owner = {}
        for k_s, sample_terms in enumerate(terms):
            for s_idx, _upto, _look in sample_terms:
                owner[s_idx] = k_s
        for s_idx, c in enumerate(conts):
            for j, tok in enumerate(c):
                v = scorer(rows[s_idx][j], tok)
                if v is None:
                    unknown.add(owner[s_idx])
                cont_lp.append(-math.inf if v is None else v)
        look_lp = []
        for s_idx, j, tok in lookups:
            v = scorer(rows[s_idx][j], tok)
            if v is None:
                unknown.add(owner[s_idx])
            look_lp.append(-math.inf if v is None else v)
        probs = sum_alternatives(conts, terms, np.asarray(cont_lp), np.asarray(look_lp))
        return probs, unknown

    idx = list(range(len(samples)))
    probs, unknown = score(idx, k)
    redo = sorted(unknown)
    if redo:
        full, still = score(redo, -1)
        if still:  # full-vocabulary rows determine every probability
            raise RuntimeError(f"prompt log-probs left {len(still)} samples undetermined")
        probs[redo] = full
    with np.errstate(divide="ignore"):
        return [float(v) for v in np.log(np.clip(probs, 0.0, 1.0))], len(redo)


def _run_sampled(llm: Any, samples: list, job: dict, eos: list) -> tuple:
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    budget = generation_budget(samples, job["max_new_tokens"])
    stop = job["stop"]
    n = job["n"]
    # vLLM seeds the j-th of a request's n completions with `seed + j`: space the
    # request seeds n apart so that no two completions (of any prompt) share a
    # random stream (shared streams correlate outcomes across prompts).
    base = job["seed"] * len(samples) * n
    params = [
        SamplingParams(
            n=n, temperature=job["temperature"], top_p=job["top_p"], top_k=0, min_p=0.0,
            seed=base + i * n, max_tokens=budget, stop=[stop] if stop else None,
            stop_token_ids=list(eos) or None, include_stop_str_in_output=False, skip_special_tokens=True,
        )
        for i in range(len(samples))
    ]
    prompts = [TokensPrompt(prompt_token_ids=s.prompt_ids) for s in samples]
    outs = llm.generate(prompts, params, use_tqdm=False)
    return [[c.text for c in o.outputs] for o in outs], budget


def _exit_with_parent() -> None:
    """Kill this process group when the process that started it dies.

    The engine runs as the leader of its own process group (``start_new_session``);
    if the evaluator's process is killed before it can reap the group, the engine
    core and workers would otherwise live on.
    """
    if os.getpgid(0) != os.getpid():  # not started by VLLMEvaluator: leave the group alone
        return
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os.killpg(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="cod-parent-watch", daemon=True).start()


def main(job_path: str, result_path: str) -> None:
    """Run the job in `job_path`, write the result to `result_path`, exit the process.

    Never returns: the process ends with ``os._exit`` (0, or 1 after an error), which
    skips an interpreter teardown that some vLLM CPU builds abort in.
    """
    _exit_with_parent()
    with open(job_path, encoding="utf-8") as fh:
        job = json.load(fh)
    try:
        import vllm
        from transformers import AutoTokenizer, GenerationConfig

        ckpt = job["checkpoint"]
        tokenizer = AutoTokenizer.from_pretrained(ckpt)
        try:
            gen_cfg = GenerationConfig.from_pretrained(ckpt)
        except OSError:
            gen_cfg = None
        eos = eos_token_ids(tokenizer, gen_cfg)
        samples = tokenize_samples(
            tokenizer, job["prompts"], job["answers"], job["stop"], eos, require_end=job["mode"] == "exact"
        )
        kwargs = dict(job["engine_kwargs"])
        if job.get("dtype"):
            kwargs.setdefault("dtype", job["dtype"])
        kwargs.setdefault("seed", job["seed"])
        t0 = time.perf_counter()
        llm = vllm.LLM(model=ckpt, tokenizer=ckpt, **kwargs)
        t1 = time.perf_counter()
        result = {"engine_start_s": t1 - t0, "vllm_version": vllm.__version__,
                  "dtype": str(llm.llm_engine.model_config.dtype).replace("torch.", "")}
        if job["mode"] == "exact":
            vocab = llm.llm_engine.model_config.get_vocab_size()
            result["log_pass"], result["rescored_full_vocab"] = _run_exact(llm, samples, job, vocab)
        else:
            result["completions"], result["max_new_tokens"] = _run_sampled(llm, samples, job, eos)
        result["run_s"] = time.perf_counter() - t1
        try:
            llm.llm_engine.engine_core.shutdown()
        except Exception:  # the parent kills the process group anyway
            pass
    except BaseException as exc:  # reported to the parent through the result file
        traceback.print_exc()
        result = {"error": f"{type(exc).__name__}: {exc}"}
    # json.dumps, not to_jsonable: a log pass rate of -inf must survive (as -Infinity)
    atomic_write(result_path, json.dumps(result))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0 if "error" not in result else 1)
