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


def test_lm_eval_task_builds_prompts_and_answers():
    pytest.importorskip("lm_eval")
    es = EvalSet.from_lm_eval_task("gsm8k", limit=3)
    assert len(es) == 3 and all(s.prompt and s.answer for s in es)
    final = EvalSet.from_lm_eval_task(
        "gsm8k", limit=3, scorer="last_number", doc_to_answer=lambda d: d["answer"].split("####")[-1].strip()
    )
    assert final.prompts == es.prompts and all(a.lstrip("-").isdigit() for a in final.answers)


def test_lm_eval_missing_gives_install_hint():
    from importlib.util import find_spec

    if find_spec("lm_eval") is not None:
        pytest.skip("lm_eval is installed")
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
