"""Static, self-contained HTML report of a monitored run.

One file, no network: charts are inline SVG drawn here, styles are inline, and no
script runs (the data behind the page is embedded as an inert
``<script type="application/json" id="cod-report-data">`` block so tools can read the
numbers back). Needs only numpy and the standard library. The markup's building blocks
(escaping, number formats, the SVG chart frame, tables, the stylesheet) are in
:mod:`cod_monitor.trackers._html_markup`; this module decides what the report shows.

The input is plain Python (dicts, lists, numbers, strings), the shape that
:class:`~cod_monitor.trackers.local.LocalTracker` keeps in memory:

``benchmarks``
    ``{name: {"version": int | None, "curve": [point, ...], "report": dict | None,
    "observations": [obs, ...], "versions": [version_row, ...]}}`` where a *point* has
    the fields of :class:`~cod_monitor.records.ForecastPoint` (``step, compute, value,
    lower, upper, version, mode``), an *obs* has ``step, compute, accuracy`` and
    optionally ``forecast, lower, upper, version``, and a *version_row* has ``version,
    time, final_value, final_lower, final_upper``. An optional ``"finals"`` list holds
    the run-conditioned forecasts of the final accuracy, one per judged checkpoint
    (the fields of :class:`~cod_monitor.records.FinalForecast`). ``report`` is
    :meth:`CODForecaster.report() <cod_monitor.cod.forecaster.CODForecaster.report>`.
``alerts``
    ``[{"time", "step", "benchmark", "reason", "message", "observed", "lower", "upper",
    "suppressed"?}, ...]``.
"""

from __future__ import annotations

import json
import math
import os
from datetime import datetime, timezone

import numpy as np

from cod_monitor._io import atomic_write, json_default, to_jsonable
from cod_monitor.cod.laws import expected_accuracy
from cod_monitor.trackers._html_markup import (
    HEIGHT,
    MARGIN_BOTTOM,
    STYLESHEET,
    Axes,
    card,
    chart_legend,
    esc,
    fmt_acc,
    fmt_num,
    html_table,
    is_finite,
    kv_table,
    svg_chart,
    svg_frame,
    svg_polyline,
)

__all__ = ["cluster_curves", "final_chart", "render_report", "write_report"]

# Okabe-Ito-like palette, readable on white and for colour-blind readers.
PALETTE = (
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9",
    "#D55E00", "#F0E442", "#7F3C8D", "#11A579", "#3969AC",
)
_BAND = "#9ecae1"
_FORECAST = "#08519c"
_IN_BAND = "#1a9850"
_BELOW = "#d73027"
_ABOVE = "#4575b4"


def _status(observed, lower, upper) -> str:
    """``'in band'``, ``'below'``, ``'above'`` or ``''`` when there is no band."""
    if not (is_finite(observed) and is_finite(lower) and is_finite(upper)):
        return ""
    if observed < lower:
        return "below"
    if observed > upper:
        return "above"
    return "in band"


# --------------------------------------------------------------------------- numerics
def cluster_curves(report: dict, compute) -> dict:
    """Expected accuracy of every fitted cluster law at ``compute`` (FLOPs).

    Parameters
    ----------
    report : dict
        :meth:`CODForecaster.report() <cod_monitor.cod.forecaster.CODForecaster.report>`.
    compute : array_like of shape (n,)
        Compute in FLOPs.

    Returns
    -------
    dict of int to ndarray of shape (n,)
        Cluster index to accuracy; clusters without a finite law are left out.
    """
    unit = float(report.get("compute_unit") or 1.0)
    c = np.asarray(compute, dtype=float) / unit
    out = {}
    for cl in report.get("clusters", []):
        law = cl.get("law") or {}
        params = [law.get(k) for k in ("a", "b", "c", "g")]
        if not all(is_finite(p) for p in params):
            continue
        a, b, cc, g = params
        out[int(cl["cluster"])] = np.clip(expected_accuracy(c, a, b, cc, g), 0.0, 1.0)
    return out


