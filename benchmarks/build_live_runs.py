"""Build the benchmark runs of the live forecast: variants of the demo's target run.

Each run is the shipped demo ladder's target (``cod_monitor.demo.recipe.target_spec``:
339k parameters, 2,128 steps, 16 checkpoints) trained again by the demo's own code
(``cod_monitor.demo.build.add_runs``, HF ``Trainer``) and evaluated at every checkpoint
exactly as the shipped ladder was (its ``build.json``'s generator seed and eval_size;
``HFEvaluator(mode="exact", temperature=1.0, top_p=0.7)``), so its sample ids and pass
rates compare with the ladder's:

- ``healthy-seed0`` .. ``healthy-seed4``: the recipe with the seeds of
  ``cod-monitor demo --seed S`` (``seed_overrides``; seed 0 is the recipe's own run);
- ``lowlr-seed0``, ``lowlr-seed1``: peak learning rate 0.35 x the recipe's eta(N), a
  recipe that departs from the ladder's learning-rate trend;
- on seeds 0 and 1, one fault each (``cod_monitor.demo.sabotage``): ``lr_spike`` (x20
  for 5% of the tokens from 50%), ``corrupt`` (shuffled answers for 10% of the tokens
  from 50%), ``slowdown`` (learning rate falling smoothly to x0.02 from 40% to the
  end; measured, it acts as a cooldown and raises accuracy), ``high_lr`` (x3 for the
  whole run);
- ``corrupt_ramp-seed0``, ``corrupt_ramp-seed1`` (built after the others): the share of
  examples with shuffled answers rising smoothly from 0 at 40% to 0.5 at the end, a
  gradual fault that lowers accuracy (the ``slowdown`` above does not).

Output in ``benchmarks/data/live_runs/``: ``ladder.json`` + ``scores.csv.gz`` (the
ladder format: the shipped ladder's models, which the format needs, at least 3 with
role ``ladder``, plus every checkpoint of these runs with role ``'target'`` and run key
``target-d96x3-<name>``), and ``runs.json`` (per run: seeds, learning rate and
schedule, the fault or ``null``, wall time, final accuracies). Each run is saved as
soon as it finishes; runs already stored are skipped, so the command resumes.

Usage::

    python -m benchmarks.build_live_runs [--only NAME ...] [--out DIR] [--list]

Runs train two at a time (2 worker processes of 1 thread, as the demo build): about
5 minutes a pair on an idle 2-core machine, 10 to 22 minutes with other work on it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from cod_monitor._io import atomic_write
from cod_monitor.demo import SHIPPED_LADDER
from cod_monitor.demo.recipe import LR_SCHEDULE, learning_rate_for, seed_overrides, target_spec
from cod_monitor.demo.sabotage import Sabotage
from cod_monitor.ladder import Ladder

DATA = Path(__file__).resolve().parent / "data" / "live_runs"
RUNS_JSON = "runs.json"
#: Learning rate of the ``lowlr`` runs, as a multiple of the recipe's eta(N).
LOW_LR_MULTIPLE = 0.35
#: Benchmarks whose final accuracy ``runs.json`` reports.
REPORTED = ("demo", "knowledge")


@dataclass(frozen=True)
class LiveRun:
    """One benchmark run: a name, the seed of ``cod-monitor demo --seed``, a multiple of
    the recipe's learning rate and an optional fault."""

    name: str
    seed: int
    lr_multiple: float = 1.0
    sabotage: Sabotage | None = None


def _faults(seed: int) -> list[LiveRun]:
    return [
        LiveRun(f"lr_spike-seed{seed}", seed, sabotage=Sabotage("lr_spike", 0.5, 0.55, 20.0)),
        LiveRun(f"corrupt-seed{seed}", seed, sabotage=Sabotage("corrupt", 0.5, 0.6)),
        LiveRun(f"slowdown-seed{seed}", seed, sabotage=Sabotage("slowdown", 0.4, 1.0, 0.02)),
        LiveRun(f"high_lr-seed{seed}", seed, sabotage=Sabotage("high_lr", 0.0, 1.0, 3.0)),
    ]


