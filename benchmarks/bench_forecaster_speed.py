"""Fit-time benchmark: Improved MeanShift (vectorised) against the straightforward loop.

Times the clustering step of COD on three kinds of difficulty matrices with 9 ladder
models (:mod:`benchmarks.speed_generators`):

- ``separated``: ``synthetic_pass_rates``, well-separated clusters (the paper's eight
  benchmark sizes, 500 to 17,944 samples, plus 2,000 and 60,000);
- ``continuous``: logistic difficulty curves whose threshold, slope and ceiling spread
  uniformly, with binomial noise (2,000 to 60,000 samples);
- ``real-shaped``: the Pythia MATH sweep's per-problem pass rates resampled and
  perturbed (2,000 to 60,000 samples; skipped when ``../shared/cod_data`` is absent).

For each, in one process:

- ``ImprovedMeanShift().fit`` with its default bandwidth rule (best of ``--repeats``,
  wall and CPU seconds of this process), and
- ``reference_improved_meanshift``: ``estimate_bandwidth`` plus a loop of sklearn
  ``MeanShift(bin_seeding=True)`` refits (one run, up to a per-generator size: it takes
  minutes on the continuous matrices),

and reports their ratio, the adjusted Rand index between the two partitions, whether
the labels are identical and the number of clusters; then, per generator, the growth
exponent of the time (least-squares slope of log time against log n).  A second table
times the whole ``CODForecaster.fit`` and its first ``predict_interval`` (200 bootstrap
refits) on ``synthetic_ladder(n, 9)`` at the paper's sizes (``time_forecaster``).

Writes ``benchmarks/results/forecaster_speed.json`` and prints the tables.  The machine
load is recorded too: other processes on a 2-core box stretch wall times, CPU seconds
less so.  Usage::

    python -m benchmarks.bench_forecaster_speed [--quick] [--out PATH] [--repeats 3]
        [--generators separated,continuous,real-shaped] [--no-reference] [--no-forecaster]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from pathlib import Path

import numpy as np
import scipy
import sklearn
from sklearn.metrics import adjusted_rand_score

from benchmarks.speed_generators import GENERATORS, MONKEYS, real_data_available
from cod_monitor import CODForecaster, ImprovedMeanShift
from cod_monitor.methods.reference import reference_improved_meanshift
from cod_monitor.synthetic import synthetic_ladder

RESULTS = Path(__file__).resolve().parent / "results"

HEADLINE = 17_944
#: Sample counts of the paper's eight evaluation sets.
PAPER_SIZES = (1_319, 5_000, 6_511, 17_944, 500, 8_063, 9_536, 12_032)
N_MODELS = 9
#: Sizes per generator (the paper's sizes for the package's own generator).
SIZES = {
    "separated": tuple(sorted({*PAPER_SIZES, 2_000, 60_000})),
    "continuous": (2_000, 5_000, 17_944, 60_000),
    "real-shaped": (2_000, 5_000, 17_944, 60_000),
}
#: Largest size the reference loop runs at (its time grows about as n^2 and reaches
#: minutes on the continuous matrices).
REFERENCE_MAX = {"separated": 17_944, "continuous": 5_000, "real-shaped": 5_000}
QUICK_SIZES = {"separated": (500, 2_000), "continuous": (2_000,), "real-shaped": (2_000,)}
QUICK_FORECASTER = (500, 1_319)


def _timed(fn):
    """(result, wall seconds, CPU seconds of this process) of ``fn()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def time_clustering(X, *, repeats=3, reference=True):
    """Time ImprovedMeanShift (best of ``repeats``) and the reference loop (once) on X."""
    runs = [_timed(lambda: ImprovedMeanShift().fit(X)) for _ in range(repeats)]
    est = runs[0][0]
    row = {
        "fast_s": min(r[1] for r in runs),
        "fast_cpu_s": min(r[2] for r in runs),
        "fast_runs_s": [r[1] for r in runs],
        "n_clusters": est.n_clusters_,
        "n_outliers": int((est.labels_ == -1).sum()),
        "radius": est.radius_,
        "rounds": est.n_iter_,
    }
    if reference:
        (labels, centers, radius), wall, cpu = _timed(lambda: reference_improved_meanshift(X))
        row.update(
            reference_s=wall,
            reference_cpu_s=cpu,
            speedup=wall / row["fast_s"],
            ari=float(adjusted_rand_score(labels, est.labels_)),
            identical=bool(np.array_equal(labels, est.labels_)),
            reference_n_clusters=int(len(centers)),
            reference_radius=float(radius),
        )
    return row


def growth_exponent(sizes, seconds):
    """Least-squares slope of log(seconds) against log(sizes); None under two points."""
    pts = [(math.log(n), math.log(s)) for n, s in zip(sizes, seconds) if s and s > 0]
    if len(pts) < 2:
        return None
    x, y = np.array(pts).T
    return float(np.polyfit(x, y, 1)[0])


