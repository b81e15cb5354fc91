"""CODCallback in a real HF Trainer on a real tiny Llama, driving a real CODMonitor.

The monitor's evaluation workers run ``hf_jobs.read_weights`` (real weights read from
the snapshot, numpy only) instead of a model evaluator, to keep the tests fast.
"""

import glob
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from numpy.testing import assert_allclose

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("safetensors")

from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    Trainer,
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingArguments,
)

from cod_monitor.evaluators import EvalSet, EvaluatorConfigError
from cod_monitor.exceptions import InputError, ParameterError
from cod_monitor.integrations.hf import CallbackArgumentsError, CODCallback
from cod_monitor.monitor import (
    CODMonitor,
    DriftConfig,
    ForecastConfig,
    PoolConfig,
    QueuePolicy,
    read_journal,
)
from cod_monitor.synthetic import synthetic_ladder

pytestmark = pytest.mark.slow
BENCH = "synthetic"


def ladder_scale_compute(state, model):
    """The tiny run pretends to sit inside the synthetic ladder's compute range."""
    return 1e20 * state.global_step


class TinyData(torch.utils.data.Dataset):
    def __init__(self, n=256, length=16, vocab=64):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randint(0, vocab, (n, length), generator=g)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"input_ids": self.x[i], "labels": self.x[i]}


def tiny_llama():
    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, head_dim=16, max_position_embeddings=32))


def training_args(output_dir, max_steps, **kw):
    kw.setdefault("report_to", "none")
    return TrainingArguments(
        str(output_dir), max_steps=max_steps, per_device_train_batch_size=4, save_steps=5,
        save_total_limit=1, logging_steps=5, use_cpu=True, disable_tqdm=True, seed=0,
        learning_rate=1e-3, **kw)


def monitor_kwargs(out_dir, output_dir, *, accuracy=0.5, wait_rotated=(), **kw):
    return dict(
        ladder=synthetic_ladder(n_samples=300, n_models=6, seed=0).ladder,
        eval_sets={BENCH: BENCH},
        evaluator={"output_dir": str(output_dir), "accuracy": accuracy,
                   "wait_rotated": list(wait_rotated)},
        forecast=ForecastConfig(trajectory="compute", n_bootstrap=10, refresh_interval=None),
        pool=PoolConfig(job_fn="hf_jobs:read_weights", queue_policy=QueuePolicy(max_pending=10)),
        out_dir=str(out_dir), **kw)


def _events():
    return sorted(n for n in dir(TrainerCallback) if n.startswith("on_"))


class EventRecorderCallback(TrainerCallback):
    """Records (event, global_step, checkpoints CODCallback had submitted by then), and
    the checksum of the weights at every save; ``logs`` holds the logs each ``on_log``
    received (a copy)."""

    def __init__(self, cod=None):
        self.cod = cod
        self.events = []
        self.checksums = {}
        self.logs = []

    def _record(self, name, state, kwargs):
        self.events.append((name, state.global_step,
                            None if self.cod is None else list(self.cod.submitted_steps)))
        if name == "on_log":
            self.logs.append((state.global_step, dict(kwargs["logs"])))
        if name == "on_save":
            sd = kwargs["model"].state_dict()
            self.checksums[state.global_step] = float(sum(v.double().sum() for v in sd.values()))


for _name in _events():
    setattr(EventRecorderCallback, _name,
            lambda self, args, state, control, _n=_name, **kw: self._record(_n, state, kw))


class WaitForJudgement(TrainerCallback):
    """After each save, wait until the monitor has judged every checkpoint (tests only:
    makes the asynchronous stop decision land at a known step)."""

    def __init__(self, cod):
        self.cod = cod

    def on_save(self, args, state, control, **kwargs):
        assert self.cod.monitor.wait(timeout=60)


def journal(out_dir, kind):
    return [r for r in read_journal(os.path.join(out_dir, "journal.jsonl")) if r["kind"] == kind]


# --------------------------------------------------------------------------- a first run
@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("hf")
    output_dir, out_dir = base / "trainer", base / "cod"
    cod = CODCallback(
        CODMonitor(**monitor_kwargs(out_dir, output_dir, wait_rotated=[5])),
        compute_from=ladder_scale_compute, drain_timeout=120)
    recorder = EventRecorderCallback(cod)
    trainer = Trainer(model=tiny_llama(), args=training_args(output_dir, 20),
                      train_dataset=TinyData(), callbacks=[cod, recorder])
    trainer.train()
    return {"output_dir": output_dir, "out_dir": out_dir, "cod": cod, "recorder": recorder,
            "trainer": trainer}


