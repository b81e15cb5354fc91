"""CODMonitor end to end: real worker processes, real files, a synthetic run.

The "training loop" writes each checkpoint as a directory holding the pass rates the
synthetic run measured there (``pass_rates.json``), calls ``on_checkpoint`` and deletes
the checkpoint at once (as ``save_total_limit`` would); the pool's job function
(``monitor_jobs.from_snapshot``) reads the pass rates back from the snapshot.
"""

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from cod_monitor.monitor import (
    ALERT_LOGGER,
    CheckpointConfig,
    CODMonitor,
    DriftConfig,
    ForecastConfig,
    PoolConfig,
    QueuePolicy,
    RunGeometry,
    read_journal,
)
from cod_monitor.evaluators import EvalSet, EvaluatorConfigError
from cod_monitor.exceptions import InputError, ParameterError
from cod_monitor.records import AlertReason
from cod_monitor.synthetic import synthetic_run
from cod_monitor.trackers.base import Tracker

HERE = Path(__file__).resolve().parent
JOB = "monitor_jobs:from_snapshot"


class Recorder:
    """A tracker that records every call, in order."""

    def __init__(self):
        self.events = []

    def start(self, run_info):
        self.events.append(("start", run_info))

    def log_forecast(self, benchmark, version, curve, report):
        self.events.append(("log_forecast", (benchmark, version, curve, report)))

    def log_observation(self, observation, forecast):
        self.events.append(("log_observation", (observation, forecast)))

    def log_alert(self, alert):
        self.events.append(("log_alert", alert))

    def finish(self, summary):
        self.events.append(("finish", summary))

    def of(self, kind):
        return [e[1] for e in self.events if e[0] == kind]


class Broken(Recorder):
    def log_observation(self, observation, forecast):
        raise RuntimeError("tracker bug")


def _write_checkpoint(root, run, j):
    t = run.target[j]
    d = Path(root) / f"checkpoint-{t['step']}"
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.json").write_text("{}")
    (d / "pass_rates.json").write_text(json.dumps(
        {"sample_ids": run.sample_ids, run.benchmark: run.target_pass_rates[:, j].tolist()}))
    (d / "optimizer.pt").write_bytes(b"x" * 1000)
    return d


def _ladder_dir(tmp_path_factory, run, name):
    d = tmp_path_factory.mktemp(name)
    ladder = run.ladder.without_models([m.name for m in run.ladder.models_with_role("target")])
    ladder.save(d / "ladder")
    return d / "ladder"


@pytest.fixture(scope="module")
def healthy(tmp_path_factory):
    run = synthetic_run(n_samples=300, seed=1)
    return run, _ladder_dir(tmp_path_factory, run, "healthy")


@pytest.fixture(scope="module")
def sabotaged(tmp_path_factory):
    run = synthetic_run(n_samples=300, seed=1, sabotage_at=0.35, slowdown=10.0)
    return run, _ladder_dir(tmp_path_factory, run, "sabotaged")


def _monitor(ladder_dir, out_dir, run, *, n_bootstrap=20, refresh_interval=None,
             trajectory="auto", trajectory_method=None, run_sd=None, max_steps=None,
             tokens_per_step=None, config_dir=None, learning_rate=None,
             condition_on_run=True, eval_sets=None, **kw):
    forecast = ForecastConfig(trajectory=trajectory, trajectory_method=trajectory_method,
                              n_bootstrap=n_bootstrap, run_sd=run_sd,
                              refresh_interval=refresh_interval,
                              condition_on_run=condition_on_run)
    return CODMonitor(ladder_dir, eval_sets or {run.benchmark: run.benchmark}, {},
                      forecast=forecast,
                      pool=PoolConfig(job_fn=JOB, queue_policy=QueuePolicy(max_pending=100)),
                      run=RunGeometry(params=run.target_params, tokens_per_step=tokens_per_step,
                                      max_steps=max_steps, learning_rate=learning_rate),
                      checkpoints=CheckpointConfig(config_dir=config_dir), out_dir=out_dir, **kw)


