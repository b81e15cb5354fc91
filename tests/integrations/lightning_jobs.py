"""The job function the monitor's evaluation workers run in the Lightning callback
tests (no mocks): it reads the snapshot's real weights (numpy only) and returns the
accuracy the test chose. Importable by spawned workers: this directory is on
``sys.path`` (pytest's, or the script's for ``lightning_ddp.py``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from cod_monitor.records import EvalResult


def snapshot_weights(snapshot, eval_set, config):
    """Pass rate ``config['accuracy']`` on 8 samples; ``meta`` holds the snapshot's step,
    file names, weight names and the sum of its weights (float64)."""
    from safetensors.numpy import load_file

    tensors = load_file(str(Path(snapshot) / "model.safetensors"))
    meta = {
        "step": int(Path(snapshot).name.rsplit("-", 1)[-1]),
        "files": sorted(os.listdir(snapshot)),
        "keys": sorted(tensors),
        "checksum": float(sum(np.asarray(t, dtype=np.float64).sum() for t in tensors.values())),
    }
    rates = np.full(8, float(config.get("accuracy", 0.5)))
    return EvalResult(eval_set=str(eval_set), sample_ids=tuple(f"s{i}" for i in range(8)),
                      pass_rates=rates, mode="exact", meta=meta)
