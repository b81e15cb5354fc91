"""The run-conditioned forecast inside CODMonitor: real workers, real journal, resume."""

import json
import logging
import shutil

import pytest
from test_monitor import Recorder, _ladder_dir, _monitor, _train

from cod_monitor.monitor import PROGRESS_LOGGER, read_journal
from cod_monitor.monitor.run_forecasts import RUN_MODE
from cod_monitor.records import AlertReason
from cod_monitor.synthetic import synthetic_run


def _records(out_dir):
    return read_journal(out_dir / "journal.jsonl")


class RunRecorder(Recorder):
    """A tracker with the optional ``log_run_forecast``."""

    def log_run_forecast(self, observation, one_step, final):
        self.events.append(("log_run_forecast", (observation, one_step, final)))


@pytest.fixture(scope="module")
def healthy(tmp_path_factory):
    run = synthetic_run(n_samples=300, seed=3)
    return run, _ladder_dir(tmp_path_factory, run, "run-healthy")


def _geometry(run):
    return dict(max_steps=run.target[-1]["step"], tokens_per_step=2048.0)


def test_each_checkpoint_is_forecast_before_it_is_seen_then_learned_from(healthy, tmp_path,
                                                                          caplog):
    run, ladder_dir = healthy
    rec = RunRecorder()
    out = tmp_path / "cod"
    caplog.set_level(logging.INFO, logger=PROGRESS_LOGGER)
    with _monitor(ladder_dir, out, run, trackers=[rec], **_geometry(run)) as monitor:
        _train(monitor, run, tmp_path / "ckpt")
        assert monitor.wait(timeout=120)
    decisions = [r for r in _records(out) if r["kind"] == "decision"]
    assert len(decisions) == len(run.target)
    for i, d in enumerate(decisions):
        one = d["run_forecast"]
        assert one["mode"] == RUN_MODE and one["lower"] <= one["value"] <= one["upper"]
        assert d["surprise"]["expected"] == pytest.approx(one["value"])
        assert d["final"]["step"] == d["step"] and d["final"]["n_used"] == i + 1
        assert all(p["step"] > d["step"] and p["mode"] == RUN_MODE for p in d["next"])
    # the first forecast is the ladder's own; later ones follow the run
    first = decisions[0]
    assert first["run_forecast"]["value"] == pytest.approx(first["forecast"]["value"], abs=1e-9)
    truth = float(run.target_pass_rates[:, -3:].mean())
    last_final = decisions[-1]["final"]
    assert abs(last_final["value"] - truth) <= abs(last_final["prior_value"] - truth) + 0.01
    assert last_final["lower"] <= truth <= last_final["upper"]
    # a healthy run raises no alert by either rule
    assert not [r for r in _records(out) if r["kind"] == "alert"]
    # trackers with the optional method get every one-step and final forecast
    logged = rec.of("log_run_forecast")
    assert len(logged) == len(run.target) and all(f is not None for _, _, f in logged)
    summary = json.loads((out / "summary.json").read_text())
    b = summary["benchmarks"][run.benchmark]
    assert b["run_final_forecast"]["value"] == pytest.approx(last_final["value"])
    assert b["final_forecast"]["mode"] != RUN_MODE  # the ladder-only one, as before
    lines = [r.getMessage() for r in caplog.records if r.name == PROGRESS_LOGGER]
    assert len(lines) == len(run.target)
    assert "observed" in lines[-1] and "final at step" in lines[-1] and "ladder" in lines[-1]


def test_resume_replays_the_run_and_gives_the_same_forecast(healthy, tmp_path):
    run, ladder_dir = healthy
    out = tmp_path / "cod"
    half = len(run.target) // 2
    with _monitor(ladder_dir, out, run, **_geometry(run)) as monitor:
        _train(monitor, run, tmp_path / "a", indices=range(half))
        assert monitor.wait(timeout=120)
    with _monitor(ladder_dir, out, run, **_geometry(run)) as monitor:
        _train(monitor, run, tmp_path / "b", indices=range(half, len(run.target)))
        assert monitor.wait(timeout=120)
    resumed = [r for r in _records(out) if r["kind"] == "decision"]
    with _monitor(ladder_dir, tmp_path / "once", run, **_geometry(run)) as monitor:
        _train(monitor, run, tmp_path / "c")
        assert monitor.wait(timeout=120)
    once = [r for r in _records(tmp_path / "once") if r["kind"] == "decision"]
    assert [d["step"] for d in resumed] == [d["step"] for d in once]
    for a, b in zip(resumed, once):
        assert a["final"]["value"] == pytest.approx(b["final"]["value"], abs=1e-9)
        assert a["run_forecast"]["value"] == pytest.approx(b["run_forecast"]["value"], abs=1e-9)


