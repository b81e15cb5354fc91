"""Token ids of an evaluation set as the backends score and generate them.

Shared by :mod:`~cod_monitor.evaluators.hf` and the vLLM engine process
(:mod:`~cod_monitor.evaluators.vllm_engine`): the encoding of prompts and of the
continuations that count as "the answer, then the end", the generation budget, the
plan of teacher-forced sequences of ``exact`` mode (:func:`exact_plan`, and as flat
index arrays :class:`PlanArrays`) and the sum over its alternatives, and padding
(vectorised: one write per batch). torch is imported only by :func:`left_pad`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np

from cod_monitor.evaluators.base import ExactModeError
from cod_monitor.exceptions import InputError

__all__ = [
    "TokenizedSample",
    "tokenize_samples",
    "eos_token_ids",
    "generation_budget",
    "exact_plan",
    "sum_alternatives",
    "PlanArrays",
    "left_pad",
    "right_pad",
]


@dataclass(frozen=True)
class TokenizedSample:
    """Token ids of one sample, as both backends score and generate it: the prompt,
    and the continuations that count as its answer.

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
        raise InputError(f"{len(prompts) = } != {len(answers) = }")
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
    """Probability per sample: sum over alternatives of exp(sum of log-probs).

    Parameters
    ----------
    conts, terms
        As returned by :func:`exact_plan`.
    cont_lp : array of float
        Log-probabilities of the continuation tokens, ``conts`` concatenated.
    lookup_lp : array of float
        Log-probabilities of the ``lookups`` of :func:`exact_plan`.

    Returns
    -------
    numpy.ndarray of shape (len(terms),)
    """
    layout = PlanArrays.from_plan(conts, [], terms)
    return layout.probabilities(np.asarray(cont_lp, dtype=np.float64), np.asarray(lookup_lp, dtype=np.float64))


@dataclass(frozen=True, eq=False)
class PlanArrays:
    """An :func:`exact_plan` as flat index arrays.

    Gathering and summing log-probabilities then needs no Python loop over samples.

    Attributes
    ----------
    seq_lengths : numpy.ndarray of int64, shape (n_seqs,)
        Tokens per sequence (prompt + continuation).
    cont_lengths : numpy.ndarray of int64, shape (n_seqs,)
        Continuation tokens per sequence.
    tokens : numpy.ndarray of int64
        All sequences' tokens, concatenated.
    cont_tokens : numpy.ndarray of int64
        All continuations' tokens, concatenated (the order of the continuation
        log-probabilities).
    lookup_seq, lookup_row, lookup_token : numpy.ndarray of int64, shape (n_lookups,)
        The plan's ``lookups``.
    term_sample, term_seq, term_upto, term_lookup : numpy.ndarray of int64
        The plan's ``terms``, flattened: the sample each belongs to, its sequence, how
        many continuation log-probs it sums and its lookup (-1 for none).
    n_samples : int
    """

    seq_lengths: np.ndarray
    cont_lengths: np.ndarray
    tokens: np.ndarray
    cont_tokens: np.ndarray
    lookup_seq: np.ndarray
    lookup_row: np.ndarray
    lookup_token: np.ndarray
    term_sample: np.ndarray
    term_seq: np.ndarray
    term_upto: np.ndarray
    term_lookup: np.ndarray
    n_samples: int

    @classmethod
    def from_plan(cls, conts: list, lookups: list, terms: list, seqs: list | None = None) -> PlanArrays:
        """Arrays of the lists :func:`exact_plan` returns.

        Parameters
        ----------
        conts, lookups, terms
            As returned by :func:`exact_plan`.
        seqs : list of list of int, optional
            Its sequences; only :meth:`probabilities` works without them.

        Returns
        -------
        PlanArrays
        """
        ints = np.int64
        flat_terms = [(k, s, upto, -1 if look is None else look)
                      for k, sample_terms in enumerate(terms) for s, upto, look in sample_terms]
        t = np.array(flat_terms, dtype=ints).reshape(-1, 4)
        look = np.array(lookups, dtype=ints).reshape(-1, 3)
        seqs = seqs if seqs is not None else []
        return cls(
            seq_lengths=np.fromiter((len(s) for s in seqs), ints, len(seqs)),
            cont_lengths=np.fromiter((len(c) for c in conts), ints, len(conts)),
            tokens=np.fromiter(chain.from_iterable(seqs), ints),
            cont_tokens=np.fromiter(chain.from_iterable(conts), ints),
            lookup_seq=look[:, 0], lookup_row=look[:, 1], lookup_token=look[:, 2],
            term_sample=t[:, 0], term_seq=t[:, 1], term_upto=t[:, 2], term_lookup=t[:, 3],
            n_samples=len(terms),
        )

    @property
    def cont_starts(self) -> np.ndarray:
        """Offset of each sequence's first continuation log-prob."""
        return np.cumsum(self.cont_lengths) - self.cont_lengths

    def probabilities(self, cont_lp: np.ndarray, lookup_lp: np.ndarray) -> np.ndarray:
        """Per sample, the sum over its alternatives of exp(sum of their log-probs).

        Parameters
        ----------
        cont_lp : numpy.ndarray of float
            Continuation log-probs, in the order of `cont_tokens`.
        lookup_lp : numpy.ndarray of float
            Log-probs of the lookups.

        Returns
        -------
        numpy.ndarray of shape (n_samples,)

        Notes
        -----
        Each sequence's log-probs are summed left to right, as a per-sequence
        ``cumsum`` does, so the result does not depend on the other sequences (a
        ``-inf`` stays in its own sequence); non-finite alternatives count as 0.
        """
        n_seqs = len(self.cont_lengths)
        width = int(self.cont_lengths.max(initial=0))
        # one row per sequence, zero-padded: cumsum along rows sums in the same order
        # as a cumsum of each sequence alone
        table = np.zeros((n_seqs, width + 1))
        seq_of = np.repeat(np.arange(n_seqs), self.cont_lengths)
        col_of = np.arange(len(seq_of)) - np.repeat(self.cont_starts, self.cont_lengths)
        table[seq_of, col_of + 1] = cont_lp
        table[:, 1:] = np.cumsum(table[:, 1:], axis=1)
        v = table[self.term_seq, self.term_upto]
        has_look = self.term_lookup >= 0
        v[has_look] += np.asarray(lookup_lp, dtype=np.float64)[self.term_lookup[has_look]]
        finite = np.isfinite(v)
        p = np.exp(np.where(finite, v, -np.inf))
        return np.bincount(self.term_sample, weights=p, minlength=self.n_samples)[: self.n_samples]


