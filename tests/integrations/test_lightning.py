"""The Lightning CODCallback in real CPU training of a tiny HF Llama, driving a real
CODMonitor with real spawned evaluation workers.

The workers run ``lightning_jobs.snapshot_weights`` (the snapshot's real weights, read
with numpy) to keep the tests fast; ``test_example_runs_the_hf_evaluator`` runs the
real HF evaluator on every checkpoint of ``examples/lightning_loop.py``.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from numpy.testing import assert_allclose

pytest.importorskip("lightning")
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("safetensors")

from lightning.pytorch.plugins.io import TorchCheckpointIO  # noqa: E402
from lightning_parts import (  # noqa: E402
    BENCH,
    LitLlama,
    WaitForJudgement,
    ladder_scale_compute,
    loader,
    make_trainer,
    monitor_kwargs,
)

from cod_monitor.demo.tokenizer import build_tokenizer  # noqa: E402
from cod_monitor.evaluators.base import CheckpointError  # noqa: E402
from cod_monitor.evaluators.loading import load_hf_checkpoint  # noqa: E402
from cod_monitor.exceptions import ParameterError  # noqa: E402
from cod_monitor.integrations.lightning import (  # noqa: E402
    CallbackArgumentsError,
    CODCallback,
    ckpt_to_hf,
    hf_state_dict,
    read_ckpt_weights,
)
from cod_monitor.monitor import CheckpointConfig, CODMonitor, DriftConfig, PoolConfig, read_journal  # noqa: E402
from cod_monitor.synthetic import synthetic_run  # noqa: E402

pytestmark = pytest.mark.slow
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TOKENS_PER_STEP = 4 * 16  # batch x sequence length, one process


def journal(out_dir, kind):
    return [r for r in read_journal(os.path.join(out_dir, "journal.jsonl")) if r["kind"] == kind]


def ckpt_checksum(path):
    """Sum of the HF model's weights in a .ckpt (read safely)."""
    return float(sum(t.double().sum() for t in read_ckpt_weights(path).values()))


def ckpt(root, step):
    return Path(root) / "ckpt" / f"step={step}.ckpt"


# --------------------------------------------------------------------------- a first run
@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("lightning")
    cod = CODCallback(tokenizer=build_tokenizer(), compute_from=ladder_scale_compute,
                      drain_timeout=120, trackers=[], **monitor_kwargs(root / "cod"))
    trainer = make_trainer(root, 20, [cod])
    trainer.fit(LitLlama(), loader())
    return {"root": root, "out_dir": root / "cod", "cod": cod, "trainer": trainer}


def test_every_checkpoint_is_evaluated_as_written_including_the_final_one(first_run):
    root, out_dir, cod = first_run["root"], first_run["out_dir"], first_run["cod"]
    saved = sorted(int(p.stem.split("=")[1]) for p in (root / "ckpt").glob("*.ckpt"))
    assert saved == [5, 10, 15, 20]                   # step 20: the last step's save
    assert cod.submitted_steps == [5, 10, 15, 20]
    ckpts = journal(out_dir, "checkpoint")
    assert [r["step"] for r in ckpts] == [5, 10, 15, 20]
    # tokens from the batches' geometry; compute from the callable
    assert_allclose([r["tokens"] for r in ckpts], [s * TOKENS_PER_STEP for s in (5, 10, 15, 20)])
    assert_allclose([r["compute"] for r in ckpts], [5e20, 1e21, 1.5e21, 2e21])
    assert cod.compute_source == "callable" and cod.tokens_seen == 20 * TOKENS_PER_STEP
    results = {r["step"]: r["result"]["meta"] for r in journal(out_dir, "result")}
    assert sorted(results) == [5, 10, 15, 20]
    for step, meta in results.items():
        # the evaluated weights are the .ckpt's HF model, under HF names, nothing else
        assert_allclose(meta["checksum"], ckpt_checksum(ckpt(root, step)), rtol=1e-9)
        assert "lm_head.weight" in meta["keys"] and not any("extra_head" in k for k in meta["keys"])
        assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(meta["files"])
    summary = cod.summary_
    assert summary["benchmarks"][BENCH]["observations"] == 4
    assert summary["benchmarks"][BENCH]["last_step"] == 20
    assert cod.n_observations == 4                     # including those judged at the drain