def _extra_cod_log(step, logs):
    """A log the CODCallback asked for: between two regular logs (every 5 steps), or
    after the last one, holding only cod/* metrics (observations judged at the drain)."""
    return step % 5 != 0 or all(k.startswith("cod/") for k in logs)


def test_event_order_and_one_submission_per_save(first_run):
    rec = first_run["recorder"]
    assert rec.events[0][0] == "on_init_end"
    logs = iter(rec.logs)
    seen = [(n, s) for n, s, _ in rec.events
            if n in ("on_train_begin", "on_step_end", "on_log", "on_save", "on_train_end")
            and not (n == "on_log" and _extra_cod_log(*next(logs)))]
    expected = [("on_train_begin", 0)]
    for s in range(1, 21):
        expected.append(("on_step_end", s))
        if s % 5 == 0:
            expected += [("on_log", s), ("on_save", s)]
    expected += [("on_log", 20), ("on_train_end", 20)]  # the final metrics log
    assert seen == expected
    # CODCallback runs before the recorder: by each on_save it has submitted that step
    for name, step, submitted in rec.events:
        if name == "on_save":
            assert submitted == list(range(5, step + 1, 5))
    assert first_run["cod"].submitted_steps == [5, 10, 15, 20]
    assert first_run["cod"].compute_source == "callable"


def test_snapshot_survives_save_total_limit_rotation(first_run):
    out_dir, rec = first_run["out_dir"], first_run["recorder"]
    assert [os.path.basename(p) for p in glob.glob(str(first_run["output_dir"] / "checkpoint-*"))] \
        == ["checkpoint-20"]
    ckpts = journal(out_dir, "checkpoint")
    assert [r["step"] for r in ckpts] == [5, 10, 15, 20]
    assert_allclose([r["compute"] for r in ckpts], [5e20, 1e21, 1.5e21, 2e21])
    results = {r["step"]: r["result"]["meta"] for r in journal(out_dir, "result")}
    assert sorted(results) == [5, 10, 15, 20]
    # step 5 was read after the Trainer had deleted checkpoint-5, and holds its weights
    assert results[5]["original_exists"] is False
    for step, meta in results.items():
        assert_allclose(meta["checksum"], rec.checksums[step], rtol=1e-9)
    summary = first_run["cod"].summary_
    assert summary["benchmarks"][BENCH]["observations"] == 4
    assert summary["benchmarks"][BENCH]["last_step"] == 20
    assert first_run["cod"].n_observations == 4  # including those judged at the drain


def test_every_observation_reaches_the_log_history_once(first_run):
    key = f"cod/{BENCH}/checkpoint_step"
    rows = [h for h in first_run["trainer"].state.log_history if key in h]
    # during training or, when judged at the drain, in logs of their own at the end
    assert [h[key] for h in rows] == [5, 10, 15, 20]
    assert all(h["step"] >= h[key] and h[f"cod/{BENCH}/accuracy"] == 0.5 for h in rows)
    # a callback after the CODCallback (as the printer) got them in its on_log
    assert [logs[key] for _, logs in first_run["recorder"].logs if key in logs] == [5, 10, 15, 20]
    assert first_run["cod"].summary_["status"] == "finished"


def test_resume_restores_callback_state(first_run):
    output_dir, out_dir = first_run["output_dir"], first_run["out_dir"]
    saved = json.loads(Path(output_dir / "checkpoint-20" / "trainer_state.json").read_text())
    assert saved["stateful_callbacks"]["CODCallback"]["attributes"]["submitted_steps"] == [5, 10, 15, 20]

    cod2 = CODCallback(CODMonitor(**monitor_kwargs(out_dir, output_dir)),
                       compute_from=ladder_scale_compute, drain_timeout=120)
    trainer = Trainer(model=tiny_llama(),
                      args=training_args(output_dir, 30, restore_callback_states_from_checkpoint=True),
                      train_dataset=TinyData(), callbacks=[cod2])
    trainer.train(resume_from_checkpoint=str(output_dir / "checkpoint-20"))

    (live,) = [c for c in trainer.callback_handler.callbacks if isinstance(c, CODCallback)]
    assert live is not cod2                 # the Trainer rebuilt it from trainer_state.json
    assert live.monitor is cod2.monitor     # ... with the monitor passed to the resumed run
    assert live.submitted_steps == [5, 10, 15, 20, 25, 30]
    steps = [r["step"] for r in journal(out_dir, "checkpoint")]
    assert steps == [5, 10, 15, 20, 25, 30]  # nothing submitted twice
    assert live.summary_["benchmarks"][BENCH]["observations"] == 6


