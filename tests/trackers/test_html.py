"""The static HTML report: numbers in, numbers out, self-contained, and it renders."""

import json
import os
import re
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose

from cod_monitor.cod.laws import expected_accuracy
from cod_monitor.trackers.html import cluster_curves, render_report, write_report
from cod_monitor.trackers.local import LocalTracker


def _bench_state(run):
    obs = [
        {"step": o.step, "compute": o.compute, "accuracy": o.accuracy, "forecast": p.value,
         "lower": p.lower, "upper": p.upper, "version": p.version}
        for o, p in run.observed
    ]
    curve = [{"step": p.step, "compute": p.compute, "value": p.value, "lower": p.lower,
              "upper": p.upper, "version": p.version, "mode": p.mode} for p in run.curve]
    return {"version": 1, "curve": curve, "report": run.report, "observations": obs,
            "versions": [{"version": 1, "time": "t", "final_value": curve[-1]["value"],
                          "final_lower": curve[-1]["lower"], "final_upper": curve[-1]["upper"]}]}


def _alerts(run):
    return [{"time": "t", "benchmark": a.benchmark, "step": a.step, "reason": a.reason.value,
             "message": a.message, "observed": a.observed, "lower": a.lower, "upper": a.upper}
            for a in run.alerts]


def _embedded(doc):
    m = re.search(r'<script type="application/json" id="cod-report-data">(.*?)</script>', doc, re.DOTALL)
    assert m, "embedded data block missing"
    return json.loads(m.group(1))


