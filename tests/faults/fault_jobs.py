"""Job functions the fault tests' evaluation workers run (real processes, no mocks).

Importable by spawned workers because pytest puts this directory on ``sys.path`` and
``spawn`` passes ``sys.path`` on. Each reads the snapshot it is given, so an evaluation
only succeeds when the snapshot is really there.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import numpy as np

from cod_monitor.records import EvalResult

N_SAMPLES = 8


def read_weights(snapshot, eval_set, config):
    """Sum of the snapshot's ``model.safetensors`` weights (numpy only) in ``meta``; pass
    rate ``config['accuracy']``; the first attempt of the steps in ``config['hang_at']``
    hangs (a marker in the snapshot says it was tried)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    from cod_monitor.evaluators import CorruptCheckpointError

    step = int(Path(snapshot).name.rsplit("-", 1)[-1])
    marker = Path(snapshot) / ".hang-tried"
    if step in config.get("hang_at", ()) and not marker.exists():
        marker.write_text(str(os.getpid()))
        time.sleep(3600)
    time.sleep(config.get("sleep", 0.0))
    weights = Path(snapshot) / "model.safetensors"
    try:
        tensors = load_file(str(weights))
    except SafetensorError as exc:  # as the HF evaluator reports it: permanent, file named
        raise CorruptCheckpointError(weights, f"truncated or corrupt ({exc})") from None
    checksum = float(sum(np.asarray(t, dtype=np.float64).sum() for t in tensors.values()))
    return EvalResult(eval_set=str(eval_set), sample_ids=tuple(f"s{i}" for i in range(N_SAMPLES)),
                      pass_rates=np.full(N_SAMPLES, float(config.get("accuracy", 0.5))),
                      mode="exact", meta={"step": step, "checksum": checksum, "pid": os.getpid()})


def pass_rates_file(snapshot, eval_set, config):
    """The pass rates a synthetic checkpoint carries in ``pass_rates.json``, or what the
    step's entry of ``config['faults']`` makes of them: ``'hang'`` (the first attempt
    sleeps an hour), ``'hang_always'``, ``'crash'`` (the first attempt's process is
    killed, as by the OOM killer), ``'oom'`` (the first attempt allocates
    ``config['oom_mb']`` MB, then is killed), ``'raise'`` (every attempt raises),
    ``'read_late'`` (writes ``.started`` in the snapshot, waits ``config['late_s']``
    seconds, then reads the snapshot again), ``'nan'`` (NaN pass rates, as from NaN
    log-probabilities), ``'garbage'`` (pass rates that are not numbers), ``'no_ids'``
    (an EvalResult without sample ids, which cannot be recorded)."""
    import json
    import signal

    data = json.loads((Path(snapshot) / "pass_rates.json").read_text())
    step = int(Path(snapshot).name.rsplit("-", 1)[-1])
    fault = config.get("faults", {}).get(str(step))
    rates = np.asarray(data[str(eval_set)], dtype=float)
    if fault == "raise":
        raise RuntimeError(f"the evaluator failed on step {step}")
    if fault == "oom":  # grow, then die as the OOM killer kills: SIGKILL, first attempt only
        marker = Path(snapshot) / ".oom-tried"
        if not marker.exists():
            marker.write_text(str(os.getpid()))
            hog = np.ones(int(config.get("oom_mb", 200)) * 2**20 // 8)
            os.kill(os.getpid(), signal.SIGKILL)
            del hog
    if fault == "read_late":  # started: say so, then read the snapshot again later
        (Path(snapshot) / ".started").write_text(str(os.getpid()))
        time.sleep(float(config.get("late_s", 1.5)))
        data = json.loads((Path(snapshot) / "pass_rates.json").read_text())
    if fault == "hang":
        marker = Path(snapshot) / ".hang-tried"
        if not marker.exists():
            marker.write_text(str(os.getpid()))
            time.sleep(3600)
    elif fault == "hang_always":
        time.sleep(3600)
    elif fault == "crash":
        marker = Path(snapshot) / ".crash-tried"
        if not marker.exists():
            marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
    elif fault == "nan":
        rates = np.full(len(rates), math.nan)
    elif fault == "garbage":
        rates = np.array(["broken"] * len(rates), dtype=object)
    time.sleep(config.get("sleep", 0.0))
    ids = None if fault == "no_ids" else tuple(data["sample_ids"])
    return EvalResult(eval_set=str(eval_set), sample_ids=ids, pass_rates=rates, mode="exact",
                      meta={"pid": os.getpid()})