def _train(monitor, run, ckpt_root, indices=None, delete=True):
    for j in range(len(run.target)) if indices is None else indices:
        d = _write_checkpoint(ckpt_root, run, j)
        t0 = time.perf_counter()
        monitor.on_checkpoint(run.target[j]["step"], tokens=run.target[j]["tokens"], path=d)
        assert time.perf_counter() - t0 < 1.0  # the training loop is not held up
        if delete:
            shutil.rmtree(d)  # save_total_limit rotation right after on_save


def test_healthy_run_end_to_end(healthy, tmp_path):
    run, ladder_dir = healthy
    rec, broken = Recorder(), Broken()
    alerts = []
    out = tmp_path / "cod"
    with _monitor(ladder_dir, out, run, trackers=[rec, broken], alert_callback=alerts.append,
                  max_steps=run.target[-1]["step"], tokens_per_step=2048.0) as monitor:
        _train(monitor, run, tmp_path / "ckpt")
        assert monitor.wait(timeout=120)
        assert monitor.forecaster(run.benchmark).mode_ == "blend"
    summary = json.loads((out / "summary.json").read_text())

    steps = [t["step"] for t in run.target]
    # every checkpoint observed once, in step order, with the accuracy it had
    obs = [o for o, _ in rec.of("log_observation")]
    assert [o.step for o in obs] == steps
    assert np.allclose([o.accuracy for o in obs], [t["accuracy"] for t in run.target])
    assert all(f is not None and f.mode == "blend" and f.version == 1 for _, f in rec.of("log_observation"))
    # a healthy run raises no alert but the broken tracker's, once; the forecast follows it
    (tracker_alert,) = alerts
    assert tracker_alert.reason is AlertReason.TRACKER_FAILING and "Broken" in tracker_alert.message
    assert rec.of("log_alert") == alerts and not monitor.stop_requested
    err = [f.value - o.accuracy for o, f in rec.of("log_observation")]
    assert np.abs(err).mean() < 0.03
    # tracker lifecycle: start first, a forecast before any observation, finish last
    kinds = [e[0] for e in rec.events]
    assert kinds[0] == "start" and kinds[-1] == "finish" and kinds.count("finish") == 1
    assert kinds.index("log_forecast") < kinds.index("log_observation")
    bench, version, curve, report = rec.of("log_forecast")[0]
    assert (bench, version) == (run.benchmark, 1) and "trajectory" in report
    assert len(curve) >= 16 and [p.step for p in curve] == sorted(p.step for p in curve)
    assert rec.of("start")[0]["benchmarks"] == [run.benchmark]
    # a tracker that raises loses its own records and nothing else; after 3 failures in a
    # row it is disabled (no finish either)
    assert [e[0] for e in broken.events] == ["start", "log_forecast"]
    # journal, snapshots, summary
    records = read_journal(out / "journal.jsonl")
    assert sorted(r["step"] for r in records if r["kind"] == "result") == steps
    assert os.listdir(out / "snapshots") == []  # deleted after evaluation
    assert summary["benchmarks"][run.benchmark]["observations"] == 16
    assert summary["benchmarks"][run.benchmark]["final_forecast"]["step"] == steps[-1]
    monitor.close()  # idempotent
    assert [e[0] for e in rec.events].count("finish") == 1


def test_recipe_mode_with_a_named_method_reaches_the_forecaster(healthy, tmp_path):
    run, ladder_dir = healthy
    rec = Recorder()
    out = tmp_path / "cod"
    with _monitor(ladder_dir, out, run, trackers=[rec], trajectory="recipe",
                  trajectory_method="e2e-exp", run_sd={run.benchmark: 0.01}) as monitor:
        _train(monitor, run, tmp_path / "ckpt", indices=[3, 9, 15])
        assert monitor.wait(timeout=120)
        tf = monitor.forecaster(run.benchmark)
        assert tf.mode_ == "recipe" and type(tf.finished_).__name__ == "EndToEndExp"
        assert tf.run_sd == 0.01
    pairs = rec.of("log_observation")
    assert [o.step for o, _ in pairs] == [run.target[j]["step"] for j in (3, 9, 15)]
    assert all(f.mode == "recipe" and f.lower <= f.value <= f.upper for _, f in pairs)
    assert np.abs([f.value - o.accuracy for o, f in pairs]).mean() < 0.04
    assert json.loads((out / "summary.json").read_text())["benchmarks"][run.benchmark]["mode"] == "recipe"


