"""Forecast accuracy of every method, side by side, on real and synthetic ladders.

For every case (a ladder, a benchmark and a held-out target whose accuracy is known)
every registered method is fitted on the same ladder points and forecasts the target.
The table gives the absolute error in accuracy points; a method that cannot forecast a
case shows ``—`` (and counts as failed). Each method's 90% bootstrap interval is
checked for coverage of the truth.

Cases (see ``cases.py``): Pythia MATH pass@1/10/100 (Large Language Monkeys), the
Pythia MATH and GSM8K checkpoint sweeps, OpenLM per corpus, leave-one-largest-out
inside each (the 4 largest runs of each ladder, each forecast from the runs below it:
held-out checks of accuracy and of interval coverage), the shipped demo ladder when it
has been built (group ``demo``), seeded synthetic ladders with known truth, and seeded
mixed-recipe synthetic ladders (every size at 1x, 4x and 16x tokens; group
``synthetic-mixed``). Every method is given the target's tokens per parameter; ``cod``
uses it for its recipe transport. Real cases are skipped when ``../shared/cod_data`` is
absent.

The printout has one table for ``cod``, ``cod-paper`` and the baselines and one for
the ablations, each over the real cases and over the synthetic ones, then the bar
(``cod`` against the best baseline case by case, and the means) and the coverage of
every method's 90% interval with its median width.

Usage::

    python -m benchmarks.bench_accuracy [--quick] [--methods cod,bnsl] [--out FILE]
    python -m benchmarks.bench_accuracy --report FILE [--markdown]   # re-print, no fitting
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

from benchmarks.cases import DATA_DIR, Case, cpu_ladder_cases, demo_cases, real_cases
from cod_monitor.methods import available_methods, compare_methods
from cod_monitor.synthetic import synthetic_ladder, synthetic_mixed_recipe_ladder


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


def mixed_recipe_cases(seeds) -> list[Case]:
    """Synthetic OpenLM-style ladders: every size at 1x, 4x and 16x tokens; a 1x target."""
    out = []
    for seed in seeds:
        ladder, target, truth = synthetic_mixed_recipe_ladder(seed, n_samples=1000)
        out.append(Case(f"mixed-recipe seed {seed}", "synthetic-mixed", ladder, "synthetic",
                        target.name, truth, {}))
    return out


def run(cases, methods, n_bootstrap, level=0.9):
    rows = []
    for case in cases:
        t0 = time.perf_counter()
        target = case.ladder.model(case.target)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # the target's recipe, for the methods that take it (cod's recipe transport)
            res = compare_methods(
                case.ladder, case.benchmark, case.target_compute, methods,
                level=level, n_bootstrap=n_bootstrap, random_state=0,
                tokens_per_param=target.tokens / target.params, **case.options,
            )
        row = {"case": case.name, "group": case.group, "truth": case.truth, "methods": {}}
        for name, r in res.items():
            entry = {"value": r["value"], "interval": r["interval"], "error": r.get("error")}
            if r["value"] is not None:
                entry["abs_error_pts"] = 100 * abs(r["value"] - case.truth)
                lo, hi = r["interval"]
                if np.isfinite([lo, hi]).all():
                    entry["covered"] = bool(lo <= case.truth <= hi)
                    entry["width_pts"] = 100 * (hi - lo)
                else:  # unavailable: neither a hit nor a miss, and no width
                    entry["interval_error"] = r.get("interval_error")
                est = r.get("estimator")
                if hasattr(est, "route_"):
                    entry["route"] = est.route_
                    entry["why"] = est.route_why_
                    est = est.forecaster_
                if hasattr(est, "subset_share_"):
                    entry["subset_share"] = float(est.subset_share_)
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
        widths = [r["methods"][name].get("width_pts") for r in rows if r["group"] in groups]
        widths = [w for w in widths if w is not None]
        out[name] = {
            "n_cases": len(errs),
            "n_failed": len(errs) - len(ok),
            "mean_abs_error_pts": float(np.mean(ok)) if ok else None,
            "max_abs_error_pts": float(np.max(ok)) if ok else None,
            "coverage": float(np.mean(cov)) if cov else None,
            "median_width_pts": float(np.median(widths)) if widths else None,
        }
    return out


def is_baseline(name: str) -> bool:
    """Baselines are the registered methods that are not COD or one of its ablations."""
    return not name.startswith("cod")


def best_baseline_wins(rows, methods, cod="cod"):
    """Cases where ``cod`` is at least as good as every baseline that forecast."""
    return sum(1 for c in bar_by_case(rows, methods, cod) if c["cod_wins"])


def bar_by_case(rows, methods, cod="cod"):
    """Per case: cod's error, the best baseline's error and name, and whether cod wins."""
    out = []
    for r in rows:
        c = r["methods"].get(cod, {}).get("abs_error_pts")
        base = {m: r["methods"][m].get("abs_error_pts") for m in methods if is_baseline(m)}
        base = {m: e for m, e in base.items() if e is not None}
        best = min(base, key=base.get) if base else None
        out.append({
            "case": r["case"],
            "cod": c,
            "best_baseline": best,
            "best_baseline_error": base.get(best),
            "cod_wins": c is not None and (best is None or c <= base[best] + 1e-9),
        })
    return out


def format_table(rows, methods, summary):
    width = max(len(r["case"]) for r in rows) + 2
    col = max(13, max(len(m) for m in methods) + 2)
    head = f"{'case':<{width}}{'truth':>8}" + "".join(f"{m:>{col}}" for m in methods)
    lines = [head, "-" * len(head)]
    for r in rows:
        cells = []
        for m in methods:
            e = r["methods"][m].get("abs_error_pts")
            mark = "" if e is None or not r["methods"][m].get("covered") else "*"
            cells.append(f"{'—' if e is None else f'{e:.2f}{mark}':>{col}}")
        lines.append(f"{r['case']:<{width}}{r['truth']:>8.4f}" + "".join(cells))
    lines.append("-" * len(head))
    for key, label in (("mean_abs_error_pts", "mean |err| (forecast cases)"),
                       ("max_abs_error_pts", "max |err|"),
                       ("n_failed", "cases with no forecast"),
                       ("coverage", "90% interval coverage"),
                       ("median_width_pts", "median interval width")):
        cells = []
        for m in methods:
            v = summary[m][key]
            cells.append(f"{'—' if v is None else (f'{v:.2f}' if key != 'n_failed' else str(v)):>{col}}")
        lines.append(f"{label:<{width}}{'':>8}" + "".join(cells))
    return "\n".join(lines)


def column_sets(methods):
    """The two tables' columns: cod, cod-paper and the baselines; cod and its ablations."""
    main = [m for m in methods
            if m in ("cod", "cod-trend", "cod-mapping", "cod-paper") or is_baseline(m)]
    return main, ["cod"] * ("cod" in methods) + [m for m in methods if m not in main]