def _compute_range(report, curve, observations):
    vals = [m["compute"] for m in (report or {}).get("models", []) if is_finite(m.get("compute"))]
    vals += [p["compute"] for p in curve if is_finite(p.get("compute")) and p["compute"] > 0]
    vals += [o["compute"] for o in observations if is_finite(o.get("compute")) and o["compute"] > 0]
    vals = [v for v in vals if v > 0]
    if not vals:
        return None
    return min(vals) / 2.0, max(vals) * 2.0


def _merge_curve(curve, observations) -> list[dict]:
    """The curve plus the forecasts attached to observations of the curve's version.

    A monitor that does not know the run's length sends a curve that ends at the last
    evaluated checkpoint; the forecasts of later observations extend it.
    """
    pts = {p["step"]: p for p in curve if is_finite(p.get("step"))}
    version = max((p.get("version", 0) for p in curve), default=None)
    for o in observations:
        if (o.get("step") not in pts and is_finite(o.get("forecast")) and is_finite(o.get("lower"))
                and is_finite(o.get("upper")) and (version is None or o.get("version") == version)):
            pts[o["step"]] = {"step": o["step"], "compute": o.get("compute"),
                              "value": o["forecast"], "lower": o["lower"], "upper": o["upper"]}
    return [pts[s] for s in sorted(pts)]


# --------------------------------------------------------------------------- charts
def forecast_chart(curve: list, observations: list, alerts: list = ()) -> str:
    """Forecast band, forecast line and observed accuracy against the training step.

    Returns
    -------
    str
        An inline ``<svg>`` element (empty string when there is nothing to draw).
    """
    pts = _merge_curve(curve, observations)
    obs = sorted((o for o in observations if is_finite(o.get("accuracy"))), key=lambda o: o["step"])
    if not pts and not obs:
        return ""
    xs = [p["step"] for p in pts] + [o["step"] for o in obs]
    ys = [v for p in pts for v in (p["lower"], p["upper"], p["value"]) if is_finite(v)]
    ys += [o["accuracy"] for o in obs]
    ylo, yhi = min(ys), max(ys)
    pad = max(0.02, 0.08 * (yhi - ylo))
    ax = Axes(min(0, min(xs)), max(xs), max(0.0, ylo - pad), min(1.0, yhi + pad))
    body = svg_frame(ax, "training step", "accuracy")
    band = [p for p in pts if is_finite(p["lower"]) and is_finite(p["upper"])]
    if band:
        poly = [(ax.x(p["step"]), ax.y(p["upper"])) for p in band]
        poly += [(ax.x(p["step"]), ax.y(p["lower"])) for p in reversed(band)]
        body.append(
            '<polygon class="band" points="'
            + " ".join(f"{x:.1f},{y:.1f}" for x, y in poly)
            + f'" fill="{_BAND}" fill-opacity="0.45" stroke="none"/>'
        )
    if pts:
        body.append(
            svg_polyline([(ax.x(p["step"]), ax.y(p["value"])) for p in pts], _FORECAST,
                         cls="forecast")
        )
    for a in alerts:
        if a.get("reason") == "below_band" and is_finite(a.get("step")):
            x = ax.x(a["step"])
            body.append(
                f'<path class="alert-mark" d="M{x:.1f},{HEIGHT - MARGIN_BOTTOM - 1} l-5,-9 h10 z" '
                f'fill="{_BELOW}">'
                f"<title>{esc(a.get('message', ''))}</title></path>"
            )
    for o in obs:
        st = _status(o["accuracy"], o.get("lower"), o.get("upper"))
        color = {"below": _BELOW, "above": _ABOVE}.get(st, _IN_BAND if st else "#333")
        tip = f"step {o['step']}: observed {o['accuracy']:.3f}"
        if is_finite(o.get("forecast")):
            tip += (f", forecast {o['forecast']:.3f} "
                    f"[{fmt_acc(o.get('lower'))}, {fmt_acc(o.get('upper'))}]")
        body.append(
            f'<circle class="obs" cx="{ax.x(o["step"]):.1f}" cy="{ax.y(o["accuracy"]):.1f}" r="4" '
            f'fill="{color}" stroke="#fff" stroke-width="1" data-step="{o["step"]}" '
            f'data-accuracy="{o["accuracy"]:.6f}"><title>{esc(tip)}</title></circle>'
        )
    legend = [(_BAND, "forecast interval", "band"), (_FORECAST, "forecast", "line"),
              (_IN_BAND, "observed (in band)", "dot"), (_BELOW, "observed (below)", "dot"),
              (_ABOVE, "observed (above)", "dot")]
    return svg_chart(body, "forecast versus observed accuracy") + chart_legend(legend)


