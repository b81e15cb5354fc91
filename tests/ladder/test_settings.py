"""Evaluation settings of a ladder: the record, ladder.json's section, derived ladders,
and what the lm-eval importer reads from the logs."""

import dataclasses
import json
import logging

import pytest

from cod_monitor.evaluators.base import MODES
from cod_monitor.exceptions import LadderValidationError
from cod_monitor.ladder import UNKNOWN, EvalSettings, Ladder, ModelInfo
from cod_monitor.ladder.lm_eval import import_lm_eval_samples
from cod_monitor.ladder.settings import EVAL_MODES, SETTING_FIELDS, settings_by_benchmark
from cod_monitor.synthetic import synthetic_ladder

from test_lm_eval import lm_eval_record, write_samples

DEMO = {"stop": "\n", "scorer": "exact", "mode": "exact", "temperature": 1.0, "top_p": 0.7}


@pytest.fixture(scope="module")
def plain():
    """A synthetic ladder (one benchmark, 'synthetic') recording no settings."""
    return synthetic_ladder(n_samples=30, seed=0).ladder


def test_the_record_mirrors_the_evaluators_contract():
    assert EVAL_MODES == MODES
    assert tuple(f.name for f in dataclasses.fields(EvalSettings)) == SETTING_FIELDS
    empty = EvalSettings()
    assert empty.recorded == () and empty.to_dict() == {} and empty.stop is UNKNOWN
    # None is a value, not "unknown": no stop marker, a budget sized from the answers
    none = EvalSettings(stop=None, max_new_tokens=None)
    assert none.recorded == ("stop", "max_new_tokens")
    assert none.to_dict() == {"stop": None, "max_new_tokens": None}
    assert EvalSettings(temperature=1, n=4.0) == EvalSettings(temperature=1.0, n=4)
    assert repr(EvalSettings(mode="exact", top_p=0.7)) == "EvalSettings(mode='exact', top_p=0.7)"


def test_round_trip_through_ladder_json(tmp_path, plain):
    ladder = plain.with_eval_settings({"synthetic": {**DEMO, "stop": None}})
    ladder.save(tmp_path)
    meta = json.loads((tmp_path / "ladder.json").read_text())
    assert list(meta) == ["schema_version", "compute_unit", "models", "eval_settings"]
    assert meta["schema_version"] == 1
    assert meta["eval_settings"] == {"synthetic": {**DEMO, "stop": None}}
    loaded = Ladder.load(tmp_path)
    assert loaded.eval_settings == ladder.eval_settings
    settings = loaded.eval_settings_for("synthetic")
    assert settings.stop is None and settings.top_p == 0.7 and settings.n is UNKNOWN
    # saved again, the same bytes
    before = (tmp_path / "ladder.json").read_bytes()
    loaded.save(tmp_path)
    assert (tmp_path / "ladder.json").read_bytes() == before


def test_a_ladder_without_settings_loads_and_saves_as_before(tmp_path, plain):
    plain.save(tmp_path)
    meta = json.loads((tmp_path / "ladder.json").read_text())
    assert "eval_settings" not in meta  # old ladders keep their bytes (and fingerprints)
    loaded = Ladder.load(tmp_path)
    assert loaded.eval_settings == {} and loaded.eval_settings_for("synthetic") is None
    with pytest.raises(LadderValidationError, match="benchmark = 'gsm8k'"):
        loaded.eval_settings_for("gsm8k")


def test_the_shipped_demo_ladder_records_how_it_was_scored():
    from cod_monitor.demo import load_demo_ladder
    from cod_monitor.demo.build import demo_eval_settings

    ladder = load_demo_ladder()
    assert set(ladder.eval_settings) == set(ladder.benchmarks)
    assert all(s == EvalSettings(**DEMO) == demo_eval_settings()
               for s in ladder.eval_settings.values())


def test_derived_ladders_keep_the_settings(plain):
    ladder = plain.with_eval_settings({"synthetic": DEMO})
    names = [m.name for m in ladder.models]
    target = ladder.models_with_role("target")[0].name
    for derived in (ladder.with_roles({names[0]: "anchor"}),
                    ladder.with_compute({names[0]: ladder.models[0].compute * 1.5}),
                    ladder.without_models(target)):
        assert derived.eval_settings == {"synthetic": EvalSettings(**DEMO)}
    assert ladder.with_eval_settings({"synthetic": None}).eval_settings == {}
    assert plain.eval_settings == {}  # the original is left unchanged
    with pytest.raises(LadderValidationError, match="eval_settings = 'gsm8k'.*ladder's "
                                                    "benchmarks"):
        ladder.with_eval_settings({"gsm8k": DEMO})


