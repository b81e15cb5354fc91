"""The forecaster thread's CPU priority: lowered for that thread alone."""

import os
import sys
import threading

import pytest

from cod_monitor.runtime.priority import lower_priority

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread niceness")


@linux
def test_lowers_the_calling_thread_only():
    seen = {}

    def body():
        seen["changed"] = lower_priority()
        seen["thread"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    t = threading.Thread(target=body)
    t.start()
    t.join()
    assert seen == {"changed": True, "thread": 19}
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before


@linux
@pytest.mark.parametrize("priority, expected", [("low", 19), ("normal", None)])
def test_the_monitors_forecaster_thread_runs_at_the_configured_priority(tmp_path, priority,
                                                                        expected):
    from cod_monitor.monitor import CODMonitor, ForecastConfig, PoolConfig
    from cod_monitor.synthetic import synthetic_run

    run = synthetic_run(n_samples=60, seed=0)
    ladder = run.ladder.without_models([m.name for m in run.ladder.models_with_role("target")])
    ladder.save(tmp_path / "ladder")
    before = os.getpriority(os.PRIO_PROCESS, 0)
    monitor = CODMonitor(tmp_path / "ladder", {run.benchmark: run.benchmark}, {},
                         forecast=ForecastConfig(n_bootstrap=0, fit_priority=priority,
                                                 refresh_interval=None),
                         pool=PoolConfig(job_fn="monitor_jobs:from_snapshot"),
                         out_dir=tmp_path / "out")
    with monitor:
        assert monitor.refresh(timeout=120)
        thread = monitor._forecasts._thread
        niceness = os.getpriority(os.PRIO_PROCESS, thread.native_id)
    assert niceness == (before if expected is None else expected)
    assert os.getpriority(os.PRIO_PROCESS, 0) == before  # the training thread keeps its own
