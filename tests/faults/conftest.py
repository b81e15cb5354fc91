"""Fault tests: a synthetic run monitored by a real CODMonitor with real worker processes.

The "training loop" writes each checkpoint as a directory holding the pass rates the
synthetic run measured there (``pass_rates.json``); the workers run
``fault_jobs.pass_rates_file``, which reads them back from the snapshot, or injects the
fault a test names for a step.
"""

import json
import os
from pathlib import Path

import pytest

from cod_monitor.monitor import CODMonitor, ForecastConfig, PoolConfig, QueuePolicy, RunGeometry
from cod_monitor.synthetic import synthetic_run

JOB = "fault_jobs:pass_rates_file"


class AlertLog:
    """The ``alert_callback`` of a monitor: every alert, in order."""

    def __init__(self):
        self.alerts = []

    def __call__(self, alert):
        self.alerts.append(alert)

    def of(self, reason):
        return [a for a in self.alerts if a.reason is reason]


@pytest.fixture(scope="session")
def run_and_ladder(tmp_path_factory):
    """A healthy 16-checkpoint synthetic run and its ladder directory (no target)."""
    run = synthetic_run(n_samples=300, seed=1)
    d = tmp_path_factory.mktemp("fault-ladder") / "ladder"
    run.ladder.without_models([m.name for m in run.ladder.models_with_role("target")]).save(d)
    return run, d


@pytest.fixture
def write_checkpoint(run_and_ladder):
    """``write_checkpoint(root, j)``: checkpoint ``j`` of the run as a directory."""
    run, _ = run_and_ladder

    def write(root, j):
        t = run.target[j]
        d = Path(root) / f"checkpoint-{t['step']}"
        d.mkdir(parents=True, exist_ok=True)
        (d / "config.json").write_text("{}")
        (d / "pass_rates.json").write_text(json.dumps(
            {"sample_ids": run.sample_ids, run.benchmark: run.target_pass_rates[:, j].tolist()}))
        return d

    return write


@pytest.fixture
def make_monitor(run_and_ladder):
    """``make_monitor(out_dir, faults=None, pool=None, sleep=0, **kw)``: a monitor of the
    run whose workers inject ``faults`` (``{step: 'hang' | 'nan' | ...}``) and take at
    least ``sleep`` seconds per evaluation."""
    run, ladder_dir = run_and_ladder

    def make(out_dir, faults=None, pool=None, sleep=0.0, **kw):
        pool = pool or {}
        pool.setdefault("queue_policy", QueuePolicy(max_pending=100))
        config = {"faults": {str(k): v for k, v in (faults or {}).items()}, "sleep": sleep}
        kw.setdefault("poll_interval", None)
        return CODMonitor(
            ladder_dir, {run.benchmark: run.benchmark}, config,
            forecast=ForecastConfig(n_bootstrap=0, refresh_interval=None),
            pool=PoolConfig(job_fn=JOB, **pool), run=RunGeometry(params=run.target_params),
            out_dir=out_dir, **kw)

    return make


@pytest.fixture
def alerts():
    """A fresh :class:`AlertLog` to pass as ``alert_callback``."""
    return AlertLog()


@pytest.fixture
def child_env():
    """The environment of a child process that imports this folder's modules."""
    here = Path(__file__).resolve().parent
    path = os.pathsep.join([str(here), str(here.parent), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}
