"""Tests of the lm-evaluation-harness importer on sample logs written into tmp_path."""

import json
from pathlib import Path

import pytest
from numpy.testing import assert_allclose, assert_array_equal

from cod_monitor.exceptions import LadderValidationError
from cod_monitor.ladder import ModelInfo
from cod_monitor.ladder.lm_eval import import_lm_eval_samples


def lm_eval_record(doc_id, filt, value, *, metric="exact_match", metrics=None, target="42"):
    """A record shaped like lm-eval's EvaluationTracker.save_results_samples output."""
    rec = {
        "doc_id": doc_id,
        "doc": {"question": f"q{doc_id}", "answer": f"#### {target}"},
        "target": target,
        "arguments": {"gen_args_0": {"arg_0": f"Question: q{doc_id}\nAnswer:",
                                     "arg_1": {"until": ["Question:"], "do_sample": False}}},
        "resps": [["The answer is 42.", "It is 7."]],
        "filtered_resps": ["42"],
        "filter": filt,
        "metrics": metrics or [metric],
        "doc_hash": "0" * 64,
        "prompt_hash": "1" * 64,
        "target_hash": "2" * 64,
    }
    rec[metric] = value
    return rec


def write_samples(directory: Path, task: str, records, stamp="2024-05-01T12-00-00.123456"):
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"samples_{task}_{stamp}.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    return path


@pytest.fixture
def lm_models():
    return [ModelInfo(f"lm-{i}", 1e8 * 4**i, 2e9 * 4**i, 1.2e18 * 16**i) for i in range(3)]


@pytest.fixture
def lm_eval_dirs(tmp_path):
    """Three models x a gsm8k-like task with two filters per document."""
    paths = {}
    for i in range(3):
        d = tmp_path / f"lm-{i}"
        recs = []
        for doc in range(4):
            strict = float(doc < i + 1)
            recs.append(lm_eval_record(doc, "strict-match", strict))
            recs.append(lm_eval_record(doc, "flexible-extract", 1.0))
        write_samples(d, "gsm8k", recs)
        paths[f"lm-{i}"] = d
    return paths


def test_lm_eval_directories_first_filter_by_default(lm_eval_dirs, lm_models):
    ladder = import_lm_eval_samples(lm_eval_dirs, lm_models)
    assert ladder.benchmarks == ["gsm8k"]
    mat = ladder.matrix("gsm8k")
    assert list(mat.sample_ids) == ["0", "1", "2", "3"]
    assert_array_equal(mat.pass_rates[:, 0], [1, 0, 0, 0])  # strict-match, seen first
    assert_array_equal(mat.pass_rates[:, 2], [1, 1, 1, 0])
    assert (mat.n_samples == 1).all()
    flexible = import_lm_eval_samples(lm_eval_dirs, lm_models, filter_name="flexible-extract")
    assert (flexible.matrix("gsm8k").pass_rates == 1).all()
    with pytest.raises(LadderValidationError, match="filter = 'maj@8'.*'strict-match'"):
        import_lm_eval_samples(lm_eval_dirs, lm_models, filter_name="maj@8")


def test_lm_eval_repeats_become_pass_rates_with_counts(tmp_path, lm_models):
    paths = {}
    for i, m in enumerate(lm_models):
        recs = [lm_eval_record(doc, "none", [1.0] * (doc + i) + [0.0] * (8 - doc - i))
                for doc in range(3)]
        paths[m.name] = [write_samples(tmp_path / m.name, "arith_gen", recs)]
    mat = import_lm_eval_samples(paths, lm_models).matrix("arith_gen")
    assert_allclose(mat.pass_rates[:, 1], [1 / 8, 2 / 8, 3 / 8])
    assert (mat.n_samples == 8).all()
    assert_array_equal(mat.n_correct[:, 2], [2, 3, 4])


def test_lm_eval_files_of_one_task_are_pooled(tmp_path, lm_models):
    paths = {}
    for i, m in enumerate(lm_models):
        first = write_samples(tmp_path / m.name, "t", [lm_eval_record(0, "none", 1.0)],
                              stamp="2024-05-01T12-00-00.000001")
        second = write_samples(tmp_path / m.name, "t", [lm_eval_record(0, "none", float(i > 0))],
                               stamp="2024-05-02T12-00-00")
        paths[m.name] = [first, second]
    mat = import_lm_eval_samples(paths, lm_models).matrix("t")
    assert_allclose(mat.pass_rates[0], [0.5, 1.0, 1.0])
    assert_array_equal(mat.n_samples[0], [2, 2, 2])