# --------------------------------------------------------------------------- drift stop
def test_stop_on_drift_stops_at_the_next_step(tmp_path):
    output_dir, out_dir = tmp_path / "trainer", tmp_path / "cod"
    cod = CODCallback(stop_on_drift=True, compute_from=ladder_scale_compute, drain_timeout=60,
                      trackers=[],
                      **monitor_kwargs(out_dir, output_dir, accuracy=0.0,
                                       drift=DriftConfig(patience=1)))
    trainer = Trainer(model=tiny_llama(), args=training_args(output_dir, 40),
                      train_dataset=TinyData(), callbacks=[cod, WaitForJudgement(cod)])
    trainer.train()
    assert cod.monitor.stop_requested
    assert cod.stopped_at == 6 and trainer.state.global_step == 6
    (alert,) = journal(out_dir, "alert")
    assert alert["reason"] == "below_band" and alert["step"] == 5
    # the summary says what happened, and the stop is in the journal
    s = cod.summary_
    assert (s["status"], s["stopped_at"], s["stop_reason"]) == ("stopped_by_drift", 6, "drift")
    assert s["drift_detected"] is True and s["stop_requested"] is True
    assert [(r["step"], r["reason"]) for r in journal(out_dir, "stopped")] == [(6, "drift")]


# --------------------------------------------------------------------------- W&B
def test_cod_keys_land_in_the_trainers_wandb_run(tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_CONSOLE", "off")
    output_dir = tmp_path / "trainer"
    kwargs = monitor_kwargs(output_dir / "cod_monitor", output_dir)
    del kwargs["out_dir"]                   # default: <output_dir>/cod_monitor
    cod = CODCallback(compute_from=ladder_scale_compute, drain_timeout=120, **kwargs)
    trainer = Trainer(model=tiny_llama(), args=training_args(output_dir, 10, report_to="wandb"),
                      train_dataset=TinyData(), callbacks=[cod])
    try:
        trainer.train()
        assert wandb.run is not None        # the Trainer's run, left open by the tracker
        run_id = wandb.run.id
    finally:
        wandb.finish()
        wandb.teardown()

    (run_dir,) = glob.glob(str(tmp_path / "wandb" / "offline-run-*"))
    assert run_dir.endswith(run_id)
    out = subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", "--json", run_dir],
                         check=True, capture_output=True, text=True, timeout=60).stdout
    records = [json.loads(line) for line in out.splitlines()]
    items = [r["history"]["item"] for r in records if r["type"] == "history"]
    assert any("train/loss" in i for i in items)
    # the scalars come through the Trainer's log stream (its WandbCallback adds "train/")
    p = f"train/cod/{BENCH}"
    cod_rows = [i for i in items if f"{p}/accuracy" in i]
    assert sorted(i[f"{p}/checkpoint_step"] for i in cod_rows) == [5, 10]
    assert_allclose([i[f"{p}/accuracy"] for i in cod_rows], [0.5, 0.5])
    assert all(f"{p}/forecast" in i and "train/global_step" in i for i in cod_rows)
    # one series per quantity: the tracker logs no scalar series of its own in this run
    from cod_monitor.trackers.wandb import COMPUTE_METRICS, STEP_METRICS

    own = {f"cod/{BENCH}/{n}" for n in STEP_METRICS} | {
        f"cod/{BENCH}/by_compute/{n}" for n in COMPUTE_METRICS}
    assert not [k for i in items for k in i if k in own]
    assert any(k.startswith(f"cod/{BENCH}/forecast_vs_observed") for i in items for k in i)  # chart
    metrics = {r["metric"].get("name"): r["metric"] for r in records if r["type"] == "metric"}
    # plotted against the checkpoint's step: the tracker's explicit axis wins over the
    # Trainer's define_metric("*", step_metric="train/global_step")
    assert metrics[f"{p}/accuracy"]["step_metric"] == f"{p}/checkpoint_step"
    assert any(m.get("glob_name") == "*" and m.get("step_metric") == "train/global_step"
               for m in (r["metric"] for r in records if r["type"] == "metric"))
    summary = {}
    for r in records:
        if r["type"] == "summary":
            summary.update(r["summary"].get("update", {}))
    assert summary[f"cod/{BENCH}/n_observations"] == 2
    assert summary[f"cod/{BENCH}/last_observed"] == 0.5 and summary["cod/summary/status"] == "finished"
    assert not [k for k in summary if k.startswith("train/cod/")]  # one key per quantity
    assert os.path.exists(output_dir / "cod_monitor" / "report.html")  # the default LocalTracker
    history = [h for h in trainer.state.log_history if f"cod/{BENCH}/accuracy" in h]
    assert sorted(h[f"cod/{BENCH}/checkpoint_step"] for h in history) == [5, 10]
    handler = [type(c).__name__ for c in trainer.callback_handler.callbacks]
    assert handler.index("CODCallback") < handler.index("WandbCallback")


