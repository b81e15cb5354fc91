"""Hugging Face transformers backend: :class:`HFEvaluator` (CPU or CUDA).

torch and transformers are imported on first use, so importing this module is cheap.
"""

from __future__ import annotations

import hashlib
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from cod_monitor._validation import check_choice
from cod_monitor.evaluators.base import (
    BaseEvaluator,
    EvaluatorConfigError,
    ExactModeError,
    checkpoint_location,
    config_errors,
)
from cod_monitor.evaluators.dcp import resolve_dcp_mapping
from cod_monitor.evaluators.loading import CHECKPOINT_FORMATS, dcp_source, load_hf_checkpoint, require_hf
from cod_monitor.evaluators.policy import processed_logprobs
from cod_monitor.evaluators.tokens import (
    PlanArrays,
    eos_token_ids,
    exact_plan,
    generation_budget,
    left_pad,
    tokenize_samples,
)
from cod_monitor.records import EvalResult

__all__ = ["HFEvaluator"]


#: Tokenized eval sets an HFEvaluator keeps (one per eval set and tokenizer).
_TOKEN_CACHE_SIZE = 16
#: Files that decide what AutoTokenizer.from_pretrained builds from a directory.
_TOKENIZER_FILE_PREFIXES = ("tokenizer", "special_tokens_map", "added_tokens", "vocab", "merges",
                            "chat_template", "spiece", "sentencepiece")


def _tokenizer_key(checkpoint: Any, tokenizer: Any) -> tuple:
    """What identifies the tokenizer a checkpoint was loaded with."""
    checkpoint = checkpoint_location(checkpoint, "HFEvaluator.evaluate")
    if isinstance(checkpoint, dict):
        checkpoint = checkpoint.get("config_dir")
    if isinstance(checkpoint, (str, os.PathLike)) and os.path.isdir(checkpoint):
        digest = hashlib.blake2b(digest_size=16)
        for name in sorted(os.listdir(checkpoint)):
            if name == "config.json" or name.startswith(_TOKENIZER_FILE_PREFIXES):
                path = os.path.join(checkpoint, name)
                if os.path.isfile(path):
                    digest.update(name.encode() + b"\0")
                    with open(path, "rb") as fh:
                        digest.update(fh.read())
                    digest.update(b"\0")
        return ("files", digest.hexdigest(), type(tokenizer).__name__)
    # an in-memory tokenizer: the object itself (kept alive by the key, compared by
    # identity), and its size in case tokens were added to it since
    return ("object", _Identity(tokenizer), len(tokenizer))


