"""Every failure of an evaluation raises an alert within that evaluation, not only a log line.

Real spawned workers: one is killed mid-job, others return results no observation can
be made of. Each test asserts: no crash, no duplicated observation, and every
checkpoint observed or alerted.
"""

import collections

from cod_monitor.monitor import read_journal
from cod_monitor.records import AlertReason


def test_faulty_evaluations_are_alerted_and_the_others_observed(
        tmp_path, run_and_ladder, write_checkpoint, make_monitor, alerts):
    run, _ = run_and_ladder
    out = tmp_path / "cod"
    steps = [run.target[j]["step"] for j in range(6)]
    faults = {steps[1]: "crash", steps[2]: "nan", steps[3]: "garbage", steps[4]: "no_ids"}
    with make_monitor(out, faults=faults, alert_callback=alerts) as monitor:
        for j in range(6):
            monitor.on_checkpoint(steps[j], tokens=run.target[j]["tokens"],
                                  path=write_checkpoint(tmp_path / "ckpt", j))
        assert monitor.wait(timeout=120)  # nothing is left waiting
        summary = monitor.summary()

    # the killed worker was restarted and its job retried: observed, and alerted
    assert [o.step for o in monitor.observations] == [steps[0], steps[1], steps[5]]
    (died,) = alerts.of(AlertReason.WORKER_DIED)
    assert died.step == steps[1] and "exit code -9) while running the job" in died.message
    assert "evaluation attempt 1 lost its worker" in died.message
    # NaN pass rates, or pass rates that are not numbers, are a failed evaluation
    nan, garbage = alerts.of(AlertReason.EVALUATION_FAILING)
    assert nan.step == steps[2] and "non-finite accuracy (nan)" in nan.message
    assert garbage.step == steps[3]
    assert "accuracy of its result cannot be computed" in garbage.message
    # a result the monitor cannot record fails its step, with an alert, and stops nothing
    (error,) = alerts.of(AlertReason.MONITOR_ERROR)
    assert error.step == steps[4] and "handling the outcome of job" in error.message
    assert summary["benchmarks"][run.benchmark]["failed"] == 3
    assert summary["benchmarks"][run.benchmark]["pending"] == 0
    records = read_journal(out / "journal.jsonl")
    terminal = collections.Counter((r["kind"], r["step"]) for r in records
                                   if r["kind"] in ("result", "failed"))
    assert terminal == {("result", steps[0]): 1, ("result", steps[1]): 1,
                        ("failed", steps[2]): 1, ("failed", steps[3]): 1,
                        ("failed", steps[4]): 1, ("result", steps[5]): 1}
