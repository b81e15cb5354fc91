"""The learning-rate schedule in the ladder: the fields, the format, importers, the trend."""

import json
import math
from pathlib import Path

import pytest

from cod_monitor.exceptions import LadderValidationError
from cod_monitor.ladder import Ladder, LearningRateTrend, ModelInfo, learning_rate_trend
from cod_monitor.ladder.importers import import_long_table, read_models_table
from cod_monitor.ladder.lm_eval import import_lm_eval_samples

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks" / "data"


def eta(params, at=3e-3, ref=1e5, exponent=0.2):
    return at * (params / ref) ** -exponent


def run_models(sizes=(1e5, 2e5, 4e5, 8e5), *, with_lr=True, schedule="constant_with_warmup",
               target=None):
    """Two checkpoints per size (the later one final), optionally a target run."""
    out = []
    for n in sizes:
        for step in (50, 100):
            out.append(ModelInfo(
                f"n{n:g}-s{step}", params=n, tokens=1e3 * step, compute=6e3 * n * step,
                step=step, run=f"n{n:g}",
                learning_rate=eta(n) if with_lr else None,
                lr_schedule=schedule if with_lr else None))
    if target is not None:
        out.append(ModelInfo("target-s100", params=target[0], tokens=1e5, compute=6e5 * target[0],
                             step=100, role="target", run="target", learning_rate=target[1],
                             lr_schedule="cosine"))
    return out


def ladder_of(models):
    rows = [{"benchmark": "b", "sample_id": s, "model": m.name, "score": (i % 5) / 4}
            for i, m in enumerate(models) for s in ("x", "y")]
    return Ladder.from_records(models, rows)


# ------------------------------------------------------------------------- the fields


def test_model_info_takes_and_coerces_the_rate_and_schedule():
    m = ModelInfo("m", params=1e8, tokens=1e9, compute=6e17, learning_rate="3e-4",
                  lr_schedule="cosine")
    assert m.learning_rate == 3e-4 and isinstance(m.learning_rate, float)
    assert m.lr_schedule == "cosine"
    entry = m.to_dict()
    assert list(entry)[-2:] == ["learning_rate", "lr_schedule"]
    assert ModelInfo.from_dict(entry) == m
    # unset fields stay out of the entry: older ladders are written as before
    bare = ModelInfo("m", params=1e8, tokens=1e9, compute=6e17)
    assert "learning_rate" not in bare.to_dict() and "lr_schedule" not in bare.to_dict()
    assert ModelInfo.from_dict({**bare.to_dict(), "learning_rate": None}) == bare


@pytest.mark.parametrize("value", [0, -1e-3, float("nan"), float("inf"), True, "fast", [1e-3]])
def test_a_bad_learning_rate_is_refused_with_field_value_and_fix(value):
    with pytest.raises(LadderValidationError) as err:
        ModelInfo("m", params=1e8, tokens=1e9, compute=6e17, learning_rate=value)
    assert err.value.field == "learning_rate"
    msg = str(err.value)
    assert "model 'm'" in msg and f"learning_rate = {value!r}" in msg
    assert "peak learning rate" in msg and "leave it out" in msg


@pytest.mark.parametrize("value", ["", "   ", 3, ["cosine"]])
def test_a_bad_schedule_is_refused_with_field_value_and_fix(value):
    with pytest.raises(LadderValidationError) as err:
        ModelInfo("m", params=1e8, tokens=1e9, compute=6e17, lr_schedule=value)
    assert err.value.field == "lr_schedule"
    assert f"lr_schedule = {value!r}" in str(err.value) and "'cosine'" in str(err.value)


def test_a_bad_rate_in_ladder_json_names_file_and_model(tmp_path):
    ladder = ladder_of(run_models())
    ladder.save(tmp_path)
    meta = json.loads((tmp_path / "ladder.json").read_text())
    meta["models"][2]["learning_rate"] = -1
    (tmp_path / "ladder.json").write_text(json.dumps(meta))
    with pytest.raises(LadderValidationError, match=r"ladder.json models\[2\].*learning_rate = -1"):
        Ladder.load(tmp_path)


# ------------------------------------------------------------------------- the format


def test_rates_and_schedules_round_trip_through_the_directory(tmp_path):
    ladder = ladder_of(run_models(target=(1.6e6, 1e-3)))
    ladder.save(tmp_path)
    meta = json.loads((tmp_path / "ladder.json").read_text())
    assert meta["schema_version"] == 1
    assert all("learning_rate" in e and "lr_schedule" in e for e in meta["models"])
    back = Ladder.load(tmp_path)
    assert back.models == ladder.models
    assert back.model("target-s100").lr_schedule == "cosine"


