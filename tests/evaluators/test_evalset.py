import json
import subprocess
import sys

import pytest

from cod_monitor.evaluators import (
    EvalSample,
    EvalSet,
    EvalSetValidationError,
    EvaluatorConfigError,
    HFEvaluator,
    VLLMEvaluator,
    cut_at_stop,
    make_evaluator,
)
from cod_monitor.exceptions import LadderValidationError

RECORDS = [
    {"id": "a", "prompt": "1+1=", "answer": "2", "family": "add"},
    {"id": "b", "prompt": "c:ab=", "answer": "ab", "family": "copy"},
    {"id": 7, "prompt": "2*3=", "answer": 6},
]


# ---------------------------------------------------------------------- scorers


@pytest.mark.parametrize(
    "scorer, completion, answer, expected",
    [
        ("exact", "42", "42", True),
        ("exact", " 42", "42", False),
        ("exact", "42\nQ: next", "42", True),  # cut at the stop marker
        ("exact", "4", "42", False),
        ("normalized", "  The ANSWER:  Paris!", "the answer paris", True),
        ("normalized", "Pariss", "Paris", False),
        ("last_number", "3 + 4 = 7.", "7", True),
        ("last_number", "so 1,234 apples", "1234", True),
        ("last_number", "7 then 8", "7", False),
        ("last_number", "-3.50", "-3.5", True),
        ("last_number", "no number", "3", False),
        ("regex:answer is (\\w+)", "the answer is B.", "B", True),
        ("regex:answer is (\\w+)", "the answer is C.", "B", False),
        ("regex:\\d+", "x 12 y", "12", True),
        ("regex:\\d+", "nothing", "12", False),
    ],
)
def test_scorers(scorer, completion, answer, expected):
    es = EvalSet.from_records([{"id": "s", "prompt": "p", "answer": answer}], name="t", scorer=scorer, stop="\n")
    assert es.score(completion, answer) is expected


def test_callable_scorer_sees_the_cut_completion():
    seen = []

    def scorer(completion, answer):
        seen.append(completion)
        return completion.startswith(answer)

    es = EvalSet.from_records(RECORDS[:1], name="t", scorer=scorer, stop=".")
    assert es.score("2 apples. More text", "2")
    assert seen == ["2 apples"]
    assert es.scorer_name.endswith("scorer")


@pytest.mark.parametrize("text, stop, expected", [("42\n7", "\n", "42"), ("42", "\n", "42"), ("4.2", None, "4.2")])
def test_cut_at_stop(text, stop, expected):
    assert cut_at_stop(text, stop) == expected


def test_count_correct():
    es = EvalSet.from_records(RECORDS, name="t", stop="\n")
    assert es.count_correct([["2\n", "3", "2"], ["ab\nx", "a"], []]) == [2, 1, 0]


# ---------------------------------------------------------------------- containers and files


def test_from_records_fields_and_container():
    es = EvalSet.from_records(RECORDS, name="mini", stop="\n")
    assert len(es) == 3
    assert es.ids == ("a", "b", "7")
    assert es[2] == EvalSample("7", "2*3=", "6", {})
    assert es[0].meta == {"family": "add"}
    assert [s.id for s in es] == ["a", "b", "7"]
    assert es.prompts[1] == "c:ab=" and es.answers[2] == "6"


def test_jsonl_round_trip(tmp_path):
    es = EvalSet.from_records(RECORDS, name="mini", stop="\n")
    path = tmp_path / "mini.jsonl"
    es.to_jsonl(path)
    back = EvalSet.from_jsonl(path, stop="\n")
    assert back == es  # name defaults to the file stem
    assert json.loads(path.read_text().splitlines()[0]) == RECORDS[0]


def test_dict_round_trip():
    es = EvalSet.from_records(RECORDS, name="mini", scorer="normalized", stop=".")
    assert EvalSet.from_dict(json.loads(json.dumps(es.to_dict()))) == es
    with pytest.raises(TypeError, match="callable scorer"):
        EvalSet.from_records(RECORDS, name="m", scorer=lambda c, a: True).to_dict()


@pytest.mark.parametrize(
    "records, kwargs, field, match",
    [
        ([], {}, "samples", "at least one sample"),
        ([RECORDS[0], RECORDS[0]], {}, "id", "Ids must be unique"),
        ([{"id": "x", "prompt": "", "answer": "1"}], {}, "prompt", "non-empty prompt"),
        ([{"id": "x", "prompt": "p"}], {}, "answer", "Give every record a 'answer' field"),
        ([{"id": "x", "prompt": "p", "answer": None}], {}, "answer", "'answer' field"),
        ([{"prompt": "p", "answer": "1"}], {}, "id", "'id' field"),
        ([{"id": "x", "prompt": "p", "answer": ["1"]}], {}, "answer", "Make 'answer' a string"),
        (RECORDS[:1], {"scorer": "fuzzy"}, "scorer", "Use one of 'exact'"),
        (RECORDS[:1], {"scorer": "regex:("}, "scorer", "Fix the regular expression"),
        ([{"id": "x", "prompt": "p", "answer": "a.b"}], {"stop": "."}, "answer", "contains the stop marker"),
        ([{"id": "x", "prompt": "p", "answer": "ab"}], {"scorer": "last_number"}, "answer", "numeric answers"),
    ],
)
def test_validation_errors_name_field_value_and_fix(records, kwargs, field, match):
    with pytest.raises(EvalSetValidationError, match=match) as info:
        EvalSet.from_records(records, name="bad", **kwargs)
    assert info.value.field == field
    assert f"invalid {field} = " in str(info.value)
    assert isinstance(info.value, LadderValidationError) and isinstance(info.value, ValueError)


