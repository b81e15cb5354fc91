"""The accelerate helpers, and ``examples/accelerate_loop.py`` run for real on two CPU
processes: the main process's stop on drift reaches both, and the cod metrics go
through ``Accelerator.log`` (to an offline W&B run, read back)."""

import glob
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
accelerate = pytest.importorskip("accelerate")

from cod_monitor.integrations.accelerate import log_observations, stop_on_every_rank  # noqa: E402
from cod_monitor.records import Observation  # noqa: E402

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


class FakeMonitor:
    """What the helpers read of a CODMonitor (the example test drives a real one)."""

    def __init__(self, stop_requested=False):
        self.stop_requested = stop_requested
        self.stops = []

    def note_stopped(self, step, reason):
        self.stops.append((step, reason))

    def metrics(self, o):
        return {f"cod/{o.benchmark}/accuracy": o.accuracy,
                f"cod/{o.benchmark}/checkpoint_step": o.step}


class Tracker:
    """An accelerate tracker that keeps what it is given."""

    name, requires_logging_directory, main_process_only = "keep", False, True

    def __init__(self):
        self.rows = []

    def start(self):
        pass

    def store_init_configuration(self, values):
        pass

    def log(self, values, step=None, **kwargs):
        self.rows.append((step, dict(values)))

    def finish(self):
        pass


@pytest.fixture
def accelerator():
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from accelerate.tracking import GeneralTracker

    class Keep(Tracker, GeneralTracker):
        pass

    acc = Accelerator(cpu=True, log_with=[Keep()])
    acc.init_trackers("test")
    yield acc
    AcceleratorState._reset_state(True)


def test_the_stop_is_decided_and_recorded(accelerator):
    monitor = FakeMonitor(stop_requested=True)
    assert stop_on_every_rank(accelerator, monitor, 7, stop_on_drift=False) is False
    assert stop_on_every_rank(accelerator, None, 7) is False  # a process without a monitor
    assert stop_on_every_rank(accelerator, monitor, 8) is True
    assert monitor.stops == [(8, "drift")]
    assert stop_on_every_rank(accelerator, FakeMonitor(), 9) is False  # the trigger was reset
    accelerator.set_trigger()  # the loop's own reason (a NaN loss, say)
    other = FakeMonitor()
    assert stop_on_every_rank(accelerator, other, 10) is True and other.stops == [(10, "trigger")]


def test_one_row_per_checkpoint_of_a_benchmark(accelerator):
    obs = [Observation(s, 1e20, b, 0.1 * s) for s, b in ((2, "a"), (2, "b"), (4, "a"), (6, "a"))]
    assert log_observations(accelerator, FakeMonitor(), obs, step=6) == 4
    (tracker,) = accelerator.trackers
    assert [(step, sorted(row)) for step, row in tracker.rows] == [
        (6, ["cod/a/accuracy", "cod/a/checkpoint_step", "cod/b/accuracy", "cod/b/checkpoint_step"]),
        (7, ["cod/a/accuracy", "cod/a/checkpoint_step"]), (8, ["cod/a/accuracy", "cod/a/checkpoint_step"])]
    assert [row["cod/a/checkpoint_step"] for _, row in tracker.rows] == [2, 4, 6]
    assert log_observations(accelerator, None, obs, step=9) == 0  # other processes


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_example_on_two_processes_stops_both_and_logs_through_accelerate(tmp_path):
    pytest.importorskip("wandb")  # the example's --log-with
    from cod_monitor.demo.tasks import TaskGenerator
    from cod_monitor.synthetic import synthetic_run

    # the example evaluates exactly the ladder's samples (150 of them here, to keep it quick)
    ids = [sid for sid, _ in TaskGenerator(seed=0).eval_samples][::8]
    run = synthetic_run(n_samples=len(ids), sample_ids=ids, benchmark="demo", seed=0)
    run.ladder.without_models([m.name for m in run.ladder.models_with_role("target")]).save(
        tmp_path / "ladder")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline",
           "WANDB_DIR": str(tmp_path), "WANDB_SILENT": "true", "WANDB_CONSOLE": "off"}
    # --sync: the main process waits for each judgement, so a drift (an untrained model
    # scores 0) is known before the next step; meanwhile the other process waits at the
    # stop check's collective
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
         "--master_port", str(_free_port()), str(ROOT / "examples" / "accelerate_loop.py"),
         "--tiny", "--steps", "6", "--every", "2", "--sync", "--log-with", "wandb",
         "--ladder", str(tmp_path / "ladder"), "--out-dir", str(tmp_path / "out")],
        env=env, capture_output=True, text=True, timeout=400, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    left = dict(re.findall(r"process (\d) left the loop at step (\d+)", proc.stdout))
    # both processes left at the same checkpoint (no process was left waiting), before the
    # end: the first checkpoint (step 2) or the second, as the forecast band allows
    assert set(left) == {"0", "1"} and left["0"] == left["1"] in {"2", "4"}, proc.stdout
    summary = json.loads((tmp_path / "out" / "cod" / "summary.json").read_text())
    assert (summary["status"], summary["stopped_at"], summary["drift_detected"]) == (
        "stopped_by_drift", int(left["0"]), True)

    (run_dir,) = glob.glob(str(tmp_path / "wandb" / "offline-run-*"))
    out = subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", "--json", run_dir],
                         check=True, capture_output=True, text=True, timeout=60).stdout
    items = [r["history"]["item"] for r in map(json.loads, out.splitlines())
             if r["type"] == "history"]
    rows = [i for i in items if "cod/demo/accuracy" in i]
    # one row per checkpoint judged before the stop, logged at the step that judged it
    assert [r["cod/demo/checkpoint_step"] for r in rows] == list(range(2, int(left["0"]) + 1, 2))
    assert all(r["_step"] == r["cod/demo/checkpoint_step"] and "train/loss" in r for r in rows)
    assert all(r["cod/demo/accuracy"] < 0.01 for r in rows) and rows[-1]["cod/demo/alerting"] == 1