def test_recipe_mode_keeps_forecasting_when_the_finished_interval_is_unavailable(
        tmp_path_factory, tmp_path):
    """Three ladder runs and no target: e2e-exp's backtest interval has no run to
    backtest. Its backtests used to empty the ladder at every checkpoint, so the monitor
    raised one 'forecast unavailable' alert and judged nothing after it (issue 14)."""
    run = synthetic_run(n_samples=300, seed=1, ladder_params=(25.8e3, 105e3, 593e3))
    ladder_dir = _ladder_dir(tmp_path_factory, run, "three-runs")
    rec = Recorder()
    with _monitor(ladder_dir, tmp_path / "cod", run, trackers=[rec], trajectory="recipe",
                  trajectory_method="e2e-exp", run_sd={run.benchmark: 0.01}) as monitor:
        _train(monitor, run, tmp_path / "ckpt", indices=[3, 9, 15])
        assert monitor.wait(timeout=120)
        tf = monitor.forecaster(run.benchmark)
    pairs = rec.of("log_observation")
    assert [o.step for o, _ in pairs] == [run.target[j]["step"] for j in (3, 9, 15)]
    assert all(f is not None and f.lower <= f.value <= f.upper < 1.0 for _, f in pairs)
    assert not [a for a in rec.of("log_alert") if a.reason is AlertReason.FORECAST_UNAVAILABLE]
    # the band lost the backtest widening, and says so in the published report
    assert "no run to backtest" in tf.interval_error_
    report = rec.of("log_forecast")[0][3]
    assert report["trajectory"]["interval_error"] == tf.interval_error_


def test_sabotaged_run_raises_a_below_band_alert(sabotaged, tmp_path, caplog):
    run, ladder_dir = sabotaged
    rec, alerts = Recorder(), []
    caplog.set_level(logging.WARNING, logger=ALERT_LOGGER)
    with _monitor(ladder_dir, tmp_path / "cod", run, trackers=[rec], alert_callback=alerts.append,
                  drift=DriftConfig(tolerance=0.02, patience=2)) as monitor:
        _train(monitor, run, tmp_path / "ckpt")
        assert monitor.wait(timeout=120)
        assert monitor.stop_requested and monitor.alerting == [run.benchmark]
    below = [a for a in alerts if a.reason is AlertReason.BELOW_BAND]
    assert len(below) == 1 and rec.of("log_alert") == alerts
    first_bad = next(t["step"] for t in run.target if t["sabotaged"])
    assert below[0].step > first_bad  # after the sabotage, with patience 2
    assert below[0].message.startswith(f"cod/{run.benchmark} at step {below[0].step}: observed accuracy ")
    # raised by the band rule (2 evaluations under the band) or by the cumulative
    # shortfall, whichever sees the slowdown first
    assert ("for 2 consecutive evaluations." in below[0].message
            or "standard deviations beyond the slack" in below[0].message)
    # every alert is logged, on the one logger an application may filter
    assert [r.getMessage() for r in caplog.records if r.name == ALERT_LOGGER] == [
        a.message for a in alerts]


def test_state_dict_snapshots_and_failures_never_raise(healthy, tmp_path):
    run, ladder_dir = healthy
    rec = Recorder()
    cfg = _write_checkpoint(tmp_path / "cfg", run, 0)  # pass_rates.json travels as a config file
    with _monitor(ladder_dir, tmp_path / "cod", run, trackers=[rec], config_dir=cfg,
                  poll_interval=None) as monitor:
        monitor.on_checkpoint(run.target[0]["step"], tokens=run.target[0]["tokens"],
                              state_dict={"w": np.ones((4, 4), np.float32)})
        assert monitor.wait_for_snapshots(timeout=60)
        assert (tmp_path / "cod" / "snapshots" / f"step-{run.target[0]['step']:012d}").is_dir()
        monitor.on_checkpoint(999, tokens=1e6, path=tmp_path / "missing")  # no exception
        monitor.on_checkpoint(1000, tokens=1e6)  # neither path nor state_dict: no exception
        assert monitor.wait(timeout=120)
    obs = [o for o, _ in rec.of("log_observation")]
    assert [o.step for o in obs] == [run.target[0]["step"]]
    assert obs[0].accuracy == pytest.approx(run.target[0]["accuracy"])
    failing = [a for a in rec.of("log_alert") if a.reason is AlertReason.EVALUATION_FAILING]
    assert sorted(a.step for a in failing) == [999, 1000]
    assert "could not be queued for evaluation (FileNotFoundError" in failing[0].message
    kinds = [r["kind"] for r in read_journal(tmp_path / "cod" / "journal.jsonl")]
    assert kinds.count("error") == 2