def test_bad_json_line_names_file_and_line(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text('{"id": "a", "prompt": "p", "answer": "1"}\n{not json}\n')
    with pytest.raises(EvalSetValidationError, match=r"broken.jsonl:2: invalid line"):
        EvalSet.from_jsonl(path)


LM_EVAL_DOCS = [
    {"question": "2+3", "answer": "5", "label": 1, "options": ["4", "5", "6"]},
    {"question": "7+1", "answer": "8", "label": 0, "options": ["8", "9", "7"]},
    {"question": "4+4", "answer": "8", "label": 2, "options": ["6", "7", "8"]},
]


@pytest.fixture
def lm_eval_tasks(tmp_path, monkeypatch):
    """A TaskManager over two local lm-eval tasks (a JSON file; nothing from the hub)."""
    pytest.importorskip("lm_eval")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    from lm_eval.tasks import TaskManager

    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(json.dumps(d) + "\n" for d in LM_EVAL_DOCS))
    source = f"dataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {docs}\ntest_split: test\n"
    (tmp_path / "cod_add.yaml").write_text(
        "task: cod_add\n" + source + 'output_type: generate_until\ndoc_to_text: "Q: {{question}}="\n'
        'doc_to_target: "{{answer}}"\ngeneration_kwargs:\n  until: [";"]\n'
        "metric_list:\n  - metric: exact_match\n"
    )
    (tmp_path / "cod_add_mc.yaml").write_text(
        "task: cod_add_mc\n" + source + 'output_type: multiple_choice\ndoc_to_text: "{{question}} is"\n'
        'doc_to_target: label\ndoc_to_choice: "{{options}}"\nmetric_list:\n  - metric: acc\n'
    )
    return TaskManager(include_path=str(tmp_path), include_defaults=False)


def test_lm_eval_generation_task_builds_prompts_answers_and_stop(lm_eval_tasks):
    es = EvalSet.from_lm_eval_task("cod_add", task_manager=lm_eval_tasks)
    assert es.ids == ("cod_add/0", "cod_add/1", "cod_add/2")
    assert es.prompts == ["Q: 2+3=", "Q: 7+1=", "Q: 4+4="]
    assert es.answers == [" 5", " 8", " 8"]  # lm-eval's target delimiter, then the target
    assert es.stop == ";"  # the task's first `until` string
    assert es.score(" 8", es.answers[1]) and not es.score(" 9", es.answers[1])
    two = EvalSet.from_lm_eval_task("cod_add", limit=2, scorer="last_number",
                                    doc_to_answer=lambda d: d["answer"],
                                    task_manager=lm_eval_tasks)
    assert len(two) == 2 and two.answers == ["5", "8"] and two.scorer_name == "last_number"


def test_lm_eval_multiple_choice_task_answers_with_the_labelled_choice(lm_eval_tasks):
    es = EvalSet.from_lm_eval_task("cod_add_mc", task_manager=lm_eval_tasks)
    assert es.answers == [" 5", " 8", " 8"]  # the choice at `label`, not the label
    assert es.stop == "\n"  # no generation_kwargs: a newline ends the answer
    with pytest.raises(EvalSetValidationError, match="split"):
        EvalSet.from_lm_eval_task("cod_add_mc", split="dev", task_manager=lm_eval_tasks)
    with pytest.raises(EvalSetValidationError, match="split"):
        EvalSet.from_lm_eval_task("cod_add_mc", split="validation", task_manager=lm_eval_tasks)


def test_lm_eval_missing_gives_install_hint(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    # as on a machine without lm-evaluation-harness (installed here for the tests above)
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "lm_eval" else real(name, *a))
    with pytest.raises(ImportError, match="pip install lm_eval"):
        EvalSet.from_lm_eval_task("gsm8k")


# ---------------------------------------------------------------------- factory and params


def test_import_is_light():
    code = (
        "import sys, json, cod_monitor.evaluators;"
        "print(json.dumps([m for m in ('torch', 'transformers', 'vllm', 'tokenizers') if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


@pytest.mark.parametrize("backend, cls", [("hf", HFEvaluator), ("vllm", VLLMEvaluator)])
def test_make_evaluator_round_trips_config(backend, cls):
    cfg = {"backend": backend, "mode": "exact", "n": 100, "temperature": 1.0, "top_p": 0.7,
           "max_new_tokens": None, "batch_size": 16, "seed": 0, "device": "cpu"}
    ev = make_evaluator(cfg)
    assert isinstance(ev, cls)
    full = ev.get_config()
    assert {k: full[k] for k in cfg} == cfg
    assert make_evaluator(full).get_config() == full
    with ev as same:
        assert same is ev


@pytest.mark.parametrize(
    "cfg, match",
    [
        ({"backend": "jax"}, "'backend' key .* Got 'jax'"),
        ({"backend": "hf", "beams": 4}, r"Unknown key\(s\) \['beams'\]"),
        ({"mode": "greedy"}, "'mode' parameter of HFEvaluator must be a str among"),
        ({"top_p": 0.0}, r"'top_p' parameter of HFEvaluator must be a float in \(0, 1\]. Got 0.0 instead."),
        ({"temperature": -1}, "'temperature' parameter"),
        ({"n": 0}, r"'n' parameter of HFEvaluator must be an int in \[1, inf\)"),
        ({"max_new_tokens": 0}, "'max_new_tokens' parameter"),
        ({"batch_size": 0}, "'batch_size' parameter"),
        ({"backend": "vllm", "exact_topk": 0}, "'exact_topk' parameter of VLLMEvaluator"),
    ],
)
def test_invalid_config(cfg, match):
    with pytest.raises(EvaluatorConfigError, match=match):
        make_evaluator(cfg)
