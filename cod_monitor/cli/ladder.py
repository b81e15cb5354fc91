"""``cod-monitor ladder``: import, inspect and validate ladder directories.

Sub-commands:

- ``import``: build a ladder directory from a long score table (``--format long``)
  or lm-evaluation-harness ``--log_samples`` output (``--format lm-eval``), with the
  evaluation settings ``--eval-settings`` gives (and, for lm-eval, those its logs
  tell); an ``--out`` directory that holds a ladder is refused unless ``--force`` is
  given;
- ``score``: evaluate your ladder's checkpoints with the monitor's evaluator and write
  a ladder directory (:mod:`cod_monitor.cli.score`);
- ``info``: print the models (role, compute), benchmarks (sample counts) and their
  evaluation settings;
- ``validate``: load the ladder with every check and print ``ok`` or the error.
"""

from __future__ import annotations

import argparse

from cod_monitor.cli._options import (
    check_compute_unit,
    parse_pairs,
    read_json_option,
    refuse_overwrite,
)
from cod_monitor.cli.build_demo import add_build_demo_parser
from cod_monitor.cli.score import add_score_parser
from cod_monitor.exceptions import LadderValidationError
from cod_monitor.ladder import DEFAULT_COMPUTE_UNIT, ROLES, Ladder
from cod_monitor.ladder.diagnostics import reversal_summary
from cod_monitor.ladder.importers import import_long_table, read_models_table
from cod_monitor.ladder.lm_eval import import_lm_eval_samples
from cod_monitor.ladder.selection import final_checkpoints

__all__ = ["add_parser", "run_import", "run_info", "run_validate", "parse_pairs"]