def test_a_slowdown_is_reported_not_learned_away(tmp_path_factory, tmp_path):
    run = synthetic_run(n_samples=300, seed=3, sabotage_at=0.35, slowdown=10.0)
    ladder_dir = _ladder_dir(tmp_path_factory, run, "run-sabotaged")
    out = tmp_path / "cod"
    with _monitor(ladder_dir, out, run, **_geometry(run)) as monitor:
        _train(monitor, run, tmp_path / "ckpt")
        assert monitor.wait(timeout=120)
        assert monitor.stop_requested
    records = _records(out)
    alerts = [r for r in records if r["kind"] == "alert" and r["reason"] == "below_band"]
    assert len(alerts) == 1  # one standing alert, whichever rule raised it
    damaged = min(t["step"] for t in run.target if t["sabotaged"])
    assert alerts[0]["step"] >= damaged
    decisions = [r for r in records if r["kind"] == "decision"]
    after = [d for d in decisions if d["step"] > alerts[0]["step"]]
    # nothing under the standing alert is learned from
    assert after and all(d["surprise"]["weight"] == 0 for d in after)


def test_condition_on_run_false_keeps_the_ladder_forecast(healthy, tmp_path):
    run, ladder_dir = healthy
    out = tmp_path / "cod"
    with _monitor(ladder_dir, out, run, condition_on_run=False, **_geometry(run)) as monitor:
        _train(monitor, run, tmp_path / "ckpt", indices=range(4))
        assert monitor.wait(timeout=120)
    decisions = [r for r in _records(out) if r["kind"] == "decision"]
    assert len(decisions) == 4
    assert all(d["run_forecast"] is None and d["final"] is None for d in decisions)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["benchmarks"][run.benchmark]["run_final_forecast"] is None


def test_a_learning_rate_off_the_ladder_trend_is_said_and_widens_the_prior(tmp_path_factory,
                                                                         tmp_path, caplog):
    run = synthetic_run(n_samples=300, seed=3)
    d = _ladder_dir(tmp_path_factory, run, "lr")
    # the ladder's runs trained at 3e-3 * (N / 1e5) ** -0.2, as the demo recipe
    meta = json.loads((d / "ladder.json").read_text())
    for m in meta["models"]:
        m.update(learning_rate=3e-3 * (m["params"] / 1e5) ** -0.2,
                 lr_schedule="constant_with_warmup")
    (d / "ladder.json").write_text(json.dumps(meta))
    expected = 3e-3 * (run.target_params / 1e5) ** -0.2
    caplog.set_level(logging.WARNING)
    results = {}
    for name, lr in (("on", expected), ("low", 0.3 * expected)):
        out = tmp_path / name
        with _monitor(d, out, run, **_geometry(run), learning_rate=lr) as monitor:
            _train(monitor, run, tmp_path / f"ckpt-{name}", indices=range(2))
            assert monitor.wait(timeout=120)
        results[name] = json.loads((out / "summary.json").read_text())["benchmarks"][run.benchmark]
    assert results["on"]["recipe"]["departs"] is False
    low = results["low"]["recipe"]
    assert low["departs"] is True and low["ratio"] == pytest.approx(0.3, rel=0.05)
    warned = [r.getMessage() for r in caplog.records if "departs from the ladder's recipe" in
              r.getMessage()]
    assert len(warned) == 1 and "0.30x the ladder's trend" in warned[0]
    forecasts = {name: [r for r in _records(tmp_path / name)
                        if r["kind"] == "forecast"][0]["report"]["run_prior"] for name in results}
    assert forecasts["low"]["rate_sd"] == pytest.approx(2 * forecasts["on"]["rate_sd"])
    assert AlertReason.BELOW_BAND.value not in results["low"]


def test_a_ladder_replaced_by_one_of_other_samples_is_refused_with_an_alert(healthy, tmp_path):
    run, ladder_dir = healthy
    ladder = tmp_path / "ladder"
    shutil.copytree(ladder_dir, ladder)
    out = tmp_path / "cod"
    alerts = []
    with _monitor(ladder, out, run, alert_callback=alerts.append, **_geometry(run)) as monitor:
        _train(monitor, run, tmp_path / "a", indices=range(2))
        assert monitor.wait(timeout=120)
        assert monitor.forecast_version(run.benchmark) == 1
        other = synthetic_run(n_samples=200, seed=3)  # other samples of the same benchmark
        shutil.rmtree(ladder)
        other.ladder.without_models(
            [m.name for m in other.ladder.models_with_role("target")]).save(ladder)
        assert monitor.refresh(force=True, timeout=120)
        monitor.poll()
        # the version in use stays; the refusal is alerted and journaled
        assert monitor.forecast_version(run.benchmark) == 1
        _train(monitor, run, tmp_path / "b", indices=range(2, 4))
        assert monitor.wait(timeout=120)
    rejected = [a for a in alerts if a.reason is AlertReason.LADDER_REJECTED]
    assert len(rejected) == 1 and "200 samples" in rejected[0].message
    assert "300 the run is evaluated on" in rejected[0].message
    assert len([r for r in _records(out) if r["kind"] == "decision"]) == 4


