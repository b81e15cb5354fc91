"""The checks a monitor runs at start: evaluation sets against the ladder's samples."""

import re
from pathlib import Path

import pytest

from cod_monitor.demo import SHIPPED_LADDER, load_demo_ladder
from cod_monitor.demo.live_config import demo_generator, write_eval_sets
from cod_monitor.demo.tasks import TaskGenerator
from cod_monitor.evaluators import EvalSet
from cod_monitor.exceptions import InputError
from cod_monitor.monitor.checks import check_eval_sets, check_sample_ids
from cod_monitor.synthetic import synthetic_ladder

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _eval_set(ids, name="b"):
    return EvalSet.from_records([{"id": s, "prompt": f"q {s}", "answer": "a"} for s in ids],
                                name=name)


@pytest.mark.parametrize(
    "ladder_ids, eval_ids",
    [(["a", "b", "c"], ["a", "b", "c"]), (["a", "b", "c"], ["c", "a", "b"]), ([1, 2], ["2", "1"])],
)
def test_the_same_ids_in_any_order_pass(ladder_ids, eval_ids):
    check_sample_ids("b", ladder_ids, eval_ids)


@pytest.mark.parametrize(
    "eval_ids, counts, only_ladder, only_eval",
    [
        ([f"x{i}" for i in range(300)], "the evaluation set 300, and 0 are in common",
         "'s0', 's1', 's2' (100 in all)", "'x0', 'x1', 'x2' (300 in all)"),
        ([f"s{i}" for i in range(0, 100, 6)], "the evaluation set 17, and 17 are in common",
         "'s1', 's2', 's3' (83 in all)", "none"),
        ([f"s{i}" for i in range(100)] + ["extra"], "the evaluation set 101, and 100 are in common",
         "none", "'extra'"),
    ],
)
def test_other_ids_fail_with_counts_examples_and_the_fix(eval_ids, counts, only_ladder, only_eval):
    with pytest.raises(InputError) as err:
        check_sample_ids("gsm8k", [f"s{i}" for i in range(100)], eval_ids)
    message = str(err.value)
    assert message.startswith("The evaluation set of benchmark 'gsm8k' does not hold the "
                              "ladder's samples: the ladder has 100 sample ids, ")
    assert counts in message
    assert f"Only in the ladder: {only_ladder}. Only in the evaluation set: {only_eval}." in message
    assert "Evaluate the run on exactly the samples the ladder was scored on" in message


def test_check_eval_sets_reads_files_unless_told_not_to(tmp_path):
    syn = synthetic_ladder(n_samples=20, seed=0)
    b = syn.ladder.benchmarks[0]
    ids = list(syn.ladder.matrix(b).sample_ids)
    path = tmp_path / "b.jsonl"
    _eval_set(ids[:10], b).to_jsonl(path)
    for spec in (str(path), {"path": str(path), "stop": "\n"}, _eval_set(ids[:10], b)):
        with pytest.raises(InputError, match="10 are in common"):
            check_eval_sets(syn.ladder, {b: spec})
    check_eval_sets(syn.ladder, {b: str(path)}, read_files=False)  # a custom job's business
    with pytest.raises(InputError, match="10 are in common"):
        check_eval_sets(syn.ladder, {b: _eval_set(ids[:10], b)}, read_files=False)
    check_eval_sets(syn.ladder, {b: _eval_set(ids, b)})
    with pytest.raises(InputError, match=re.escape(f"its benchmarks are {syn.ladder.benchmarks}")):
        check_eval_sets(syn.ladder, {"other": _eval_set(ids, "other")}, read_files=False)


def test_the_examples_evaluate_the_shipped_ladders_samples(tmp_path):
    ladder = load_demo_ladder()
    # what the examples did: a generator of another size, every family in one set
    old = TaskGenerator(seed=0, eval_size=1500).eval_set(name="demo")
    with pytest.raises(InputError, match=r"the ladder has 900 sample ids, the evaluation set "
                                         r"1500, and 900 are in common"):
        check_eval_sets(ladder, {"demo": old})
    # what they do now: the ladder's own samples, from the generator its build names
    specs = write_eval_sets(ladder, demo_generator(SHIPPED_LADDER), ["demo"], tmp_path)
    check_eval_sets(ladder, specs)
    for example in ("plain_loop.py", "accelerate_loop.py"):
        source = (EXAMPLES / example).read_text()
        assert "write_eval_sets(" in source and "demo_generator(ladder)" in source, example
        assert "eval_size=" not in source, example
