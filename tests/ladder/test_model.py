"""Tests of the ladder store: construction, validation, selection and the disk format."""

import gzip
import json
import time
import warnings

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from cod_monitor.exceptions import FitWarning, LadderValidationError
from cod_monitor.ladder import Ladder, ModelInfo, PassRateMatrix

# compute values beyond the int64 range on purpose: the format must keep them as floats
MODELS = [
    ModelInfo("m-large", params=1.2e10, tokens=3.0e11, compute=2.1315306233392005e22, step=143000),
    ModelInfo("m-small", params=7.0e7, tokens=3.0e11, compute=1.26e20, step=143000, loss=3.25),
    ModelInfo("m-mid", params=4.1e8, tokens=3.0e11, compute=7.29e20, run="mid-run"),
    ModelInfo("m-mid-early", params=4.1e8, tokens=1.5e11, compute=3.645e20, step=71500,
              run="mid-run"),
    ModelInfo("m-anchor", params=1.0e9, tokens=3.0e11, compute=1.8e21, role="anchor"),
    ModelInfo("m-target", params=2.8e9, tokens=3.0e11, compute=5.0e21, role="target"),
]
ORDER = ["m-small", "m-mid-early", "m-mid", "m-anchor", "m-target", "m-large"]


def records(models=MODELS, samples=("q1", "q0", "q2", "q3"), benchmark="bench", counts=True):
    """One row per (sample, model); pass rates from counts out of 7 so they are not round."""
    rows = []
    for i, sid in enumerate(samples):
        for j, m in enumerate(models):
            k = (3 * i + 2 * j) % 8
            row = {"benchmark": benchmark, "sample_id": sid, "model": m.name,
                   "score": min(k, 7) / 7}
            if counts:
                row.update(n_samples=7, n_correct=min(k, 7))
            rows.append(row)
    return rows


@pytest.fixture
def ladder():
    rows = records() + records(benchmark="other", samples=("a", "b", "c"), counts=False)
    return Ladder.from_records(MODELS, rows)


def assert_same_ladder(a: Ladder, b: Ladder):
    assert a.models == b.models
    assert a.compute_unit == b.compute_unit
    assert a.benchmarks == b.benchmarks
    roles = ("ladder", "anchor", "target")
    for bench in a.benchmarks:
        ma, mb = a.matrix(bench, roles=roles), b.matrix(bench, roles=roles)
        assert_array_equal(ma.sample_ids, mb.sample_ids)
        assert_array_equal(ma.pass_rates, mb.pass_rates)  # exact: the format is lossless
        for field in ("n_samples", "n_correct"):
            ca, cb = getattr(ma, field), getattr(mb, field)
            assert (ca is None) == (cb is None)
            if ca is not None:
                assert_array_equal(ca, cb)


# ------------------------------------------------------------------ construction


def test_from_records_orders_models_by_compute_and_samples_by_first_appearance(ladder):
    assert [m.name for m in ladder.models] == ORDER
    assert ladder.benchmarks == ["bench", "other"]
    mat = ladder.matrix("bench", roles=("ladder", "anchor", "target"))
    assert mat.model_names == ORDER
    assert list(mat.sample_ids) == ["q1", "q0", "q2", "q3"]
    assert np.all(np.diff(mat.compute) >= 0)
    # cell values follow the names, not the input order
    j = mat.model_names.index("m-large")
    assert mat.pass_rates[0, j] == pytest.approx(((3 * 0 + 2 * 0) % 8) / 7)
    assert mat.n_samples is not None and mat.n_samples.dtype == np.int64


def test_compute_ties_are_broken_by_name():
    models = [ModelInfo(n, 1e8, 1e9, 6e17) for n in ("b", "c", "a")]
    assert [m.name for m in Ladder.from_records(models, records(models)).models] == ["a", "b", "c"]


def test_sample_ids_become_strings():
    rows = records(counts=False)
    for r in rows:
        r["sample_id"] = {"q0": 0, "q1": 1, "q2": 2, "q3": 3}[r["sample_id"]]
    mat = Ladder.from_records(MODELS, rows).matrix("bench")
    assert list(mat.sample_ids) == ["1", "0", "2", "3"]
    assert all(type(s) is str for s in mat.sample_ids)