BAD = [
    ({"stop": ""}, "stop = ''", "null for no stop marker"),
    ({"stop": 10}, "stop = 10", "non-empty string"),
    ({"scorer": None}, "scorer = None", "scorer name"),
    ({"mode": "greedy"}, "mode = 'greedy'", "'exact', 'sampled'"),
    ({"n": 0}, "n = 0", "integer >= 1"),
    ({"n": 2.5}, "n = 2.5", "integer >= 1"),
    ({"n": True}, "n = True", "integer >= 1"),
    ({"temperature": -1}, "temperature = -1", ">= 0"),
    ({"temperature": "1.0"}, "temperature = '1.0'", ">= 0"),
    ({"top_p": 0}, "top_p = 0", r"\(0, 1\]"),
    ({"top_p": 1.5}, "top_p = 1.5", r"\(0, 1\]"),
    ({"max_new_tokens": 0}, "max_new_tokens = 0", "or null"),
    ({"top_k": 50}, "top_k = 50", "Remove it; evaluation settings have only the keys"),
]


@pytest.mark.parametrize("entry, value, fix", BAD)
def test_bad_settings_in_ladder_json_are_refused_with_field_value_and_fix(
        tmp_path, plain, entry, value, fix):
    plain.save(tmp_path)
    meta = json.loads((tmp_path / "ladder.json").read_text())
    meta["eval_settings"] = {"synthetic": {**DEMO, **entry}}
    (tmp_path / "ladder.json").write_text(json.dumps(meta))
    with pytest.raises(LadderValidationError,
                       match=rf"ladder.json eval_settings\['synthetic'\]: invalid {value}\..*{fix}"):
        Ladder.load(tmp_path)


@pytest.mark.parametrize(
    "section, match",
    [(["stop"], r"invalid eval_settings = \['stop'\]\. Give \"eval_settings\" as a JSON object"),
     ({"synthetic": "exact"}, r"invalid eval_settings = 'exact'\. Give a benchmark's"),
     ({"gsm8k": DEMO}, r"invalid eval_settings = 'gsm8k'\. Record evaluation settings only "
                       r"for the ladder's benchmarks \('synthetic'\)")],
)
def test_a_bad_section_is_refused(tmp_path, plain, section, match):
    plain.save(tmp_path)
    meta = json.loads((tmp_path / "ladder.json").read_text())
    meta["eval_settings"] = section
    (tmp_path / "ladder.json").write_text(json.dumps(meta))
    with pytest.raises(LadderValidationError, match=match):
        Ladder.load(tmp_path)


def test_differences_compare_known_fields_and_skip_sampling_ones_in_exact_mode():
    ladder = EvalSettings(stop="\n", mode="exact", n=100, top_p=0.7)
    assert ladder.differences(EvalSettings(stop="\n", mode="exact", n=4, top_p=0.7)) == []
    assert ladder.differences(EvalSettings(scorer="normalized")) == []  # unknown on one side
    assert ladder.differences(EvalSettings(stop=None, mode="sampled", top_p=1.0)) == [
        ("stop", "\n", None), ("mode", "exact", "sampled"), ("top_p", 0.7, 1.0)]
    sampled = EvalSettings(mode="sampled", n=100, max_new_tokens=None)
    assert sampled.differences(EvalSettings(mode="sampled", n=20, max_new_tokens=8)) == [
        ("n", 100, 20), ("max_new_tokens", None, 8)]


def test_merge_fills_unknown_fields_and_refuses_a_contradiction():
    found = EvalSettings(stop="\n", temperature=0.0)
    assert found.merge(EvalSettings(scorer="exact", stop="\n")) == EvalSettings(
        stop="\n", scorer="exact", temperature=0.0)
    with pytest.raises(LadderValidationError, match="invalid temperature = 1.0. It "
                                                    "contradicts the value 0.0"):
        found.merge(EvalSettings(temperature=1.0))