_IMPORT_EPILOG = """\
examples:
  cod-monitor ladder import --format long --scores math_llmonkeys.csv \\
      --models models.csv --model-map name=model --model-map params=params_total \\
      --model-map compute=compute_6ND --map sample_id=problem_id --map score=pass_rate \\
      --benchmark math --role pythia-12b@step143000=target --out ladders/pythia-math
  cod-monitor ladder import --format lm-eval --models models.csv \\
      --model pythia-70m=out/pythia-70m --model pythia-160m=out/pythia-160m \\
      --model pythia-410m=out/pythia-410m --filter strict-match \\
      --eval-settings '{"scorer": "exact"}' --out ladders/gsm8k

--eval-settings records how the scores were produced, so that a monitor can check that
its run is evaluated the same way: one JSON object for every benchmark, or an object
mapping benchmarks to objects, with keys among stop (the stop marker; null: none),
scorer, mode (exact|sampled), n, temperature, top_p, max_new_tokens (null: sized from
the answers). Leave out what you do not know. lm-eval logs tell stop, temperature,
top_p and max_new_tokens where their generation arguments fix them.
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``ladder`` and its sub-commands on ``subparsers``.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The top-level sub-command registry.

    Returns
    -------
    argparse.ArgumentParser
        The ``ladder`` parser.
    """
    parser = subparsers.add_parser(
        "ladder",
        help="import, inspect and validate model ladders",
        description="Import, inspect and validate ladder directories "
        "(ladder.json + scores.csv[.gz]).",
    )
    sub = parser.add_subparsers(dest="ladder_command", metavar="SUBCOMMAND")
    sub.required = True
    add_build_demo_parser(sub)
    add_score_parser(sub)

    imp = sub.add_parser(
        "import",
        help="build a ladder directory from a long table or lm-eval samples",
        description="Build a ladder directory from a long score table (--format long) or "
        "from lm-evaluation-harness --log_samples output (--format lm-eval).",
        epilog=_IMPORT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    imp.add_argument("--format", required=True, choices=("long", "lm-eval"),
                     help="input format")
    imp.add_argument("--models", required=True, metavar="MODELS",
                     help="models table: CSV (or JSON list) with name, params, tokens and "
                     "optionally compute (default 6*params*tokens), step, role, run, loss, "
                     "learning_rate (peak), lr_schedule (e.g. cosine); used by both formats")
    imp.add_argument("--model-map", action="append", default=[], metavar="OURS=THEIRS",
                     help="map a model field to a column of the models table, "
                     "e.g. name=model (repeatable)")
    imp.add_argument("--role", action="append", default=[], metavar="NAME=ROLE",
                     help="set a model's role: ladder, anchor or target (repeatable)")
    imp.add_argument("--scores", metavar="FILE",
                     help="--format long: the score table (.csv, .csv.gz, .jsonl)")
    imp.add_argument("--map", action="append", default=[], metavar="OURS=THEIRS",
                     help="--format long: map a score field (benchmark, sample_id, model, "
                     "score, n_samples, n_correct) to a column, e.g. sample_id=problem_id")
    imp.add_argument("--benchmark", metavar="NAME",
                     help="--format long: benchmark name when the table has no benchmark "
                     "column (else: import only this benchmark)")
    imp.add_argument("--skip-unknown-models", action="store_true",
                     help="--format long: skip rows of models missing from --models")
    imp.add_argument("--model", action="append", default=[], metavar="NAME=PATH",
                     help="--format lm-eval: a model's samples file or directory (repeatable; "
                     "a directory means every samples_*.jsonl in it)")
    imp.add_argument("--metric", help="--format lm-eval: per-sample metric (default: the "
                     "first in each record's metrics list)")
    imp.add_argument("--filter", dest="filter_name", metavar="NAME",
                     help="--format lm-eval: filter to read (default: the first in the file)")
    imp.add_argument("--rename", action="append", default=[], metavar="TASK=BENCHMARK",
                     help="--format lm-eval: benchmark name for a task (repeatable)")
    imp.add_argument("--compute-unit", type=float, default=DEFAULT_COMPUTE_UNIT,
                     metavar="FLOPS", help="FLOPs per compute unit (default: %(default)g)")
    imp.add_argument("--eval-settings", metavar="JSON",
                     help="how the scores were produced (JSON text or file): one settings "
                     "object for all benchmarks or one per benchmark; keys stop, scorer, "
                     "mode, n, temperature, top_p, max_new_tokens")
    imp.add_argument("--drop-incomplete", action="store_true",
                     help="drop samples missing a score for some model instead of failing")
    imp.add_argument("--out", required=True, metavar="DIR",
                     help="ladder directory to write (refused if it holds a ladder, "
                     "unless --force)")
    imp.add_argument("--force", action="store_true",
                     help="overwrite the ladder already in --out")
    imp.add_argument("--compress", action="store_true", help="write scores.csv.gz")
    imp.set_defaults(func=run_import)

    info = sub.add_parser("info", help="print a ladder's models and benchmarks",
                          description="Print a ladder's models (role, compute) and benchmarks "
                          "(sample counts).")
    info.add_argument("path", metavar="DIR", help="ladder directory")
    info.add_argument("--drop-incomplete", action="store_true",
                      help="drop samples missing a score for some model instead of failing")
    info.set_defaults(func=run_info)

    val = sub.add_parser("validate", help="check a ladder directory against the format",
                         description="Load a ladder directory with every check; print 'ok' "
                         "and a summary, or the first error (exit code 2).")
    val.add_argument("path", metavar="DIR", help="ladder directory")
    val.set_defaults(func=run_validate)
    return parser


def _refuse(args, flags: dict[str, object], fmt: str) -> None:
    for flag, value in flags.items():
        if value:
            raise LadderValidationError(
                flag, value, f"{flag} does not apply to --format {fmt}; remove it."
            )


def run_import(args: argparse.Namespace) -> int:
    """Run ``cod-monitor ladder import``; return the exit code."""
    # check every option before reading any file, so a typo fails fast
    refuse_overwrite(args.out, args.force)
    check_compute_unit(args.compute_unit)
    roles = parse_pairs(args.role, "--role", "NAME=ROLE")
    model_columns = parse_pairs(args.model_map, "--model-map")
    settings = None
    if args.eval_settings is not None:
        settings = read_json_option(args.eval_settings, "--eval-settings",
                                    "the evaluation settings")
    if args.format == "long":
        _refuse(args, {"--model": args.model, "--metric": args.metric,
                       "--filter": args.filter_name, "--rename": args.rename}, "long")
        if not args.scores:
            raise LadderValidationError("--scores", None, "Give --scores FILE with --format long.")
        columns = parse_pairs(args.map, "--map")
    else:
        _refuse(args, {"--scores": args.scores, "--map": args.map,
                       "--benchmark": args.benchmark,
                       "--skip-unknown-models": args.skip_unknown_models}, "lm-eval")
        if not args.model:
            raise LadderValidationError(
                "--model", None, "Give --model NAME=PATH for each model with --format lm-eval."
            )
        paths: dict[str, list[str]] = {}
        for value in args.model:
            name, sep, path = value.partition("=")
            if not sep or not name.strip() or not path.strip():
                raise LadderValidationError("--model", value, "Use --model NAME=PATH.")
            paths.setdefault(name.strip(), []).append(path.strip())
        renames = parse_pairs(args.rename, "--rename", "TASK=BENCHMARK")

    models = read_models_table(args.models, columns=model_columns, roles=roles)
    if args.format == "long":
        ladder = import_long_table(
            args.scores,
            models,
            columns=columns,
            benchmark=args.benchmark,
            compute_unit=args.compute_unit,
            drop_incomplete=args.drop_incomplete,
            skip_unknown_models=args.skip_unknown_models,
            eval_settings=_settings_option(settings),
        )
    else:
        ladder = import_lm_eval_samples(
            paths,
            models,
            metric=args.metric,
            filter_name=args.filter_name,
            compute_unit=args.compute_unit,
            benchmark_names=renames,
            drop_incomplete=args.drop_incomplete,
            eval_settings=_settings_option(settings),
        )
    out = ladder.save(args.out, compress=args.compress)
    print(f"wrote {out}: {ladder!r}")
    _print_settings(ladder)
    return 0


def _settings_option(settings):
    """``--eval-settings`` JSON, with errors that name the option."""
    if settings is not None and not isinstance(settings, dict):
        raise LadderValidationError(
            "--eval-settings", settings, "Give a JSON object: one settings object, or one "
            "per benchmark.")
    return settings


def _print_settings(ladder: Ladder) -> None:
    """Each benchmark's evaluation settings, or how to record them."""
    print("evaluation settings:")
    for b in ladder.benchmarks:
        settings = ladder.eval_settings_for(b)
        print(f"  {b}: " + ("not recorded" if settings is None else settings.describe()))
    if len(ladder.eval_settings) < len(ladder.benchmarks):
        print("  (record missing settings with `cod-monitor ladder import --eval-settings` or "
              "`cod-monitor ladder score`: a monitor checks its run against them at start)")


def run_info(args: argparse.Namespace) -> int:
    """Run ``cod-monitor ladder info``; return the exit code."""
    ladder = Ladder.load(args.path, drop_incomplete=args.drop_incomplete)
    unit = ladder.compute_unit
    print(f"{args.path}: {ladder!r}")
    print(f"compute unit: {unit:g} FLOPs")
    rows = [("model", "role", "params", "tokens", "compute (FLOPs)", f"compute/{unit:g}",
             "step", "run")]
    for m in ladder.models:
        rows.append((
            m.name, m.role, f"{m.params:.4g}", f"{m.tokens:.4g}", f"{m.compute:.4g}",
            f"{m.compute / unit:.4g}", "" if m.step is None else str(m.step), m.run_key,
        ))
    widths = [max(len(r[j]) for r in rows) for j in range(len(rows[0]))]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())
    _print_recipe(ladder)
    print("benchmarks:")
    for b in ladder.benchmarks:
        mat = ladder.matrix(b, roles=ROLES)
        counts = " (with n_samples/n_correct)" if mat.n_samples is not None else ""
        print(f"  {b}: {len(mat.sample_ids)} samples{counts}; {reversal_summary(ladder, b)}")
    _print_settings(ladder)
    return 0


