"""Benchmark of the demo ladder: build cost and forecast error on the recipe-matched target.

Reads a demo ladder directory (default: the shipped ``cod_monitor/data/demo_ladder``)
and its ``build.json``, then, for every task family and the combined ``demo``
benchmark, fits every registered method with ``compare_methods`` on the ladder runs
(final checkpoints, the paper's setting) and forecasts the target run's final
checkpoint, whose measured mean pass rate is the truth. Also runs COD with the
paper's compute unit (1e18 FLOPs) instead of the ladder's, to show the unit's
effect on the extrapolatable filter.

The truth is one training run, and a run's accuracy varies with its seeds. With
``--target-seeds K`` the script trains K more target runs by the same recipe (seed k:
initialisation k, data k + 1, as ``cod-monitor demo --seed k``; about 5 minutes each on
one core, two at a time), adds them to a copy of the ladder
(``OUT/demo_target_seeds_ladder``, reusable with ``--ladder``) and also reports every
method's error against the mean over the seed runs, and the noise floor: the mean
distance of one run from that mean, i.e. the error a forecast of exactly the recipe's
expected accuracy scores against a single run.

Writes ``benchmarks/results/demo_ladder.json`` and ``demo_ladder.md`` and prints the
table. Usage::

    python -m benchmarks.bench_demo_ladder [--ladder DIR] [--n-bootstrap 50] [--target-seeds 4]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

from cod_monitor.demo import SHIPPED_LADDER
from cod_monitor import CODForecaster
from cod_monitor.ladder import Ladder
from cod_monitor.methods import available_methods, compare_methods
from cod_monitor.ladder.selection import final_checkpoints as run_finals


from benchmarks.cases import read_build, target_and_seed_runs

RESULTS = Path(__file__).resolve().parent / "results"


def final_checkpoints(ladder: Ladder):
    """The last checkpoint of every run, by compute."""
    return sorted((ladder.models[i] for i in run_finals(ladder.models)), key=lambda m: m.compute)


def add_target_seeds(ladder: Ladder, build: dict, k: int, out: Path) -> Ladder:
    """Train ``k`` more target runs (seeds 1..k as in ``cod-monitor demo --seed``) and save
    the ladder with them under ``out``."""
    from dataclasses import replace

    from cod_monitor.demo.build import add_runs
    from cod_monitor.demo.recipe import seed_overrides, target_spec

    base = target_spec()
    have = {m.run_key for m in ladder.models}
    specs = [replace(target_spec(**seed_overrides(s)), name=f"{base.name}-seed{s}")
             for s in range(1, k + 1) if f"{base.name}-seed{s}" not in have]
    if specs:
        gen = build.get("generator", {})
        ladder = add_runs(ladder, specs, seed=gen.get("seed", 0),
                          eval_size=gen.get("eval_size", 1200))
        ladder.save(out, compress=True)
    return ladder


def measured(ladder: Ladder, benchmark: str, model) -> float:
    roles = sorted({m.role for m in ladder.models})
    mat = ladder.matrix(benchmark, roles=roles)
    return float(mat.pass_rates[:, mat.model_names.index(model.name)].mean())


def cod_diagnostics(est: CODForecaster) -> dict:
    rep = est.report()
    verdicts = {}
    for c in rep["clusters"]:
        verdicts[c["verdict"]] = verdicts.get(c["verdict"], 0) + c["size"]
    return {
        "n_clusters": rep["n_clusters"],
        "n_kept": rep["n_kept"],
        "n_outliers": rep["n_outliers"],
        "subset_share": rep["subset_share"],
        "samples_by_verdict": verdicts,
        "fallback": rep["fallback"],
        "details": [f"n={c['size']} {c['verdict']}: {c['detail']}" for c in rep["clusters"]],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ladder", type=Path, default=SHIPPED_LADDER)
    parser.add_argument("--n-bootstrap", type=int, default=50)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--target-seeds", type=int, default=0, metavar="K",
                        help="train K more target runs and report the error against their "
                             "mean too (default 0)")
    args = parser.parse_args(argv)

    ladder = Ladder.load(args.ladder)
    build = read_build(args.ladder)
    if args.target_seeds > 0:
        ladder = add_target_seeds(ladder, build, args.target_seeds,
                                  args.out / "demo_target_seeds_ladder")
    finals = final_checkpoints(ladder)
    final_of = {m.run_key: m for m in finals}
    seed_runs = [final_of[k] for k in target_and_seed_runs(ladder)]
    target = seed_runs[0]
    largest = [m for m in finals if m.role == "ladder"][-1]
    methods = available_methods()
    benchmarks = [b for b in ladder.benchmarks if b != "demo"] + ["demo"]

    rows, t0 = [], time.perf_counter()
    for bench in benchmarks:
        truth = measured(ladder, bench, target)
        per_seed = [measured(ladder, bench, m) for m in seed_runs]
        seed_mean = float(np.mean(per_seed))
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # the target's recipe reaches cod's transport, which finds the six final
            # checkpoints on one curve D(N) and leaves them alone
            res = compare_methods(ladder, bench, target.compute, methods,
                                  n_bootstrap=args.n_bootstrap, random_state=0,
                                  tokens_per_param=target.tokens / target.params)
            paper_unit = compare_methods(ladder, bench, target.compute, ["cod"],
                                         n_bootstrap=0, random_state=0, compute_unit=1e18)
        row = {"benchmark": bench, "truth": truth,
               "largest_ladder_acc": measured(ladder, bench, largest),
               "fit_s": time.perf_counter() - t, "methods": {},
               "seed_runs": [m.run_key for m in seed_runs], "truth_per_seed": per_seed,
               "truth_seed_mean": seed_mean,
               "truth_seed_sd": float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else None,
               # what a forecast of exactly the seeds' mean scores against one run
               "noise_floor_pts": 100 * float(np.mean(np.abs(np.subtract(per_seed, seed_mean)))),
               }
        for name, r in res.items():
            row["methods"][name] = {
                "value": r["value"], "interval": r["interval"],
                "abs_error_pts": None if r["value"] is None else 100 * abs(r["value"] - truth),
                "abs_error_vs_seed_mean_pts": (None if r["value"] is None
                                               else 100 * abs(r["value"] - seed_mean)),
                "error": r.get("error"),
            }
        pu = paper_unit["cod"]
        row["cod_paper_unit"] = {
            "value": pu["value"], "error": pu.get("error"),
            "abs_error_pts": None if pu["value"] is None else 100 * abs(pu["value"] - truth)}
        est = res["cod"]["estimator"]
        row["cod_diagnostics"] = cod_diagnostics(est) if est is not None else None
        rows.append(row)

    def err(row, name):
        v = row["methods"][name]["abs_error_pts"]
        return "fail" if v is None else f"{v:.2f}"

    families = [r for r in rows if r["benchmark"] != "demo"]
    demo_row = next(r for r in rows if r["benchmark"] == "demo")
    n_seeds = len(seed_runs)
    summary = {}
    for name in methods:
        errs = [r["methods"][name]["abs_error_pts"] for r in families]
        ok = [e for e in errs if e is not None]
        vs_mean = [r["methods"][name]["abs_error_vs_seed_mean_pts"] for r in families]
        vs_mean = [e for e in vs_mean if e is not None]
        summary[name] = {
            "mean_pts": float(np.mean(ok)) if ok else None,
            "max_pts": float(np.max(ok)) if ok else None,
            "failed": len(errs) - len(ok),
            "demo_pts": demo_row["methods"][name]["abs_error_pts"],
            "mean_vs_seed_mean_pts": float(np.mean(vs_mean)) if vs_mean else None,
            "max_vs_seed_mean_pts": float(np.max(vs_mean)) if vs_mean else None,
            "demo_vs_seed_mean_pts": demo_row["methods"][name]["abs_error_vs_seed_mean_pts"],
        }

    lines = ["# Demo ladder benchmark", ""]
    if build:
        lines += [f"Build: `{build.get('command')}` on {build.get('date')}, wall "
                  f"{build.get('wall_s', 0):.0f} s, {build['machine']['cpus']} CPUs, "
                  f"{build['machine']['workers']} workers; {build.get('n_eval_samples')} samples.",
                  "", "| run | role | params | tokens | lr | compute (FLOPs) | train s | eval s "
                  "| tokens/s | final acc |", "|---|---|---|---|---|---|---|---|---|---|"]
        for r in build["runs"]:
            lines.append(
                f"| {r['name']} | {r['role']} | {r['params']:,} | {r['tokens']:,} | "
                f"{r['learning_rate']:.2e} | {r['compute']:.3g} | {r['train_s'] or 0:.0f} | "
                f"{r['eval_s'] or 0:.0f} | {r['tokens_per_s'] or 0:,.0f} | "
                f"{r['final_accuracy']:.3f} |")
        lines.append("")
    lines += [f"Target {target.name} at {target.compute:.3g} FLOPs = "
              f"{target.compute / largest.compute:.1f}x the largest ladder run "
              f"({largest.name}). Absolute error in points (truth = measured mean exact pass "
              "rate of the target's final checkpoint).", ""]
    head = ["benchmark", "truth", "largest", *methods, "cod@1e18"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for r in rows:
        pu = r["cod_paper_unit"]["abs_error_pts"]
        lines.append("| " + " | ".join(
            [r["benchmark"], f"{100 * r['truth']:.1f}", f"{100 * r['largest_ladder_acc']:.1f}",
             *[err(r, m) for m in methods], "fail" if pu is None else f"{pu:.2f}"]) + " |")
    fmt = (lambda v: "-" if v is None else f"{v:.2f}")
    if n_seeds > 1:
        lines += ["", f"Target runs: {', '.join(m.run_key for m in seed_runs)}. Truth per "
                  "seed, their mean and sd (points), and the noise floor: the mean distance "
                  "of one run from the mean.", "",
                  "| benchmark | per seed | mean | sd | noise floor |", "|---|---|---|---|---|"]
        for r in rows:
            lines.append(f"| {r['benchmark']} | "
                         + ", ".join(f"{100 * v:.1f}" for v in r["truth_per_seed"])
                         + f" | {100 * r['truth_seed_mean']:.2f} | {100 * r['truth_seed_sd']:.2f}"
                         f" | {r['noise_floor_pts']:.2f} |")
        floor = float(np.mean([r["noise_floor_pts"] for r in families]))
        lines += ["", f"Noise floor, mean over families: {floor:.2f} points "
                  f"(demo {demo_row['noise_floor_pts']:.2f})."]
    head = "| method | mean over families | max | failed | demo (all samples) |"
    rule = "|---|---|---|---|---|"
    if n_seeds > 1:
        head += f" vs mean of {n_seeds} seeds: mean over families | max | demo |"
        rule += "---|---|---|"
    lines += ["", head, rule]
    for name, s in summary.items():
        line = (f"| {name} | {fmt(s['mean_pts'])} | {fmt(s['max_pts'])} | {s['failed']} "
                f"| {fmt(s['demo_pts'])} |")
        if n_seeds > 1:
            line += (f" {fmt(s['mean_vs_seed_mean_pts'])} | {fmt(s['max_vs_seed_mean_pts'])} | "
                     f"{fmt(s['demo_vs_seed_mean_pts'])} |")
        lines.append(line)
    lines += ["", "COD diagnostics (ladder compute unit):", ""]
    for r in rows:
        d = r["cod_diagnostics"]
        if d is None:
            lines.append(f"- {r['benchmark']}: COD failed: {r['methods']['cod']['error']}")
            continue
        lines.append(f"- {r['benchmark']}: {d['n_clusters']} clusters, {d['n_kept']} kept, "
                     f"{d['n_outliers']} outliers, subset share {d['subset_share']:.2f}, "
                     f"samples by verdict {d['samples_by_verdict']}")
    text = "\n".join(lines) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    payload = {"ladder": str(args.ladder), "target": target.name, "target_compute": target.compute,
               "largest_ladder_compute": largest.compute, "n_bootstrap": args.n_bootstrap,
               "build": build, "rows": rows, "summary": summary,
               "wall_s": time.perf_counter() - t0}
    (args.out / "demo_ladder.json").write_text(json.dumps(payload, indent=2, default=str))
    (args.out / "demo_ladder.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
