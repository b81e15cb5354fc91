"""The demo benchmarks: seeded exact-answer tasks of graded difficulty.

Five task families (:data:`FAMILIES`), each with difficulty levels, every sample a
prompt with exactly one correct answer followed by the stop marker :data:`STOP`.
They make two benchmarks of one ladder (:data:`BENCHMARK_FAMILIES`).

``demo``, the headline benchmark: skills whose per-sample difficulty is intrinsic,
graded by a knob, as in GSM8K- or BBH-style sets::

    add   "347+586="     -> "933"     level = digits of the operands (carries vary)
    sum   "3+4+2+8="     -> "17"      multi-step arithmetic; level = number of terms
    sort  "s:dcabd="     -> "abcdd"   string transform; level = length (letters a-h)

A sample is as hard for every run as its digits, carries, terms or length make it:
the setting COD is built for.

``knowledge``, the stress benchmark: closed-book recall about a seeded
:class:`KnowledgeWorld` (1,000 three-letter entities, each with a two-digit number and
one of 24 four-letter cities)::

    fact  "n?kqz="  -> "47"      recall of an entity's number; level = how rarely the
                                 training text states the fact (log-spaced frequency
                                 rank buckets, 1 = most frequent)
    city  "c?kqz="  -> "vemo"    recall of an entity's city; levels as for ``fact``

The training text states facts as ``"n|kqz=47"`` / ``"c|kqz=vemo"``, each relation
drawing entities from its own Zipf law (rank r has weight ``1 / (r + 3)``), and also
asks questions ``"n?kqz=47"`` about entities that are *not* evaluated. Which rare fact
a tiny run memorises depends on its seeds, so a sample's difficulty is partly luck:
outside COD's premise (the paper lists recall sets such as TriviaQA among its weak
cases). It is kept as the honest stress case, never the headline.

More families are available to :func:`make_sample` and :class:`TaskGenerator`
(:data:`SKILL_FAMILIES`: copy, kv, rev, count, mod). They are out of the default
benchmarks because tiny models acquire them by an abrupt, size-independent phase
change (an attend-and-copy mechanism after a number of optimizer steps), which no
scaling law fitted below the change can foresee::

    copy  "c:kqzb="      -> "kqzb"     level = string length
    kv    "a3k7z1?k="    -> "7"        level = number of key-value pairs
    rev   "r:kqzb="      -> "bzqk"     level = string length
    count "#b:abbcab="   -> "3"        level = string length (alphabet 'abc')
    mod   "3817%7="      -> "2"        level = digits of the dividend

The same generator writes the training text, with one hard rule: no training
instance is an evaluation prompt (:class:`TaskGenerator` keeps a set of the
evaluation prompts and rejects them while streaming). Small instance spaces (there
are only 100 one-digit additions) would otherwise put most evaluation prompts in
the training text verbatim.

Sample ids encode family and level: ``"add-2-0042"`` is the 43rd 2-digit addition.
Nothing here imports torch.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import random
import string
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cod_monitor._validation import check_choice, check_int, check_real, invalid
from cod_monitor.exceptions import InputError

__all__ = [
    "STOP",
    "FAMILIES",
    "SKILL_FAMILIES",
    "KNOWLEDGE_FAMILIES",
    "BENCHMARK_FAMILIES",
    "benchmark_of",
    "TaskSample",
    "KnowledgeWorld",
    "TaskGenerator",
    "make_sample",
    "solve",
    "parse_sample_id",
    "default_eval_counts",
    "TRAIN_WEIGHTS",
    "EVAL_SHARES",
]

#: The stop marker after every answer (and the separator between training samples).
STOP = "\n"

_LETTERS = string.ascii_lowercase
_COUNT_ALPHABET = "abc"
_SORT_ALPHABET = "abcdefgh"

#: The default families: family -> its difficulty levels, easiest first.
FAMILIES: dict[str, tuple[int, ...]] = {
    "add": (1, 2, 3),
    "sum": (3, 4, 5, 6, 7),
    "sort": (3, 4, 5, 6, 8),
    "fact": (1, 2, 3, 4, 5),
    "city": (1, 2, 3, 4, 5),
}
#: Families outside the default benchmark (abrupt emergence; see the module docstring).
SKILL_FAMILIES: dict[str, tuple[int, ...]] = {
    "copy": (2, 3, 4, 6, 8),
    "kv": (1, 2, 3, 4, 6),
    "rev": (2, 3, 4, 5),
    "count": (4, 6, 8),
    "mod": (1, 2, 3),
}
_ALL_LEVELS = {**SKILL_FAMILIES, **FAMILIES}
#: Every family :func:`make_sample` knows.
ALL_FAMILIES = tuple(_ALL_LEVELS)
#: Families answered from the :class:`KnowledgeWorld`: family -> relation marker.
KNOWLEDGE_FAMILIES: dict[str, str] = {"fact": "n", "city": "c"}
#: Benchmark -> its families: the headline ``demo`` (intrinsic difficulty) and the
#: ``knowledge`` stress case.
BENCHMARK_FAMILIES: dict[str, tuple[str, ...]] = {
    "demo": ("add", "sum", "sort"),
    "knowledge": ("fact", "city"),
}

#: Share of each family in the training stream (families not listed: 0.2).
TRAIN_WEIGHTS: dict[str, float] = {"add": 0.25, "sum": 0.275, "sort": 0.275,
                                   "fact": 0.1, "city": 0.1}
#: Share of each family in the evaluation set (families not listed: equal shares).
EVAL_SHARES: dict[str, float] = {"add": 0.25, "sum": 0.25, "sort": 0.25,
                                 "fact": 0.125, "city": 0.125}
#: Share of knowledge-family training samples written as questions (the rest are
#: statements); questions about evaluated entities are written as statements instead.
QUESTION_SHARE = 0.4


@dataclass(frozen=True)
class TaskSample:
    """One task instance: a prompt of a family at a difficulty level, with its one
    correct answer.

    Attributes
    ----------
    family : str
        Task family, a key of :data:`FAMILIES` or :data:`SKILL_FAMILIES`.
    level : int
        Difficulty level within the family (0 for knowledge statements about entities
        more frequent than any evaluated level).
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