#: Every run, in build order: the healthy seeds, the first low-rate run, one of each
#: fault on seed 0, then the rest.
PLAN: tuple[LiveRun, ...] = (
    *(LiveRun(f"healthy-seed{s}", s) for s in range(5)),
    LiveRun("lowlr-seed0", 0, LOW_LR_MULTIPLE),
    *_faults(0),
    LiveRun("lowlr-seed1", 1, LOW_LR_MULTIPLE),
    *_faults(1),
    # added after the LR-decay "slowdown" turned out to raise accuracy (a cooldown)
    *(LiveRun(f"corrupt_ramp-seed{s}", s, sabotage=Sabotage("corrupt_ramp", 0.4, 1.0, 0.5))
      for s in (0, 1)),
)


def spec_of(run: LiveRun):
    """The ``RunSpec`` of a benchmark run: the recipe's target with the run's seeds and
    rate, named ``<target>-<run name>``."""
    base = target_spec()
    lr = run.lr_multiple * learning_rate_for(base.params)
    return replace(target_spec(**seed_overrides(run.seed), learning_rate=lr),
                   name=f"{base.name}-{run.name}")


def final_accuracies(ladder: Ladder, run_key: str) -> dict:
    """Per reported benchmark: accuracy at every checkpoint of the run, the last one, and
    the mean of the last 3 (the paper's checkpoint smoothing)."""
    out = {}
    roles = sorted({m.role for m in ladder.models})
    for b in REPORTED:
        if b not in ladder.benchmarks:
            continue
        mat = ladder.matrix(b, roles=roles)
        cols = sorted((m.step, j) for j, m in enumerate(mat.models) if m.run_key == run_key)
        acc = [float(mat.pass_rates[:, j].mean()) for _, j in cols]
        out[b] = {"steps": [s for s, _ in cols], "accuracy": [round(a, 6) for a in acc],
                  "last": round(acc[-1], 6), "mean_last3": round(float(np.mean(acc[-3:])), 6)}
    return out


def _read_runs(out: Path) -> dict:
    path = out / RUNS_JSON
    return json.loads(path.read_text()) if path.is_file() else {}


