"""CODCallback's defaults in a real HF Trainer on a real tiny Llama, driving a real
CODMonitor: the cod/* metrics in the Trainer's own log stream, tokens, parameters and
run length known without being passed, the console lines, and a summary that says how
the run ended.

The workers run ``hf_jobs.read_weights`` (see ``test_hf_callback.py``).
"""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from numpy.testing import assert_allclose

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("safetensors")

from test_hf_callback import (  # noqa: E402
    BENCH,
    EventRecorderCallback,
    TinyData,
    WaitForJudgement,
    journal,
    ladder_scale_compute,
    monitor_kwargs,
    tiny_llama,
    training_args,
)
from transformers import Trainer  # noqa: E402

from cod_monitor.integrations.console import CONSOLE_LOGGER, hide_progress, show_progress  # noqa: E402
from cod_monitor.integrations.hf import CODCallback  # noqa: E402
from cod_monitor.monitor import DriftConfig  # noqa: E402

pytestmark = pytest.mark.slow
HERE = Path(__file__).resolve().parent
TOKENS_PER_STEP = 4 * 16  # batch x sequence length, one process
KEY = f"cod/{BENCH}"


def cod_entries(rows):
    """``(log step, checkpoint step)`` of the rows that carry cod metrics."""
    return [(step, row[f"{KEY}/checkpoint_step"]) for step, row in rows
            if f"{KEY}/checkpoint_step" in row]


def test_each_checkpoint_reaches_the_log_stream_at_the_next_step(tmp_path, monkeypatch):
    monkeypatch.setattr(logging.root, "handlers", [])  # a script that configures no logging
    output_dir, out_dir = tmp_path / "trainer", tmp_path / "cod"
    cod = CODCallback(compute_from=ladder_scale_compute, drain_timeout=60, trackers=[],
                      console=False, **monitor_kwargs(out_dir, output_dir))
    cod.poll_every_s = 0  # every step collects what was judged
    recorder = EventRecorderCallback(cod)  # a callback after it sees the metrics too
    trainer = Trainer(model=tiny_llama(), args=training_args(output_dir, 12),
                      train_dataset=TinyData(), callbacks=[cod, WaitForJudgement(cod), recorder])
    trainer.train()

    history = trainer.state.log_history
    # checkpoints 5 and 10 were judged during their save: the Trainer logged at the next
    # step because the callback asked it to; 12 (the last) went into the final log
    assert cod_entries((h["step"], h) for h in history) == [(6, 5), (11, 10), (12, 12)]
    (at6,) = [h for h in history if h["step"] == 6]
    assert "loss" in at6 and at6[f"{KEY}/accuracy"] == 0.5
    assert {f"{KEY}/forecast", f"{KEY}/forecast_lower", f"{KEY}/forecast_upper",
            f"{KEY}/alerting"} <= set(at6)
    assert "train_runtime" in history[-1] and history[-1][f"{KEY}/checkpoint_step"] == 12
    assert cod_entries(recorder.logs) == [(6, 5), (11, 10), (12, 12)]
    # the callback's checkpoint scalars are the monitor's metrics of the observation
    obs = {o.step: o for o in cod.monitor.observations}
    assert {k: v for k, v in at6.items() if k.startswith("cod/")} == cod.monitor.metrics(obs[5])
    # tokens: the Trainer's own count, turned on by the callback
    assert trainer.args.include_num_input_tokens_seen == "all"
    ckpts = journal(out_dir, "checkpoint")
    assert_allclose([r["tokens"] for r in ckpts], [s * TOKENS_PER_STEP for s in (5, 10, 12)])
    # console=False: no handler, although nothing else is configured
    assert not logging.getLogger(CONSOLE_LOGGER).hasHandlers()


