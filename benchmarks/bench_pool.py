"""What the evaluation pool's worker backend costs per job: local processes vs Ray actors.

Runs a no-op job function (one sample, no model) through an
:class:`~cod_monitor.runtime.EvalPool` with one local worker process and through a
:class:`~cod_monitor.runtime.RayEvalPool` with one actor on a Ray started here (the
pool's own ``address=None`` start), and measures, per backend:

- **start**: from ``start()`` to the outcome of a first job (the worker started and
  imported the job function; for Ray this includes starting Ray on this machine, as a
  pool with ``address=None`` does);
- **round trip**: one job at a time, from ``submit`` to its outcome in ``poll`` (median
  and 90th percentile of ``--jobs`` jobs): the latency a checkpoint's evaluation pays on
  top of the evaluation itself;
- **queued**: ``--jobs`` jobs submitted at once, wall time per job until the last
  outcome: the dispatch throughput;
- **close**: ``close()`` (for Ray this includes shutting the Ray it started down).

A real evaluation takes seconds to minutes, so these milliseconds are the backend's
whole share. Writes ``benchmarks/results/bench_pool.json`` and prints the table.
Usage::

    python -m benchmarks.bench_pool [--jobs 50] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from cod_monitor.records import EvalResult
from cod_monitor.runtime import EvalPool, Job, QueuePolicy

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]


def noop(snapshot, eval_set, config):
    """A job that does nothing: one sample, pass rate 1."""
    return EvalResult(eval_set="noop", sample_ids=("s0",), pass_rates=np.ones(1), mode="exact")


def _wait_outcomes(pool, n: int, timeout: float = 120.0) -> list:
    out, end = [], time.monotonic() + timeout
    while len(out) < n:
        if time.monotonic() > end:
            raise TimeoutError(f"{len(out)} of {n} outcomes after {timeout:g} s")
        out += pool.poll()
        time.sleep(0.0005)
    return out


def measure(pool, n_jobs: int, snapshot: str) -> dict:
    """Start, round-trip and queued timings of ``pool`` (one worker), which it closes."""
    t0 = time.perf_counter()
    pool.start()
    # the first job waits for the worker, which imports the job function
    pool.submit(Job("first", snapshot, "noop", group=-1))
    _wait_outcomes(pool, 1)
    start_s = time.perf_counter() - t0
    trips = []
    for i in range(n_jobs):
        t = time.perf_counter()
        pool.submit(Job(f"trip-{i}", snapshot, "noop", group=i))
        (o,) = _wait_outcomes(pool, 1)
        trips.append(time.perf_counter() - t)
        assert o.status == "done", o.error
    t = time.perf_counter()
    for i in range(n_jobs):
        pool.submit(Job(f"queued-{i}", snapshot, "noop", group=n_jobs + i))
    out = _wait_outcomes(pool, n_jobs)
    queued = time.perf_counter() - t
    assert all(o.status == "done" for o in out)
    t = time.perf_counter()
    pool.close(timeout=60)
    close_s = time.perf_counter() - t
    trips_ms = sorted(1e3 * x for x in trips)
    return {
        "start_s": round(start_s, 3),
        "round_trip_ms_median": round(statistics.median(trips_ms), 2),
        "round_trip_ms_p90": round(trips_ms[int(0.9 * (len(trips_ms) - 1))], 2),
        "queued_ms_per_job": round(1e3 * queued / n_jobs, 2),
        "close_s": round(close_s, 3),
        "stats": dict(pool.stats),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--out", type=Path, default=RESULTS / "bench_pool.json")
    args = parser.parse_args(argv)

    import ray

    policy = QueuePolicy(max_pending=10 * args.jobs)  # every job its own group; none dropped
    results = {}
    with tempfile.TemporaryDirectory() as snapshot:
        results["local"] = measure(
            EvalPool(["cpu"], job_fn=noop, timeout=60, queue_policy=policy, cpu_threads=1),
            args.jobs, snapshot)
        from cod_monitor.runtime import RayEvalPool

        # the pool starts a local Ray itself (address=None), and shuts it down at close
        results["ray"] = measure(
            RayEvalPool(["cpu"], job_fn=noop, timeout=60, queue_policy=policy, cpu_threads=1,
                        init_kwargs={"num_cpus": 2},
                        runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}}),  # imports noop
            args.jobs, snapshot)

    report = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": "python -m benchmarks.bench_pool" + (f" --jobs {args.jobs}" if args.jobs != 50 else ""),
        "jobs": args.jobs,
        "machine": {"cpus": os.cpu_count(), "load_avg": os.getloadavg(),
                    "python": platform.python_version(), "ray": ray.__version__},
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(table(report))
    return report


def table(report: dict) -> str:
    """The Markdown table of a report."""
    lines = ["| backend | start (s) | round trip per job, median (ms) | p90 (ms) | "
             f"{report['jobs']} queued jobs, per job (ms) | close (s) |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, label in (("local", "local process"), ("ray", "Ray actor")):
        r = report["results"][name]
        lines.append(f"| {label} | {r['start_s']:.2f} | {r['round_trip_ms_median']:.2f} | "
                     f"{r['round_trip_ms_p90']:.2f} | {r['queued_ms_per_job']:.2f} | "
                     f"{r['close_s']:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
