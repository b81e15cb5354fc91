"""``cod-monitor predict``: forecast a benchmark at a target compute from a stored ladder.

Exit status: 0 when every requested method forecast (an interval that is unavailable,
e.g. ``interval='backtest'`` on a ladder too small to backtest, is reported but is not
a failure); 1 when any requested method produced no forecast (the others still run and
are printed); 2 for bad input shared by every method (options, ladder, benchmark,
anchors), before any method runs.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings

from cod_monitor._validation import check_real
from cod_monitor.cod.configs import DEFAULT_CONFIGURATIONS, FALLBACKS
from cod_monitor.exceptions import FitWarning, LadderValidationError, ParameterError
from cod_monitor.ladder import load_ladder
from cod_monitor.ladder.diagnostics import difficulty_reversals

__all__ = ["add_parser", "run", "predictions_json", "format_table"]


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number such as 1.2e23, got {text!r}")
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number such as 200, got {text!r}")
    if value < 0:
        raise argparse.ArgumentTypeError(
            f"expected a non-negative integer, got {text!r}; pass 0 or more")
    return value


def add_parser(subparsers) -> None:
    """Register ``predict``."""
    p = subparsers.add_parser(
        "predict",
        help="forecast a benchmark's accuracy at a target compute",
        description="Fit COD (and optionally its ablations and baselines) on a stored "
        "ladder and forecast full-set accuracy at a target compute.",
    )
    p.add_argument("--ladder", required=True, metavar="DIR", help="ladder directory")
    p.add_argument("--benchmark", required=True, metavar="NAME")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--target-compute", type=_positive_float, metavar="FLOPS",
                        help="compute of the model to forecast, in FLOPs")
    target.add_argument("--target", metavar="MODEL",
                        help="a model of the ladder with role 'target': its compute is used "
                        "and, when it has scores, its measured accuracy is shown")
    p.add_argument("--anchor", action="append", default=None, metavar="NAME",
                   help="anchor model for the mapping (repeatable); default: every model "
                   "with role 'anchor'")
    p.add_argument("--method", action="append", default=None, metavar="METHOD",
                   help="method to run (repeatable): cod, cod-paper, the baselines e2e-exp, "
                   "e2e-passrate, bnsl and loss-intermediate, an ablation of cod or cod-paper "
                   "(cod-no-mapping, cod-kmeans, ...: cod_monitor.methods.available_methods() "
                   f"lists them), or 'all' (default: {DEFAULT_CONFIGURATIONS['predict']})")
    p.add_argument("--level", type=float, default=0.9, help="interval coverage (default 0.9)")
    p.add_argument("--fallback", choices=FALLBACKS, default=None,
                   help="what COD does when no cluster is extrapolatable (default: the "
                   "method's own; cod-paper's is error, cod's is rest, which cod does not "
                   "let you change)")
    p.add_argument("--compute-unit", type=_positive_float, default=None, metavar="FLOPS",
                   help="FLOPs per unit before fitting (default: the ladder's)")
    p.add_argument("--checkpoints", choices=("final", "all"), default="final")
    p.add_argument("--smooth-checkpoints", action=argparse.BooleanOptionalAction, default=None,
                   help="average each ladder model with its neighbouring checkpoints; with "
                   "--checkpoints final a run enters as the mean of its last three at the "
                   "middle one (default: each method's own, which is off)")
    p.add_argument("--tokens-per-param", type=_positive_float, default=None, metavar="R",
                   help="the target's training tokens per parameter: cod moves every ladder "
                        "model to the equally good model trained at this ratio before "
                        "fitting, when the ladder mixes ratios (default with --target: the "
                        "target model's tokens / params)")
    p.add_argument("--n-bootstrap", type=_non_negative_int, default=200, metavar="N",
                   help="bootstrap replicates of each interval (default 200; 0: none)")
    p.add_argument("--seed", type=_non_negative_int, default=0,
                   help="seed of the bootstrap (a non-negative integer, default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def _methods(requested: list[str] | None) -> list[str]:
    from cod_monitor.methods.registry import available_methods, method_description

    if not requested:
        return [DEFAULT_CONFIGURATIONS["predict"]]
    if "all" in requested:
        return available_methods()
    for name in requested:
        try:
            method_description(name)  # the ablations load only when one is asked for
        except ParameterError:
            raise LadderValidationError(
                "--method", name, f"Use one of {', '.join(available_methods())} or 'all'."
            ) from None
    return list(dict.fromkeys(requested))


def run(args) -> int:
    """Run ``predict`` with parsed arguments; returns the exit code.

    Returns
    -------
    int
        0 when every requested method forecast; 1 when any produced no forecast
        (they are named on stderr; the output still holds every method).
    """
    ladder = load_ladder(args.ladder)
    ladder.matrix(args.benchmark)  # fail early, once, on an unknown benchmark
    observed = None
    if args.target is not None:
        model = ladder.model(args.target)
        if model.role != "target":
            raise LadderValidationError(
                "--target", args.target,
                f"Its role is {model.role!r}; pass a model with role 'target' or use "
                "--target-compute.",
            )
        compute = model.compute
        tokens_per_param = args.tokens_per_param or model.tokens / model.params
        if args.benchmark in ladder.benchmarks:
            try:
                m = ladder.matrix(args.benchmark, roles=("target",), models=None)
                names = m.model_names
                if model.name in names:
                    observed = float(m.pass_rates[:, names.index(model.name)].mean())
            except LadderValidationError:
                observed = None  # target has no scores on this benchmark
    else:
        compute = args.target_compute
        tokens_per_param = args.tokens_per_param
    check_real("cod-monitor predict", "--level", args.level, 0.0, 1.0)
    # only what the user set: a method's fixed configuration warns when overridden
    options = {"anchors": args.anchor, "compute_unit": args.compute_unit,
               "tokens_per_param": tokens_per_param, "fallback": args.fallback,
               "smooth_checkpoints": args.smooth_checkpoints}
    from cod_monitor.methods.registry import compare_methods  # scikit-learn: not for --help

    methods = _methods(args.method)
    progress = method_progress("cod-monitor predict", args.benchmark, methods)
    with warnings.catch_warnings():
        # the table and the JSON carry each unavailable interval's reason
        warnings.filterwarnings("ignore", message=".*interval unavailable", category=FitWarning)
        results = compare_methods(
            ladder,
            args.benchmark,
            compute,
            methods,
            level=args.level,
            progress=progress,
            checkpoints=args.checkpoints,
            n_bootstrap=args.n_bootstrap,
            random_state=args.seed,
            **{k: v for k, v in options.items() if v is not None},
        )
    payload = predictions_json(args.benchmark, compute, results, observed=observed)
    try:
        rev = difficulty_reversals(ladder, args.benchmark)
    except ValueError as exc:  # fewer than two ladder runs
        rev, premise = None, f"difficulty reversals not measured ({exc})"
    else:
        premise = rev.summary()
    payload["difficulty_reversals"] = None if rev is None else {
        "rate": None if rev.solved.sum() == 0 else rev.rate,
        "solved": int(rev.solved.sum()), "reversed": int(rev.reversed.sum())}
    if args.json:
        json.dump(payload, sys.stdout)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(format_table(payload, results, level=args.level))
        sys.stdout.write(f"premise check: {premise}\n")
    failed = [name for name, r in results.items() if r["value"] is None]
    if failed:
        print(f"cod-monitor predict: {len(failed)} of {len(results)} methods produced no "
              f"forecast: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def method_progress(prefix: str, benchmark: str, methods: list[str]):
    """The ``progress`` callable of :func:`~cod_monitor.methods.registry.compare_methods`
    for a command: a line when fitting starts (once the input is checked) and one per
    method fitted.

    Lines go to stderr, so that ``--json`` output stays one object on stdout.
    """
    started = time.perf_counter()
    shown = ", ".join(methods[:4]) + (", ..." if len(methods) > 4 else "")

    def progress(name, i, n, seconds, error):
        if seconds is None:
            if i == 1:
                print(f"{prefix}: fitting {n} method(s) on {benchmark!r} ({shown})",
                      file=sys.stderr, flush=True)
            return
        print(f"{prefix}: [{i}/{n}] {name} {'failed' if error else 'fitted'} in {seconds:.1f} s "
              f"({time.perf_counter() - started:.0f} s in all)", file=sys.stderr, flush=True)

    return progress


def _route_fit(routed):
    """The fitted :class:`CODForecaster` behind the ``cod`` result (its chosen route's),
    or ``None``."""
    if routed is None:
        return None
    return getattr(routed, "forecaster_", routed)


def predictions_json(benchmark: str, compute: float, results: dict, *, observed=None) -> dict:
    """The ``--json`` object: benchmark, target compute, one entry per method.

    Each entry has ``value``, ``interval`` (``None`` when the method failed or its
    interval is unavailable) and ``interval_error`` (why the interval is unavailable,
    ``None`` when it is fine), plus ``error`` when the method produced no forecast.
    ``route`` and ``why`` say which route the default ``cod`` took and why, ``routes``
    every route it weighed (backtest errors, failures); ``subset_share`` and
    ``n_clusters`` describe the chosen route's fit (all ``None`` when ``cod`` did not
    run or failed).
    """
    predictions = {}
    for name, r in results.items():
        interval = r["interval"]
        if interval is not None and not all(math.isfinite(v) for v in interval):
            interval = None  # unavailable (NaN bounds): JSON has no NaN
        entry = {"value": r["value"], "interval": interval,
                 "interval_error": r.get("interval_error")}
        if r.get("error"):
            entry["error"] = r["error"]
        predictions[name] = entry
    routed = results.get("cod", {}).get("estimator")
    cod = _route_fit(routed)
    payload = {
        "benchmark": benchmark,
        "target_compute": compute,
        "predictions": predictions,
        "route": getattr(routed, "route_", None),
        "why": getattr(routed, "route_why_", None),
        "routes": None if routed is None or not hasattr(routed, "routes_") else [
            {k: c[k] for k in ("route", "configuration", "status", "error", "score",
                               "backtest")} for c in routed.routes_],
        "subset_share": None if cod is None else cod.subset_share_,
        "n_clusters": None if cod is None else len(cod.cluster_fits_),
        "transport": None if cod is None or cod.transport_ is None else {
            "applied": cod.transport_.applied, "reason": cod.transport_.reason,
            "tokens_per_param": cod.transport_.tokens_per_param},
    }
    if observed is not None:
        payload["observed"] = observed
    return payload


def format_table(
    payload: dict, results: dict, *, level: float = 0.9, truth_label: str = "observed accuracy"
) -> str:
    """A readable table of the forecasts (and errors against ``observed`` when known)."""
    observed = payload.get("observed")
    lines = [
        f"benchmark {payload['benchmark']!r} at {payload['target_compute']:.3g} FLOPs"
        + ("" if observed is None else f" ({truth_label} {observed:.4f})"),
        "",
    ]
    head = f"{'method':<22}{'forecast':>10}   {f'{level:.0%} interval':<20}"
    if observed is not None:
        head += f"{'error (pts)':>12}"
    lines.append(head)
    lines.append("-" * len(head))
    for name, r in payload["predictions"].items():
        if r["value"] is None:
            lines.append(f"{name:<22}{'—':>10}   {r.get('error', '')}")
            continue
        if r["interval"] is None:
            interval = "unavailable"
        else:
            lo, hi = r["interval"]
            interval = f"[{lo:.4f}, {hi:.4f}]"
        row = f"{name:<22}{r['value']:>10.4f}   {interval}".ljust(len(head) - 12 if observed is not None else 0)
        if observed is not None:
            row += f"{100 * (r['value'] - observed):>+12.2f}"
        lines.append(row)
        if r.get("interval_error"):
            lines.append(f"{'':<22}{'':>10}   interval unavailable: {r['interval_error']}")
    routed = results.get("cod", {}).get("estimator")
    cod = _route_fit(routed)
    if routed is not None and hasattr(routed, "route_why_"):
        lines += ["", f"cod {routed.route_why_}"]
    if cod is not None:
        rep = cod.report()
        kept = rep["n_kept"]
        if cod.combine == "share":
            # share mode has no subset-to-full mapping: the rest gets its own forecast
            full = f"full set = share x cluster laws + rest ({cod.rest})"
        else:
            full = f"mapping {rep['mapping']['method']} (rmse {rep['mapping']['rmse']:.4f})"
        lines += [
            f"cod: {rep['n_clusters']} clusters, {kept} extrapolatable, subset share "
            f"{rep['subset_share']:.1%}, {rep['n_outliers']} outliers; {full}"
            + (f"; fallback {rep['fallback']}" if rep["fallback"] else ""),
        ]
        if cod.transport_ is not None:
            t = cod.transport_
            lines.append(f"cod recipe transport to {t.tokens_per_param:g} tokens/param: "
                         + ("applied, " if t.applied else "not applied, ") + t.reason)
    return "\n".join(lines) + "\n"
