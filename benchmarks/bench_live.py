"""Live forecast benchmark (issue 19): the run-conditioned forecast against the ladder's.

Every run is replayed checkpoint by checkpoint through the monitor's own pieces (the
ladder forecast of ``ForecastConfig``, :func:`~cod_monitor.cod.conditioning.estimate_run_prior`,
:func:`~cod_monitor.monitor.run_forecasts.build_conditioner` and the drift rules of
:func:`~cod_monitor.monitor.drift.decide_with_run`), in two modes:

``run``
    The monitor's default: each checkpoint is judged against the ladder band *and*
    against the one-step-ahead run-conditioned forecast, then learned from.
``ladder``
    ``ForecastConfig(condition_on_run=False)``: the ladder-only forecast and band.

Runs:

* ``demo``: the demo target run's healthy seeds, its lower-learning-rate runs and its
  sabotaged runs (``benchmarks/data/live_runs``, built by
  ``python -m benchmarks.build_live_runs``), against the shipped demo ladder;
* ``cpu``: the targets of the CPU ladders (``benchmarks/data/arith``, ``strings``;
  each the mean of 3 seeds);
* ``synthetic``: :func:`cod_monitor.synthetic.synthetic_run` seeds, healthy and with
  their learning slowed 10x or 3x from 35 % of the tokens.

Reported per group and mode: the error of the forecast of the final accuracy (the mean
of the last 3 checkpoints; the raw last checkpoint too) after 25/50/75 % of the run,
the one-step-ahead MAE, the coverage of the 90 % one-step band, false alerts on healthy
runs, and the detection latency (evaluations from the first damaged checkpoint to the
first below-band alert) per sabotage kind. Beside them, the truth's own noise: each
run's checkpoint-to-checkpoint spread around a smooth fit of its curve, and the
seed-to-seed spread of the final accuracy.

Writes ``benchmarks/results/bench_live.json`` and prints the tables. Usage::

    python -m benchmarks.bench_live [--groups demo cpu synthetic] [--benchmarks demo]
                                    [--n-bootstrap 50] [--seeds 10]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cod_monitor.cod.conditioning import estimate_run_prior
from cod_monitor.ladder import Ladder, load_ladder
from cod_monitor.monitor import DriftConfig, DriftState, ForecastConfig, decide_with_run
from cod_monitor.monitor.forecasts import backtest_forecaster_factory, make_trajectory_forecaster
from cod_monitor.monitor.run_forecasts import RUN_MODE, build_conditioner
from cod_monitor.records import AlertReason, ForecastPoint, Observation
from cod_monitor.synthetic import synthetic_run

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
RESULTS = HERE / "results"
DEMO_LADDER = HERE.parent / "cod_monitor" / "data" / "demo_ladder"
FRACTIONS = (0.25, 0.5, 0.75)
MODES = ("run", "ladder")


@dataclass
class Case:
    """One run to replay."""

    group: str
    name: str
    ladder: Ladder
    benchmark: str
    params: float
    steps: np.ndarray
    tokens: np.ndarray
    accuracy: np.ndarray
    kind: str = "healthy"  # or a sabotage kind, or 'lowlr'
    damaged_from: int | None = None  # first damaged step
    run_sd: float = 0.0
    ladder_key: str = ""


# ----------------------------------------------------------------- cases


def _target_runs(ladder: Ladder, benchmark: str):
    """(run key, models, accuracies) of every target run, by step."""
    mat = ladder.matrix(benchmark, roles=("target",))
    acc = mat.pass_rates.mean(axis=0)
    runs: dict[str, list[int]] = {}
    for i, m in enumerate(mat.models):
        runs.setdefault(m.run_key, []).append(i)
    out = []
    for key, idx in runs.items():
        idx.sort(key=lambda i: mat.models[i].step)
        out.append((key, [mat.models[i] for i in idx], acc[idx]))
    return out


def _without_targets(ladder: Ladder) -> Ladder:
    return ladder.without_models([m.name for m in ladder.models_with_role("target")])


def _seed_sd(build: dict, benchmark: str) -> float:
    """``final_seed_sd`` of the largest ladder run of a build (what the live demo uses)."""
    runs = [r for r in build.get("runs", []) if r.get("role") == "ladder"
            and isinstance(r.get("final_seed_sd"), dict)]
    if not runs:
        return 0.0
    return float(max(runs, key=lambda r: r["params"])["final_seed_sd"].get(benchmark, 0.0))


def demo_cases(benchmarks) -> list[Case]:
    path = DATA / "live_runs"
    if not (path / "ladder.json").exists():
        print(f"(no {path}: run python -m benchmarks.build_live_runs; demo group skipped)")
        return []
    meta = json.loads((path / "runs.json").read_text())
    runs_meta = meta.get("runs", meta) if isinstance(meta, dict) else meta
    by_name = {r.get("run", r.get("name")): r for r in runs_meta}
    live = load_ladder(path)
    ladder = _without_targets(load_ladder(DEMO_LADDER))
    build = json.loads((DEMO_LADDER / "build.json").read_text())
    cases = []
    for b in benchmarks:
        for key, models, acc in _target_runs(live, b):
            if key not in by_name:
                continue  # e.g. the ladder's own target: a mean of seeds, not one run
            info = by_name[key]
            sab = info.get("sabotage") or None
            kind = sab["kind"] if sab else ("lowlr" if "lowlr" in key else "healthy")
            cases.append(Case(
                "demo", key, ladder, b, models[0].params,
                np.array([m.step for m in models]), np.array([m.tokens for m in models]), acc,
                kind=kind, damaged_from=None if not sab else int(sab["start_step"]),
                run_sd=_seed_sd(build, b), ladder_key="demo"))
    return cases


def cpu_cases(benchmarks) -> list[Case]:
    cases = []
    for name in ("arith", "strings"):
        full = load_ladder(DATA / name)
        build = json.loads((DATA / name / "build.json").read_text())
        ladder = _without_targets(full)
        for b in benchmarks:
            if b not in full.benchmarks:
                continue
            for key, models, acc in _target_runs(full, b):
                cases.append(Case("cpu", f"{name}/{key}", ladder, b, models[0].params,
                                  np.array([m.step for m in models]),
                                  np.array([m.tokens for m in models]), acc,
                                  run_sd=_seed_sd(build, b), ladder_key=name))
    return cases


def synthetic_cases(seeds: int) -> list[Case]:
    cases = []
    for seed in range(seeds):
        for kind, slowdown in (("healthy", None), ("slowdown-10x", 10.0), ("slowdown-3x", 3.0)):
            kw = {} if slowdown is None else {"sabotage_at": 0.35, "slowdown": slowdown}
            run = synthetic_run(n_samples=300, seed=seed, **kw)
            steps = np.array([t["step"] for t in run.target])
            damaged = [t["step"] for t in run.target if t.get("sabotaged")]
            cases.append(Case(
                "synthetic", f"seed{seed}-{kind}", _without_targets(run.ladder), run.benchmark,
                run.target_params, steps, np.array([t["tokens"] for t in run.target]),
                run.target_pass_rates.mean(axis=0), kind=kind,
                damaged_from=damaged[0] if damaged else None, ladder_key=f"syn{seed}-{kind}"))
    return cases


# ----------------------------------------------------------------- replay

_MODELS: dict = {}
#: ``ForecastConfig.trajectory`` of the ladder forecast (``--trajectory``).
TRAJECTORY = {"mode": "auto", "method": None, "law": "additive"}


def _prior(case: Case, n_bootstrap: int):
    key = (case.ladder_key, case.benchmark, case.run_sd)
    if key not in _MODELS:
        config = ForecastConfig(n_bootstrap=n_bootstrap, run_sd=case.run_sd,
                                trajectory=TRAJECTORY["mode"],
                                trajectory_method=TRAJECTORY["method"],
                                trajectory_law=TRAJECTORY["law"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = make_trajectory_forecaster(config, case.benchmark).fit(
                case.ladder, case.benchmark).prepare()
            prior = estimate_run_prior(case.ladder, case.benchmark, backtest_forecaster_factory(
                config, case.benchmark, model))
        _MODELS[key] = (model, prior.with_run_sd(case.run_sd))
    return _MODELS[key]


def smooth_spread(tokens, acc) -> float:
    """RMS of a run's checkpoints around a cubic in log tokens (its checkpoint noise)."""
    x = np.log(tokens)
    coef = np.polyfit(x, acc, 3)
    resid = acc - np.polyval(coef, x)
    return float(np.sqrt(np.sum(resid**2) / max(len(acc) - 4, 1)))