def test_score_derived_from_counts_in_from_columns():
    rows = records()
    cols = {k: [r[k] for r in rows] for k in ("benchmark", "sample_id", "model", "n_samples",
                                              "n_correct")}
    ladder = Ladder.from_columns(MODELS, cols)
    assert_array_equal(ladder.matrix("bench").pass_rates,
                       Ladder.from_records(MODELS, rows).matrix("bench").pass_rates)


def test_constructor_from_matrices_reorders_columns(ladder):
    mat = ladder.matrix("bench", roles=("ladder", "anchor", "target"))
    rebuilt = Ladder(list(reversed(MODELS)), {"bench": mat}, compute_unit=1e18)
    assert_array_equal(rebuilt.matrix("bench").pass_rates, ladder.matrix("bench").pass_rates)
    with pytest.raises(LadderValidationError, match="models"):
        Ladder(MODELS, {"bench": mat.select_models(ORDER[:-1])})


def test_building_from_20k_rows_is_fast():
    models = [ModelInfo(f"m{j}", 1e8 * 2**j, 2e9 * 2**j, 1.2e18 * 4**j) for j in range(8)]
    rng = np.random.default_rng(0)
    k = rng.integers(0, 101, size=(2500, 8))
    rows = [
        {"benchmark": "b", "sample_id": f"s{i}", "model": m.name, "score": k[i, j] / 100,
         "n_samples": 100, "n_correct": int(k[i, j])}
        for j, m in enumerate(models) for i in range(2500)
    ]
    start = time.perf_counter()
    ladder = Ladder.from_records(models, rows)
    assert time.perf_counter() - start < 1.0
    assert ladder.matrix("b").pass_rates.shape == (2500, 8)


def test_loading_a_160k_row_ladder_takes_seconds_at_most(tmp_path):
    models = [ModelInfo(f"m{j}", 1e8 * 2**j, 2e9 * 2**j, 1.2e18 * 4**j) for j in range(9)]
    rng = np.random.default_rng(1)
    rates = rng.random((18000, 9))
    ids = np.array([f"s{i}" for i in range(18000)], dtype=object)
    ladder = Ladder(models, {"b": PassRateMatrix("b", ids, models, rates)})
    ladder.save(tmp_path, compress=True)
    start = time.perf_counter()
    loaded = Ladder.load(tmp_path)
    assert time.perf_counter() - start < 3.0
    assert_same_ladder(ladder, loaded)


# --------------------------------------------------------------------- disk format


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("counts", [False, True])
def test_save_load_round_trip_is_lossless(tmp_path, compress, counts):
    rows = records(counts=counts) + records(benchmark="other", samples=("a", "b", "c"),
                                            counts=False)
    rows[0]["score"] = 0.1 + 0.2  # 0.30000000000000004: needs repr precision
    if counts:
        rows[0]["n_samples"], rows[0]["n_correct"] = 10, 3
    ladder = Ladder.from_records(MODELS, rows, compute_unit=1e21)
    path = ladder.save(tmp_path / "lad", compress=compress)
    scores = "scores.csv.gz" if compress else "scores.csv"
    assert sorted(p.name for p in path.iterdir()) == ["ladder.json", scores]
    loaded = Ladder.load(path)
    assert_same_ladder(ladder, loaded)
    assert loaded.model("m-small").loss == 3.25
    assert loaded.model("m-mid").run == "mid-run"
    assert loaded.model("m-large").step == 143000
    assert loaded.model("m-large").compute == 2.1315306233392005e22


def test_partial_counts_survive_the_round_trip(tmp_path):
    rows = records()
    del rows[0]["n_samples"], rows[0]["n_correct"]
    ladder = Ladder.from_records(MODELS, rows)
    assert ladder.matrix("bench").n_samples is None  # not known for every cell
    loaded = Ladder.load(ladder.save(tmp_path))
    text = (tmp_path / "scores.csv").read_text().splitlines()
    assert text[0] == "benchmark,sample_id,model,score,n_samples,n_correct"
    assert sum(line.endswith(",,") for line in text) == 1
    # the counts of the other cells are still there
    mat = loaded.matrix("bench", models=["m-small", "m-mid"])
    assert mat.n_samples is not None and (mat.n_samples == 7).all()