def markdown_tables(rows, methods, report) -> str:
    """Per-case tables of every group as Markdown (for BENCHMARKS.md); † = interval miss."""
    main_cols, ablations = column_sets(methods)
    out = []
    for name in REGIMES:
        if name not in report["summary"]:
            continue
        sel = [r for r in rows if GROUPS[name](r["group"])]
        summary = report["summary"][name]
        for cols, what in ((main_cols, "cod, cod-paper and the baselines"),
                           (ablations, "ablations")):
            out += [f"#### {name}: {what}", "",
                    "| case | truth | " + " | ".join(f"`{m}`" for m in cols) + " |",
                    "|---|" + "---:|" * (len(cols) + 1)]
            for r in sel:
                cells = []
                for m in cols:
                    e = r["methods"][m].get("abs_error_pts")
                    miss = "" if e is None or r["methods"][m].get("covered") else "†"
                    cells.append("—" if e is None else f"{e:.2f}{miss}")
                out.append(f"| {r['case']} | {r['truth']:.4f} | " + " | ".join(cells) + " |")

            def stat(key, fmt):
                return " | ".join("—" if summary[m][key] is None else fmt(summary[m][key])
                                  for m in cols)

            out += [f"| **mean abs error** | | {stat('mean_abs_error_pts', lambda v: f'{v:.2f}')} |",
                    f"| **max abs error** | | {stat('max_abs_error_pts', lambda v: f'{v:.2f}')} |",
                    f"| **no forecast** | | {stat('n_failed', str)} |",
                    f"| **90% coverage** | | {stat('coverage', lambda v: f'{v:.2f}')} |",
                    f"| **median 90% width** | | {stat('median_width_pts', lambda v: f'{v:.2f}')} |",
                    ""]
    return "\n".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer cases and bootstrap draws")
    parser.add_argument("--methods", default=None, help="comma-separated (default: all)")
    parser.add_argument("--n-bootstrap", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "accuracy.json")
    parser.add_argument("--groups", default=",".join(CASE_SETS),
                        help="case sets to run, comma-separated (default: all of "
                             f"{', '.join(CASE_SETS)}; 'demo' holds the demo ladder's "
                             "headline and knowledge benchmarks)")
    parser.add_argument("--report", type=Path, default=None, metavar="JSON",
                        help="print the tables of a saved run (no fitting)")
    parser.add_argument("--markdown", action="store_true",
                        help="with --report: the per-case tables as Markdown")
    args = parser.parse_args(argv)
    if args.report is not None:
        saved = json.loads(args.report.read_text())
        rows = saved["rows"]
        methods = list(rows[0]["methods"]) if rows else []
        if args.markdown:
            print(markdown_tables(rows, methods, build_report(rows, methods)))
            return
        print(f"{saved['command']}  ({saved['date']}, {saved['machine']}, "
              f"n_bootstrap={saved['n_bootstrap']}, {saved['wall_s']:.0f} s)")
        print(format_report(rows, methods, build_report(rows, methods)))
        return
    methods = available_methods() if not args.methods else args.methods.split(",")

    groups = set(args.groups.split(","))
    real = real_cases(leave_largest_out=not args.quick, n_loo=4) if "real" in groups else []
    if "real" in groups and not real:
        print(f"note: {DATA_DIR} not found; real-ladder cases skipped", file=sys.stderr)
    demo = demo_cases() if "demo" in groups else []
    if "demo" in groups and not demo:
        print("note: cod_monitor/data/demo_ladder not built; demo cases skipped", file=sys.stderr)
    cpu = cpu_ladder_cases() if "cpu" in groups else []
    if "cpu" in groups and not cpu:
        print("note: benchmarks/data holds no CPU ladder (python -m "
              "benchmarks.build_cpu_ladders); cpu cases skipped", file=sys.stderr)
    synth = (synthetic_cases(range(2 if args.quick else 10))
             + mixed_recipe_cases(range(2 if args.quick else 5))) if "synthetic" in groups else []
    n_boot = 20 if args.quick else args.n_bootstrap
    start = time.perf_counter()
    rows = run(real + demo + cpu + synth, methods, n_boot)
    wall = time.perf_counter() - start
    report = build_report(rows, methods)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "date": date.today().isoformat(),
        "command": "python -m benchmarks.bench_accuracy" + (" --quick" if args.quick else "")
        + (f" --groups {args.groups}" if groups != set(CASE_SETS) else ""),
        "machine": platform.platform(),
        "n_bootstrap": n_boot,
        "rows": rows,
        "summary": report["summary"],
        "bar": report["bar"],
        "regime_goals": regime_goals(methods, report),
        "wall_s": wall,
    }, indent=1))
    print(format_report(rows, methods, report))
    print(f"(* = the 90% interval covers the truth; {wall:.0f} s)")
    print(f"wrote {args.out}")


