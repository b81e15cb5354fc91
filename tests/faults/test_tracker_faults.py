"""Trackers isolated: a failing, hung or unreachable tracker costs its own records only.

Real threads, real spawned evaluation workers, the real ``wandb`` (offline, or online
against a closed local port): no mocks. Each monitor test asserts: training calls stay
short, every checkpoint is observed, and the failing tracker raises exactly one
``TRACKER_FAILING`` alert that reaches the journal, the log and the other trackers.
"""

import logging
import os
import tempfile
import time

import pytest

from cod_monitor.monitor import read_journal
from cod_monitor.monitor.fanout import TrackerFanout
from cod_monitor.monitor.judging import ALERT_LOGGER
from cod_monitor.records import Alert, AlertReason


class Recorder:
    """A tracker that records every call, in order."""

    def __init__(self):
        self.events = []

    def start(self, run_info):
        self.events.append(("start", run_info))

    def log_forecast(self, benchmark, version, curve, report):
        self.events.append(("log_forecast", benchmark))

    def log_observation(self, observation, forecast):
        self.events.append(("log_observation", observation))

    def log_alert(self, alert):
        self.events.append(("log_alert", alert))

    def finish(self, summary):
        self.events.append(("finish", summary))

    def of(self, kind):
        return [e[1] for e in self.events if e[0] == kind]


class Failing(Recorder):
    """Raises from the methods in ``fail`` (each call is recorded first)."""

    def __init__(self, fail=("log_observation", "log_forecast", "log_alert", "finish"),
                 pattern=None):
        super().__init__()
        self.fail = set(fail)
        self.pattern = list(pattern or [])  # per call of a failing method: raise or not

    def __getattribute__(self, name):
        attr = super().__getattribute__(name)
        if name in super().__getattribute__("fail"):
            def call(*args):
                attr(*args)
                pattern = self.pattern
                if not pattern or pattern.pop(0):
                    raise OSError(28, "No space left on device")
            return call
        return attr


class Sleeper(Recorder):
    """``method`` sleeps ``seconds`` (a hung upload)."""

    def __init__(self, method, seconds):
        super().__init__()
        self.method, self.seconds = method, seconds

    def log_alert(self, alert):
        super().log_alert(alert)
        if self.method == "log_alert":
            time.sleep(self.seconds)

    def finish(self, summary):
        super().finish(summary)
        if self.method == "finish":
            time.sleep(self.seconds)


def _alert(i=0):
    return Alert(i, "b", AlertReason.BELOW_BAND, f"alert {i}")


# ------------------------------------------------------------------ the fanout itself
def test_three_failures_in_a_row_disable_a_tracker_once_and_spare_the_others():
    bad, good, reported = Failing(), Recorder(), []
    fanout = TrackerFanout([bad, good], lambda: {}, on_disabled=reported.append)
    for i in range(6):
        fanout.log_alert(_alert(i))
    assert fanout.flush(timeout=10)
    fanout.finish({})
    # three calls reached it, then it was disabled: nothing more, not even finish
    assert [e[0] for e in bad.events] == ["start", "log_alert", "log_alert", "log_alert"]
    assert [a.step for a in good.of("log_alert")] == list(range(6)) and good.of("finish")
    (failure,) = reported
    assert (failure.tracker, failure.method, failure.kind, failure.failures) == (
        "Failing", "log_alert", "repeated", 3)
    assert "OSError" in failure.error and "No space left on device" in failure.error
    assert fanout.disabled == ["Failing"]


def test_a_success_in_between_resets_the_count():
    flaky, reported = Failing(fail=("log_alert",), pattern=[1, 1, 0, 1, 1, 0, 1, 1]), []
    fanout = TrackerFanout([flaky], lambda: {}, on_disabled=reported.append)
    for i in range(8):
        fanout.log_alert(_alert(i))
    fanout.finish({})
    assert reported == [] and fanout.disabled == []
    assert len(flaky.of("log_alert")) == 8 and flaky.of("finish")


def test_a_slow_tracker_never_blocks_the_caller_and_a_hung_one_is_disabled():
    slow, good, reported = Sleeper("log_alert", 3.0), Recorder(), []
    fanout = TrackerFanout([slow, good], lambda: {}, on_disabled=reported.append, hang_s=0.5)
    t0 = time.perf_counter()
    fanout.log_alert(_alert(0))
    fanout.log_alert(_alert(1))
    assert time.perf_counter() - t0 < 0.1  # put on the tracker's own thread
    time.sleep(0.8)
    fanout.log_alert(_alert(2))  # the next event notices the hung call
    assert fanout.flush(timeout=5)
    (failure,) = reported
    assert failure.kind == "hung" and failure.method == "log_alert" and failure.dropped == 1
    assert "has not returned after" in failure.error
    assert [a.step for a in good.of("log_alert")] == [0, 1, 2]


def test_finish_waits_a_bounded_time_for_a_tracker():
    slow, good, reported = Sleeper("finish", 10.0), Recorder(), []
    fanout = TrackerFanout([slow, good], lambda: {}, on_disabled=reported.append,
                           finish_timeout=1.0)
    t0 = time.perf_counter()
    fanout.finish({"done": True})
    assert time.perf_counter() - t0 < 2.5
    assert good.of("finish") == [{"done": True}]
    (failure,) = reported
    assert failure.kind == "hung" and "had not finished 1 s after the monitor closed" in failure.error