class KnowledgeWorld:
    """A seeded world of entities with two attributes, and how often text states them.

    Parameters
    ----------
    seed : int, default 0
    n_entities : int, default 1000
        Three-letter entity names (at most 17,576).
    n_cities : int, default 24
    zipf_offset : float, default 3.0
        Rank ``r`` (0-based) of a relation is stated with weight ``1 / (r + offset)``.
    n_levels : int, default 5
    first_rank : int, default 6
        Ranks below this are never evaluated (every run knows them); ranks from here
        to ``n_entities`` are cut into ``n_levels`` log-spaced buckets.

    Examples
    --------
    >>> w = KnowledgeWorld(seed=0)
    >>> w.level_edges
    (6, 17, 46, 129, 359, 1000)
    >>> w.answer("fact", w.names[0]) == w.numbers[0]
    True
    """

    def __init__(self, seed: int = 0, *, n_entities: int = 1000, n_cities: int = 24,
                 zipf_offset: float = 3.0, n_levels: int = 5, first_rank: int = 6):
        check_int("KnowledgeWorld", "n_entities", n_entities, 2 * first_rank, 26**3)
        rng = random.Random(f"cod-demo-world-{seed}")
        names: list[str] = []
        seen: set[str] = set()
        while len(names) < n_entities:
            name = _word(rng, 3)
            if name not in seen:
                seen.add(name)
                names.append(name)
        cities: list[str] = []
        while len(cities) < n_cities:
            city = _word(rng, 4)
            if city not in cities:
                cities.append(city)
        self.seed = seed
        self.names = tuple(names)
        self.index = {n: i for i, n in enumerate(names)}
        self.numbers = tuple(f"{rng.randrange(100):02d}" for _ in names)
        self.cities = tuple(rng.choice(cities) for _ in names)
        # each relation ranks the entities by its own random order
        self.by_rank: dict[str, tuple[int, ...]] = {}
        self.rank: dict[str, dict[int, int]] = {}
        for family in KNOWLEDGE_FAMILIES:
            order = list(range(n_entities))
            rng.shuffle(order)
            self.by_rank[family] = tuple(order)
            self.rank[family] = {e: r for r, e in enumerate(order)}
        weights = [1.0 / (r + zipf_offset) for r in range(n_entities)]
        total = sum(weights)
        acc, cum = 0.0, []
        for w in weights:
            acc += w / total
            cum.append(acc)
        self._cum = cum
        ratio = (n_entities / first_rank) ** (1.0 / n_levels)
        edges = [first_rank] + [int(round(first_rank * ratio**k)) for k in range(1, n_levels)]
        self.level_edges = (*edges, n_entities)

    def answer(self, family: str, name: str) -> str:
        """The attribute of entity ``name`` that ``family`` asks for."""
        e = self.index[name]
        return self.numbers[e] if family == "fact" else self.cities[e]

    def level_of(self, family: str, entity: int) -> int:
        """Difficulty level of an entity in a relation (0 above the evaluated ranks)."""
        return bisect.bisect_right(self.level_edges, self.rank[family][entity])

    def ranks_of_level(self, level: int) -> range:
        """Frequency ranks that make up ``level`` (1-based)."""
        check_int("KnowledgeWorld.ranks_of_level", "level", level, 1, len(self.level_edges) - 1)
        return range(self.level_edges[level - 1], self.level_edges[level])

    def draw_entity(self, family: str, rng: random.Random) -> int:
        """An entity drawn by the relation's Zipf law (how often text mentions it)."""
        r = min(bisect.bisect_left(self._cum, rng.random()), len(self._cum) - 1)
        return self.by_rank[family][r]

    def question(self, family: str, entity: int) -> TaskSample:
        """The question about ``entity`` (the form evaluation asks)."""
        name = self.names[entity]
        return TaskSample(family, self.level_of(family, entity),
                          f"{KNOWLEDGE_FAMILIES[family]}?{name}=", self.answer(family, name))

    def statement(self, family: str, entity: int) -> TaskSample:
        """The statement of the fact (the form training text mostly uses)."""
        name = self.names[entity]
        return TaskSample(family, self.level_of(family, entity),
                          f"{KNOWLEDGE_FAMILIES[family]}|{name}=", self.answer(family, name))


