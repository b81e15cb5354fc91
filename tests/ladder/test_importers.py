"""Tests of the importers on small files written by hand into tmp_path."""

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from cod_monitor.exceptions import LadderValidationError
from cod_monitor.ladder.importers import import_long_table, read_models_table

# A miniature of pythia_monkeys/models.csv: an extra model (pythia-14m) that the score
# file does not use, compute values beyond int64, and columns we do not read.
MODELS_CSV = """\
model,family,size_label,params_total,params_nonembed,step,tokens,compute_6ND,compute_6ND_nonembed,used_in
pythia-14m@step1,Pythia,14M,14067712,1189888,1,2097152,177012782137344,14972255993856,math_sweep
pythia-70m@step143000,Pythia,70M,70426624,18915328,143000,299892736000,126722597751619584000,34035416797544448000,math_llmonkeys
pythia-160m@step143000,Pythia,160M,162322944,85056000,143000,299892736000,292076830750408704000,153046059319296000000,math_llmonkeys
pythia-410m@step143000,Pythia,410M,405334016,302311424,143000,299892736000,729340362312646656000,543966000404496384000,math_llmonkeys
pythia-1b@step143000,Pythia,1B,1011781632,805736448,143000,299892736000,1820555771130150912000,1449807047313850368000,math_llmonkeys
"""
MODEL_MAP = {"name": "model", "params": "params_total", "compute": "compute_6ND"}

# A miniature of pythia_monkeys/math_llmonkeys.csv: 3 problems x 4 models, file order
# by model (largest first, as in the real file).
LLMONKEYS_CSV = """\
problem_id,model,n_samples,n_correct,pass_rate
82,pythia-1b@step143000,10000,122,0.0122
142,pythia-1b@step143000,10000,32,0.0032
188,pythia-1b@step143000,10000,167,0.0167
82,pythia-410m@step143000,10000,41,0.0041
142,pythia-410m@step143000,10000,7,0.0007
188,pythia-410m@step143000,10000,60,0.006
82,pythia-160m@step143000,10000,9,0.0009
142,pythia-160m@step143000,10000,0,0.0
188,pythia-160m@step143000,10000,13,0.0013
82,pythia-70m@step143000,10000,2,0.0002
142,pythia-70m@step143000,10000,0,0.0
188,pythia-70m@step143000,10000,1,0.0001
"""
NAMES = ["pythia-70m@step143000", "pythia-160m@step143000", "pythia-410m@step143000",
         "pythia-1b@step143000"]


@pytest.fixture
def monkeys(tmp_path):
    (tmp_path / "models.csv").write_text(MODELS_CSV)
    (tmp_path / "math_llmonkeys.csv").write_text(LLMONKEYS_CSV)
    return tmp_path


@pytest.fixture
def models(monkeys):
    return read_models_table(monkeys / "models.csv", columns=MODEL_MAP)


# ---------------------------------------------------------------- models table


def test_read_models_table_with_a_column_mapping(models):
    assert [m.name for m in models][:2] == ["pythia-14m@step1", "pythia-70m@step143000"]
    m = models[1]
    assert m.params == 70426624.0 and m.tokens == 299892736000.0
    assert m.compute == 126722597751619584000.0 and isinstance(m.compute, float)
    assert m.step == 143000 and m.role == "ladder" and m.run is None


def test_compute_defaults_to_six_n_d(monkeys):
    models = read_models_table(monkeys / "models.csv",
                               columns={"name": "model", "params": "params_total"})
    m = models[1]
    assert m.compute == 6.0 * 70426624.0 * 299892736000.0


def test_roles_override_and_role_column(tmp_path):
    (tmp_path / "m.csv").write_text(
        "name,params,tokens,role,run,loss\n"
        "a,1e8,2e9,,r1,3.5\nb,2e8,4e9,anchor,,\nc,4e8,8e9,ladder,,\n"
    )
    models = read_models_table(tmp_path / "m.csv", roles={"c": "target"})
    assert [(m.role, m.run, m.loss) for m in models] == [
        ("ladder", "r1", 3.5), ("anchor", None, None), ("target", None, None)]
    with pytest.raises(LadderValidationError, match="roles.*'zz=target'"):
        read_models_table(tmp_path / "m.csv", roles={"zz": "target"})
    with pytest.raises(LadderValidationError, match="role = 'judge'"):
        read_models_table(tmp_path / "m.csv", roles={"c": "judge"})


def test_models_table_from_json(tmp_path, models):
    entries = [m.to_dict() for m in models]
    (tmp_path / "list.json").write_text(json.dumps(entries))
    assert read_models_table(tmp_path / "list.json") == models
    (tmp_path / "ladder.json").write_text(json.dumps({"schema_version": 1, "models": entries}))
    assert read_models_table(tmp_path / "ladder.json") == models
    renamed = [{("model" if k == "name" else k): v for k, v in e.items()} for e in entries]
    (tmp_path / "renamed.json").write_text(json.dumps(renamed))
    assert read_models_table(tmp_path / "renamed.json", columns={"name": "model"}) == models