def test_ladder_refresh_logs_a_new_version_without_dropping_observations(healthy, tmp_path):
    run, ladder_dir = healthy
    ladder_copy = tmp_path / "ladder"
    shutil.copytree(ladder_dir, ladder_copy)
    rec = Recorder()
    with _monitor(ladder_copy, tmp_path / "cod", run, trackers=[rec], refresh_interval=0.2,
                  n_bootstrap=0) as monitor:
        _train(monitor, run, tmp_path / "ckpt", indices=range(8))
        assert monitor.wait(timeout=120)
        # a new ladder run finished: here, the ladder without its smallest run
        from cod_monitor.ladder import Ladder

        lad = Ladder.load(ladder_copy)
        lad.without_models([m.name for m in lad.models if m.run == "L1"]).save(ladder_copy)
        _train(monitor, run, tmp_path / "ckpt", indices=range(8, 16))
        deadline = time.monotonic() + 60
        while monitor.forecast_version(run.benchmark) != 2:
            assert time.monotonic() < deadline
            monitor.poll()
            time.sleep(0.1)
        assert monitor.wait(timeout=120)
    versions = [v for _, v, _, _ in rec.of("log_forecast")]
    assert versions == [1, 2]
    steps = [o.step for o, _ in rec.of("log_observation")]
    assert steps == [t["step"] for t in run.target]
    # checkpoints submitted while the refit ran were judged by one version or the other
    fps = [f.version for _, f in rec.of("log_observation")]
    assert fps[:8] == [1] * 8 and fps == sorted(fps) and set(fps) <= {1, 2}
    forecasts = [r for r in read_journal(tmp_path / "cod" / "journal.jsonl") if r["kind"] == "forecast"]
    assert [r["version"] for r in forecasts] == [1, 2] and forecasts[0]["fingerprint"] != forecasts[1]["fingerprint"]


def test_kill_and_resume_loses_and_duplicates_nothing(healthy, tmp_path):
    run, ladder_dir = healthy
    ckpt, out = tmp_path / "ckpt", tmp_path / "cod"
    for j in range(len(run.target)):
        _write_checkpoint(ckpt, run, j)
    steps = [[t["step"], t["tokens"]] for t in run.target]
    child = subprocess.Popen(
        [sys.executable, str(HERE / "monitor_child.py"), str(ladder_dir), str(ckpt), str(out),
         json.dumps(steps)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(HERE.parent)},
    )
    assert child.stdout.readline().strip() == "submitted"
    journal = out / "journal.jsonl"
    deadline = time.monotonic() + 120
    while sum(r["kind"] == "result" for r in read_journal(journal)) < 3:
        assert time.monotonic() < deadline and child.poll() is None
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)  # the training process dies mid-evaluation
    child.wait()
    child.stdout.close()
    before = read_journal(journal)
    n_done = sum(r["kind"] == "result" for r in before)
    assert 3 <= n_done < len(steps)

    # the trainer restarts from an older checkpoint and replays the steps it had reached
    rec = Recorder()
    with _monitor(ladder_dir, out, run, trackers=[rec], n_bootstrap=0) as monitor:
        for step, tokens in steps:
            monitor.on_checkpoint(step, tokens=tokens, path=ckpt / f"checkpoint-{step}")
        assert monitor.wait(timeout=120)
    records = read_journal(journal)
    results = [r["step"] for r in records if r["kind"] == "result"]
    assert sorted(results) == [s for s, _ in steps]  # none lost, none twice
    assert sum(r["kind"] == "checkpoint" for r in records) == len(steps)  # never re-submitted
    starts = [r for r in records if r["kind"] == "start"]
    assert [s["resumed"] for s in starts] == [False, True]
    # pending jobs were resubmitted; results journaled but not yet judged at the kill are
    # judged now: the resumed monitor reports exactly the checkpoints not reported before
    decided = {r["step"] for r in before if r["kind"] == "decision"}
    resumed = [o.step for o, _ in rec.of("log_observation")]
    assert resumed == [s for s, _ in steps if s not in decided]
    assert len(monitor.observations) == len(steps)


