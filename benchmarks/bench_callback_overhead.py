"""What ``CODCallback`` costs the training loop: time in its hooks vs step time.

Trains the demo target (``cod_monitor.demo.recipe.target_spec``, shortened to
``--steps``) with the HF ``Trainer`` in ``--pairs`` pairs of runs, alternating, the same
checkpoints saved in both:

1. without the callback;
2. with ``CODCallback`` attached as the live demo attaches it (shipped demo ladder,
   the ``demo`` benchmark, exact-mode evaluation in a spawned CPU worker), timing every
   hook the Trainer calls on it (``on_step_end``, ``on_log``, ``on_save``...) with a
   wall clock.

Reports the in-loop cost (hook time, excluding ``on_train_end``'s drain, which happens
after the last step) per step and per checkpoint, as a share of training time, and the
median step time of both runs. On 2 CPU cores the evaluation worker competes with
training for the cores (on a GPU cluster it runs on held-out devices), so the step-time
difference includes that contention; the hook time is what the training thread itself
pays. Writes ``benchmarks/results/callback_overhead.json``. Usage::

    python -m benchmarks.bench_callback_overhead [--steps 700] [--checkpoints 4] [--pairs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the demo: before torch loads

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def _step_timer():
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        """Wall time of every optimizer step (begin to end, hooks of later callbacks aside)."""

        def __init__(self):
            self.durations, self._t = [], None

        def on_step_begin(self, args, state, control, **kwargs):
            self._t = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            if self._t is not None:
                self.durations.append(time.perf_counter() - self._t)

    return StepTimer()


def _timed_callback(**kwargs):
    """A ``CODCallback`` whose hooks add their wall time to ``hook_s[name]``."""
    from cod_monitor.integrations.hf import CODCallback

    class TimedCODCallback(CODCallback):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.hook_s: dict[str, float] = {}
            self.hook_calls: dict[str, int] = {}

    hooks = ("on_init_end", "on_train_begin", "on_epoch_begin", "on_step_begin",
             "on_substep_end", "on_pre_optimizer_step", "on_optimizer_step", "on_step_end",
             "on_log", "on_save", "on_evaluate", "on_epoch_end", "on_train_end")
    for name in hooks:
        original = getattr(CODCallback, name)

        def timed(self, *a, _original=original, _name=name, **kw):
            t = time.perf_counter()
            try:
                return _original(self, *a, **kw)
            finally:
                self.hook_s[_name] = self.hook_s.get(_name, 0.0) + time.perf_counter() - t
                self.hook_calls[_name] = self.hook_calls.get(_name, 0) + 1

        setattr(TimedCODCallback, name, timed)
    return TimedCODCallback(**kwargs)


def _cpu_seconds() -> dict:
    """User + system CPU seconds of this process (all its threads) and of its reaped
    children (the evaluation workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"process": own.ru_utime + own.ru_stime, "children": kids.ru_utime + kids.ru_stime}


