"""``cod-monitor ladder score``: score your ladder's checkpoints as the monitor scores a run.

Registered under ``cod-monitor ladder`` by :func:`add_score_parser`. Every checkpoint of
the models table is evaluated on every ``--eval-set`` with the evaluator the monitor's
workers build from ``--evaluator`` (:func:`cod_monitor.runtime.score.score_ladder`), and
the ladder directory written to ``--out`` records those evaluation settings, so that a
monitor given the same evaluation sets and evaluator config passes its check at start.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cod_monitor.cli._options import (
    check_compute_unit,
    parse_pairs,
    read_json_option,
    refuse_overwrite,
    unescape,
)
from cod_monitor.exceptions import LadderValidationError
from cod_monitor.ladder import DEFAULT_COMPUTE_UNIT
from cod_monitor.ladder.importers import read_checkpoints_table
from cod_monitor.runtime.score import score_ladder
from cod_monitor.runtime.worker import EVAL_SET_SPEC_KEYS

__all__ = ["add_score_parser", "parse_eval_sets", "run_score"]

_EPILOG = """\
examples:
  cod-monitor ladder score --models models.csv --eval-set gsm8k=gsm8k.jsonl --stop '\\n' \\
      --evaluator '{"backend": "hf", "mode": "exact", "device": "cuda"}' --out ladders/mine
  cod-monitor ladder score --models models.json \\
      --eval-set 'gsm8k={"path": "gsm8k.jsonl", "stop": "\\n", "scorer": "last_number"}' \\
      --evaluator evaluator.json --out ladders/mine

