"""The journal: durable appends, torn lines, replay for resuming."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

from cod_monitor.monitor.journal import Journal, JournalWarning, read_journal
from cod_monitor.records import EvalResult


def _result(acc):
    return EvalResult("gsm8k", ("a", "b"), np.array([acc, acc]), "exact").to_dict()


def test_write_reopen_replay(tmp_path):
    path = tmp_path / "journal.jsonl"
    with Journal(path) as j:
        j.append("start", run_info={}, resumed=False)
        for step in (100, 200, 300):
            j.append("checkpoint", step=step, compute=1e20, tokens=1e9, snapshot=f"s/{step}",
                     benchmarks=["gsm8k", "math"])
        j.append("result", step=100, benchmark="gsm8k", accuracy=0.3, result=_result(0.3))
        j.append("result", step=100, benchmark="math", accuracy=0.1, result=_result(0.1))
        j.append("decision", step=100, benchmark="gsm8k", forecast=None,
                 drift={"below": 1, "alerting": False})
        j.append("failed", step=200, benchmark="math", error="boom", attempts=3)
        j.append("skipped", step=300, benchmark="math", reason="latest")

    state = Journal(path).replay()
    assert state.resumed and state.n_records == 9
    assert state.known_steps == {100, 200, 300}
    assert state.pending == [(200, "gsm8k"), (300, "gsm8k")]
    assert state.undecided == [(100, "math")]
    assert state.drift["gsm8k"]["below"] == 1
    obs = state.observations()
    assert [(o.step, o.benchmark, o.accuracy) for o in obs] == [(100, "gsm8k", 0.3), (100, "math", 0.1)]
    assert obs[0].result.pass_rates.tolist() == [0.3, 0.3]

    # reopening appends after the old records, with increasing sequence numbers
    with Journal(path) as j:
        rec = j.append("result", step=200, benchmark="gsm8k", accuracy=0.4, result=_result(0.4))
    assert rec["seq"] == 9
    assert [r["seq"] for r in read_journal(path)] == list(range(10))


def test_first_terminal_record_wins(tmp_path):
    with Journal(tmp_path / "j.jsonl") as j:
        j.append("checkpoint", step=1, snapshot="s", benchmarks=["b"])
        j.append("result", step=1, benchmark="b", accuracy=0.5)
        j.append("result", step=1, benchmark="b", accuracy=0.9)  # a duplicate must not count
        state = j.replay()
    assert state.results[(1, "b")]["accuracy"] == 0.5
    assert len(state.observations()) == 1


def test_torn_last_line_is_skipped_and_repaired(tmp_path):
    path = tmp_path / "journal.jsonl"
    with Journal(path) as j:
        j.append("checkpoint", step=1, snapshot="s", benchmarks=["b"])
    with open(path, "ab") as f:
        f.write(b'{"kind": "result", "step": 1, "bench')  # a crash in the middle of a write
    with pytest.warns(JournalWarning, match="torn by a crash"):
        assert [r["kind"] for r in read_journal(path)] == ["checkpoint"]
    with pytest.warns(JournalWarning):
        j = Journal(path).open()
    j.append("result", step=1, benchmark="b", accuracy=0.5)
    j.close()
    lines = path.read_bytes().split(b"\n")
    assert [json.loads(ln)["kind"] for ln in lines if ln] == ["checkpoint", "result"]


def test_records_survive_sigkill_of_the_writer(tmp_path):
    """Every append that returned is on disk, even if the process is killed right after."""
    path = tmp_path / "journal.jsonl"
    code = textwrap.dedent(f"""
        import sys, time
        from cod_monitor.monitor.journal import Journal
        j = Journal({str(path)!r}).open()
        i = 0
        while True:
            j.append("checkpoint", step=i, snapshot="s", benchmarks=["b"], pad="x" * 5000)
            print(i, flush=True)
            i += 1
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    acked = -1
    for line in proc.stdout:
        acked = int(line)
        if acked >= 30:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", JournalWarning)  # a kill may tear the last line
        steps = [r["step"] for r in read_journal(path)]
    assert steps[: acked + 1] == list(range(acked + 1))  # nothing acknowledged is lost
    assert steps == sorted(set(steps))  # and nothing is duplicated


def test_numpy_values_are_written_as_json(tmp_path):
    with Journal(tmp_path / "j.jsonl") as j:
        j.append("result", step=np.int64(3), benchmark="b", accuracy=np.float32(0.25),
                 rates=np.array([0.5, 1.0]))
    rec = read_journal(tmp_path / "j.jsonl")[0]
    assert (rec["step"], rec["accuracy"], rec["rates"]) == (3, 0.25, [0.5, 1.0])