# --------------------------------------------------------------------------- unit level
def test_other_ranks_do_nothing(tmp_path):
    monitor = CODMonitor(**monitor_kwargs(tmp_path / "cod", tmp_path / "trainer"))
    cod = CODCallback(monitor)
    args = training_args(tmp_path / "trainer", 10)
    state, control = TrainerState(is_world_process_zero=False, global_step=5), TrainerControl()
    for event in ("on_train_begin", "on_step_end", "on_log", "on_save", "on_train_end"):
        assert getattr(cod, event)(args, state, control) is None
    assert not (tmp_path / "cod").exists()  # never started
    assert cod.submitted_steps == []


@pytest.mark.parametrize(
    "compute_from, tokens, flos, expected, source",
    [
        ("auto", 1000, 123.0, "6ND", "6*N*tokens"),
        ("tokens", 1000, 123.0, "6ND", "6*N*tokens"),
        ("total_flos", 1000, 123.0, 123.0, "total_flos"),
        ("auto", 0, 123.0, 123.0, "total_flos"),
        ("tokens", 0, 123.0, None, None),
        ("auto", 0, 0.0, None, None),
        (lambda state, model: 7.0 * state.global_step, 0, 0.0, 21.0, "callable"),
    ],
)
def test_compute_from(compute_from, tokens, flos, expected, source):
    model = tiny_llama()
    cod = CODCallback(compute_from=compute_from)
    state = TrainerState(global_step=3, num_input_tokens_seen=tokens, total_flos=flos)
    got_tokens, compute = cod._compute(state, model)
    assert got_tokens == (tokens or None)
    if expected == "6ND":
        expected = 6.0 * model.num_parameters() * tokens
    assert compute == expected and cod.compute_source == source


