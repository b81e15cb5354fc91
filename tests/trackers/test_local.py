"""LocalTracker: CSV tables, PNG plots and the HTML report on disk."""

import csv
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from numpy.testing import assert_allclose

from cod_monitor.records import Alert, AlertReason
from cod_monitor.trackers.base import Tracker
from cod_monitor.trackers.local import LocalTracker


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _feed(tracker, run):
    tracker.start({"benchmarks": [run.benchmark], "out_dir": "ignored"})
    tracker.log_forecast(run.benchmark, 1, run.curve, run.report)
    for o, p in run.observed:
        tracker.log_observation(o, p)
    for a in run.alerts:
        tracker.log_alert(a)


def test_is_a_tracker(tmp_path):
    assert isinstance(LocalTracker(tmp_path, plots=False), Tracker)


def test_csv_files_hold_the_logged_numbers(fake_run, tmp_path):
    tracker = LocalTracker(tmp_path, plots=False)
    _feed(tracker, fake_run)

    obs = _rows(tmp_path / "observations.csv")
    assert [int(r["step"]) for r in obs] == [o.step for o, _ in fake_run.observed]
    assert_allclose([float(r["accuracy"]) for r in obs], [o.accuracy for o, _ in fake_run.observed])
    assert_allclose([float(r["forecast"]) for r in obs], [p.value for _, p in fake_run.observed])
    assert_allclose([float(r["residual"]) for r in obs],
                    [o.accuracy - p.value for o, p in fake_run.observed])
    expected_status = ["below" if o.accuracy < p.lower else "above" if o.accuracy > p.upper
                       else "in band" for o, p in fake_run.observed]
    assert [r["status"] for r in obs] == expected_status

    fc = _rows(tmp_path / "forecasts.csv")
    assert len(fc) == len(fake_run.curve) and {r["version"] for r in fc} == {"1"}
    assert_allclose([float(r["value"]) for r in fc], [p.value for p in fake_run.curve])
    assert_allclose([float(r["compute"]) for r in fc], [p.compute for p in fake_run.curve])

    alerts = _rows(tmp_path / "alerts.csv")
    assert [r["message"] for r in alerts] == [a.message for a in fake_run.alerts]
    assert alerts[0]["reason"] == "below_band"

    (rec,) = [json.loads(line) for line in (tmp_path / "forecast_reports.jsonl").read_text().splitlines()]
    assert rec["version"] == 1
    assert [c["size"] for c in rec["report"]["clusters"]] == [
        c["size"] for c in fake_run.report["clusters"]]


def test_report_follows_events_and_finish_is_idempotent(fake_run, tmp_path):
    tracker = LocalTracker(tmp_path, plots=False, render_interval_s=3600)
    _feed(tracker, fake_run)
    doc = Path(tracker.report_path).read_text()
    assert "status: <b>running</b>" in doc
    assert fake_run.alerts[0].message.split(":")[0] in doc  # re-rendered on the alert
    tracker.finish({"stop_requested": False, "alerts": {"below_band": 1}})
    tracker.finish({"stop_requested": True})  # no-op
    doc = Path(tracker.report_path).read_text()
    assert "status: <b>finished</b>" in doc
    assert json.loads(Path(tmp_path / "summary.json").read_text()) == {
        "stop_requested": False, "alerts": {"below_band": 1}}
    last, _ = fake_run.observed[-1]
    assert f'data-accuracy="{last.accuracy:.6f}"' in doc


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="needs matplotlib")
def test_png_plot_is_drawn(fake_run, tmp_path):
    tracker = LocalTracker(tmp_path, plots=True)
    _feed(tracker, fake_run)
    tracker.finish({})
    import matplotlib.image

    png = tmp_path / "plots" / f"{fake_run.benchmark}.png"
    img = matplotlib.image.imread(png)
    assert img.shape[0] > 300 and img.shape[1] > 800
    assert img[..., :3].std() > 0.05  # not blank


