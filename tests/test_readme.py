"""README's quick starts run exactly as written (each in a fresh process, as a script)."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"

pytest.importorskip("transformers")


def quickstart(name: str) -> str:
    """The ```python block that follows ``<!-- quickstart: NAME -->`` in README."""
    text = README.read_text()
    match = re.search(rf"<!-- quickstart: {name} -->\n```python\n(.*?)```", text, re.S)
    assert match, f"README has no quick start {name!r}"
    return match.group(1)


def run_script(tmp_path, code: str) -> subprocess.CompletedProcess:
    script = tmp_path / "train.py"
    script.write_text(code)
    return subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=900)


def test_trainer_quick_start_is_at_most_25_lines_with_the_main_guard():
    code = quickstart("trainer")
    lines = [line for line in code.splitlines() if line.strip()]
    assert len(lines) <= 25
    assert 'if __name__ == "__main__":' in code


def test_trainer_quick_start_runs_as_written(tmp_path):
    proc = run_script(tmp_path, quickstart("trainer"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    status, accuracy = proc.stdout.split()[-2:]
    assert status == "finished" and 0.0 <= float(accuracy) <= 1.0
    # the console shows the monitor by default: start-up, one line per checkpoint
    assert "CODCallback: monitoring 1 benchmark" in proc.stderr
    assert len(re.findall(r"cod/demo step \d+: observed", proc.stderr)) == 2
    summary = json.loads((tmp_path / "qs_out/trainer/cod_monitor/summary.json").read_text())
    demo = summary["benchmarks"]["demo"]
    assert demo["observations"] == 2 and demo["final_forecast"] is not None


def test_loop_quick_start_runs_as_written(tmp_path):
    proc = run_script(tmp_path, quickstart("loop"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split()[-1] == "finished"
    assert len(re.findall(r"cod/demo step \d+: observed", proc.stderr)) == 2
    summary = json.loads((tmp_path / "loop_out/cod/summary.json").read_text())
    assert summary["benchmarks"]["demo"]["run_final_forecast"] is not None
