"""Forecast accuracy of every method, side by side, on real and synthetic ladders.

For every case (a ladder, a benchmark and a held-out target whose accuracy is known)
every registered method is fitted on the same ladder points and forecasts the target.
The table gives the absolute error in accuracy points; a method that cannot forecast a
case shows ``—`` (and counts as failed). Each method's 90% bootstrap interval is
checked for coverage of the truth.

Cases (see ``cases.py``): Pythia MATH pass@1/10/100 (Large Language Monkeys), the
Pythia MATH and GSM8K checkpoint sweeps, OpenLM per corpus, leave-one-largest-out
inside each, and seeded synthetic ladders with known truth. Real cases are skipped
when ``../shared/cod_data`` is absent.

Usage::

    python benchmarks/bench_accuracy.py [--quick] [--methods cod,bnsl] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from datetime import date
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cases import DATA_DIR, Case, real_cases  # noqa: E402

from cod_monitor.methods import available_methods, compare_methods  # noqa: E402
from cod_monitor.synthetic import synthetic_ladder  # noqa: E402


def synthetic_cases(seeds) -> list[Case]:
    out = []
    for seed in seeds:
        syn = synthetic_ladder(n_samples=2000, seed=seed)
        out.append(
            Case(
                f"synthetic seed {seed}", "synthetic", syn.ladder, syn.benchmark,
                syn.target.name, syn.expected_accuracy[syn.target.name], {},
            )
        )
    return out


def run(cases, methods, n_bootstrap, level=0.9):
    rows = []
    for case in cases:
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = compare_methods(
                case.ladder, case.benchmark, case.target_compute, methods,
                level=level, n_bootstrap=n_bootstrap, random_state=0, **case.options,
            )
        row = {"case": case.name, "group": case.group, "truth": case.truth, "methods": {}}
        for name, r in res.items():
            entry = {"value": r["value"], "interval": r["interval"], "error": r.get("error")}
            if r["value"] is not None:
                entry["abs_error_pts"] = 100 * abs(r["value"] - case.truth)
                lo, hi = r["interval"]
                entry["covered"] = bool(lo <= case.truth <= hi)
            row["methods"][name] = entry
        row["wall_s"] = time.perf_counter() - t0
        rows.append(row)
        print(f"  {case.name}: {row['wall_s']:.1f} s", file=sys.stderr)
    return rows


def summarize(rows, methods, groups):
    out = {}
    for name in methods:
        errs = [r["methods"][name].get("abs_error_pts") for r in rows if r["group"] in groups]
        ok = [e for e in errs if e is not None]
        cov = [r["methods"][name].get("covered") for r in rows if r["group"] in groups]
        cov = [c for c in cov if c is not None]
        out[name] = {
            "n_cases": len(errs),
            "n_failed": len(errs) - len(ok),
            "mean_abs_error_pts": float(np.mean(ok)) if ok else None,
            "max_abs_error_pts": float(np.max(ok)) if ok else None,
            "coverage": float(np.mean(cov)) if cov else None,
        }
    return out


def best_baseline_wins(rows, methods, cod="cod"):
    """Cases where ``cod`` is at least as good as every other method that forecast."""
    wins = 0
    for r in rows:
        c = r["methods"][cod].get("abs_error_pts")
        others = [r["methods"][m].get("abs_error_pts") for m in methods if m != cod]
        others = [o for o in others if o is not None]
        if c is not None and (not others or c <= min(others) + 1e-9):
            wins += 1
    return wins


def format_table(rows, methods, summary):
    width = max(len(r["case"]) for r in rows) + 2
    head = f"{'case':<{width}}{'truth':>8}" + "".join(f"{m[:12]:>13}" for m in methods)
    lines = [head, "-" * len(head)]
    for r in rows:
        cells = []
        for m in methods:
            e = r["methods"][m].get("abs_error_pts")
            mark = "" if e is None or not r["methods"][m].get("covered") else "*"
            cells.append(f"{'—' if e is None else f'{e:.2f}{mark}':>13}")
        lines.append(f"{r['case']:<{width}}{r['truth']:>8.4f}" + "".join(cells))
    lines.append("-" * len(head))
    for key, label in (("mean_abs_error_pts", "mean |err| (forecast cases)"),
                       ("max_abs_error_pts", "max |err|"),
                       ("n_failed", "cases with no forecast"),
                       ("coverage", "90% interval coverage")):
        cells = []
        for m in methods:
            v = summary[m][key]
            cells.append(f"{'—' if v is None else (f'{v:.2f}' if key != 'n_failed' else str(v)):>13}")
        lines.append(f"{label:<{width}}{'':>8}" + "".join(cells))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer cases and bootstrap draws")
    parser.add_argument("--methods", default=None, help="comma-separated (default: all)")
    parser.add_argument("--n-bootstrap", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "accuracy.json")
    args = parser.parse_args(argv)
    methods = available_methods() if not args.methods else args.methods.split(",")

    real = real_cases(leave_largest_out=not args.quick)
    if not real:
        print(f"note: {DATA_DIR} not found; real-ladder cases skipped", file=sys.stderr)
    synth = synthetic_cases(range(2 if args.quick else 5))
    n_boot = 20 if args.quick else args.n_bootstrap
    start = time.perf_counter()
    rows = run(real + synth, methods, n_boot)
    real_groups = {c.group for c in real}
    summary = {
        "real": summarize(rows, methods, real_groups),
        "synthetic": summarize(rows, methods, {"synthetic"}),
    }
    wall = time.perf_counter() - start
    print(format_table(rows, methods, summary["real"] if real else summary["synthetic"]))
    if real:
        print()
        print(format_table([r for r in rows if r["group"] == "synthetic"], methods, summary["synthetic"]))
        wins = best_baseline_wins([r for r in rows if r["group"] in real_groups], methods)
        print(f"\ncod at least as good as every other method on {wins} of {len(real)} real cases")
    print(f"(* = the 90% interval covers the truth; {wall:.0f} s)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "date": date.today().isoformat(),
        "command": "python benchmarks/bench_accuracy.py" + (" --quick" if args.quick else ""),
        "machine": platform.platform(),
        "n_bootstrap": n_boot,
        "rows": rows,
        "summary": summary,
        "wall_s": wall,
    }, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