#: The case sets ``--groups`` selects.
CASE_SETS = ("real", "demo", "cpu", "synthetic")

#: Summary groups: name -> predicate on a row's case group.
GROUPS = {
    "real": lambda g: g in ("pythia-llmonkeys", "pythia-sweep", "openlm"),
    "real-loo": lambda g: g.endswith("-loo"),
    "real-all": lambda g: g in ("pythia-llmonkeys", "pythia-sweep", "openlm") or g.endswith("-loo"),
    "demo": lambda g: g == "demo",
    "knowledge": lambda g: g == "knowledge",
    "cpu": lambda g: g == "cpu",
    "synthetic": lambda g: g == "synthetic",
    "synthetic-mixed": lambda g: g == "synthetic-mixed",
}
#: The regimes of the one-table summary (issue 14): every group but the union.
REGIMES = ("real", "real-loo", "demo", "knowledge", "cpu", "synthetic", "synthetic-mixed")


def build_report(rows, methods):
    """Summaries per group, and the bar: cod against the best baseline."""
    present = {r["group"] for r in rows}
    summary = {}
    for name, pred in GROUPS.items():
        groups = {g for g in present if pred(g)}
        if groups:
            summary[name] = summarize(rows, methods, groups)
    bar = {}
    if "cod" in methods:
        for name in REGIMES:
            if name not in summary:
                continue
            sel = [r for r in rows if GROUPS[name](r["group"])]
            cases = bar_by_case(sel, methods)
            means = {m: s["mean_abs_error_pts"] for m, s in summary[name].items()
                     if s["mean_abs_error_pts"] is not None and s["n_failed"] == 0}
            rivals = {m: v for m, v in means.items() if m == "cod" or is_baseline(m)}
            bar[name] = {
                "cases": cases,
                "cod_wins": sum(c["cod_wins"] for c in cases),
                "n_cases": len(cases),
                "lowest_mean_vs_baselines": min(rivals, key=rivals.get) if rivals else None,
                "lowest_mean": min(means, key=means.get) if means else None,
            }
    return {"summary": summary, "bar": bar}