def test_settings_for_a_whole_ladder_one_object_or_one_per_benchmark():
    assert settings_by_benchmark(None, ["a"]) == {}
    one = settings_by_benchmark({"stop": "\n"}, ["a", "b"])
    assert one == {"a": EvalSettings(stop="\n"), "b": EvalSettings(stop="\n")}
    assert settings_by_benchmark({"b": {"mode": "exact"}}, ["a", "b"]) == {
        "b": EvalSettings(mode="exact")}
    with pytest.raises(LadderValidationError, match=r"eval_settings = 'c'.*\('a', 'b'\)"):
        settings_by_benchmark({"c": {"mode": "exact"}}, ["a", "b"])
    with pytest.raises(LadderValidationError, match=r"eval_settings\['a'\]: invalid n = -1"):
        settings_by_benchmark({"a": {"n": -1}}, ["a", "b"])
    with pytest.raises(LadderValidationError, match="invalid eval_settings = 'exact'"):
        settings_by_benchmark("exact", ["a"])


# ------------------------------------------------------------------------- lm-eval


LM_MODELS = [ModelInfo(f"lm-{i}", 1e8 * 4**i, 2e9 * 4**i, 1.2e18 * 16**i) for i in range(3)]


def _lm_eval_ladder(tmp_path, gen_kwargs_of=None, **kwargs):
    """gsm8k-like logs of 3 models; ``gen_kwargs_of(model_index, doc)`` replaces the
    generation arguments (``None`` keeps the fixture's)."""
    paths = {}
    for i in range(3):
        recs = []
        for doc in range(3):
            rec = lm_eval_record(doc, "strict-match", float(doc < i))
            if gen_kwargs_of is not None:
                rec["arguments"]["gen_args_0"]["arg_1"] = gen_kwargs_of(i, doc)
            recs.append(rec)
        paths[f"lm-{i}"] = write_samples(tmp_path / f"lm-{i}", "gsm8k", recs)
    return import_lm_eval_samples(paths, LM_MODELS, **kwargs)


def test_lm_eval_records_what_the_generation_arguments_tell(tmp_path):
    # the fixture's logs: until ["Question:"], do_sample false (greedy)
    ladder = _lm_eval_ladder(tmp_path)
    assert ladder.eval_settings_for("gsm8k") == EvalSettings(
        stop="Question:", mode="sampled", temperature=0.0)
    sampled = _lm_eval_ladder(tmp_path / "s", lambda i, doc: {
        "until": ["\n\n"], "do_sample": True, "temperature": 0.6, "top_p": 0.95,
        "max_gen_toks": 256})
    assert sampled.eval_settings_for("gsm8k") == EvalSettings(
        stop="\n\n", mode="sampled", temperature=0.6, top_p=0.95, max_new_tokens=256)
    # a temperature without do_sample: HF decodes greedily, vLLM samples; not recorded
    unknown = _lm_eval_ladder(tmp_path / "u", lambda i, doc: {"until": [], "temperature": 0.6})
    assert unknown.eval_settings_for("gsm8k") == EvalSettings(stop=None, mode="sampled")


def test_lm_eval_settings_fill_in_and_must_not_contradict_the_logs(tmp_path):
    ladder = _lm_eval_ladder(tmp_path, eval_settings={"scorer": "exact"})
    assert ladder.eval_settings_for("gsm8k") == EvalSettings(
        stop="Question:", scorer="exact", mode="sampled", temperature=0.0)
    saved = Ladder.load(ladder.save(tmp_path / "out"))
    assert saved.eval_settings == ladder.eval_settings
    with pytest.raises(LadderValidationError, match=r"eval_settings\['gsm8k'\].*invalid stop = "
                                                    r"'\\n'\. It contradicts the value "
                                                    r"'Question:'"):
        _lm_eval_ladder(tmp_path / "again", eval_settings={"stop": "\n"})


def test_lm_eval_leaves_unknown_what_the_logs_do_not_fix(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="cod_monitor.ladder.lm_eval")
    several = _lm_eval_ladder(tmp_path / "a", lambda i, doc: {
        "until": ["\n\n", "Question:"], "do_sample": False})
    assert several.eval_settings_for("gsm8k") == EvalSettings(mode="sampled", temperature=0.0)
    assert any("several 'until' strings" in r.getMessage() for r in caplog.records)
    caplog.clear()
    disagree = _lm_eval_ladder(tmp_path / "b", lambda i, doc: {
        "until": ["\n"], "do_sample": True, "temperature": 0.5 + 0.5 * (i == 2)})
    assert disagree.eval_settings_for("gsm8k") == EvalSettings(stop="\n", mode="sampled")
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "disagree on temperature (0.5, 1.0)" in warning
    # a log-likelihood task (arguments are context and continuation): nothing is known
    loglik = _lm_eval_ladder(tmp_path / "c", lambda i, doc: " 42")
    assert loglik.eval_settings == {}
