"""The demo benchmark: seeded exact-answer tasks of graded difficulty.

Five task families in the default benchmark (:data:`FAMILIES`), each with
difficulty levels (the string length, the number of key-value pairs, the operand
digit count...), and ``mod`` available to :func:`make_sample`. Every sample is a
prompt with exactly one correct answer followed by the stop marker :data:`STOP`::

    copy  "c:kqzb="      -> "kqzb"     level = string length
    kv    "a3k7z1?k="    -> "7"        level = number of key-value pairs
    rev   "r:kqzb="      -> "bzqk"     level = string length
    add   "374+258="     -> "632"      level = digits of the operands
    count "#b:abbcab="   -> "3"        level = string length (alphabet 'abc')
    mod   "3817%7="      -> "2"        level = digits of the dividend (not in the
                                       default benchmark: tiny models stay at chance)

The same generator writes the training text, with one hard rule: no training
instance is an evaluation prompt (:class:`TaskGenerator` keeps a set of the
evaluation prompts and rejects them while streaming). Small families have small
instance spaces (there are only 100 one-digit additions), so without the rule most
evaluation prompts also appear verbatim in training; with it the models must
generalise to unseen instances, which is what the benchmark measures.

Sample ids encode family and level: ``"add-3-0042"`` is the 43rd 3-digit addition.
Nothing here imports torch.
"""

from __future__ import annotations

import hashlib
import json
import random
import string
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "STOP",
    "FAMILIES",
    "TaskSample",
    "TaskGenerator",
    "make_sample",
    "solve",
    "parse_sample_id",
    "default_eval_counts",
    "TRAIN_WEIGHTS",
]

#: The stop marker after every answer (and the separator between training samples).
STOP = "\n"

_LETTERS = string.ascii_lowercase
_COUNT_ALPHABET = "abc"

#: family -> its difficulty levels, easiest first.
FAMILIES: dict[str, tuple[int, ...]] = {
    "copy": (2, 3, 4, 6, 8),
    "kv": (1, 2, 3, 4, 6),
    "rev": (2, 3, 4, 5),
    "add": (1, 2, 3),
    "count": (4, 6, 8),
}
#: Every family :func:`make_sample` knows (``mod`` is left out of the default benchmark).
ALL_FAMILIES = ("copy", "kv", "rev", "add", "count", "mod")

#: Share of each family in the training stream. Copying and key-value lookup share one
#: mechanism (attend to an earlier token, emit the one after it) that tiny models only
#: acquire after a few hundred thousand tokens of it; they get most of the stream.
TRAIN_WEIGHTS: dict[str, float] = {"copy": 0.35, "kv": 0.25, "rev": 0.15, "add": 0.15,
                                   "count": 0.10}


@dataclass(frozen=True)
class TaskSample:
    """One task instance.

    Attributes
    ----------
    family : str
        Task family, a key of :data:`FAMILIES`.
    level : int
        Difficulty level within the family.
    prompt : str
        The text the model is given.
    answer : str
        The one correct answer (without the stop marker).
    """

    family: str
    level: int
    prompt: str
    answer: str

    @property
    def text(self) -> str:
        """Prompt, answer and stop marker: the sample as it appears in training text."""
        return self.prompt + self.answer + STOP


def _digits(rng: random.Random, n: int) -> int:
    """A uniformly random ``n``-digit number (no leading zero; 0-9 for n=1)."""
    if n == 1:
        return rng.randrange(10)
    return rng.randrange(10 ** (n - 1), 10**n)


