"""Pieces of the Lightning callback tests: a tiny HF Llama in a ``LightningModule``, its
data, a ``Trainer`` that checkpoints every few steps, and the monitor's arguments.

Shared by ``test_lightning.py`` and ``lightning_ddp.py`` (run as a script: two DDP
processes). The monitor's workers run ``lightning_jobs.snapshot_weights``.
"""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from transformers import LlamaConfig, LlamaForCausalLM

from cod_monitor.monitor import ForecastConfig, PoolConfig, QueuePolicy
from cod_monitor.synthetic import synthetic_ladder

BENCH = "synthetic"
BATCH, LENGTH = 4, 16  # tokens per step and rank: 64


class TinyData(torch.utils.data.Dataset):
    def __init__(self, n=256, length=LENGTH, vocab=58):
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


class LitLlama(pl.LightningModule):
    """A ``LightningModule`` holding an HF model as ``self.model`` (the default
    ``hf_model_attr``), plus a submodule whose weights are not the HF model's."""

    def __init__(self):
        super().__init__()
        self.model = tiny_llama()
        self.extra_head = torch.nn.Linear(2, 2)  # not exported: no 'model.' prefix

    def training_step(self, batch, batch_idx):
        loss = self.model(input_ids=batch["input_ids"], labels=batch["labels"]).loss
        return loss + 0.0 * sum(p.sum() for p in self.extra_head.parameters())  # used, for DDP

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=1e-3)


def loader():
    return torch.utils.data.DataLoader(TinyData(), batch_size=BATCH, shuffle=False)


def make_trainer(root, max_steps, callbacks, *, every=5, **kw):
    """A CPU ``Trainer`` saving ``<root>/ckpt/step=<N>.ckpt`` every ``every`` steps."""
    kw.setdefault("devices", 1)
    kw.setdefault("logger", False)
    return pl.Trainer(
        max_steps=max_steps, accelerator="cpu", default_root_dir=str(root),
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
        callbacks=[*callbacks, ModelCheckpoint(dirpath=Path(root) / "ckpt", filename="{step}",
                                               every_n_train_steps=every, save_top_k=-1)],
        **kw)


def ladder_scale_compute(trainer, pl_module):
    """The tiny run pretends to sit inside the synthetic ladder's compute range."""
    return 1e20 * trainer.global_step


def monitor_kwargs(out_dir, *, accuracy=0.5, **kw):
    return dict(
        ladder=synthetic_ladder(n_samples=300, n_models=6, seed=0).ladder,
        eval_sets={BENCH: BENCH},
        evaluator={"accuracy": accuracy},
        forecast=ForecastConfig(trajectory="compute", n_bootstrap=10, refresh_interval=None),
        pool=PoolConfig(job_fn="lightning_jobs:snapshot_weights",
                        queue_policy=QueuePolicy(max_pending=10)),
        out_dir=str(out_dir), **kw)


class WaitForJudgement(pl.Callback):
    """On rank 0, after each optimizer step, wait until the monitor has judged every
    checkpoint (tests only: makes the asynchronous stop decision land at a known step).
    Placed before the CODCallback."""

    def __init__(self, cod):
        self.cod = cod

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.is_global_zero and self.cod.monitor is not None:
            assert self.cod.monitor.wait(timeout=60)