def test_the_strategys_checkpoint_io_is_put_back(first_run):
    assert type(first_run["trainer"].strategy.checkpoint_io) is TorchCheckpointIO


def test_the_callback_state_is_in_the_checkpoint(first_run):
    state = torch.load(ckpt(first_run["root"], 20), weights_only=True)["callbacks"]["CODCallback"]
    assert state == {"submitted_steps": [5, 10, 15, 20], "n_observations": state["n_observations"],
                     "stopped_at": None, "tokens_seen": 20.0 * TOKENS_PER_STEP,
                     "compute_source": "callable"}


def test_a_ckpt_converts_to_a_directory_the_evaluator_loads(first_run, tmp_path):
    path = ckpt(first_run["root"], 10)
    dest = ckpt_to_hf(path, tmp_path / "hf", config_dir=first_run["out_dir"] / "hf_config")
    model, tokenizer, owned, _ = load_hf_checkpoint(dest)
    expected = read_ckpt_weights(path)
    got = model.state_dict()
    assert owned and set(expected) <= set(got)
    for name, tensor in expected.items():
        assert torch.equal(got[name], tensor), name
    assert tokenizer("1+2=")["input_ids"] == build_tokenizer()("1+2=")["input_ids"]


def test_resume_continues_without_duplicating(first_run):
    root, out_dir = first_run["root"], first_run["out_dir"]
    cod2 = CODCallback(CODMonitor(**monitor_kwargs(out_dir), trackers=[]),
                       tokenizer=build_tokenizer(), compute_from=ladder_scale_compute,
                       drain_timeout=120)
    trainer = make_trainer(root, 30, [cod2])
    trainer.fit(LitLlama(), loader(), ckpt_path=str(ckpt(root, 20)))
    assert cod2.submitted_steps == [5, 10, 15, 20, 25, 30]  # restored, then 25 and 30
    assert cod2.tokens_seen == 30 * TOKENS_PER_STEP         # counting went on from the state
    ckpts = journal(out_dir, "checkpoint")
    assert [r["step"] for r in ckpts] == [5, 10, 15, 20, 25, 30]  # nothing submitted twice
    assert [r["step"] for r in journal(out_dir, "result")] == [5, 10, 15, 20, 25, 30]
    assert_allclose(ckpts[-1]["tokens"], 30 * TOKENS_PER_STEP)
    assert cod2.summary_["benchmarks"][BENCH]["observations"] == 6


def test_a_resumed_ckpt_written_without_the_callback_is_read_safely(tmp_path):
    make_trainer(tmp_path, 5, []).fit(LitLlama(), loader())  # no callback: no state for it
    out_dir = tmp_path / "cod"
    cod = CODCallback(tokenizer=build_tokenizer(), drain_timeout=120, trackers=[],
                      **monitor_kwargs(out_dir))
    make_trainer(tmp_path, 10, [cod]).fit(LitLlama(), loader(), ckpt_path=str(ckpt(tmp_path, 5)))
    assert cod.submitted_steps == [5, 10]
    ckpts = journal(out_dir, "checkpoint")
    assert [r["step"] for r in ckpts] == [5, 10]
    meta = {r["step"]: r["result"]["meta"] for r in journal(out_dir, "result")}
    assert_allclose(meta[5]["checksum"], ckpt_checksum(ckpt(tmp_path, 5)), rtol=1e-9)
    assert_allclose(meta[10]["checksum"], ckpt_checksum(ckpt(tmp_path, 10)), rtol=1e-9)
    # tokens before the resume are estimated from the batch geometry; compute is 6ND
    n = LitLlama().model.num_parameters()
    assert_allclose(ckpts[1]["tokens"], 10 * TOKENS_PER_STEP)
    assert_allclose(ckpts[1]["compute"], 6.0 * n * 10 * TOKENS_PER_STEP)
    assert cod.compute_source == "6*N*tokens"
    assert cod.monitor.run.params == n  # the HF model's parameter count, by default
    assert not list(out_dir.glob(".tmp-*"))  # the staging directory is gone


