"""``cod-monitor ladder build-demo``: train and evaluate the demo ladder from scratch.

Registered under ``cod-monitor ladder`` by :func:`add_build_demo_parser`; also runs
alone as ``python -m cod_monitor.cli.build_demo --out DIR``. Needs the HF extra
(``pip install 'cod_monitor[hf]'``); the recipe is in :mod:`cod_monitor.demo.recipe`.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from cod_monitor.demo.recipe import LADDER_SEEDS, TARGET_SEEDS

__all__ = ["add_build_demo_parser", "run_build_demo", "main"]

_EPILOG = """\
The output directory holds ladder/ (ladder.json + scores.csv.gz), eval.jsonl,
tokenizer/, models/ (final weights), build.json, report.txt and curves.png (with
matplotlib). The shipped ladder cod_monitor/data/demo_ladder was built with:
  cod-monitor ladder build-demo --out build/demo
"""


def add_build_demo_parser(ladder_subparsers) -> argparse.ArgumentParser:
    """Register ``build-demo`` on the ``cod-monitor ladder`` sub-command registry.

    Parameters
    ----------
    ladder_subparsers : argparse._SubParsersAction
        The registry returned by ``ladder_parser.add_subparsers()``.

    Returns
    -------
    argparse.ArgumentParser
        The ``build-demo`` parser; its ``func`` default runs the build.
    """
    p = ladder_subparsers.add_parser(
        "build-demo",
        help="train the demo ladder of tiny Llama models and evaluate every checkpoint",
        description="Train the demo ladder (six tiny Llama runs and a target, one recipe) "
        "on the synthetic exact-answer tasks, evaluate every checkpoint's per-sample "
        "exact pass rates and write a ladder directory. About 15-30 minutes on 2 CPU cores.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output directory")
    p.add_argument("--seed", type=int, default=0, help="seed of the evaluation set (default 0)")
    p.add_argument("--eval-size", type=int, default=1200,
                   help="requested evaluation samples (default 1200)")
    p.add_argument("--workers", type=int, default=2,
                   help="training processes, 1 thread each (default 2)")
    p.add_argument("--threads", type=int, default=2, help="cores to use in all (default 2)")
    p.add_argument("--backend", choices=("trainer", "loop"), default="trainer",
                   help="HF Trainer (default) or a plain PyTorch loop, same recipe")
    p.add_argument("--keep-weights", choices=("final", "all", "none"), default="final",
                   help="which weights to keep under models/ (default final)")
    p.add_argument("--seeds", type=int, default=LADDER_SEEDS, metavar="K",
                   help="training runs per ladder size, pass rates averaged (default "
                        f"{LADDER_SEEDS})")
    p.add_argument("--target-seeds", type=int, default=TARGET_SEEDS, metavar="K",
                   help="training runs of the target, pass rates averaged: the truth a "
                        f"forecast is judged against (default {TARGET_SEEDS})")
    p.add_argument("--micro", action="store_true",
                   help="a few-second smoke build: three micro models and a micro target")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(func=run_build_demo)
    return p


def run_build_demo(args) -> int:
    """Run the build described by parsed ``args``; returns the exit code."""
    from cod_monitor.demo.build import build_demo_ladder
    from cod_monitor.demo.recipe import micro_specs

    command = "cod-monitor ladder build-demo " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if sys.argv[1:2] != ["ladder"] else sys.argv[3:])
    )
    # the options that go to build_demo_ladder under their own names
    same = ("seed", "eval_size", "workers", "threads", "backend", "keep_weights", "seeds",
            "target_seeds")
    result = build_demo_ladder(args.out, specs=micro_specs() if args.micro else None,
                               progress=not args.quiet, command=command,
                               **{name: getattr(args, name) for name in same})
    s = result.summary
    print(f"wrote {result.path} ({len(result.ladder.models)} checkpoints, "
          f"{s['n_eval_samples']} samples, {s['wall_s']:.0f} s)")
    for run in s["runs"]:
        print(f"  {run['name']:<16} {run['role']:<7} N={run['params']:>9,d} "
              f"D={run['tokens']:>10,d} C={run['compute']:.3g} lr={run['learning_rate']:.2e} "
              f"acc={run['final_accuracy']:.3f}")
    return 0


def main(argv=None) -> int:
    """``python -m cod_monitor.cli.build_demo --out DIR``."""
    parser = argparse.ArgumentParser(prog="cod-monitor ladder")
    add_build_demo_parser(parser.add_subparsers(dest="ladder_command"))
    args = parser.parse_args(["build-demo", *(sys.argv[1:] if argv is None else argv)])
    return run_build_demo(args)


if __name__ == "__main__":
    sys.exit(main())