def test_written_format_is_the_documented_one(tmp_path, ladder):
    ladder.save(tmp_path)
    meta = json.loads((tmp_path / "ladder.json").read_text())
    assert meta["schema_version"] == 1 and meta["compute_unit"] == 1e18
    assert [m["name"] for m in meta["models"]] == ORDER
    assert meta["models"][0] == {"name": "m-small", "params": 7e7, "tokens": 3e11,
                                 "compute": 1.26e20, "step": 143000, "role": "ladder",
                                 "loss": 3.25}
    lines = (tmp_path / "scores.csv").read_text().splitlines()
    assert lines[0] == "benchmark,sample_id,model,score,n_samples,n_correct"
    # sorted by benchmark, then sample order, then model compute
    first = [line.split(",")[:3] for line in lines[1:7]]
    assert first == [["bench", "q1", name] for name in ORDER]
    assert lines[-1].startswith("other,c,m-large,") and lines[-1].endswith(",,")


def test_compressed_save_is_reproducible_and_replaces_the_plain_file(tmp_path, ladder):
    ladder.save(tmp_path)
    ladder.save(tmp_path, compress=True)
    assert not (tmp_path / "scores.csv").exists()
    first = (tmp_path / "scores.csv.gz").read_bytes()
    ladder.save(tmp_path, compress=True)
    assert (tmp_path / "scores.csv.gz").read_bytes() == first
    assert gzip.decompress(first).startswith(b"benchmark,sample_id,model,score")


def test_drop_incomplete_on_load(tmp_path, ladder):
    ladder.save(tmp_path)
    lines = (tmp_path / "scores.csv").read_text().splitlines()
    (tmp_path / "scores.csv").write_text("\n".join(lines[:3] + lines[4:]) + "\n")
    with pytest.raises(LadderValidationError, match="1 of 4 samples.*drop_incomplete=True"):
        Ladder.load(tmp_path)
    with pytest.warns(FitWarning, match="dropped 1 of 4 samples of benchmark 'bench'"):
        loaded = Ladder.load(tmp_path, drop_incomplete=True)
    assert list(loaded.matrix("bench").sample_ids) == ["q0", "q2", "q3"]


def write_ladder(path, meta=None, scores=None, name="scores.csv"):
    path.mkdir(parents=True, exist_ok=True)
    if meta is None:
        meta = {"schema_version": 1, "compute_unit": 1e18,
                "models": [m.to_dict() for m in MODELS]}
    (path / "ladder.json").write_text(meta if isinstance(meta, str) else json.dumps(meta))
    if scores is None:
        lines = ["benchmark,sample_id,model,score"]
        lines += [f"b,{r['sample_id']},{r['model']},{r['score']!r}" for r in records()]
        scores = "\n".join(lines) + "\n"
    (path / name).write_text(scores)
    return path


def model_dicts(**change):
    out = [m.to_dict() for m in MODELS]
    out[0].update(change)
    return out


def good_scores(transform=lambda line: line):
    lines = ["benchmark,sample_id,model,score"]
    lines += [f"b,{r['sample_id']},{r['model']},{r['score']!r}" for r in records()]
    return "\n".join([lines[0]] + [transform(x) for x in lines[1:]]) + "\n"


BAD_DISK = {
    "missing params": ({"schema_version": 1, "models": [
        {k: v for k, v in m.items() if k != "params"} for m in model_dicts()]}, None, "params"),
    "schema version 2": ({"schema_version": 2, "models": model_dicts()}, None, "schema_version"),
    "no schema version": ({"models": model_dicts()}, None, "schema_version"),
    "unknown model key": ({"schema_version": 1, "models": model_dicts(colour="red")}, None,
                          "colour"),
    "unknown top key": ({"schema_version": 1, "models": model_dicts(), "x": 1}, None, "x"),
    "bad role": ({"schema_version": 1, "models": model_dicts(role="teacher")}, None, "role"),
    "negative compute": ({"schema_version": 1, "models": model_dicts(compute=-1.0)}, None,
                         "compute"),
    "string tokens": ({"schema_version": 1, "models": model_dicts(tokens="many")}, None,
                      "tokens"),
    "bad compute unit": ({"schema_version": 1, "compute_unit": 0, "models": model_dicts()}, None,
                         "compute_unit"),
    "duplicate name": ({"schema_version": 1, "models": model_dicts() + model_dicts()[:1]}, None,
                       "name"),
    "broken json": ("{not json", None, "ladder.json"),
    "unknown column": (None, good_scores().replace("score\n", "score,extra\n", 1), "header"),
    "missing column": (None, "benchmark,sample_id,score\nb,q,0.5\n", "model"),
    "short row": (None, good_scores(lambda x: x.rsplit(",", 1)[0] if "q2,m-mid," in x else x),
                  "row"),
    "nan score": (None, good_scores(lambda x: x.rsplit(",", 1)[0] + ",nan"
                                    if "q2,m-mid," in x else x), "score"),
    "score above one": (None, good_scores(lambda x: x.rsplit(",", 1)[0] + ",1.5"
                                          if "q2,m-mid," in x else x), "score"),
    "unknown model in scores": (None, good_scores() + "b,q0,m-ghost,0.5\n", "m-ghost"),
}


