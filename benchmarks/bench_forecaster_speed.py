"""Fit-time benchmark: Improved MeanShift (vectorised) against the straightforward loop.

For the paper's eight benchmark sizes (500 to 17,944 samples; 17,944 is the headline)
with 9 ladder models, generates pass rates with ``synthetic_pass_rates`` and times, in
one process:

- ``ImprovedMeanShift().fit`` (best of ``--repeats``, wall and CPU seconds), and
- ``reference_improved_meanshift``: ``estimate_bandwidth`` plus a loop of sklearn
  ``MeanShift(bin_seeding=True)`` refits (one run, it takes seconds to tens of seconds),

and reports their ratio, the adjusted Rand index between the two partitions and the
number of clusters.  ``time_forecaster`` is the hook for timing the whole
``CODForecaster`` fit (for now: the clustering step only).

Writes ``benchmarks/results/forecaster_speed.json`` and prints the table.  The machine
load is recorded too: other processes on a 2-core box stretch wall times, CPU seconds
less so.  Usage::

    python -m benchmarks.bench_forecaster_speed [--quick] [--out PATH] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import scipy
import sklearn
from sklearn.metrics import adjusted_rand_score

from cod_monitor import CODForecaster, ImprovedMeanShift
from cod_monitor.methods.reference import reference_improved_meanshift
from cod_monitor.synthetic import synthetic_ladder, synthetic_pass_rates

RESULTS = Path(__file__).resolve().parent / "results"

HEADLINE = 17_944
#: Sample counts of the paper's eight evaluation sets.
PAPER_SIZES = (1_319, 5_000, 6_511, 17_944, 500, 8_063, 9_536, 12_032)
QUICK_SIZES = (500, 1_319, 5_000)
N_MODELS = 9


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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"only sizes {QUICK_SIZES} (about half a minute)")
    parser.add_argument("--out", type=Path, default=RESULTS / "forecaster_speed.json")
    parser.add_argument("--repeats", type=int, default=3, help="fast-path runs (best of)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-reference", action="store_true",
                        help="skip the slow reference loop")
    args = parser.parse_args(argv)

    sizes = QUICK_SIZES if args.quick else tuple(sorted(set(PAPER_SIZES)))
    load_before = os.getloadavg()
    rows = []
    header = (
        f"{'samples':>8} {'fast s':>7} {'cpu s':>6} {'ref s':>7} {'ratio':>6} "
        f"{'ARI':>6} {'same':>5} {'k':>3} {'k ref':>5} {'R':>6} {'fit s*':>7} {'boot s':>7}"
    )
    print(header)
    print("-" * len(header))
    for n in sizes:
        X = synthetic_pass_rates(n, N_MODELS, seed=args.seed)
        row = {"n_samples": n, "n_models": N_MODELS, "headline": n == HEADLINE}
        row.update(time_clustering(X, repeats=args.repeats, reference=not args.no_reference))
        row["forecaster"] = time_forecaster(n, seed=args.seed, repeats=args.repeats)
        rows.append(row)
        ref = (
            f"{row['reference_s']:7.2f} {row['speedup']:6.1f} {row['ari']:6.3f} "
            f"{'yes' if row['identical'] else 'no':>5} {row['reference_n_clusters']:3d}   "
            if "reference_s" in row
            else f"{'-':>7} {'-':>6} {'-':>6} {'-':>5} {'-':>3}   "
        )
        mark = "  <- headline" if row["headline"] else ""
        print(
            f"{n:8d} {row['fast_s']:7.3f} {row['fast_cpu_s']:6.3f} {ref}"
            f"{row['n_clusters']:3d} {row['radius']:6.3f} {row['forecaster']['fit_s']:7.3f} "
            f"{row['forecaster']['bootstrap200_s']:7.2f}"
            f"{mark}",
            flush=True,
        )
    print("* fit s: whole CODForecaster.fit on synthetic_ladder(n) (laws, filter, mapping "
          "included); boot s: first predict_interval, 200 bootstrap refits")

    result = {
        "benchmark": "forecaster_speed",
        "description": "ImprovedMeanShift fit (best of repeats) vs the straightforward "
        "sklearn MeanShift loop (one run), synthetic_pass_rates x 9 models",
        "quick": args.quick,
        "seed": args.seed,
        "repeats": args.repeats,
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
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