def final_chart(finals: list) -> str:
    """The forecast of the final accuracy against the step it was made at: the
    run-conditioned forecast and its band, and the ladder-only forecast (dashed).

    Returns
    -------
    str
        An inline ``<svg>`` element (empty string when there is nothing to draw).
    """
    rows = sorted((f for f in finals if is_finite(f.get("value"))), key=lambda f: f["step"])
    if not rows:
        return ""
    ys = [v for f in rows for v in (f.get("lower"), f.get("upper"), f["value"],
                                     f.get("prior_value")) if is_finite(v)]
    ylo, yhi = min(ys), max(ys)
    pad = max(0.02, 0.08 * (yhi - ylo))
    ax = Axes(0, max(max(f["step"] for f in rows), 1), max(0.0, ylo - pad), min(1.0, yhi + pad))
    body = svg_frame(ax, "training step (forecast made after)", "final accuracy")
    band = [f for f in rows if is_finite(f.get("lower")) and is_finite(f.get("upper"))]
    if band:
        poly = [(ax.x(f["step"]), ax.y(f["upper"])) for f in band]
        poly += [(ax.x(f["step"]), ax.y(f["lower"])) for f in reversed(band)]
        body.append('<polygon class="band" points="'
                    + " ".join(f"{x:.1f},{y:.1f}" for x, y in poly)
                    + f'" fill="{_BAND}" fill-opacity="0.45" stroke="none"/>')
    body.append(svg_polyline([(ax.x(f["step"]), ax.y(f["value"])) for f in rows], _FORECAST,
                             cls="final"))
    prior = [f for f in rows if is_finite(f.get("prior_value"))]
    if prior:
        body.append(svg_polyline([(ax.x(f["step"]), ax.y(f["prior_value"])) for f in prior],
                                 "#555", dash="5,4", cls="final-ladder"))
    legend = [(_BAND, "interval", "band"), (_FORECAST, "forecast of the final accuracy", "line"),
              ("#555", "ladder only", "line")]
    return svg_chart(body, "forecast of the final accuracy by step") + chart_legend(legend)


def cluster_chart(report: dict, curve: list = (), observations: list = ()) -> str:
    """Per-cluster fitted laws against compute, with the ladder's points.

    Clusters kept by the extrapolatable filter are drawn solid, the others dashed.
    The full-set ladder accuracy (black squares), the run's forecast (black line) and its
    observed accuracy (dots) are drawn on the same compute axis.
    """
    if not report or not report.get("clusters"):
        return ""
    rng = _compute_range(report, curve, observations)
    if rng is None:
        return ""
    grid = np.logspace(math.log10(rng[0]), math.log10(rng[1]), 80)
    curves = cluster_curves(report, grid)
    models = [m for m in report.get("models", []) if is_finite(m.get("compute")) and m["compute"] > 0]
    ax = Axes(rng[0], rng[1], 0.0, 1.0, logx=True)
    body = svg_frame(ax, "training compute (FLOPs)", "accuracy")
    legend = []
    for cl in report["clusters"]:
        k = int(cl["cluster"])
        color = PALETTE[k % len(PALETTE)]
        kept = cl.get("verdict") == "kept"
        if k in curves:
            body.append(
                svg_polyline([(ax.x(c), ax.y(v)) for c, v in zip(grid, curves[k])], color,
                             width=1.8 if kept else 1.4, dash=None if kept else "5,4",
                             opacity=1.0 if kept else 0.6, cls=f"cluster-curve c{k}")
            )
        for m, acc in zip(models, cl.get("accuracy", [])):
            if is_finite(acc):
                body.append(
                    f'<circle cx="{ax.x(m["compute"]):.1f}" cy="{ax.y(acc):.1f}" r="2.6" '
                    f'fill="{color}" fill-opacity="{1.0 if kept else 0.5}"/>'
                )
        legend.append((color, f"C{k} (n={cl.get('size')}, {cl.get('verdict')})",
                       "line" if kept else "dash"))
    for m in models:
        if is_finite(m.get("full_accuracy")):
            x, y = ax.x(m["compute"]), ax.y(m["full_accuracy"])
            body.append(
                f'<rect class="ladder" x="{x - 3.5:.1f}" y="{y - 3.5:.1f}" width="7" height="7" '
                f'fill="#222"><title>{esc(m.get("name", ""))}: {m["full_accuracy"]:.3f}</title></rect>'
            )
    pts = sorted((p for p in curve if is_finite(p.get("compute")) and p["compute"] > 0),
                 key=lambda p: p["compute"])
    if pts:
        body.append(svg_polyline([(ax.x(p["compute"]), ax.y(p["value"])) for p in pts], "#222",
                                 width=2.2, cls="run-forecast"))
    for o in observations:
        if is_finite(o.get("compute")) and o["compute"] > 0 and is_finite(o.get("accuracy")):
            body.append(
                f'<circle cx="{ax.x(o["compute"]):.1f}" cy="{ax.y(o["accuracy"]):.1f}" r="3" '
                f'fill="#fff" stroke="#222" stroke-width="1.2"/>'
            )
    legend += [("#222", "ladder (full set)", "dot"), ("#222", "run forecast", "line")]
    return svg_chart(body, "per-cluster scaling laws") + chart_legend(legend)


