"""Monitor benchmark: in-loop cost, trajectory error per mode, drift alerts.

1. **In-loop cost of ``CODMonitor.on_checkpoint``** (what the training thread pays) for
   checkpoint directories (hard links; copies for reference) and in-memory state dicts
   (CPU copy on the training thread, safetensors write in the background), for Llama
   models of the demo recipe's shape family (``transformers``, CPU).
2. **Trajectory error per mode** (``compute``, ``trajectory``, ``trajectory_e2e``): the
   forecast for every checkpoint of a target run minus its measured accuracy, on
   synthetic runs with a known (N, D) law (:func:`cod_monitor.synthetic.synthetic_run`, seeds
   0-9) and on the demo target run of the shipped demo ladder when it exists
   (``cod_monitor/data/demo_ladder``: checkpoints with role ``target``).
3. **Drift alerts** with the default :class:`DriftConfig`: false-alert rate over healthy
   synthetic runs, and detection rate and latency (evaluations after the first
   sabotaged checkpoint) on sabotaged ones (the run's learning slows 10x or 3x from 35%
   of its tokens); the same for the demo target run (healthy).

Writes ``benchmarks/results/bench_monitor.json`` and the printed tables to
``bench_monitor.txt`` beside it. Usage::

    python -m benchmarks.bench_monitor [--quick] [--seeds 10] [--out PATH] [--demo-ladder DIR ...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from benchmarks.cases import target_and_seed_runs
from cod_monitor.exceptions import FitWarning
from cod_monitor.ladder import Ladder
from cod_monitor.monitor import (
    CheckpointConfig,
    CODMonitor,
    DriftConfig,
    DriftState,
    ForecastConfig,
    PoolConfig,
    QueuePolicy,
    RunGeometry,
    decide,
)
from cod_monitor.cod import TrajectoryForecaster
from cod_monitor.methods import make_forecaster
from cod_monitor.records import AlertReason, EvalResult, Observation
from cod_monitor.synthetic import synthetic_run

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
# trajectory modes measured; "recipe:<method>" is mode 'recipe' with that finished-model method
MODES = ("compute", "trajectory", "trajectory_e2e", "recipe:cod", "recipe:e2e-exp")
# the drift section measures the default first
DRIFT_MODES = ("recipe:e2e-exp", "trajectory_e2e", "trajectory", "compute")


def forecaster(label: str, **kw) -> TrajectoryForecaster:
    """The TrajectoryForecaster a MODES label names."""
    mode, _, method = label.partition(":")
    finished = None
    if method:
        finished = make_forecaster(method, n_bootstrap=kw.get("n_bootstrap", 100),
                                   random_state=kw.get("random_state", 0))
    return TrajectoryForecaster(mode=mode, finished=finished, **kw)


DEMO_LADDER = HERE.parent / "cod_monitor" / "data" / "demo_ladder"
# (hidden, layers) of the models whose checkpoints are timed: the demo target and two larger
SHAPES = ((256, 4), (512, 8), (768, 12))


def constant_job(snapshot, eval_set, config):
    """A job that does not evaluate anything (the in-loop timing needs a sink)."""
    return EvalResult(eval_set=str(eval_set), sample_ids=("a",), pass_rates=np.array([0.5]), mode="exact")


# ----------------------------------------------------------------- 1. in-loop cost


def bench_in_loop(shapes, repeats: int) -> list[dict]:
    import torch
    from transformers.utils import logging as hf_logging

    from cod_monitor.demo.recipe import make_spec
    from cod_monitor.demo.train import build_model

    hf_logging.disable_progress_bar()
    torch.set_num_threads(2)
    run = synthetic_run(n_samples=200, seed=0)
    tmp = Path(tempfile.mkdtemp(prefix="cod-bench-"))
    ladder_dir = tmp / "ladder"
    run.ladder.without_models([m.name for m in run.ladder.models_with_role("target")]).save(ladder_dir)
    rows = []
    try:
        for hidden, layers in shapes:
            spec = make_spec(f"d{hidden}x{layers}", hidden, layers, role="target")
            model = build_model(spec)
            cfg = tmp / f"cfg-{hidden}"
            model.config.save_pretrained(cfg)
            for kind in ("dir", "dir-copy", "state_dict"):
                out = tmp / f"cod-{hidden}-{kind}"
                monitor = CODMonitor(
                    ladder_dir, {"synthetic": "synthetic"}, out_dir=out,
                    forecast=ForecastConfig(n_bootstrap=0, refresh_interval=None),
                    pool=PoolConfig(job_fn=constant_job, queue_policy=QueuePolicy(max_pending=1000)),
                    run=RunGeometry(params=spec.params, tokens_per_step=2048),
                    checkpoints=CheckpointConfig(config_dir=cfg, link=kind != "dir-copy"),
                ).start()
                times, write_s = [], []
                for i in range(1, repeats + 1):
                    with torch.no_grad():
                        for p in model.parameters():
                            p.add_(1e-3)
                    if kind == "state_dict":
                        t0 = time.perf_counter()
                        monitor.on_checkpoint(i, state_dict=model.state_dict())
                        times.append(time.perf_counter() - t0)
                        t1 = time.perf_counter()
                        monitor.wait_for_snapshots()
                        write_s.append(time.perf_counter() - t1)
                    else:
                        ckpt = tmp / f"ckpt-{hidden}" / f"checkpoint-{i}"
                        model.save_pretrained(ckpt)  # the trainer's cost, not timed
                        t0 = time.perf_counter()
                        monitor.on_checkpoint(i, path=ckpt)
                        times.append(time.perf_counter() - t0)
                        shutil.rmtree(ckpt)
                monitor.wait(timeout=300)
                monitor.close(timeout=60)
                ms = 1e3 * np.array(times)
                rows.append({
                    "model": spec.name, "params": spec.params, "mbytes": 4 * spec.params / 1e6,
                    "snapshot": kind, "median_ms": float(np.median(ms)), "max_ms": float(ms.max()),
                    "background_write_s": float(np.median(write_s)) if write_s else None,
                })
                print(f"  {spec.name:10s} {spec.params / 1e6:6.1f}M {kind:10s} "
                      f"median {np.median(ms):7.1f} ms  max {ms.max():7.1f} ms"
                      + (f"  (background write {np.median(write_s):.2f}s)" if write_s else ""), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


# -------------------------------------------------------------- 2. trajectory error


def _errors(tf, params, targets):
    pred = np.array([tf.predict(params, t["tokens"], compute=t["compute"]) for t in targets])
    return pred - np.array([t["accuracy"] for t in targets])


def _summary(err) -> dict:
    q = max(1, len(err) // 4)
    return {"mae": float(np.abs(err).mean()), "max_abs": float(np.abs(err).max()),
            "bias_first_quarter": float(err[:q].mean()), "bias_last_quarter": float(err[-q:].mean())}


def demo_target(ladder: Ladder, benchmark: str = "demo"):
    """(params, checkpoints, seed runs) of the target run of a ladder.

    Checkpoints carry tokens, compute and measured accuracy. When the ladder also holds
    seed variants of the target run (``<run>-seed<k>``, e.g. from ``bench_demo_ladder.py
    --target-seeds``), ``seed runs`` maps each run, the target first, to its accuracy per
    checkpoint; else it holds the target alone.
    """
    targets = [m for m in ladder.models if m.role == "target" and m.step is not None]
    if not targets:
        return None
    mat = ladder.matrix(benchmark, roles=("ladder", "anchor", "target"))
    acc = dict(zip(mat.model_names, mat.pass_rates.mean(axis=0)))
    runs = {}
    for m in sorted(targets, key=lambda m: m.step):
        runs.setdefault(m.run_key, []).append(m)
    primary, *variants = target_and_seed_runs(ladder)
    main = runs[primary]
    steps = [m.step for m in main]
    seed_runs = {key: [float(acc[m.name]) for m in runs[key]]
                 for key in [primary, *variants] if [m.step for m in runs[key]] == steps}
    return main[0].params, [
        {"step": m.step, "tokens": m.tokens, "compute": m.compute, "accuracy": float(acc[m.name])}
        for m in main
    ], seed_runs


def demo_target_runs(demo_ladders):
    """``(path, ladder, params, target checkpoints, seed runs)`` of every ladder with a
    target run."""
    for path in demo_ladders:
        ladder = Ladder.load(path)
        tgt = demo_target(ladder)
        if tgt is not None:
            yield path, ladder, *tgt


def bench_trajectory(seeds, n_bootstrap: int, demo_ladders) -> dict:
    out = {"synthetic": {m: [] for m in MODES}, "demo": None}
    for seed in seeds:
        run = synthetic_run(n_samples=600, seed=seed)
        for mode in MODES:
            tf = forecaster(mode, n_bootstrap=0, random_state=seed).fit(run.ladder, run.benchmark)
            out["synthetic"][mode].append(_summary(_errors(tf, run.target_params, run.target)))
    agg = {}
    for mode, rows in out["synthetic"].items():
        agg[mode] = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
        print(f"  synthetic ({len(seeds)} runs) {mode:16s} MAE {agg[mode]['mae']:.4f}  "
              f"bias first/last quarter {agg[mode]['bias_first_quarter']:+.3f}/"
              f"{agg[mode]['bias_last_quarter']:+.3f}", flush=True)
    out["synthetic_mean"] = agg
    out["demo"] = {}
    for path, ladder, params, targets, seed_runs in demo_target_runs(demo_ladders):
        demo = {"n_checkpoints": len(targets), "params": params, "modes": {}, "per_checkpoint": []}
        runs = np.array(list(seed_runs.values()))  # (seed runs, checkpoints)
        seed_mean = runs.mean(axis=0)
        if len(runs) > 1:
            # what a forecast of exactly the seeds' mean trajectory scores against one run
            demo["seed_runs"] = list(seed_runs)
            demo["noise_floor_mae"] = float(np.abs(runs - seed_mean).mean())
            print(f"  demo target run {path}: {len(runs)} seed runs, noise floor MAE "
                  f"{demo['noise_floor_mae']:.4f}", flush=True)
        preds = {}
        for mode in MODES:
            tf = forecaster(mode, n_bootstrap=n_bootstrap).fit(ladder, "demo")
            err = _errors(tf, params, targets)
            preds[mode] = err + np.array([t["accuracy"] for t in targets])
            demo["modes"][mode] = {**_summary(err), "resolved_mode": tf.mode_,
                                   "residual_sd": tf.residual_sd_}
            if len(runs) > 1:
                pred = preds[mode]
                demo["modes"][mode]["mae_vs_seed_mean"] = float(np.abs(pred - seed_mean).mean())
                demo["modes"][mode]["mae_per_seed_run"] = np.abs(pred - runs).mean(axis=1).tolist()
            print(f"  demo target run {path} ({len(targets)} checkpoints) {mode:16s} MAE "
                  f"{np.abs(err).mean():.4f}  bias first/last quarter "
                  f"{demo['modes'][mode]['bias_first_quarter']:+.3f}/"
                  f"{demo['modes'][mode]['bias_last_quarter']:+.3f}"
                  + (f"  MAE vs seed mean {demo['modes'][mode]['mae_vs_seed_mean']:.4f}"
                     if len(runs) > 1 else ""), flush=True)
        for j, t in enumerate(targets):
            demo["per_checkpoint"].append({"step": t["step"], "compute": t["compute"],
                                           "observed": t["accuracy"],
                                           **{m: float(preds[m][j]) for m in MODES}})
        out["demo"][str(path)] = demo
    if not demo_ladders:
        print("  no demo ladder found: no demo-run numbers", flush=True)
    return out


# ------------------------------------------------------------------- 3. drift alerts


def simulate_alerts(tf, params, targets, benchmark, cfg, level=0.9) -> list[int]:
    """Indices of the checkpoints where a below-band alert is raised."""
    state, out = DriftState(), []
    for i, t in enumerate(targets):
        fp = tf.forecast(t["step"], params, t["tokens"], compute=t["compute"], level=level)
        alert, state = decide(Observation(t["step"], t["compute"], benchmark, t["accuracy"]), fp, state, cfg)
        if alert is not None and alert.reason is AlertReason.BELOW_BAND:
            out.append(i)
    return out


def bench_drift(seeds, n_bootstrap: int, cfg: DriftConfig, demo_ladders) -> dict:
    out = {"config": cfg.__dict__, "n_bootstrap": n_bootstrap, "modes": {}}
    for mode in DRIFT_MODES:
        res = {"healthy_false_alert_runs": 0, "healthy_runs": 0, "healthy_evaluations": 0,
               "healthy_false_alerts": 0}
        for name, kw in (("slowdown_10x", {"sabotage_at": 0.35, "slowdown": 10.0}),
                         ("slowdown_3x", {"sabotage_at": 0.35, "slowdown": 3.0})):
            res[name] = {"detected": 0, "runs": 0, "latencies": [], "alerts_before_sabotage": 0}
        for seed in seeds:
            for name, kw in (("healthy", {}), ("slowdown_10x", {"sabotage_at": 0.35, "slowdown": 10.0}),
                             ("slowdown_3x", {"sabotage_at": 0.35, "slowdown": 3.0})):
                run = synthetic_run(n_samples=600, seed=seed, **kw)
                tf = forecaster(mode, n_bootstrap=n_bootstrap, random_state=seed).fit(
                    run.ladder, run.benchmark)
                alerts = simulate_alerts(tf, run.target_params, run.target, run.benchmark, cfg)
                if name == "healthy":
                    res["healthy_runs"] += 1
                    res["healthy_evaluations"] += len(run.target)
                    res["healthy_false_alerts"] += len(alerts)
                    res["healthy_false_alert_runs"] += bool(alerts)
                    continue
                first_bad = next(i for i, t in enumerate(run.target) if t["sabotaged"])
                r = res[name]
                r["runs"] += 1
                r["alerts_before_sabotage"] += sum(a < first_bad for a in alerts)
                after = [a - first_bad + 1 for a in alerts if a >= first_bad]
                if after:
                    r["detected"] += 1
                    r["latencies"].append(after[0])
        for name in ("slowdown_10x", "slowdown_3x"):
            lat = res[name]["latencies"]
            res[name]["median_latency"] = float(np.median(lat)) if lat else None
        out["modes"][mode] = res
        print(f"  {mode:16s} healthy: false alerts in {res['healthy_false_alert_runs']}/{res['healthy_runs']} runs "
              f"({res['healthy_false_alerts']}/{res['healthy_evaluations']} evaluations)"
              + "".join(f" | {n}: detected {res[n]['detected']}/{res[n]['runs']}, median latency "
                        f"{res[n]['median_latency']} evaluations" for n in ("slowdown_10x", "slowdown_3x")),
              flush=True)
    out["demo"] = {}
    for path, ladder, params, targets, _ in demo_target_runs(demo_ladders):
        demo = {}
        for mode in DRIFT_MODES:
            tf = forecaster(mode, n_bootstrap=n_bootstrap).fit(ladder, "demo")
            alerts = simulate_alerts(tf, params, targets, "demo", cfg)
            demo[mode] = {"alerts_at_steps": [targets[i]["step"] for i in alerts],
                          "n_checkpoints": len(targets)}
            print(f"  demo target run {path}, {mode:16s}: below-band alerts at steps "
                  f"{demo[mode]['alerts_at_steps'] or 'none'}", flush=True)
        out["demo"][str(path)] = demo
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="3 seeds, smallest model, 3 checkpoints")
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--n-bootstrap", type=int, default=100)
    p.add_argument("--out", default=str(RESULTS / "bench_monitor.json"))
    p.add_argument("--skip-in-loop", action="store_true")
    p.add_argument("--demo-ladder", action="append", default=None,
                   help="ladder(s) with a target run (default: the shipped demo ladder, if any)")
    args = p.parse_args(argv)
    demo_ladders = args.demo_ladder or ([DEMO_LADDER] if DEMO_LADDER.is_dir() else [])
    warnings.simplefilter("ignore", FitWarning)
    table = _Tee(sys.stdout)
    sys.stdout = table
    seeds = list(range(3 if args.quick else args.seeds))
    result = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                          "load_avg": os.getloadavg(), "python": platform.python_version()},
              "date": time.strftime("%Y-%m-%d %H:%M")}
    if not args.skip_in_loop:
        print("1. in-loop cost of on_checkpoint", flush=True)
        result["in_loop"] = bench_in_loop(SHAPES[:1] if args.quick else SHAPES, 3 if args.quick else 8)
    print("2. trajectory error (forecast - measured accuracy)", flush=True)
    result["trajectory"] = bench_trajectory(seeds, args.n_bootstrap, demo_ladders)
    print("3. drift alerts (default DriftConfig, level 0.9)", flush=True)
    result["drift"] = bench_drift(seeds, args.n_bootstrap, DriftConfig(), demo_ladders)
    result["machine"]["load_avg_end"] = os.getloadavg()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2, default=float))
    sys.stdout = table.stream
    Path(args.out).with_suffix(".txt").write_text(table.text())
    print(f"wrote {args.out} and its table {Path(args.out).with_suffix('.txt')}")


class _Tee:
    """Echo stdout and keep a copy of it (the table written next to the JSON)."""

    def __init__(self, stream):
        self.stream, self._parts = stream, []

    def write(self, text):
        self._parts.append(text)
        return self.stream.write(text)

    def flush(self):
        self.stream.flush()

    def text(self) -> str:
        return "".join(self._parts)


if __name__ == "__main__":
    main()
