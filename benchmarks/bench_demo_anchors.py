"""Benchmark: what anchors do for COD's mapping on the demo ladder.

The paper fits its subset-to-full mapping on the ladder *and* on anchors, evaluations
of existing models outside the ladder's recipe (Qwen2-72B in the paper), and reports
that dropping the anchor raises its mean error from 1.55 to 2.65 points. The shipped
demo ladder has no anchor. This script trains the two anchor runs of
:func:`cod_monitor.demo.recipe.anchor_specs` (the ladder's two largest shapes on 6x
and 4x their recipe tokens, other seeds; about 8 minutes on 2 cores), adds them to
the shipped ladder with :func:`cod_monitor.demo.build.add_runs`, and forecasts the
target's final pass rate per task family from the six final ladder checkpoints:

- every method with no anchor (the shipped ladder's setting);
- the methods that use a mapping (``cod-paper``: spline; ``cod-quartic``;
  ``cod-spline-mapping``: ``cod`` with the mapping instead of the share combination)
  with four anchor sets: all anchor checkpoints, the two final ones, each run alone.
  ``cod`` itself combines by share and uses no anchor; it is run once more with the
  anchors present to show that.

Absolute error in points; point forecasts (no bootstrap). Writes
``benchmarks/results/demo_anchors.json`` and keeps the anchor runs' ladder in
``benchmarks/results/demo_anchors_ladder`` (``--reuse`` skips the training).

Usage::

    python -m benchmarks.bench_demo_anchors [--reuse]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

from cod_monitor.demo import SHIPPED_LADDER
from cod_monitor.demo.build import add_runs
from cod_monitor.demo.recipe import anchor_specs
from cod_monitor.ladder import Ladder
from cod_monitor.methods import make_forecaster
from cod_monitor.ladder.selection import final_checkpoints

RESULTS = Path(__file__).resolve().parent / "results"
FAMILIES = ("fact", "city", "add")
NO_ANCHOR_METHODS = ("cod", "cod-paper", "cod-quartic", "cod-spline-mapping", "e2e-exp",
                     "e2e-passrate", "bnsl", "loss-intermediate")
MAPPING_METHODS = ("cod-paper", "cod-quartic", "cod-spline-mapping", "cod")


def anchor_sets(ladder: Ladder) -> dict:
    anchors = ladder.models_with_role("anchor")
    final = {anchors[i].run_key: anchors[i] for i in final_checkpoints(anchors)}
    sets = {"all checkpoints": [m.name for m in anchors],
            "final checkpoints": [m.name for m in final.values()]}
    for run in sorted(final):
        sets[f"{run} (all)"] = [m.name for m in anchors if m.run_key == run]
    return sets


def accuracy(ladder: Ladder, bench: str, name: str) -> float:
    mat = ladder.matrix(bench, roles=("ladder", "target", "anchor"))
    return float(mat.pass_rates[:, mat.model_names.index(name)].mean())


def forecast_errors(ladder, target, method, anchors) -> dict:
    out = {}
    for bench in (*FAMILIES, "demo"):
        truth = accuracy(ladder, bench, target.name)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est = make_forecaster(method, n_bootstrap=0, random_state=0,
                                      anchors=anchors).fit(ladder, bench)
                out[bench] = 100 * (float(est.predict(target.compute)) - truth)
        except Exception as exc:  # a method without a forecast on this family
            out[bench] = None
            out[f"{bench}_error"] = f"{type(exc).__name__}: {exc}"[:200]
    fam = [abs(out[b]) for b in FAMILIES if out[b] is not None]
    out["mean_abs_families"] = float(np.mean(fam)) if fam else None
    out["max_abs_families"] = float(np.max(fam)) if fam else None
    out["failed"] = sum(out[b] is None for b in FAMILIES)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reuse", action="store_true",
                        help="reuse the anchor runs kept by an earlier run")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    shipped = Ladder.load(SHIPPED_LADDER)
    build = json.loads((SHIPPED_LADDER / "build.json").read_text())
    kept = args.out / "demo_anchors_ladder"
    if args.reuse and kept.is_dir():
        ladder = Ladder.load(kept)
        train_s = None
    else:
        ladder = add_runs(shipped, anchor_specs(), **build["generator"])
        train_s = time.perf_counter() - t0
        ladder.save(kept, compress=True)
    target = max(ladder.models_with_role("target"), key=lambda m: m.step)
    sets = anchor_sets(ladder)
    anchor_acc = {name: {b: accuracy(ladder, b, name) for b in (*FAMILIES, "demo")}
                  for name in sets["final checkpoints"]}
    rows = []
    for method in NO_ANCHOR_METHODS:
        rows.append({"method": method, "anchors": "none",
                     **forecast_errors(ladder, target, method, ())})
    for label, names in sets.items():
        for method in MAPPING_METHODS:
            rows.append({"method": method, "anchors": label,
                         **forecast_errors(ladder, target, method, names)})

    def fmt(v):
        return "—" if v is None else f"{v:+.2f}"

    lines = [f"Target {target.name}: " + ", ".join(
        f"{b} {100 * accuracy(ladder, b, target.name):.1f}" for b in (*FAMILIES, "demo")),
        "Anchors (final checkpoints): " + "; ".join(
        f"{n} " + ", ".join(f"{b} {100 * a[b]:.1f}" for b in (*FAMILIES, "demo"))
        for n, a in anchor_acc.items()), "",
        "| method | anchors | fact | city | add | demo | mean abs (families) | max abs |",
        "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        mean = "—" if r["mean_abs_families"] is None else f"{r['mean_abs_families']:.2f}"
        mx = "—" if r["max_abs_families"] is None else f"{r['max_abs_families']:.2f}"
        lines.append(f"| `{r['method']}` | {r['anchors']} | {fmt(r['fact'])} | {fmt(r['city'])} "
                     f"| {fmt(r['add'])} | {fmt(r['demo'])} | {mean} | {mx} |")
    text = "\n".join(lines)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    payload = {"target": target.name, "anchor_sets": sets, "anchor_accuracy": anchor_acc,
               "rows": rows, "train_s": train_s, "wall_s": time.perf_counter() - t0,
               "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    (args.out / "demo_anchors.json").write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
