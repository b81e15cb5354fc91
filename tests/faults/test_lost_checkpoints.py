"""Checkpoints on disk reconciled with the journal: none lost without a word, none twice.

Real monitors, real spawned workers, real checkpoint directories. Each test asserts:
no crash, no step evaluated twice, and every checkpoint observed or alerted.
"""

import collections
import os

from cod_monitor.monitor import read_journal
from cod_monitor.monitor.journal import Journal
from cod_monitor.records import AlertReason, Checkpoint


def kinds(out_dir, kind):
    return [r for r in read_journal(out_dir / "journal.jsonl") if r["kind"] == kind]


def test_reconcile_takes_exactly_the_checkpoints_the_journal_never_saw(
        tmp_path, run_and_ladder, write_checkpoint, make_monitor, alerts):
    run, _ = run_and_ladder
    ckpt, out = tmp_path / "ckpt", tmp_path / "cod"
    steps = [t["step"] for t in run.target[:5]]
    dirs = {s: write_checkpoint(ckpt, j) for j, s in enumerate(steps)}
    # a checkpoint whose directory is gone, and one with a file nobody can read (a
    # dangling link: what a half-finished copy or a lost mount leaves)
    gone = ckpt / "checkpoint-900"
    broken = write_checkpoint(tmp_path / "other", 5)
    os.symlink(tmp_path / "nowhere.safetensors", broken / "model.safetensors")
    on_disk = [Checkpoint(step=s, compute=None, tokens=run.target[j]["tokens"], path=str(d))
               for j, (s, d) in enumerate(dirs.items())]
    on_disk += [Checkpoint(step=900, compute=None, tokens=1e6, path=str(gone)),
                Checkpoint(step=run.target[5]["step"], compute=None, tokens=1e6, path=str(broken))]

    with make_monitor(out, alert_callback=alerts) as monitor:
        for j in (0, 1):  # handed over by the training loop
            monitor.on_checkpoint(steps[j], tokens=run.target[j]["tokens"], path=dirs[steps[j]])
        taken = monitor.reconcile(on_disk)
        assert taken == steps[2:] + [run.target[5]["step"]]
        assert monitor.reconcile(on_disk) == []  # every step now has a record
        assert monitor.wait(timeout=120)

    checkpoints = [r["step"] for r in kinds(out, "checkpoint")]
    assert collections.Counter(checkpoints) == {s: 1 for s in steps + [run.target[5]["step"]]}
    assert sorted(r["step"] for r in kinds(out, "result")) == steps
    # the two that cannot be evaluated: a record saying why and one alert each, once
    failing = alerts.of(AlertReason.EVALUATION_FAILING)
    assert sorted(a.step for a in failing) == [run.target[5]["step"], 900]
    by_step = {a.step: a.message for a in failing}
    assert "does not exist" in by_step[900] and str(gone) in by_step[900]
    assert "could not snapshot the checkpoint" in by_step[run.target[5]["step"]]
    assert [r["step"] for r in kinds(out, "error")] == [900]
    assert [r["step"] for r in kinds(out, "failed")] == [run.target[5]["step"]]


def test_a_snapshot_cut_short_by_a_crash_is_made_again_on_resume(
        tmp_path, run_and_ladder, write_checkpoint, make_monitor, alerts):
    run, _ = run_and_ladder
    out = tmp_path / "cod"
    source = write_checkpoint(tmp_path / "ckpt", 3)
    step = run.target[3]["step"]
    # what a process killed while snapshotting leaves: the checkpoint's pending record,
    # and a half-made snapshot under its temporary name
    snapshot = out / "snapshots" / f"step-{step:012d}"
    with Journal(out / "journal.jsonl") as journal:
        journal.append("start", run_info={}, resumed=False)
        journal.append("checkpoint", step=step, compute=None, tokens=run.target[3]["tokens"],
                       params=run.target_params, snapshot=str(snapshot),
                       benchmarks=[run.benchmark], path=str(source))
    partial = snapshot.parent / f".tmp-{snapshot.name}-0badc0de"
    partial.mkdir(parents=True)
    (partial / "config.json").write_text("{")

    with make_monitor(out, alert_callback=alerts) as monitor:
        assert monitor.wait(timeout=120)
        (obs,) = monitor.observations
    assert obs.step == step and abs(obs.accuracy - run.target[3]["accuracy"]) < 1e-9
    assert not partial.exists()  # the crash's leftovers are cleared
    assert alerts.of(AlertReason.EVALUATION_FAILING) == []
    assert [r["step"] for r in kinds(out, "checkpoint")] == [step]  # not recorded twice


def test_a_pending_checkpoint_whose_snapshot_and_directory_are_gone_is_alerted(
        tmp_path, run_and_ladder, make_monitor, alerts):
    run, _ = run_and_ladder
    out = tmp_path / "cod"
    step = run.target[3]["step"]
    with Journal(out / "journal.jsonl") as journal:
        journal.append("checkpoint", step=step, compute=None, tokens=run.target[3]["tokens"],
                       params=run.target_params,
                       snapshot=str(out / "snapshots" / f"step-{step:012d}"),
                       benchmarks=[run.benchmark], path=str(tmp_path / "ckpt" / "gone"))
    with make_monitor(out, alert_callback=alerts) as monitor:
        assert monitor.wait(timeout=120)
    (alert,) = alerts.of(AlertReason.EVALUATION_FAILING)
    assert alert.step == step and "could not be made again from" in alert.message
    assert [r["step"] for r in kinds(out, "failed")] == [step]


def test_checkpoints_thinned_by_every_are_not_taken_by_a_reconciliation(
        tmp_path, run_and_ladder, write_checkpoint, make_monitor):
    from cod_monitor.monitor import CheckpointConfig

    run, _ = run_and_ladder
    ckpt, out = tmp_path / "ckpt", tmp_path / "cod"
    dirs = [write_checkpoint(ckpt, j) for j in range(4)]
    with make_monitor(out, checkpoints=CheckpointConfig(every=2)) as monitor:
        for j, d in enumerate(dirs):
            monitor.on_checkpoint(run.target[j]["step"], tokens=run.target[j]["tokens"], path=d)
        on_disk = [Checkpoint(step=run.target[j]["step"], compute=None, tokens=None, path=str(d))
                   for j, d in enumerate(dirs)]
        assert monitor.reconcile(on_disk) == []
        assert monitor.wait(timeout=120)
    assert [r["step"] for r in kinds(out, "checkpoint")] == [run.target[0]["step"],
                                                             run.target[2]["step"]]
    assert [r["step"] for r in kinds(out, "thinned")] == [run.target[1]["step"],
                                                          run.target[3]["step"]]