# --------------------------------------------------------------------------- drift stop
def test_stop_on_drift_stops_at_the_next_step(tmp_path):
    out_dir = tmp_path / "cod"
    cod = CODCallback(stop_on_drift=True, tokenizer=build_tokenizer(),
                      compute_from=ladder_scale_compute, drain_timeout=60, trackers=[],
                      **monitor_kwargs(out_dir, accuracy=0.0, drift=DriftConfig(patience=1)))
    trainer = make_trainer(tmp_path, 40, [WaitForJudgement(cod), cod])
    trainer.fit(LitLlama(), loader())
    assert cod.monitor.stop_requested
    assert cod.stopped_at == 6 and trainer.global_step == 6
    (alert,) = journal(out_dir, "alert")
    assert alert["reason"] == "below_band" and alert["step"] == 5


def test_the_metrics_reach_the_trainers_logger_and_the_stop_is_recorded(tmp_path):
    from lightning.pytorch.loggers import CSVLogger

    out_dir = tmp_path / "cod"
    cod = CODCallback(stop_on_drift=True, tokenizer=build_tokenizer(),
                      compute_from=ladder_scale_compute, drain_timeout=60, trackers=[],
                      **monitor_kwargs(out_dir, accuracy=0.0, drift=DriftConfig(patience=1)))
    cod.poll_every_s = 0  # every optimizer step collects what was judged
    csv = CSVLogger(tmp_path / "logs", name="run", version=0)
    trainer = make_trainer(tmp_path, 40, [WaitForJudgement(cod), cod], logger=csv)
    trainer.fit(LitLlama(), loader())
    assert trainer.global_step == 6
    # checkpoint 5, judged at step 6, logged at step 6 through the Trainer's logger
    import csv as csv_module

    with open(Path(csv.log_dir) / "metrics.csv") as fh:
        rows = [r for r in csv_module.DictReader(fh) if r.get(f"cod/{BENCH}/checkpoint_step")]
    assert [(int(r["step"]), int(float(r[f"cod/{BENCH}/checkpoint_step"]))) for r in rows] == [(6, 5)]
    assert float(rows[0][f"cod/{BENCH}/accuracy"]) == 0.0
    assert int(float(rows[0][f"cod/{BENCH}/alerting"])) == 1 and rows[0][f"cod/{BENCH}/forecast"]
    # the summary says the run was stopped, and where
    s = cod.summary_
    assert (s["status"], s["stopped_at"], s["drift_detected"]) == ("stopped_by_drift", 6, True)
    assert [r["step"] for r in journal(out_dir, "stopped")] == [6]