def test_a_ladder_without_rates_loads_and_saves_as_before(tmp_path):
    """Backward compatibility: the same schema version, the same bytes."""
    models = run_models(with_lr=False)
    old = tmp_path / "old"
    ladder_of(models).save(old)
    text = (old / "ladder.json").read_text()
    assert "learning_rate" not in text and "lr_schedule" not in text
    loaded = Ladder.load(old)
    assert all(m.learning_rate is None and m.lr_schedule is None for m in loaded.models)
    loaded.save(tmp_path / "again")
    assert (tmp_path / "again" / "ladder.json").read_text() == text
    assert loaded.learning_rate_trend() is None


def test_a_misspelt_key_is_still_refused(tmp_path):
    ladder_of(run_models()).save(tmp_path)
    meta = json.loads((tmp_path / "ladder.json").read_text())
    meta["models"][0]["learning_rte"] = 1e-3
    (tmp_path / "ladder.json").write_text(json.dumps(meta))
    with pytest.raises(LadderValidationError, match="learning_rte.*Remove it.*learning_rate"):
        Ladder.load(tmp_path)


# -------------------------------------------------------------------------- importers


def test_models_table_reads_rates_from_columns_and_a_mapping(tmp_path):
    p = tmp_path / "models.csv"
    p.write_text("model,params,tokens,peak_lr,lr_schedule\n"
                 "a,1e8,2e9,6e-4,cosine\n"
                 "b,2e8,4e9,,\n")
    a, b = read_models_table(p, columns={"name": "model", "learning_rate": "peak_lr"})
    assert (a.learning_rate, a.lr_schedule) == (6e-4, "cosine")
    assert (b.learning_rate, b.lr_schedule) == (None, None)  # empty cells: unset
    p.write_text("name,params,tokens,learning_rate\na,1e8,2e9,-6e-4\n")
    with pytest.raises(LadderValidationError, match=r"models.csv:2.*learning_rate = '-6e-4'"):
        read_models_table(p)


def test_models_table_from_json_keeps_rates(tmp_path):
    p = tmp_path / "models.json"
    p.write_text(json.dumps([{"name": "a", "params": 1e8, "tokens": 2e9, "learning_rate": 6e-4,
                              "lr_schedule": "wsd"}]))
    (m,) = read_models_table(p)
    assert (m.learning_rate, m.lr_schedule) == (6e-4, "wsd")


def test_long_table_import_carries_the_models_rates(tmp_path):
    models = tmp_path / "models.csv"
    models.write_text("name,params,tokens,learning_rate,lr_schedule\n" + "".join(
        f"m{i},{n:g},1e9,{eta(n)!r},constant\n" for i, n in enumerate((1e5, 2e5, 4e5))))
    scores = tmp_path / "scores.csv"
    scores.write_text("sample_id,model,score\n" + "".join(
        f"{s},m{i},{0.1 * (i + 1)}\n" for s in ("x", "y") for i in range(3)))
    ladder = import_long_table(scores, models, benchmark="b")
    assert [m.learning_rate for m in ladder.models] == [eta(n) for n in (1e5, 2e5, 4e5)]
    assert ladder.learning_rate_trend().slope == pytest.approx(-0.2)


def test_lm_eval_import_takes_rates_from_the_models_table(tmp_path):
    models = tmp_path / "models.csv"
    models.write_text("name,params,tokens,learning_rate,lr_schedule\n"
                      "s,1e8,1e10,1e-3,cosine\nm,4e8,2e10,6e-4,cosine\nl,1.6e9,4e10,3e-4,cosine\n")
    paths = {}
    for j, name in enumerate("sml"):
        records = [{"doc_id": d, "filter": "none", "metrics": ["acc"], "acc": float((d + j) % 2)}
                   for d in range(4)]
        out = tmp_path / name / f"samples_task_2024-05-01T12-00-00.{j}.jsonl"
        out.parent.mkdir()
        out.write_text("".join(json.dumps(r) + "\n" for r in records))
        paths[name] = out.parent
    ladder = import_lm_eval_samples(paths, models)
    assert [(m.name, m.learning_rate, m.lr_schedule) for m in ladder.models] == [
        ("s", 1e-3, "cosine"), ("m", 6e-4, "cosine"), ("l", 3e-4, "cosine")]