def _stored(out: Path, n_checkpoints: int) -> tuple[Ladder | None, dict]:
    """The stored ladder (without runs that ``runs.json`` does not list: a save cut
    short between the two files) and the ``runs.json`` content."""
    meta = _read_runs(out)
    if not (out / "ladder.json").is_file():
        return None, meta
    ladder = Ladder.load(out)
    listed = {r["run"] for r in meta.get("runs", [])}
    counts: dict[str, int] = {}
    for m in ladder.models:
        counts[m.run_key] = counts.get(m.run_key, 0) + 1
    base = target_spec().name
    partial = [m.name for m in ladder.models if m.run_key.startswith(f"{base}-")
               and (m.run_key not in listed or counts[m.run_key] != n_checkpoints)]
    if partial:
        ladder = ladder.without_models(partial)
        keep = {m.run_key for m in ladder.models}
        meta["runs"] = [r for r in meta.get("runs", []) if r["run"] in keep]
    return ladder, meta


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", choices=[r.name for r in PLAN],
                        metavar="NAME", help="build only this run (repeatable)")
    parser.add_argument("--out", type=Path, default=DATA, help=f"(default {DATA})")
    parser.add_argument("--ladder", type=Path, default=SHIPPED_LADDER,
                        help="the demo ladder whose target is varied (default: the shipped one)")
    parser.add_argument("--workers", type=int, default=2,
                        help="runs trained at a time, one 1-thread process each (default 2)")
    parser.add_argument("--list", action="store_true", help="list the runs and what is stored")
    args = parser.parse_args(argv)

    build = json.loads((args.ladder / "build.json").read_text())
    gen = build.get("generator", {})
    n_ckpt = len(target_spec().checkpoint_steps)
    stored, meta = _stored(args.out, n_ckpt)
    done = {r["name"] for r in meta.get("runs", [])}
    todo = [r for r in PLAN if (not args.only or r.name in args.only) and r.name not in done]
    if args.list:
        for r in PLAN:
            state = "stored" if r.name in done else "to build"
            print(f"{r.name:18} seed {r.seed}  lr x{r.lr_multiple:g}  "
                  f"{r.sabotage.to_dict() if r.sabotage else '-'}  {state}")
        return 0
    if not todo:
        print("every requested run is stored", file=sys.stderr)
        return 0

    from cod_monitor.demo.build import add_runs

    ladder = stored if stored is not None else Ladder.load(args.ladder)
    by_key = {spec_of(r).name: r for r in PLAN}
    meta = {
        "description": "Variants of the shipped demo ladder's target run, each trained once "
                       "and evaluated at its 16 checkpoints like the ladder (see README.md).",
        "command": "python -m benchmarks.build_live_runs",
        "source_ladder": "cod_monitor/data/demo_ladder",
        "generator": gen,
        "evaluator": build.get("evaluator"),
        "recipe_learning_rate": learning_rate_for(target_spec().params),
        "workers": args.workers,
        "runs": meta.get("runs", []),
    }
    args.out.mkdir(parents=True, exist_ok=True)

    def on_run(current: Ladder, msg: dict) -> None:
        run = by_key[msg["run"]]
        spec = spec_of(run)
        current.save(args.out, compress=True)
        entry = {
            "name": run.name,
            "run": spec.name,
            "seed": run.seed,
            "init_seed": spec.init_seed,
            "data_seed": spec.data_seed,
            "learning_rate": spec.learning_rate,
            "lr_multiple": run.lr_multiple,
            "lr_schedule": LR_SCHEDULE,
            "warmup_steps": spec.warmup_steps,
            "steps": spec.steps,
            "tokens": spec.tokens,
            "params": spec.params,
            "checkpoint_steps": list(spec.checkpoint_steps),
            "sabotage": run.sabotage.to_dict(spec.steps) if run.sabotage else None,
            "wall_s": round(msg["wall_s"], 1),
            "train_s": round(msg["train_s"], 1),
            "eval_s": round(msg["eval_s"], 1),
            "final_train_loss": msg.get("final_train_loss"),
            **({"corrupted_blocks": msg["corrupted_blocks"]} if "corrupted_blocks" in msg
               else {}),
            "final": final_accuracies(current, spec.name),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        }
        meta["runs"] = [r for r in meta["runs"] if r["name"] != run.name] + [entry]
        order = [r.name for r in PLAN]
        meta["runs"].sort(key=lambda r: order.index(r["name"]))
        atomic_write(args.out / RUNS_JSON, (json.dumps(meta, indent=2) + "\n").encode())
        demo = entry["final"].get("demo", {})
        print(f"stored {run.name}: demo last {demo.get('last', float('nan')):.4f}, mean of "
              f"last 3 {demo.get('mean_last3', float('nan')):.4f}, {msg['wall_s']:.0f} s",
              file=sys.stderr, flush=True)

    step = max(1, args.workers)
    for i in range(0, len(todo), step):
        chunk = todo[i:i + step]
        print(f"training {', '.join(r.name for r in chunk)} ({i + len(chunk)}/{len(todo)})",
              file=sys.stderr, flush=True)
        ladder = add_runs(
            ladder, [spec_of(r) for r in chunk], seed=gen.get("seed", 0),
            eval_size=gen.get("eval_size", 1200), workers=min(step, len(chunk)), threads=2,
            sabotage={spec_of(r).name: r.sabotage for r in chunk if r.sabotage},
            on_run=on_run,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
