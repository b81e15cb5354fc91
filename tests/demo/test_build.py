"""The demo ladder build (micro version), its CLI and the shipped prebuilt ladder."""

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from cod_monitor.demo import SHIPPED_LADDER, load_demo_ladder
from cod_monitor.demo.tasks import BENCHMARK_FAMILIES, FAMILIES
from cod_monitor.evaluators import EvalSet
from cod_monitor.evaluators.settings import run_settings
from cod_monitor.ladder import Ladder


def _final_checkpoints(ladder):
    last = {}
    for m in ladder.models:
        if m.run_key not in last or m.step > last[m.run_key].step:
            last[m.run_key] = m
    return sorted(last.values(), key=lambda m: m.compute)


def _accuracy(ladder, model, benchmark="demo"):
    roles = sorted({m.role for m in ladder.models})
    mat = ladder.matrix(benchmark, roles=roles)
    return float(mat.pass_rates[:, mat.model_names.index(model.name)].mean())


# ----------------------------------------------------------------------- micro build


@pytest.fixture(scope="module")
def micro(tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from cod_monitor.demo.build import build_demo_ladder
    from cod_monitor.demo.recipe import micro_specs

    out = tmp_path_factory.mktemp("micro")
    return build_demo_ladder(out, specs=micro_specs(steps=4), eval_size=60, workers=1,
                             threads=1, backend="loop", keep_weights="final", progress=False,
                             seeds=2)


def test_micro_build_writes_a_valid_ladder_with_a_target_and_steps(micro):
    ladder = Ladder.load(micro.path)
    assert len(ladder.models) == len(micro.ladder.models)
    runs = {m.run for m in ladder.models}
    assert len(runs) == 4
    targets = ladder.models_with_role("target")
    assert targets and {m.run for m in targets} == {"micro-target-d64x2"}
    assert all(m.step is not None and m.loss is not None for m in ladder.models)
    for m in ladder.models:
        assert m.compute == pytest.approx(6 * m.params * m.tokens)
    assert set(ladder.benchmarks) == {*BENCHMARK_FAMILIES, *FAMILIES}
    for bench, families in BENCHMARK_FAMILIES.items():  # a benchmark is its families' samples
        assert ladder.matrix(bench).pass_rates.shape[0] == sum(
            ladder.matrix(f).pass_rates.shape[0] for f in families)
    out = micro.path.parent
    for name in ("eval.jsonl", "build.json", "report.txt", "tokenizer/tokenizer.json"):
        assert (out / name).is_file(), name
    assert (out / "models" / "micro-target-d64x2" / "config.json").is_file()
    # every benchmark records how it was scored, as build.json's evaluator did it
    scored = run_settings(EvalSet.from_jsonl(out / "eval.jsonl", stop="\n"),
                          json.loads((out / "build.json").read_text())["evaluator"])
    assert ladder.eval_settings == dict.fromkeys(ladder.benchmarks, scored)
    assert scored.to_dict() == {"stop": "\n", "scorer": "exact", "mode": "exact",
                                "temperature": 1.0, "top_p": 0.7}
    assert "accuracy rises with compute" in micro.report
    assert micro.summary["runs"][-1]["tokens_per_s"] > 0


def test_micro_build_trains_every_ladder_size_once_per_seed(micro):
    s = micro.summary
    assert s["seeds_per_ladder_size"] == 2
    assert s["seeds_per_target"] == 5
    ladder_runs = [r["name"] for r in s["runs"] if r["role"] == "ladder"]
    target = next(r["name"] for r in s["runs"] if r["role"] == "target")
    assert sorted(r["name"] for r in s["seed_runs"]) == sorted(
        [f"{n}-seed1" for n in ladder_runs] + [f"{target}-seed{k}" for k in range(1, 5)])
    by_name = {r["name"]: r for r in s["runs"]}
    for r in s["seed_runs"]:
        name, k = r["name"].rsplit("-seed", 1)
        base, k = by_name[name], int(k)
        assert (r["data_seed"], r["init_seed"]) == (base["data_seed"] + 10 * k,
                                                    base["init_seed"] + k)
        assert r["steps"] == base["steps"] and r["wall_s"] > 0
    # the ladder holds the base runs only (seeds averaged in, the target's too)
    assert {m.run for m in micro.ladder.models} == {r["name"] for r in s["runs"]}
    # every run records how its final accuracy varies with the seed; the live demo reads
    # the largest ladder run's as the monitored run's own spread
    assert all("final_seed_sd" in r for r in s["runs"])
    ladder_runs = [r for r in s["runs"] if r["role"] == "ladder"]
    assert all(set(r["final_seed_sd"]) == {*BENCHMARK_FAMILIES, *FAMILIES} for r in ladder_runs)
    assert all(v >= 0 for r in ladder_runs for v in r["final_seed_sd"].values())
    from cod_monitor.demo.live_config import run_spread

    largest = max(ladder_runs, key=lambda r: r["compute"])
    build = json.loads((micro.path.parent / "build.json").read_text())
    assert run_spread(build) == largest["final_seed_sd"]


def test_seed_checkpoints_are_averaged_into_the_base_run():
    from cod_monitor.demo.build import _average_seeds, seed_variants
    from cod_monitor.demo.recipe import micro_specs

    specs = micro_specs(steps=4)
    variants = seed_variants(specs, 3)
    assert [v.name for v in variants] == [f"{s.name}-seed{k}" for k in (1, 2) for s in specs
                                          if s.role == "ladder"]
    ids = ["fact-1-0000", "add-1-0000"]
    msgs = [{"kind": "checkpoint", "run": "r", "step": 2, "sample_ids": ids, "pass_rates": [0.0, 1.0],
             "loss": 1.0},
            {"kind": "checkpoint", "run": "r-seed1", "step": 2, "sample_ids": ids,
             "pass_rates": [0.5, 0.0], "loss": 2.0},
            {"kind": "checkpoint", "run": "t", "step": 2, "sample_ids": ids, "pass_rates": [0.2, 0.2],
             "loss": 3.0},
            {"kind": "run", "run": "r-seed1", "wall_s": 1.0}]
    out = _average_seeds(msgs, {"r-seed1": "r"})
    ckpt = {m["run"]: m for m in out if m["kind"] == "checkpoint"}
    assert set(ckpt) == {"r", "t"}
    assert ckpt["r"]["pass_rates"] == [0.25, 0.5] and ckpt["r"]["loss"] == 1.5
    assert ckpt["r"]["n_seeds"] == 2 and ckpt["t"]["n_seeds"] == 1
    # the seeds' spread of accuracy per benchmark: 0 / 0.5 on fact (= knowledge), 1 / 0 on
    # add (= demo, the headline families) (sample standard deviation over the two seeds)
    assert ckpt["r"]["seed_sd"] == pytest.approx(
        {"demo": 0.5 * 2 ** 0.5, "knowledge": 0.25 * 2 ** 0.5, "fact": 0.25 * 2 ** 0.5,
         "add": 0.5 * 2 ** 0.5}, abs=1e-6)
    assert "seed_sd" not in ckpt["t"]  # one run: no spread to measure
    assert [m for m in out if m["kind"] == "run"] == [msgs[-1]]


def test_build_rejects_bad_seeds(tmp_path):
    from cod_monitor.demo.build import build_demo_ladder

    with pytest.raises(ValueError, match="'seeds' parameter"):
        build_demo_ladder(tmp_path, seeds=0, progress=False)


def test_add_runs_appends_anchor_runs_evaluated_like_the_ladder(micro):
    from cod_monitor.demo.build import add_runs
    from cod_monitor.demo.recipe import make_spec
    from cod_monitor.ladder.selection import select_fit_points

    extra = [make_spec("micro-anchor-d32x2", 32, 2, role="anchor", tokens=2 * 4 * 4 * 64,
                       n_checkpoints=2, batch_size=4, data_seed=5, init_seed=3)]
    before = micro.ladder
    after = add_runs(before, extra, eval_size=60, workers=1, threads=1, backend="loop",
                     progress=False)
    anchors = after.models_with_role("anchor")
    assert [m.name for m in anchors] == ["micro-anchor-d32x2-s0004", "micro-anchor-d32x2-s0008"]
    assert all(m.run == "micro-anchor-d32x2" and m.loss is not None for m in anchors)
    assert set(after.benchmarks) == set(before.benchmarks)
    assert after.eval_settings == before.eval_settings  # evaluated like the ladder
    roles = ("ladder", "target")
    for bench in before.benchmarks:
        old, new = before.matrix(bench, roles=roles), after.matrix(bench, roles=roles)
        assert list(new.sample_ids) == list(old.sample_ids)
        np.testing.assert_array_equal(new.pass_rates, old.pass_rates)
        rates = after.matrix(bench, roles=("anchor",)).pass_rates
        assert rates.shape == (len(old.sample_ids), 2) and ((rates >= 0) & (rates <= 1)).all()
    # methods see the anchors as anchors; their fit points stay the ladder's
    fit, anchor_matrix = select_fit_points(after, "demo")
    assert [m.name for m in anchor_matrix.models] == [m.name for m in anchors]
    assert [m.name for m in fit.models] == [m.name for m in select_fit_points(before, "demo")[0].models]
    with pytest.raises(ValueError, match="already in the ladder"):
        add_runs(after, extra, eval_size=60, workers=1, progress=False)
    with pytest.raises(ValueError, match="not the ladder's"):
        add_runs(before, extra, eval_size=40, workers=1, progress=False)


def test_micro_build_records_each_runs_learning_rate_and_schedule(micro):
    from cod_monitor.demo.recipe import LR_SCHEDULE, micro_specs

    rate = {s.name: s.learning_rate for s in micro_specs(steps=4)}
    ladder = Ladder.load(micro.path)
    assert all(m.learning_rate == rate[m.run] and m.lr_schedule == LR_SCHEDULE
               for m in ladder.models)
    trend = ladder.learning_rate_trend()
    assert trend is not None and trend.n_sizes == 3 and trend.slope < 0


def test_add_runs_injects_faults_and_reports_each_finished_run(micro):
    from dataclasses import replace

    from cod_monitor.demo.build import add_runs
    from cod_monitor.demo.recipe import make_spec
    from cod_monitor.demo.sabotage import Sabotage

    base = make_spec("micro-t", 32, 1, role="target", tokens=8 * 4 * 64, n_checkpoints=2,
                     batch_size=4)
    low = replace(base, name="micro-t-lowlr", learning_rate=0.35 * base.learning_rate)
    spiked = replace(base, name="micro-t-spike")
    with pytest.raises(ValueError, match="'sabotage' parameter of add_runs"):
        add_runs(micro.ladder, [low], eval_size=60, workers=1, progress=False,
                 sabotage={"nope": Sabotage("lr_spike", 0.5, 0.6)})
    seen = []
    after = add_runs(micro.ladder, [low, spiked], eval_size=60, workers=1, threads=1,
                     progress=False, sabotage={"micro-t-spike": Sabotage("high_lr", factor=30)},
                     on_run=lambda lad, msg: seen.append(
                         (msg["run"], sorted({m.run for m in lad.models} - {
                             m.run for m in micro.ladder.models}), msg["wall_s"] > 0)))
    # one call per finished run, with the ladder of the runs finished so far
    assert [s[0] for s in seen] == ["micro-t-lowlr", "micro-t-spike"]
    assert seen[0][1] == ["micro-t-lowlr"] and seen[1][1] == ["micro-t-lowlr", "micro-t-spike"]
    assert all(s[2] for s in seen)
    by_run = {}
    for m in after.models:
        by_run.setdefault(m.run, []).append(m)
    assert {m.learning_rate for m in by_run["micro-t-lowlr"]} == {low.learning_rate}
    # the fault is not the recipe: the run records its nominal rate
    assert {m.learning_rate for m in by_run["micro-t-spike"]} == {base.learning_rate}
    mat = after.matrix("demo", roles=("target",))
    cols = {m.run: j for j, m in enumerate(mat.models) if m.step == base.steps}
    # the same seeds, other rates: other pass rates
    assert not np.array_equal(mat.pass_rates[:, cols["micro-t-lowlr"]],
                              mat.pass_rates[:, cols["micro-t-spike"]])


def test_build_demo_cli_parser(tmp_path):
    from cod_monitor.cli.build_demo import add_build_demo_parser, run_build_demo

    parser = argparse.ArgumentParser(prog="cod-monitor")
    ladder = parser.add_subparsers(dest="command").add_parser("ladder")
    add_build_demo_parser(ladder.add_subparsers(dest="ladder_command"))
    args = parser.parse_args(["ladder", "build-demo", "--out", str(tmp_path), "--workers", "1",
                              "--backend", "loop", "--micro", "--quiet"])
    assert args.func is run_build_demo
    assert args.out == tmp_path and args.workers == 1 and args.micro and args.quiet
    assert args.eval_size == 1200 and args.keep_weights == "final" and args.seeds == 2
    with pytest.raises(SystemExit):
        parser.parse_args(["ladder", "build-demo"])  # --out is required


# ------------------------------------------------------------------- shipped ladder


@pytest.fixture(scope="module")
def shipped():
    return load_demo_ladder()


def test_shipped_ladder_is_small_and_packaged():
    files = sorted(p.name for p in SHIPPED_LADDER.iterdir())
    assert "ladder.json" in files and "scores.csv.gz" in files and "BUILD.md" in files
    size = sum(p.stat().st_size for p in SHIPPED_LADDER.iterdir())
    assert size <= 2 * 1024 * 1024
    assert not any(p.suffix in (".safetensors", ".bin", ".pt") for p in SHIPPED_LADDER.iterdir())
    from importlib.resources import files as resource_files

    assert resource_files("cod_monitor").joinpath("data/demo_ladder/ladder.json").is_file()


def test_shipped_ladder_has_six_runs_and_a_far_target(shipped):
    finals = _final_checkpoints(shipped)
    ladder_runs = [m for m in finals if m.role == "ladder"]
    targets = [m for m in finals if m.role == "target"]
    assert len(ladder_runs) >= 6 and len(targets) == 1
    assert targets[0].compute >= 4 * ladder_runs[-1].compute
    params = [m.params for m in ladder_runs]
    assert all(b > 1.2 * a for a, b in zip(params, params[1:]))
    per_run = {}
    for m in shipped.models:
        per_run.setdefault(m.run, []).append(m.step)
    assert all(len(steps) >= 4 for steps in per_run.values())
    assert set(shipped.benchmarks) == {*BENCHMARK_FAMILIES, *FAMILIES}
    assert len(shipped.matrix("demo").sample_ids) == 900
    assert len(shipped.matrix("knowledge").sample_ids) == 300


def test_shipped_ladder_accuracy_rises_with_compute(shipped):
    finals = _final_checkpoints(shipped)
    acc = [_accuracy(shipped, m) for m in finals]
    assert all(b > a for a, b in zip(acc, acc[1:])), acc
    assert acc[0] < 0.1 and acc[-1] > 0.35
    # samples emerge at different points of the ladder
    ladder_finals = [m for m in finals if m.role == "ladder"]
    X = shipped.matrix("demo", models=[m.name for m in ladder_finals]).pass_rates
    first = np.where((X > 0.5).any(axis=1), (X > 0.5).argmax(axis=1), len(ladder_finals))
    assert len(np.unique(first)) >= 4


def test_shipped_build_md_has_the_command():
    text = (SHIPPED_LADDER / "BUILD.md").read_text()
    assert "cod-monitor ladder build-demo" in text
    assert Path(SHIPPED_LADDER / "ladder.json").stat().st_size > 0


def test_target_seeds_train_the_target_again_and_average_it():
    from cod_monitor.demo.build import _variant_bases
    from cod_monitor.demo.recipe import micro_specs

    specs = micro_specs()
    pairs = _variant_bases(specs, 2, target_seeds=3)
    target = next(s for s in specs if s.role == "target")
    names = [v.name for v, _ in pairs]
    assert names.count(f"{target.name}-seed1") == 1 and f"{target.name}-seed2" in names
    assert not any(n.endswith("-seed2") and not n.startswith(target.name) for n in names)
    for variant, base in pairs:  # other seeds, same recipe, averaged into the base run
        original = next(s for s in specs if s.name == base)
        assert (variant.params, variant.tokens, variant.role) == (
            original.params, original.tokens, original.role)
        assert (variant.data_seed, variant.init_seed) != (original.data_seed, original.init_seed)