def replay(case: Case, mode: str, n_bootstrap: int, drift: DriftConfig) -> dict:
    """Replay one run through one mode."""
    model, prior = _prior(case, n_bootstrap)
    n = len(case.steps)
    end = case.tokens[-3:]
    truth = float(np.mean(case.accuracy[-3:]))
    rc = build_conditioner(model, prior, case.params, end) if mode == "run" else None
    state, run_state = DriftState(), DriftState()
    prior_final = float(np.mean(model.predict(case.params, end)))
    finals, one_step, inside, alerts = [], [], [], []
    t0 = time.perf_counter()
    for i in range(n):
        step, tok, acc = int(case.steps[i]), float(case.tokens[i]), float(case.accuracy[i])
        obs = Observation(step=step, compute=6 * case.params * tok, benchmark=case.benchmark,
                          accuracy=acc, tokens=tok)
        fp = model.forecast(step, case.params, tok, level=0.9)
        run_fp = None
        if rc is not None:
            mean, sd = rc.predict(tok)
            lo, hi = rc.interval(mean, sd, 0.9)
            run_fp = ForecastPoint(step=step, compute=obs.compute, benchmark=case.benchmark,
                                   value=float(mean[0]), lower=float(lo[0]), upper=float(hi[0]),
                                   mode=RUN_MODE, tokens=tok)
        judged = run_fp if run_fp is not None else fp
        one_step.append(acc - judged.value)
        inside.append(judged.lower <= acc <= judged.upper)
        raised, state, run_state, forgotten = decide_with_run(obs, fp, run_fp, state, run_state,
                                                               drift)
        alerts += [(i, a.reason.value) for a in raised]
        if rc is not None:
            if forgotten:
                rc.exclude(float(case.tokens[max(i - forgotten, 0)]))
            rc.observe(tok, acc, exclude=state.alerting or run_state.alerting)
            finals.append(rc.final()[0])
        else:
            finals.append(prior_final)
    below = [i for i, r in alerts if r == AlertReason.BELOW_BAND.value]
    at = {f: finals[max(int(round(f * n)) - 1, 0)] for f in FRACTIONS}
    latency = None
    if case.damaged_from is not None and below:
        first_damaged = int(np.searchsorted(case.steps, case.damaged_from))
        after = [i for i in below if i >= first_damaged]
        latency = None if not after else after[0] - first_damaged + 1
    return {
        "case": case.name, "group": case.group, "benchmark": case.benchmark, "kind": case.kind,
        "mode": mode, "truth_final": truth, "truth_last": float(case.accuracy[-1]),
        "prior_final": prior_final,
        "final_error": {str(f): float(at[f] - truth) for f in FRACTIONS},
        "final_error_vs_last": {str(f): float(at[f] - case.accuracy[-1]) for f in FRACTIONS},
        "one_step_mae": float(np.mean(np.abs(one_step[1:]))),
        "coverage": float(np.mean(inside[1:])),
        "below_band_alerts": below,
        "false_alert": bool(below) and (case.damaged_from is None or min(below) < int(
            np.searchsorted(case.steps, case.damaged_from))),
        "latency": latency,
        "checkpoint_noise": smooth_spread(case.tokens, case.accuracy),
        "seconds": time.perf_counter() - t0,
    }