def _print_recipe(ladder: Ladder) -> None:
    """Tokens per parameter of the ladder runs, and whether the recipe transport applies."""
    # scipy's optimisers: loaded when a command needs them, not to build the parser
    from cod_monitor.cod.transport import MIN_TOKENS_SPREAD, tokens_spread

    fit = [m for m in ladder.models if m.role == "ladder"]
    if not fit:
        return
    finals = [fit[i] for i in final_checkpoints(tuple(fit))]
    ratios = [m.tokens / m.params for m in finals]
    spread = tokens_spread([m.params for m in finals], [m.tokens for m in finals])
    mixed = spread >= MIN_TOKENS_SPREAD
    print(f"tokens per parameter (final checkpoints of {len(finals)} ladder runs): "
          f"{min(ratios):.3g} to {max(ratios):.3g}; "
          + ("mixed recipes: pass the target's ratio to `predict --tokens-per-param`"
             if mixed else "one recipe (tokens follow one curve in params)")
          + f" [spread {spread:.3f}]")


def run_validate(args: argparse.Namespace) -> int:
    """Run ``cod-monitor ladder validate``; return the exit code."""
    ladder = Ladder.load(args.path)
    print(f"ok: {args.path}: {ladder!r}")
    recorded = len(ladder.eval_settings)
    print(f"evaluation settings recorded for {recorded} of {len(ladder.benchmarks)} "
          "benchmark(s)" + (f": {', '.join(ladder.eval_settings)}" if recorded else ""))
    return 0