def test_state_is_json_and_parameters_are_checked(tmp_path):
    cod = CODCallback(compute_from=ladder_scale_compute,
                      ladder=synthetic_ladder(n_samples=30, seed=0).ladder, eval_sets={"b": "b"})
    state = json.loads(json.dumps(cod.state()))
    assert state["attributes"]["submitted_steps"] == [] and state["args"]["compute_from"] == "auto"
    with pytest.raises(ValueError, match="The 'compute_from' parameter of CODCallback"):
        CODCallback(compute_from="flops")
    with pytest.raises(TypeError, match="either a monitor or CODMonitor keyword arguments"):
        CODCallback(CODMonitor(**monitor_kwargs(tmp_path, tmp_path)), out_dir="x")


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(ladderr="ladder/"), CallbackArgumentsError,
         r"CODCallback got an unexpected keyword argument 'ladderr'\. Did you mean 'ladder'\? "
         r"It accepts monitor, ladder, eval_sets, evaluator, .*, compute_from, console;"),
        (dict(stop_on_drfit=True), CallbackArgumentsError, "Did you mean 'stop_on_drift'"),
        (dict(poll_interval=-1), CallbackArgumentsError,
         r"unexpected keyword argument 'poll_interval'\. It accepts .* ready monitor=CODMonitor"),
        (dict(stop_on_drift="no"), ParameterError,
         r"The 'stop_on_drift' parameter of CODCallback must be an instance of 'bool'\. Got 'no'"),
        (dict(drain_timeout=-5), ParameterError, r"'drain_timeout' parameter of CODCallback.*Got -5"),
        (dict(monitor="monitor"), ParameterError, "'monitor' parameter of CODCallback"),
        # the monitor's arguments are checked now, not at the first event
        (dict(ladder="ladder/", eval_sets={BENCH: "b.jsonl"}, evaluator={"backend": "hf", "mdoe": "exact"}),
         EvaluatorConfigError, r"The 'evaluator' parameter of CODCallback .*did you mean 'mode'"),
        (dict(ladder="ladder/", eval_sets={BENCH: "b.jsonl"}, run_name=3), ParameterError,
         "'run_name' parameter of CODCallback"),
        (dict(ladder="ladder/", eval_sets={BENCH: "b.jsonl"}, trackers=[object()]), ParameterError,
         "'trackers' parameter of CODCallback"),
        (dict(eval_sets={BENCH: "b.jsonl"}), ParameterError,
         r"'ladder' parameter of CODCallback .* Pass ladder= and eval_sets="),
        (dict(ladder="ladder/", out_dir="x"), ParameterError, "'eval_sets' parameter of CODCallback"),
    ],
)
def test_mistakes_fail_when_the_callback_is_built(kwargs, error, match):
    with pytest.raises(error, match=match) as info:
        CODCallback(**kwargs)
    if error is CallbackArgumentsError:
        assert isinstance(info.value, TypeError)


def test_on_train_begin_refuses_an_eval_set_that_is_not_the_ladders(tmp_path):
    syn = synthetic_ladder(n_samples=300, n_models=6, seed=0)
    ids = list(syn.ladder.matrix(BENCH).sample_ids)
    subset = EvalSet.from_records([{"id": s, "prompt": "q", "answer": "a"} for s in ids[::6]],
                                  name=BENCH)
    kwargs = monitor_kwargs(tmp_path / "cod", tmp_path / "trainer")
    kwargs.update(ladder=syn.ladder, eval_sets={BENCH: subset})
    cod = CODCallback(**kwargs)
    args = training_args(tmp_path / "trainer", 10)
    with pytest.raises(InputError, match=r"the ladder has 300 sample ids, the evaluation set 50, "
                                         r"and 50 are in common"):
        cod.on_train_begin(args, TrainerState(is_world_process_zero=True), TrainerControl())
    assert not (tmp_path / "cod").exists()


# ------------------------------------------------------------------ several ranks
RANK_SCRIPT = r"""
import json, sys, types
import torch.distributed as dist
from transformers import TrainerControl, TrainerState
from cod_monitor.evaluators import EvalSet, EvaluatorConfigError
from cod_monitor.exceptions import InputError, ParameterError
from cod_monitor.integrations.hf import CallbackArgumentsError, CODCallback

rank, init, rank0_stops = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "1"
dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
cb = CODCallback(stop_on_drift=True)
# only rank 0 runs a monitor; its drift decision is what the ranks must agree on
cb.monitor = types.SimpleNamespace(stop_requested=rank0_stops) if rank == 0 else None
state = TrainerState(global_step=40, is_world_process_zero=rank == 0)
control = TrainerControl()
in_step = cb._maybe_stop(state, control)  # a step/log event must not stop one rank alone
synced = cb._sync_stop(None, state, control)  # the checkpoint-time collective
print(json.dumps({"rank": rank, "step_event_stopped": in_step is not None, "synced": synced,
                  "stop": control.should_training_stop, "stopped_at": cb.stopped_at}))
dist.destroy_process_group()
"""


@pytest.mark.parametrize("rank0_stops", [True, False])
def test_stop_on_drift_reaches_every_rank_at_a_checkpoint(tmp_path, rank0_stops):
    init = f"file://{tmp_path / 'rendezvous'}"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", RANK_SCRIPT, str(r), init,
                               "1" if rank0_stops else "0"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for r in (0, 1)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    for r in results:
        assert r["step_event_stopped"] is False  # never one rank alone, mid-step
        assert r["stop"] is rank0_stops and r["synced"] is rank0_stops
        assert r["stopped_at"] == (40 if rank0_stops else None)
