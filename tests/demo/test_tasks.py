"""The demo benchmark: determinism, graded difficulty, correct answers, no leakage."""

import json
import random
import re

import numpy as np
import pytest

from cod_monitor.demo.tasks import (
    BENCHMARK_FAMILIES,
    FAMILIES,
    SKILL_FAMILIES,
    benchmark_of,
    STOP,
    KnowledgeWorld,
    TaskGenerator,
    default_eval_counts,
    make_sample,
    parse_sample_id,
)


@pytest.fixture(scope="module")
def gen():
    return TaskGenerator(seed=0)


LEVELS = {**SKILL_FAMILIES, **FAMILIES}
WORLD = KnowledgeWorld(seed=0)


def _independent_answer(prompt: str) -> str:
    """The answer recomputed from the prompt without the package's solver."""
    if m := re.fullmatch(r"([nc])[?|]([a-z]{3})=", prompt):
        table = WORLD.numbers if m[1] == "n" else WORLD.cities
        return table[WORLD.names.index(m[2])]
    if m := re.fullmatch(r"(\d+)\+(\d+)=", prompt):
        return str(int(m[1]) + int(m[2]))
    if m := re.fullmatch(r"r:([a-z]+)=", prompt):
        return "".join(reversed(m[1]))
    if m := re.fullmatch(r"c:([a-z]+)=", prompt):
        return m[1]
    if re.fullmatch(r"\d(?:\+\d){2,}=", prompt):
        return str(sum(int(ch) for ch in prompt[:-1:2]))
    if m := re.fullmatch(r"s:([a-h]+)=", prompt):
        return "".join(sorted(m[1]))
    if m := re.fullmatch(r"(\d+)%(\d)=", prompt):
        return str(int(m[1]) - int(m[2]) * (int(m[1]) // int(m[2])))
    if m := re.fullmatch(r"((?:[a-z]\d)+)\?([a-z])=", prompt):
        return dict(re.findall(r"([a-z])(\d)", m[1]))[m[2]]
    if m := re.fullmatch(r"#([abc]):([abc]+)=", prompt):
        return str(sum(ch == m[1] for ch in m[2]))
    raise AssertionError(f"unknown prompt {prompt!r}")


def test_eval_set_is_deterministic_and_seeded():
    a, b = TaskGenerator(seed=0), TaskGenerator(seed=0)
    assert a.eval_samples == b.eval_samples
    c = TaskGenerator(seed=1)
    assert [s.prompt for _, s in a.eval_samples] != [s.prompt for _, s in c.eval_samples]
    assert list(a.train_samples(50, seed=3)) == list(b.train_samples(50, seed=3))
    assert list(a.train_samples(50, seed=3)) != list(a.train_samples(50, seed=4))


def test_eval_set_size_ids_and_no_duplicates(gen):
    ids = [sid for sid, _ in gen.eval_samples]
    assert 1000 <= len(ids) <= 2000
    assert len(set(ids)) == len(ids)
    prompts = [s.prompt for _, s in gen.eval_samples]
    assert len(set(prompts)) == len(prompts)
    for sid, s in gen.eval_samples:
        family, level, _ = parse_sample_id(sid)
        assert (family, level) == (s.family, s.level)
        assert re.fullmatch(r"[a-z]+-\d+-\d{4}", sid)
    assert {s.family for _, s in gen.eval_samples} == set(FAMILIES)
    # a level takes at most half of its instances: the most frequent knowledge level
    # (ranks 6-16 of the world) gets 5 samples, what it cannot take goes elsewhere
    counts = default_eval_counts(1200)
    assert counts[("fact", 1)] == 5 and counts[("add", 1)] == 50
    assert 1150 <= sum(counts.values()) <= 1200 and min(counts.values()) >= 5
    # the headline families hold three quarters of the samples, the knowledge ones the rest
    by_bench = {b: sum(c for (f, _), c in counts.items() if f in fams)
                for b, fams in BENCHMARK_FAMILIES.items()}
    assert by_bench == {"demo": 900, "knowledge": 300}


def test_every_answer_is_correct(gen):
    for _, s in gen.eval_samples:
        assert s.answer == _independent_answer(s.prompt), s
        assert STOP not in s.answer and s.answer
    for s in gen.train_samples(2000, seed=5):
        assert s.answer == _independent_answer(s.prompt), s


@pytest.mark.parametrize("family", ["add", "rev", "copy", "sort"])
def test_answer_length_grows_with_level(family):
    rng = random.Random(0)
    mean_len = [np.mean([len(make_sample(family, lv, rng).answer) for _ in range(200)])
                for lv in LEVELS[family]]
    assert all(b > a for a, b in zip(mean_len, mean_len[1:])), mean_len


@pytest.mark.parametrize("family", [f for f in LEVELS if f not in ("fact", "city")])
def test_prompt_length_grows_with_level(family):
    rng = random.Random(0)
    mean_len = [np.mean([len(make_sample(family, lv, rng).prompt) for _ in range(200)])
                for lv in LEVELS[family]]
    assert all(b > a for a, b in zip(mean_len, mean_len[1:])), mean_len


def test_training_stream_never_contains_an_eval_prompt(gen):
    eval_prompts = {s.prompt for _, s in gen.eval_samples}
    train = list(gen.train_samples(30000, seed=1))
    assert not eval_prompts & {s.prompt for s in train}
    # small instance spaces are where leakage happens; those levels are still trained on
    small = [s for s in train if s.family == "add" and s.level == 1]
    assert len(small) > 100 and len({s.prompt for s in small}) >= 50
    # the leak this guards against is real: an unfiltered stream hits eval prompts
    rng = random.Random(1)
    unfiltered = {make_sample("add", 1, rng).prompt for _ in range(2000)}
    assert unfiltered & eval_prompts
    # and training text (packed samples) also avoids them
    text = gen.train_text(20000, seed=2)
    for line in text.split(STOP)[:-1]:
        prompt = line[: line.index("=") + 1]
        assert prompt not in eval_prompts


def test_jsonl_round_trip_and_evalset(gen, tmp_path):
    path = gen.write_eval_jsonl(tmp_path / "eval.jsonl")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["id"] for r in rows] == [sid for sid, _ in gen.eval_samples]
    assert set(rows[0]) >= {"id", "prompt", "answer"}
    es = gen.eval_set()
    assert len(es) == len(rows) and es.stop == STOP and es.name == "demo"
    assert gen.eval_set("add").ids == tuple(r["id"] for r in rows if r["family"] == "add")
    assert es.score(rows[0]["answer"] + STOP + "junk", rows[0]["answer"])


def test_bad_family_and_level():
    with pytest.raises(ValueError, match="'family' parameter"):
        make_sample("mul", 2, random.Random(0))
    with pytest.raises(ValueError, match="'level' parameter"):
        make_sample("add", 0, random.Random(0))
    with pytest.raises(ValueError, match="'families' parameter"):
        TaskGenerator(families=["mul"])


def test_demo_package_imports_no_torch():
    import subprocess
    import sys

    code = ("import sys, cod_monitor.demo, cod_monitor.demo.tasks, cod_monitor.demo.recipe; "
            "print('torch' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_knowledge_levels_follow_training_frequency(gen):
    """Level k of a knowledge family is stated less often in training than level k-1,
    evaluated facts are stated, and their questions are never asked."""
    train = [s for s in gen.train_samples(40000, seed=7) if s.family in ("fact", "city")]
    mentions: dict[tuple, int] = {}
    for s in train:
        key = (s.family, s.prompt[2:5])
        mentions[key] = mentions.get(key, 0) + 1
    for family in ("fact", "city"):
        per_level = []
        for level in FAMILIES[family]:
            names = [s.prompt[2:5] for _, s in gen.eval_samples
                     if s.family == family and s.level == level]
            assert names, (family, level)
            per_level.append(np.mean([mentions.get((family, n), 0) for n in names]))
        assert all(a > b for a, b in zip(per_level, per_level[1:])), (family, per_level)
        # the most frequent evaluated facts are each stated many times
        assert per_level[0] > 40
    statements = {s.prompt for s in train if s.prompt[1] == "|"}
    questions = {s.prompt for s in train if s.prompt[1] == "?"}
    evaluated = [s.prompt for _, s in gen.eval_samples if s.family == "fact" and s.level == 1]
    assert all(p.replace("?", "|") in statements for p in evaluated)
    assert not set(evaluated) & questions
    assert len(questions) > 500  # the question template is trained on other entities


def test_world_is_seeded_and_checks_its_size():
    a, b, c = KnowledgeWorld(seed=0), KnowledgeWorld(seed=0), KnowledgeWorld(seed=1)
    assert a.names == b.names and a.numbers == b.numbers and a.cities == b.cities
    assert a.names != c.names
    assert len(set(a.names)) == len(a.names) == 1000
    assert a.level_edges[0] == 6 and a.level_edges[-1] == 1000
    with pytest.raises(ValueError, match="'n_entities' parameter"):
        KnowledgeWorld(n_entities=10)
    with pytest.raises(ValueError, match="'level' parameter"):
        a.ranks_of_level(6)


def test_every_default_family_belongs_to_one_benchmark():
    assert sorted(f for fams in BENCHMARK_FAMILIES.values() for f in fams) == sorted(FAMILIES)
    assert benchmark_of("sum") == "demo" and benchmark_of("city") == "knowledge"
    assert benchmark_of("copy") is None


def test_a_sum_is_never_an_addition_prompt():
    rng = random.Random(0)
    sums = {make_sample("sum", lv, rng).prompt for lv in (3, 4) for _ in range(300)}
    assert all(p.count("+") >= 2 for p in sums)


def test_train_weights_set_the_mix_and_are_checked():
    gen = TaskGenerator(seed=0, eval_size=200, families=("add", "sort"),
                        train_weights={"add": 1.0, "sort": 3.0})
    fams = [s.family for s in gen.train_samples(4000, seed=2)]
    assert 0.7 < fams.count("sort") / len(fams) < 0.8
    with pytest.raises(ValueError, match="train_weights"):
        TaskGenerator(seed=0, eval_size=200, train_weights={"add": -1.0})
    with pytest.raises(ValueError, match="train_weights"):
        TaskGenerator(seed=0, eval_size=200, train_weights={"ad": 1.0})