@pytest.mark.parametrize("meta, scores, match", BAD_DISK.values(), ids=BAD_DISK.keys())
def test_bad_ladder_directory_is_refused(tmp_path, meta, scores, match):
    write_ladder(tmp_path, meta, scores)
    with pytest.raises(LadderValidationError, match=match):
        Ladder.load(tmp_path)


def test_error_message_names_file_and_line(tmp_path):
    write_ladder(tmp_path, scores=good_scores(lambda x: x.rsplit(",", 1)[0] + ",-0.5"
                                              if "q2,m-mid," in x else x))
    with pytest.raises(LadderValidationError) as info:
        Ladder.load(tmp_path)
    err = info.value
    assert err.field == "score" and err.value == "-0.5"
    assert "scores.csv:" in str(err) and "[0, 1]" in str(err)


def test_both_or_neither_scores_file(tmp_path):
    write_ladder(tmp_path)
    write_ladder(tmp_path, name="scores.csv.gz")
    with pytest.raises(LadderValidationError, match="Keep only one"):
        Ladder.load(tmp_path)
    (tmp_path / "scores.csv").unlink()
    (tmp_path / "scores.csv.gz").unlink()
    with pytest.raises(LadderValidationError, match="scores.csv"):
        Ladder.load(tmp_path)
    with pytest.raises(LadderValidationError, match="path"):
        Ladder.load(tmp_path / "nowhere")


def test_save_into_a_file_is_refused(tmp_path, ladder):
    (tmp_path / "f").write_text("x")
    with pytest.raises(LadderValidationError, match="path"):
        ladder.save(tmp_path / "f")


# ------------------------------------------------------------------ validation


def edit(rows, i, **change):
    rows = [dict(r) for r in rows]
    rows[i].update(change)
    return rows


BAD_RECORDS = {
    "nan": (edit(records(), 5, score=float("nan"), n_samples=None, n_correct=None), "score"),
    "inf": (edit(records(), 5, score=float("inf"), n_samples=None, n_correct=None), "score"),
    "above one": (edit(records(), 5, score=1.01, n_samples=None, n_correct=None), "score"),
    "negative": (edit(records(), 5, score=-0.01, n_samples=None, n_correct=None), "score"),
    "text": (edit(records(), 5, score="high", n_samples=None, n_correct=None), "score"),
    "missing score": (edit(records(), 5, score=None, n_samples=None, n_correct=None), "score"),
    "duplicate": (records() + records()[:1], "sample_id.*Duplicate"),
    "unknown model": (edit(records(), 5, model="m-ghost"), "model = 'm-ghost'"),
    "no model scores": ([r for r in records() if r["model"] != "m-mid"],
                        "model = 'm-mid'.*no scores"),
    "incomplete": (records()[:-1], "drop_incomplete=True / --drop-incomplete"),
    "n_correct above n_samples": (edit(records(), 5, n_correct=8, score=1.0), "n_correct"),
    "negative n_correct": (edit(records(), 5, n_correct=-1, score=0.0), "n_correct"),
    "zero n_samples": (edit(records(), 5, n_samples=0, n_correct=0, score=0.0), "n_samples"),
    "fractional count": (edit(records(), 5, n_samples=7.5), "n_samples"),
    "one count only": (edit(records(), 5, n_correct=None), "n_correct"),
    "score disagrees with counts": (edit(records(), 5, score=0.5, n_samples=7, n_correct=3),
                                    "score.*n_correct / n_samples"),
    "empty benchmark": (edit(records(), 5, benchmark=""), "benchmark"),
}


