"""A tiny HF ``Trainer`` run monitored by ``CODCallback``, for the Trainer fault tests.

Imported by ``test_trainer_faults.py`` for its pieces, and run by it as a child process
that dies (``SIGKILL``) after the Trainer wrote a checkpoint and before ``on_save``
handed it to the monitor::

    python fault_trainer.py OUTPUT_DIR OUT_DIR MAX_STEPS KILL_AT
"""

from __future__ import annotations

import os
import shutil
import signal
import sys

import torch
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from cod_monitor.integrations.hf import CODCallback
from cod_monitor.monitor import CODMonitor, ForecastConfig, PoolConfig, QueuePolicy
from cod_monitor.synthetic import synthetic_ladder

BENCH = "synthetic"


class TinyData(torch.utils.data.Dataset):
    def __init__(self, n=256, length=16, vocab=64):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randint(0, vocab, (n, length), generator=g)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"input_ids": self.x[i], "labels": self.x[i]}


def tiny_llama():
    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, head_dim=16, max_position_embeddings=32))


def training_args(output_dir, max_steps, **kw):
    return TrainingArguments(
        str(output_dir), max_steps=max_steps, per_device_train_batch_size=4, save_steps=5,
        save_total_limit=1, logging_steps=5, use_cpu=True, disable_tqdm=True, seed=0,
        learning_rate=1e-3, report_to="none", **kw)


def ladder_scale_compute(state, model):
    """The tiny run pretends to sit inside the synthetic ladder's compute range."""
    return 1e20 * state.global_step


def make_monitor(out_dir, alert_callback=None, **evaluator) -> CODMonitor:
    """A monitor whose workers read each snapshot's weights (``fault_jobs.read_weights``)."""
    return CODMonitor(
        synthetic_ladder(n_samples=300, n_models=6, seed=0).ladder, {BENCH: BENCH},
        {"accuracy": 0.5, **evaluator},
        forecast=ForecastConfig(trajectory="compute", n_bootstrap=10, refresh_interval=None),
        pool=PoolConfig(job_fn="fault_jobs:read_weights", queue_policy=QueuePolicy(max_pending=10)),
        trackers=[], alert_callback=alert_callback, out_dir=str(out_dir))


class KillAt(TrainerCallback):
    """Kills its own process (``SIGKILL``) in ``on_save`` at ``step``. Placed before
    ``CODCallback``, it kills after the Trainer wrote ``checkpoint-<step>`` and before
    the monitor was handed it."""

    def __init__(self, step):
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


class RemoveAt(TrainerCallback):
    """Deletes ``checkpoint-<step>`` in ``on_save`` (before ``CODCallback`` sees it), as
    a rotation or an outside cleanup racing the save would."""

    def __init__(self, step):
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            shutil.rmtree(os.path.join(args.output_dir, f"checkpoint-{self.step}"))


def main(output_dir, out_dir, max_steps, kill_at):
    cod = CODCallback(make_monitor(out_dir), compute_from=ladder_scale_compute,
                      drain_timeout=120)
    trainer = Trainer(model=tiny_llama(), args=training_args(output_dir, int(max_steps)),
                      train_dataset=TinyData(), callbacks=[KillAt(int(kill_at)), cod])
    trainer.train()


if __name__ == "__main__":
    main(*sys.argv[1:5])
