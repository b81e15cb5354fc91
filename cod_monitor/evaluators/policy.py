"""Log-probabilities of the sampling policy: temperature, then nucleus (top-p).

The one implementation of the policy's log-probabilities, used by ``exact`` mode of
every backend (and so by the demo's ladder build): :func:`processed_logprobs` from a
full row of logits, and :func:`nucleus_logprob_from_topk` from a row's top-k raw
log-probabilities (what vLLM returns for prompt tokens). Both follow HF
``generate(do_sample=True)``: ``TemperatureLogitsWarper`` (divide by the temperature),
then ``TopPLogitsWarper`` (keep the most likely tokens whose mass reaches `top_p`,
always the top token), then a softmax over what is left.

torch is imported only by :func:`processed_logprobs`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["processed_logprobs", "nucleus_logprob_from_topk"]


def processed_logprobs(logits: Any, temperature: float = 1.0, top_p: float = 1.0) -> Any:
    """Log-probabilities of the sampling policy over the whole vocabulary.

    Computed in float32, as ``generate`` does.

    Parameters
    ----------
    logits : torch.Tensor of shape (..., vocab)
    temperature : float, default=1.0
    top_p : float, default=1.0

    Returns
    -------
    torch.Tensor of shape (..., vocab)
        ``-inf`` for tokens outside the nucleus.

    Notes
    -----
    With :math:`q = \\mathrm{softmax}(z / T)` sorted in decreasing order, token
    :math:`i` is kept iff :math:`\\sum_{j<i} q_j < p` (the smallest prefix whose mass
    reaches `top_p`), and the policy is :math:`q_i / \\sum_{kept} q_j` on kept tokens.
    Ties are broken as ``TopPLogitsWarper`` breaks them (its ascending sort drops the
    tokens whose ascending cumulative probability is ``<= 1 - top_p``).

    The nucleus is found from the sorted values alone: a row keeps the tokens at or
    above its smallest kept value (on CPU the values are sorted with numpy, several
    times faster than ``torch.sort`` on short rows). Rows where tokens of that value
    straddle the cut are redone with the warper's own argsort, so ties fall as they
    fall in ``generate``.

    Examples
    --------
    >>> import torch
    >>> lp = processed_logprobs(torch.tensor([2.0, 1.0, 0.0]), top_p=0.7)
    >>> [round(float(v), 3) for v in lp.exp()]
    [0.731, 0.269, 0.0]
    """
    import torch

    scores = _scaled(logits, temperature)
    if top_p < 1.0 and scores.shape[-1] > 0:
        smallest_kept, tied = _nucleus_cut(scores, top_p)
        remove = scores < smallest_kept
        if tied is not None:
            remove[tied] = _outside_nucleus_argsort(scores[tied], top_p)
        scores = scores.masked_fill(remove, -math.inf)
    return torch.log_softmax(scores, dim=-1)


def _scaled(logits: Any, temperature: float) -> Any:
    """Float32 scores divided by the temperature (``TemperatureLogitsWarper``)."""
    import torch

    scores = logits.to(torch.float32)
    return scores / temperature if temperature != 1.0 else scores


def _nucleus_cut(scores: Any, top_p: float) -> tuple:
    """Where ``TopPLogitsWarper`` cuts rows of `scores`, from their sorted values alone.

    Returns
    -------
    smallest_kept : torch.Tensor, shape (..., 1)
        Tokens below it are removed, tokens at or above it kept.
    tied : torch.Tensor of bool, shape (...), or None
        Rows where equal values straddle the cut (which of them go then depends on
        the warper's sort order); None when no row has such a tie.
    """
    import torch

    if scores.device.type == "cpu":
        sorted_scores = torch.from_numpy(np.sort(scores.detach().numpy(), axis=-1))
    else:
        sorted_scores = torch.sort(scores, dim=-1).values
    cumulative = sorted_scores.softmax(dim=-1).cumsum(dim=-1)
    # cumulative never decreases, so the removed positions (cumulative <= 1 - top_p) are
    # a prefix, counted by a binary search; the top one always stays
    bound = torch.full((*cumulative.shape[:-1], 1), 1 - top_p, dtype=cumulative.dtype, device=cumulative.device)
    n_removed = torch.searchsorted(cumulative, bound, right=True).clamp(max=scores.shape[-1] - 1)
    smallest_kept = sorted_scores.gather(-1, n_removed)
    largest_removed = sorted_scores.gather(-1, (n_removed - 1).clamp(min=0))
    tied = ((n_removed > 0) & (largest_removed == smallest_kept)).squeeze(-1)
    return smallest_kept, (tied if bool(tied.any()) else None)


def _outside_nucleus_argsort(scores: Any, top_p: float) -> Any:
    """``TopPLogitsWarper``'s own mask: ascending argsort, cumulative mass, scatter back."""
    import torch

    sorted_logits, sorted_idx = torch.sort(scores, descending=False)
    cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    remove = cumulative <= (1 - top_p)
    remove[..., -1:] = False
    return remove.scatter(-1, sorted_idx, remove)


def nucleus_logprob_from_topk(
    token_logprob: float | None, topk_logprobs: Any, top_p: float
) -> float | None:
    """Policy log-probability of a token at temperature 1 from a row's top-k raw log-probs.

    The nucleus is known from the top-k alone when their total mass reaches `top_p`;
    the policy is then the renormalised mass on the kept tokens, as in
    :func:`processed_logprobs`.

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
        The policy's log-probability (``-inf`` outside the nucleus), or None when
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