def _pad_array(seqs: Sequence[Sequence[int]], pad_id: int, left: bool) -> tuple:
    """(ids, lengths) as numpy int64: `seqs` padded to one width, filled in one write."""
    lengths = np.fromiter((len(s) for s in seqs), np.int64, len(seqs))
    width = int(lengths.max(initial=0))
    ids = np.full((len(seqs), width), pad_id, dtype=np.int64)
    flat = np.fromiter(chain.from_iterable(seqs), np.int64, int(lengths.sum()))
    rows = np.repeat(np.arange(len(seqs)), lengths)
    cols = np.arange(len(flat)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    if left:
        cols += np.repeat(width - lengths, lengths)
    ids[rows, cols] = flat
    return ids, lengths


def left_pad(seqs: Sequence[Sequence[int]], pad_id: int, device: Any = "cpu") -> tuple:
    """Token ids and attention mask of `seqs`, padded on the left to one width.

    Parameters
    ----------
    seqs : sequence of sequence of int
    pad_id : int
        Id written into the padding.
    device : torch.device or str, default='cpu'

    Returns
    -------
    ids, mask : torch.Tensor of shape (len(seqs), max length), dtype long
        ``mask`` is 1 on tokens and 0 on padding.
    """
    import torch

    ids, lengths = _pad_array(seqs, pad_id, left=True)
    width = ids.shape[1]
    mask = torch.from_numpy(np.arange(width)[None, :] >= (width - lengths)[:, None]).long()
    return torch.from_numpy(ids).to(device), mask.to(device)


def right_pad(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple:
    """Token ids of `seqs` padded on the right to one width, as numpy arrays.

    Parameters
    ----------
    seqs : sequence of sequence of int
    pad_id : int
        Id written into the padding.

    Returns
    -------
    ids : numpy.ndarray of int64, shape (len(seqs), max length)
    lengths : numpy.ndarray of int64, shape (len(seqs),)
    """
    return _pad_array(seqs, pad_id, left=False)