# ----------------------------------------------------------------- tables


def _mean(v):
    v = [x for x in v if x is not None]
    return float(np.mean(v)) if v else float("nan")


def summarize(rows: list[dict]) -> dict:
    out = {}
    for (group, bench) in sorted({(r["group"], r["benchmark"]) for r in rows}):
        for mode in MODES:
            rs = [r for r in rows if r["group"] == group and r["benchmark"] == bench
                  and r["mode"] == mode]
            if not rs:
                continue
            healthy = [r for r in rs if r["kind"] == "healthy"]
            lowlr = [r for r in rs if r["kind"] == "lowlr"]
            finals = [r["truth_final"] for r in healthy]
            key = f"{group}/{bench}/{mode}"
            out[key] = {
                "runs": len(rs),
                "healthy_final_error": {f: _mean([abs(r["final_error"][f]) for r in healthy])
                                        for f in map(str, FRACTIONS)},
                "healthy_final_error_vs_last": {
                    f: _mean([abs(r["final_error_vs_last"][f]) for r in healthy])
                    for f in map(str, FRACTIONS)},
                "lowlr_final_error": {f: _mean([abs(r["final_error"][f]) for r in lowlr])
                                      for f in map(str, FRACTIONS)},
                "one_step_mae": _mean([r["one_step_mae"] for r in healthy + lowlr]),
                "coverage": _mean([r["coverage"] for r in healthy + lowlr]),
                "checkpoint_noise": _mean([r["checkpoint_noise"] for r in healthy + lowlr]),
                # seeds of one run exist only in the demo group (the others' runs are of
                # different ladders)
                "seed_sd_final": (float(np.std(finals, ddof=1))
                                  if group == "demo" and len(finals) > 1 else None),
                "false_alerts": sum(r["false_alert"] for r in healthy + lowlr),
                "n_healthy": len(healthy) + len(lowlr),
                "detection": {},
            }
            for kind in sorted({r["kind"] for r in rs} - {"healthy", "lowlr"}):
                ks = [r for r in rs if r["kind"] == kind]
                lat = [r["latency"] for r in ks if r["latency"] is not None]
                out[key]["detection"][kind] = {
                    "runs": len(ks), "detected": len(lat),
                    "median_latency": float(np.median(lat)) if lat else None,
                    "false_alerts_before": sum(r["false_alert"] for r in ks)}
    return out


