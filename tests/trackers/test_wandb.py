"""WandbTracker against real offline W&B runs, read back with ``wandb leet inspect --json``."""

import glob
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from numpy.testing import assert_allclose

from cod_monitor.records import Alert, AlertReason, Observation

wandb = pytest.importorskip("wandb")

from cod_monitor.trackers.base import Tracker
from cod_monitor.trackers.wandb import WandbTracker


@pytest.fixture
def wandb_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_CONSOLE", "off")
    yield tmp_path
    if wandb.run is not None:
        wandb.run.finish()
    wandb.teardown()  # the settings singleton caches WANDB_DIR; the next test has its own


def read_run(wandb_dir):
    """Every record of the single offline run under ``wandb_dir``, by type."""
    (run_dir,) = glob.glob(os.path.join(wandb_dir, "wandb", "offline-run-*"))
    out = subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", "--json", run_dir],
                         check=True, capture_output=True, text=True, timeout=60).stdout
    records = {}
    for line in out.splitlines():
        rec = json.loads(line)
        records.setdefault(rec["type"], []).append(rec[rec["type"]])
    return run_dir, records


def history(records, key):
    return [h["item"] for h in records.get("history", []) if key in h["item"]]


def summary(records):
    out = {}
    for s in records.get("summary", []):
        out.update(s.get("update", {}))
    return out


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_own_run_keys_values_table_chart_alerts_summary(fake_run, wandb_dir):
    b = fake_run.benchmark
    clock = Clock()
    tracker = WandbTracker(project="cod-test", alert_cooldown_s=600, clock=clock)
    assert isinstance(tracker, Tracker)
    tracker.start({"benchmarks": [b], "out_dir": str(wandb_dir), "trajectory": "compute"})
    tracker.log_forecast(b, 1, fake_run.curve, fake_run.report)
    for o, p in fake_run.observed:
        tracker.log_observation(o, p)
    below = Alert(30_000, b, AlertReason.BELOW_BAND, f"{b} at step 30000: observed 0.742 is "
                  "below the forecast interval [0.795, 0.835].", 0.742, 0.795, 0.835)
    tracker.log_alert(below)                       # sent
    clock.t += 10
    tracker.log_alert(below)                       # same (benchmark, reason): suppressed
    tracker.log_alert(Alert(30_000, b, AlertReason.EVALUATION_FAILING,
                            f"Evaluating {b} at step 30000 failed 3 times."))  # other reason: sent
    clock.t += 601
    tracker.log_alert(below)                       # cooldown over: sent again
    tracker.finish({"benchmarks": {b: {"alerting": True}}, "failed": 0})
    tracker.finish({})                             # idempotent
    assert wandb.run is None                       # it opened the run, so it finished it

    run_dir, rec = read_run(wandb_dir)
    metrics = {m.get("name"): m for m in rec["metric"] if m.get("name")}
    for key in ("observed", "forecast", "lower", "upper", "final_forecast"):
        assert metrics[f"cod/{b}/{key}"]["step_metric"] == "cod/ckpt_step"
    assert metrics[f"cod/{b}/by_compute/observed"]["step_metric"] == "cod/compute"

    rows = history(rec, f"cod/{b}/observed")
    assert [r["cod/ckpt_step"] for r in rows] == [o.step for o, _ in fake_run.observed]
    assert_allclose([r[f"cod/{b}/observed"] for r in rows], [o.accuracy for o, _ in fake_run.observed])
    assert_allclose([r[f"cod/{b}/lower"] for r in rows], [p.lower for _, p in fake_run.observed])
    assert_allclose([r["cod/compute"] for r in rows], [o.compute for o, _ in fake_run.observed])
    assert_allclose([r[f"cod/{b}/by_compute/upper"] for r in rows],
                    [p.upper for _, p in fake_run.observed])
    (fc,) = history(rec, f"cod/{b}/final_forecast")
    assert fc[f"cod/{b}/final_forecast"] == pytest.approx(fake_run.curve[-1].value)
    assert fc[f"cod/{b}/forecast_version"] == 1
    drift = history(rec, f"cod/{b}/drift")
    assert [r[f"cod/{b}/drift"] for r in drift] == [1, 1, 1]  # the state is logged every time

    alerts = rec["alert"]
    assert [(a["title"], a["level"]) for a in alerts] == [
        (f"COD below band: {b}", "WARN"), (f"COD evaluation failing: {b}", "ERROR"),
        (f"COD below band: {b}", "WARN")]
    assert alerts[0]["text"] == below.message and alerts[0]["wait_duration"] == "600000"

    s = summary(rec)
    assert s[f"cod/{b}/final_forecast"] == pytest.approx(fake_run.curve[-1].value)
    assert s[f"cod/{b}/n_alerts"] == 3 and s[f"cod/{b}/n_alerts_suppressed"] == 1
    assert s[f"cod/{b}/n_observations"] == len(fake_run.observed)
    assert s[f"cod/{b}/alerting"] is True and s["cod/summary/failed"] == 0
    assert s[f"cod/{b}/last_observed"] == pytest.approx(fake_run.observed[-1][0].accuracy)

    # per-cluster table of version 1, as written to the run's media files
    (table_file,) = glob.glob(os.path.join(run_dir, "files", "media", "table", "cod", b,
                                           "clusters_*.table.json"))
    table = json.loads(Path(table_file).read_text())
    assert table["columns"][:4] == ["version", "cluster", "size", "verdict"]
    assert [r[2] for r in table["data"]] == [c["size"] for c in fake_run.report["clusters"]]
    assert [r[3] for r in table["data"]] == [c["verdict"] for c in fake_run.report["clusters"]]
    assert_allclose([r[4] for r in table["data"]],
                    [c["law"]["a"] for c in fake_run.report["clusters"]])

    # forecast-vs-observed line chart
    config = {}
    for c in rec["config"]:
        config.update(c.get("update", {}))
    panel = config[f"_wandb.visualize.cod/{b}/forecast_vs_observed"]["panel_config"]
    assert panel["panelDefId"] == "wandb/lineseries/v0"
    assert rec["exit"][0]["exit_code"] == 0