@lru_cache(maxsize=8)
def _default_world(seed: int) -> KnowledgeWorld:
    return KnowledgeWorld(seed)


def _digits(rng: random.Random, n: int) -> int:
    """A uniformly random ``n``-digit number (no leading zero; 0-9 for n=1)."""
    if n == 1:
        return rng.randrange(10)
    return rng.randrange(10 ** (n - 1), 10**n)


def _word(rng: random.Random, n: int, alphabet: str = _LETTERS) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def make_sample(family: str, level: int, rng: random.Random,
                world: KnowledgeWorld | None = None) -> TaskSample:
    """Draw one instance of ``family`` at ``level``.

    Parameters
    ----------
    family : str
        A key of :data:`FAMILIES` or :data:`SKILL_FAMILIES`.
    level : int
        Difficulty level (any positive int for skills; a bucket of ``world`` for
        knowledge families).
    rng : random.Random
        Source of randomness.
    world : KnowledgeWorld, optional
        The world knowledge questions ask about (default: the world of seed 0). A
        knowledge question draws its entity uniformly within the level's ranks.

    Returns
    -------
    TaskSample

    Raises
    ------
    ParameterError
        Unknown family or a level < 1.
    """
    check_choice("make_sample", "family", family, ALL_FAMILIES)
    level = check_int("make_sample", "level", level, 1)
    if family in KNOWLEDGE_FAMILIES:
        world = world or _default_world(0)
        ranks = world.ranks_of_level(level)
        return world.question(family, world.by_rank[family][rng.choice(ranks)])
    prompt = _SKILL_PROMPTS[family](rng, level)
    return TaskSample(family, level, prompt, solve(family, prompt))


def _kv_prompt(rng: random.Random, level: int) -> str:
    keys = rng.sample(_LETTERS, level)
    pairs = "".join(f"{k}{rng.randrange(10)}" for k in keys)
    return f"{pairs}?{rng.choice(keys)}="


