"""Build the CPU ladders the accuracy benchmark holds beside the demo ladder.

Each is trained and evaluated by the demo's own code (``build_demo_ladder``: the recipe
of ``cod_monitor/demo/recipe.py``, exact pass rates at temperature 1, top_p 0.7) with
another task mix, seeds, token budget and size range than the shipped demo ladder, so
that the benchmark can check the default forecaster on recipe-matched ladders it was
not designed on. The pass rates are stored under ``benchmarks/data/<name>/``
(``ladder.json``, ``scores.csv.gz``, ``build.json``, ``report.txt``); they are
benchmark data, not shipped in the package.

Usage::

    python -m benchmarks.build_cpu_ladders [--only NAME] [--out DIR]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from cod_monitor.demo.build import build_demo_ladder
from cod_monitor.demo.recipe import count_params, make_spec, tokens_for

DATA = Path(__file__).resolve().parent / "data"

#: name -> what differs from the demo ladder.
LADDERS: dict[str, dict] = {
    # arithmetic only, the demo's token budget, five sizes up to a deeper one, a 3x target
    "arith": {
        "seed": 1, "eval_size": 800, "families": ["add", "sum"],
        "train_weights": {"add": 0.5, "sum": 0.5},
        "token_multiple": 1.0, "ladder": [(32, 1), (32, 2), (48, 2), (64, 2), (64, 3)],
        "target": (96, 3), "seeds": 2, "target_seeds": 3,
    },
    # sorting, sums and recall of numbers, a longer budget, smaller sizes, a 4x target
    "strings": {
        "seed": 2, "eval_size": 800, "families": ["sort", "sum", "fact"],
        "train_weights": {"sort": 0.4, "sum": 0.3, "fact": 0.3},
        "token_multiple": 1.25, "ladder": [(32, 1), (32, 2), (32, 3), (48, 2), (48, 3)],
        "target": (80, 3), "seeds": 2, "target_seeds": 3,
    },
}


def specs_of(config: dict) -> list:
    """The ladder and target runs of one configuration: the recipe with its token
    budget scaled by ``token_multiple``."""
    def spec(name, h, n, role):
        tokens = int(config["token_multiple"] * tokens_for(count_params(h, n)))
        return make_spec(name, h, n, role=role, tokens=tokens)

    out = [spec(f"L{i + 1}-d{h}x{n}", h, n, "ladder")
           for i, (h, n) in enumerate(config["ladder"])]
    h, n = config["target"]
    return out + [spec(f"target-d{h}x{n}", h, n, "target")]


def build(name: str, out_root: Path, work: Path) -> Path:
    """Build ladder ``name`` in ``work`` and copy its pass rates to ``out_root/name``."""
    config = LADDERS[name]
    result = build_demo_ladder(
        work / name, specs=specs_of(config), seed=config["seed"],
        eval_size=config["eval_size"], seeds=config["seeds"],
        target_seeds=config["target_seeds"], families=config["families"],
        train_weights=config["train_weights"], keep_weights="none",
        command=f"python -m benchmarks.build_cpu_ladders --only {name}",
    )
    dest = out_root / name
    dest.mkdir(parents=True, exist_ok=True)
    for f in ("ladder/ladder.json", "ladder/scores.csv.gz", "build.json", "report.txt"):
        shutil.copy(work / name / f, dest / Path(f).name)
    print(f"{name}: {result.summary['wall_s']:.0f} s -> {dest}", file=sys.stderr)
    return dest


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(LADDERS), action="append",
                        help="build only this ladder (repeatable)")
    parser.add_argument("--out", type=Path, default=DATA, help=f"(default {DATA})")
    parser.add_argument("--work", type=Path, default=Path("build/cpu_ladders"),
                        help="where the builds run (weights are not kept)")
    args = parser.parse_args(argv)
    for name in args.only or LADDERS:
        build(name, args.out, args.work)


if __name__ == "__main__":
    main()