def test_shared_run_late_observation_lands_and_run_stays_open(fake_run, wandb_dir):
    """The trainer's step has moved on when a result arrives: the row must not be dropped."""
    b = fake_run.benchmark
    run = wandb.init(project="cod-test")           # stands in for the Trainer's WandbCallback
    for step in range(0, 101, 10):
        run.log({"train/loss": 1.0 / (1 + step)}, step=step)
    run.log({"probe/explicit_old_step": 1.0}, step=50)  # the W&B behaviour this design avoids
    tracker = WandbTracker()
    tracker.start({"benchmarks": [b]})
    o = Observation(step=50, compute=1e21, benchmark=b, accuracy=0.61)
    tracker.log_observation(o, None)
    run.log({"train/loss": 0.001}, step=110)
    tracker.finish({})
    assert wandb.run is run                       # not its run: left open
    run.finish()

    _, rec = read_run(wandb_dir)
    assert not history(rec, "probe/explicit_old_step")  # dropped, as FACTS.md says
    (row,) = history(rec, f"cod/{b}/observed")
    assert row[f"cod/{b}/observed"] == 0.61 and row["cod/ckpt_step"] == 50
    assert row["_step"] >= 100                     # landed after the trainer's step 100
    assert f"cod/{b}/forecast" not in row          # no forecast for this checkpoint
    assert summary(rec)[f"cod/{b}/n_observations"] == 1


def test_missing_wandb_says_how_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(ImportError, match=r"pip install 'cod_monitor\[wandb\]'"):
        WandbTracker()


def test_run_forecasts_are_logged_against_the_step(fake_run, run_finals, wandb_dir):
    b = fake_run.benchmark
    tracker = WandbTracker(project="cod-test", chart_interval_s=0)
    tracker.start({"benchmarks": [b]})
    finals = run_finals
    for o, p, f in finals:
        tracker.log_observation(o, p)
        tracker.log_run_forecast(o, p, f)
    tracker.finish({})
    run_dir, rec = read_run(wandb_dir)
    metrics = {m.get("name"): m for m in rec["metric"] if m.get("name")}
    for key in ("run/final", "run/final_ladder", "run/one_step"):
        assert metrics[f"cod/{b}/{key}"]["step_metric"] == "cod/ckpt_step"
    rows = history(rec, f"cod/{b}/run/final")
    assert [r["cod/ckpt_step"] for r in rows] == [o.step for o, _, _ in finals]
    assert_allclose([r[f"cod/{b}/run/final"] for r in rows], [f.value for _, _, f in finals])
    assert_allclose([r[f"cod/{b}/run/final_ladder"] for r in rows],
                    [f.prior_value for _, _, f in finals])
    assert_allclose([r[f"cod/{b}/run/one_step"] for r in rows], [p.value for _, p, _ in finals])
    charts = [h for h in rec.get("history", [])
              if f"cod/{b}/final_forecast_vs_step" in json.dumps(h)]
    assert charts