def test_parameter_errors(tmp_path):
    with pytest.raises(ValueError, match="'eval_sets' parameter of CODMonitor"):
        CODMonitor("ladder", {})
    with pytest.raises(ValueError, match="'trajectory' parameter of ForecastConfig must be a str among"):
        ForecastConfig(trajectory="nope")
    with pytest.raises(ValueError, match="'trajectory_method' parameter of ForecastConfig"):
        ForecastConfig(trajectory="recipe", trajectory_method="nope")
    with pytest.raises(ValueError, match="'run_sd' parameter of ForecastConfig"):
        ForecastConfig(run_sd={"b": -1.0})
    config = ForecastConfig(run_sd={"b": 0.02})
    assert (config.run_sd_for("b"), config.run_sd_for("other")) == (0.02, 0.0)
    with pytest.raises(ValueError, match="'every' parameter"):
        CheckpointConfig(every=0)
    assert isinstance(Recorder(), Tracker)
    # the drift decision reads the band at the coverage the monitor makes it at
    m = CODMonitor("ladder", {"b": "b.jsonl"}, forecast=ForecastConfig(level=0.8),
                   drift=DriftConfig(patience=3))
    assert m.drift.band_level == 0.8 and m.drift.patience == 3


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        # an evaluator config typo: the key, the closest accepted one and all of them
        (dict(evaluator={"backend": "hf", "mdoe": "exact"}), EvaluatorConfigError,
         r"The 'evaluator' parameter of CODMonitor .* Unknown key\(s\) \['mdoe'\] \(did you "
         r"mean 'mode' for 'mdoe'\?\)\. The accepted keys are \['backend', 'batch_size'"),
        (dict(evaluator={"backend": "hf", "mode": "exacto"}), EvaluatorConfigError,
         r"The 'mode' parameter of HFEvaluator must be a str among"),
        (dict(evaluator={"backend": "hff"}), EvaluatorConfigError, r"'backend'.*Got 'hff'"),
        (dict(evaluator={"backend": "hf", "top_p": 0.0}), EvaluatorConfigError, "'top_p'"),
        (dict(evaluator={"backend": "hf", "device": "cuda"}), EvaluatorConfigError,
         r"'evaluator'.*Its device 'cuda' is a GPU, but PoolConfig\.devices has CPU workers"),
        (dict(evaluator="hf"), ParameterError, "'evaluator' parameter of CODMonitor"),
        (dict(eval_sets={"b": 3}), ParameterError, r"'eval_sets'.*It is the value of 'b'"),
        (dict(eval_sets={"b": {"path": "b.jsonl", "stpo": "\n"}}), ParameterError,
         r"Unknown key\(s\) \['stpo'\] \(did you mean 'stop'\?\) in the spec of 'b'"),
        (dict(eval_sets={"b": {"stop": "\n"}}), ParameterError, "'path' is missing"),
        (dict(eval_sets={3: "b.jsonl"}), ParameterError, "keys are the ladder's benchmark"),
        (dict(trackers=[object()]), ParameterError, r"'trackers'.*object lacks start, log_forecast"),
        (dict(trackers="local"), ParameterError, "'trackers'"),
        (dict(alert_callback="print"), ParameterError, "'alert_callback'"),
        (dict(out_dir=3), ParameterError, "'out_dir'"),
        (dict(run_name=""), ParameterError, "'run_name'"),
        (dict(poll_interval=-1), ParameterError, "'poll_interval'"),
        (dict(run={"max_steps": 10}), ParameterError, "'run' parameter of CODMonitor must be a RunGeometry"),
    ],
)
def test_every_argument_is_checked_at_construction(kwargs, error, match):
    args = {"ladder": "ladder", "eval_sets": {"b": "b.jsonl"}, **kwargs}
    with pytest.raises(error, match=match):
        CODMonitor(**args)


