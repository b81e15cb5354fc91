"""Job functions the monitor's evaluation workers run in the callback tests (no mocks).

Importable by spawned workers because pytest puts this directory on ``sys.path`` and
``spawn`` passes ``sys.path`` on. They read the snapshot's real weights (numpy only,
no torch in the worker) and return a fixed accuracy chosen by the test.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from cod_monitor.records import EvalResult


def weights_checksum(directory) -> float:
    """Sum of every weight in ``model.safetensors`` (float64)."""
    from safetensors.numpy import load_file

    tensors = load_file(str(Path(directory) / "model.safetensors"))
    return float(sum(np.asarray(t, dtype=np.float64).sum() for t in tensors.values()))


def read_weights(snapshot, eval_set, config):
    """Wait until the Trainer deleted the original checkpoint (``config['wait_rotated']``
    steps), then read the snapshot's weights; pass rate ``config['accuracy']``."""
    step = int(Path(snapshot).name.rsplit("-", 1)[-1])
    original = Path(config["output_dir"]) / f"checkpoint-{step}"
    if step in config.get("wait_rotated", ()):
        deadline = time.monotonic() + 60
        while original.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    meta = {"step": step, "original_exists": original.exists(), "checksum": weights_checksum(snapshot)}
    rates = np.full(8, float(config.get("accuracy", 0.5)))
    return EvalResult(eval_set=str(eval_set), sample_ids=tuple(f"s{i}" for i in range(8)),
                      pass_rates=rates, mode="exact", meta=meta)