# --------------------------------------------------------------------------- tables
def _cluster_table(report: dict, final_compute) -> str:
    at = {}
    if is_finite(final_compute):
        at = {k: float(v[0]) for k, v in cluster_curves(report, [final_compute]).items()}
    rows = []
    for cl in report.get("clusters", []):
        k = int(cl["cluster"])
        law = cl.get("law") or {}
        g, c = law.get("g"), law.get("c")
        ceiling = g + (1 - g) * math.exp(-c) if is_finite(g) and is_finite(c) else None
        verdict = cl.get("verdict", "")
        rows.append([
            f'<span class="sw dot" style="background:{PALETTE[k % len(PALETTE)]}"></span>C{k}',
            fmt_num(cl.get("size")),
            f'<span class="verdict {"kept" if verdict == "kept" else "dropped"}">{esc(verdict)}</span>',
            *(fmt_num(law.get(p)) for p in ("a", "b", "c", "g")),
            fmt_num(law.get("rmse")),
            fmt_acc(ceiling),
            fmt_acc(at.get(k)),
            esc(cl.get("detail", "")),
        ])
    return html_table(
        ["cluster", "size", "verdict", "a", "b", "c", "g", "rmse", "ceiling",
         "at final compute", "detail"],
        rows, "clusters",
    )


def _observation_table(observations, limit: int = 200) -> str:
    rows = []
    for o in sorted(observations, key=lambda o: o["step"], reverse=True)[:limit]:
        st = _status(o.get("accuracy"), o.get("lower"), o.get("upper"))
        resid = (o["accuracy"] - o["forecast"]) if is_finite(o.get("forecast")) else None
        rows.append([
            fmt_num(o["step"]), fmt_num(o.get("compute")), fmt_acc(o.get("accuracy")),
            fmt_acc(o.get("forecast")),
            f"[{fmt_acc(o.get('lower'))}, {fmt_acc(o.get('upper'))}]" if is_finite(o.get("lower")) else "–",
            f"{resid:+.3f}" if resid is not None else "–",
            f'<span class="st {st.replace(" ", "-")}">{esc(st or "–")}</span>',
        ])
    return html_table(["step", "compute", "observed", "forecast", "interval", "residual", "status"],
                      rows, "observations")


