"""Faults of a real HF Trainer run with CODCallback: checkpoints saved and never handed over.

A tiny Llama trains on CPU; the monitor's spawned workers read each snapshot's real
weights (``fault_jobs.read_weights``). Each test asserts: training does not crash, no
checkpoint is evaluated twice, and none goes without an observation or an alert.
"""

import collections
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("safetensors")

from fault_trainer import (  # noqa: E402
    RemoveAt,
    TinyData,
    ladder_scale_compute,
    make_monitor,
    tiny_llama,
    training_args,
)
from transformers import Trainer  # noqa: E402

from cod_monitor.integrations.hf import CODCallback  # noqa: E402
from cod_monitor.monitor import read_journal  # noqa: E402
from cod_monitor.records import AlertReason  # noqa: E402

pytestmark = pytest.mark.slow
HERE = Path(__file__).resolve().parent
#: The reasons of alerts about faults (not about the drift of the run).
FAULTS = set(AlertReason) - {AlertReason.BELOW_BAND, AlertReason.RECOVERED,
                             AlertReason.FORECAST_UNAVAILABLE}


def checksum(directory):
    from safetensors.numpy import load_file

    tensors = load_file(str(Path(directory) / "model.safetensors"))
    return float(sum(np.asarray(t, dtype=np.float64).sum() for t in tensors.values()))


def steps_of(records, kind):
    return [r["step"] for r in records if r["kind"] == kind]


def test_a_checkpoint_saved_but_never_handed_over_is_evaluated_after_resume(tmp_path, child_env):
    output_dir, out_dir = tmp_path / "trainer", tmp_path / "cod"
    # the training process dies (SIGKILL) after writing checkpoint-10, before on_save
    child = subprocess.run(
        [sys.executable, str(HERE / "fault_trainer.py"), str(output_dir), str(out_dir),
         "20", "10"],
        env=child_env, capture_output=True, text=True, timeout=300)
    assert child.returncode == -9, child.stderr[-3000:]
    assert (output_dir / "checkpoint-10").is_dir()
    before = read_journal(out_dir / "journal.jsonl")
    assert steps_of(before, "checkpoint") == [5]  # step 10 never reached the monitor
    saved_10 = checksum(output_dir / "checkpoint-10")

    # the run resumes from that checkpoint; the Trainer rebuilds the callback from
    # trainer_state.json, whose submitted_steps already (wrongly) list step 10
    alerts = []
    cod = CODCallback(make_monitor(out_dir, alerts.append), compute_from=ladder_scale_compute,
                      drain_timeout=120)
    trainer = Trainer(model=tiny_llama(),
                      args=training_args(output_dir, 20, restore_callback_states_from_checkpoint=True),
                      train_dataset=TinyData(), callbacks=[cod])
    trainer.train(resume_from_checkpoint=str(output_dir / "checkpoint-10"))

    records = read_journal(out_dir / "journal.jsonl")
    # every checkpoint submitted once and evaluated once: none lost, none twice
    assert steps_of(records, "checkpoint") == [5, 10, 15, 20]
    assert sorted(steps_of(records, "result")) == [5, 10, 15, 20]
    assert collections.Counter(steps_of(records, "decision")) == {5: 1, 10: 1, 15: 1, 20: 1}
    # step 10's observation is of the weights the killed process saved
    (result_10,) = [r for r in records if r["kind"] == "result" and r["step"] == 10]
    np.testing.assert_allclose(result_10["result"]["meta"]["checksum"], saved_10, rtol=1e-9)
    # taken at the resume, with the compute of its own trainer_state.json
    (ckpt_10,) = [r for r in records if r["kind"] == "checkpoint" and r["step"] == 10]
    assert ckpt_10["compute"] == pytest.approx(1e21)
    assert [s["resumed"] for s in records if s["kind"] == "start"] == [False, True]
    # nothing failed: the lost checkpoint was recovered, not lost
    assert [a for a in alerts if a.reason in FAULTS] == []
    (live,) = [c for c in trainer.callback_handler.callbacks if isinstance(c, CODCallback)]
    assert live.summary_["benchmarks"]["synthetic"]["observations"] == 4


def test_a_checkpoint_gone_before_on_save_is_recorded_and_alerted(tmp_path):
    output_dir, out_dir = tmp_path / "trainer", tmp_path / "cod"
    alerts = []
    cod = CODCallback(make_monitor(out_dir, alerts.append), compute_from=ladder_scale_compute,
                      drain_timeout=120)
    trainer = Trainer(model=tiny_llama(), args=training_args(output_dir, 15),
                      train_dataset=TinyData(), callbacks=[RemoveAt(10), cod])
    trainer.train()  # no crash

    records = read_journal(out_dir / "journal.jsonl")
    assert sorted(steps_of(records, "result")) == [5, 15]
    # step 10 has no observation, and says so: a journal record and an alert
    (error,) = [r for r in records if r["kind"] == "error"]
    assert error["step"] == 10 and "checkpoint-10" in error["error"]
    (alert,) = [a for a in alerts if a.reason in FAULTS]
    assert alert.reason is AlertReason.EVALUATION_FAILING and alert.step == 10
    assert "checkpoint-10" in alert.message and "no observation" in alert.message
    assert cod.submitted_steps == [5, 15]
