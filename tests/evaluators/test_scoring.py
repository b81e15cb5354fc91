"""Scorers, through the EvalSet that applies them (the completion cut at the stop marker)."""

import pytest

from cod_monitor.evaluators import EvalSet, cut_at_stop

RECORDS = [{"id": "a", "prompt": "1+1=", "answer": "2", "family": "add"}]


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