def test_lm_eval_default_metric_task_names_and_renaming(tmp_path, lm_models):
    paths = {}
    for i, m in enumerate(lm_models):
        recs = []
        for doc in range(2):
            rec = lm_eval_record(doc, "none", 0.25 * i, metric="acc", metrics=["acc", "acc_norm"])
            rec["acc_norm"] = 1.0
            recs.append(rec)
        paths[m.name] = write_samples(tmp_path / m.name, "mmlu_abstract_algebra", recs)
    ladder = import_lm_eval_samples(paths, lm_models)
    assert ladder.benchmarks == ["mmlu_abstract_algebra"]
    mat = ladder.matrix("mmlu_abstract_algebra")
    assert_allclose(mat.pass_rates[0], [0.0, 0.25, 0.5])  # acc: first in "metrics"
    assert mat.n_samples is None  # 0.25 is not a 0/1 outcome
    renamed = import_lm_eval_samples(paths, lm_models, metric="acc_norm",
                                     benchmark_names={"mmlu_abstract_algebra": "algebra"})
    assert renamed.benchmarks == ["algebra"]
    assert (renamed.matrix("algebra").pass_rates == 1).all()


def test_lm_eval_metric_fallback_when_metrics_not_listed(tmp_path, lm_models):
    paths = {}
    for m in lm_models:
        rec = lm_eval_record(0, "none", True)
        del rec["metrics"]
        paths[m.name] = write_samples(tmp_path / m.name, "t", [rec])
    assert (import_lm_eval_samples(paths, lm_models).matrix("t").pass_rates == 1).all()


def test_lm_eval_old_json_list_format(tmp_path, lm_models):
    paths = {}
    for m in lm_models:
        p = tmp_path / m.name / "samples_boolq_2024-01-01T00-00-00.json"
        p.parent.mkdir()
        p.write_text(json.dumps([lm_eval_record(d, "none", 1.0, metric="acc") for d in range(2)]))
        paths[m.name] = p.parent
    assert import_lm_eval_samples(paths, lm_models).benchmarks == ["boolq"]


@pytest.mark.parametrize(
    "change, kwargs, match",
    [
        (lambda r: r.pop("doc_id"), {}, "doc_id"),
        (lambda r: r.update(exact_match="yes"), {}, "exact_match = 'yes'"),
        (lambda r: r.update(exact_match=1.5), {}, "exact_match = 1.5"),
        (lambda r: None, {"metric": "bleu"}, "metric = 'bleu'"),
    ],
)
def test_bad_lm_eval_records(tmp_path, lm_models, change, kwargs, match):
    paths = {}
    for m in lm_models:
        rec = lm_eval_record(0, "none", 1.0)
        change(rec)
        paths[m.name] = write_samples(tmp_path / m.name, "t", [rec])
    with pytest.raises(LadderValidationError, match=match):
        import_lm_eval_samples(paths, lm_models, **kwargs)


def test_bad_lm_eval_inputs(tmp_path, lm_eval_dirs, lm_models):
    with pytest.raises(LadderValidationError, match="model = 'ghost'"):
        import_lm_eval_samples({**lm_eval_dirs, "ghost": lm_eval_dirs["lm-0"]}, lm_models)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(LadderValidationError, match="No samples_"):
        import_lm_eval_samples({**lm_eval_dirs, "lm-0": empty}, lm_models)
    odd = tmp_path / "gsm8k.jsonl"
    odd.write_text(json.dumps(lm_eval_record(0, "none", 1.0)) + "\n")
    with pytest.raises(LadderValidationError, match="samples_<task>_<timestamp>"):
        import_lm_eval_samples({**lm_eval_dirs, "lm-0": odd}, lm_models)
    broken = write_samples(tmp_path / "broken", "gsm8k", [])
    broken.write_text("{not json\n")
    with pytest.raises(LadderValidationError, match="JSON"):
        import_lm_eval_samples({**lm_eval_dirs, "lm-0": broken}, lm_models)


def test_lm_eval_missing_documents(tmp_path, lm_eval_dirs, lm_models):
    short = write_samples(tmp_path / "short", "gsm8k",
                          [lm_eval_record(d, "strict-match", 1.0) for d in range(3)])
    paths = {**lm_eval_dirs, "lm-1": short}
    with pytest.raises(LadderValidationError, match="1 of 4 samples"):
        import_lm_eval_samples(paths, lm_models)
    with pytest.warns(UserWarning, match="dropped 1 of 4"):
        ladder = import_lm_eval_samples(paths, lm_models, drop_incomplete=True)
    assert ladder.matrix("gsm8k").pass_rates.shape == (3, 3)
