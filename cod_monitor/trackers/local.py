"""A tracker that writes plain files: CSV tables, PNG plots and a static HTML report.

For people without Weights & Biases, and as a record that survives any service.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import os
import re
import threading
import time
from datetime import datetime, timezone

import numpy as np

from cod_monitor._io import atomic_write, json_default
from cod_monitor._validation import check_real, invalid
from cod_monitor.exceptions import MissingExtraError
from cod_monitor.records import Alert, FinalForecast, ForecastPoint, Observation
from cod_monitor.trackers.html import (
    PALETTE,
    cluster_curves,
    write_report,
)

__all__ = ["LocalTracker"]

logger = logging.getLogger(__name__)

OBSERVATION_FIELDS = (
    "time", "benchmark", "step", "compute", "accuracy", "forecast", "lower", "upper",
    "version", "residual", "status",
)
FORECAST_FIELDS = ("time", "benchmark", "version", "mode", "step", "compute", "value", "lower", "upper")
ALERT_FIELDS = ("time", "benchmark", "step", "reason", "observed", "lower", "upper", "message")
FINAL_FIELDS = ("time", "benchmark", "step", "final_step", "value", "lower", "upper",
                "prior_value", "prior_lower", "prior_upper", "n_used", "level", "rate",
                "one_step", "one_step_lower", "one_step_upper")

_PLOTS = ("LocalTracker plots", "matplotlib", "report")  # MissingExtraError arguments


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "benchmark"


def _num(x):
    """CSV cell → float, int or None."""
    if x in ("", None):
        return None
    try:
        v = float(x)
    except ValueError:
        return x
    return int(v) if v.is_integer() and "." not in x and "e" not in x.lower() else v


def _status(obs, lower, upper) -> str:
    if lower is None or upper is None:
        return ""
    return "below" if obs < lower else "above" if obs > upper else "in band"


class LocalTracker:
    """Write forecasts, observations and alerts to files in ``out_dir``.

    Files (all appended as events arrive and flushed at once, so a crashed run keeps
    what it logged):

    ``observations.csv``
        One row per (benchmark, checkpoint): observed accuracy, the forecast and band it
        was compared with, residual and status (``in band``, ``below``, ``above``).
    ``forecasts.csv``
        Every point of every forecast version's trajectory curve.
    ``alerts.csv``
        Every alert, with its full-sentence message.
    ``forecast_reports.jsonl``
        The forecaster report (clusters, laws, verdicts, mapping) of every version.
    ``plots/<benchmark>.png``
        Forecast band and observed points against the step, and the per-cluster laws
        against compute (needs matplotlib).
    ``report.html``
        One self-contained page (inline SVG, no scripts, no network) with the same
        charts, the cluster table, the alerts and the run summary; re-rendered on every
        forecast, alert and finish, and on observations at most every
        ``render_interval_s`` (the PNG plots, slower to draw, at most every
        ``plot_interval_s``).
    ``summary.json``
        What :meth:`finish` received.

    Restarting on an existing ``out_dir`` reads these files back, so the report keeps
    the whole run; an event the tracker already holds (same benchmark and step, same
    forecast version, same alert) is not written twice.

    Parameters
    ----------
    out_dir : str or path-like
        Directory for the files; created if missing.
    plots : {'auto', True, False}, default 'auto'
        Draw PNG plots. ``'auto'`` draws them when matplotlib is installed; ``True``
        raises :class:`ImportError` without it.
    render_interval_s : float, default 5.0
        Minimum seconds between HTML re-renders triggered by observations.
    plot_interval_s : float, default 300.0
        Minimum seconds between PNG re-draws triggered by observations.
    title : str, default 'COD monitor report'
        Title of the HTML page.

    Attributes
    ----------
    report_path : str
        Path of ``report.html``.

    Examples
    --------
    >>> import tempfile
    >>> from cod_monitor.records import Observation
    >>> tracker = LocalTracker(tempfile.mkdtemp(), plots=False)
    >>> tracker.start({"benchmarks": ["gsm8k"]})
    >>> tracker.log_observation(Observation(step=100, compute=1e18, benchmark="gsm8k",
    ...                                     accuracy=0.25), None)
    >>> tracker.finish({})
    >>> os.path.exists(tracker.report_path)
    True
    """

    def __init__(self, out_dir, *, plots="auto", render_interval_s: float = 5.0,
                 plot_interval_s: float = 300.0, title: str = "COD monitor report"):
        owner = "LocalTracker"
        if not (plots == "auto" or isinstance(plots, bool)):
            raise invalid(owner, "plots", "a str among {'auto'} or a bool", plots)
        if plots is True:
            MissingExtraError.check(*_PLOTS)
        if not isinstance(out_dir, (str, os.PathLike)) or not os.fspath(out_dir):
            raise invalid(owner, "out_dir", "a directory path", out_dir)
        if os.path.exists(out_dir) and not os.path.isdir(out_dir):
            raise invalid(owner, "out_dir", "a directory path", os.fspath(out_dir),
                          "It is a file; pass a directory (created when the tracker starts).")
        self.out_dir = os.fspath(out_dir)
        self.plots = plots
        self.render_interval_s = check_real(owner, "render_interval_s", render_interval_s, 0,
                                            closed="left")
        self.plot_interval_s = check_real(owner, "plot_interval_s", plot_interval_s, 0,
                                          closed="left")
        self.title = title
        self.report_path = os.path.join(self.out_dir, "report.html")
        self._lock = threading.RLock()
        self._run_info: dict = {}
        self._benchmarks: dict[str, dict] = {}
        self._curves: dict[tuple[str, int], list[dict]] = {}
        self._alerts: list[dict] = []
        self._alert_keys: set = set()
        self._summary: dict | None = None
        self._started = False
        self._finished = False
        self._last_render = -math.inf
        self._last_plot = -math.inf
        self._plots_ok = plots is not False

    # ------------------------------------------------------------------ lifecycle
    def start(self, run_info: dict) -> None:
        """Create ``out_dir``, read back files of an earlier start, render the report."""
        with self._lock:
            os.makedirs(self.out_dir, exist_ok=True)
            self._run_info = {"out_dir": self.out_dir, **dict(run_info or {})}
            if not self._started:
                self._started = True
                self._finished = False
                self._load()
            for b in self._run_info.get("benchmarks") or []:
                self._bench(str(b))
            self._render(plots=False)

    def log_forecast(self, benchmark: str, version: int, curve: list[ForecastPoint],
                     report: dict) -> None:
        """Record a forecast version: its trajectory curve and the forecaster report."""
        with self._lock:
            self._ensure_started()
            points = [_point_dict(p) for p in curve]
            key = (benchmark, int(version))
            t = _now()
            known = {p["step"]: p for p in self._curves.get(key, [])}
            # a version logged again (a resumed monitor) only adds the points it lacked
            self._append("forecasts.csv", FORECAST_FIELDS, [
                {"time": t, "benchmark": benchmark, "version": int(version), **p}
                for p in points if p["step"] not in known
            ])
            if key not in self._curves:
                self._append_jsonl("forecast_reports.jsonl", {
                    "time": t, "benchmark": benchmark, "version": int(version),
                    "report": report,
                })
            known.update({p["step"]: p for p in points})
            self._add_version(benchmark, int(version), [known[s] for s in sorted(known)],
                              report, t)
            self._render(plots=True)

    def log_observation(self, observation: Observation, forecast: ForecastPoint | None) -> None:
        """Record an observed accuracy and the forecast point it was compared with."""
        with self._lock:
            self._ensure_started()
            row = _observation_row(observation, forecast)
            if self._add_observation(row):
                self._append("observations.csv", OBSERVATION_FIELDS, [row])
            now = time.monotonic()
            if now - self._last_plot >= self.plot_interval_s:
                self._render(plots=True)
            elif now - self._last_render >= self.render_interval_s:
                self._render(plots=False)

    def log_run_forecast(self, observation: Observation, one_step: ForecastPoint | None,
                         final: FinalForecast | None) -> None:
        """Record the run-conditioned forecasts of one judged checkpoint
        (``final_forecasts.csv``: the forecast of the final accuracy made after it, the
        ladder's beside it, and the one-step forecast it was judged against)."""
        if final is None:
            return
        with self._lock:
            self._ensure_started()
            row = {"time": _now(), "benchmark": observation.benchmark, **{
                k: getattr(final, k) for k in FINAL_FIELDS[2:13]}}
            row.update(one_step=None if one_step is None else one_step.value,
                       one_step_lower=None if one_step is None else one_step.lower,
                       one_step_upper=None if one_step is None else one_step.upper)
            if self._add_final(row):
                self._append("final_forecasts.csv", FINAL_FIELDS, [row])

    def log_alert(self, alert: Alert) -> None:
        """Record an alert and re-render the report."""
        with self._lock:
            self._ensure_started()
            row = {
                "time": _now(), "benchmark": alert.benchmark, "step": int(alert.step),
                "reason": getattr(alert.reason, "value", str(alert.reason)),
                "observed": alert.observed, "lower": alert.lower, "upper": alert.upper,
                "message": alert.message,
            }
            if self._add_alert(row):
                self._append("alerts.csv", ALERT_FIELDS, [row])
            self._render(plots=False)

    def finish(self, summary: dict) -> None:
        """Write ``summary.json`` and the final plots and report. Idempotent."""
        with self._lock:
            if self._finished:
                return
            self._ensure_started()
            self._summary = dict(summary or {})
            self._finished = True
            # atomic: CODMonitor writes the same summary to its own out_dir, which is
            # often this one
            atomic_write(os.path.join(self.out_dir, "summary.json"),
                         json.dumps(self._summary, indent=2, default=json_default))
            self._render(plots=True)

    # ------------------------------------------------------------------ state
    def _ensure_started(self):
        if not self._started:
            self.start({})

    def _bench(self, name: str) -> dict:
        return self._benchmarks.setdefault(
            name, {"version": None, "curve": [], "report": None, "observations": [],
                   "versions": []}
        )

    def _add_version(self, benchmark, version, points, report, t):
        self._curves[(benchmark, version)] = points
        b = self._bench(benchmark)
        last = max(points, key=lambda p: p["step"]) if points else {}
        b["versions"] = [v for v in b["versions"] if v["version"] != version] + [{
            "version": version, "time": t, "final_value": last.get("value"),
            "final_lower": last.get("lower"), "final_upper": last.get("upper"),
        }]
        b["versions"].sort(key=lambda v: v["version"])
        if b["version"] is None or version >= b["version"]:
            b["version"], b["curve"], b["report"] = version, points, report

    def _add_observation(self, row) -> bool:
        """Insert or replace; True when (benchmark, step) is new."""
        return _upsert_by_step(self._bench(row["benchmark"])["observations"], row)

    def _add_final(self, row) -> bool:
        """Insert or replace a run-conditioned final forecast; True when its step is new."""
        return _upsert_by_step(self._bench(row["benchmark"]).setdefault("finals", []), row)

    def _add_alert(self, row) -> bool:
        key = (row["benchmark"], row["step"], row["reason"], row["message"])
        if key in self._alert_keys:
            return False
        self._alert_keys.add(key)
        self._alerts.append(row)
        return True

    def _load(self):
        """Read back the files of an earlier run in ``out_dir``."""
        fc: dict[tuple[str, int], list[dict]] = {}
        times: dict[tuple[str, int], str] = {}
        for r in self._read_csv("forecasts.csv"):
            key = (r["benchmark"], int(_num(r["version"])))
            fc.setdefault(key, []).append(
                {k: _num(r[k]) for k in ("step", "compute", "value", "lower", "upper")}
                | {"version": key[1], "mode": r.get("mode") or "compute"}
            )
            times[key] = r["time"]
        reports, report_times = {}, {}
        path = os.path.join(self.out_dir, "forecast_reports.jsonl")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                for line in f:
                    try:
                        d = json.loads(line)
                    except json.JSONDecodeError:
                        continue  # a torn last line after a crash
                    key = (d["benchmark"], int(d["version"]))
                    reports[key], report_times[key] = d.get("report"), d.get("time", "")
        for key in sorted(set(fc) | set(reports), key=lambda k: k[1]):
            self._add_version(key[0], key[1], fc.get(key, []), reports.get(key),
                              times.get(key) or report_times.get(key, ""))
        for r in self._read_csv("observations.csv"):
            row = {k: (_num(v) if k not in ("time", "benchmark", "status") else v)
                   for k, v in r.items()}
            self._add_observation(row)
        for r in self._read_csv("final_forecasts.csv"):
            self._add_final({k: (v if k in ("time", "benchmark") else _num(v))
                             for k, v in r.items()})
        for r in self._read_csv("alerts.csv"):
            row = {k: (_num(v) if k in ("step", "observed", "lower", "upper") else v)
                   for k, v in r.items()}
            self._add_alert(row)

    # ------------------------------------------------------------------ files
    def _read_csv(self, name):
        path = os.path.join(self.out_dir, name)
        if not os.path.exists(path):
            return []
        with open(path, newline="", encoding="utf-8") as f:
            return [r for r in csv.DictReader(f) if None not in r.values()]

    def _append(self, name, fields, rows):
        if not rows:
            return
        path = os.path.join(self.out_dir, name)
        new = not os.path.exists(path) or os.path.getsize(path) == 0
        with open(path, "a", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
            if new:
                w.writeheader()
            for r in rows:
                w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in fields})
            f.flush()

    def _append_jsonl(self, name, record):
        with open(os.path.join(self.out_dir, name), "a", encoding="utf-8") as f:
            f.write(json.dumps(record, default=json_default) + "\n")
            f.flush()

    # ------------------------------------------------------------------ rendering
    def _render(self, *, plots: bool):
        self._last_render = time.monotonic()
        if plots and self._plots_ok:
            self._last_plot = self._last_render
            for name, b in self._benchmarks.items():
                try:
                    self._plot(name, b)
                except ImportError:
                    self._plots_ok = False
                    logger.warning("%s PNG plots are off.", MissingExtraError(*_PLOTS))
                    break
                except Exception:  # a plot must never take the monitor down
                    logger.warning("Plotting %r failed.", name, exc_info=True)
        write_report(
            self.report_path, run_info=self._run_info, benchmarks=self._benchmarks,
            alerts=self._alerts, summary=self._summary, finished=self._finished,
            title=self.title,
        )

    def _plot(self, name: str, b: dict) -> str | None:
        MissingExtraError.check(*_PLOTS)
        # The object-oriented API with an Agg canvas: no pyplot, no global backend switch.
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        curve = sorted(b["curve"], key=lambda p: p["step"])
        obs = sorted(b["observations"], key=lambda o: o["step"])
        report = b["report"] or {}
        if not curve and not obs:
            return None
        fig = Figure(figsize=(12, 4.6), dpi=100, layout="constrained")
        FigureCanvasAgg(fig)
        ax1, ax2 = fig.subplots(1, 2)
        if curve:
            s = [p["step"] for p in curve]
            ax1.fill_between(s, [p["lower"] for p in curve], [p["upper"] for p in curve],
                             color="#9ecae1", alpha=0.5, lw=0, label="forecast interval")
            ax1.plot(s, [p["value"] for p in curve], color="#08519c", lw=2, label="forecast")
        if obs:
            colors = {"below": "#d73027", "above": "#4575b4", "in band": "#1a9850"}
            ax1.scatter([o["step"] for o in obs], [o["accuracy"] for o in obs], s=22, zorder=3,
                        c=[colors.get(o.get("status") or "", "#333") for o in obs],
                        edgecolors="white", linewidths=0.6, label="observed")
        ax1.set(xlabel="training step", ylabel="accuracy",
                title=f"{name}: forecast v{b['version']} vs observed"
                if b["version"] is not None else f"{name}: observed")
        ax1.grid(alpha=0.3)
        ax1.legend(loc="lower right", fontsize=8)

        models = [m for m in report.get("models", []) if m.get("compute")]
        comp = [m["compute"] for m in models] + [p["compute"] for p in curve if p["compute"] > 0]
        if report.get("clusters") and comp:
            grid = np.logspace(np.log10(min(comp) / 2), np.log10(max(comp) * 2), 120)
            curves = cluster_curves(report, grid)
            for cl in report["clusters"]:
                k = int(cl["cluster"])
                kept = cl.get("verdict") == "kept"
                color = PALETTE[k % len(PALETTE)]
                if k in curves:
                    ax2.plot(grid, curves[k], color=color, lw=1.6 if kept else 1.2,
                             ls="-" if kept else "--", alpha=1.0 if kept else 0.6,
                             label=f"C{k} n={cl.get('size')} ({cl.get('verdict')})")
                ax2.scatter([m["compute"] for m in models], cl.get("accuracy", [])[:len(models)],
                            s=10, color=color, alpha=1.0 if kept else 0.5)
            ax2.scatter([m["compute"] for m in models], [m["full_accuracy"] for m in models],
                        marker="s", color="#222", s=24, zorder=3, label="ladder (full set)")
            if curve:
                cc = sorted(curve, key=lambda p: p["compute"])
                ax2.plot([p["compute"] for p in cc], [p["value"] for p in cc], color="#222",
                         lw=2, label="run forecast")
            pts = [o for o in obs if o.get("compute") and o["compute"] > 0]
            if pts:
                ax2.scatter([o["compute"] for o in pts], [o["accuracy"] for o in pts], s=18,
                            facecolors="white", edgecolors="#222", zorder=4, label="observed")
            ax2.set_xscale("log")
            ax2.set(xlabel="training compute (FLOPs)", ylabel="accuracy", ylim=(0, 1),
                    title="per-cluster laws")
            ax2.grid(alpha=0.3)
            ax2.legend(fontsize=7, loc="upper left", ncol=2)
        else:
            ax2.set_axis_off()
        path = os.path.join(self.out_dir, "plots", f"{_safe_name(name)}.png")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + ".tmp.png"
        fig.savefig(tmp)
        os.replace(tmp, path)
        return path


def _upsert_by_step(rows: list, row: dict) -> bool:
    """Replace the row of ``row["step"]`` in ``rows`` or append it; True when appended."""
    for i, r in enumerate(rows):
        if r["step"] == row["step"]:
            rows[i] = row
            return False
    rows.append(row)
    return True


def _point_dict(p) -> dict:
    d = dataclasses.asdict(p) if dataclasses.is_dataclass(p) else dict(p)
    return {
        "step": int(d["step"]), "compute": float(d["compute"]), "value": float(d["value"]),
        "lower": float(d["lower"]), "upper": float(d["upper"]),
        "version": int(d.get("version", 0)), "mode": d.get("mode", "compute"),
    }


def _observation_row(o: Observation, f: ForecastPoint | None) -> dict:
    acc = float(o.accuracy)
    row = {"time": _now(), "benchmark": o.benchmark, "step": int(o.step),
           "compute": float(o.compute), "accuracy": acc, "forecast": None, "lower": None,
           "upper": None, "version": None, "residual": None, "status": ""}
    if f is not None:
        row.update(forecast=float(f.value), lower=float(f.lower), upper=float(f.upper),
                   version=int(f.version), residual=acc - float(f.value),
                   status=_status(acc, float(f.lower), float(f.upper)))
    return row