class _Tables(HTMLParser):
    """Collects the cells of every <table class=...> by class."""

    def __init__(self):
        super().__init__()
        self.tables, self._cls, self._row, self._cell = {}, None, None, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self._cls = a.get("class", "")
            self.tables.setdefault(self._cls, [])
        elif tag == "tr" and self._cls is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = ""

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append(self._cell.strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[self._cls].append(self._row)
            self._row = None
        elif tag == "table":
            self._cls = None


def test_report_shows_the_numbers(fake_run):
    b = fake_run.benchmark
    doc = render_report(run_info={"benchmarks": [b], "run_name": "r1"},
                        benchmarks={b: _bench_state(fake_run)}, alerts=_alerts(fake_run),
                        summary={"alerts": {"below_band": 1}})
    data = _embedded(doc)
    assert_allclose([o["accuracy"] for o in data["benchmarks"][b]["observations"]],
                    [o.accuracy for o, _ in fake_run.observed], rtol=1e-12)

    # one observed dot per checkpoint, at the logged accuracy
    dots = re.findall(r'<circle class="obs"[^>]*data-step="(\d+)" data-accuracy="([0-9.]+)"', doc)
    assert [int(s) for s, _ in dots] == [o.step for o, _ in fake_run.observed]
    assert_allclose([float(a) for _, a in dots], [o.accuracy for o, _ in fake_run.observed],
                    atol=1e-6)

    tables = _Tables()
    tables.feed(doc)
    obs_rows = tables.tables["observations"][1:]
    latest, p = fake_run.observed[-1]
    assert obs_rows[0][:4] == [f"{latest.step:,}", f"{latest.compute:.3g}",
                              f"{latest.accuracy:.3f}", f"{p.value:.3f}"]
    assert obs_rows[0][-1] == "below"
    clusters = tables.tables["clusters"][1:]
    assert [int(r[1]) for r in clusters] == [c["size"] for c in fake_run.report["clusters"]]
    assert [r[2] for r in clusters] == [c["verdict"] for c in fake_run.report["clusters"]]
    assert fake_run.alerts[0].message in doc.replace("&#x27;", "'")
    assert "status: <b>running</b>" in doc


def test_report_is_self_contained(fake_run):
    b = fake_run.benchmark
    doc = render_report(benchmarks={b: _bench_state(fake_run)}, alerts=_alerts(fake_run))
    assert "<script src" not in doc and "<link" not in doc and "@import" not in doc
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", doc))
    assert urls <= {"http://www.w3.org/2000/svg"}
    assert doc.count("<svg") == 2  # forecast chart + per-cluster chart


def test_untrusted_strings_are_escaped():
    name = '<img src=x onerror=alert(1)>'
    alerts = [{"benchmark": name, "step": 3, "reason": "below_band",
               "message": "</script><script>alert(1)</script>"}]
    doc = render_report(benchmarks={name: {"observations": [
        {"step": 3, "compute": 1e20, "accuracy": 0.5}]}}, alerts=alerts,
        summary={"x": float("nan")})
    assert "<img src=x" not in doc and "<script>alert" not in doc
    data = _embedded(doc)  # the closing tag inside the JSON is escaped, so it still parses
    assert data["alerts"][0]["message"] == alerts[0]["message"]
    assert data["summary"]["x"] is None


def test_empty_report_renders(tmp_path):
    path = write_report(tmp_path / "r.html")
    doc = Path(path).read_text()
    assert "No forecast or observation yet." in doc and "No alert." in doc
    assert _embedded(doc)["benchmarks"] == {}


def test_cluster_curves_follow_the_fitted_laws(fake_run):
    report = fake_run.report
    compute = np.logspace(18, 24, 7)
    curves = cluster_curves(report, compute)
    assert set(curves) == {c["cluster"] for c in report["clusters"]}
    cl = report["clusters"][0]
    law = cl["law"]
    expected = expected_accuracy(compute / report["compute_unit"], law["a"], law["b"],
                                 law["c"], law["g"])
    assert_allclose(curves[cl["cluster"]], expected, rtol=1e-12)


def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
@pytest.mark.skipif(_chromium() is None, reason="needs a Chromium binary")
def test_report_renders_in_headless_chromium(fake_run, tmp_path):
    """Render a full report and screenshot it; the picture must not be blank.

    ``COD_SCREENSHOT_OUT=docs/report_screenshot.png`` keeps the screenshot.
    """
    tracker = LocalTracker(tmp_path / "run", plots=False, render_interval_s=0)
    tracker.start({"benchmarks": [fake_run.benchmark], "run_name": "target-70B (synthetic ladder)",
                   "ladder": {"source": "synthetic", "n_models": 8, "compute_unit": 1e18}})
    tracker.log_forecast(fake_run.benchmark, 1, fake_run.curve, fake_run.report)
    for o, p in fake_run.observed:
        tracker.log_observation(o, p)
        for a in fake_run.alerts:
            if a.step == o.step:
                tracker.log_alert(a)
    tracker.finish({"benchmarks": {fake_run.benchmark: {"observations": len(fake_run.observed)}},
                    "alerts": {"below_band": len(fake_run.alerts)}, "stop_requested": False})
    shot = tmp_path / "shot.png"
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={profile}", "--hide-scrollbars",
             f"--screenshot={shot}", "--window-size=1280,2000",
             "file://" + os.path.abspath(tracker.report_path)],
            check=True, capture_output=True, timeout=120,
        )
    image = pytest.importorskip("PIL.Image")
    with image.open(shot) as im:
        assert im.size == (1280, 2000)
        px = np.asarray(im.convert("RGB"), dtype=float)
    non_white = (px < 245).any(axis=2).mean()
    assert non_white > 0.05, f"only {non_white:.1%} of the page is drawn"
    assert px[:40].mean() < 100  # the dark header bar is there
    colours = {tuple(c) for c in px[::4, ::4].reshape(-1, 3).astype(int)}
    assert len(colours) > 100  # charts, not a blank or error page
    if os.environ.get("COD_SCREENSHOT_OUT"):
        shutil.copyfile(shot, os.environ["COD_SCREENSHOT_OUT"])


@pytest.mark.parametrize(
    "summary, finished, status, drift",
    [
        ({}, False, "running", False),
        ({}, True, "finished", False),  # a summary of an older monitor
        ({"status": "finished", "drift_detected": True}, True, "finished", True),
        ({"status": "stopped_by_drift", "stopped_at": 6, "drift_detected": True}, True,
         "stopped by drift at step 6", True),
    ],
)
def test_the_header_says_how_the_run_ended(summary, finished, status, drift):
    doc = render_report(summary=summary, finished=finished)
    assert f"status: <b>{status}</b>" in doc
    assert ('<span class="st below">drift detected</span>' in doc) is drift
