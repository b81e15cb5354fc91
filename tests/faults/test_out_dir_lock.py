"""Two monitors pointed at one out_dir: the second is refused at start, with the holder
named, instead of evaluating every checkpoint twice and deleting the first one's
snapshots. The lock dies with its process."""

import subprocess
import sys

import pytest

from cod_monitor.monitor import OutDirInUseError, read_journal

HOLD = r"""
import sys, time
from cod_monitor.monitor.monitor import lock_out_dir
fh = lock_out_dir(sys.argv[1])
print("locked", flush=True)
time.sleep(60)
"""


def test_a_second_monitor_on_the_same_out_dir_is_refused_until_the_first_closes(
        tmp_path, run_and_ladder, write_checkpoint, make_monitor, alerts):
    run, _ = run_and_ladder
    out = tmp_path / "cod"
    first = make_monitor(out, alert_callback=alerts).start()
    second = make_monitor(out)
    with pytest.raises(OutDirInUseError, match=r"is in use by another CODMonitor \(pid \d+ on ") as info:
        second.start()
    assert str(out) in str(info.value) and "Give this monitor its own out_dir" in str(info.value)
    first.on_checkpoint(run.target[0]["step"], tokens=run.target[0]["tokens"],
                        path=write_checkpoint(tmp_path / "ckpt", 0))
    assert first.wait(timeout=120)
    first.close()
    with make_monitor(out) as third:  # the first closed: its out_dir is free again
        assert third.wait(timeout=60)
    results = [r["step"] for r in read_journal(out / "journal.jsonl") if r["kind"] == "result"]
    assert results == [run.target[0]["step"]]  # evaluated once


def test_the_lock_of_a_killed_process_is_gone_with_it(tmp_path, make_monitor, child_env):
    out = tmp_path / "cod"
    out.mkdir()
    child = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], env=child_env,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(OutDirInUseError, match=rf"pid {child.pid} on "):
            make_monitor(out).start()
    finally:
        child.kill()
        child.wait()
    with make_monitor(out) as monitor:  # SIGKILL left no stale lock
        assert monitor.wait(timeout=60)
