"""An accelerate training loop watched by a CODMonitor, with checkpoint rotation.

The loop trains the demo's target model with ``accelerate.Accelerator`` and saves a
checkpoint directory every ``--every`` steps (``save_pretrained`` layout), keeping
only the newest one, as ``save_total_limit=1`` would. On the main process each
saved directory goes to ``monitor.on_checkpoint(step, tokens=..., path=...)``, which
hard links it into a private snapshot before returning, so deleting the checkpoint
right after is safe; evaluation, forecasting and drift alerts happen in the
background (see ``examples/plain_loop.py``).

After each checkpoint, every process:

- logs the checkpoints judged meanwhile through ``Accelerator.log``
  (``cod/<benchmark>/accuracy``, ``forecast``, ``final_forecast``,
  ``checkpoint_step``, ... beside the loss; ``--log-with wandb`` to see them);
- asks whether to stop: the monitor lives on the main process only, and its stop on
  drift reaches every process through accelerate's trigger
  (:func:`cod_monitor.integrations.accelerate.stop_on_every_rank`), so no process
  waits at a collective for one that left.

Run (about a minute on 2 CPU cores)::

    python examples/accelerate_loop.py --steps 60 --every 20
    accelerate launch --cpu --num_processes 2 examples/accelerate_loop.py --tiny --steps 4 --every 2
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ladder", default=None, help="ladder directory (default: the shipped demo ladder)")
    p.add_argument("--out-dir", default=None, help="output directory (default: a temporary one)")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--every", type=int, default=20)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--tiny", action="store_true", help="a 30k-parameter model (smoke test)")
    p.add_argument("--log-with", default=None,
                   help="accelerate tracker for the loss and the cod/* metrics (e.g. wandb)")
    p.add_argument("--keep-going", action="store_true",
                   help="do not stop when the run drifts below its forecast")
    p.add_argument("--sync", action="store_true",
                   help="wait for each checkpoint's judgement before training on (to watch a "
                        "stop on drift happen; a real run never waits)")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    import torch
    from accelerate import Accelerator

    from cod_monitor.demo import SHIPPED_LADDER
    from cod_monitor.demo.live_config import demo_generator, write_eval_sets
    from cod_monitor.demo.recipe import ADAM_BETAS, GRAD_CLIP, make_spec, target_spec
    from cod_monitor.demo.tokenizer import save_tokenizer
    from cod_monitor.demo.train import TokenBlockDataset, build_model
    from cod_monitor.integrations.accelerate import log_observations, stop_on_every_rank
    from cod_monitor.ladder import Ladder
    from cod_monitor.monitor import CheckpointConfig, CODMonitor, ForecastConfig, PoolConfig, RunGeometry

    ladder = args.ladder or str(SHIPPED_LADDER)
    if not os.path.isdir(ladder):
        sys.exit(f"no ladder at {ladder}; build the demo ladder with `cod-monitor build-demo` or pass --ladder")
    torch.set_num_threads(args.threads)
    accelerator = Accelerator(cpu=True, log_with=args.log_with)
    spec = make_spec("tiny", 32, 1, role="target") if args.tiny else target_spec()
    # the task generator the ladder was built with: the training stream leaves out its
    # evaluation prompts, and the evaluation set is the ladder's own samples
    generator = demo_generator(ladder)
    model = build_model(spec)
    dataset = TokenBlockDataset(generator, spec.steps * spec.batch_size, spec.block_size, seed=spec.data_seed)
    loader = torch.utils.data.DataLoader(dataset, batch_size=spec.batch_size, shuffle=False)
    opt = torch.optim.AdamW(model.parameters(), lr=spec.learning_rate, betas=ADAM_BETAS, weight_decay=0.1)
    model, opt, loader = accelerator.prepare(model, opt, loader)

    out_dir = args.out_dir or tempfile.mkdtemp(prefix="cod-accelerate-loop-")
    if args.log_with:
        accelerator.init_trackers("cod-accelerate-loop", config={"steps": args.steps})
    tokens_per_step = spec.tokens_per_step * accelerator.num_processes  # all processes
    steps = min(args.steps, len(loader))  # each process sees its share of the data
    tokenizer_dir = save_tokenizer(os.path.join(out_dir, "tokenizer"))
    monitor = None
    if accelerator.is_main_process:  # one monitor per job, on the main process
        # the ladder's "demo" samples, as JSON lines the evaluation worker reads
        eval_sets = write_eval_sets(Ladder.load(ladder), generator, ["demo"],
                                    os.path.join(out_dir, "eval_sets"))
        monitor = CODMonitor(
            ladder,
            eval_sets,
            {"backend": "hf", "mode": "exact", "temperature": 1.0, "top_p": 0.7, "batch_size": 256},
            forecast=ForecastConfig(n_bootstrap=50),
            pool=PoolConfig(devices=["cpu"], cpu_threads=1),
            run=RunGeometry(params=spec.params, tokens_per_step=tokens_per_step,
                            max_steps=steps),
            # fills in the tokenizer files the checkpoints lack
            checkpoints=CheckpointConfig(config_dir=tokenizer_dir),
            out_dir=os.path.join(out_dir, "cod"),
            alert_callback=lambda alert: print("ALERT:", alert.message, flush=True),
        )
        monitor.start()

    model.train()
    step, saved, t_start = 0, [], time.perf_counter()
    for batch in loader:
        step += 1
        loss = model(input_ids=batch["input_ids"], labels=batch["labels"]).loss
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if step % args.every == 0 or step == steps:
            ckpt = os.path.join(out_dir, f"checkpoint-{step}")
            accelerator.wait_for_everyone()
            accelerator.unwrap_model(model).save_pretrained(
                ckpt, state_dict=accelerator.get_state_dict(model), is_main_process=accelerator.is_main_process
            )
            if monitor is not None:
                tokens = step * tokens_per_step
                monitor.on_checkpoint(step, tokens=tokens, compute=6.0 * spec.params * tokens, path=ckpt)
                saved.append(ckpt)
                while len(saved) > 1:  # rotation: the snapshot keeps what the evaluator needs
                    shutil.rmtree(saved.pop(0), ignore_errors=True)
                print(f"step {step}: loss {loss.item():.3f}", flush=True)
                if args.sync:
                    monitor.wait()  # the other processes wait at the collective below
            accelerator.log({"train/loss": loss.item()}, step=step)
            # the checkpoints judged meanwhile, beside the loss (main process; no-op elsewhere)
            log_observations(accelerator, monitor, [] if monitor is None else monitor.poll(), step)
            # every process, here: the main process's stop decision reaches all of them
            if stop_on_every_rank(accelerator, monitor, step, stop_on_drift=not args.keep_going):
                print("the run fell behind its forecast; stopping", flush=True)
                break
        if step >= steps:
            break
    train_s = time.perf_counter() - t_start
    print(f"process {accelerator.process_index} left the loop at step {step}", flush=True)
    summary = {}
    if monitor is not None:
        summary = monitor.close(timeout=600)
        log_observations(accelerator, monitor, monitor.poll(), step)  # judged while draining
        print(f"\ntrained {step} steps in {train_s:.0f}s; {summary['status']}")
        for obs in monitor.observations:
            fp = monitor.forecast_point("demo", obs.step, tokens=obs.tokens)
            fc = "n/a" if fp is None else f"{fp.value:.3f} [{fp.lower:.3f}, {fp.upper:.3f}]"
            print(f"  step {obs.step:5d}: observed {obs.accuracy:.3f}, forecast {fc}")
    accelerator.end_training()
    return summary


if __name__ == "__main__":  # required: the evaluation worker is spawned
    main()