# --------------------------------------------------------------------------- page
def _benchmark_section(name: str, b: dict, alerts: list) -> str:
    curve = list(b.get("curve") or [])
    obs = list(b.get("observations") or [])
    report = b.get("report") or {}
    bench_alerts = [a for a in alerts if a.get("benchmark") == name and not a.get("suppressed")]
    last = max(obs, key=lambda o: o["step"]) if obs else None
    final = max(curve, key=lambda p: p["step"]) if curve else None
    cards = []
    if last is not None:
        cards.append(card(fmt_acc(last["accuracy"]), f"observed @ step {fmt_num(last['step'])}"))
        if is_finite(last.get("forecast")):
            cards.append(card(
                f"{fmt_acc(last['forecast'])} <small>[{fmt_acc(last.get('lower'))}, "
                f"{fmt_acc(last.get('upper'))}]</small>", "forecast there"))
            st = _status(last["accuracy"], last.get("lower"), last.get("upper"))
            cards.append(card(f'<span class="st {st.replace(" ", "-")}">{esc(st)}</span>', "status"))
    finals = sorted(b.get("finals") or [], key=lambda f: f["step"])
    if finals:
        f = finals[-1]
        cards.append(card(
            f"{fmt_acc(f['value'])} <small>[{fmt_acc(f.get('lower'))}, "
            f"{fmt_acc(f.get('upper'))}]</small>",
            f"final @ step {fmt_num(f.get('final_step'))}, learned from the run"))
    if final is not None:
        cards.append(card(
            f"{fmt_acc(final['value'])} <small>[{fmt_acc(final['lower'])}, "
            f"{fmt_acc(final['upper'])}]</small>",
            f"final forecast @ step {fmt_num(final['step'])}"
            + (" (ladder only)" if finals else "")))
    if b.get("version") is not None:
        cards.append(card(esc(b["version"]), "forecast version"))
    if report:
        cards.append(card(f"{report.get('n_kept', '–')}/{report.get('n_clusters', '–')}",
                          "clusters kept"))
        if is_finite(report.get("subset_share")):
            cards.append(card(f"{report['subset_share']:.0%}", "predictable subset"))
    cards.append(card(str(len(bench_alerts)), "alerts"))

    parts = [f'<section class="benchmark" id="bench-{esc(name)}"><h2>{esc(name)}</h2>',
             f'<div class="cards">{"".join(cards)}</div>', '<div class="charts">']
    fc = forecast_chart(curve, obs, bench_alerts)
    if fc:
        parts.append(f"<div><h3>Forecast vs observed</h3>{fc}</div>")
    ff = final_chart(finals)
    if ff:
        parts.append(f"<div><h3>Forecast of the final accuracy</h3>{ff}</div>")
    cc = cluster_chart(report, curve, obs)
    if cc:
        parts.append(f"<div><h3>Per-cluster laws (compute view)</h3>{cc}</div>")
    parts.append("</div>")
    if report.get("clusters"):
        parts.append(f"<h3>Clusters (forecast version {esc(b.get('version'))})</h3>")
        parts.append(_cluster_table(report, final["compute"] if final else None))
        mp = report.get("mapping") or {}
        if mp:
            parts.append(
                f'<p class="muted">Subset-to-full mapping: {esc(mp.get("method"))}, '
                f'rmse {fmt_num(mp.get("rmse"))}; outliers {esc(report.get("n_outliers"))} of '
                f'{esc(report.get("n_samples"))} samples.</p>'
            )
    versions = b.get("versions") or []
    if len(versions) > 1:
        rows = [[esc(v["version"]), esc(v.get("time", "")), fmt_acc(v.get("final_value")),
                 f"[{fmt_acc(v.get('final_lower'))}, {fmt_acc(v.get('final_upper'))}]"]
                for v in versions]
        parts.append("<h3>Forecast versions</h3>")
        parts.append(html_table(["version", "time", "final forecast", "interval"], rows, "versions"))
    if obs:
        shown = f"latest 200 of {len(obs)}" if len(obs) > 200 else str(len(obs))
        parts.append(f"<details open><summary>Observations ({shown})</summary>")
        parts.append(_observation_table(obs) + "</details>")
    parts.append("</section>")
    return "".join(parts)


def _run_status(summary: dict | None, finished: bool) -> str:
    """``running``; when finished, the summary's status (``stopped by drift at step 6``)."""
    summary = summary or {}
    status = summary.get("status")
    if not finished and status in (None, "running", "finished"):
        return "running"  # a summary passed before the end (or an old one) says no more
    words = str(status or "finished").replace("_", " ")
    if summary.get("stopped_at") is not None:
        words += f" at step {summary['stopped_at']}"
    return words


