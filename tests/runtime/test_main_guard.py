"""The ``__main__`` guard checks: a training script without it is refused before any
spawn-started worker runs it again (real scripts in real subprocesses)."""

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cod_monitor.runtime.main_guard import MainGuardError, _is_main_guard, check_main_guard

TESTS_DIR = str(Path(__file__).resolve().parents[1])  # where monitor_jobs lives

# Builds a monitor on the shipped demo ladder with a job function that needs no model,
# so the script runs in seconds; `BODY` is placed by each test.
PRELUDE = f"""
import os, sys
sys.path.insert(0, {TESTS_DIR!r})
print("script runs in", __name__, flush=True)
from cod_monitor.demo import SHIPPED_LADDER
from cod_monitor.evaluators.evalset import EvalSet
from cod_monitor.ladder import load_ladder
from cod_monitor.monitor import CODMonitor, ForecastConfig, PoolConfig, RunGeometry

def train():
    ids = load_ladder(str(SHIPPED_LADDER)).matrix("demo").sample_ids
    es = EvalSet.from_records([{{"id": str(i), "prompt": "x", "answer": "1"}} for i in ids],
                              name="demo", stop="\\n")  # the ladder's stop marker
    monitor = CODMonitor(str(SHIPPED_LADDER), {{"demo": es}},
                         pool=PoolConfig(devices=["cpu"], job_fn="monitor_jobs:constant"),
                         forecast=ForecastConfig(n_bootstrap=0),
                         run=RunGeometry(params=1e6, tokens_per_step=1000),
                         out_dir=os.path.join(os.path.dirname(__file__), "out"),
                         poll_interval=None)
    monitor.start()
    monitor.close(60)
    print("trained and closed", flush=True)
"""


def run_script(tmp_path, body: str) -> subprocess.CompletedProcess:
    script = tmp_path / "train.py"
    script.write_text(PRELUDE + textwrap.dedent(body))
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=240, cwd=tmp_path)


def test_script_starting_the_monitor_at_top_level_is_refused_before_any_worker(tmp_path):
    proc = run_script(tmp_path, "train()\n")
    assert proc.returncode != 0
    assert "MainGuardError" in proc.stderr
    assert 'if __name__ == "__main__":' in proc.stderr
    assert f"line {len(PRELUDE.splitlines()) + 1} of" in proc.stderr  # the `train()` line
    # refused in the parent, before a worker could import the script again
    assert proc.stdout.count("script runs in") == 1
    assert "__mp_main__" not in proc.stdout


def test_script_with_the_guard_runs(tmp_path):
    proc = run_script(tmp_path, 'if __name__ == "__main__":\n    train()\n')
    assert proc.returncode == 0, proc.stderr
    assert "trained and closed" in proc.stdout


def test_monitor_built_by_a_spawned_child_importing_the_script_is_refused(tmp_path):
    # The parent guards its own start, but builds a monitor at the top level too: the
    # spawned child re-runs that while importing the script, and must refuse.
    body = """
    import multiprocessing

    def child():
        pass

    building = CODMonitor(str(SHIPPED_LADDER), {"demo": "unused.jsonl"},
                          pool=PoolConfig(devices=["cpu"], job_fn="monitor_jobs:constant"),
                          out_dir=os.path.join(os.path.dirname(__file__), "out2"))

    if __name__ == "__main__":
        p = multiprocessing.get_context("spawn").Process(target=child)
        p.start()
        p.join(120)
        print("child exit code", p.exitcode, flush=True)
    """
    proc = run_script(tmp_path, body)
    assert proc.returncode == 0, proc.stderr
    assert "child exit code 1" in proc.stdout
    assert "MainGuardError" in proc.stderr
    assert "while it re-runs" in proc.stderr


@pytest.mark.parametrize("source, guarded", [
    ('if __name__ == "__main__":\n    main()', True),
    ("if '__main__' == __name__:\n    main()", True),
    ('if __name__ == "__main__" and not DEBUG:\n    main()', True),
    ("main()", False),
    ('if __name__ != "__main__":\n    main()', False),
    ('if name == "__main__":\n    main()', False),
    ("with open('x') as f:\n    main()", False),
])
def test_main_guard_forms(source, guarded):
    assert _is_main_guard(ast.parse(source).body[0]) is guarded


def test_no_check_from_a_frame_outside_the_main_script():
    # pytest's own __main__ is guarded; a call from a test function reaches no
    # unguarded module-level statement of it
    check_main_guard("test")


def test_error_is_a_runtime_error():
    assert issubclass(MainGuardError, RuntimeError)
