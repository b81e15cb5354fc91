"""Fingerprint every forecast, to check that a refactoring changed no number.

Writes, for every registered method on the accuracy benchmark's quick cases (real
ladders when ``../shared/cod_data`` is present, the demo ladder's families, two
synthetic and one mixed-recipe ladder), the ``repr`` of its forecast, of its 90%
interval (``n_bootstrap=20``, ``random_state=0``) and its error message; for every
trajectory mode on the demo ladder (benchmarks ``add`` and ``demo``; ``compute`` and
``recipe`` also with ``e2e-exp`` as the finished-model forecaster) the forecasts at four
checkpoints of the target run; and the stdout of ``cod-monitor predict --method all
--json`` on the demo ladder. Two fingerprints are equal when every number is the same
to the last bit.

Usage::

    python -m benchmarks.fingerprint --out before.json      # on the old commit
    python -m benchmarks.fingerprint --out after.json       # on the new one
    python -m benchmarks.fingerprint --compare before.json after.json [--tolerance 1e-4]
"""

from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import sys
import warnings
from pathlib import Path

from benchmarks.bench_accuracy import mixed_recipe_cases, synthetic_cases
from benchmarks.cases import demo_cases, real_cases
from cod_monitor import TrajectoryForecaster, load_ladder
from cod_monitor.demo import SHIPPED_LADDER
from cod_monitor.methods import available_methods, compare_methods, make_forecaster


def _target_and_steps():
    """The shipped demo ladder's target run: its final checkpoint and four steps of it."""
    ladder = load_ladder(SHIPPED_LADDER)
    target = max(ladder.models_with_role("target"), key=lambda m: m.step or 0)
    last = int(target.step)
    return target.name, (last // 16, last // 4, last // 2, last)


TARGET, STEPS = _target_and_steps()
MODES = ("auto", "compute", "trajectory", "trajectory_e2e", "recipe", "blend")


def method_forecasts() -> dict:
    out = {}
    cases = (real_cases(leave_largest_out=False) + demo_cases() + synthetic_cases(range(2))
             + mixed_recipe_cases(range(1)))
    for case in cases:
        target = case.ladder.model(case.target)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = compare_methods(case.ladder, case.benchmark, case.target_compute,
                                  available_methods(), n_bootstrap=20, random_state=0,
                                  tokens_per_param=target.tokens / target.params, **case.options)
        out[case.name] = {k: [repr(v["value"]), repr(v["interval"]), v.get("error")]
                          for k, v in res.items()}
        print(case.name, file=sys.stderr, flush=True)
    return out


def trajectory_forecasts() -> dict:
    ladder = load_ladder(SHIPPED_LADDER)
    target = ladder.model(TARGET)
    tokens_per_step = target.tokens / STEPS[-1]
    out = {}
    for mode in MODES:
        for method in (None, "e2e-exp") if mode in ("compute", "recipe", "blend") else (None,):
            for benchmark in ("add", "demo"):
                finished = None if method is None else make_forecaster(
                    method, n_bootstrap=20, random_state=0)
                key = f"{mode}/{method}/{benchmark}"
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    try:
                        tf = TrajectoryForecaster(mode=mode, finished=finished, n_bootstrap=20,
                                                  run_sd=0.01).fit(ladder, benchmark)
                    except Exception as exc:  # a mode a ladder cannot take is part of the print
                        out[key] = f"ERR {exc!r}"
                        continue
                    points = [tf.forecast(s, target.params, s * tokens_per_step, level=0.9)
                              for s in STEPS]
                out[key] = [repr((p.value, p.lower, p.upper)) for p in points] + [tf.mode_]
    return out


def cli_forecasts() -> list:
    argv = ["predict", "--ladder", str(SHIPPED_LADDER), "--benchmark", "add", "--target", TARGET,
            "--method", "all", "--n-bootstrap", "20", "--json"]
    proc = subprocess.run([sys.executable, "-c", "import sys; from cod_monitor.cli import main; "
                           "sys.exit(main(sys.argv[1:]))", *argv], capture_output=True, text=True)
    return [proc.returncode, proc.stdout]


_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?|nan|inf")


def _deviation(a, b) -> float:
    """The largest absolute difference between the numbers of two printed entries, or
    ``inf`` when they differ in anything but their numbers."""
    ta, tb = json.dumps(a), json.dumps(b)
    if _NUMBER.sub("#", ta) != _NUMBER.sub("#", tb):
        return math.inf
    worst = 0.0
    for x, y in zip(_NUMBER.findall(ta), _NUMBER.findall(tb)):
        x, y = float(x), float(y)
        if x != y and not (math.isnan(x) and math.isnan(y)):
            worst = max(worst, abs(x - y))
    return worst


def compare(before: dict, after: dict, tolerance: float = 0.0) -> int:
    """Print how many entries of each part are identical (and, with ``tolerance``, how
    many more agree within it); return the number that differ beyond it."""
    differ = 0
    for part in ("methods", "trajectory"):
        a, b = before[part], after[part]
        if part == "methods":
            a = {(c, m): v for c, ms in a.items() for m, v in ms.items()}
            b = {(c, m): v for c, ms in b.items() for m, v in ms.items()}
        same = sum(a[k] == b.get(k) for k in a)
        dev = {k: _deviation(a[k], b.get(k)) for k in a if a[k] != b.get(k)}
        close = sum(d <= tolerance for d in dev.values()) if tolerance else 0
        differ += len(a) - same - close + len(set(b) - set(a))
        print(f"{part}: {same} of {len(a)} identical"
              + (f", {close} more within {tolerance:g}" if tolerance else "")
              + f" ({len(set(b) - set(a))} new)"
              + (f"; largest difference {max(dev.values()):.3g}" if dev else ""))
        for k in [k for k in dev if dev[k] > tolerance][:10]:
            print(f"  {k}: {a[k]} -> {b.get(k)}")
    cli = _deviation(before["cli"], after["cli"])
    differ += cli > tolerance
    print("cod-monitor predict --json: " + ("identical" if before["cli"] == after["cli"] else
          f"within {tolerance:g}" if cli <= tolerance else f"DIFFERENT ({cli:.3g})"))
    return differ


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write this commit's fingerprint here")
    parser.add_argument("--compare", type=Path, nargs=2, metavar=("BEFORE", "AFTER"))
    parser.add_argument("--tolerance", type=float, default=0.0,
                        help="with --compare: also count numbers within this absolute "
                             "difference as agreeing (a change of solver, not of method)")
    args = parser.parse_args(argv)
    if args.compare:
        before, after = (json.loads(p.read_text()) for p in args.compare)
        return 1 if compare(before, after, args.tolerance) else 0
    if args.out is None:
        parser.error("give --out FILE or --compare BEFORE AFTER")
    result = {"methods": method_forecasts(), "trajectory": trajectory_forecasts(),
              "cli": cli_forecasts()}
    args.out.write_text(json.dumps(result, indent=1, sort_keys=True))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
