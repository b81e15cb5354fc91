"""The evaluation pool with real workers running functions of monitor_jobs.

Each scenario runs on both worker backends (``make_pool``, tests/runtime/conftest.py):
spawned local processes and Ray actors on a simulated multi-node cluster; the
bookkeeping, and so every count asserted here, is the same.
"""

import os
import signal
import time

import pytest

from cod_monitor.exceptions import ParameterError
from cod_monitor.runtime import EvalPool, Job, QueuePolicy

JOBS = "monitor_jobs"


def job(tmp_path, i, config=None, group=None):
    snap = tmp_path / f"snap-{i}"
    snap.mkdir(exist_ok=True)
    return Job(job_id=f"{i}:bench", snapshot=str(snap), eval_set="bench", config=config or {},
               group=i if group is None else group)


def wait_for(cond, timeout=60.0):
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out waiting"
        time.sleep(0.02)


def outcomes_by_id(pool):
    return {o.job.job_id: o for o in pool.poll()}


def test_results_failures_crashes_and_timeouts_in_one_pool(tmp_path, make_pool, runs_idle):
    pool = make_pool(["cpu"], job_fn=f"{JOBS}:scripted", timeout=2.0, max_retries=1,
                     queue_policy=QueuePolicy(max_pending=10))
    todo = ["probe", "probe", "fail_once", "always_fail", "crash_once", "hang_once", "probe"]
    for i, do in enumerate(todo):
        pool.submit(job(tmp_path, i, {"do": do}))
    pool.close(timeout=180)
    out = {int(o.job.job_id.split(":")[0]): o for o in pool.poll()}
    assert sorted(out) == list(range(len(todo)))

    # results arrive, from a low-priority CPU worker that hides GPUs and has not imported torch
    meta = out[0].result.meta
    assert out[0].status == "done" and out[0].attempts == 1
    assert meta["pid"] != os.getpid() and meta["cuda"] == "" and meta["device"] == "cpu"
    assert runs_idle(meta) and meta["torch_loaded"] is False
    # an exception is retried on the same worker ...
    assert (out[2].status, out[2].attempts) == ("done", 2)
    # ... and a job that keeps failing becomes a failed outcome after max_retries
    assert (out[3].status, out[3].attempts) == ("failed", 2)
    assert "RuntimeError: the evaluator is broken on purpose" in out[3].error
    # a worker that dies mid-job is restarted and the job retried
    assert (out[4].status, out[4].attempts) == ("done", 2)
    assert out[4].result.meta["pid"] != meta["pid"]
    # a hung job is killed at the timeout and retried on a fresh worker
    assert (out[5].status, out[5].attempts) == ("done", 2)
    assert out[6].status == "done"
    assert pool.stats["crashes"] == 1 and pool.stats["timeouts"] == 1
    assert pool.stats["restarts"] == 2 and pool.stats["retries"] == 4


def test_sigkill_mid_job_restarts_worker_and_retries(tmp_path, make_pool):
    pool = make_pool(["cpu"], job_fn=f"{JOBS}:slow_first", max_retries=2)
    pool.submit(job(tmp_path, 0, {"sleep": 120}))
    wait_for(lambda: (tmp_path / "snap-0" / ".slow-tried").exists())  # the job has started
    pid = pool.running_jobs()["0:bench"]
    os.kill(pid, signal.SIGKILL)
    pool.close(timeout=120)
    (o,) = pool.poll()
    assert o.status == "done" and o.attempts == 2
    assert o.result.meta["pid"] != pid
    assert pool.stats["crashes"] == 1 and pool.stats["restarts"] == 1


@pytest.mark.parametrize(
    "policy, done, skipped",
    [
        (QueuePolicy("latest", max_pending=2), [0, 5, 6], [1, 2, 3, 4]),
        # every_nth thins the waiting checkpoints, keeping the newest: [1,2,3]+4 -> [2,4];
        # [2,4,5]+6 -> [4,6]
        (QueuePolicy("every_nth", max_pending=3, n=2), [0, 4, 6], [1, 2, 3, 5]),
    ],
)
def test_queue_policy_when_evaluation_falls_behind(tmp_path, make_pool, policy, done, skipped):
    pool = make_pool(["cpu"], job_fn=f"{JOBS}:constant", queue_policy=policy)
    pool.submit(job(tmp_path, 0, {"sleep": 1.0}))
    wait_for(lambda: "0:bench" in pool.running_jobs())
    for i in range(1, 7):  # checkpoints arrive faster than they are evaluated
        pool.submit(job(tmp_path, i))
    pool.close(timeout=120)
    out = pool.poll()
    assert sorted(o.job.group for o in out if o.status == "done") == done
    assert sorted(o.job.group for o in out if o.status == "skipped") == skipped
    # evaluated in checkpoint order
    assert [o.job.group for o in out if o.status == "done"] == done


def test_configuration_errors_are_never_retried(tmp_path, make_pool):
    # the default job function: the worker builds the evaluator from the config
    pool = make_pool(["cpu"], max_retries=2)
    pool.submit(job(tmp_path, 0, {"backend": "hf", "mode": "exacto"}))
    pool.submit(job(tmp_path, 1, {"backend": "hf", "mdoe": "exact"}))
    pool.close(timeout=120)
    out = outcomes_by_id(pool)
    assert [(out[i].status, out[i].attempts) for i in ("0:bench", "1:bench")] == [
        ("failed", 1), ("failed", 1)]
    assert pool.stats["retries"] == 0 and pool.stats["failed"] == 2
    # the last line of the error says why it was not retried, and names the field
    last = [out[i].error.strip().splitlines()[-1] for i in ("0:bench", "1:bench")]
    assert last[0].startswith("Not retried (a configuration error): EvaluatorConfigError: "
                              "The 'mode' parameter of HFEvaluator must be a str among")
    assert "Unknown key(s) ['mdoe'] (did you mean 'mode' for 'mdoe'?)" in last[1]


def test_close_with_cancel_reports_unfinished_jobs(tmp_path, make_pool):
    pool = make_pool(["cpu"], job_fn=f"{JOBS}:constant")
    pool.submit(job(tmp_path, 0, {"sleep": 60}))
    pool.submit(job(tmp_path, 1))
    wait_for(lambda: pool.n_running == 1)
    t0 = time.monotonic()
    pool.close(cancel=True)
    assert time.monotonic() - t0 < 15
    assert sorted(o.status for o in pool.poll()) == ["cancelled", "cancelled"]
    with pytest.raises(RuntimeError, match="closed"):
        pool.submit(job(tmp_path, 2))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"devices": []}, "'devices' parameter of EvalPool must be a non-empty sequence"),
        ({"timeout": 0}, "'timeout' parameter of EvalPool must be a float in the range \\(0, inf\\)"),
        ({"max_retries": -1}, "'max_retries'"),
        ({"queue_policy": "newest"}, "'kind' parameter of QueuePolicy"),
        ({"devices": ["tpu"]}, "'devices' parameter of EvalPool"),
    ],
)
def test_parameter_errors(kwargs, match):
    with pytest.raises(ValueError, match=match) as info:
        EvalPool(**kwargs)
    assert isinstance(info.value, ParameterError)