@pytest.mark.parametrize(
    "text, columns, match",
    [
        (MODELS_CSV, {"name": "model", "params": "nope"}, "columns.*'params=nope'.*no column"),
        (MODELS_CSV, {"name": "model", "colour": "x"}, "columns.*colour=x"),
        (MODELS_CSV, {"params": "params_total"}, "'name' column"),
        ("name,params,tokens\na,big,1e9\n", None, "params = 'big'"),
        ("name,params,tokens\na,1e8,1e9\na,1e8,1e9\n", None, "name = 'a'"),
        ("name,params,tokens\na,-1,1e9\n", None, "params"),
        ("name,params,tokens\na,1e8\n", None, "row"),
        ("name,params,tokens\n", None, "at least one model"),
    ],
)
def test_bad_models_table(tmp_path, text, columns, match):
    (tmp_path / "m.csv").write_text(text)
    with pytest.raises(LadderValidationError, match=match):
        read_models_table(tmp_path / "m.csv", columns=columns)


def test_missing_models_file(tmp_path):
    with pytest.raises(LadderValidationError, match="models"):
        read_models_table(tmp_path / "absent.csv")


# ------------------------------------------------------------------ long table


def test_import_llmonkeys_miniature(monkeys, models):
    ladder = import_long_table(
        monkeys / "math_llmonkeys.csv", models,
        columns={"sample_id": "problem_id", "score": "pass_rate"}, benchmark="math",
    )
    assert [m.name for m in ladder.models] == NAMES  # the unused pythia-14m is left out
    mat = ladder.matrix("math")
    assert list(mat.sample_ids) == ["82", "142", "188"]
    assert_allclose(mat.pass_rates[:, -1], [0.0122, 0.0032, 0.0167])
    assert (mat.n_samples == 10000).all()
    assert_array_equal(mat.n_correct[0], [2, 9, 41, 122])


def test_score_from_counts_when_no_score_column(monkeys, models):
    ladder = import_long_table(monkeys / "math_llmonkeys.csv", models,
                               columns={"sample_id": "problem_id"}, benchmark="math")
    assert_allclose(ladder.matrix("math").pass_rates[:, -1], [0.0122, 0.0032, 0.0167])


def test_models_as_a_path_and_roles(monkeys):
    models = read_models_table(monkeys / "models.csv", columns=MODEL_MAP,
                               roles={"pythia-1b@step143000": "target"})
    ladder = import_long_table(monkeys / "math_llmonkeys.csv", models,
                               columns={"sample_id": "problem_id"}, benchmark="math")
    assert ladder.matrix("math").model_names == NAMES[:3]
    (monkeys / "plain.csv").write_text(
        "name,params,tokens\n" + "".join(f"{n},{1e8 * (i + 1)},1e10\n" for i, n in enumerate(NAMES))
    )
    assert import_long_table(monkeys / "math_llmonkeys.csv", monkeys / "plain.csv",
                             columns={"sample_id": "problem_id"}, benchmark="math").models


def test_benchmark_column_and_filter(tmp_path, models):
    lines = ["task,problem_id,model,pass_rate"]
    for bench in ("math", "gsm8k"):
        for sid in ("1", "2"):
            for i, name in enumerate(NAMES):
                lines.append(f"{bench},{sid},{name},{0.1 * i}")
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    cols = {"benchmark": "task", "sample_id": "problem_id", "score": "pass_rate"}
    ladder = import_long_table(tmp_path / "t.csv", models, columns=cols)
    assert ladder.benchmarks == ["gsm8k", "math"]
    only = import_long_table(tmp_path / "t.csv", models, columns=cols, benchmark="gsm8k")
    assert only.benchmarks == ["gsm8k"]
    with pytest.raises(LadderValidationError, match="benchmark = 'mmlu'.*'gsm8k', 'math'"):
        import_long_table(tmp_path / "t.csv", models, columns=cols, benchmark="mmlu")


def test_no_benchmark_anywhere(monkeys, models):
    with pytest.raises(LadderValidationError, match="benchmark.*--benchmark NAME"):
        import_long_table(monkeys / "math_llmonkeys.csv", models,
                          columns={"sample_id": "problem_id"})


def test_unknown_models_in_scores(monkeys, models):
    subset = [m for m in models if m.name != "pythia-1b@step143000"]
    with pytest.raises(LadderValidationError,
                       match=r"math_llmonkeys.csv:2: invalid model = 'pythia-1b@step143000'"):
        import_long_table(monkeys / "math_llmonkeys.csv", subset,
                          columns={"sample_id": "problem_id"}, benchmark="math")
    ladder = import_long_table(monkeys / "math_llmonkeys.csv", subset,
                               columns={"sample_id": "problem_id"}, benchmark="math",
                               skip_unknown_models=True)
    assert [m.name for m in ladder.models] == NAMES[:3]


