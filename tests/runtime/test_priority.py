"""CPU priorities: the forecaster thread's, lowered for that thread alone, and the
evaluation workers' (a niceness, or ``SCHED_IDLE``)."""

import os
import subprocess
import sys
import threading
import time

import pytest

from cod_monitor.exceptions import ParameterError
from cod_monitor.runtime import EvalPool, Job
from cod_monitor.runtime.priority import IDLE, check_worker_priority, lower_priority

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


@pytest.mark.parametrize("value", [0, 10, 19, "idle"])
def test_worker_priority_is_a_niceness_or_idle(value):
    assert check_worker_priority("PoolConfig", "cpu_nice", value) == value


@pytest.mark.parametrize("value, match", [
    ("low", "niceness from 0 to 19 or 'idle'. Got 'low' instead. Use an int, or 'idle'"),
    (20, r"range \[0, 19\]. Got 20"),
    (-1, r"range \[0, 19\]. Got -1"),
])
def test_an_unknown_worker_priority_is_named_with_the_fix(value, match):
    from cod_monitor.monitor import PoolConfig

    with pytest.raises(ParameterError, match=match):
        PoolConfig(cpu_nice=value)


@linux
@pytest.mark.parametrize("priority", ["idle", 10])
def test_a_cpu_worker_runs_at_the_priority_it_was_given(tmp_path, priority, runs_idle):
    pool = EvalPool(["cpu"], job_fn="monitor_jobs:probe", nice=priority)
    pool.submit(Job("0:probe", str(tmp_path / "snap"), "probe.jsonl", group=0))
    pool.close(timeout=120)
    (outcome,) = pool.poll()
    meta = outcome.result.meta
    assert outcome.status == "done" and meta["pid"] != os.getpid()
    if priority == IDLE:  # preempted by any normal thread: only idle CPU time
        assert runs_idle(meta)
    else:
        assert meta["sched"] == os.SCHED_OTHER and meta["nice"] >= 10


@linux
@pytest.mark.skipif(not os.path.exists("/proc/self/schedstat"),
                    reason="no scheduler statistics in /proc (CONFIG_SCHED_INFO)")
def test_time_a_worker_waits_for_a_cpu_does_not_count_against_its_limit(tmp_path):
    # an idle worker and a busy loop at normal priority pinned to one CPU: the worker
    # waits about 3.5 s for 0.3 s of work, past its 2 s limit, and is not killed
    pool = EvalPool(["cpu"], job_fn="monitor_jobs:spin", nice="idle", timeout=2.0,
                    max_retries=0).start()
    end = time.monotonic() + 60
    while pool.worker_pids()[0] is None:
        assert time.monotonic() < end, "the worker did not start"
        time.sleep(0.02)
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(pool.worker_pids()[0], {cpu})
    hog = subprocess.Popen([sys.executable, "-c",
                            f"import os\nos.sched_setaffinity(0, {{{cpu}}})\nwhile True: pass"])
    try:
        time.sleep(0.5)  # the busy loop holds the CPU
        pool.submit(Job("0:spin", str(tmp_path / "snap"), "spin.jsonl", {"cpu_s": 0.3},
                        group=0))
        time.sleep(3.5)
    finally:
        hog.kill()
        hog.wait()
    pool.close(timeout=60)
    (outcome,) = pool.poll()
    assert (outcome.status, outcome.attempts, pool.stats["timeouts"]) == ("done", 1, 0)
