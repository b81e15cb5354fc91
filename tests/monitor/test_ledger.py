"""The monitor's shared bookkeeping: ledger, inbox, tracker fan-out."""

import logging

from cod_monitor.monitor.config import RunGeometry
from cod_monitor.monitor.fanout import TrackerFanout
from cod_monitor.monitor.journal import Journal, read_journal
from cod_monitor.monitor.ledger import Inbox, Ledger


def _ledger(tmp_path, keep=False, **run):
    journal = Journal(tmp_path / "journal.jsonl").open()
    return Ledger(journal, ["a", "b"], RunGeometry(**run), keep_snapshots=keep)


def test_the_first_settlement_wins_and_the_snapshot_goes_with_the_last(tmp_path):
    ledger = _ledger(tmp_path)
    snap = tmp_path / "snap"
    snap.mkdir()
    ledger.register(10, 1e18, 1e6, snap)
    assert ledger.knows(10) and ledger.busy() and ledger.pending_steps("a") == [10]
    assert ledger.settle(10, "a", "result", accuracy=0.5)
    assert not ledger.settle(10, "a", "failed", error="late")  # already settled
    assert snap.exists()  # 'b' still needs it
    assert ledger.settle(10, "b", "skipped", reason="latest")
    assert not snap.exists() and not ledger.busy()
    assert (ledger.count("a", "result"), ledger.count("b", "skipped")) == (1, 1)
    kinds = [r["kind"] for r in read_journal(tmp_path / "journal.jsonl")]
    assert kinds == ["result", "skipped", "snapshot_deleted"]


def test_resolve_learns_params_and_fills_in_tokens_and_compute(tmp_path):
    ledger = _ledger(tmp_path, tokens_per_step=100.0)
    assert ledger.resolve(5, None, None) == (500.0, None, None)
    assert ledger.resolve(10, None, 6e6) == (1000.0, 6e6, 1000.0)  # params learned
    assert ledger.resolve(20, None, None) == (2000.0, 6.0 * 1000.0 * 2000.0, 1000.0)


def test_replay_restores_what_a_new_ledger_knows(tmp_path):
    first = _ledger(tmp_path)
    first.journal.append("checkpoint", step=3, compute=6e6, tokens=1e3, params=1e3,
                         snapshot=str(tmp_path / "s3"), benchmarks=["a", "b"])
    first.settle(3, "a", "result", accuracy=0.1)
    first.journal.close()
    second = _ledger(tmp_path)
    second.restore(second.journal.replay())
    assert second.knows(3) and second.params == 1e3
    assert second.pending_steps("b") == [3] and second.pending_steps("a") == []
    assert second.position(3) == (1e3, 6e6)


def test_state_dict_writes_count_as_busy_until_done(tmp_path):
    ledger = _ledger(tmp_path)
    ledger.register(1, None, None, tmp_path / "s1", writing=True)
    for b in ("a", "b"):
        ledger.settle(1, b, "failed", error="x", attempts=0)
    assert ledger.busy() and not ledger.wait_writes(timeout=0.01)
    ledger.write_done()
    assert ledger.wait_writes(timeout=0.01) and not ledger.busy()


def test_inbox_runs_work_in_posting_order():
    inbox, seen = Inbox(), []
    inbox.post(seen.append, 1)
    inbox.post(seen.extend, [2, 3])
    inbox.wait(0)  # woken: returns at once
    inbox.run_all()
    assert seen == [1, 2, 3]


class _Tracker:
    def __init__(self, fail=False):
        self.calls, self.fail = [], fail

    def __getattr__(self, name):
        def call(*args):
            self.calls.append(name)
            if self.fail:
                raise RuntimeError("tracker bug")
        return call


def test_fanout_starts_and_finishes_once_and_survives_a_failing_tracker(caplog):
    good, bad = _Tracker(), _Tracker(fail=True)
    fanout = TrackerFanout([bad, good], lambda: {"benchmarks": ["a"]})
    with caplog.at_level(logging.WARNING):
        fanout.log_alert("alert")
        fanout.finish({})
        fanout.finish({})
    # a tracker whose start raised is disabled at once: its start is not retried
    assert good.calls == ["start", "log_alert", "finish"] and bad.calls == ["start"]
    assert fanout.disabled == ["_Tracker"]
    (warning,) = [r.getMessage() for r in caplog.records if "tracker _Tracker" in r.getMessage()]
    assert "its start raised (RuntimeError: tracker bug)" in warning