def test_a_run_fed_by_the_loops_logger_gets_one_series_and_one_summary_key_per_quantity(
        fake_run, wandb_dir):
    """The HF Trainer's run: its WandbCallback brings the cod scalars (``train/`` prefix);
    the tracker adds charts, tables, alerts and the summary, and no series of its own."""
    from cod_monitor.records import observation_metrics
    from cod_monitor.trackers.wandb import COMPUTE_METRICS, STEP_METRICS

    b = fake_run.benchmark
    run = wandb.init(project="cod-test")           # as the Trainer's WandbCallback does
    run.define_metric("train/global_step")
    run.define_metric("*", step_metric="train/global_step", step_sync=True)
    tracker = WandbTracker(log_stream_prefix="train/", chart_interval_s=0)
    tracker.start({"benchmarks": [b]})
    tracker.log_forecast(b, 1, fake_run.curve, fake_run.report)
    observed = fake_run.observed[:3]
    for i, (o, p) in enumerate(observed):
        tracker.log_observation(o, p)
        # what the WandbCallback logs of a Trainer log that carries an observation
        row = {f"train/{k}": v for k, v in observation_metrics(o, p).items()}
        run.log({**row, "train/loss": 1.0 / (i + 1), "train/global_step": o.step + 7})
    below = Alert(observed[-1][0].step, b, AlertReason.BELOW_BAND, f"{b} fell below its band.")
    tracker.log_alert(below)
    tracker.finish({"status": "stopped_by_drift", "stopped_at": observed[-1][0].step + 1,
                    "drift_detected": True,
                    "benchmarks": {b: {"observations": 3, "last_accuracy": observed[-1][0].accuracy,
                                       "alerting": True}}})
    run.finish()

    _, rec = read_run(wandb_dir)
    own = {f"cod/{b}/{n}" for n in STEP_METRICS} | {f"cod/{b}/by_compute/{n}" for n in COMPUTE_METRICS}
    items = [h["item"] for h in rec["history"]]
    assert not [k for i in items for k in i if k in own]  # no second series
    rows = history(rec, f"train/cod/{b}/accuracy")
    assert [r[f"train/cod/{b}/checkpoint_step"] for r in rows] == [o.step for o, _ in observed]
    metrics = {m.get("name"): m for m in rec["metric"] if m.get("name")}
    # plotted against the checkpoint's step, not the Trainer's step
    assert metrics[f"train/cod/{b}/accuracy"]["step_metric"] == f"train/cod/{b}/checkpoint_step"
    assert metrics[f"train/cod/{b}/forecast_upper"]["step_metric"] == f"train/cod/{b}/checkpoint_step"
    s = summary(rec)
    assert not [k for k in s if k.startswith("train/cod/")]  # their last values are below
    assert s[f"cod/{b}/last_observed"] == pytest.approx(observed[-1][0].accuracy)
    assert s[f"cod/{b}/n_observations"] == 3 and f"cod/{b}/observations" not in s
    assert f"cod/{b}/last_accuracy" not in s and s[f"cod/{b}/alerting"] is True
    assert s["cod/summary/status"] == "stopped_by_drift" and s["cod/summary/drift_detected"] is True
    assert [a["title"] for a in rec["alert"]] == [f"COD below band: {b}"]
    assert any(k.startswith(f"cod/{b}/forecast_vs_observed") for i in items for k in i)
    assert any(k.startswith(f"cod/{b}/clusters") for i in items for k in i)


def test_own_run_summary_has_one_key_per_quantity(fake_run, wandb_dir):
    b = fake_run.benchmark
    tracker = WandbTracker(project="cod-test")
    tracker.start({"benchmarks": [b]})
    tracker.log_forecast(b, 1, fake_run.curve, fake_run.report)
    for o, p in fake_run.observed[:2]:
        tracker.log_observation(o, p)
    tracker.finish({"benchmarks": {b: {"observations": 2, "last_accuracy": 0.5,
                                       "final_forecast": {"value": 0.7}, "mode": "compute"}}})
    _, rec = read_run(wandb_dir)
    s = summary(rec)
    # the series' last values are not repeated under their series' names
    assert not {f"cod/{b}/observed", f"cod/{b}/lower", f"cod/{b}/by_compute/observed"} & set(s)
    assert f"cod/{b}/observations" not in s and f"cod/{b}/final_forecast/value" not in s
    assert s[f"cod/{b}/n_observations"] == 2 and s[f"cod/{b}/mode"] == "compute"
    assert s[f"cod/{b}/final_forecast"] == pytest.approx(fake_run.curve[-1].value)
