"""The checks a monitor runs at start: evaluation sets against the ladder's samples."""

import logging
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


# ------------------------------------------------------------ evaluation settings

DEMO = {"stop": "\n", "scorer": "exact", "mode": "exact", "temperature": 1.0, "top_p": 0.7}


@pytest.fixture(scope="module")
def recorded():
    """A synthetic ladder whose benchmark records the demo's settings, and its ids."""
    ladder = synthetic_ladder(n_samples=20, seed=0).ladder
    b = ladder.benchmarks[0]
    return ladder.with_eval_settings({b: DEMO}), b, list(ladder.matrix(b).sample_ids)


def _set(ids, name, **kw):
    return EvalSet.from_records([{"id": s, "prompt": f"q {s}", "answer": "a"} for s in ids],
                                name=name, **kw)


def test_matching_settings_pass_with_the_evaluators_defaults_filled_in(recorded):
    ladder, b, ids = recorded
    # top_p and temperature left out: the HF evaluator's defaults, 0.7 and 1.0
    check_eval_sets(ladder, {b: _set(ids, b, stop="\n")}, {"backend": "hf", "mode": "exact"})
    # n and max_new_tokens do not change an exact pass rate
    check_eval_sets(ladder, {b: _set(ids, b, stop="\n")},
                    {"mode": "exact", "n": 7, "max_new_tokens": 3, "batch_size": 4,
                     "seed": 5, "device": "cpu"})


@pytest.mark.parametrize(
    "stop, scorer, evaluator, fields",
    [
        (None, "exact", {"mode": "exact"},
         ["stop: the ladder '\\n', the run None (no stop marker)"]),
        ("\n", "normalized", {"mode": "exact", "force_exact": True},
         ["scorer: the ladder 'exact', the run 'normalized'"]),
        ("\n", "exact", {"mode": "sampled"}, ["mode: the ladder 'exact', the run 'sampled'"]),
        ("\n", "exact", {"mode": "exact", "top_p": 1.0},
         ["top_p: the ladder 0.7, the run 1.0"]),
        (";", "exact", {"mode": "exact", "temperature": 0.5},
         ["stop: the ladder '\\n', the run ';'", "temperature: the ladder 1.0, the run 0.5"]),
    ],
)
def test_a_setting_that_differs_is_refused_naming_each_field(recorded, stop, scorer, evaluator,
                                                            fields):
    ladder, b, ids = recorded
    with pytest.raises(InputError) as err:
        check_eval_sets(ladder, {b: _set(ids, b, stop=stop, scorer=scorer)}, evaluator)
    message = str(err.value)
    assert message.startswith(f"The run would not be scored as the ladder was on benchmark {b!r}: ")
    for field in fields:
        assert field in message
    assert "Evaluate the run as the ladder was" in message
    assert "`cod-monitor ladder score`" in message


def test_a_default_that_differs_is_named_as_the_evaluators_default(recorded):
    ladder, b, ids = recorded
    top_p_one = ladder.with_eval_settings({b: {**DEMO, "top_p": 1.0}})
    with pytest.raises(InputError, match=re.escape(
            "top_p: the ladder 1.0, the run 0.7 (the evaluator's default: the config does not "
            "set 'top_p')")) as err:
        check_eval_sets(top_p_one, {b: _set(ids, b, stop="\n")}, {"mode": "exact"})
    assert "set {'top_p': 1.0} in the evaluator config" in str(err.value)


def test_sampled_mode_compares_n_and_the_generation_budget(recorded):
    ladder, b, ids = recorded
    sampled = ladder.with_eval_settings({b: {**DEMO, "mode": "sampled", "n": 100,
                                             "max_new_tokens": None}})
    check_eval_sets(sampled, {b: _set(ids, b, stop="\n")}, {"mode": "sampled"})
    with pytest.raises(InputError, match=r"n: the ladder 100, the run 20; max_new_tokens: the "
                                         r"ladder None \(sized from the answers\), the run 8"):
        check_eval_sets(sampled, {b: _set(ids, b, stop="\n")},
                        {"mode": "sampled", "n": 20, "max_new_tokens": 8})


def test_only_what_is_knowable_is_compared(recorded, tmp_path):
    ladder, b, ids = recorded
    path = tmp_path / "b.jsonl"
    _set(ids, b).to_jsonl(path)
    # a custom job function: its specs and its evaluator config are its own business
    check_eval_sets(ladder, {b: {"path": str(path)}}, None, read_files=False)
    # an EvalSet is known whatever runs it: its stop marker is compared
    with pytest.raises(InputError, match="stop: the ladder"):
        check_eval_sets(ladder, {b: _set(ids, b)}, None, read_files=False)
    check_eval_sets(ladder, {b: _set(ids, b, stop="\n")}, None, read_files=False)


def test_benchmarks_without_settings_get_one_warning_naming_them(tmp_path, caplog):
    ladder = load_demo_ladder().with_eval_settings({"add": None, "sum": None})
    specs = write_eval_sets(ladder, demo_generator(SHIPPED_LADDER), ["add", "sort", "sum"],
                            tmp_path)
    caplog.set_level(logging.WARNING, logger="cod_monitor.monitor.checks")
    check_eval_sets(ladder, specs, {"mode": "exact"})  # 'sort' records matching settings
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "records no evaluation settings for benchmark(s) 'add', 'sum', so" in warning
    assert "`cod-monitor ladder score`" in warning and "--eval-settings" in warning
    caplog.clear()
    check_eval_sets(load_demo_ladder(), specs, {"mode": "exact"})
    assert caplog.records == []  # the shipped ladder records them all


def test_issue_18_a_run_without_the_ladders_stop_marker_is_refused_at_start(recorded, tmp_path):
    """The README setup ``eval_sets={"gsm8k": "gsm8k.jsonl"}`` has no stop marker: every
    checkpoint would score 0.0 against a ladder scored with stop "\\n". Refused at start."""
    from cod_monitor.monitor import CODMonitor

    ladder, b, ids = recorded
    ladder.save(tmp_path / "ladder")
    _set(ids, b).to_jsonl(tmp_path / "gsm8k.jsonl")
    monitor = CODMonitor(str(tmp_path / "ladder"), {b: str(tmp_path / "gsm8k.jsonl")},
                         {"backend": "hf", "mode": "exact"}, out_dir=tmp_path / "cod")
    with pytest.raises(InputError, match=re.escape(
            f"on benchmark {b!r}: stop: the ladder '\\n', the run None (no stop marker). ")):
        monitor.start()
    assert not (tmp_path / "cod").exists()  # refused before anything started
    monitor.close()
    fixed = CODMonitor(str(tmp_path / "ladder"),
                       {b: {"path": str(tmp_path / "gsm8k.jsonl"), "stop": "\n"}},
                       {"backend": "hf", "mode": "exact"}, poll_interval=None,
                       out_dir=tmp_path / "cod2")
    with fixed:
        fixed.start()