def test_params_tokens_and_length_come_from_the_trainer(tmp_path):
    output_dir, out_dir = tmp_path / "trainer", tmp_path / "cod"
    model = tiny_llama()
    cod = CODCallback(drain_timeout=60, trackers=[], **monitor_kwargs(out_dir, output_dir))
    # no max_steps: the Trainer derives it from num_train_epochs at train begin
    args = training_args(output_dir, -1, num_train_epochs=1)
    trainer = Trainer(model=model, args=args, train_dataset=TinyData(n=48), callbacks=[cod])
    trainer.train()

    run = cod.monitor.run
    n = model.num_parameters()
    assert run.max_steps == trainer.state.max_steps == 12
    assert run.params == n                      # all parameters, embeddings included
    assert run.tokens_per_step == TOKENS_PER_STEP  # from the batch geometry
    ckpts = journal(out_dir, "checkpoint")
    assert [r["step"] for r in ckpts] == [5, 10, 12]
    assert_allclose([r["tokens"] for r in ckpts], [s * TOKENS_PER_STEP for s in (5, 10, 12)])
    assert_allclose([r["compute"] for r in ckpts], [6.0 * n * s * TOKENS_PER_STEP for s in (5, 10, 12)])
    assert cod.compute_source == "6*N*tokens"
    assert "turned on by CODCallback" in cod.tokens_source
    # the run's length is known, so the forecast of its final accuracy is there
    final = cod.summary_["benchmarks"][BENCH]["final_forecast"]
    assert final is not None and final["step"] == 12
    assert_allclose(final["tokens"], 12 * TOKENS_PER_STEP)


class EmbeddingsData(torch.utils.data.Dataset):
    """Batches without input ids: the Trainer cannot count their tokens."""

    def __len__(self):
        return 64

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return {"inputs_embeds": torch.randn(16, 32, generator=g),
                "labels": torch.randint(0, 64, (16,), generator=g)}


def test_tokens_that_cannot_be_counted_are_said_not_silently_lost(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="cod_monitor.integrations.hf")
    output_dir, out_dir = tmp_path / "trainer", tmp_path / "cod"
    cod = CODCallback(drain_timeout=60, trackers=[], **monitor_kwargs(out_dir, output_dir))
    trainer = Trainer(model=tiny_llama(), args=training_args(output_dir, 5),
                      train_dataset=EmbeddingsData(), callbacks=[cod])
    trainer.train()
    (warning,) = [r.getMessage() for r in caplog.records if "counted no tokens" in r.getMessage()]
    assert "no 'input_ids'" in warning and "run=RunGeometry(tokens_per_step=...)" in warning
    assert trainer.args.include_num_input_tokens_seen == "no"  # turned off again: it counts nothing
    (ckpt,) = journal(out_dir, "checkpoint")
    assert ckpt["tokens"] is None


def test_a_run_that_drifts_without_stop_on_drift_says_finished(tmp_path):
    output_dir, out_dir = tmp_path / "trainer", tmp_path / "cod"
    cod = CODCallback(compute_from=ladder_scale_compute, drain_timeout=60, trackers=[],
                      **monitor_kwargs(out_dir, output_dir, accuracy=0.0,
                                       drift=DriftConfig(patience=1)))
    trainer = Trainer(model=tiny_llama(), args=training_args(output_dir, 10),
                      train_dataset=TinyData(), callbacks=[cod, WaitForJudgement(cod)])
    trainer.train()
    assert trainer.state.global_step == 10 and cod.stopped_at is None
    assert cod.monitor.stop_requested            # the loop's signal: a below-band alert
    s = cod.summary_
    assert s["status"] == "finished" and s["drift_detected"] is True
    assert s["stopped_at"] is None and s["stop_requested"] is False  # no stop claimed
    assert not journal(out_dir, "stopped")
    saved = json.loads((out_dir / "summary.json").read_text())
    assert saved["status"] == "finished" and saved["drift_detected"] is True


def test_the_console_shows_the_monitor_when_logging_is_not_configured(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(HERE / "hf_console.py"), str(tmp_path)],
                          capture_output=True, text=True, timeout=300, env=env, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [ln for ln in proc.stderr.splitlines() if "[cod_monitor]" in ln]
    (hello,) = [ln for ln in lines if "CODCallback: monitoring" in ln]
    n = tiny_llama().num_parameters()
    assert f"monitoring 1 benchmark ({BENCH}): N={n:.3g} params (the model's), tokens/step=64 " \
           "(from the batch geometry: 4 per device x 1 accumulation x 1 process x 16 tokens), " \
           "tokens counted by the Trainer" in hello
    assert "max_steps=10 (the Trainer's)" in hello and "cod/* metrics in the Trainer's logs" in hello
    # one line per judged checkpoint, and how the run ended
    assert [ln.split(f"cod/{BENCH} step ")[1].split(":")[0] for ln in lines
            if f"cod/{BENCH} step " in ln] == ["5", "10"]
    assert any("CODCallback: training finished" in ln for ln in lines)