def _cpu_since(start: dict) -> dict:
    now = _cpu_seconds()
    return {key: now[key] - start[key] for key in start}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=700)
    p.add_argument("--checkpoints", type=int, default=4)
    p.add_argument("--fit-priority", default="low", choices=("low", "normal"),
                   help="ForecastConfig.fit_priority of the monitored runs")
    p.add_argument("--worker-nice", type=lambda v: v if v == "idle" else int(v), default=None,
                   help="PoolConfig.cpu_nice of the CPU worker: a niceness or 'idle' "
                        "(default: PoolConfig's)")
    p.add_argument("--pairs", type=int, default=3,
                   help="plain/monitored runs, alternating (the slowdown is their median ratio)")
    p.add_argument("--out", type=Path, default=RESULTS / "callback_overhead.json")
    args = p.parse_args(argv)

    from cod_monitor.demo import SHIPPED_LADDER
    from cod_monitor.demo.live_config import demo_generator, write_eval_sets
    from cod_monitor.demo.recipe import BATCH_SIZE, BLOCK_SIZE, target_spec
    from cod_monitor.demo.train import train_target
    from cod_monitor.ladder import Ladder
    from cod_monitor.monitor import ForecastConfig, PoolConfig, RunGeometry

    spec = target_spec(tokens=args.steps * BATCH_SIZE * BLOCK_SIZE,
                       n_checkpoints=args.checkpoints)
    generator = demo_generator(SHIPPED_LADDER)
    threads = os.cpu_count() or 1
    out: dict = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                             "load_avg_start": os.getloadavg()},
                 "options": {"fit_priority": args.fit_priority, "worker_nice": args.worker_nice},
                 "spec": {"name": spec.name, "params": spec.params, "steps": spec.steps,
                          "checkpoints": list(spec.checkpoint_steps)}}
    pairs = []
    with tempfile.TemporaryDirectory(prefix="cod-overhead-") as tmp:
        tmp = Path(tmp)
        eval_sets = write_eval_sets(Ladder.load(SHIPPED_LADDER), generator, ["demo"],
                                    tmp / "eval_sets")
        build = json.loads((SHIPPED_LADDER / "build.json").read_text())
        # in-run pairs: plain and monitored runs alternate, so that a change of machine
        # load hits both members of a pair alike; the ratio is taken within each pair
        for k in range(args.pairs):
            # ABBA: the order alternates, so that a machine speeding up or slowing down
            # over the benchmark favours neither side
            first = "plain" if k % 2 == 0 else "monitored"
            for side in (first, "monitored" if first == "plain" else "plain"):
                cpu0 = _cpu_seconds()
                if side == "plain":
                    timer = _step_timer()
                    t = time.perf_counter()
                    train_target(tmp / f"plain-{k}", spec=spec, generator=generator,
                                 callbacks=[timer], threads=threads, report_to="none",
                                 save_total_limit=2)
                    plain_s = time.perf_counter() - t
                    plain_steps = np.array(timer.durations)
                    plain_cpu = _cpu_since(cpu0)
                    continue
                cb = _timed_callback(
                    ladder=str(SHIPPED_LADDER), eval_sets=eval_sets,
                    evaluator=build["evaluator"],
                    forecast=ForecastConfig(refresh_interval=None, n_bootstrap=50,
                                            fit_priority=args.fit_priority),
                    pool=PoolConfig(devices=["cpu"], cpu_threads=1, **(
                        {} if args.worker_nice is None else {"cpu_nice": args.worker_nice})),
                    run=RunGeometry(params=float(spec.params),
                                    tokens_per_step=float(spec.tokens_per_step),
                                    max_steps=spec.steps),
                    trackers=[], out_dir=str(tmp / f"monitor-{k}"))
                timer = _step_timer()
                t = time.perf_counter()
                train_target(tmp / f"monitored-{k}", spec=spec, generator=generator,
                             callbacks=[timer, cb], threads=threads, report_to="none",
                             save_total_limit=2)
                monitored_s = time.perf_counter() - t
                monitored_steps = np.array(timer.durations)
                # the workers are reaped at the monitor's close: their CPU is in the
                # children's account by now
                monitored_cpu = _cpu_since(cpu0)
            drain = cb.hook_s.get("on_train_end", 0.0)
            pairs.append({"first": first, "plain_s": plain_s, "monitored_s": monitored_s - drain,
                          "drain_s": drain, "ratio": (monitored_s - drain) / plain_s,
                          "plain_cpu_s": plain_cpu, "monitored_cpu_s": monitored_cpu,
                          "plain_median_step_ms": 1e3 * float(np.median(plain_steps)),
                          "monitored_median_step_ms": 1e3 * float(np.median(monitored_steps))})
            extra = {key: monitored_cpu[key] - plain_cpu[key] for key in plain_cpu}
            print(f"pair {k + 1}/{args.pairs} ({first} first): plain {plain_s:.1f} s, monitored "
                  f"{monitored_s - drain:.1f} s (+ drain {drain:.1f}), ratio "
                  f"{pairs[-1]['ratio']:.3f}; CPU s plain {plain_cpu['process']:.1f}, monitored "
                  f"{monitored_cpu['process']:.1f} in the training process (+"
                  f"{extra['process']:.1f}) and {monitored_cpu['children']:.1f} in the "
                  f"evaluation worker", flush=True)

    # evaluations that finish after the last step are collected by the drain
    observations = sum(int(b.get("observations") or 0)
                       for b in ((cb.summary_ or {}).get("benchmarks") or {}).values())
    hook_s = dict(cb.hook_s)
    calls = dict(cb.hook_calls)
    drain = hook_s.pop("on_train_end", 0.0)
    in_loop = sum(hook_s.values())
    ratios = [pr["ratio"] for pr in pairs]
    out.update({
        "pairs": pairs,
        "median_ratio": float(np.median(ratios)),
        "plain": {"train_s": plain_s, "median_step_ms": 1e3 * float(np.median(plain_steps))},
        "monitored": {"train_s": monitored_s,
                      "median_step_ms": 1e3 * float(np.median(monitored_steps)),
                      "hook_s": hook_s, "hook_calls": calls, "train_end_drain_s": drain,
                      "observations": observations},
        "in_loop_s": in_loop,
        "in_loop_per_step_ms": 1e3 * in_loop / spec.steps,
        "in_loop_share_of_training": in_loop / (monitored_s - drain),
        "on_save_ms_per_checkpoint": 1e3 * hook_s.get("on_save", 0.0) / max(1, calls.get("on_save", 1)),
        "load_avg_end": os.getloadavg(),
    })
    rows = [
        ("training steps", f"{spec.steps}", f"{spec.steps}"),
        (f"training wall, median ratio of {len(pairs)} in-run pairs", "1",
         f"{out['median_ratio']:.3f} ({', '.join(f'{r:.3f}' for r in ratios)})"),
        ("median step (ms)", f"{out['plain']['median_step_ms']:.1f}",
         f"{out['monitored']['median_step_ms']:.1f}"),
        ("training wall (s)", f"{plain_s:.1f}", f"{monitored_s - drain:.1f} (+ drain {drain:.1f})"),
        ("callback hooks in the loop (ms/step)", "-", f"{out['in_loop_per_step_ms']:.3f}"),
        ("callback share of training time", "-", f"{100 * out['in_loop_share_of_training']:.2f}%"),
        ("on_save per checkpoint (ms)", "-", f"{out['on_save_ms_per_checkpoint']:.1f}"),
        ("checkpoints observed (incl. drain)", "-", f"{observations}"),
    ]
    print(f"{spec.name}: {spec.params:,} params, {spec.steps} steps, {args.checkpoints} "
          f"checkpoints, load {out['machine']['load_avg_start'][0]:.1f} -> "
          f"{out['load_avg_end'][0]:.1f}")
    print("| measure | without callback | with CODCallback |\n|---|---:|---:|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, default=float))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
