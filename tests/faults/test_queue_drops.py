"""Checkpoints dropped by the queue policy: every one journaled and named, one alert per
stretch of drops, with the step, the policy and how to avoid it.

Real spawned workers that take a second per evaluation, so evaluation falls behind
checkpoints handed over every few milliseconds.
"""

import collections

from cod_monitor.monitor import QueuePolicy, read_journal
from cod_monitor.records import AlertReason


def test_every_dropped_checkpoint_is_journaled_summarised_and_alerted_once_per_stretch(
        tmp_path, run_and_ladder, write_checkpoint, make_monitor, alerts):
    run, _ = run_and_ladder
    out = tmp_path / "cod"
    steps = [t["step"] for t in run.target[:10]]

    def hand_over(monitor, indices):
        for j in indices:
            monitor.on_checkpoint(steps[j], tokens=run.target[j]["tokens"],
                                  path=write_checkpoint(tmp_path / "ckpt", j))

    with make_monitor(out, alert_callback=alerts, sleep=1.0,
                      pool={"queue_policy": QueuePolicy("latest", max_pending=1)}) as monitor:
        hand_over(monitor, range(5))  # one runs, one waits: the others are dropped
        assert monitor.wait(timeout=120)
        hand_over(monitor, range(5, 10))  # a second stretch of drops
        assert monitor.wait(timeout=120)
        summary = monitor.summary()

    records = read_journal(out / "journal.jsonl")
    skipped = [r["step"] for r in records if r["kind"] == "skipped"]
    observed = [o.step for o in monitor.observations]
    # every checkpoint is either observed or journaled as dropped, never both, never lost
    assert sorted(observed + skipped) == steps and not set(observed) & set(skipped)
    assert len(skipped) >= 4 and all("queue policy 'latest'" in r["reason"] for r in records
                                     if r["kind"] == "skipped")
    # named in the summary
    assert summary["benchmarks"][run.benchmark]["skipped_steps"] == sorted(skipped)
    assert summary["skipped"] == len(skipped)
    # one alert per stretch (the first drop of each), naming the step, policy and fix
    dropped = alerts.of(AlertReason.EVALUATION_SKIPPED)
    first_of_stretch = [min(s for s in skipped if s < steps[5]),
                        min(s for s in skipped if s >= steps[5])]
    assert [a.step for a in dropped] == first_of_stretch
    for a in dropped:
        assert a.message.startswith(f"cod/{run.benchmark} at step {a.step}: this checkpoint "
                                    "has no observation")
        assert "dropped by queue policy 'latest'" in a.message
        assert "QueuePolicy(max_pending=...)" in a.message and "skipped_steps" in a.message
    journaled = collections.Counter(r["reason"] for r in records if r["kind"] == "alert")
    assert journaled["evaluation_skipped"] == 2
