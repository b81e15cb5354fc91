import json

import pytest

from cod_monitor.evaluators import EvalSample, EvalSet, EvalSetValidationError
from cod_monitor.exceptions import CODError, LadderValidationError

RECORDS = [
    {"id": "a", "prompt": "1+1=", "answer": "2", "family": "add"},
    {"id": "b", "prompt": "c:ab=", "answer": "ab", "family": "copy"},
    {"id": 7, "prompt": "2*3=", "answer": 6},
]


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
    assert isinstance(info.value, CODError)


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
    with pytest.raises(ImportError, match=r"pip install 'cod_monitor\[lmeval\]'"):
        EvalSet.from_lm_eval_task("gsm8k")