def _word(rng: random.Random, n: int, alphabet: str = _LETTERS) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def make_sample(family: str, level: int, rng: random.Random) -> TaskSample:
    """Draw one instance of ``family`` at ``level``.

    Parameters
    ----------
    family : str
        A key of :data:`FAMILIES`.
    level : int
        Difficulty level (any positive int; :data:`FAMILIES` lists the benchmark's).
    rng : random.Random
        Source of randomness.

    Returns
    -------
    TaskSample

    Raises
    ------
    ValueError
        Unknown family or a level < 1.
    """
    if family not in ALL_FAMILIES:
        raise ValueError(
            f"The 'family' parameter must be one of {list(ALL_FAMILIES)}. "
            f"Got {family!r} instead."
        )
    if int(level) < 1:
        raise ValueError(f"The 'level' parameter must be an int >= 1. Got {level!r} instead.")
    if family == "add":
        a, b = _digits(rng, level), _digits(rng, level)
        prompt = f"{a}+{b}="
    elif family == "rev":
        prompt = f"r:{_word(rng, level)}="
    elif family == "copy":
        prompt = f"c:{_word(rng, level)}="
    elif family == "mod":
        prompt = f"{_digits(rng, level)}%{rng.randrange(2, 10)}="
    elif family == "kv":
        keys = rng.sample(_LETTERS, level)
        pairs = "".join(f"{k}{rng.randrange(10)}" for k in keys)
        prompt = f"{pairs}?{rng.choice(keys)}="
    else:  # count
        target = rng.choice(_COUNT_ALPHABET)
        prompt = f"#{target}:{_word(rng, level, _COUNT_ALPHABET)}="
    return TaskSample(family, int(level), prompt, solve(family, prompt))


def solve(family: str, prompt: str) -> str:
    """The correct answer to ``prompt``, computed from the prompt text alone.

    Independent of the generator (it parses the prompt), so tests can check the
    generated answers against it.

    Parameters
    ----------
    family : str
    prompt : str

    Returns
    -------
    str
    """
    if not prompt.endswith("="):
        raise ValueError(f"a prompt ends with '=': {prompt!r}")
    body = prompt[:-1]
    if family == "add":
        a, b = body.split("+")
        return str(int(a) + int(b))
    if family == "rev":
        return body.removeprefix("r:")[::-1]
    if family == "copy":
        return body.removeprefix("c:")
    if family == "mod":
        a, m = body.split("%")
        return str(int(a) % int(m))
    if family == "kv":
        pairs, key = body.split("?")
        table = {pairs[i]: pairs[i + 1] for i in range(0, len(pairs), 2)}
        return table[key]
    if family == "count":
        target, word = body.removeprefix("#").split(":")
        return str(word.count(target))
    raise ValueError(
        f"The 'family' parameter must be one of {list(FAMILIES)}. Got {family!r} instead."
    )


def parse_sample_id(sample_id: str) -> tuple[str, int, int]:
    """``"add-3-0042"`` -> ``("add", 3, 42)``."""
    family, level, index = sample_id.rsplit("-", 2)
    return family, int(level), int(index)