models table: name, params, tokens, optionally compute (default 6*params*tokens), step,
role, run, loss, learning_rate, lr_schedule, and path: the checkpoint directory
(relative paths are relative to the table's directory). Give the monitor the same
evaluation sets and evaluator config: it compares them with the settings this ladder
records when it starts.
"""


def add_score_parser(ladder_subparsers) -> argparse.ArgumentParser:
    """Register ``score`` on the ``cod-monitor ladder`` sub-command registry.

    Parameters
    ----------
    ladder_subparsers : argparse._SubParsersAction
        The registry returned by ``ladder_parser.add_subparsers()``.

    Returns
    -------
    argparse.ArgumentParser
        The ``score`` parser; its ``func`` default runs :func:`run_score`.
    """
    p = ladder_subparsers.add_parser(
        "score",
        help="score your ladder's checkpoints with the monitor's evaluator",
        description="Evaluate every checkpoint of a models table on evaluation sets with the "
        "evaluator the monitor uses (same config, same code path as its workers) and write "
        "a ladder directory that records the evaluation settings.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--models", required=True, metavar="MODELS",
                   help="models table (CSV or JSON list) with a 'path' column: each model's "
                   "checkpoint directory")
    p.add_argument("--model-map", action="append", default=[], metavar="OURS=THEIRS",
                   help="map a model field (or path) to a column of the models table "
                   "(repeatable)")
    p.add_argument("--role", action="append", default=[], metavar="NAME=ROLE",
                   help="set a model's role: ladder, anchor or target (repeatable)")
    p.add_argument("--eval-set", action="append", default=[], metavar="BENCH=SPEC",
                   help="a benchmark and its evaluation set: a JSON-lines path, or the "
                   "monitor's spec as JSON ({\"path\", \"name\", \"scorer\", \"stop\"}); "
                   "repeatable, at least one")
    p.add_argument("--stop", metavar="MARKER",
                   help="stop marker of the evaluation sets given as paths (\\n, \\t, \\r and "
                   "\\\\ are decoded; default: none, the answer ends at end-of-sequence)")
    p.add_argument("--scorer", metavar="NAME",
                   help="scorer of the evaluation sets given as paths (default 'exact')")
    p.add_argument("--evaluator", metavar="JSON",
                   help="the monitor's evaluator config, as JSON text or a JSON file "
                   "(default {\"backend\": \"hf\"})")
    p.add_argument("--compute-unit", type=float, default=DEFAULT_COMPUTE_UNIT,
                   metavar="FLOPS", help="FLOPs per compute unit (default: %(default)g)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="ladder directory to write (refused if it holds a ladder, unless "
                   "--force)")
    p.add_argument("--force", action="store_true", help="overwrite the ladder already in --out")
    p.add_argument("--compress", action="store_true", help="write scores.csv.gz")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(func=run_score)
    return p


def parse_eval_sets(values: list[str], stop: str | None, scorer: str | None) -> dict:
    """``--eval-set BENCH=SPEC`` options as the monitor's ``eval_sets`` dict.

    Parameters
    ----------
    values : list of str
        The option values: ``BENCH=PATH`` or ``BENCH={json spec}``.
    stop, scorer : str or None
        ``--stop`` and ``--scorer``: set on specs that do not set them.

    Returns
    -------
    dict
        Benchmark -> ``{"path", "name", "stop", "scorer"}`` (only the keys given).

    Raises
    ------
    LadderValidationError
        A value without ``=``, a repeated benchmark, a spec that is not a JSON object
        with ``path``, or an unknown key.
    """
    if not values:
        raise LadderValidationError(
            "--eval-set", None, "Give at least one --eval-set BENCH=PATH (the benchmark "
            "name and its JSON-lines evaluation set).")
    out: dict = {}
    for value in values:
        bench, sep, spec_text = value.partition("=")
        bench, spec_text = bench.strip(), spec_text.strip()
        if not sep or not bench or not spec_text:
            raise LadderValidationError("--eval-set", value, "Use --eval-set BENCH=PATH or "
                                        "BENCH='{\"path\": ..., \"stop\": ...}'.")
        if bench in out:
            raise LadderValidationError("--eval-set", value, f"Give benchmark {bench!r} once.")
        if spec_text.startswith("{"):
            spec = read_json_option(spec_text, "--eval-set", f"the spec of {bench!r}")
            unknown = [k for k in spec if k not in EVAL_SET_SPEC_KEYS]
            if unknown or not isinstance(spec.get("path"), str):
                raise LadderValidationError(
                    "--eval-set", value, f"Give the spec of {bench!r} as a JSON object with "
                    f"'path' and optionally {', '.join(EVAL_SET_SPEC_KEYS[1:])}"
                    + (f" (unknown: {unknown})." if unknown else "."))
        else:
            spec = {"path": spec_text}
        if stop is not None:
            spec.setdefault("stop", stop)
        if scorer is not None:
            spec.setdefault("scorer", scorer)
        spec.setdefault("name", bench)
        out[bench] = spec
    return out


def run_score(args: argparse.Namespace) -> int:
    """Run ``cod-monitor ladder score``; return the exit code."""
    # every option before any evaluation, so a typo fails in seconds
    refuse_overwrite(args.out, args.force)
    check_compute_unit(args.compute_unit)
    stop = None if args.stop is None else unescape(args.stop)
    eval_sets = parse_eval_sets(args.eval_set, stop, args.scorer)
    evaluator = {"backend": "hf"}
    if args.evaluator is not None:
        evaluator = read_json_option(args.evaluator, "--evaluator", "the evaluator config")
        if not isinstance(evaluator, dict):
            raise LadderValidationError(
                "--evaluator", args.evaluator, "Give the evaluator config as a JSON object, "
                "e.g. '{\"backend\": \"hf\", \"mode\": \"exact\"}'.")
    roles = parse_pairs(args.role, "--role", "NAME=ROLE")
    columns = parse_pairs(args.model_map, "--model-map")
    models, paths = read_checkpoints_table(args.models, columns=columns, roles=roles)
    base = Path(args.models).resolve().parent
    checkpoints = {name: base / path for name, path in paths.items()}

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    ladder = score_ladder(models, checkpoints, eval_sets, evaluator,
                          compute_unit=args.compute_unit,
                          progress=None if args.quiet else progress)
    for bench in ladder.benchmarks:
        mat = ladder.matrix(bench)
        if not mat.pass_rates.any():
            settings = ladder.eval_settings_for(bench)
            print(f"warning: every sample of {bench!r} scored 0 on every ladder model: check "
                  f"its stop marker (now {settings.stop!r}) and scorer ({settings.scorer!r})",
                  file=sys.stderr)
    out = ladder.save(args.out, compress=args.compress)
    print(f"wrote {out}: {ladder!r}")
    for bench, settings in ladder.eval_settings.items():
        print(f"  {bench}: {settings.describe()}")
    print("evaluator config: " + json.dumps(evaluator))
    return 0
