"""A Megatron-style training loop (no Trainer) watched by a CODMonitor.

The loop trains the demo's target model (a 4M-parameter Llama, the recipe of
``cod_monitor.demo.recipe``) from scratch on CPU and, every ``--every`` steps, hands
the *in-memory* state dict to ``monitor.on_checkpoint``: the monitor copies it to CPU
memory (the only work done on the training thread), writes it with safetensors on a
background thread, evaluates it in a worker process with the HF evaluator (exact
mode, as the demo ladder was evaluated), compares it with the forecast trajectory
fitted on the demo ladder and alerts if the run falls behind. A Megatron loop does
the same with its own model and a ``config_dir`` holding an HF config of it.

Run (about a minute on 2 CPU cores)::

    python examples/plain_loop.py --steps 60 --every 20

``--ladder`` defaults to the ladder shipped in ``cod_monitor/data/demo_ladder``
(build another with ``cod-monitor ladder build-demo``). The evaluation set is the
ladder's own ``demo`` benchmark, written from the task generator its ``build.json``
names: the monitor refuses an evaluation set whose sample ids are not the ladder's. The monitor's journal, snapshots, and
``summary.json`` go to ``--out-dir``; run the script again with the same
``--out-dir`` and it resumes instead of re-evaluating.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ladder", default=None, help="ladder directory (default: the shipped demo ladder)")
    p.add_argument("--out-dir", default=None, help="monitor output directory (default: a temporary one)")
    p.add_argument("--steps", type=int, default=60, help="training steps to run")
    p.add_argument("--every", type=int, default=20, help="checkpoint every N steps")
    p.add_argument("--threads", type=int, default=1, help="torch threads of the training loop")
    p.add_argument("--tiny", action="store_true", help="a 30k-parameter model (smoke test)")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    import torch

    from cod_monitor.demo import SHIPPED_LADDER
    from cod_monitor.demo.live_config import demo_generator, write_eval_sets
    from cod_monitor.demo.recipe import ADAM_BETAS, GRAD_CLIP, make_spec, target_spec
    from cod_monitor.demo.tokenizer import save_tokenizer
    from cod_monitor.demo.train import TokenBlockDataset, build_model
    from cod_monitor.ladder import Ladder
    from cod_monitor.monitor import CheckpointConfig, CODMonitor, ForecastConfig, PoolConfig, RunGeometry

    ladder = args.ladder or str(SHIPPED_LADDER)
    if not os.path.isdir(ladder):
        sys.exit(f"no ladder at {ladder}; build the demo ladder with `cod-monitor build-demo` or pass --ladder")
    torch.set_num_threads(args.threads)
    spec = make_spec("tiny", 32, 1, role="target") if args.tiny else target_spec()
    # the task generator the ladder was built with: the training stream leaves out its
    # evaluation prompts, and the evaluation set is the ladder's own samples
    generator = demo_generator(ladder)
    model = build_model(spec)
    dataset = TokenBlockDataset(generator, spec.steps * spec.batch_size, spec.block_size, seed=spec.data_seed)

    out_dir = args.out_dir or tempfile.mkdtemp(prefix="cod-plain-loop-")
    # the ladder's "demo" samples, as JSON lines the evaluation worker reads
    eval_sets = write_eval_sets(Ladder.load(ladder), generator, ["demo"], os.path.join(out_dir, "eval_sets"))
    config_dir = os.path.join(out_dir, "model-config")  # what the evaluator loads next to the weights
    model.config.save_pretrained(config_dir)
    save_tokenizer(config_dir)

    monitor = CODMonitor(
        ladder,
        eval_sets,
        {"backend": "hf", "mode": "exact", "temperature": 1.0, "top_p": 0.7, "batch_size": 256},
        forecast=ForecastConfig(n_bootstrap=0 if args.tiny else 50),
        pool=PoolConfig(devices=["cpu"], cpu_threads=1),
        run=RunGeometry(params=spec.params, tokens_per_step=spec.tokens_per_step, max_steps=spec.steps),
        checkpoints=CheckpointConfig(config_dir=config_dir),
        out_dir=os.path.join(out_dir, "cod"),
        alert_callback=lambda alert: print("ALERT:", alert.message, flush=True),
    )
    monitor.start()  # fit the forecast and start the worker before training

    opt = torch.optim.AdamW(model.parameters(), lr=spec.learning_rate, betas=ADAM_BETAS, weight_decay=0.1)
    warm = spec.warmup_steps
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, s / max(1, warm)))
    model.train()
    in_loop_ms = []
    t_start = time.perf_counter()
    for step in range(1, args.steps + 1):
        idx = range((step - 1) * spec.batch_size, step * spec.batch_size)
        batch = torch.stack([dataset[i]["input_ids"] for i in idx])
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        if step % args.every == 0 or step == args.steps:
            t0 = time.perf_counter()
            monitor.on_checkpoint(step, state_dict=model.state_dict())  # returns at once
            in_loop_ms.append(1e3 * (time.perf_counter() - t0))
            for obs in monitor.poll():  # judged results that came back meanwhile
                print(f"step {obs.step}: observed {obs.accuracy:.3f}", flush=True)
            print(f"step {step}: loss {loss.item():.3f}, checkpoint queued in {in_loop_ms[-1]:.1f} ms", flush=True)
        if monitor.stop_requested:  # a below-band alert
            print("the run fell behind its forecast; stopping", flush=True)
            monitor.note_stopped(step, "drift")  # the summary says status: stopped_by_drift
            break
    train_s = time.perf_counter() - t_start
    summary = monitor.close(timeout=600)  # waits for the queued evaluations

    print(f"\ntrained {step} steps in {train_s:.0f}s ({summary['status']}); on_checkpoint took "
          f"{max(in_loop_ms):.1f} ms at most")
    for obs in monitor.observations:
        fp = monitor.forecast_point("demo", obs.step, tokens=obs.tokens)
        fc = "n/a" if fp is None else f"{fp.value:.3f} [{fp.lower:.3f}, {fp.upper:.3f}] ({fp.mode})"
        print(f"  step {obs.step:5d}: observed {obs.accuracy:.3f}, forecast {fc}")
    print(f"journal and summary in {monitor.out_dir}")
    return summary


if __name__ == "__main__":  # required: the evaluation worker is spawned
    main()