def _count_prompt(rng: random.Random, level: int) -> str:
    target = rng.choice(_COUNT_ALPHABET)
    return f"#{target}:{_word(rng, level, _COUNT_ALPHABET)}="


#: Prompt of a skill family at a level, drawn from ``rng`` (operands left to right).
_SKILL_PROMPTS: dict[str, Callable[[random.Random, int], str]] = {
    "add": lambda rng, level: f"{_digits(rng, level)}+{_digits(rng, level)}=",
    # at least three terms, so that no sum is an addition prompt
    "sum": lambda rng, level: "+".join(str(rng.randrange(10)) for _ in range(max(3, level))) + "=",
    "sort": lambda rng, level: f"s:{_word(rng, level, _SORT_ALPHABET)}=",
    "rev": lambda rng, level: f"r:{_word(rng, level)}=",
    "copy": lambda rng, level: f"c:{_word(rng, level)}=",
    "mod": lambda rng, level: f"{_digits(rng, level)}%{rng.randrange(2, 10)}=",
    "kv": _kv_prompt,
    "count": _count_prompt,
}


def solve(family: str, prompt: str, world: KnowledgeWorld | None = None) -> str:
    """The correct answer to ``prompt``, computed from the prompt text (and the world).

    Independent of the generator (it parses the prompt), so tests can check the
    generated answers against it.

    Parameters
    ----------
    family : str
    prompt : str
    world : KnowledgeWorld, optional
        For knowledge families (default: the world of seed 0).

    Returns
    -------
    str
    """
    if not prompt.endswith("="):
        raise InputError(f"a prompt ends with '=': {prompt!r}")
    body = prompt[:-1]
    if family in KNOWLEDGE_FAMILIES:
        return (world or _default_world(0)).answer(family, body[2:])
    if family == "add":
        a, b = body.split("+")
        return str(int(a) + int(b))
    if family == "sum":
        return str(sum(int(t) for t in body.split("+")))
    if family == "sort":
        return "".join(sorted(body.removeprefix("s:")))
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
    raise invalid("solve", "family", f"a str among {list(ALL_FAMILIES)}", family)


def parse_sample_id(sample_id: str) -> tuple[str, int, int]:
    """``"add-2-0042"`` -> ``("add", 2, 42)``."""
    family, level, index = sample_id.rsplit("-", 2)
    return family, int(level), int(index)


def benchmark_of(family: str) -> str | None:
    """The benchmark of :data:`BENCHMARK_FAMILIES` that holds ``family`` (``None``
    for a family in neither)."""
    for benchmark, families in BENCHMARK_FAMILIES.items():
        if family in families:
            return benchmark
    return None