def default_eval_counts(total: int = 1500) -> dict[tuple[str, int], int]:
    """Samples per (family, level): the families share ``total`` equally, then levels.

    Small instance spaces cap a level at a third of its instances (one-digit
    addition has 100 instances: 33 go to evaluation, the rest stay for training).
    """
    per_family = total // len(FAMILIES)
    out = {}
    for family, levels in FAMILIES.items():
        base, extra = divmod(per_family, len(levels))
        for i, level in enumerate(levels):
            n = base + (1 if i < extra else 0)
            out[(family, level)] = min(n, _instance_space(family, level) // 3)
    return out


def _instance_space(family: str, level: int) -> int:
    """Number of distinct prompts of a family at a level (capped at 10**9)."""
    if family == "add":
        one = 10 if level == 1 else 9 * 10 ** (level - 1)
        n = one * one
    elif family in ("rev", "copy"):
        n = 26**level
    elif family == "mod":
        n = (10 if level == 1 else 9 * 10 ** (level - 1)) * 8
    elif family == "kv":
        n = 10**level * level
        for i in range(level):
            n *= 26 - i
    else:
        n = 3 * 3**level
    return min(n, 10**9)


def _digest(prompt: str) -> bytes:
    return hashlib.blake2b(prompt.encode(), digest_size=12).digest()


class TaskGenerator:
    """Seeded evaluation set and training stream over the demo task families.

    Parameters
    ----------
    seed : int, default 0
        Seed of the evaluation set; the training stream takes its own seeds.
    eval_size : int, default 1500
        Evaluation samples in all (see :func:`default_eval_counts`).
    families : sequence of str, optional
        Families to use (default: all of :data:`FAMILIES`).

    Attributes
    ----------
    eval_samples : list of (str, TaskSample)
        ``(sample_id, sample)`` pairs, ordered by family, level and index.

    Examples
    --------
    >>> gen = TaskGenerator(seed=0, eval_size=120)
    >>> sid, s = gen.eval_samples[0]
    >>> sid, s.prompt, s.answer
    ('copy-2-0000', 'c:zs=', 'zs')
    >>> any(gen.is_eval(t.prompt) for t in gen.train_samples(500, seed=1))
    False
    """

    def __init__(
        self, *, seed: int = 0, eval_size: int = 1500, families: Sequence[str] | None = None
    ):
        self.seed = seed
        self.eval_size = eval_size
        self.families = tuple(FAMILIES if families is None else families)
        for family in self.families:
            if family not in FAMILIES:
                raise ValueError(
                    f"The 'families' parameter must hold keys of FAMILIES {list(FAMILIES)}. "
                    f"Got {family!r} instead."
                )
        counts = default_eval_counts(eval_size)
        rng = random.Random(f"cod-demo-eval-{seed}")
        samples, seen = [], set()
        for family in self.families:
            for level in FAMILIES[family]:
                n, index, tries = counts[(family, level)], 0, 0
                while index < n:
                    s = make_sample(family, level, rng)
                    tries += 1
                    if s.prompt in seen:
                        if tries > 1000 * n:  # cannot happen with the 1/3 cap
                            raise RuntimeError(f"instance space of {family}-{level} too small")
                        continue
                    seen.add(s.prompt)
                    samples.append((f"{family}-{level}-{index:04d}", s))
                    index += 1
        self.eval_samples = samples
        self._eval_digests = frozenset(_digest(s.prompt) for _, s in samples)

    def is_eval(self, prompt: str) -> bool:
        """Whether ``prompt`` is an evaluation prompt (hash lookup)."""
        return _digest(prompt) in self._eval_digests

    def eval_records(self, family: str | None = None) -> list[dict]:
        """Evaluation samples as ``{id, prompt, answer, family, level}`` dicts."""
        return [
            {"id": sid, "prompt": s.prompt, "answer": s.answer, "family": s.family,
             "level": s.level}
            for sid, s in self.eval_samples
            if family is None or s.family == family
        ]

    def write_eval_jsonl(self, path) -> Path:
        """Write the evaluation set as JSON lines ``{id, prompt, answer}`` (+ family, level)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            for rec in self.eval_records():
                f.write(json.dumps(rec) + "\n")
        return path

    def train_samples(self, n: int | None = None, *, seed: int = 1) -> Iterator[TaskSample]:
        """Stream training samples, never an evaluation prompt.

        Families are drawn with :data:`TRAIN_WEIGHTS`, then a level uniformly within the
        family.

        Parameters
        ----------
        n : int, optional
            Number of samples (infinite when ``None``).
        seed : int, default 1
            Seed of the stream (mixed with the generator's seed).

        Yields
        ------
        TaskSample
        """
        rng = random.Random(f"cod-demo-train-{self.seed}-{seed}")
        produced = 0
        families = list(self.families)
        weights = [TRAIN_WEIGHTS.get(f, 1.0) for f in families]
        while n is None or produced < n:
            family = rng.choices(families, weights)[0]
            s = make_sample(family, rng.choice(FAMILIES[family]), rng)
            if _digest(s.prompt) in self._eval_digests:
                continue
            yield s
            produced += 1

    def train_text(self, n_chars: int, *, seed: int = 1) -> str:
        """Training text of at least ``n_chars`` characters starting at a sample boundary,
        cut at ``n_chars``."""
        parts, total = [], 0
        for s in self.train_samples(seed=seed):
            t = s.text
            parts.append(t)
            total += len(t)
            if total >= n_chars:
                break
        return "".join(parts)[:n_chars]

    def eval_set(self, family: str | None = None, name: str | None = None):
        """The evaluation samples as a :class:`cod_monitor.evaluators.EvalSet`.

        Parameters
        ----------
        family : str, optional
            Only this family (default: all samples).
        name : str, optional
            Name of the set (default: the family, or ``"demo"``).
        """
        from cod_monitor.evaluators import EvalSet

        records = [{"id": r["id"], "prompt": r["prompt"], "answer": r["answer"]}
                   for r in self.eval_records(family)]
        return EvalSet.from_records(records, name=name or family or "demo", stop=STOP)
