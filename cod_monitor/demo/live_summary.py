"""What the live demo says: its console lines, its summary and the final comparison.

While :func:`cod_monitor.demo.live.run_live_demo` trains, :class:`ConsoleTracker` prints
every evaluated checkpoint against its forecast band and every alert. Once the monitor
is closed, :func:`summarize` compares forecast and observation per benchmark (the
``summary.json`` keys of :data:`SUMMARY_KEYS` and more), :func:`finished_forecasts` adds
the finished-model forecasts of COD and the baselines, and :func:`print_summary`
prints the result.

Importing this module imports neither torch nor transformers nor wandb.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

from cod_monitor.cod.configs import DEFAULT_CONFIGURATIONS

__all__ = [
    "FINISHED_METHODS",
    "SUMMARY_KEYS",
    "ConsoleTracker",
    "echo",
    "finished_forecasts",
    "print_summary",
    "summarize",
]

#: Keys of ``summary.json`` that the CLI documents (others may be added).
SUMMARY_KEYS = ("forecast_final", "observed_final", "abs_error_pts", "trajectory_mae_pts",
                "alerts", "wandb_run_dir", "report_html", "wall_s", "observed_final_smoothed",
                "final_forecast_by_progress")

#: Finished-model forecasters the demo reports beside the monitor's forecast: COD and the
#: baselines, as ``cod-monitor predict --target`` runs them.
FINISHED_METHODS = (DEFAULT_CONFIGURATIONS["predict"], "e2e-exp", "e2e-passrate", "bnsl",
                    "loss-intermediate")


# ------------------------------------------------------------------ console output


class ConsoleTracker:
    """A :class:`~cod_monitor.trackers.base.Tracker` that prints the run as it goes.

    One line per evaluated checkpoint of the main benchmark (observed accuracy, the
    forecast it was judged against and, with a run-conditioned monitor, the forecast of
    the final accuracy beside the ladder's) and one per alert of any benchmark; alerts
    are also kept in :attr:`alerts` for the summary.

    Parameters
    ----------
    benchmark : str
        The benchmark whose observations are printed (all alerts are printed).
    write : callable, default print to stdout
        ``write(line)``.

    Attributes
    ----------
    alerts : list of dict
        ``{"reason", "message", "step", "benchmark"}`` per alert, in order.
    """

    def __init__(self, benchmark: str, write: Callable[[str], None] | None = None):
        self.benchmark = benchmark
        self.write = write or echo
        self.alerts: list[dict] = []
        self._conditioned = False
        self._line: str | None = None
        self._ladder_band = ""

    def start(self, run_info: dict) -> None:  # noqa: D102 - see Tracker
        # a run-conditioned monitor follows each observation with log_run_forecast,
        # which ends the checkpoint's line
        self._conditioned = bool(run_info.get("condition_on_run"))

    def log_forecast(self, benchmark, version, curve, report) -> None:  # noqa: D102
        if benchmark == self.benchmark and curve:
            last = curve[-1]
            self.write(f"forecast v{version} for {benchmark!r}: {last.value:.3f} "
                       f"[{last.lower:.3f}, {last.upper:.3f}] at step {last.step} "
                       f"({report.get('trajectory', {}).get('mode', '?')} mode)")

    def log_observation(self, observation, forecast) -> None:  # noqa: D102
        if observation.benchmark != self.benchmark:
            return
        band = ("no forecast" if forecast is None else
                f"forecast {forecast.value:.3f} [{forecast.lower:.3f}, {forecast.upper:.3f}]")
        line = f"  step {observation.step:>6}  {self.benchmark}: observed {observation.accuracy:.3f}"
        if self._conditioned:
            self._ladder_band = band
            self._line = line
        else:
            self.write(f"{line}  {band}")

    def log_run_forecast(self, observation, one_step, final) -> None:  # noqa: D102
        if observation.benchmark != self.benchmark or self._line is None:
            return
        line, self._line = self._line, None
        if one_step is None:
            self.write(f"{line}  {self._ladder_band}")
            return
        line += (f"  forecast {one_step.value:.3f} [{one_step.lower:.3f}, {one_step.upper:.3f}]")
        if final is not None:
            line += (f"  final {final.value:.3f} [{final.lower:.3f}, {final.upper:.3f}]"
                     f" (ladder {final.prior_value:.3f})")
        self.write(line)

    def log_alert(self, alert) -> None:  # noqa: D102
        self.alerts.append({"reason": alert.reason.value, "message": alert.message,
                            "step": int(alert.step), "benchmark": alert.benchmark})
        self.write(f"ALERT [{alert.reason.value}] {alert.message}")

    def finish(self, summary: dict) -> None:  # noqa: D102
        pass


def echo(line: str) -> None:
    """Print one line of the demo's console output, flushed at once.

    Parameters
    ----------
    line : str
    """
    print(line, flush=True)


# ------------------------------------------------------------------ summary


def _truth_accuracy(ladder, benchmark: str, spec) -> dict:
    """The ladder's target accuracy at each step when the target is this run's recipe: the
    mean over the build's training runs of the target (its seeds), the truth a forecast
    of this recipe is judged against."""
    targets = {m.step: m for m in ladder.models
               if m.role == "target" and m.step is not None and m.params == spec.params}
    if not targets:
        return {}
    mat = ladder.matrix(benchmark, roles=("ladder", "anchor", "target"))
    acc = dict(zip(mat.model_names, mat.pass_rates.mean(axis=0)))
    return {int(s): float(acc[m.name]) for s, m in targets.items() if m.name in acc}


def finished_forecasts(ladder, benchmark: str, spec, methods=FINISHED_METHODS) -> dict:
    """Forecasts of the run's final checkpoint as a finished model of the ladder's recipe.

    Every method of ``methods`` is fitted on the ladder's runs and forecasts the
    benchmark at the run's final compute, given its tokens per parameter, as ``cod-monitor
    predict --target`` does (point forecasts, no bootstrap). They are the baselines of the
    monitor's forecast, made from the same ladder before training.

    Parameters
    ----------
    ladder : Ladder
    benchmark : str
    spec : RunSpec
        The monitored run; meaningful when it follows the ladder's recipe.
    methods : sequence of str, default FINISHED_METHODS

    Returns
    -------
    dict
        Method name -> ``{"value": float or None, "error": str or None}`` (``error`` says
        why a method could not forecast).
    """
    from cod_monitor.methods import compare_methods

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fit warnings belong to `cod-monitor predict`
        res = compare_methods(ladder, benchmark, spec.compute, list(methods), n_bootstrap=0,
                              random_state=0, tokens_per_param=spec.tokens / spec.params)
    return {name: {"value": None if r["value"] is None else float(r["value"]),
                   "error": r.get("error")} for name, r in res.items()}


def summarize(monitor, benchmarks, main, spec, alerts, ladder) -> dict:
    """Forecast against observation per benchmark, from the closed monitor.

    Parameters
    ----------
    monitor : CODMonitor
        The demo's monitor, closed (every checkpoint evaluated).
    benchmarks : sequence of str
        The monitored benchmarks.
    main : str
        The benchmark of the top-level numbers.
    spec : RunSpec
        The monitored run.
    alerts : list of dict
        :attr:`ConsoleTracker.alerts`.
    ladder : Ladder
        The ladder the forecasts come from.

    Returns
    -------
    dict
        The summary keys that come from the run itself (see
        :func:`~cod_monitor.demo.live.run_live_demo`): ``benchmark``,
        ``forecast_final``, ``forecast_interval``, ``observed_final``,
        ``abs_error_pts``, ``trajectory_mae_pts``, ``alerts``, ``final_step``,
        ``truth_final`` and ``truth_error_pts`` (the ladder's target at the final step,
        the mean over the build's target seeds, and the forecast's error against it;
        ``None`` when the run is not the ladder's target recipe),
        ``observed_final_smoothed`` (the mean of the last 3 checkpoints),
        ``final_forecast_by_progress`` (the run-conditioned forecast of the final
        accuracy made at 25, 50 and 75 % of the run and at its end, each with its
        ``step``, ``forecast``, ``interval`` and ``error_pts`` against the smoothed
        final), ``checkpoints`` (each with ``run_forecast``, the one-step forecast it was
        judged against, and ``final_forecast`` made after it) and ``per_benchmark``.
    """
    final_step = int(spec.steps)
    per = {}
    for b in benchmarks:
        rows = []
        for o in sorted((o for o in monitor.observations if o.benchmark == b), key=lambda o: o.step):
            fp = monitor.forecast_point(b, o.step, tokens=o.tokens)
            rows.append({"step": int(o.step), "observed": float(o.accuracy),
                         "forecast": None if fp is None else fp.value,
                         "lower": None if fp is None else fp.lower,
                         "upper": None if fp is None else fp.upper})
        run = {step: (one, fin) for step, one, fin in monitor.run_forecasts(b)}
        for r in rows:
            one, fin = run.get(r["step"], (None, None))
            r["run_forecast"] = None if one is None else one.value
            r["final_forecast"] = None if fin is None else fin.value
            r["final_interval"] = None if fin is None else [fin.lower, fin.upper]
        final = monitor.forecast_point(b, final_step, tokens=float(final_step * spec.tokens_per_step))
        last = next((r for r in rows if r["step"] == final_step), None)
        errs = [abs(r["observed"] - r["forecast"]) for r in rows if r["forecast"] is not None]
        fc = None if final is None else float(final.value)
        obs = None if last is None else last["observed"]
        smoothed = [r["observed"] for r in rows[-3:]]
        observed_final = sum(smoothed) / len(smoothed) if len(rows) >= 3 else obs
        per[b] = {
            "final_forecast_by_progress": _by_progress(rows, observed_final),
            "observed_final_smoothed": observed_final,
            "forecast_final": fc,
            "forecast_interval": None if final is None else [float(final.lower), float(final.upper)],
            "observed_final": obs,
            "abs_error_pts": None if fc is None or obs is None else 100 * abs(fc - obs),
            "trajectory_mae_pts": 100 * sum(errs) / len(errs) if errs else None,
            "n_checkpoints": len(rows),
            "checkpoints": rows,
        }
    m = per[main]
    truth = _truth_accuracy(ladder, main, spec).get(final_step)
    return {
        "benchmark": main,
        "forecast_final": m["forecast_final"],
        "forecast_interval": m["forecast_interval"],
        "observed_final": m["observed_final"],
        "abs_error_pts": m["abs_error_pts"],
        "trajectory_mae_pts": m["trajectory_mae_pts"],
        "alerts": list(alerts),
        "final_step": final_step,
        "truth_final": truth,
        "truth_error_pts": None if truth is None or m["forecast_final"] is None
        else 100 * abs(m["forecast_final"] - truth),
        "observed_final_smoothed": m["observed_final_smoothed"],
        "final_forecast_by_progress": m["final_forecast_by_progress"],
        "checkpoints": m["checkpoints"],
        "per_benchmark": {b: {k: v for k, v in d.items() if k != "checkpoints"}
                          for b, d in per.items()},
    }


def _by_progress(rows: list[dict], observed_final) -> dict:
    """The run-conditioned forecast of the final accuracy made at 25, 50 and 75 % of the
    run and at its end, with its error against the observed final (points)."""
    made = [r for r in rows if r.get("final_forecast") is not None]
    out = {}
    for label, frac in (("25%", 0.25), ("50%", 0.5), ("75%", 0.75), ("end", 1.0)):
        if not made:
            break
        r = made[max(int(round(frac * len(rows))) - 1, 0)] if len(made) == len(rows) else made[-1]
        out[label] = {"step": r["step"], "forecast": r["final_forecast"],
                      "interval": r["final_interval"],
                      "error_pts": None if observed_final is None
                      else 100 * (r["final_forecast"] - observed_final)}
    return out


def _fmt(x, spec=".3f") -> str:
    return "n/a" if x is None else format(x, spec)


def print_summary(s: dict) -> None:
    """Print the demo's closing lines: forecast against measurement, alerts, where files are.

    Parameters
    ----------
    s : dict
        The summary :func:`~cod_monitor.demo.live.run_live_demo` returns.
    """
    b = s["benchmark"]
    lo, hi = s["forecast_interval"] or (None, None)
    lines = [
        "",
        f"{b!r} at the final checkpoint (step {s['final_step']}): forecast {_fmt(s['forecast_final'])} "
        f"[{_fmt(lo)}, {_fmt(hi)}] vs measured {_fmt(s['observed_final'])}: error "
        f"{_fmt(s['abs_error_pts'], '.1f')} points; trajectory error (mean over "
        f"{len(s['checkpoints'])} checkpoints) {_fmt(s['trajectory_mae_pts'], '.1f')} points.",
    ]
    if s.get("truth_final") is not None:
        lines.append(f"truth: {s['truth_final']:.3f}, the mean of the ladder build's "
                     f"{s.get('truth_seeds') or 'several'} training runs of this target (one "
                     f"run varies with its seeds); the forecast is "
                     f"{_fmt(s['truth_error_pts'], '.1f')} points from it.")
    progress = s.get("final_forecast_by_progress") or {}
    if progress:
        parts = [f"at {label} of the run {_fmt(p['forecast'])} ({_fmt(p['error_pts'], '+.1f')})"
                 for label, p in progress.items() if label != "end"]
        lines.append(f"forecast of the final accuracy learned from the run's checkpoints "
                     f"(error in points against the measured {_fmt(s['observed_final_smoothed'])}, "
                     f"the mean of the last 3 checkpoints): " + ", ".join(parts) + ".")
    lines.append(f"{'benchmark':10s} {'forecast':>9s} {'measured':>9s} {'error':>7s} {'traj MAE':>9s}")
    for name, d in s["per_benchmark"].items():
        lines.append(f"{name:10s} {_fmt(d['forecast_final']):>9s} {_fmt(d['observed_final']):>9s} "
                     f"{_fmt(d['abs_error_pts'], '.1f'):>7s} {_fmt(d['trajectory_mae_pts'], '.1f'):>9s}")
    if s.get("finished_forecasts"):
        parts = [f"{name} {_fmt(f['value'])} ({_fmt(f['abs_error_pts'], '.1f')}"
                 + (f" / {_fmt(f.get('truth_error_pts'), '.1f')})"
                    if s.get("truth_final") is not None else ")")
                 for name, f in s["finished_forecasts"].items()]
        against = ("measured / truth" if s.get("truth_final") is not None else "measured")
        lines.append(f"{b!r} final checkpoint forecast as a finished recipe model from the same "
                     f"ladder (error in points against {against}): " + ", ".join(parts))
    alerts = s["alerts"]
    drift = [a for a in alerts if a["reason"] == "below_band"]
    lines.append(f"alerts: {len(alerts)} ({len(drift)} below-band drift)" if alerts else "alerts: none")
    for a in alerts:
        lines.append(f"  step {a['step']} [{a['reason']}] {a['message']}")
    lines.append(f"report: {s['report_html']}")
    if s.get("wandb_run_dir"):
        lines.append(f"W&B offline run: {s['wandb_run_dir']} (upload: wandb sync {s['wandb_run_dir']}; "
                     f"inspect: wandb leet inspect --summary {s['wandb_run_dir']})")
    lines.append(f"summary: {Path(s['out_dir']) / 'summary.json'}   wall time {s['wall_s']:.0f} s "
                 f"(training {s['train_s']:.0f} s)")
    echo("\n".join(lines))