def render_report(
    *,
    run_info: dict | None = None,
    benchmarks: dict | None = None,
    alerts: list | None = None,
    summary: dict | None = None,
    finished: bool = False,
    generated_at: str | None = None,
    title: str = "COD monitor report",
) -> str:
    """Render the report as one self-contained HTML document.

    Parameters
    ----------
    run_info : dict, optional
        What the monitor passed to ``Tracker.start`` (benchmarks, ladder summary,
        out_dir, ...).
    benchmarks : dict, optional
        Per-benchmark state (see the module docstring).
    alerts : list of dict, optional
        Alerts, oldest first.
    summary : dict, optional
        What the monitor passed to ``Tracker.finish``.
    finished : bool, default False
        Whether the monitor has finished; the header then shows the summary's
        ``status`` (``finished``, ``stopped by drift at step N``, ...).
    generated_at : str, optional
        Timestamp shown in the header; defaults to now (UTC).
    title : str, default 'COD monitor report'

    Returns
    -------
    str
        The HTML document.
    """
    run_info, benchmarks, alerts = run_info or {}, benchmarks or {}, alerts or []
    generated_at = generated_at or datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    meta = [f"status: <b>{esc(_run_status(summary, finished))}</b>"]
    if (summary or {}).get("drift_detected"):
        meta.append('<span class="st below">drift detected</span>')
    meta.append(f"generated {esc(generated_at)}")
    for key in ("run_name", "out_dir"):
        if run_info.get(key):
            meta.append(f"{key.replace('_', ' ')}: {esc(run_info[key])}")
    parts = [
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>{esc(title)}</title>",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<style>{STYLESHEET}</style></head><body>",
        f'<header><h1>{esc(title)}</h1><div class="meta">{" · ".join(meta)}</div></header><main>',
    ]
    if not benchmarks:
        parts.append('<section><p class="muted">No forecast or observation yet.</p></section>')
    # in the order the benchmarks were given (the monitor's eval-set order: a caller's
    # main benchmark first), not alphabetical
    for name in benchmarks:
        parts.append(_benchmark_section(name, benchmarks[name], alerts))

    parts.append(f'<section id="alerts"><h2>Alerts ({sum(not a.get("suppressed") for a in alerts)})</h2>')
    if alerts:
        items = []
        for a in reversed(alerts):
            sup = ' <span class="muted">(suppressed by cooldown)</span>' if a.get("suppressed") else ""
            items.append(
                f'<li class="{esc(a.get("reason", ""))}"><b>{esc(a.get("benchmark", ""))}</b> · '
                f'step {fmt_num(a.get("step"))} · {esc(a.get("reason", ""))} · '
                f'<span class="muted">{esc(a.get("time", ""))}</span><br>{esc(a.get("message", ""))}{sup}</li>'
            )
        parts.append(f'<ul class="alerts">{"".join(items)}</ul>')
    else:
        parts.append('<p class="muted">No alert.</p>')
    parts.append("</section>")

    parts.append('<section id="summary"><h2>Run summary</h2>')
    if summary:
        parts.append(kv_table(summary))
    info = {k: v for k, v in run_info.items() if k not in ("run_name", "out_dir")}
    if info:
        parts.append("<h3>Run info</h3>" + kv_table(info))
    if not summary and not info:
        parts.append('<p class="muted">The run has not finished.</p>')
    parts.append("</section></main>")

    data = {"run_info": run_info, "benchmarks": benchmarks, "alerts": alerts,
            "summary": summary or {}, "finished": finished, "generated_at": generated_at}
    blob = json.dumps(to_jsonable(data), default=json_default, allow_nan=False)
    # Inert inside <script type="application/json">: no "<" can open or close a tag.
    blob = blob.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    parts.append(f'<script type="application/json" id="cod-report-data">{blob}</script>')
    parts.append("</body></html>")
    return "".join(parts)


def write_report(path, **kwargs) -> str:
    """Render with :func:`render_report` and write atomically to ``path``.

    Returns
    -------
    str
        ``path``.
    """
    text = render_report(**kwargs)
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    atomic_write(path, text)
    return path