class _Identity:
    """Hashes and compares an object by identity, whatever its own ``__eq__``."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any):
        self.obj = obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Identity) and other.obj is self.obj


@contextmanager
def _torch_threads(num_threads: int | None):
    import torch

    if num_threads is None:
        env = os.environ.get("OMP_NUM_THREADS", "")
        num_threads = int(env) if env.isdigit() and int(env) > 0 else None
    if num_threads is None or num_threads == torch.get_num_threads():
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(old)


#: The ``dtype`` names HFEvaluator takes (``'auto'``: the checkpoint's own, as ``None``).
_DTYPE_NAMES = ("auto", "float32", "float", "float16", "half", "bfloat16", "float64", "double")


@dataclass(eq=False, kw_only=True)
class HFEvaluator(BaseEvaluator):
    """Per-sample pass rates with HF transformers, on CPU or CUDA.

    Parameters
    ----------
    mode : {'sampled', 'exact'}, default='sampled'
        ``'sampled'``: `n` completions per prompt with
        ``generate(do_sample=True, temperature, top_p, num_return_sequences=n)``,
        cut at the stop marker and scored; pass rate ``n_correct / n``.
        ``'exact'``: the probability that the same sampling policy emits the
        reference answer and then the stop marker (or an end-of-sequence token),
        from one teacher-forced forward pass per batch. Valid for exact-answer sets
        scored with ``'exact'``; see Notes.
    n : int, default=100
        Completions per prompt (``sampled`` mode).
    temperature : float, default=1.0
    top_p : float, default=0.7
        Nucleus mass; 1.0 disables the nucleus. Top-k is always off.
    max_new_tokens : int or None, default=None
        Generation budget; ``None`` sizes it from the longest tokenised answer plus
        its end marker (a shorter budget truncates answers).
    batch_size : int or None, default=None
        Prompts per batch. ``None``: 64 in ``exact`` mode, ``max(1, 1024 // n)``
        in ``sampled`` mode (so about 1,000 sequences are generated together). In
        ``exact`` mode, the most teacher-forced sequences per forward pass (one per
        prompt, plus one per answer tokenisation that cannot share its rows); the
        sequences, sorted by length, are cut where padding and passes cost least.
    device : str, default='cpu'
        ``'cpu'``, ``'cuda'`` or ``'cuda:<i>'``. In-memory models stay on their own
        device.
    seed : int, default=0
        Seed of the sampling RNG; the caller's global torch RNG state is restored.
    dtype : torch.dtype, str or None, default=None
        Dtype for loaded checkpoints; ``None`` keeps the saved dtype.
    num_threads : int or None, default=None
        torch CPU threads during ``evaluate`` (restored afterwards); ``None`` uses
        ``OMP_NUM_THREADS`` when set, else torch's default.
    force_exact : bool, default=False
        Allow ``exact`` mode with scorers other than ``'exact'`` (the result is then
        a lower bound of the sampled pass rate).
    checkpoint_format : {'auto', 'hf', 'dcp'}, default='auto'
        ``'auto'``: a checkpoint directory with a ``.metadata`` file is a torch
        Distributed Checkpoint (torchtitan, Megatron-core ``torch_dist``), converted
        to HF weights by `dcp_mapping`; any other is a ``save_pretrained`` directory.
        ``'dcp'`` refuses directories that are not DCP; ``'hf'`` never reads DCP.
    dcp_mapping : str, default='torchtitan_llama'
        How DCP tensor names become the HF model's: a name registered with
        :func:`~cod_monitor.evaluators.dcp.register_dcp_mapping` (built in:
        ``'torchtitan_llama'``) or a ``'module:function'`` path.
    config_dir : str or None, default=None
        For DCP checkpoints, the directory with the model's HF ``config.json`` and
        tokenizer files; ``None``: the checkpoint directory itself (a monitor
        snapshot gets them from ``CheckpointConfig(config_dir=...)``).

    Notes
    -----
    ``exact`` mode. For a prompt :math:`x` and the accepted continuations
    :math:`y` (the answer's tokens followed by the stop marker's, and the answer's
    tokens followed by each end-of-sequence id), the pass rate is

    .. math::

        \\sum_y \\prod_t \\pi(y_t \\mid x, y_{<t}),\\qquad
        \\pi = \\mathrm{nucleus}_{p}\\big(\\mathrm{softmax}(z / T)\\big),

    exactly the probability that ``sampled`` mode scores the sample right when
    the scorer is ``'exact'`` and the answer has one tokenisation (true for
    character-level tokenisers; with BPE, other segmentations of the same text
    are not counted, so the value is a lower bound). See
    :func:`~cod_monitor.evaluators.policy.processed_logprobs` for :math:`\\pi`.

    References
    ----------
    Xu et al., "Unveiling Downstream Performance Scaling of LLMs: A
    Clustering-Based Perspective", arXiv:2502.17262.

    Examples
    --------
    >>> ev = HFEvaluator(mode="exact", top_p=0.7)  # doctest: +SKIP
    >>> result = ev.evaluate("ckpt/step-1000", eval_set)  # doctest: +SKIP
    >>> result.pass_rates.shape == (len(eval_set),)  # doctest: +SKIP
    True
    """

    backend = "hf"

    checkpoint_format: str = "auto"
    dcp_mapping: str = "torchtitan_llama"
    config_dir: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.config_dir is not None:
            self.config_dir = os.fspath(self.config_dir)
        # tokenized eval sets, least recently used first (see _tokenized)
        self._token_cache: dict = {}
        # exact mode's batches of those sets (see _cached_batches)
        self._plan_cache: dict = {}

    def _validate(self) -> None:
        super()._validate()
        owner = type(self).__name__
        with config_errors():
            check_choice(owner, "checkpoint_format", self.checkpoint_format, CHECKPOINT_FORMATS)
        resolve_dcp_mapping(self.dcp_mapping, owner, "dcp_mapping")
        if self.config_dir is not None and not isinstance(self.config_dir, (str, os.PathLike)):
            raise EvaluatorConfigError(owner, "config_dir", "a directory path or None", self.config_dir)
        # here, not when the worker loads a checkpoint: a typo would fail every evaluation
        dtype = self.dtype
        is_torch_dtype = type(dtype).__module__ == "torch" and type(dtype).__name__ == "dtype"
        if not (dtype is None or is_torch_dtype or dtype in _DTYPE_NAMES):
            raise EvaluatorConfigError(
                owner, "dtype", "a torch floating dtype, its name or None", dtype,
                f"Use one of {', '.join(repr(n) for n in _DTYPE_NAMES)} (None keeps the "
                "checkpoint's own dtype).")

    def _batch(self) -> int:
        if self.batch_size is not None:
            return self.batch_size
        return 64 if self.mode == "exact" else max(1, 1024 // self.n)

    def evaluate(self, checkpoint: Any, eval_set: Any) -> EvalResult:
        """Evaluate a checkpoint on an eval set.

        Parameters
        ----------
        checkpoint : path-like, Checkpoint, (model, tokenizer) or dict
            See :func:`~cod_monitor.evaluators.loading.load_hf_checkpoint` (a torch
            DCP directory included).
        eval_set : EvalSet

        Returns
        -------
        EvalResult
            ``pass_rates`` in the eval set's order; ``n_samples``/``n_correct`` in
            ``sampled`` mode.

        Raises
        ------
        ExactModeError
            ``exact`` mode with a scorer other than ``'exact'`` (unless
            `force_exact`), or nothing marking the end of an answer.
        MissingExtraError
            torch or transformers is missing.
        EvaluatorConfigError
            A CUDA `device` where torch sees none, a checkpoint of another form, or a
            DCP checkpoint without an HF config (see `config_dir`).
        CheckpointError
            A checkpoint whose weights do not fit its config; a DCP checkpoint that
            lacks a tensor `dcp_mapping` reads.
        """
        require_hf()
        import torch

        self._check_scorer(eval_set)
        if str(self.device).startswith("cuda") and not torch.cuda.is_available():
            raise EvaluatorConfigError("HFEvaluator", "device", "'cpu' where torch sees no CUDA device",
                                       self.device)
        t0 = time.perf_counter()
        completions = rates = None
        formats = {"checkpoint_format": self.checkpoint_format, "config_dir": self.config_dir}
        dcp = dcp_source(checkpoint, **formats, owner="HFEvaluator.evaluate")
        with _torch_threads(self.num_threads):
            model, tokenizer, owned, label = load_hf_checkpoint(
                checkpoint, device=self.device, dtype=self.dtype, dcp_mapping=self.dcp_mapping, **formats)
            was_training = model.training
            model.eval()
            try:
                eos = eos_token_ids(tokenizer, getattr(model, "generation_config", None))
                # a DCP checkpoint's tokenizer comes from its HF files' directory
                samples = self._tokenized(checkpoint if dcp is None else dcp[1], tokenizer, eval_set, eos)
                meta = self._meta(eval_set, checkpoint=label, device=str(model.device),
                                  dtype=str(next(model.parameters()).dtype).replace("torch.", ""))
                with torch.inference_mode():
                    if self.mode == "exact":
                        rates = self._exact(model, tokenizer, samples)
                    else:
                        completions, budget = self._sample(model, tokenizer, samples, eos, eval_set.stop)
                        meta.update(n=self.n, max_new_tokens=budget)
            finally:
                if was_training:
                    model.train()
                if owned:
                    del model
                    if str(self.device).startswith("cuda"):
                        torch.cuda.empty_cache()
        return self._result(eval_set, rates, meta, t0, completions)

    def _tokenized(self, checkpoint: Any, tokenizer: Any, eval_set: Any, eos: list) -> list:
        """``tokenize_samples`` of the eval set, reused while the tokenizer is the same.

        A monitor evaluates the same sets with the same tokenizer at every checkpoint.
        The key compares the eval set's text and the tokenizer's files (or, in memory,
        the tokenizer object), so a different tokenizer or set is never served stale ids.
        """
        key = (_tokenizer_key(checkpoint, tokenizer), tuple(eval_set.prompts),
               tuple(eval_set.answers), eval_set.stop, tuple(eos), self.mode == "exact")
        cache = self._token_cache
        if key in cache:
            cache[key] = cache.pop(key)  # most recently used last
            return cache[key]
        samples = tokenize_samples(tokenizer, eval_set.prompts, eval_set.answers, eval_set.stop, eos,
                                   require_end=self.mode == "exact")
        cache[key] = samples
        while len(cache) > _TOKEN_CACHE_SIZE:
            cache.pop(next(iter(cache)))
        return samples

    # ------------------------------------------------------------------ exact
    def _exact(self, model: Any, tokenizer: Any, samples: list) -> np.ndarray:
        import torch

        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        batches, plan = self._cached_batches(samples, pad)
        device = model.device
        n_cont = len(plan.cont_tokens)
        logprobs = np.empty(n_cont + len(plan.lookup_token))
        for batch in batches:
            ids = torch.from_numpy(batch.ids).to(device)
            try:
                # right-padded: no attention mask or position ids needed (see _ExactBatch)
                logits = model(input_ids=ids, use_cache=False, logits_to_keep=batch.keep).logits
            except TypeError:
                logits = model(input_ids=ids).logits
            window = logits[:, -batch.keep:, :]
            vocab = window.shape[-1]
            rows = window.reshape(-1, vocab).index_select(0, torch.from_numpy(batch.rows).to(device))
            lp = processed_logprobs(rows, self.temperature, self.top_p)
            flat = torch.from_numpy(batch.target_row * vocab + batch.target_token).to(device)
            logprobs[batch.dest] = lp.reshape(-1).index_select(0, flat).double().cpu().numpy()
        out = plan.probabilities(logprobs[:n_cont], logprobs[n_cont:])
        return np.clip(out, 0.0, 1.0)

    def _cached_batches(self, samples: list, pad_id: int) -> tuple:
        """:func:`_exact_batches` of `samples`, kept while their tokenisation is cached.

        Built once per tokenized eval set (a monitor scores the same set at every
        checkpoint), like the tokenisation itself.
        """
        key = (_Identity(samples), self._batch(), pad_id)
        cache = self._plan_cache
        if key in cache:
            cache[key] = cache.pop(key)  # most recently used last
            return cache[key]
        cache[key] = _exact_batches(samples, self._batch(), pad_id)
        while len(cache) > _TOKEN_CACHE_SIZE:
            cache.pop(next(iter(cache)))
        return cache[key]

    # ------------------------------------------------------------------ sampled
    def _sample(self, model: Any, tokenizer: Any, samples: list, eos: list, stop: str | None) -> tuple:
        import torch
        from transformers import GenerationConfig

        budget = generation_budget(samples, self.max_new_tokens)
        stop_id = _single_stop_token(tokenizer, samples, stop, eos)
        finish = list(eos) + ([stop_id] if stop_id is not None else [])
        pad = tokenizer.pad_token_id
        if pad is None:
            pad = eos[0] if eos else 0
        gen = GenerationConfig(
            do_sample=True, temperature=float(self.temperature), top_p=float(self.top_p), top_k=0,
            num_return_sequences=self.n, max_new_tokens=budget, pad_token_id=pad,
            eos_token_id=finish or None, bos_token_id=tokenizer.bos_token_id,
        )
        device = model.device
        completions: list = [None] * len(samples)
        order = sorted(range(len(samples)), key=lambda i: len(samples[i].prompt_ids))
        bs = self._batch()
        saved_config = getattr(model, "generation_config", None)
        # A fresh config: the checkpoint's generation_config.json (top_k, repetition
        # penalty, ...) must not alter the sampling policy.
        model.generation_config = GenerationConfig()
        devices = [device] if device.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(self.seed)
                for start in range(0, len(order), bs):
                    batch = order[start:start + bs]
                    ids, mask = left_pad([samples[i].prompt_ids for i in batch], pad, device)
                    seqs = model.generate(input_ids=ids, attention_mask=mask, generation_config=gen)
                    new = seqs[:, ids.shape[1]:].tolist()
                    for b, i in enumerate(batch):
                        rows = new[b * self.n:(b + 1) * self.n]
                        completions[i] = [_decode(tokenizer, r, eos, stop_id) for r in rows]
        finally:
            if saved_config is not None:
                model.generation_config = saved_config
        return completions, budget


@dataclass(frozen=True, eq=False)
class _ExactBatch:
    """One forward pass of ``exact`` mode, as numpy arrays (made once per eval set).

    Attributes
    ----------
    ids : numpy.ndarray of int64, shape (n_seqs, width)
        Token ids, padded on the right: a causal model's outputs at a sequence's own
        positions do not see the padding after it, so no attention mask or position
        ids are needed (and the attention runs its plain causal path).
    keep : int
        ``logits_to_keep``: the last `keep` positions hold every scored row.
    rows : numpy.ndarray of int64
        Scored rows of the kept window flattened to ``(n_seqs * keep, vocab)``, one
        per continuation token (the row that predicts it), sequence by sequence.
    target_row, target_token : numpy.ndarray of int64
        Each log-prob to read: an index into `rows` and the token (continuation tokens
        first, then lookups that share a continuation's row).
    dest : numpy.ndarray of int64
        Where each read log-prob goes in the evaluation's vector (continuation
        log-probs in :class:`PlanArrays` order, then lookups).
    """

    ids: np.ndarray
    keep: int
    rows: np.ndarray
    target_row: np.ndarray
    target_token: np.ndarray
    dest: np.ndarray


#: What one more forward pass costs, in padded tokens, when exact mode cuts its batches.
#: HF's per-pass overhead (Python modules, masks, rotary tables: 2-5 ms on CPU) is the
#: time of 100-500 tokens of the demo's models; passes of larger models cost fewer.
_PASS_COST_TOKENS = 256


def _length_batches(lengths: np.ndarray, batch_size: int, pass_cost: float = _PASS_COST_TOKENS) -> list:
    """Cut sequences sorted by length into batches: fewest padded tokens plus passes.

    Minimises ``sum(n_b * width_b) + pass_cost * n_batches`` (``width_b``: the batch's
    longest sequence) over cuts of the sorted order into runs of at most `batch_size`,
    by dynamic programming (O(len(lengths) * batch_size), once per eval set). Plain
    chunks of `batch_size` pad short sequences to the length of the longest one in
    their chunk (8% of the demo set's tokens at 256); one pass per distinct length
    pays HF's per-pass overhead many times over.

    Parameters
    ----------
    lengths : numpy.ndarray of int, sorted ascending
    batch_size : int
    pass_cost : float
        Cost of one forward pass, in padded tokens.

    Returns
    -------
    list of (start, stop)
        Consecutive slices of the sorted order.
    """
    n = len(lengths)
    best = np.zeros(n + 1)
    start = np.zeros(n + 1, dtype=np.int64)
    for stop in range(1, n + 1):
        first = np.arange(max(0, stop - batch_size), stop)
        cost = best[first] + (stop - first) * lengths[stop - 1]
        k = int(np.argmin(cost))  # the first minimum: the longest batch among equals
        best[stop], start[stop] = cost[k] + pass_cost, first[k]
    cuts, stop = [], n
    while stop > 0:
        cuts.append((int(start[stop]), stop))
        stop = int(start[stop])
    return cuts[::-1]


def _exact_batches(samples: list, batch_size: int, pad_id: int) -> tuple:
    """Right-padded forward passes of ``exact`` mode and the plan to sum their log-probs.

    Sequences of :func:`exact_plan` are sorted by length and cut into batches of at most
    `batch_size` sequences where padding and passes cost least (:func:`_length_batches`);
    all index arithmetic is vectorised.

    Parameters
    ----------
    samples : list of TokenizedSample
    batch_size : int
        Sequences per forward pass.
    pad_id : int
        Id written into the padding (never seen by the scored positions).

    Returns
    -------
    batches : list of _ExactBatch
    plan : PlanArrays
        Continuation log-probs are numbered in its order, lookups after them.

    Raises
    ------
    ExactModeError
        A prompt that encodes to no token (nothing predicts the answer's first token).
    """
    seqs, conts, lookups, terms = exact_plan(samples)
    plan = PlanArrays.from_plan(conts, lookups, terms, seqs)
    lengths, cont_len = plan.seq_lengths, plan.cont_lengths
    prompt_len = lengths - cont_len
    if len(prompt_len) and prompt_len.min() < 1:
        raise ExactModeError("a prompt encodes to no token, so nothing predicts its answer's first token; "
                             "use a tokenizer that adds a BOS token or give every prompt some text.")
    seq_start = np.cumsum(lengths) - lengths
    cont_start = plan.cont_starts
    n_cont = len(plan.cont_tokens)
    order = np.argsort(lengths, kind="stable")
    batches = []
    for first, stop in _length_batches(lengths[order], batch_size):
        sel = order[first:stop]
        n, ln, cl, pl = len(sel), lengths[sel], cont_len[sel], prompt_len[sel]
        width = int(ln.max())
        col = np.arange(width)
        src = seq_start[sel][:, None] + col[None, :]
        ids = np.where(col[None, :] < ln[:, None], plan.tokens[np.minimum(src, len(plan.tokens) - 1)], pad_id)
        keep = width - int(pl.min()) + 1
        # continuation token j of row r sits at position pl[r] + j and is predicted by
        # the logits at pl[r] + j - 1, which is window row pl[r] + j - 1 - (width - keep)
        row_of = np.repeat(np.arange(n), cl)
        row_first = np.cumsum(cl) - cl  # each row's first scored row among `rows`
        j = np.arange(int(cl.sum())) - np.repeat(row_first, cl)
        rows = row_of * keep + np.repeat(pl, cl) + j - 1 - (width - keep)
        dest = np.repeat(cont_start[sel], cl) + j
        # lookups of the batch's sequences: row `lookup_row` of that sequence's rows
        pos = np.full(len(lengths), -1)
        pos[sel] = np.arange(n)
        looks = np.flatnonzero(pos[plan.lookup_seq] >= 0)
        look_rows = row_first[pos[plan.lookup_seq[looks]]] + plan.lookup_row[looks]
        batches.append(_ExactBatch(
            ids=ids, keep=keep, rows=rows,
            target_row=np.concatenate([np.arange(len(rows)), look_rows]),
            target_token=np.concatenate([plan.cont_tokens[dest], plan.lookup_token[looks]]),
            dest=np.concatenate([dest, n_cont + looks]),
        ))
    return batches, plan


def _single_stop_token(tokenizer: Any, samples: list, stop: str | None, eos: list) -> int | None:
    """Id of the stop marker if it is one token ending every answer+stop continuation."""
    if not stop:
        return None
    ids = list(tokenizer(stop, add_special_tokens=False)["input_ids"])
    if len(ids) != 1:
        return None
    tok = ids[0]
    if all(s.alternatives[0] and s.alternatives[0][-1] == tok for s in samples):
        return tok
    return None


def _decode(tokenizer: Any, row: list, eos: list, stop_id: int | None) -> str:
    """Decode a generated row up to its first end token (a stop token is kept)."""
    for k, tok in enumerate(row):
        if tok in eos:
            row = row[:k]
            break
        if tok == stop_id:
            row = row[:k + 1]
            break
    return tokenizer.decode(row, skip_special_tokens=True)
