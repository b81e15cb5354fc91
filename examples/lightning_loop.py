"""A Lightning ``Trainer.fit`` run watched by the Lightning ``CODCallback``.

The ``LightningModule`` holds the demo's target model (a 4M-parameter HF Llama, the
recipe of ``cod_monitor.demo.recipe``) as ``self.model``; a ``ModelCheckpoint``
saves a ``.ckpt`` every ``--every`` steps. The callback sees each checkpoint as it is
written (it wraps the strategy's ``CheckpointIO``; the last one included), hands the
HF model's weights to its ``CODMonitor``, which evaluates them in a worker process
with the HF evaluator (exact mode, as the demo ladder was evaluated), compares them
with the forecast trajectory fitted on the demo ladder and alerts if the run falls
behind. Tokens are counted from the batches; compute is 6 x parameters x tokens.

Run::

    python examples/lightning_loop.py --steps 60 --every 20
    python examples/lightning_loop.py --tiny --steps 4 --every 2   # a smoke test

``--ladder`` defaults to the ladder shipped in ``cod_monitor/data/demo_ladder``. The
evaluation set is the ladder's own ``demo`` benchmark, written from the task generator
its ``build.json`` names. The monitor's journal, snapshots and ``summary.json`` go to
``<out-dir>/cod_monitor``. To resume, pass ``ckpt_path=`` to ``trainer.fit`` and keep
``out-dir``: the callback's state comes back from the ``.ckpt`` and the monitor's journal
keeps any checkpoint from being evaluated twice. Needs
``pip install 'cod_monitor[hf,lightning]'``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ladder", default=None, help="ladder directory (default: the shipped demo ladder)")
    p.add_argument("--out-dir", default=None, help="output directory (default: a temporary one)")
    p.add_argument("--steps", type=int, default=60, help="training steps (max_steps)")
    p.add_argument("--every", type=int, default=20, help="checkpoint every N steps")
    p.add_argument("--threads", type=int, default=1, help="torch threads of the training loop")
    p.add_argument("--tiny", action="store_true", help="a 14k-parameter model (smoke test)")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    # imported here, not at the top: the evaluation worker is spawned and re-imports
    # this file, and needs none of these
    import lightning.pytorch as pl
    import torch
    from lightning.pytorch import Trainer
    from lightning.pytorch.callbacks import ModelCheckpoint

    from cod_monitor.demo import SHIPPED_LADDER
    from cod_monitor.demo.live_config import demo_generator, write_eval_sets
    from cod_monitor.demo.recipe import ADAM_BETAS, make_spec, target_spec
    from cod_monitor.demo.tokenizer import build_tokenizer
    from cod_monitor.demo.train import TokenBlockDataset, build_model
    from cod_monitor.integrations.lightning import CODCallback
    from cod_monitor.ladder import Ladder
    from cod_monitor.monitor import ForecastConfig, PoolConfig

    class LitLlama(pl.LightningModule):
        """The HF model lives at ``self.model``: CODCallback's default ``hf_model_attr``."""

        def __init__(self, model, learning_rate):
            super().__init__()
            self.model = model
            self.learning_rate = learning_rate

        def training_step(self, batch, batch_idx):
            return self.model(input_ids=batch["input_ids"], labels=batch["labels"]).loss

        def configure_optimizers(self):
            return torch.optim.AdamW(self.parameters(), lr=self.learning_rate, betas=ADAM_BETAS,
                                     weight_decay=0.1)

    ladder = args.ladder or str(SHIPPED_LADDER)
    if not os.path.isdir(ladder):
        sys.exit(f"no ladder at {ladder}; build the demo ladder with `cod-monitor ladder build-demo` or pass --ladder")
    torch.set_num_threads(args.threads)
    spec = make_spec("tiny", 32, 1, role="target") if args.tiny else target_spec()
    # the generator the ladder was built with: training leaves out its evaluation
    # prompts, and the evaluation set is the ladder's own samples
    generator = demo_generator(ladder)
    out_dir = args.out_dir or tempfile.mkdtemp(prefix="cod-lightning-")
    dataset = TokenBlockDataset(generator, args.steps * spec.batch_size, spec.block_size,
                                seed=spec.data_seed)
    loader = torch.utils.data.DataLoader(dataset, batch_size=spec.batch_size)
    eval_sets = write_eval_sets(Ladder.load(ladder), generator, ["demo"],
                                os.path.join(out_dir, "eval_sets"))

    steps, every = args.steps, args.every
    cod = CODCallback(ladder=ladder, eval_sets=eval_sets,
                      evaluator={"backend": "hf", "mode": "exact", "batch_size": 256},
                      forecast=ForecastConfig(n_bootstrap=0 if args.tiny else 50),
                      pool=PoolConfig(devices=["cpu"], cpu_threads=1),
                      hf_model_attr="model",
                      tokenizer=build_tokenizer(),
                      alert_callback=lambda alert: print("ALERT:", alert.message, flush=True))
    checkpoint = ModelCheckpoint(dirpath=os.path.join(out_dir, "checkpoints"), filename="{step}",
                                 every_n_train_steps=every, save_top_k=-1)
    trainer = Trainer(max_steps=steps, accelerator="cpu", devices=1, default_root_dir=out_dir,
                      callbacks=[cod, checkpoint], logger=False, enable_progress_bar=False)
    trainer.fit(LitLlama(build_model(spec), spec.learning_rate), loader)

    summary = cod.summary_ or {}
    print(f"\ntrained to step {trainer.global_step} ({summary.get('status')}); checkpoints "
          f"handed to the monitor: {cod.submitted_steps}")
    for obs in cod.monitor.observations:
        fp = cod.monitor.forecast_point("demo", obs.step, tokens=obs.tokens)
        fc = "n/a" if fp is None else f"{fp.value:.3f} [{fp.lower:.3f}, {fp.upper:.3f}] ({fp.mode})"
        print(f"  step {obs.step:5d}: observed {obs.accuracy:.3f}, forecast {fc}")
    print(f"journal and summary in {cod.monitor.out_dir}")
    return summary


if __name__ == "__main__":  # required: the evaluation worker is spawned
    main()
