"""Live-demo benchmark: drift alerts on healthy and sabotaged demo runs, and wall time.

Runs ``cod-monitor demo`` (the real thing: HF Trainer, CODCallback, a CPU evaluation
worker, the shipped demo ladder) once per seed, healthy and with ``--sabotage``
(learning rate x30 from half of the run), each in its own process, and reports:

- **false alerts**: healthy runs with a below-band alert (on the main benchmark, and
  on any benchmark);
- **detection and latency**: sabotaged runs whose main benchmark raised a below-band
  alert, and the latency in evaluations: 1 when the first checkpoint after the
  sabotage step alerts, 2 for the next one... (the issue's goal: within 3);
- forecast error, trajectory error and wall time of every run.

W&B is off (``--no-wandb``): it changes nothing in the decisions and costs start-up time.
Writes ``benchmarks/results/bench_demo.json`` and prints the table. Usage::

    python -m benchmarks.bench_demo [--seeds 0 1 2 3 4] [--sabotage-seeds 0 1 2]
        [--tokens N] [--out PATH] [-- extra cod-monitor demo options]

With the default recipe a run takes about as long as ``make demo``; ``--tokens``
shortens every run (note that a run stopped before the tasks emerge cannot fall below
its band, so sabotage needs most of the run).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def run_demo(out: Path, seed: int, sabotage: bool, extra: list[str]) -> dict:
    """One ``cod-monitor demo`` in a fresh process; its summary plus the exit code."""
    argv = ["demo", "--out", str(out), "--seed", str(seed), "--no-wandb", "--quiet", *extra]
    if sabotage:
        argv.append("--sabotage")
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from cod_monitor.cli import main; "
         "sys.exit(main(sys.argv[1:]))", *argv],
        capture_output=True, text=True)
    wall = time.perf_counter() - t0
    (out.parent / f"{out.name}.log").write_text(proc.stdout + "\n--- stderr ---\n" + proc.stderr)
    if proc.returncode != 0:
        return {"seed": seed, "sabotage": sabotage, "error": proc.stderr[-2000:], "wall_s": wall}
    s = json.loads((out / "summary.json").read_text())
    s["process_wall_s"] = wall
    return s


def judge(s: dict) -> dict:
    """Alerts of one run: below-band alerts on the main benchmark and anywhere, latency."""
    main = s["benchmark"]
    below = [a for a in s["alerts"] if a["reason"] == "below_band"]
    below_main = [a for a in below if a.get("benchmark") == main]
    steps = [c["step"] for c in s["checkpoints"]]
    row = {
        "seed": s.get("target", {}).get("init_seed"),
        "sabotage": s.get("sabotage"),
        "forecast_final": s["forecast_final"],
        "observed_final": s["observed_final"],
        "abs_error_pts": s["abs_error_pts"],
        "trajectory_mae_pts": s["trajectory_mae_pts"],
        "n_alerts_below_band_main": len(below_main),
        "n_alerts_below_band_any": len(below),
        "alert_benchmarks": sorted({a.get("benchmark") for a in below}),
        "first_alert_step": below_main[0]["step"] if below_main else None,
        "wall_s": s["wall_s"],
        "latency_evals": None,
    }
    if s.get("sabotage") and below_main:
        damaged = [x for x in steps if x > s["sabotage"]["step"]]
        first = below_main[0]["step"]
        if damaged and first >= damaged[0]:
            row["latency_evals"] = damaged.index(first) + 1
        elif damaged:
            row["latency_evals"] = 0  # alerted before the damage: a false alert
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--sabotage-seeds", type=int, nargs="*", default=[0, 1, 2])
    p.add_argument("--tokens", type=int, default=None)
    p.add_argument("--out", type=Path, default=RESULTS / "bench_demo.json")
    p.add_argument("extra", nargs="*", help="extra `cod-monitor demo` options (after --)")
    args = p.parse_args(argv)
    extra = list(args.extra) + ([] if args.tokens is None else ["--tokens", str(args.tokens)])
    work = Path(tempfile.mkdtemp(prefix="cod-bench-demo-"))
    rows, errors = [], []
    plan = [(s, False) for s in args.seeds] + [(s, True) for s in args.sabotage_seeds]
    for seed, sabotage in plan:
        name = f"{'sabotage' if sabotage else 'healthy'}-seed{seed}"
        s = run_demo(work / name, seed, sabotage, extra)
        if "error" in s:
            errors.append(s)
            print(f"{name}: FAILED ({s['error'].strip().splitlines()[-1] if s['error'] else ''})",
                  flush=True)
            continue
        r = judge(s)
        rows.append(r)
        print(f"{name}: forecast {r['forecast_final']:.3f} observed {r['observed_final']:.3f} "
              f"(error {r['abs_error_pts']:.1f} pts, trajectory {r['trajectory_mae_pts']:.1f} pts); "
              f"below-band alerts main {r['n_alerts_below_band_main']} any "
              f"{r['n_alerts_below_band_any']} {r['alert_benchmarks']}; latency "
              f"{r['latency_evals']}; {r['wall_s']:.0f} s", flush=True)
    healthy = [r for r in rows if not r["sabotage"]]
    sab = [r for r in rows if r["sabotage"]]
    lat = [r["latency_evals"] for r in sab if r["latency_evals"]]
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "extra_options": extra,
        "healthy_runs": len(healthy),
        "false_alert_rate_main": (sum(r["n_alerts_below_band_main"] > 0 for r in healthy)
                                  / len(healthy)) if healthy else None,
        "false_alert_rate_any": (sum(r["n_alerts_below_band_any"] > 0 for r in healthy)
                                 / len(healthy)) if healthy else None,
        "sabotaged_runs": len(sab),
        "detected_within_3": sum(1 for x in lat if 1 <= x <= 3),
        "latency_evals": lat,
        "rows": rows,
        "errors": errors,
        "work_dir": str(work),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"\nhealthy: {len(healthy)} runs, false-alert rate {result['false_alert_rate_main']} "
          f"(main benchmark), {result['false_alert_rate_any']} (any benchmark)")
    print(f"sabotaged: {len(sab)} runs, detected within 3 evaluations: "
          f"{result['detected_within_3']}, latencies {lat}")
    print(f"wrote {args.out} (runs and logs in {work})")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
