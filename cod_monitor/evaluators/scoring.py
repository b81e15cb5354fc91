"""Scorers: how a completion, cut at the stop marker, is compared with the answer.

A scorer is a callable ``(completion, answer) -> bool``; :data:`SCORERS` names the
built-in ones and :func:`resolve_scorer` turns a name (or ``"regex:<pattern>"``)
into one. Every scorer sees the completion *cut at the stop marker*
(:func:`cut_at_stop`).
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Callable
from typing import Union

from cod_monitor.evaluators.base import EvalSetValidationError

__all__ = [
    "SCORERS",
    "Scorer",
    "ScorerSpec",
    "cut_at_stop",
    "normalize_text",
    "parse_number",
    "score_exact",
    "score_normalized",
    "score_last_number",
    "make_regex_scorer",
    "resolve_scorer",
]

Scorer = Callable[[str, str], bool]
ScorerSpec = Union[str, Scorer]



def cut_at_stop(completion: str, stop: str | None) -> str:
    """Return `completion` up to (not including) the first `stop` marker.

    Parameters
    ----------
    completion : str
        Text generated after the prompt.
    stop : str or None
        Stop marker; ``None`` or ``""`` leaves the completion unchanged.

    Returns
    -------
    str

    Examples
    --------
    >>> cut_at_stop("42\\nQ: next", "\\n")
    '42'
    """
    if not stop:
        return completion
    i = completion.find(stop)
    return completion if i < 0 else completion[:i]


_PUNCT = str.maketrans("", "", string.punctuation)


def normalize_text(text: str) -> str:
    """Lower-case, drop ASCII punctuation and collapse whitespace.

    Examples
    --------
    >>> normalize_text("  The  Answer: Paris! ")
    'the answer paris'
    """
    return " ".join(text.lower().translate(_PUNCT).split())


def score_exact(completion: str, answer: str) -> bool:
    """``completion == answer`` (the completion already cut at the stop marker)."""
    return completion == answer


def score_normalized(completion: str, answer: str) -> bool:
    """Equality after :func:`normalize_text` (case, whitespace, punctuation)."""
    return normalize_text(completion) == normalize_text(answer)


_NUMBER = re.compile(r"[-+]?(?:\d[\d,]*(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")


def parse_number(text: str) -> float | None:
    """``text`` as a number (thousands separators allowed), or None if it is not one."""
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def score_last_number(completion: str, answer: str) -> bool:
    """The last number in the completion equals the answer numerically.

    Thousands separators (``1,234``) are accepted; the comparison uses
    :func:`math.isclose` with ``rel_tol=1e-9, abs_tol=1e-9``.

    Examples
    --------
    >>> score_last_number("3 apples + 4 apples = 7 apples", "7")
    True
    """
    target = parse_number(answer.strip())
    if target is None:
        return False
    found = _NUMBER.findall(completion)
    while found:
        value = parse_number(found.pop().rstrip(".,"))
        if value is not None:
            return math.isclose(value, target, rel_tol=1e-9, abs_tol=1e-9)
    return False


def make_regex_scorer(pattern: str) -> Scorer:
    """Scorer comparing the first regex match (its first group if any) with the answer.

    The extracted text and the answer are compared after stripping surrounding
    whitespace. A completion without a match is wrong.

    Examples
    --------
    >>> make_regex_scorer(r"answer is (\\w+)")("the answer is B.", "B")
    True
    """
    rx = re.compile(pattern)

    def score_regex(completion: str, answer: str) -> bool:
        m = rx.search(completion)
        if m is None:
            return False
        got = m.group(1) if rx.groups else m.group(0)
        return got is not None and got.strip() == answer.strip()

    score_regex.pattern = pattern  # type: ignore[attr-defined]
    return score_regex


#: Named scorers; ``"regex:<pattern>"`` is accepted besides these.
SCORERS: dict[str, Scorer] = {
    "exact": score_exact,
    "normalized": score_normalized,
    "last_number": score_last_number,
}


def resolve_scorer(scorer: ScorerSpec, *, where: str | None = None) -> Scorer:
    """Turn a scorer name (or callable) into a ``(completion, answer) -> bool`` callable.

    Parameters
    ----------
    scorer : str or callable
        ``"exact"``, ``"normalized"``, ``"last_number"``, ``"regex:<pattern>"`` or a
        callable ``(completion, answer) -> bool``.
    where : str, optional
        Location prepended to error messages.

    Raises
    ------
    EvalSetValidationError
        Unknown name or invalid regular expression.
    """
    if callable(scorer):
        return scorer
    if isinstance(scorer, str):
        if scorer in SCORERS:
            return SCORERS[scorer]
        if scorer.startswith("regex:"):
            try:
                return make_regex_scorer(scorer[len("regex:"):])
            except re.error as exc:
                raise EvalSetValidationError(
                    "scorer", scorer, f"Fix the regular expression ({exc}).", where=where
                ) from None
    raise EvalSetValidationError(
        "scorer",
        scorer,
        "Use one of 'exact', 'normalized', 'last_number', 'regex:<pattern>' or a "
        "callable (completion, answer) -> bool.",
        where=where,
    )