def test_a_custom_job_function_gets_its_config_and_eval_sets_as_given():
    # the job function decides what they mean: nothing is built from them
    m = CODMonitor("ladder", {"b": 3}, {"sleep": 1}, pool=PoolConfig(job_fn=JOB))
    assert m.evaluator == {"sleep": 1} and m.eval_sets == {"b": 3}


def _eval_set(ids, name):
    return EvalSet.from_records([{"id": s, "prompt": f"q {s}", "answer": "a"} for s in ids],
                                name=name)


@pytest.mark.parametrize(
    "which, match",
    [
        ("foreign", r"the ladder has 300 sample ids, the evaluation set 300, and 0 are in common"),
        ("every 6th", r"the ladder has 300 sample ids, the evaluation set 50, and 50 are in common"),
        ("no benchmark", r"The ladder has no benchmark 'gsm8k'"),
    ],
)
def test_start_refuses_an_eval_set_that_is_not_the_ladders(healthy, tmp_path, which, match):
    run, ladder_dir = healthy
    ids = list(run.sample_ids)
    sets = {"foreign": {run.benchmark: _eval_set([f"x{i}" for i in range(300)], run.benchmark)},
            "every 6th": {run.benchmark: _eval_set(ids[::6], run.benchmark)},
            "no benchmark": {"gsm8k": _eval_set(ids, "gsm8k")}}[which]
    monitor = CODMonitor(ladder_dir, sets, out_dir=tmp_path / "cod")
    with pytest.raises(InputError, match=match):
        monitor.start()
    assert not (tmp_path / "cod").exists()  # nothing started, nothing written


def test_start_checks_eval_set_files_and_accepts_the_ladders_samples(healthy, tmp_path):
    run, ladder_dir = healthy
    ids = list(run.sample_ids)
    path = tmp_path / "set.jsonl"
    _eval_set(ids[::-1], run.benchmark).to_jsonl(path)  # the ladder's ids, in another order
    with CODMonitor(ladder_dir, {run.benchmark: {"path": str(path), "stop": "\n"}},
                    forecast=ForecastConfig(n_bootstrap=0, refresh_interval=None),
                    out_dir=tmp_path / "cod", poll_interval=None) as monitor:
        assert monitor.poll() == []
    _eval_set(ids[1:], run.benchmark).to_jsonl(path)
    with pytest.raises(InputError, match=rf"Only in the ladder: '{ids[0]}'\. Only in the "
                                         r"evaluation set: none\."):
        CODMonitor(ladder_dir, {run.benchmark: str(path)}, out_dir=tmp_path / "cod2").start()


def test_a_configuration_error_in_the_worker_is_not_retried(healthy, tmp_path):
    run, ladder_dir = healthy
    rec = Recorder()
    with CODMonitor(ladder_dir, {run.benchmark: run.benchmark}, {"mode": "exacto"},
                    forecast=ForecastConfig(n_bootstrap=0, refresh_interval=None),
                    pool=PoolConfig(job_fn="monitor_jobs:config_error", max_retries=2),
                    run=RunGeometry(params=run.target_params), trackers=[rec],
                    out_dir=tmp_path / "cod") as monitor:
        _train(monitor, run, tmp_path / "ckpt", indices=[0])
        assert monitor.wait(timeout=120)
        summary = monitor.summary()
    assert summary["pool"]["failed"] == 1 and summary["pool"]["retries"] == 0
    (alert,) = [a for a in rec.of("log_alert") if a.reason is AlertReason.EVALUATION_FAILING]
    assert "evaluation failed after 1 attempt (Not retried (a configuration error): " in alert.message
    assert "EvaluatorConfigError: The 'mode' parameter of HFEvaluator" in alert.message