def regime_goals(methods, report, default="cod", slack=0.5) -> dict:
    """Per regime: the default's mean error against the best and worst single method
    (every other method that forecast every case), and whether it meets the bar
    "mean <= best + ``slack`` points and not the worst"."""
    out = {}
    for name in REGIMES:
        s = report["summary"].get(name)
        if s is None or default not in s:
            continue
        means = {m: v["mean_abs_error_pts"] for m, v in s.items()
                 if v["mean_abs_error_pts"] is not None and v["n_failed"] == 0}
        others = {m: v for m, v in means.items() if m != default}
        mine = means.get(default)
        best = min(others, key=others.get) if others else None
        worst = max(others, key=others.get) if others else None
        out[name] = {
            "default": mine, "best": best, "best_mean": others.get(best),
            "worst": worst, "worst_mean": others.get(worst),
            "met": mine is not None and best is not None and mine <= others[best] + slack
            and mine < others[worst],
        }
    return out


def regime_table(methods, report) -> str:
    """One table: every method's mean (max) error and 90% coverage in every regime,
    then the default's bar per regime."""
    names = [n for n in REGIMES if n in report["summary"]]
    width = max(len(m) for m in methods) + 2
    head = f"{'method':<{width}}" + "".join(f"{n:>22}" for n in names)
    lines = ["== by regime: mean (max) |error| in points, 90% coverage", head, "-" * len(head)]
    for m in methods:
        cells = []
        for n in names:
            v = report["summary"][n][m]
            if v["mean_abs_error_pts"] is None:
                cells.append(f"{'—':>22}")
                continue
            cov = "" if v["coverage"] is None else f" {v['coverage']:.2f}"
            miss = f" [{v['n_failed']}—]" if v["n_failed"] else ""
            cells.append(f"{v['mean_abs_error_pts']:.2f} ({v['max_abs_error_pts']:.2f}){cov}{miss}"
                         .rjust(22))
        lines.append(f"{m:<{width}}" + "".join(cells))
    goals = regime_goals(methods, report)
    for n, g in goals.items():
        if g["default"] is None:
            lines.append(f"  {n}: the default failed on some case")
            continue
        if g["best"] is None:  # the default alone (--methods cod): nothing to compare
            lines.append(f"  {n}: cod {g['default']:.2f}")
            continue
        lines.append(f"  {n}: cod {g['default']:.2f} vs best single {g['best']} "
                     f"{g['best_mean']:.2f}, worst {g['worst']} {g['worst_mean']:.2f} -> "
                     + ("met" if g["met"] else "NOT met"))
    return "\n".join(lines)


def format_report(rows, methods, report):
    main, ablations = column_sets(methods)
    out = []
    for name, label in (("real-all", "real ladders (base cases, then leave-largest-out)"),
                        ("demo", "demo ladder, headline (intrinsic difficulty)"),
                        ("knowledge", "knowledge-recall benchmarks (stress case)"),
                        ("cpu", "CPU ladders of benchmarks/data"),
                        ("synthetic", "synthetic ladders"),
                        ("synthetic-mixed", "synthetic mixed-recipe ladders (1x, 4x, 16x tokens)")):
        if name not in report["summary"]:
            continue
        sel = [r for r in rows if GROUPS[name](r["group"])]
        for cols, what in ((main, "cod, cod-paper and the baselines"), (ablations, "ablations")):
            if len(cols) > 1 or what.startswith("cod,"):
                out += [f"== {label}: {what} (|error| in points)",
                        format_table(sel, cols, report["summary"][name]), ""]
        if name == "real-all":
            for sub in ("real", "real-loo"):
                if sub in report["summary"]:
                    s = report["summary"][sub]
                    out.append(f"mean |err| over {sub}: " + ", ".join(
                        f"{m} {s[m]['mean_abs_error_pts']:.2f}" for m in methods
                        if s[m]["mean_abs_error_pts"] is not None))
            out.append("")
    for name, b in report["bar"].items():
        losses = [c for c in b["cases"] if not c["cod_wins"]]
        out.append(
            f"bar, {name}: cod <= best baseline on {b['cod_wins']} of {b['n_cases']} cases; "
            f"lowest mean |err| of cod and the baselines: {b['lowest_mean_vs_baselines']} "
            f"(of every method forecasting every case: {b['lowest_mean']})"
        )
        for c in losses:
            cod = "—" if c["cod"] is None else f"{c['cod']:.2f}"
            out.append(f"    cod loses on {c['case']}: {cod} vs {c['best_baseline']} "
                       f"{c['best_baseline_error']:.2f}")
    out += ["", regime_table(methods, report), ""]
    out.append("coverage of the 90% interval (median width in points) over held-out forecasts:")
    for name in ("real-all", "demo", "knowledge", "cpu", "synthetic", "synthetic-mixed"):
        if name in report["summary"]:
            s = report["summary"][name]
            out.append(f"  {name:16s}" + ", ".join(
                f"{m} {s[m]['coverage']:.2f} ({s[m]['median_width_pts']:.1f})" for m in methods
                if s[m]["coverage"] is not None))
    return "\n".join(out)


if __name__ == "__main__":
    main()