def test_two_ddp_processes_stop_together_and_only_rank_0_monitors(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(HERE / "lightning_ddp.py"), str(tmp_path)],
                          capture_output=True, text=True, timeout=400, env=env, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank-{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert [r["global_step"] for r in ranks] == [6, 6]      # both left the loop at step 6
    assert [r["stopped_at"] for r in ranks] == [6, 6]
    assert [r["has_monitor"] for r in ranks] == [True, False]
    assert ranks[0]["submitted_steps"] == [5] and ranks[1]["submitted_steps"] == []
    assert ranks[0]["observations"] == 1
    (record,) = journal(tmp_path / "cod", "checkpoint")
    assert record["step"] == 5 and record["tokens"] == 5 * TOKENS_PER_STEP * 2  # x world size


# --------------------------------------------------------------------------- the example
def test_example_runs_the_hf_evaluator_on_every_checkpoint(tmp_path):
    """examples/lightning_loop.py: a real tiny Llama, the HF evaluator in a worker."""
    from cod_monitor.demo.tasks import TaskGenerator

    # the example evaluates exactly the ladder's samples (150 of them here, to keep it quick)
    ids = [sid for sid, _ in TaskGenerator(seed=0).eval_samples][::8]
    run = synthetic_run(n_samples=len(ids), sample_ids=ids, benchmark="demo", seed=0)
    run.ladder.without_models([m.name for m in run.ladder.models_with_role("target")]).save(tmp_path / "ladder")
    example = ROOT / "examples" / "lightning_loop.py"
    proc = subprocess.run([sys.executable, str(example), "--tiny", "--steps", "4", "--every", "2",
                           "--ladder", str(tmp_path / "ladder"), "--out-dir", str(tmp_path / "out")],
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True,
                          text=True, timeout=400, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "checkpoints handed to the monitor: [2, 4]" in proc.stdout
    out = tmp_path / "out" / "cod_monitor"
    assert [r["step"] for r in journal(out, "checkpoint")] == [2, 4]  # step 4: the last step
    results = journal(out, "result")
    assert [r["step"] for r in results] == [2, 4]
    assert all(r["result"]["mode"] == "exact" and len(r["result"]["pass_rates"]) == len(ids)
               for r in results)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["benchmarks"]["demo"]["observations"] == 2
    assert summary["benchmarks"]["demo"]["mode"] == "blend"


def test_the_readme_snippet_is_the_examples_code():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Lightning\n", 1)[1].split("\n## ", 1)[0]
    snippet = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    example = (ROOT / "examples" / "lightning_loop.py").read_text()
    lines = [line.split("  #")[0].strip() for line in snippet.splitlines()]
    for line in filter(None, lines):
        assert line in example, line


# --------------------------------------------------------------------------- unit level
def test_hf_weights_are_the_attribute_prefix_removed():
    sd = {"model.lm_head.weight": 1, "model.model.norm.weight": 2, "head.weight": 3,
          "net.backbone._orig_mod.lm_head.weight": 4}
    assert hf_state_dict(sd) == {"lm_head.weight": 1, "model.norm.weight": 2}
    assert hf_state_dict(sd, "net.backbone") == {"lm_head.weight": 4}
    with pytest.raises(CheckpointError, match=r"No weight .* starts with 'backbone\.'; its keys "
                                              r"start with \['head', 'model', 'net'\]\. Set hf_model_attr="):
        hf_state_dict(sd, "backbone")


def _touch(path):  # what a malicious pickle would run
    Path(path).write_text("ran")


class _Payload:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return _touch, (self.path,)


def test_a_ckpt_with_pickled_objects_is_refused_not_run(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"model.w": torch.ones(2)}, "hook": _Payload(str(marker))}, path)
    with pytest.raises(CheckpointError, match=r"loads \.ckpt files only with "
                                              r"torch\.load\(weights_only=True\)"):
        read_ckpt_weights(path)
    assert not marker.exists()
    torch.save({"weights": {"model.w": torch.ones(2)}}, tmp_path / "plain.ckpt")
    with pytest.raises(CheckpointError, match="not a Lightning checkpoint"):
        read_ckpt_weights(tmp_path / "plain.ckpt")
    with pytest.raises(FileNotFoundError):
        read_ckpt_weights(tmp_path / "missing.ckpt")


def test_a_wrong_model_attribute_stops_before_training(tmp_path):
    cod = CODCallback(hf_model_attr="net", tokenizer=build_tokenizer(), trackers=[],
                      **monitor_kwargs(tmp_path / "cod"))
    trainer = make_trainer(tmp_path, 10, [cod])
    with pytest.raises(ParameterError, match=r"The 'hf_model_attr' parameter of CODCallback .* "
                                             r"Got 'net' instead\. LitLlama has no attribute 'net'"):
        trainer.fit(LitLlama(), loader())
    assert trainer.global_step == 0 and not (tmp_path / "cod").exists()
    assert not list(tmp_path.glob("ckpt/*.ckpt"))


