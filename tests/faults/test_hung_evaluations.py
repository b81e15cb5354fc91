"""Hung evaluations are found with the default settings; closing never leaves jobs without a word.

Real spawned workers that really hang (``time.sleep``); each test asserts: no crash,
no duplicated observation, every checkpoint observed or alerted.
"""

import collections
import logging
import time

import pytest

from cod_monitor.exceptions import ParameterError
from cod_monitor.monitor import PoolConfig, read_journal
from cod_monitor.records import AlertReason
from cod_monitor.runtime import EvalPool, Job
from cod_monitor.runtime.pool import AUTO_TIMEOUT_FACTOR, AUTO_TIMEOUT_FLOOR_S


def kinds(out_dir, kind):
    return [r for r in read_journal(out_dir / "journal.jsonl") if r["kind"] == kind]


def test_the_default_time_limit_is_finite_and_follows_the_runs_evaluations():
    assert PoolConfig().timeout == "auto" and PoolConfig().timeout_floor == AUTO_TIMEOUT_FLOOR_S
    pool = EvalPool(["cpu"])
    assert pool.attempt_timeout == AUTO_TIMEOUT_FLOOR_S == 300.0  # before any evaluation
    pool.record_duration(20.0)
    assert pool.attempt_timeout == 300.0  # the floor still holds
    pool.record_duration(100.0)
    pool.record_duration(50.0)
    assert pool.attempt_timeout == AUTO_TIMEOUT_FACTOR * 100.0  # k x the slowest
    assert EvalPool(["cpu"], timeout=42).attempt_timeout == 42.0  # the user's override
    assert EvalPool(["cpu"], timeout=None).attempt_timeout is None
    with pytest.raises(ParameterError, match=r"'timeout' parameter of PoolConfig must be a "
                                             r"float in the range \(0, inf\), 'auto' or None"):
        PoolConfig(timeout="never")


def test_timeout_none_warns_once_at_start(caplog):
    caplog.set_level(logging.WARNING, logger="cod_monitor.runtime.pool")
    pool = EvalPool(["cpu"], job_fn="monitor_jobs:constant", timeout=None)
    pool.start()
    pool.start()
    pool.close(timeout=60)
    warned = [r.getMessage() for r in caplog.records if "timeout=None" in r.getMessage()]
    assert len(warned) == 1 and "never reported" in warned[0]


def test_a_hang_is_killed_at_k_times_the_slowest_evaluation_and_retried(tmp_path):
    lost = []
    pool = EvalPool(["cpu"], job_fn="monitor_jobs:scripted", timeout_floor=0.5,
                    on_attempt_failure=lost.append)
    for i, do in enumerate(["constant", "hang_once"]):
        snap = tmp_path / f"snap-{i}"
        snap.mkdir()
        pool.submit(Job(f"{i}:bench", str(snap), "bench", {"do": do, "sleep": 0.4}, group=i))
    pool.close(timeout=120)
    out = {o.job.job_id: o for o in pool.poll()}
    assert out["0:bench"].status == "done" and out["1:bench"].status == "done"
    assert out["1:bench"].attempts == 2 and pool.stats["timeouts"] == 1
    (failure,) = lost
    assert failure.kind == "timeout" and failure.retried and failure.job.job_id == "1:bench"
    # the limit came from the first job's measured time, not from the floor
    assert "the slowest evaluation so far" in failure.error
    assert AUTO_TIMEOUT_FACTOR * 0.4 <= failure.wall_s < 60


def test_a_hung_evaluation_is_found_alerted_and_retried_by_the_monitor(
        tmp_path, run_and_ladder, write_checkpoint, make_monitor, alerts):
    run, _ = run_and_ladder
    steps = [run.target[j]["step"] for j in range(3)]
    # the default timeout='auto', with a floor a test can wait for
    with make_monitor(tmp_path / "cod", faults={steps[1]: "hang"}, alert_callback=alerts,
                      pool={"timeout_floor": 2.0}) as monitor:
        for j in range(3):
            monitor.on_checkpoint(steps[j], tokens=run.target[j]["tokens"],
                                  path=write_checkpoint(tmp_path / "ckpt", j))
        assert monitor.wait(timeout=120)
        summary = monitor.summary()
    assert [o.step for o in monitor.observations] == steps  # each once, none lost
    (timeout,) = alerts.of(AlertReason.EVALUATION_TIMEOUT)
    assert timeout.step == steps[1]
    assert "evaluation attempt 1 timed out after " in timeout.message
    assert "its worker was killed and restarted, and the evaluation is retried." in timeout.message
    assert summary["pool"]["timeouts"] == 1 and summary["pool"]["restarts"] == 1
    assert alerts.of(AlertReason.EVALUATION_FAILING) == []
    # the alert came before the retried evaluation was judged: within one evaluation
    order = [r["kind"] for r in read_journal(tmp_path / "cod" / "journal.jsonl")
             if r.get("step") == steps[1] and r["kind"] in ("alert", "decision")]
    assert order == ["alert", "decision"]


def test_close_names_the_unfinished_evaluations_and_reports_the_drain(
        tmp_path, run_and_ladder, write_checkpoint, make_monitor, alerts, caplog):
    run, _ = run_and_ladder
    out = tmp_path / "cod"
    steps = [run.target[j]["step"] for j in range(3)]
    caplog.set_level(logging.INFO, logger="cod_monitor.monitor.monitor")
    monitor = make_monitor(out, faults={steps[1]: "hang_always", steps[2]: "hang_always"},
                           alert_callback=alerts, pool={"timeout": None})
    for j in range(3):
        monitor.on_checkpoint(steps[j], tokens=run.target[j]["tokens"],
                              path=write_checkpoint(tmp_path / "ckpt", j))
    deadline = time.monotonic() + 120
    while not monitor.poll():  # the healthy checkpoint is judged; the others hang
        assert time.monotonic() < deadline
        time.sleep(0.05)
    t0 = time.monotonic()
    summary = monitor.close(timeout=3.0)
    assert time.monotonic() - t0 < 30  # bounded by the drain timeout
    assert [o.step for o in monitor.observations] == steps[:1]
    (unfinished,) = alerts.of(AlertReason.EVALUATION_UNFINISHED)
    assert unfinished.step == steps[2]
    assert f"steps {steps[1]} and {steps[2]} were unfinished" in unfinished.message
    assert "of its 3 s drain timeout" in unfinished.message
    (drain,) = kinds(out, "drain")
    assert drain["unfinished"] == [[steps[1], run.benchmark], [steps[2], run.benchmark]]
    assert 2.5 <= drain["seconds"] < 30 and drain["timeout"] == 3.0
    assert summary["drain"] == {"seconds": drain["seconds"], "timeout": 3.0, "unfinished": 2}
    assert any("closed after waiting" in r.getMessage() for r in caplog.records)

    # the next monitor on this out_dir resubmits them, and each is evaluated once
    with make_monitor(out, alert_callback=alerts) as resumed:
        assert resumed.wait(timeout=120)
    results = collections.Counter(r["step"] for r in kinds(out, "result"))
    assert results == {s: 1 for s in steps}
    assert kinds(out, "drain")[-1]["unfinished"] == []