# ------------------------------------------------------------------ through the monitor
def _run(monitor, run, write_checkpoint, root, n=4):
    """Hand over ``n`` checkpoints, polling like a training loop; the longest call."""
    longest = 0.0
    for j in range(n):
        path = write_checkpoint(root, j)
        t0 = time.perf_counter()
        monitor.on_checkpoint(run.target[j]["step"], tokens=run.target[j]["tokens"], path=path)
        monitor.poll()
        longest = max(longest, time.perf_counter() - t0)
    return longest


def test_a_failing_tracker_is_disabled_with_one_alert_in_journal_log_and_other_trackers(
        tmp_path, run_and_ladder, write_checkpoint, make_monitor, alerts, caplog):
    run, _ = run_and_ladder
    bad, rec = Failing(), Recorder()
    caplog.set_level(logging.WARNING)
    out = tmp_path / "cod"
    with make_monitor(out, trackers=[bad, rec], alert_callback=alerts) as monitor:
        longest = _run(monitor, run, write_checkpoint, tmp_path / "ckpt")
        assert monitor.wait(timeout=120)
    assert longest < 1.0
    assert [o.step for o in rec.of("log_observation")] == [t["step"] for t in run.target[:4]]
    (alert,) = alerts.of(AlertReason.TRACKER_FAILING)
    assert alert.message.startswith("cod: the tracker Failing is disabled for the rest of the run")
    assert "raised 3 times in a row (OSError: [Errno 28] No space left on device)" in alert.message
    assert rec.of("log_alert") == [a for a in alerts.alerts]  # the other tracker got it
    journaled = [r for r in read_journal(out / "journal.jsonl") if r["kind"] == "alert"]
    assert [r["reason"] for r in journaled].count("tracker_failing") == 1
    lines = [r for r in caplog.records if "Failing" in r.getMessage()]
    assert len(lines) == 1 and lines[0].name == ALERT_LOGGER  # one log line
    assert len([e for e in bad.events if e[0] != "start"]) == 3  # no call after disabling


@pytest.fixture
def wandb_env(monkeypatch):
    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_CONSOLE", "off")
    yield monkeypatch
    if wandb.run is not None:
        wandb.run.finish()
    wandb.teardown()


def test_wandb_online_without_network_fails_once_and_never_stalls_training(
        tmp_path, run_and_ladder, write_checkpoint, make_monitor, alerts, wandb_env):
    from cod_monitor.trackers.wandb import TrackerUnavailableError, WandbTracker

    run, _ = run_and_ladder
    # a real online wandb.init against a closed port: it retries until its init timeout
    wandb_env.setenv("WANDB_MODE", "online")
    wandb_env.setenv("WANDB_API_KEY", "x" * 40)
    wandb_env.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")
    wandb_env.setenv("WANDB_INIT_TIMEOUT", "3")
    wandb_env.delenv("WANDB_DIR", raising=False)
    tracker, rec = WandbTracker(project="cod-test", dir=str(tmp_path / "wandb")), Recorder()
    out = tmp_path / "cod"
    with make_monitor(out, trackers=[tracker, rec], alert_callback=alerts) as monitor:
        longest = _run(monitor, run, write_checkpoint, tmp_path / "ckpt")
        assert monitor.wait(timeout=120)
        t0 = time.perf_counter()
    close_s = time.perf_counter() - t0
    assert longest < 1.0 and close_s < 2.0
    assert len(rec.of("log_observation")) == 4  # nothing else was lost
    (alert,) = alerts.of(AlertReason.TRACKER_FAILING)
    assert "the tracker WandbTracker is disabled" in alert.message
    assert "its start raised (CommError" in alert.message
    # the failed init is remembered: a later event fails at once instead of retrying it
    t0 = time.perf_counter()
    with pytest.raises(TrackerUnavailableError, match="does not try again"):
        tracker.log_alert(alert)
    assert time.perf_counter() - t0 < 0.5


def test_wandb_fallback_directory_is_reported_with_both_directories(
        tmp_path, wandb_env, caplog):
    from cod_monitor.trackers.wandb import WandbTracker

    wandb_env.setenv("WANDB_MODE", "offline")
    # W&B falls back to the system temp directory; keep that inside the test's own
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    wandb_env.setattr(tempfile, "tempdir", str(system_tmp))
    (tmp_path / "a-file").write_text("")
    wanted = tmp_path / "a-file" / "wandb-dir"  # cannot be created, even by root
    wandb_env.setenv("WANDB_DIR", str(wanted))
    caplog.set_level(logging.WARNING, logger="cod_monitor.trackers.wandb")
    tracker = WandbTracker(project="cod-test")
    tracker.start({"benchmarks": ["b"]})
    tracker.finish({})
    assert tracker.fallback_dir_ is not None
    assert os.path.realpath(tracker.fallback_dir_).startswith(os.path.realpath(system_tmp))
    (warning,) = [r.getMessage() for r in caplog.records
                  if r.name == "cod_monitor.trackers.wandb" and "fallback" in r.getMessage()]
    assert str(wanted) in warning and tracker.fallback_dir_ in warning