def test_state_round_trips_through_json():
    cod = CODCallback()
    cod.load_state_dict(json.loads(json.dumps({"submitted_steps": [10, 5], "n_observations": 2,
                                               "stopped_at": None, "tokens_seen": 640.0,
                                               "compute_source": "6*N*tokens"})))
    assert cod.submitted_steps == [5, 10] and cod.tokens_seen == 640.0
    assert json.loads(json.dumps(cod.state_dict()))["submitted_steps"] == [5, 10]


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(hf_model_atr="model"), CallbackArgumentsError,
         r"unexpected keyword argument 'hf_model_atr'\. Did you mean 'hf_model_attr'\? It accepts "
         r"monitor, ladder, .*, drain_timeout, console;"),
        (dict(hf_model_attr="model.0"), ParameterError, r"'hf_model_attr' parameter of CODCallback"),
        (dict(hf_model_attr=""), ParameterError, r"'hf_model_attr' parameter"),
        (dict(tokenizer=3), ParameterError, r"'tokenizer' parameter .* Got 'int' instead"),
        (dict(tokenizer="/no/such/dir"), ParameterError, r"'tokenizer' parameter .* No such directory"),
        (dict(tokens_per_step=0), ParameterError, r"'tokens_per_step' parameter .* Got 0 instead"),
        (dict(compute_from="total_flos"), ParameterError,
         r"'compute_from' parameter of CODCallback must be 'tokens' or a callable"),
        (dict(stop_on_drift=1), ParameterError, r"'stop_on_drift' parameter .* 'bool'"),
        (dict(stop_check_every_n_steps=0), ParameterError, r"'stop_check_every_n_steps' parameter"),
        (dict(drain_timeout=-1), ParameterError, r"'drain_timeout' parameter"),
        (dict(monitor="m"), ParameterError, r"'monitor' parameter of CODCallback"),
        (dict(eval_sets={BENCH: "b.jsonl"}), ParameterError,
         r"'ladder' parameter of CODCallback .* Pass ladder= and eval_sets="),
        (dict(ladder="ladder/", eval_sets={BENCH: "b.jsonl"}, evaluator={"backend": "hf", "mdoe": "x"}),
         ParameterError, r"'evaluator' parameter of CODCallback .*did you mean 'mode'"),
        # the default evaluator loads a tokenizer: one must be given
        (dict(ladder="ladder/", eval_sets={BENCH: "b.jsonl"}), ParameterError,
         r"'tokenizer' parameter of CODCallback must be given when the monitor evaluates with "
         r"its evaluator\. Got None instead\. Pass tokenizer="),
    ],
)
def test_mistakes_fail_when_the_callback_is_built(kwargs, error, match):
    with pytest.raises(error, match=match):
        CODCallback(**kwargs)


def test_a_tokenizer_is_not_needed_with_a_job_function_or_a_config_dir(tmp_path):
    CODCallback(ladder="ladder/", eval_sets={BENCH: BENCH},
                pool=PoolConfig(job_fn="lightning_jobs:snapshot_weights"))
    CODCallback(ladder="ladder/", eval_sets={BENCH: "b.jsonl"},
                checkpoints=CheckpointConfig(config_dir=tmp_path))
    with pytest.raises(CallbackArgumentsError, match="either a monitor or CODMonitor keyword"):
        CODCallback(CODMonitor(**monitor_kwargs(tmp_path)), out_dir="x")


def test_import_cod_monitor_integrations_does_not_import_lightning():
    code = ("import sys, cod_monitor, cod_monitor.integrations, cod_monitor.monitor; "
            "print([m for m in ('lightning', 'pytorch_lightning', 'torch') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