def default_eval_counts(total: int = 1200, families: Sequence[str] | None = None,
                        world: KnowledgeWorld | None = None) -> dict[tuple[str, int], int]:
    """Samples per (family, level).

    Families get :data:`EVAL_SHARES` of ``total`` (renormalised over ``families``),
    then levels share their family's count equally. A level takes at most half of
    its instances (one-digit addition has 100: at most 50 go to evaluation, the rest
    stay for training; a knowledge level at most half its entities, so that the
    question template is trained on the other half); what a capped level cannot
    take goes to the family's other levels.
    """
    families = tuple(FAMILIES if families is None else families)
    world = world or _default_world(0)
    shares = {f: EVAL_SHARES.get(f, 1.0 / len(families)) for f in families}
    norm = sum(shares.values())
    out: dict[tuple[str, int], int] = {}
    assigned = 0
    for i, family in enumerate(families):
        n_family = (total - assigned if i == len(families) - 1
                    else int(round(total * shares[family] / norm)))
        assigned += n_family
        levels = list(_ALL_LEVELS[family])
        caps = {lv: _instance_space(family, lv, world) // 2 for lv in levels}
        counts = dict.fromkeys(levels, 0)
        left, open_levels = n_family, [lv for lv in levels if caps[lv] > 0]
        while left > 0 and open_levels:
            base, extra = divmod(left, len(open_levels))
            for k, lv in enumerate(open_levels):
                counts[lv] += base + (1 if k < extra else 0)
            left = 0
            for lv in open_levels:
                if counts[lv] > caps[lv]:
                    left += counts[lv] - caps[lv]
                    counts[lv] = caps[lv]
            open_levels = [lv for lv in open_levels if counts[lv] < caps[lv]]
        out.update({(family, lv): c for lv, c in counts.items()})
    return out


def _instance_space(family: str, level: int, world: KnowledgeWorld) -> int:
    """Number of distinct prompts of a family at a level (capped at 10**9)."""
    if family in KNOWLEDGE_FAMILIES:
        return len(world.ranks_of_level(level))
    if family == "add":
        one = 10 if level == 1 else 9 * 10 ** (level - 1)
        n = one * one
    elif family == "sum":
        n = 10 ** max(3, level)
    elif family == "sort":
        n = len(_SORT_ALPHABET) ** level
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
        Seed of the world and of the evaluation set; the training stream takes its
        own seeds.
    eval_size : int, default 1200
        Evaluation samples in all (see :func:`default_eval_counts`).
    families : sequence of str, optional
        Families to use (default: :data:`FAMILIES`; :data:`SKILL_FAMILIES` too).
    train_weights : mapping of str to float, optional
        Share of each family in the training stream (default :data:`TRAIN_WEIGHTS`;
        a family not listed gets 0.2 before normalisation).

    Attributes
    ----------
    eval_samples : list of (str, TaskSample)
        ``(sample_id, sample)`` pairs, ordered by family, level and index.
    world : KnowledgeWorld

    Examples
    --------
    >>> gen = TaskGenerator(seed=0, eval_size=120)
    >>> sid, s = gen.eval_samples[0]
    >>> sid, s.prompt, s.answer
    ('add-1-0000', '9+0=', '9')
    >>> any(gen.is_eval(t.prompt) for t in gen.train_samples(500, seed=1))
    False
    """

    def __init__(
        self, *, seed: int = 0, eval_size: int = 1200, families: Sequence[str] | None = None,
        train_weights: Mapping[str, float] | None = None,
    ):
        self.seed = seed
        self.eval_size = eval_size
        self.families = tuple(FAMILIES if families is None else families)
        for family in self.families:
            check_choice("TaskGenerator", "families", family, ALL_FAMILIES)
        self.train_weights = dict(TRAIN_WEIGHTS if train_weights is None else train_weights)
        for family, weight in self.train_weights.items():
            check_choice("TaskGenerator", "train_weights", family, ALL_FAMILIES)
            check_real("TaskGenerator", f"train_weights[{family!r}]", weight, 0.0)
        self.world = _default_world(seed)
        counts = default_eval_counts(eval_size, self.families, self.world)
        rng = random.Random(f"cod-demo-eval-{seed}")
        samples, seen = [], set()
        for family in self.families:
            for level in _ALL_LEVELS[family]:
                n, index, tries = counts[(family, level)], 0, 0
                while index < n:
                    s = make_sample(family, level, rng, self.world)
                    tries += 1
                    if s.prompt in seen:
                        if tries > 1000 * n:  # cannot happen with the 1/2 cap
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

        Families are drawn with ``train_weights``. A skill sample then draws a
        level uniformly; a knowledge sample draws an entity by its relation's Zipf
        law and is a question (:data:`QUESTION_SHARE`) or a statement, always a
        statement when the question is evaluated.

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
        weights = [self.train_weights.get(f, 0.2) for f in families]
        while n is None or produced < n:
            family = rng.choices(families, weights)[0]
            if family in KNOWLEDGE_FAMILIES:
                entity = self.world.draw_entity(family, rng)
                s = self.world.question(family, entity)
                # a statement ("n|...") is never an evaluation prompt ("n?...")
                if rng.random() >= QUESTION_SHARE or self.is_eval(s.prompt):
                    s = self.world.statement(family, entity)
            else:
                s = make_sample(family, rng.choice(_ALL_LEVELS[family]), rng)
                if self.is_eval(s.prompt):
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
