"""Real job functions the evaluation pool runs in its worker processes (no mocks).

Importable by spawned workers because pytest puts this directory on ``sys.path`` and
``spawn`` passes ``sys.path`` to the child. Markers in the snapshot directory let a
job behave differently on its first attempt (crash, hang, raise) and on a retry.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

from cod_monitor.records import EvalResult


def _result(name, rates, **meta):
    rates = np.asarray(rates, dtype=float)
    return EvalResult(eval_set=name, sample_ids=tuple(f"s{i}" for i in range(len(rates))),
                      pass_rates=rates, mode="exact", meta=meta)


def _first_attempt(snapshot, tag) -> bool:
    marker = Path(snapshot) / f".{tag}-tried"
    if marker.exists():
        return False
    marker.write_text(str(os.getpid()))
    return True


def _name(eval_set):
    return eval_set if isinstance(eval_set, str) else getattr(eval_set, "name", "set")


def constant(snapshot, eval_set, config):
    """Pass rate ``config['value']`` on 4 samples, after ``config['sleep']`` seconds."""
    time.sleep(config.get("sleep", 0.0))
    return _result(_name(eval_set), [config.get("value", 0.5)] * 4, pid=os.getpid())


def spin(snapshot, eval_set, config):
    """Pass rate 0.5 after ``config['cpu_s']`` seconds of CPU time (a busy loop)."""
    end = time.process_time() + config.get("cpu_s", 0.5)
    while time.process_time() < end:
        pass
    return _result(_name(eval_set), [0.5], pid=os.getpid())


def ray_node():
    """The Ray node this runs on (``None`` outside a Ray worker)."""
    ray = sys.modules.get("ray")  # a Ray actor has imported it; a local worker has not
    if ray is None or not ray.is_initialized():
        return None
    return ray.get_runtime_context().get_node_id()


def probe(snapshot, eval_set, config):
    """Report the worker's environment in ``meta``."""
    return _result(_name(eval_set), [0.5], pid=os.getpid(),
                   cuda=os.environ.get("CUDA_VISIBLE_DEVICES"),
                   device=os.environ.get("COD_MONITOR_DEVICE"),
                   nice=os.nice(0), torch_loaded="torch" in sys.modules, node=ray_node(),
                   sched=getattr(os, "sched_getscheduler", lambda pid: None)(0))


def always_fail(snapshot, eval_set, config):
    raise RuntimeError("the evaluator is broken on purpose")


def fail_once(snapshot, eval_set, config):
    if _first_attempt(snapshot, "fail"):
        raise RuntimeError("transient failure")
    return _result(_name(eval_set), [1.0], pid=os.getpid())


def crash_once(snapshot, eval_set, config):
    """The worker process dies (SIGKILL) on the first attempt."""
    if _first_attempt(snapshot, "crash"):
        os.kill(os.getpid(), signal.SIGKILL)
    return _result(_name(eval_set), [1.0], pid=os.getpid())


def hang_once(snapshot, eval_set, config):
    if _first_attempt(snapshot, "hang"):
        time.sleep(3600)
    return _result(_name(eval_set), [1.0], pid=os.getpid())


def hang_always(snapshot, eval_set, config):
    time.sleep(3600)


def slow_first(snapshot, eval_set, config):
    """Sleeps long on the first attempt (to be killed from outside), fast on a retry."""
    if _first_attempt(snapshot, "slow"):
        time.sleep(config.get("sleep", 60.0))
    return _result(_name(eval_set), [1.0], pid=os.getpid())


def logged_slow_first(snapshot, eval_set, config):
    """:func:`slow_first` that appends the Ray node of each attempt to ``attempts.log``
    in the snapshot (one line per attempt that started), and returns it in ``meta``."""
    node = ray_node()
    with open(Path(snapshot) / "attempts.log", "a") as f:
        f.write(f"{node}\n")
    result = slow_first(snapshot, eval_set, config)
    return _result(result.eval_set, result.pass_rates, pid=os.getpid(), node=node)


def from_snapshot(snapshot, eval_set, config):
    """The pass rates a synthetic "checkpoint" carries in ``pass_rates.json``.

    A synthetic training loop writes them into each checkpoint directory; the
    evaluation reads them back from the *snapshot*, so it only works if the snapshot
    survived the deletion of the checkpoint.
    """
    time.sleep(config.get("sleep", 0.0))
    data = json.loads((Path(snapshot) / "pass_rates.json").read_text())
    rates = data[_name(eval_set)]
    return EvalResult(eval_set=_name(eval_set), sample_ids=tuple(data["sample_ids"]),
                      pass_rates=np.asarray(rates, dtype=float), mode="exact",
                      meta={"pid": os.getpid()})


def scripted(snapshot, eval_set, config):
    """Dispatch to the behaviour named by ``config['do']`` (one pool, many behaviours)."""
    return globals()[config["do"]](snapshot, eval_set, config)


def config_error(snapshot, eval_set, config):
    """The default job function on an evaluator config with an invalid ``mode``: it
    raises the evaluator's configuration error in the worker."""
    from cod_monitor.runtime.worker import run_evaluation

    return run_evaluation(snapshot, eval_set, {"backend": "hf", "mode": config["mode"]})
