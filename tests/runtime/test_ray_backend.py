"""The Ray backend on a simulated multi-node cluster (tests/runtime/conftest.py).

The scenarios the local backend also runs (results, retries, crashes, time limits,
the queue policy, cancellation) are in test_pool.py; here is what only a cluster has:
placement on the evaluation nodes, a node lost mid-job, the shared-filesystem check,
a whole monitored run, and the same pass rates as local workers.
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from cod_monitor.exceptions import ParameterError
from cod_monitor.runtime import EvalPool, Job, QueuePolicy

JOBS = "monitor_jobs"


def job(tmp_path, i, config=None, eval_set="bench"):
    snap = tmp_path / f"snap-{i}"
    snap.mkdir(exist_ok=True)
    return Job(job_id=f"{i}:bench", snapshot=str(snap), eval_set=eval_set, config=config or {},
               group=i)


def wait_for(cond, timeout=60.0):
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out waiting"
        time.sleep(0.02)


# ---------------------------------------------------------------- without a cluster

def test_ray_is_needed_only_when_asked_for():
    # in a fresh process where `import ray` fails, as if Ray were not installed (this
    # process may be connected to the test cluster, whose threads import from ray)
    code = """if True:
        import sys
        sys.modules["ray"] = None
        from cod_monitor.exceptions import MissingExtraError
        from cod_monitor.monitor import PoolConfig
        from cod_monitor.runtime import RayEvalPool
        assert PoolConfig().backend == "local"  # the default does not look for Ray
        for build in (lambda: PoolConfig(backend="ray"), lambda: RayEvalPool(["cpu"])):
            try:
                build()
            except MissingExtraError as exc:
                print(exc)
        """
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == [
        "PoolConfig(backend='ray') requires ray. Run `pip install 'cod_monitor[ray]'`.",
        "RayEvalPool requires ray. Run `pip install 'cod_monitor[ray]'`."]


@pytest.mark.parametrize(
    "kwargs, field, match",
    [
        ({"backend": "ray", "devices": ["cuda:1"]}, "devices", "Ray chooses its GPUs"),
        ({"backend": "ray", "devices": [0]}, "devices", "a sequence of 'cpu' or 'cuda'"),
        ({"backend": "ray", "ray_resources": {"GPU": 1}}, "ray_resources", "without Ray's own 'GPU'"),
        ({"backend": "ray", "ray_resources": {"eval_gpu": 0}}, "ray_resources", "positive amount"),
        ({"backend": "ray", "ray_resources": ["eval_gpu"]}, "ray_resources", "mapping"),
        ({"backend": "ray", "ray_address": ""}, "ray_address", "'auto'"),
        ({"backend": "ray", "ray_num_gpus": 0}, "ray_num_gpus", r"\(0, inf\)"),
        ({"ray_address": "auto"}, "ray_address", "Set backend='ray'"),
        ({"ray_resources": {"eval_gpu": 1}}, "ray_resources", "Set backend='ray'"),
        ({"backend": "slurm"}, "backend", r"\{'local', 'ray'\}"),
    ],
)
def test_pool_config_checks_the_ray_fields(kwargs, field, match):
    if kwargs.get("backend") == "ray":
        pytest.importorskip("ray")  # without it, MissingExtraError comes first
    from cod_monitor.monitor import PoolConfig

    with pytest.raises(ParameterError, match=f"'{field}' parameter of PoolConfig") as info:
        PoolConfig(**kwargs)
    assert info.match(match)


def test_pool_config_on_ray_keeps_its_settings():
    pytest.importorskip("ray")
    from cod_monitor.monitor import PoolConfig

    p = PoolConfig(backend="ray", devices="cuda", ray_address="auto",
                   ray_resources={"eval_gpu": 1}, ray_num_gpus=0.5)
    assert (p.devices, p.ray_address, p.ray_resources, p.ray_num_gpus) == (
        ("cuda",), "auto", {"eval_gpu": 1.0}, 0.5)


def test_ray_pool_parameter_errors():
    pytest.importorskip("ray")
    from cod_monitor.runtime import RayActors, RayEvalPool

    with pytest.raises(ParameterError, match="'devices' parameter of RayEvalPool"):
        RayEvalPool(["cuda:0"])
    with pytest.raises(ParameterError, match="'resources' parameter of RayActors"):
        RayEvalPool(resources={"CPU": 2})
    with pytest.raises(ParameterError, match="'job_fn' parameter of EvalPool must be None when "
                                             "a backend is given"):
        EvalPool(job_fn=f"{JOBS}:constant", backend=RayActors())


# ---------------------------------------------------------------- on the cluster

@pytest.mark.ray
def test_actors_are_placed_on_the_evaluation_nodes(ray_cluster, tmp_path, runs_idle):
    from cod_monitor.runtime import RayEvalPool

    head = ray_cluster.head_id
    eval_ids = {n.node_id for n in ray_cluster.eval_nodes()}
    pool = RayEvalPool(["cuda", "cpu"], job_fn=f"{JOBS}:probe", resources=ray_cluster.resources,
                       queue_policy=QueuePolicy(max_pending=10))
    pool.start()
    wait_for(lambda: None not in pool.worker_pids())  # both ready: both get a job
    for i in range(4):
        pool.submit(job(tmp_path, i))
    pool.close(timeout=120)
    out = pool.poll()
    assert sorted(o.status for o in out) == ["done"] * 4
    metas = [o.result.meta for o in out]
    assert {m["node"] for m in metas} <= eval_ids and head not in {m["node"] for m in metas}
    # a GPU actor gets the GPU Ray picked for it; a CPU actor hides the GPUs and only
    # takes idle CPU time (SCHED_IDLE: the default priority of CPU workers)
    gpu = [m for m in metas if m["device"] == "cuda"]
    cpu = [m for m in metas if m["device"] == "cpu"]
    assert gpu and cpu
    assert all(m["cuda"] == "0" for m in gpu)  # each evaluation node has one (fake) GPU
    assert all(m["cuda"] == "" and runs_idle(m) for m in cpu)
    assert all(m["sched"] == os.SCHED_OTHER and m["nice"] < 19 for m in gpu)
    assert all(o.worker.startswith(f"ray:{o.result.meta['device']}@") for o in out)
    # one process per slot for all its jobs: the evaluator stays warm between them
    assert len({m["pid"] for m in metas}) == 2


@pytest.mark.ray
def test_a_node_lost_mid_job_loses_and_duplicates_nothing(ray_cluster, tmp_path):
    from cod_monitor.runtime import RayEvalPool

    # one actor per evaluation node; job 0 is still running when its node goes
    pool = RayEvalPool(["cpu", "cpu"], job_fn=f"{JOBS}:logged_slow_first", max_retries=2,
                       resources=ray_cluster.resources, queue_policy=QueuePolicy(max_pending=10))
    pool.submit(job(tmp_path, 0, {"sleep": 120}))
    log0 = tmp_path / "snap-0" / "attempts.log"
    wait_for(lambda: log0.exists())
    (lost,) = log0.read_text().split()
    victim = next(n for n in ray_cluster.eval_nodes() if n.node_id == lost)
    try:
        for i in range(1, 4):
            pool.submit(job(tmp_path, i, {"sleep": 0}))
        ray_cluster.cluster.remove_node(victim, allow_graceful=False)
        pool.close(timeout=120)
        out = {o.job.job_id: o for o in pool.poll()}
    finally:
        ray_cluster.add_eval_node()  # as it was, for the next tests

    # every job once, done; job 0 twice attempted, and finished away from the lost node
    assert sorted(out) == [f"{i}:bench" for i in range(4)]
    assert all(o.status == "done" for o in out.values())
    assert out["0:bench"].attempts == 2 and out["0:bench"].result.meta["node"] != lost
    assert log0.read_text().split() == [lost, out["0:bench"].result.meta["node"]]
    for i in range(1, 4):  # the other jobs ran once each
        assert len((tmp_path / f"snap-{i}" / "attempts.log").read_text().split()) == 1
    assert pool.stats["crashes"] == 1 and pool.stats["done"] == 4 and pool.stats["failed"] == 0


@pytest.mark.ray
@pytest.mark.parametrize("what", ["another token", "missing"])
def test_evaluation_nodes_that_cannot_read_the_snapshots_are_refused(ray_cluster, tmp_path, what):
    from cod_monitor.runtime import RayActors

    shared = tmp_path / "snapshots"
    shared.mkdir()
    backend = RayActors(f"{JOBS}:constant", resources=ray_cluster.resources, shared_dir=shared)
    backend.open()  # the monitor process writes the probe ...
    (probe,) = shared.glob(".cod-ray-probe-*")
    # ... which the nodes see otherwise: a local directory of the same name, or none
    if what == "missing":
        probe.unlink()
    else:
        probe.write_text("the token of another run")
    pool = EvalPool(["cpu"], backend=backend)
    pool.submit(job(tmp_path, 0))
    pool.close(timeout=120)
    (o,) = pool.poll()
    assert o.status == "failed" and o.attempts == 0
    # one sentence names the directory, the probe file and the fix
    assert o.error.startswith("no evaluation worker could start on any device; the last "
                              f"error: the snapshot directory {shared} is not shared with Ray node")
    assert f"the probe file {probe}" in o.error
    assert "mounts at the same path" in o.error and "backend='local'" in o.error
    assert not probe.exists()  # removed when the pool closed


@pytest.mark.ray
def test_an_actor_no_node_can_take_is_warned_about_and_its_jobs_wait(ray_cluster, tmp_path,
                                                                        caplog):
    from cod_monitor.runtime import RayEvalPool

    pool = RayEvalPool(["cpu"], job_fn=f"{JOBS}:constant", resources={"eval_tpu": 1})
    with caplog.at_level("WARNING", logger="cod_monitor.runtime.ray_backend"):
        pool.submit(job(tmp_path, 0))
        wait_for(lambda: caplog.records)  # the pool opens on its own thread
        time.sleep(0.5)
        assert pool.n_pending == 1 and pool.worker_pids() == [None]
        pool.close(cancel=True)
    (record,) = caplog.records
    assert "No node of the Ray cluster offers" in record.getMessage()
    assert "eval_tpu: 1" in record.getMessage() and "{'eval_tpu': 0.0}" in record.getMessage()
    assert [o.status for o in pool.poll()] == ["cancelled"]


@pytest.mark.ray
def test_a_monitored_run_on_ray(ray_cluster, tmp_path):
    """A whole CODMonitor run with PoolConfig(backend='ray'): checkpoints deleted at
    once, snapshots read on the evaluation nodes, every observation back in the
    monitor process's journal."""
    from cod_monitor.monitor import CODMonitor, ForecastConfig, PoolConfig, RunGeometry, read_journal
    from cod_monitor.synthetic import synthetic_run

    run = synthetic_run(n_samples=300, seed=1)
    ladder = run.ladder.without_models([m.name for m in run.ladder.models_with_role("target")])
    ladder.save(tmp_path / "ladder")
    alerts = []
    out = tmp_path / "cod"
    pool = PoolConfig(backend="ray", ray_resources=ray_cluster.resources, job_fn=f"{JOBS}:from_snapshot",
                      queue_policy=QueuePolicy(max_pending=100))
    indices = range(0, len(run.target), 3)
    with CODMonitor(tmp_path / "ladder", {run.benchmark: run.benchmark}, {}, pool=pool,
                    forecast=ForecastConfig(n_bootstrap=10, refresh_interval=None),
                    run=RunGeometry(params=run.target_params), out_dir=out,
                    alert_callback=alerts.append) as monitor:
        for j in indices:
            t = run.target[j]
            ckpt = tmp_path / "ckpt" / f"checkpoint-{t['step']}"
            ckpt.mkdir(parents=True)
            (ckpt / "pass_rates.json").write_text(json.dumps(
                {"sample_ids": run.sample_ids, run.benchmark: run.target_pass_rates[:, j].tolist()}))
            monitor.on_checkpoint(t["step"], tokens=t["tokens"], path=ckpt)
            shutil.rmtree(ckpt)  # save_total_limit rotation right after on_save
        assert monitor.wait(timeout=120)
        obs = list(monitor.observations)
    steps = [run.target[j]["step"] for j in indices]
    assert [o.step for o in obs] == steps
    np.testing.assert_allclose([o.accuracy for o in obs], [run.target[j]["accuracy"] for j in indices])
    assert alerts == []
    records = read_journal(out / "journal.jsonl")
    assert sorted(r["step"] for r in records if r["kind"] == "result") == steps
    summary = json.loads((out / "summary.json").read_text())
    assert summary["pool"]["done"] == len(steps) and summary["pool"]["failed"] == 0
    # the probe is gone with the pool, the snapshots once evaluated
    assert list((out / "snapshots").iterdir()) == []


