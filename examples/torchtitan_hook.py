"""Evaluate torchtitan checkpoints with a CODMonitor: the "call after save, on rank 0" hook.

torchtitan's ``CheckpointManager`` saves ``<dump_folder>/<checkpoint.folder>/step-<N>``
as a torch Distributed Checkpoint (DCP) directory, from every rank. The monitor's HF
evaluator reads such a directory in its worker process: the tensors through the
built-in ``'torchtitan_llama'`` name mapping (torchtitan names -> HF Llama names, q/k
rows permuted for HF's rotary layout), the model's HF ``config.json`` and tokenizer
from ``config_dir``. Optimizer and dataloader state in the same directory are never
read, and nothing in it is unpickled.

In torchtitan's ``Trainer`` (``torchtitan/train.py``), ``checkpoint_folder`` being
``<job.dump_folder>/<checkpoint.folder>`` and ``hf_config_dir`` a directory with the HF
``config.json`` of the trained model and its tokenizer::

    from torchtitan_hook import CODHook, make_monitor

    # in __init__, on every rank
    hook = CODHook(make_monitor(ladder, eval_sets, hf_config_dir, out_dir), checkpoint_folder)
    # in train(), after each save
    self.checkpointer.save(self.step, last_step=(self.step == job_config.training.steps))
    hook.after_save(self.step, tokens=self.step * tokens_per_step)
    # after the last step, once the checkpointer has finished its last save
    summary = hook.close()

``after_save`` acts on global rank 0 only; the other ranks return at once. With
``checkpoint.async_mode`` on, ``save`` returns before the files are written: the
hook hands a step over once its ``.metadata`` file exists (DCP writes it last), on a
later call or at ``hook.close()``.

torchtitan is not needed to import this file: ``tests/evaluators/test_dcp.py`` drives
the hook, a real monitor and its worker with DCP directories written by torch itself.
"""

from __future__ import annotations

import logging
import os


def evaluator_config(hf_config_dir: str) -> dict:
    """Exact-mode HF evaluation of torchtitan DCP checkpoints.

    `hf_config_dir` holds the HF ``config.json`` describing the trained model (for a
    stock flavour, the one in torchtitan's ``model.hf_assets_path``) and its tokenizer.
    """
    return {"backend": "hf", "mode": "exact", "checkpoint_format": "dcp",
            "dcp_mapping": "torchtitan_llama", "config_dir": hf_config_dir}


def global_rank() -> int:
    """This process's global rank (0 without torch.distributed)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0"))


def make_monitor(ladder, eval_sets, hf_config_dir: str, out_dir: str, **kwargs):
    """The run's CODMonitor on global rank 0, ``None`` on the other ranks."""
    if global_rank() != 0:
        return None
    from cod_monitor.monitor import CODMonitor

    return CODMonitor(ladder, eval_sets, evaluator_config(hf_config_dir), out_dir=out_dir, **kwargs)


class CODHook:
    """Hands torchtitan's saved checkpoints to a CODMonitor, on global rank 0.

    Parameters
    ----------
    monitor : CODMonitor or None
        ``None`` on the ranks other than 0 (what :func:`make_monitor` returns there).
    checkpoint_folder : str
        ``<job.dump_folder>/<checkpoint.folder>``, where torchtitan writes ``step-<N>``.
    """

    def __init__(self, monitor, checkpoint_folder: str):
        self.monitor = monitor
        self.checkpoint_folder = checkpoint_folder
        self.pending: dict[int, float | None] = {}

    def after_save(self, step: int, *, tokens: float | None = None) -> None:
        """Call on every rank right after ``checkpointer.save(step)``; returns at once."""
        if self.monitor is None:
            return
        self.pending[step] = tokens
        self._hand_over()

    def _hand_over(self) -> None:
        for step in sorted(self.pending):
            path = os.path.join(self.checkpoint_folder, f"step-{step}")
            if os.path.isfile(os.path.join(path, ".metadata")):  # written last: the save is complete
                self.monitor.on_checkpoint(step, path=path, tokens=self.pending.pop(step))

    def close(self, timeout: float | None = None) -> dict | None:
        """After training and its last save: hand over what is left, wait for the
        evaluations and return the monitor's summary (``None`` on other ranks)."""
        if self.monitor is None:
            return None
        self._hand_over()
        if self.pending:
            logging.getLogger(__name__).warning("saves of steps %s never completed; not evaluated",
                                                sorted(self.pending))
        return self.monitor.close(timeout=timeout)