def test_bad_value_names_file_and_line(monkeys, models):
    text = LLMONKEYS_CSV.replace("142,pythia-160m@step143000,10000,0,0.0",
                                 "142,pythia-160m@step143000,10000,0,0.5")
    (monkeys / "bad.csv").write_text(text)
    with pytest.raises(LadderValidationError, match=r"bad.csv:9: invalid score = '0.5'"):
        import_long_table(monkeys / "bad.csv", models,
                          columns={"sample_id": "problem_id", "score": "pass_rate"},
                          benchmark="math")


@pytest.mark.parametrize(
    "columns, match",
    [
        ({"sample_id": "problem_id", "score": "accuracy"}, "columns.*score=accuracy"),
        ({"sample": "problem_id"}, "columns.*sample=problem_id"),
        ({}, "'sample_id' column"),
    ],
)
def test_bad_long_table_columns(monkeys, models, columns, match):
    with pytest.raises(LadderValidationError, match=match):
        import_long_table(monkeys / "math_llmonkeys.csv", models, columns=columns,
                          benchmark="math")


def test_incomplete_long_table(monkeys, models):
    text = "".join(line + "\n" for line in LLMONKEYS_CSV.splitlines()
                   if "188,pythia-70m" not in line)
    (monkeys / "inc.csv").write_text(text)
    kwargs = dict(columns={"sample_id": "problem_id"}, benchmark="math")
    with pytest.raises(LadderValidationError, match="--drop-incomplete"):
        import_long_table(monkeys / "inc.csv", models, **kwargs)
    with pytest.warns(UserWarning, match="dropped 1 of 3"):
        ladder = import_long_table(monkeys / "inc.csv", models, drop_incomplete=True, **kwargs)
    assert list(ladder.matrix("math").sample_ids) == ["82", "142"]


def test_gzipped_csv_and_jsonl(monkeys, models):
    (monkeys / "s.csv.gz").write_bytes(gzip.compress(LLMONKEYS_CSV.encode()))
    kwargs = dict(columns={"sample_id": "problem_id"}, benchmark="math")
    from_gz = import_long_table(monkeys / "s.csv.gz", models, **kwargs)
    rows = [line.split(",") for line in LLMONKEYS_CSV.splitlines()[1:]]
    jsonl = "".join(
        json.dumps({"benchmark": "math", "problem_id": int(p), "model": m, "n_samples": int(n),
                    "n_correct": int(c), "score": float(s)}) + "\n"
        for p, m, n, c, s in rows
    )
    (monkeys / "s.jsonl").write_text(jsonl)
    from_jsonl = import_long_table(monkeys / "s.jsonl", models,
                                   columns={"sample_id": "problem_id"})
    for ladder in (from_gz, from_jsonl):
        assert_allclose(ladder.matrix("math").pass_rates[:, -1], [0.0122, 0.0032, 0.0167])
        assert list(ladder.matrix("math").sample_ids) == ["82", "142", "188"]


def test_jsonl_record_missing_a_key(tmp_path, models):
    (tmp_path / "s.jsonl").write_text(
        json.dumps({"sample_id": "1", "model": NAMES[0], "score": 0.1}) + "\n"
        + json.dumps({"model": NAMES[1], "score": 0.1}) + "\n"
    )
    with pytest.raises(LadderValidationError, match=r"s.jsonl:2: invalid sample_id"):
        import_long_table(tmp_path / "s.jsonl", models, benchmark="b")


def test_missing_or_directory_scores_path(tmp_path, models):
    with pytest.raises(LadderValidationError, match="scores"):
        import_long_table(tmp_path / "absent.csv", models, benchmark="b")
    with pytest.raises(LadderValidationError, match="directory"):
        import_long_table(tmp_path, models, benchmark="b")


def test_binary_garbage_is_a_validation_error(tmp_path, models):
    (tmp_path / "s.csv.gz").write_bytes(b"\x00\xffnot gzip")
    with pytest.raises(LadderValidationError, match="file"):
        import_long_table(tmp_path / "s.csv.gz", models, benchmark="b")


# ------------------------------------------------------------------- real data

SHARED = Path("/work/shared/cod_data/pythia_monkeys")


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared cod_data not available")
def test_real_math_llmonkeys():
    models = read_models_table(SHARED / "models.csv", columns=MODEL_MAP)
    ladder = import_long_table(SHARED / "math_llmonkeys.csv", models,
                               columns={"sample_id": "problem_id", "score": "pass_rate"},
                               benchmark="math")
    mat = ladder.matrix("math")
    assert mat.pass_rates.shape == (128, 7)
    assert mat.model_names[-1] == "pythia-12b@step143000"
    assert mat.pass_rates[:, -1].mean() == pytest.approx(0.0232, abs=5e-4)
    assert (mat.n_samples == 10000).all()
    assert np.all(np.diff(mat.compute) > 0)
