"""``cod-monitor demo``: the embedded default.

Live (default): train the demo target run from scratch on CPU with ``CODCallback``
attached and watch its forecast against its measured accuracy
(:func:`cod_monitor.demo.live.run_live_demo`). ``--synthetic``: the offline forecaster
on a seeded synthetic ladder generated from known per-cluster laws, every method's
forecast against the known truth (no torch; about a minute for every method on 2
cores, seconds with ``--method cod``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

__all__ = ["add_parser", "run"]

_EPILOG = """\
live demo output (OUT, default: a fresh ./cod_demo_out, or cod_demo_out-2, ...):
  OUT/summary.json       forecast_final, observed_final (accuracy of the main benchmark,
                         'demo', at the last checkpoint), abs_error_pts (100 x |difference|),
                         trajectory_mae_pts (mean |forecast - observed| over every evaluated
                         checkpoint, points), alerts (list of {reason, message, step,
                         benchmark}), wandb_run_dir, report_html, wall_s; plus per_benchmark,
                         checkpoints, forecast_interval, target, sabotage, train_s
  OUT/monitor/report.html  the local HTML report (journal and CSVs beside it)
  OUT/wandb/offline-run-*  the offline W&B run (wandb sync DIR to upload)

The default run is the recipe's target at full length: minutes on 2 idle CPU cores, far
longer when other jobs share them (torch slows down sharply on oversubscribed cores).
--tokens shortens it (same model, learning rate and schedule, fewer tokens).
"""


def _int_at_least(low: int):
    """An argparse type: a whole number >= ``low`` (the flag and the value are named by
    argparse: "argument --tokens: expected ...")."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number such as {max(low, 1) * 10}, "
                                             f"got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {low}, got {text!r}; "
                                             f"pass {low} or more")
        return value

    parse.__name__ = f"int>={low}"
    return parse


