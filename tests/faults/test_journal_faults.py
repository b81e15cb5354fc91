"""A journal whose disk refuses writes: nothing submitted or judged is lost, one alert.

The fault is real: a child process lowers its own file-size limit (``RLIMIT_FSIZE``,
with ``SIGXFSZ`` ignored), so the kernel refuses the journal's writes with ``EFBIG``
as a full disk refuses them with ``ENOSPC``: the first record is cut short, the next
ones are refused whole. Then the limit is lifted, as when space is freed.
"""

import collections
import errno
import json
import subprocess
import sys
import warnings

from cod_monitor.monitor import read_journal

JOURNAL_SCRIPT = r"""
import json, os, resource, signal, sys, time
from cod_monitor.monitor.journal import Journal, read_journal

path = sys.argv[1]
failures = []
journal = Journal(path, on_failure=failures.append).open()
journal.append("a", n=0)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
size0 = os.path.getsize(path)
_, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (size0 + 10, hard))  # 10 bytes left
t0 = time.monotonic()
journal.append("b", n=1, pad="x" * 50)
journal.append("c", n=2, value=float("nan"))
stall = time.monotonic() - t0
out = {"size0": size0, "size": os.path.getsize(path), "kept": journal.n_unwritten,
       "on_disk": [r["kind"] for r in read_journal(path)],
       "records": [r["kind"] for r in journal.records()], "stall": stall,
       "failures": [e.errno for e in failures]}
resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))  # space is freed
journal.append("d", n=3)
out["after"] = [[r["kind"], r["seq"]] for r in read_journal(path)]
out["kept_after"] = journal.n_unwritten
out["c"] = [r for r in read_journal(path) if r["kind"] == "c"][0]
# full again, and still full when the journal is closed: what is lost is logged
resource.setrlimit(resource.RLIMIT_FSIZE, (os.path.getsize(path), hard))
journal.append("e", step=7, benchmark="gsm8k")
journal.close()
out["failures_end"] = [e.errno for e in failures]
print(json.dumps(out))
"""

MONITOR_SCRIPT = r"""
import json, os, resource, signal, sys
from pathlib import Path
from cod_monitor.monitor import CODMonitor, ForecastConfig, PoolConfig, QueuePolicy, RunGeometry

ladder, ckpt, out_dir, steps, params = sys.argv[1:6]
steps = json.loads(steps)
alerts = []
monitor = CODMonitor(
    ladder, {"synthetic": "synthetic"}, {}, out_dir=out_dir, trackers=[],
    forecast=ForecastConfig(n_bootstrap=0, refresh_interval=None),
    pool=PoolConfig(job_fn="fault_jobs:pass_rates_file", queue_policy=QueuePolicy(max_pending=100)),
    run=RunGeometry(params=float(params)), alert_callback=alerts.append, poll_interval=None)
step, tokens = steps[0]
monitor.on_checkpoint(step, tokens=tokens, path=f"{ckpt}/checkpoint-{step}")
first_done = monitor.wait(timeout=60)
journal = Path(out_dir) / "journal.jsonl"
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
size = journal.stat().st_size
_, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (size + 40, hard))  # the disk fills up
for step, tokens in steps[1:]:
    monitor.on_checkpoint(step, tokens=tokens, path=f"{ckpt}/checkpoint-{step}")
monitor.on_checkpoint(999, tokens=1e6, path=f"{ckpt}/missing")  # cannot be taken
done = monitor.wait(timeout=60)
during = {"first_done": first_done, "done": done, "size": journal.stat().st_size,
          "size_before": size, "observed": [o.step for o in monitor.observations],
          "alerts": [[a.reason.value, a.step] for a in alerts]}
resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))  # space is freed
monitor.close(timeout=60)
print(json.dumps({"during": during, "alerts": [[a.reason.value, a.step] for a in alerts]}))
"""


def test_refused_appends_are_cut_back_kept_in_order_and_reported_once(tmp_path, child_env):
    path = tmp_path / "journal.jsonl"
    proc = subprocess.run([sys.executable, "-c", JOURNAL_SCRIPT, str(path)], env=child_env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    # no crash; the cut-short record was cut back, so the file holds whole records only
    assert out["size"] == out["size0"] and out["on_disk"] == ["a"]
    assert out["kept"] == 2 and out["records"] == ["a", "b", "c"]
    assert out["failures"] == [errno.EFBIG]  # one report for the run of failures
    assert out["stall"] < 1.0
    # written in order, with their sequence numbers, once the disk takes them again
    assert out["after"] == [["a", 0], ["b", 1], ["c", 2], ["d", 3]] and out["kept_after"] == 0
    assert out["c"]["value"] is None  # a NaN is written as null, never refused
    # a second run of failures is reported again; what is still kept at close is logged
    assert out["failures_end"] == [errno.EFBIG, errno.EFBIG]
    assert "1 record(s) could not be written" in proc.stderr and "e step=7" in proc.stderr
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a torn line would warn
        assert [r["kind"] for r in read_journal(path)] == ["a", "b", "c", "d"]


def test_a_full_journal_disk_loses_no_step_and_raises_one_alert(
        tmp_path, run_and_ladder, write_checkpoint, child_env):
    run, ladder_dir = run_and_ladder
    ckpt, out = tmp_path / "ckpt", tmp_path / "cod"
    steps = [[run.target[j]["step"], run.target[j]["tokens"]] for j in range(4)]
    for j in range(4):
        write_checkpoint(ckpt, j)
    proc = subprocess.run(
        [sys.executable, "-c", MONITOR_SCRIPT, str(ladder_dir), str(ckpt), str(out),
         json.dumps(steps), str(run.target_params)],
        env=child_env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    during = result["during"]
    all_steps = [s for s, _ in steps]
    # while the disk refused the journal: every checkpoint submitted, evaluated, judged
    assert during["first_done"] and during["done"]
    assert during["observed"] == all_steps
    assert during["size"] == during["size_before"]  # nothing torn was left in the file
    reasons = collections.Counter(r for r, _ in during["alerts"])
    assert reasons["journal_failing"] == 1  # alerted once
    # the checkpoint that could not be taken is alerted although its record could not
    # be written then
    assert ["evaluation_failing", 999] in during["alerts"]

    # once space is freed, the journal holds each record once, in order, readable
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        records = read_journal(out / "journal.jsonl")
    assert [r["seq"] for r in records] == list(range(len(records)))
    for kind in ("checkpoint", "result", "decision"):
        assert collections.Counter(r["step"] for r in records if r["kind"] == kind) == \
            {s: 1 for s in all_steps}, kind
    assert [r["step"] for r in records if r["kind"] == "error"] == [999]
    assert [r["reason"] for r in records if r["kind"] == "alert"].count("journal_failing") == 1