def print_tables(summary: dict) -> str:
    lines = ["| group / benchmark | mode | final error at 25 / 50 / 75 % (healthy) | vs last ckpt | "
             "lower-LR runs | one-step MAE | 90 % band coverage | checkpoint noise | "
             "seed sd of final | false alerts |",
             "|---|---|---|---|---|---:|---:|---:|---:|---:|"]

    def pts(d):
        return " / ".join("–" if np.isnan(v) else f"{100 * v:.1f}" for v in d.values())

    for key, s in summary.items():
        group, bench, mode = key.split("/")
        sd = "–" if s["seed_sd_final"] is None else f"{100 * s['seed_sd_final']:.1f}"
        lines.append(
            f"| {group} / {bench} | {mode} | {pts(s['healthy_final_error'])} | "
            f"{pts(s['healthy_final_error_vs_last'])} | {pts(s['lowlr_final_error'])} | "
            f"{100 * s['one_step_mae']:.1f} | {s['coverage']:.2f} | "
            f"{100 * s['checkpoint_noise']:.1f} | {sd} | {s['false_alerts']} / {s['n_healthy']} |")
    lines += ["", "| group / benchmark | mode | sabotage | detected | median latency "
              "(evaluations) | alerts before the damage |", "|---|---|---|---:|---:|---:|"]
    for key, s in summary.items():
        group, bench, mode = key.split("/")
        for kind, d in s["detection"].items():
            lat = "–" if d["median_latency"] is None else f"{d['median_latency']:g}"
            lines.append(f"| {group} / {bench} | {mode} | {kind} | {d['detected']} / {d['runs']} "
                         f"| {lat} | {d['false_alerts_before']} |")
    text = "\n".join(lines)
    print(text)
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", nargs="+", default=["demo", "cpu", "synthetic"],
                        choices=["demo", "cpu", "synthetic"])
    parser.add_argument("--benchmarks", nargs="+", default=["demo"],
                        help="benchmarks of the demo and CPU runs (default: demo)")
    parser.add_argument("--n-bootstrap", type=int, default=50)
    parser.add_argument("--seeds", type=int, default=10, help="synthetic seeds")
    parser.add_argument("--trajectory", default="auto",
                        help="ForecastConfig.trajectory of the ladder forecast (default auto)")
    parser.add_argument("--trajectory-method", default=None,
                        help="ForecastConfig.trajectory_method (compute and recipe modes)")
    parser.add_argument("--trajectory-law", default="additive",
                        choices=("additive", "two_phase", "auto"),
                        help="ForecastConfig.trajectory_law")
    parser.add_argument("--out", type=Path, default=RESULTS / "bench_live.json")
    args = parser.parse_args(argv)
    TRAJECTORY.update(mode=args.trajectory, method=args.trajectory_method, law=args.trajectory_law)
    t0 = time.time()
    cases: list[Case] = []
    if "demo" in args.groups:
        cases += demo_cases(args.benchmarks)
    if "cpu" in args.groups:
        cases += cpu_cases(args.benchmarks)
    if "synthetic" in args.groups:
        cases += synthetic_cases(args.seeds)
    drift = DriftConfig()
    rows = [replay(c, mode, args.n_bootstrap, drift) for c in cases for mode in MODES]
    summary = summarize(rows)
    text = print_tables(summary)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "command": "python -m benchmarks.bench_live " + " ".join(sys.argv[1:] if argv is None else argv),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "wall_s": time.time() - t0, "machine": platform.platform(),
        "summary": summary, "rows": rows, "table": text}, indent=1, default=float))
    print(f"wrote {args.out} ({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