@pytest.mark.parametrize("rows, match", BAD_RECORDS.values(), ids=BAD_RECORDS.keys())
def test_bad_records_are_refused(rows, match):
    with pytest.raises(LadderValidationError, match=match):
        Ladder.from_records(MODELS, rows)


def test_score_within_tolerance_of_counts_is_accepted():
    rows = edit(records(), 5, n_samples=3, n_correct=1, score=0.333333)
    Ladder.from_records(MODELS, rows)


def test_record_missing_a_key():
    rows = records()
    del rows[3]["model"]
    with pytest.raises(LadderValidationError, match=r"records:4: invalid model"):
        Ladder.from_records(MODELS, rows)


def test_drop_incomplete_drops_and_warns():
    rows = [r for r in records() if not (r["sample_id"] == "q2" and r["model"] == "m-mid")]
    with pytest.warns(FitWarning, match="dropped 1 of 4 samples"):
        ladder = Ladder.from_records(MODELS, rows, drop_incomplete=True)
    assert list(ladder.matrix("bench").sample_ids) == ["q1", "q0", "q3"]


def test_model_absent_from_one_benchmark_is_not_droppable():
    rows = records() + [r for r in records(benchmark="other") if r["model"] != "m-mid"]
    with pytest.raises(LadderValidationError, match="no scores on benchmark 'other'"):
        Ladder.from_records(MODELS, rows, drop_incomplete=True)


def test_fewer_than_three_ladder_models():
    models = [ModelInfo(f"m{i}", 1e8, 1e9, 1e18 * (i + 1), role="target" if i > 1 else "ladder")
              for i in range(4)]
    with pytest.raises(LadderValidationError, match="role.*at least 3"):
        Ladder.from_records(models, records(models))


def test_duplicate_model_names():
    models = MODELS + [ModelInfo("m-small", 1e8, 1e9, 1e18)]
    with pytest.raises(LadderValidationError, match="name = 'm-small'"):
        Ladder.from_records(models, records())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(params=0.0), "params"),
        (dict(tokens=float("inf")), "tokens"),
        (dict(compute=float("nan")), "compute"),
        (dict(compute=-5.0), "compute"),
        (dict(role="student"), "role"),
        (dict(step=1.5), "step"),
        (dict(step=-1), "step"),
        (dict(run=""), "run"),
        (dict(loss=float("nan")), "loss"),
        (dict(name=""), "name"),
    ],
)
def test_bad_model_info(kwargs, match):
    base = dict(name="m", params=1e8, tokens=1e9, compute=6e17)
    with pytest.raises(LadderValidationError, match=match):
        ModelInfo(**{**base, **kwargs})


def test_model_info_coerces_and_round_trips():
    m = ModelInfo("m", params=70426624, tokens="3e11", compute=10**23, step=143000.0)
    assert isinstance(m.params, float) and m.compute == 1e23 and m.step == 143000
    assert ModelInfo.from_dict(m.to_dict()) == m
    assert m.run_key == "params=7.04266e+07"
    assert ModelInfo("n", 1e8, 1e9, 1e18, run="r1").run_key == "r1"


# ------------------------------------------------------------------- selection


def test_matrix_filters_roles(ladder):
    assert ladder.matrix("bench").model_names == ["m-small", "m-mid-early", "m-mid", "m-large"]
    assert ladder.matrix("bench", roles=("ladder", "anchor")).model_names == [
        "m-small", "m-mid-early", "m-mid", "m-anchor", "m-large"]
    assert ladder.matrix("bench", roles=("target",)).model_names == ["m-target"]
    assert ladder.matrix("bench", roles="anchor").model_names == ["m-anchor"]
    assert [m.name for m in ladder.models_with_role("anchor", "target")] == [
        "m-anchor", "m-target"]