def test_show_progress_leaves_a_configured_logging_alone(monkeypatch):
    log = logging.getLogger(CONSOLE_LOGGER)
    monkeypatch.setattr(log, "handlers", [])
    monkeypatch.setattr(log, "level", logging.NOTSET)
    assert logging.root.handlers                # pytest's: a configured logging set-up
    assert show_progress() is False and log.handlers == [] and log.level == logging.NOTSET
    monkeypatch.setattr(logging.root, "handlers", [])
    try:
        assert show_progress() is True and show_progress() is True  # idempotent
        (handler,) = log.handlers
        assert log.getEffectiveLevel() == logging.INFO
    finally:
        hide_progress()
    assert log.handlers == [] and log.level == logging.NOTSET


RANK_SCRIPT = r"""
import json, sys, types
import torch.distributed as dist
from transformers import TrainerControl, TrainerState
from cod_monitor.integrations.hf import CODCallback

rank, init = int(sys.argv[1]), sys.argv[2]
dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
cb = CODCallback(console=False)  # stop_on_drift=False
# only rank 0 runs a monitor; it holds a judged checkpoint not yet logged
cb.monitor = (types.SimpleNamespace(stop_requested=True, poll=lambda: []) if rank == 0 else None)
cb.log_stream = True
if rank == 0:
    cb._unlogged = {"b": [{"cod/b/accuracy": 0.5, "cod/b/checkpoint_step": 40}]}
state = TrainerState(global_step=40, is_world_process_zero=rank == 0)
control = TrainerControl()
stopped = cb._sync_stop(None, state, control)  # at the checkpoint: the collective
state.global_step = 41
control.should_log = False  # on_step_begin resets it
cb.on_step_end(None, state, control)
print(json.dumps({"rank": rank, "stopped": stopped, "stop": control.should_training_stop,
                  "should_log": control.should_log}))
dist.destroy_process_group()
"""


def test_several_processes_ask_for_the_extra_log_together(tmp_path):
    """The Trainer's log gathers the loss over the processes: the extra log that brings
    rank 0's metrics must be asked for on every process, at the same step."""
    init = f"file://{tmp_path / 'rendezvous'}"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", RANK_SCRIPT, str(r), init],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for r in (0, 1)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert [(r["should_log"], r["stopped"], r["stop"]) for r in results] == [(True, False, False)] * 2


def test_other_transformers_internals_degrade_to_a_warning(caplog):
    """Called outside a Trainer's CallbackHandler, or with a log_history whose last entry
    is not the log being written: a warning, and the metrics still reach log_history."""
    from transformers import TrainerState

    caplog.set_level(logging.WARNING, logger="cod_monitor.integrations.hf")
    cod = CODCallback(console=False)
    cod._join_log_stream()                       # no handler calls it
    assert cod.log_stream is False
    assert "could not put itself ahead of the Trainer's reporting callbacks" in caplog.text
    cod._unlogged = {"b": [{"cod/b/accuracy": 0.5, "cod/b/checkpoint_step": 5}]}
    state = TrainerState(global_step=7)
    state.log_history = [{"loss": 1.0, "step": 6}]
    logs = {"loss": 0.9}
    cod._add_to_log(state, logs)
    assert logs == {"loss": 0.9, "cod/b/accuracy": 0.5, "cod/b/checkpoint_step": 5}
    assert state.log_history == [{"loss": 1.0, "step": 6},
                                 {"cod/b/accuracy": 0.5, "cod/b/checkpoint_step": 5, "step": 7}]
    assert "is not the log being written" in caplog.text and not cod._unlogged