# ---------------------------------------------------------------- same numbers

def _tinylm():
    """tests/evaluators/tinylm.py (a tiny char-level Llama built here, no download)."""
    path = Path(__file__).resolve().parents[1] / "evaluators" / "tinylm.py"
    spec = importlib.util.spec_from_file_location("tinylm", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny_checkpoints(tmp_path_factory):
    """Two checkpoints of one tiny Llama (untrained, after 20 steps) and 30 prompts."""
    for mod in ("torch", "transformers", "tokenizers"):
        pytest.importorskip(mod)
    import torch

    from cod_monitor.evaluators import EvalSet

    tinylm = _tinylm()
    eval_set = EvalSet.from_records(tinylm.make_tasks(30, seed=1), name="tiny", stop=tinylm.STOP)
    root = tmp_path_factory.mktemp("tiny")
    with torch.random.fork_rng():
        tok = tinylm.build_char_tokenizer()
        model = tinylm.build_tiny_llama(len(tok), seed=0)
        paths = [tinylm.save_checkpoint(model, tok, root / "step-0")]
        tinylm.train(model, tok, steps=20, exclude=set(eval_set.prompts), seed=0)
        paths.append(tinylm.save_checkpoint(model, tok, root / "step-20"))
    return paths, eval_set


@pytest.mark.ray
def test_local_and_ray_workers_give_identical_pass_rates(ray_cluster, tiny_checkpoints):
    from cod_monitor.runtime import RayEvalPool

    paths, eval_set = tiny_checkpoints
    configs = {"exact": {"backend": "hf", "mode": "exact"},
               "sampled": {"backend": "hf", "mode": "sampled", "n": 8, "seed": 3}}
    common = dict(cpu_threads=1, timeout=600, queue_policy=QueuePolicy(max_pending=10))
    # side by side: each worker spends most of its time importing torch
    pools = {"local": EvalPool(["cpu"], **common),
             "ray": RayEvalPool(["cpu"], resources=ray_cluster.resources, **common)}
    for pool in pools.values():
        for mode, config in configs.items():
            for step, path in enumerate(paths):
                pool.submit(Job(f"{step}:{mode}", path, eval_set, config, group=step))
    rates = {}
    for name, pool in pools.items():
        pool.close(timeout=600)
        out = pool.poll()
        assert all(o.status == "done" for o in out), [o.error for o in out]
        rates[name] = {o.job.job_id: o.result.pass_rates for o in out}
    assert sorted(rates["local"]) == sorted(rates["ray"]) and len(rates["ray"]) == 4
    for key, local in rates["local"].items():
        assert local.tobytes() == rates["ray"][key].tobytes(), key  # bit for bit
    # the checkpoints differ, so equal numbers are not an accident of the model
    assert not np.array_equal(rates["ray"]["0:exact"], rates["ray"]["1:exact"])