def test_matrix_with_models(ladder):
    mat = ladder.matrix("bench", models=["m-large", "m-anchor", "m-small"])
    assert mat.model_names == ["m-small", "m-anchor", "m-large"]  # compute order
    with pytest.raises(LadderValidationError, match="models = 'm-target'.*never fit on"):
        ladder.matrix("bench", models=["m-small", "m-target"])
    with pytest.raises(LadderValidationError, match="model = 'm-ghost'"):
        ladder.matrix("bench", models=["m-ghost"])


def test_matrix_errors(ladder):
    with pytest.raises(LadderValidationError, match="benchmark = 'nope'.*'bench', 'other'"):
        ladder.matrix("nope")
    with pytest.raises(LadderValidationError, match="role = 'teacher'"):
        ladder.matrix("bench", roles=("teacher",))
    lonely = ladder.with_roles({"m-anchor": "ladder"})
    with pytest.raises(LadderValidationError, match="roles"):
        lonely.matrix("bench", roles=("anchor",))


def test_counts_only_when_known_for_every_cell(ladder):
    assert ladder.matrix("bench").n_samples is not None
    assert ladder.matrix("other").n_samples is None


def test_unknown_model_lists_known_ones(ladder):
    with pytest.raises(LadderValidationError, match="model = 'x'.*'m-small', 'm-mid-early'"):
        ladder.model("x")
    many = [ModelInfo(f"model-{i:02d}", 1e8, 1e9, 1e18 * (i + 1)) for i in range(20)]
    big = Ladder.from_records(many, records(many))
    with pytest.raises(LadderValidationError, match=r"\.\.\. \(20 in all\)"):
        big.model("x")


def test_with_roles_holds_a_model_out(ladder):
    held = ladder.with_roles({"m-large": "target"})
    assert held.model("m-large").role == "target"
    assert ladder.model("m-large").role == "ladder"  # the original is untouched
    assert "m-large" not in held.matrix("bench").model_names
    with pytest.raises(LadderValidationError, match="role"):
        ladder.with_roles({"m-large": "judge"})
    with pytest.raises(LadderValidationError, match="model = 'ghost'"):
        ladder.with_roles({"ghost": "target"})


def test_derived_ladders_may_have_few_ladder_models_but_are_not_saved(ladder, tmp_path):
    # the forecaster reports too few ladder points itself; a copy is only refused on save
    two = ladder.with_roles({"m-large": "target", "m-mid": "target"})
    assert two.matrix("bench").model_names == ["m-small", "m-mid-early"]
    with pytest.raises(LadderValidationError, match="role.*at least 3"):
        two.save(tmp_path)
    assert not (tmp_path / "ladder.json").exists()
    assert len(ladder.without_models(["m-small", "m-mid"]).models_with_role("ladder")) == 2


def test_without_models(ladder):
    smaller = ladder.without_models(["m-target", "m-anchor"])
    assert [m.name for m in smaller.models] == ["m-small", "m-mid-early", "m-mid", "m-large"]
    assert smaller.matrix("bench").pass_rates.shape == (4, 4)
    assert_array_equal(smaller.matrix("bench").pass_rates, ladder.matrix("bench").pass_rates)
    with pytest.raises(LadderValidationError, match="model = 'ghost'"):
        ladder.without_models("ghost")
    with pytest.raises(LadderValidationError, match="at least one model"):
        ladder.without_models(ORDER)


def test_with_compute_moves_models_and_keeps_their_scores(ladder):
    before = ladder.matrix("bench", roles=("ladder", "anchor", "target"))
    moved = ladder.with_compute({"m-small": 1e22})  # now second largest
    assert [m.name for m in moved.models] == [
        "m-mid-early", "m-mid", "m-anchor", "m-target", "m-small", "m-large"]
    assert moved.model("m-small").compute == 1e22
    assert ladder.model("m-small").compute == 1.26e20  # the original is untouched
    after = moved.matrix("bench", roles=("ladder", "anchor", "target"))
    for name in before.model_names:  # every model keeps its own column and counts
        i, j = before.model_names.index(name), after.model_names.index(name)
        assert_array_equal(before.pass_rates[:, i], after.pass_rates[:, j])
        assert_array_equal(before.n_correct[:, i], after.n_correct[:, j])
    with pytest.raises(LadderValidationError, match="model = 'ghost'"):
        ladder.with_compute({"ghost": 1e20})
    with pytest.raises(LadderValidationError, match="compute"):
        ladder.with_compute({"m-small": -1.0})