def _float_in(low: float, high: float | None):
    """An argparse type: a finite number in ``(low, high)`` (``high=None``: no upper end)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not (math.isfinite(value) and value > low and (high is None or value < high)):
            bound = f"in ({low:g}, {high:g})" if high is not None else f"> {low:g}"
            raise argparse.ArgumentTypeError(f"expected a finite number {bound}, got {text!r}; "
                                             f"pass a number {bound}")
        return value

    parse.__name__ = "float"
    return parse


def add_parser(subparsers) -> None:
    """Register ``demo``."""
    p = subparsers.add_parser(
        "demo",
        help="train the demo target with the COD monitor attached (or --synthetic)",
        description="Train the demo target run from scratch on CPU with CODCallback attached: "
        "each checkpoint is evaluated in a CPU worker process while training goes on, "
        "compared with the COD forecast from the shipped demo ladder, logged to an offline "
        "W&B run and a local HTML report; prints the final forecast against the measured "
        "accuracy. Needs the hf and wandb extras (`make demo` installs them).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--synthetic", action="store_true",
                   help="instead: forecast a seeded synthetic ladder offline and compare every "
                   "method with the known truth (no torch; a minute or two for every method "
                   "on 2 cores, seconds with --method cod)")
    p.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="output directory (live: default a fresh ./cod_demo_out; synthetic: "
                   "also write the ladder and summary.json here)")
    p.add_argument("--seed", type=_int_at_least(0), default=None,
                   help="live: init/data seed of the target run (default: the recipe's, as in "
                   "the ladder build); synthetic: ladder seed (default 0)")
    live = p.add_argument_group("live demo")
    live.add_argument("--ladder", type=Path, default=None, metavar="DIR",
                      help="a demo ladder directory (default: the shipped one)")
    live.add_argument("--benchmarks", nargs="+", default=None, metavar="NAME",
                      help="benchmarks to monitor (default: demo and knowledge, when the "
                           "ladder has them; else every benchmark of the ladder)")
    live.add_argument("--tokens", type=_int_at_least(1), default=None,
                      help="training tokens of the target run (default: the recipe's); fewer "
                      "tokens = a shorter run of the same model")
    live.add_argument("--checkpoints", type=_int_at_least(1), default=None, metavar="K",
                      help="checkpoints to evaluate (default: the recipe's)")
    live.add_argument("--sabotage", action="store_true",
                      help="multiply the learning rate part-way through the run so that the "
                      "drift alert fires")
    live.add_argument("--sabotage-at", type=_float_in(0, 1), default=0.5, metavar="FRAC",
                      help="share of the run after which the sabotage starts (default 0.5)")
    live.add_argument("--sabotage-factor", type=_float_in(0, None), default=30.0, metavar="X",
                      help="learning-rate multiplier of the sabotage (default 30)")
    live.add_argument("--threads", type=_int_at_least(1), default=None,
                      help="torch threads of the training process (default: every core)")
    live.add_argument("--eval-threads", type=_int_at_least(1), default=1,
                      help="threads of the evaluation worker (default 1)")
    live.add_argument("--no-wandb", action="store_true",
                      help="skip W&B (local report only; the wandb extra is then not needed)")
    live.add_argument("--n-bootstrap", type=_int_at_least(0), default=None,
                      help="bootstrap replicates of the forecast interval (default: 100 live, "
                      "100 synthetic)")
    live.add_argument("--trajectory", default=None, metavar="MODE",
                      help="the monitor's forecast of the run in progress: auto (default), "
                      "compute, trajectory, trajectory_e2e, recipe or blend")
    live.add_argument("--trajectory-method", default=None, metavar="METHOD",
                      help="finished-model forecaster of the compute, recipe and blend modes "
                      "(a --method name, e.g. e2e-exp; default: COD)")
    live.add_argument("--quiet", action="store_true", help="no training progress lines")
    syn = p.add_argument_group("--synthetic")
    syn.add_argument("--n-samples", type=_int_at_least(1), default=3000)
    syn.add_argument("--n-models", type=_int_at_least(3), default=8,
                     help="ladder models (at least 3: the fewest a forecast fits on)")
    syn.add_argument("--method", action="append", default=None, metavar="METHOD",
                     help="method to compare (repeatable; default: every method)")
    p.set_defaults(func=run)


def run(args) -> int:
    """Run the demo; returns the exit code."""
    if args.synthetic:
        return run_synthetic(args)
    return run_live(args)


def run_live(args) -> int:
    """The live demo (:func:`cod_monitor.demo.live.run_live_demo`)."""
    from cod_monitor.demo.live import run_live_demo
    from cod_monitor.demo.live_config import fresh_out_dir
    from cod_monitor.exceptions import CODError

    try:
        _check_modes(args)
        out = args.out if args.out is not None else fresh_out_dir()
        run_live_demo(
            out_dir=out, ladder=args.ladder, benchmarks=args.benchmarks, tokens=args.tokens,
            n_checkpoints=args.checkpoints, seed=args.seed, sabotage=args.sabotage,
            sabotage_at=args.sabotage_at, sabotage_factor=args.sabotage_factor,
            threads=args.threads, eval_threads=args.eval_threads, wandb=not args.no_wandb,
            progress=not args.quiet,
            n_bootstrap=100 if args.n_bootstrap is None else args.n_bootstrap,
            trajectory=args.trajectory, trajectory_method=args.trajectory_method,
        )
    except (ImportError, CODError, FileExistsError, ValueError) as exc:
        print(f"cod-monitor demo: error: {exc}", file=sys.stderr)
        return 2
    return 0


def _check_modes(args) -> None:
    """Refuse an unknown ``--trajectory`` or ``--trajectory-method`` before anything runs
    (the names live in the forecasting stack, imported only now)."""
    from cod_monitor._validation import check_choice
    from cod_monitor.cod.trajectory import TRAJECTORY_MODES
    from cod_monitor.methods import available_methods

    check_choice("cod-monitor demo", "--trajectory", args.trajectory, TRAJECTORY_MODES,
                 none_ok=True)
    check_choice("cod-monitor demo", "--trajectory-method", args.trajectory_method,
                 available_methods(), none_ok=True)


def run_synthetic(args) -> int:
    """The offline demo on a seeded synthetic ladder; returns the exit code."""
    from cod_monitor.cli.predict import format_table, method_progress, predictions_json
    from cod_monitor.methods import available_methods, compare_methods
    from cod_monitor.synthetic import synthetic_ladder

    start = time.perf_counter()
    methods = available_methods()
    if args.method:
        unknown = [m for m in args.method if m not in methods]
        if unknown:
            print(f"cod-monitor demo: error: unknown --method {unknown[0]!r}; use one of "
                  f"{', '.join(methods)}", file=sys.stderr)
            return 2
        methods = list(dict.fromkeys(args.method))
    seed = 0 if args.seed is None else args.seed
    n_bootstrap = 100 if args.n_bootstrap is None else args.n_bootstrap
    syn = synthetic_ladder(n_samples=args.n_samples, n_models=args.n_models, seed=seed)
    truth = syn.expected_accuracy[syn.target.name]
    n_ladder = len(syn.ladder.models_with_role("ladder"))
    print(
        f"synthetic ladder (seed {seed}): {n_ladder} models from "
        f"{syn.ladder.models[0].compute:.2g} to "
        f"{syn.ladder.models_with_role('ladder')[-1].compute:.2g} FLOPs, "
        f"{args.n_samples} samples in {len(syn.clusters)} true clusters; target "
        f"{syn.target.name} at {syn.target.compute:.2g} FLOPs"
    )
    results = compare_methods(
        syn.ladder,
        syn.benchmark,
        syn.target.compute,
        methods,
        n_bootstrap=n_bootstrap,
        random_state=seed,
        progress=method_progress("cod-monitor demo --synthetic", syn.benchmark, methods),
    )
    payload = predictions_json(syn.benchmark, syn.target.compute, results, observed=truth)
    sys.stdout.write("\n" + format_table(payload, results, truth_label="true expected accuracy"))
    # the headline is the package's default method, or the first one compared
    cod = payload["predictions"].get("cod") or next(iter(payload["predictions"].values()))
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
            f"\n{'COD' if 'cod' in payload['predictions'] else methods[0]} forecast {cod['value']:.4f} (90% interval [{lo:.4f}, {hi:.4f}]) vs true "
            f"expected accuracy {truth:.4f}: error {summary['abs_error_pts']:.2f} points. "
            f"({wall:.1f} s)"
        )
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        syn.ladder.save(args.out / "ladder")
        (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
        print(f"wrote {args.out / 'ladder'} and {args.out / 'summary.json'}")
    return 0