def test_cli_import_writes_the_rates(tmp_path, capsys):
    from cod_monitor.cli import main

    models = tmp_path / "models.csv"
    models.write_text("model,params,tokens,lr\n" + "".join(
        f"m{i},{n:g},1e9,{eta(n)!r}\n" for i, n in enumerate((1e5, 2e5, 4e5))))
    scores = tmp_path / "scores.csv"
    scores.write_text("sample_id,model,score\n" + "".join(
        f"{s},m{i},0.5\n" for s in ("x", "y") for i in range(3)))
    code = main(["ladder", "import", "--format", "long", "--models", str(models),
                 "--model-map", "name=model", "--model-map", "learning_rate=lr",
                 "--scores", str(scores), "--benchmark", "b", "--out", str(tmp_path / "out")])
    assert code == 0, capsys.readouterr().err
    entries = json.loads((tmp_path / "out" / "ladder.json").read_text())["models"]
    assert [e["learning_rate"] for e in entries] == [eta(n) for n in (1e5, 2e5, 4e5)]


# ---------------------------------------------------------------------------- the trend


def test_trend_recovers_the_recipes_power_law_from_final_checkpoints():
    models = run_models()
    # an intermediate checkpoint off the law must not count: the final one stands for the run
    models[0] = ModelInfo(**{**models[0].__dict__, "learning_rate": 1.0})
    trend = ladder_of(models).learning_rate_trend()
    assert isinstance(trend, LearningRateTrend)
    assert trend.slope == pytest.approx(-0.2, abs=1e-12)
    assert trend.intercept == pytest.approx(math.log(3e-3) + 0.2 * math.log(1e5))
    assert (trend.n_runs, trend.n_sizes) == (4, 4) and trend.rmse_log < 1e-12
    assert trend.schedules == ("constant_with_warmup",)
    assert trend.runs == ("n100000", "n200000", "n400000", "n800000")
    assert trend.at(1.6e6) == pytest.approx(eta(1.6e6))
    assert trend.ratio(0.35 * eta(1.6e6), 1.6e6) == pytest.approx(0.35)
    assert json.loads(json.dumps(trend.to_dict()))["slope"] == pytest.approx(-0.2)


def test_trend_leaves_out_targets_unless_asked_and_runs_without_rates():
    models = run_models(target=(1.6e6, 10 * eta(1.6e6)))
    ladder = ladder_of(models)
    assert ladder.learning_rate_trend().slope == pytest.approx(-0.2)
    with_target = ladder.learning_rate_trend(roles=("ladder", "target"))
    assert with_target.n_runs == 5 and with_target.slope > -0.2
    assert with_target.schedules == ("constant_with_warmup", "cosine")
    # one size without a rate is left out; the rest still give the law
    partial = [ModelInfo(**{**m.__dict__, "learning_rate": None}) if m.params == 1e5 else m
               for m in run_models()]
    trend = learning_rate_trend(partial)
    assert trend.n_sizes == 3 and trend.slope == pytest.approx(-0.2)


def test_trend_needs_two_sizes_with_rates():
    assert learning_rate_trend(run_models(sizes=(1e5,))) is None
    assert learning_rate_trend(run_models(with_lr=False)) is None
    # two runs of one size (seeds) are still one size
    seeds = run_models(sizes=(1e5,)) + [
        ModelInfo("seed1", params=1e5, tokens=1e5, compute=6e10, step=100, run="seed1",
                  learning_rate=2e-3)]
    assert learning_rate_trend(seeds) is None
    assert learning_rate_trend(run_models(sizes=(1e5, 2e5))).slope == pytest.approx(-0.2)
    with pytest.raises(LadderValidationError, match="roles = 'trainer'"):
        learning_rate_trend(run_models(), roles=("trainer",))
    with pytest.raises(LadderValidationError, match="params = -1"):
        learning_rate_trend(run_models()).at(-1)


# ------------------------------------------------------------------- shipped ladders


@pytest.mark.parametrize("directory", ["demo", "arith", "strings"])
def test_shipped_ladders_record_the_recipes_rates(directory):
    from cod_monitor.demo import SHIPPED_LADDER
    from cod_monitor.demo.recipe import LR_EXPONENT, LR_SCHEDULE, learning_rate_for

    path = SHIPPED_LADDER if directory == "demo" else BENCHMARKS / directory
    if not path.is_dir():
        pytest.skip(f"{path} is not present")
    ladder = Ladder.load(path)
    build = json.loads((path / "build.json").read_text())
    recorded = {r["name"]: r["learning_rate"] for r in build["runs"]}
    for m in ladder.models:
        assert m.learning_rate == recorded[m.run_key]
        assert m.learning_rate == pytest.approx(learning_rate_for(m.params), rel=1e-12)
        assert m.lr_schedule == LR_SCHEDULE
    trend = ladder.learning_rate_trend()
    assert trend.slope == pytest.approx(-LR_EXPONENT, abs=1e-9)
    target = ladder.models_with_role("target")[-1]
    assert trend.ratio(target.learning_rate, target.params) == pytest.approx(1.0, abs=1e-9)