def test_repr(ladder):
    assert repr(ladder) == (
        "Ladder(6 models: 4 ladder, 1 anchor, 1 target; "
        "benchmarks: bench (4 samples), other (3 samples))"
    )


# ---------------------------------------------------------------- PassRateMatrix


def test_pass_rate_matrix_selection(ladder):
    mat = ladder.matrix("bench", roles=("ladder", "anchor", "target"))
    by_name = mat.select_models(["m-large", "m-small"])
    assert by_name.model_names == ["m-small", "m-large"]
    by_mask = mat.select_models(np.array([m.role == "ladder" for m in mat.models]))
    assert by_mask.model_names == ["m-small", "m-mid-early", "m-mid", "m-large"]
    by_index = mat.select_models(np.array([5, 0]))
    assert by_index.model_names == ["m-small", "m-large"]
    assert_array_equal(by_index.pass_rates, mat.pass_rates[:, [0, 5]])
    assert_array_equal(by_index.n_correct, mat.n_correct[:, [0, 5]])
    boot = mat.select_samples(np.array([3, 3, 0]))
    assert list(boot.sample_ids) == ["q3", "q3", "q1"]
    assert_array_equal(boot.pass_rates, mat.pass_rates[[3, 3, 0]])
    masked = mat.select_samples(np.array([True, False, True, False]))
    assert list(masked.sample_ids) == ["q1", "q2"]
    assert_array_equal(mat.compute, [m.compute for m in mat.models])
    with pytest.raises(LadderValidationError, match="models = 'ghost'"):
        mat.select_models(["ghost"])


def test_pass_rate_matrix_checks():
    models = [ModelInfo(f"m{i}", 1e8, 1e9, 1e18 * (i + 1)) for i in range(3)]
    with pytest.raises(LadderValidationError, match="Sort the models by compute"):
        PassRateMatrix("b", ["s"], models[::-1], np.zeros((1, 3)))
    with pytest.raises(ValueError, match="shape"):
        PassRateMatrix("b", ["s", "t"], models, np.zeros((1, 3)))
    with pytest.raises(LadderValidationError, match="pass_rates"):
        PassRateMatrix("b", ["s"], models, np.full((1, 3), 1.5))
    with pytest.raises(LadderValidationError, match="n_correct"):
        PassRateMatrix("b", ["s"], models, np.zeros((1, 3)), n_samples=np.ones((1, 3)))


def test_no_warning_on_a_clean_ladder():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Ladder.from_records(MODELS, records())


@pytest.mark.parametrize("variant", ["plain", "crlf", "quoted", "blank line", "no final newline",
                                     "long and short row"])
def test_scores_read_the_same_by_the_fast_and_the_csv_reader(tmp_path, variant):
    # write_ladder's plain files take a whole-text split; anything else goes to the csv
    # module: both must give the same columns, line numbers and errors
    from cod_monitor.ladder.storage import _csv_rows, _plain_csv, read_scores_csv

    text = good_scores()
    if variant == "crlf":
        text = text.replace("\n", "\r\n")
    elif variant == "quoted":
        text = text.replace("b,q1,", '"b",q1,')
    elif variant == "blank line":
        text = text.replace("\nb,q2,", "\n\nb,q2,", 1)
    elif variant == "no final newline":
        text = text.rstrip("\n")
    elif variant == "long and short row":  # the totals of fields still match
        lines = text.split("\n")
        lines[1] += ",x"
        lines[2] = lines[2].rsplit(",", 1)[0]
        text = "\n".join(lines)
    fast = _plain_csv(text)
    assert (fast[0] is not None) == (variant in ("plain", "no final newline"))
    (tmp_path / "scores.csv").write_text(text, newline="")
    if variant in ("long and short row", "blank line"):
        with pytest.raises(LadderValidationError, match="Every row needs 4 fields") as info:
            read_scores_csv(tmp_path / "scores.csv")
        assert ("scores.csv:2" if variant == "long and short row" else "row = []") in str(info.value)
        return
    columns, lines = read_scores_csv(tmp_path / "scores.csv")
    header, rows, csv_lines = _csv_rows(text)
    assert lines == csv_lines
    assert columns == {name: [r[j] for r in rows] for j, name in enumerate(header)}