# --------------------------------------------------------------------------------------
# HOOK (lead): time the full CODForecaster fit here.  For now this times the clustering
# step only, the part of CODForecaster.fit that clustering.py is responsible for; extend
# it to build a synthetic ladder of the same size (``synthetic_ladder``) and time
# ``CODForecaster(...).fit(ladder, benchmark)``, returning one entry per stage.
# --------------------------------------------------------------------------------------
def time_forecaster(n_samples, *, n_models=N_MODELS, seed=0, repeats=3):
    """Seconds to fit ``CODForecaster`` (no bootstrap) on one synthetic benchmark.

    The whole fit: point selection, clustering, per-cluster laws, filter, mapping.

    Parameters
    ----------
    n_samples, n_models, seed : int
        Size and seed of the synthetic ladder.
    repeats : int
        Best of this many runs.

    Returns
    -------
    dict
        ``{"stages": [...], "fit_s": float, "bootstrap200_s": float}``; the second
        is the one-off cost of the 200-replicate bootstrap behind ``predict_interval``.
    """
    syn = synthetic_ladder(n_samples=n_samples, n_models=n_models, seed=seed)
    fit = lambda: CODForecaster(n_bootstrap=200).fit(syn.ladder, syn.benchmark)  # noqa: E731
    best = min(_timed(fit)[1] for _ in range(repeats))
    cod = fit()
    _, boot, _ = _timed(lambda: cod.predict_interval(syn.target.compute))
    return {
        "stages": ["select", "clustering", "laws", "filter", "mapping"],
        "fit_s": best,
        "bootstrap200_s": boot,
    }


def _print_row(name, row):
    ref = (
        f"{row['reference_s']:8.2f} {row['speedup']:7.1f} {row['ari']:6.3f} "
        f"{'yes' if row['identical'] else 'no':>5}"
        if "reference_s" in row
        else f"{'-':>8} {'-':>7} {'-':>6} {'-':>5}"
    )
    mark = "  <- headline" if row["n_samples"] == HEADLINE else ""
    print(
        f"{name:>11} {row['n_samples']:7d} {row['fast_s']:8.3f} {row['fast_cpu_s']:7.3f} {ref} "
        f"{row['n_clusters']:4d} {row['radius']:7.4f}{mark}",
        flush=True,
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="small sizes only (about a minute)")
    parser.add_argument("--out", type=Path, default=RESULTS / "forecaster_speed.json")
    parser.add_argument("--repeats", type=int, default=3, help="fast-path runs (best of)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--generators", default=",".join(GENERATORS),
                        help="comma-separated subset of " + ", ".join(GENERATORS))
    parser.add_argument("--no-reference", action="store_true",
                        help="skip the slow reference loop")
    parser.add_argument("--no-forecaster", action="store_true",
                        help="skip the CODForecaster.fit / bootstrap table")
    args = parser.parse_args(argv)

    names = [g for g in args.generators.split(",") if g]
    unknown = sorted(set(names) - set(GENERATORS))
    if unknown:
        parser.error(f"unknown generators {unknown}; choose from {list(GENERATORS)}")
    if "real-shaped" in names and not real_data_available():
        print(f"skipping real-shaped: {MONKEYS} is not available")
        names.remove("real-shaped")

    load_before = os.getloadavg()
    rows, growth = [], {}
    header = (
        f"{'generator':>11} {'samples':>7} {'fast s':>8} {'cpu s':>7} {'ref s':>8} "
        f"{'ratio':>7} {'ARI':>6} {'same':>5} {'k':>4} {'R':>7}"
    )
    print(header)
    print("-" * len(header))
    for name in names:
        sizes = (QUICK_SIZES if args.quick else SIZES)[name]
        done = []
        for n in sizes:
            X = GENERATORS[name](n, N_MODELS, seed=args.seed)
            row = {"generator": name, "n_samples": n, "n_models": N_MODELS,
                   "headline": n == HEADLINE}
            run_ref = not args.no_reference and n <= REFERENCE_MAX[name]
            row.update(time_clustering(X, repeats=args.repeats, reference=run_ref))
            rows.append(row)
            done.append(row)
            _print_row(name, row)
        ns = [r["n_samples"] for r in done]
        refs = [r for r in done if "reference_s" in r]
        growth[name] = {
            "fast_wall": growth_exponent(ns, [r["fast_s"] for r in done]),
            "fast_cpu": growth_exponent(ns, [r["fast_cpu_s"] for r in done]),
            "reference_wall": growth_exponent([r["n_samples"] for r in refs],
                                              [r["reference_s"] for r in refs]),
        }
    print("\ngrowth exponent b of time ~ n^b (least squares over the sizes above)")
    for name, g in growth.items():
        fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
        print(f"{name:>11}: fast wall {fmt(g['fast_wall'])}, fast cpu {fmt(g['fast_cpu'])}, "
              f"reference {fmt(g['reference_wall'])}")

    forecaster = []
    if not args.no_forecaster:
        print(f"\n{'samples':>7} {'fit s':>7} {'boot s':>7}")
        for n in QUICK_FORECASTER if args.quick else tuple(sorted(PAPER_SIZES)):
            entry = {"n_samples": n, **time_forecaster(n, seed=args.seed, repeats=args.repeats)}
            forecaster.append(entry)
            print(f"{n:7d} {entry['fit_s']:7.3f} {entry['bootstrap200_s']:7.2f}", flush=True)
        print("fit s: whole CODForecaster.fit on synthetic_ladder(n, 9) (laws, filter, mapping "
              "included); boot s: first predict_interval, 200 bootstrap refits")

    result = {
        "benchmark": "forecaster_speed",
        "description": "ImprovedMeanShift fit (best of repeats) vs the straightforward "
        "sklearn MeanShift loop (one run) on three generators x 9 models; "
        "CODForecaster fit and bootstrap on synthetic_ladder",
        "quick": args.quick,
        "seed": args.seed,
        "repeats": args.repeats,
        "reference_max": REFERENCE_MAX,
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "sklearn": sklearn.__version__,
            "loadavg_before": load_before,
            "loadavg_after": os.getloadavg(),
        },
        "rows": rows,
        "growth_exponents": growth,
        "forecaster": forecaster,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