def test_import_is_light():
    code = ("import sys, cod_monitor.monitor, cod_monitor.trackers.base; "
            "print([m for m in ('torch', 'transformers', 'wandb', 'safetensors') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_plain_loop_example_runs(tmp_path):
    """examples/plain_loop.py end to end: a real tiny Llama, HF evaluator in a worker."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from cod_monitor.demo.tasks import TaskGenerator

    # a ladder without build.json is taken as built by the default generator; the example
    # evaluates exactly the ladder's samples (150 of them here, to keep it quick)
    ids = [sid for sid, _ in TaskGenerator(seed=0).eval_samples][::8]
    run = synthetic_run(n_samples=len(ids), sample_ids=ids, benchmark="demo", seed=0)
    run.ladder.without_models([m.name for m in run.ladder.models_with_role("target")]).save(tmp_path / "ladder")
    example = HERE.parent.parent / "examples" / "plain_loop.py"
    proc = subprocess.run(
        [sys.executable, str(example), "--tiny", "--steps", "4", "--every", "2",
         "--ladder", str(tmp_path / "ladder"), "--out-dir", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "out" / "cod" / "summary.json").read_text())
    assert summary["benchmarks"]["demo"]["observations"] == 2
    assert summary["benchmarks"]["demo"]["mode"] == "blend"
    assert "observed" in proc.stdout


def test_the_summary_says_whether_training_was_stopped(sabotaged, tmp_path):
    """A below-band alert asks the loop to stop (``stop_requested``); the summary says
    ``stopped_by_drift`` only once the loop reports the stop, which a restarted monitor
    remembers until training goes on past it."""
    run, ladder_dir = sabotaged
    out, b = tmp_path / "cod", run.benchmark
    steps = [t["step"] for t in run.target]
    kw = dict(drift=DriftConfig(tolerance=0.02, patience=2), max_steps=steps[-1],
              tokens_per_step=run.target[0]["tokens"] / steps[0])
    with _monitor(ladder_dir, out, run, **kw) as monitor:
        assert monitor.summary()["status"] == "running"
        _train(monitor, run, tmp_path / "ckpt", indices=range(12))
        assert monitor.wait(timeout=120) and monitor.stop_requested
        s = monitor.summary()
        # drift, but no stop yet: nothing claims one
        assert (s["status"], s["drift_detected"], s["stopped_at"], s["stop_requested"]) == (
            "running", True, None, False)
        first, last = monitor.observations[0], monitor.observations[-1]
        m = monitor.metrics(last)
        assert m[f"cod/{b}/accuracy"] == last.accuracy and m[f"cod/{b}/checkpoint_step"] == steps[11]
        assert m[f"cod/{b}/alerting"] == 1 and monitor.metrics(first)[f"cod/{b}/alerting"] == 0
        assert m[f"cod/{b}/forecast_lower"] <= m[f"cod/{b}/forecast"] <= m[f"cod/{b}/forecast_upper"]
        assert f"cod/{b}/final_forecast" in m  # the run's length is known
        monitor.note_stopped(steps[11], "drift")
    s = monitor.summary()
    assert (s["status"], s["stopped_at"], s["stop_reason"], s["stop_requested"]) == (
        "stopped_by_drift", steps[11], "drift", True)
    assert json.loads((out / "summary.json").read_text())["status"] == "stopped_by_drift"
    assert [(r["step"], r["reason"]) for r in read_journal(out / "journal.jsonl")
            if r["kind"] == "stopped"] == [(steps[11], "drift")]

    # a monitor restarted on the same out_dir (to finish its evaluations, say) remembers it
    with _monitor(ladder_dir, out, run, **kw) as monitor:
        assert monitor.summary()["status"] == "stopped_by_drift"
        assert monitor.metrics(monitor.observations[-1])[f"cod/{b}/checkpoint_step"] == steps[11]
    # training that goes on past the stop makes it history
    with _monitor(ladder_dir, out, run, **kw) as monitor:
        _train(monitor, run, tmp_path / "ckpt", indices=[12])
        assert monitor.wait(timeout=120)
    s = monitor.summary()
    assert (s["status"], s["stopped_at"], s["drift_detected"]) == ("finished", None, True)
