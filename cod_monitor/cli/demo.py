"""``cod-monitor demo``: the embedded default.

Until the live demo (tiny models trained here with the callback attached) lands, the
demo runs the offline forecaster on a seeded synthetic ladder generated from known
per-cluster laws and prints every method's forecast against the known truth.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from cod_monitor.cli.predict import format_table, predictions_json
from cod_monitor.methods import available_methods, compare_methods
from cod_monitor.synthetic import synthetic_ladder

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> None:
    """Register ``demo``."""
    p = subparsers.add_parser(
        "demo",
        help="forecast a seeded synthetic ladder and compare with the known truth",
        description="Generate a ladder whose per-sample pass rates follow known COD laws, "
        "forecast the held-out target with every method and print the errors.",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-samples", type=int, default=3000)
    p.add_argument("--n-models", type=int, default=8)
    p.add_argument("--n-bootstrap", type=int, default=100)
    p.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="also write the ladder and summary.json here")
    p.set_defaults(func=run)


def run(args) -> int:
    """Run the offline demo; returns the exit code."""
    start = time.perf_counter()
    syn = synthetic_ladder(n_samples=args.n_samples, n_models=args.n_models, seed=args.seed)
    truth = syn.expected_accuracy[syn.target.name]
    n_ladder = len(syn.ladder.models_with_role("ladder"))
    print(
        f"synthetic ladder (seed {args.seed}): {n_ladder} models from "
        f"{syn.ladder.models[0].compute:.2g} to "
        f"{syn.ladder.models_with_role('ladder')[-1].compute:.2g} FLOPs, "
        f"{args.n_samples} samples in {len(syn.clusters)} true clusters; target "
        f"{syn.target.name} at {syn.target.compute:.2g} FLOPs"
    )
    results = compare_methods(
        syn.ladder,
        syn.benchmark,
        syn.target.compute,
        available_methods(),
        n_bootstrap=args.n_bootstrap,
        random_state=args.seed,
    )
    payload = predictions_json(syn.benchmark, syn.target.compute, results, observed=truth)
    sys.stdout.write("\n" + format_table(payload, results, truth_label="true expected accuracy"))
    cod = payload["predictions"]["cod"]
    wall = time.perf_counter() - start
    summary = {
        "forecast_final": cod["value"],
        "interval": cod["interval"],
        "truth": truth,
        "abs_error_pts": None if cod["value"] is None else 100 * abs(cod["value"] - truth),
        "predictions": payload["predictions"],
        "wall_s": wall,
    }
    if cod["value"] is not None:
        lo, hi = cod["interval"]
        print(
            f"\nCOD forecast {cod['value']:.4f} (90% interval [{lo:.4f}, {hi:.4f}]) vs true "
            f"expected accuracy {truth:.4f}: error {summary['abs_error_pts']:.2f} points. "
            f"({wall:.1f} s)"
        )
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        syn.ladder.save(args.out / "ladder")
        (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
        print(f"wrote {args.out / 'ladder'} and {args.out / 'summary.json'}")
    return 0