def test_restart_reads_back_and_does_not_duplicate(fake_run, tmp_path):
    half = len(fake_run.observed) // 2
    first = LocalTracker(tmp_path, plots=False)
    first.start({"benchmarks": [fake_run.benchmark]})
    first.log_forecast(fake_run.benchmark, 1, fake_run.curve[:20], fake_run.report)
    for o, p in fake_run.observed[:half]:
        first.log_observation(o, p)
    # a crash: no finish. The restarted monitor logs version 1 again, now with the whole
    # curve, and replays the observations.
    second = LocalTracker(tmp_path, plots=False)
    second.start({"benchmarks": [fake_run.benchmark], "resumed": True})
    second.log_forecast(fake_run.benchmark, 1, fake_run.curve, fake_run.report)
    for o, p in fake_run.observed:
        second.log_observation(o, p)
    second.finish({})
    obs = _rows(tmp_path / "observations.csv")
    assert [int(r["step"]) for r in obs] == [o.step for o, _ in fake_run.observed]
    assert len(_rows(tmp_path / "forecasts.csv")) == len(fake_run.curve)
    doc = Path(second.report_path).read_text()
    assert doc.count('<circle class="obs"') == len(fake_run.observed)
    # the report survives a restart with no new event at all
    third = LocalTracker(tmp_path, plots=False)
    third.start({})
    assert Path(third.report_path).read_text().count('<circle class="obs"') == len(fake_run.observed)


def test_repeated_alert_is_recorded_once(tmp_path):
    tracker = LocalTracker(tmp_path, plots=False)
    a = Alert(10, "b", AlertReason.BELOW_BAND, "b at step 10: observed 0.1 below [0.2, 0.3].",
              0.1, 0.2, 0.3)
    tracker.log_alert(a)  # start() is implied
    tracker.log_alert(a)
    tracker.log_alert(Alert(12, "b", AlertReason.RECOVERED, "b at step 12: back in band."))
    assert [r["reason"] for r in _rows(tmp_path / "alerts.csv")] == ["below_band", "recovered"]


def test_plots_true_needs_matplotlib(monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else real(name, *a))
    with pytest.raises(ImportError, match=r"pip install 'cod_monitor\[report\]'"):
        LocalTracker(tmp_path, plots=True)
    LocalTracker(tmp_path, plots="auto")  # 'auto' only turns the PNGs off


def test_invalid_plots_parameter(tmp_path):
    with pytest.raises(ValueError, match="The 'plots' parameter of LocalTracker"):
        LocalTracker(tmp_path, plots="yes")


def test_importing_trackers_is_light():
    code = (
        "import sys, cod_monitor.trackers, cod_monitor.integrations\n"
        "import cod_monitor.trackers.local, cod_monitor.trackers.html\n"
        "heavy = {'wandb', 'matplotlib', 'torch', 'transformers'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_lazy_attributes():
    import cod_monitor.trackers as t

    assert t.LocalTracker is LocalTracker
    with pytest.raises(AttributeError):
        t.NoSuchTracker  # noqa: B018


def test_run_forecasts_are_written_read_back_and_drawn(fake_run, run_finals, tmp_path):
    tracker = LocalTracker(tmp_path, plots=False)
    _feed(tracker, fake_run)
    finals = run_finals
    for o, p, f in finals:
        tracker.log_run_forecast(o, p, f)
    tracker.log_run_forecast(finals[0][0], finals[0][1], finals[0][2])  # a replay: no new row
    tracker.finish({})
    rows = _rows(tmp_path / "final_forecasts.csv")
    assert [int(r["step"]) for r in rows] == [o.step for o, _, _ in finals]
    assert_allclose([float(r["value"]) for r in rows], [f.value for _, _, f in finals])
    assert_allclose([float(r["prior_value"]) for r in rows], [f.prior_value for _, _, f in finals])
    html = (tmp_path / "report.html").read_text()
    assert "Forecast of the final accuracy" in html and 'class="final-ladder"' in html
    # a restarted tracker reads them back and does not duplicate them
    again = LocalTracker(tmp_path, plots=False)
    again.log_run_forecast(finals[-1][0], finals[-1][1], finals[-1][2])
    assert len(_rows(tmp_path / "final_forecasts.csv")) == len(finals)