def test_a_ladder_replaced_by_one_of_other_evaluation_settings_is_refused(healthy, tmp_path):
    from cod_monitor.evaluators import EvalSet
    from cod_monitor.ladder import load_ladder

    run, ladder_dir = healthy
    ladder = tmp_path / "ladder"
    load_ladder(ladder_dir).with_eval_settings({run.benchmark: {"stop": "\n"}}).save(ladder)
    eval_set = EvalSet.from_records(
        [{"id": s, "prompt": f"q {s}", "answer": "a"} for s in run.sample_ids],
        name=run.benchmark, stop="\n")
    out = tmp_path / "cod"
    alerts = []
    with _monitor(ladder, out, run, alert_callback=alerts.append, **_geometry(run),
                  eval_sets={run.benchmark: eval_set}) as monitor:
        _train(monitor, run, tmp_path / "a", indices=range(2))
        assert monitor.wait(timeout=120)
        assert monitor.forecast_version(run.benchmark) == 1
        # the same samples, re-scored by someone with another stop marker
        changed = load_ladder(ladder).with_eval_settings({run.benchmark: {"stop": "###"}})
        shutil.rmtree(ladder)
        changed.save(ladder)
        assert monitor.refresh(force=True, timeout=120)
        monitor.poll()
        assert monitor.forecast_version(run.benchmark) == 1  # the version in use stays
    rejected = [a for a in alerts if a.reason is AlertReason.LADDER_REJECTED]
    assert len(rejected) == 1 and "other evaluation settings" in rejected[0].message
    assert "stop" in rejected[0].message and "Forecast version kept" in rejected[0].message


def test_final_forecast_without_tokens_per_step_learns_the_rate_from_the_checkpoints(
        healthy, tmp_path, caplog):
    # A Trainer that counts its tokens gives them with every checkpoint but no rate: the
    # run's length alone must be enough for the final forecast.
    run, ladder_dir = healthy
    out = tmp_path / "cod"
    caplog.set_level(logging.INFO, logger="cod_monitor")
    with _monitor(ladder_dir, out, run, max_steps=run.target[-1]["step"]) as monitor:
        _train(monitor, run, tmp_path / "ckpt")
        assert monitor.wait(timeout=120)
    summary = json.loads((out / "summary.json").read_text())
    b = summary["benchmarks"][run.benchmark]
    assert b["final_forecast"] is not None and b["run_final_forecast"] is not None
    rate = run.target[-1]["tokens"] / run.target[-1]["step"]
    assert b["final_forecast"]["tokens"] == pytest.approx(rate * run.target[-1]["step"], rel=1e-3)
    start = [r.getMessage() for r in caplog.records if "CODMonitor: monitoring" in r.getMessage()]
    assert len(start) == 1 and "tokens/step=from the checkpoints' tokens" in start[0]
    assert f"max_steps={run.target[-1]['step']}" in start[0]
    ready = [r.getMessage() for r in caplog.records if "forecast version 1 ready" in r.getMessage()]
    assert ready and "Why:" in ready[0]


def test_reported_tokens_that_disagree_with_the_given_rate_win_with_one_warning(
        healthy, tmp_path, caplog):
    # a per-device rate in a 4-process run: a quarter of what the checkpoints report
    run, ladder_dir = healthy
    out = tmp_path / "cod"
    rate = run.target[-1]["tokens"] / run.target[-1]["step"]
    caplog.set_level(logging.WARNING, logger="cod_monitor")
    with _monitor(ladder_dir, out, run, max_steps=run.target[-1]["step"],
                  tokens_per_step=rate / 4) as monitor:
        _train(monitor, run, tmp_path / "ckpt")
        assert monitor.wait(timeout=120)
        final = monitor.forecast_point(run.benchmark, run.target[-1]["step"])
    warned = [r.getMessage() for r in caplog.records if "RunGeometry.tokens_per_step" in r.getMessage()]
    assert len(warned) == 1 and "4x" in warned[0] and "per-device" in warned[0]
    assert final.tokens == pytest.approx(run.target[-1]["tokens"], rel=1e-6)
