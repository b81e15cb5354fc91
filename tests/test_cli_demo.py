"""``cod-monitor demo``: the synthetic path, and the live path at reduced scale.

The live test runs the real thing at a few dozen optimizer steps: the HF Trainer on the
demo target, CODCallback, a spawn-started CPU evaluation worker (HFEvaluator, exact),
an offline W&B run read back with ``wandb leet inspect --json``, and the local report.
It runs in a subprocess so that the Trainer, W&B and the worker leave nothing behind
in the test process. The sabotage is armed in it too (its alert is not expected at
this scale: the model has learned nothing yet, so it cannot fall below its band; the
benchmark ``benchmarks/bench_demo.py`` measures alerts on demo-sized runs).
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cod_monitor.cli import main
from cod_monitor.demo.live_config import fresh_out_dir
from cod_monitor.demo.live_summary import FINISHED_METHODS, SUMMARY_KEYS, finished_forecasts


def test_synthetic_demo_prints_the_forecast_and_writes_the_summary(tmp_path, capsys):
    rc = main(["demo", "--synthetic", "--n-samples", "400", "--n-models", "6",
               "--n-bootstrap", "5", "--method", "cod", "--out", str(tmp_path)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "COD forecast" in out and "true expected accuracy" in out
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert 0 <= summary["forecast_final"] <= 1
    assert summary["abs_error_pts"] == pytest.approx(
        100 * abs(summary["forecast_final"] - summary["truth"]))
    assert (tmp_path / "ladder" / "ladder.json").exists()


def test_live_demo_refuses_a_directory_that_holds_a_run(tmp_path, capsys):
    (tmp_path / "journal.jsonl").write_text("{}\n")
    rc = main(["demo", "--out", str(tmp_path), "--no-wandb"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "cod-monitor demo: error:" in err and "fresh directory" in err


def test_fresh_out_dir_never_reuses_a_directory_with_files(tmp_path):
    base = tmp_path / "cod_demo_out"
    assert fresh_out_dir(base) == base
    base.mkdir()
    assert fresh_out_dir(base) == base  # empty: usable
    (base / "x").write_text("")
    assert fresh_out_dir(base) == tmp_path / "cod_demo_out-2"


def test_finished_forecasts_are_what_predict_prints_for_the_target(capsys):
    from cod_monitor.demo import SHIPPED_LADDER, load_demo_ladder
    from cod_monitor.demo.recipe import target_spec

    spec = target_spec()
    got = finished_forecasts(load_demo_ladder(), "fact", spec)
    assert list(got) == list(FINISHED_METHODS)
    argv = ["predict", "--ladder", str(SHIPPED_LADDER), "--benchmark", "fact",
            "--target", f"{spec.name}-s{spec.steps:04d}", "--n-bootstrap", "0", "--json"]
    for name in FINISHED_METHODS:
        argv += ["--method", name]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)["predictions"]
    for name in FINISHED_METHODS:
        assert got[name]["error"] is None, got[name]
        assert got[name]["value"] == pytest.approx(printed[name]["value"], abs=1e-12), name


def _wandb_records(run_dir):
    out = subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", "--json", run_dir],
                         check=True, capture_output=True, text=True, timeout=120).stdout
    records = {}
    for line in out.splitlines():
        rec = json.loads(line)
        records.setdefault(rec["type"], []).append(rec[rec["type"]])
    return records


@pytest.mark.slow
def test_live_demo_reduced_scale_end_to_end(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("wandb")
    out = tmp_path / "demo"
    from cod_monitor.demo.recipe import BATCH_SIZE, BLOCK_SIZE

    # 2 checkpoints of 10 steps; two benchmarks keep it short
    argv = ["demo", "--out", str(out), "--tokens", str(20 * BATCH_SIZE * BLOCK_SIZE),
            "--checkpoints", "2",
            "--benchmarks", "demo", "fact", "--n-bootstrap", "10", "--sabotage",
            "--sabotage-at", "0.5", "--quiet"]
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from cod_monitor.cli import main; "
         "sys.exit(main(sys.argv[1:]))", *argv],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "SABOTAGE: learning rate x30 from step 10" in proc.stdout
    assert "at the final checkpoint (step 20)" in proc.stdout

    summary = json.loads((out / "summary.json").read_text())
    assert set(SUMMARY_KEYS) <= set(summary)
    for key in ("forecast_final", "observed_final", "abs_error_pts", "trajectory_mae_pts",
                "wall_s"):
        assert isinstance(summary[key], float), key
    assert 0 <= summary["forecast_final"] <= 1 and 0 <= summary["observed_final"] <= 1
    assert summary["abs_error_pts"] == pytest.approx(
        100 * abs(summary["forecast_final"] - summary["observed_final"]))
    assert isinstance(summary["alerts"], list)
    for alert in summary["alerts"]:
        assert {"reason", "message", "step"} <= set(alert)
        assert isinstance(alert["step"], int) and isinstance(alert["message"], str)
    assert [c["step"] for c in summary["checkpoints"]] == [10, 20]
    # the forecast learned from the run: the first one-step forecast is the ladder's own
    first = summary["checkpoints"][0]
    assert first["run_forecast"] == pytest.approx(first["forecast"])
    assert all(c["final_forecast"] is not None for c in summary["checkpoints"])
    progress = summary["final_forecast_by_progress"]
    assert progress["end"]["forecast"] == summary["checkpoints"][-1]["final_forecast"]
    assert "final " in proc.stdout and "(ladder " in proc.stdout
    assert set(summary["per_benchmark"]) == {"demo", "fact"}
    assert summary["sabotage"] == {"kind": "lr_spike", "factor": 30.0, "step": 10}
    # a run shorter than the recipe's is not the finished model they forecast
    assert summary["finished_forecasts"] is None
    assert Path(summary["report_html"]).read_text().count("cod-report-data") >= 1
    # the evaluation sets the worker read, matching the ladder's samples
    assert (out / "eval_sets" / "demo.jsonl").exists()

    # the Trainer logged the learning rate: x30 after the sabotage
    states = sorted((out / "trainer").glob("checkpoint-*/trainer_state.json"))
    history = json.loads(states[-1].read_text())["log_history"]
    lrs = {h["step"]: h["learning_rate"] for h in history if "learning_rate" in h}
    before = [lr for s, lr in lrs.items() if s <= 10]
    after = [lr for s, lr in lrs.items() if s > 10]
    base = summary["target"]["learning_rate"]
    assert before and max(before) <= base * (1 + 1e-6)  # warm-up, then the recipe's rate
    assert after and min(after) == pytest.approx(30 * base, rel=1e-6)

    # the offline W&B run: the Trainer's own run, with the monitor's keys in it
    run_dir = summary["wandb_run_dir"]
    assert Path(run_dir).is_dir() and Path(run_dir).parent == out / "wandb"
    records = _wandb_records(run_dir)
    keys = set().union(*(h["item"] for h in records.get("history", [])))
    # one series per quantity: the scalars come through the Trainer's log stream
    for key in ("train/cod/demo/accuracy", "train/cod/demo/forecast",
                "train/cod/demo/forecast_lower", "train/cod/fact/accuracy",
                "train/cod/demo/final_forecast", "train/loss"):
        assert key in keys, key
    assert "cod/demo/observed" not in keys
    observed = sorted(h["item"]["train/cod/demo/checkpoint_step"] for h in records["history"]
                      if "train/cod/demo/accuracy" in h["item"])
    assert observed == [10, 20]
    final = {}
    for s in records.get("summary", []):
        final.update(s.get("update", {}))
    assert final["cod/demo/last_observed"] == pytest.approx(summary["observed_final"])
