"""Benchmark: the demo ladder with each run's pass rates averaged over training seeds.

`cod-monitor ladder info` flags the shipped demo ladder: 15-16 % of the samples a ladder
run solves are failed by the next larger run (``cod_monitor.difficulty_reversals``),
because which rare facts a tiny model memorises depends on its initialisation and data
order. This script tests that reading and what it costs each method. It trains every
ladder run of the recipe again with other seeds, ``--seeds`` runs per size in all (the
shipped run is seed 0; about 160 s for two more seeds on 2 cores). It then averages each
size's per-sample pass rates over its seeds (final checkpoints) and forecasts the
target's final pass rate (one run, as shipped) with every method, for 1, 2, ... seeds.

Writes ``benchmarks/results/demo_seeds.json`` and keeps the extra runs' ladder in
``benchmarks/results/demo_seeds_ladder`` (``--reuse`` skips the training).

It starts from a one-seed ladder: the shipped ladder averages three seeds since session 5,
so pass ``--ladder DIR/ladder`` of a ``cod-monitor ladder build-demo --out DIR --seeds 1``
build (the session-4 numbers in BENCHMARKS.md started from the one-seed ladder shipped then).

Usage::

    python -m benchmarks.bench_demo_seeds --ladder DIR/ladder [--seeds 3] [--reuse]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
import warnings
from pathlib import Path

import numpy as np

from cod_monitor.demo import SHIPPED_LADDER
from cod_monitor.demo.build import add_runs, seed_variants
from cod_monitor.demo.recipe import ladder_specs
from cod_monitor.ladder.diagnostics import difficulty_reversals
from cod_monitor.ladder import Ladder, PassRateMatrix
from cod_monitor.methods import make_forecaster
from cod_monitor.ladder.selection import final_checkpoints


from benchmarks.cases import read_build

RESULTS = Path(__file__).resolve().parent / "results"
FAMILIES = ("fact", "city", "add")
METHODS = ("cod", "cod-paper", "cod-quartic", "e2e-exp", "e2e-passrate", "bnsl",
           "loss-intermediate")


def final_by_run(ladder: Ladder) -> dict:
    return {ladder.models[i].run_key: ladder.models[i] for i in final_checkpoints(ladder.models)}


def averaged_ladder(ladder: Ladder, n_seeds: int) -> Ladder:
    """Final checkpoints only: each ladder size's pass rates averaged over its seeds."""
    finals = final_by_run(ladder)
    base = [finals[s.name] for s in ladder_specs()]
    target = max(ladder.models_with_role("target"), key=lambda m: m.step)
    models = sorted([dataclasses.replace(m, step=None) for m in (*base, target)],
                    key=lambda m: (m.compute, m.name))
    matrices = {}
    for bench in ladder.benchmarks:
        full = ladder.matrix(bench, roles=("ladder", "target"))

        def column(name):
            return full.pass_rates[:, full.model_names.index(name)]

        cols = []
        for m in models:
            names = [m.name]
            if m.role == "ladder":
                names += [finals[f"{m.run_key}-seed{k}"].name for k in range(1, n_seeds)]
            cols.append(np.mean([column(n) for n in names], axis=0))
        matrices[bench] = PassRateMatrix(bench, full.sample_ids, models, np.stack(cols, axis=1))
    return Ladder(models, matrices, compute_unit=ladder.compute_unit,
                  eval_settings=ladder.eval_settings)


def evaluate(ladder: Ladder) -> dict:
    target = ladder.models_with_role("target")[0]
    out = {}
    for bench in (*FAMILIES, "demo"):
        rev = difficulty_reversals(ladder, bench)
        truth = float(ladder.matrix(bench, roles=("target",)).pass_rates[:, 0].mean())
        row = {"truth": truth, "reversal_rate": None if np.isnan(rev.rate) else rev.rate,
               "reversed": int(rev.reversed.sum()), "solved": int(rev.solved.sum()),
               "errors_pts": {}}
        for method in METHODS:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    est = make_forecaster(method, n_bootstrap=0, random_state=0).fit(ladder, bench)
                    row["errors_pts"][method] = 100 * (float(est.predict(target.compute)) - truth)
            except Exception:  # no forecast on this family (e.g. no kept cluster)
                row["errors_pts"][method] = None
        out[bench] = row
    summary = {}
    for method in METHODS:
        errs = [out[b]["errors_pts"][method] for b in FAMILIES]
        ok = [abs(e) for e in errs if e is not None]
        summary[method] = {"mean_abs_families": float(np.mean(ok)) if ok else None,
                           "max_abs_families": float(np.max(ok)) if ok else None,
                           "failed": len(errs) - len(ok)}
    return {"benchmarks": out, "summary": summary}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="runs per ladder size in all")
    parser.add_argument("--reuse", action="store_true", help="reuse the runs of an earlier run")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--ladder", type=Path, default=SHIPPED_LADDER,
                        help="a one-seed demo ladder (default: the shipped one)")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    kept = args.out / "demo_seeds_ladder"
    if args.reuse and kept.is_dir():
        ladder, train_s = Ladder.load(kept), None
    else:
        build = read_build(args.ladder)
        if not build:
            parser.error(f"no build.json in or beside {args.ladder}: pass the ladder/ of a "
                         "`cod-monitor ladder build-demo` output")
        if build.get("seeds_per_ladder_size", 1) != 1:
            parser.error(f"{args.ladder} averages {build['seeds_per_ladder_size']} seeds per "
                         "size; this benchmark needs a one-seed ladder: run `cod-monitor ladder "
                         "build-demo --out DIR --seeds 1` and pass --ladder DIR/ladder")
        shipped = Ladder.load(args.ladder)
        # the runs `build-demo --seeds K` trains; seed 0 is the given one-seed ladder's run
        ladder = add_runs(shipped, seed_variants(ladder_specs(), args.seeds), **build["generator"])
        train_s = time.perf_counter() - t0
        ladder.save(kept, compress=True)
    results = {k: evaluate(averaged_ladder(ladder, k)) for k in range(1, args.seeds + 1)}

    def fmt(v):
        return "—" if v is None else f"{v:+.2f}"

    lines = ["| seeds | benchmark | reversals | " + " | ".join(f"`{m}`" for m in METHODS) + " |",
             "|---|---|---|" + "---:|" * len(METHODS)]
    for k, res in results.items():
        for bench, row in res["benchmarks"].items():
            rev = ("—" if row["reversal_rate"] is None else
                   f"{row['reversal_rate']:.1%} ({row['reversed']}/{row['solved']})")
            lines.append(f"| {k} | {bench} | {rev} | "
                         + " | ".join(fmt(row["errors_pts"][m]) for m in METHODS) + " |")
        lines.append(f"| {k} | **mean \\|err\\| fact/city/add (max)** | | " + " | ".join(
            "—" if res["summary"][m]["mean_abs_families"] is None else
            f"{res['summary'][m]['mean_abs_families']:.2f} ({res['summary'][m]['max_abs_families']:.2f})"
            for m in METHODS) + " |")
    print("\n".join(lines))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "demo_seeds.json").write_text(json.dumps(
        {"seeds": args.seeds, "results": results, "train_s": train_s,
         "wall_s": time.perf_counter() - t0,
         "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
