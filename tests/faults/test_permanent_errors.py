"""Failures classified: a bad file or a bad config gets one attempt and an alert naming it;
a crash is retried.

A real tiny Llama saved with ``save_pretrained``, evaluated by the real HF evaluator
(the pool's default job function) in real spawned workers; its ``model.safetensors``
is really truncated.
"""

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("safetensors")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "evaluators"))
from tinylm import STOP, build_char_tokenizer, build_tiny_llama, make_tasks, save_checkpoint  # noqa: E402

from cod_monitor.evaluators import CorruptCheckpointError, EvalSet  # noqa: E402
from cod_monitor.evaluators.loading import load_hf_checkpoint  # noqa: E402
from cod_monitor.monitor import (  # noqa: E402
    CODMonitor,
    ForecastConfig,
    PoolConfig,
    QueuePolicy,
    RunGeometry,
    read_journal,
)
from cod_monitor.records import AlertReason  # noqa: E402
from cod_monitor.runtime import EvalPool, Job  # noqa: E402
from cod_monitor.runtime.worker import PERMANENT_ERRORS  # noqa: E402
from cod_monitor.synthetic import synthetic_run  # noqa: E402

pytestmark = pytest.mark.slow
EXACT = {"backend": "hf", "mode": "exact", "batch_size": 16}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A healthy checkpoint, the same one with its weights file cut in half, one whose
    config.json is cut short, and a 20-prompt evaluation set."""
    root = tmp_path_factory.mktemp("permanent")
    tok = build_char_tokenizer()
    healthy = Path(save_checkpoint(build_tiny_llama(len(tok), hidden=32, layers=1), tok,
                                   root / "checkpoint-100"))
    truncated = root / "checkpoint-200"
    bad_config = root / "checkpoint-300"
    for d in (truncated, bad_config):
        d.mkdir()
        for f in healthy.iterdir():
            (d / f.name).write_bytes(f.read_bytes())
    weights = truncated / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    config = bad_config / "config.json"
    config.write_text(config.read_text()[:40])
    eval_set = EvalSet.from_records(make_tasks(20, seed=1), name="tiny", stop=STOP)
    return healthy, truncated, bad_config, eval_set


def test_a_truncated_or_corrupt_file_is_a_permanent_error_naming_the_file(tiny):
    _, truncated, bad_config, _ = tiny
    assert issubclass(CorruptCheckpointError, PERMANENT_ERRORS)
    with pytest.raises(CorruptCheckpointError, match="incomplete metadata") as info:
        load_hf_checkpoint(str(truncated))
    assert info.value.path == str(truncated / "model.safetensors")
    assert str(truncated / "model.safetensors") in str(info.value)
    with pytest.raises(CorruptCheckpointError, match="not valid JSON") as info:
        load_hf_checkpoint(str(bad_config))
    assert info.value.path == str(bad_config / "config.json")


def test_the_pool_tries_a_bad_file_or_config_once_and_retries_a_crash(tiny, tmp_path):
    healthy, truncated, bad_config, eval_set = tiny
    pool = EvalPool(["cpu"], max_retries=2, timeout=120, queue_policy=QueuePolicy(max_pending=10))
    pool.submit(Job("100:tiny", str(healthy), eval_set, EXACT, group=100))
    pool.submit(Job("200:tiny", str(truncated), eval_set, EXACT, group=200))
    pool.submit(Job("300:tiny", str(bad_config), eval_set, EXACT, group=300))
    # an evaluator configuration error that only the worker can see: not retried either
    pool.submit(Job("400:tiny", str(healthy), eval_set, {**EXACT, "dtype": "float99"}, group=400))
    # a crash (the snapshot is gone: a FileNotFoundError) is transient: retried
    pool.submit(Job("500:tiny", str(tmp_path / "gone"), eval_set, EXACT, group=500))
    pool.close(timeout=300)
    out = {o.job.job_id: o for o in pool.poll()}
    assert out["100:tiny"].status == "done" and out["100:tiny"].attempts == 1
    for job_id, named in (("200:tiny", truncated / "model.safetensors"),
                          ("300:tiny", bad_config / "config.json")):
        o = out[job_id]
        assert o.status == "failed" and o.attempts == 1, job_id
        last = o.error.strip().splitlines()[-1]
        assert "CorruptCheckpointError" in last and str(named) in last
        assert last.startswith("Not retried (a broken checkpoint file)")
    assert out["400:tiny"].status == "failed" and out["400:tiny"].attempts == 1
    assert "EvaluatorConfigError: The 'dtype' parameter" in out["400:tiny"].error
    assert "Not retried (a configuration error)" in out["400:tiny"].error
    assert out["500:tiny"].status == "failed" and out["500:tiny"].attempts == 3
    assert pool.stats["retries"] == 2


def test_the_monitor_alerts_once_naming_the_truncated_file(tiny, tmp_path):
    healthy, truncated, _, eval_set = tiny
    run = synthetic_run(n_samples=len(eval_set), sample_ids=list(eval_set.ids),
                        benchmark="tiny", seed=0)
    ladder = run.ladder.without_models([m.name for m in run.ladder.models_with_role("target")])
    ladder.save(tmp_path / "ladder")
    alerts = []
    with CODMonitor(tmp_path / "ladder", {"tiny": eval_set}, EXACT,
                    forecast=ForecastConfig(n_bootstrap=0, refresh_interval=None),
                    pool=PoolConfig(max_retries=2, queue_policy=QueuePolicy(max_pending=10)),
                    run=RunGeometry(params=run.target_params), alert_callback=alerts.append,
                    out_dir=tmp_path / "cod", poll_interval=None) as monitor:
        for step, path in ((100, healthy), (200, truncated)):
            monitor.on_checkpoint(step, tokens=step * 1e6, path=path)
        assert monitor.wait(timeout=300)
        summary = monitor.summary()
    assert [o.step for o in monitor.observations] == [100]
    (alert,) = [a for a in alerts if a.reason is AlertReason.EVALUATION_FAILING]
    assert alert.step == 200 and "evaluation failed after 1 attempt " in alert.message
    # the worker read the snapshot (hard links of the checkpoint): it names that file
    snapshot = tmp_path / "cod" / "snapshots" / f"step-{200:012d}" / "model.safetensors"
    assert f"Checkpoint file {snapshot}: truncated or corrupt" in alert.message
    assert summary["pool"]["retries"] == 0
    failed = [r for r in read_journal(tmp_path / "cod" / "journal.jsonl") if r["kind"] == "failed"]
    assert [(r["step"], r["attempts"]) for r in failed] == [(200, 1)]
    json.dumps(summary)  # the summary stays JSON
