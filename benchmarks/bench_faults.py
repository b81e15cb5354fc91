"""Fault injection (issue 15): a training loop and a real HF ``Trainer`` through injected faults.

Every scenario runs in a child process of its own (faults such as a file-size limit, a
patched clock, ``SIGTERM`` or ``SIGKILL`` of training must not touch the others) and
drives either

- a **plain loop** with :class:`~cod_monitor.monitor.CODMonitor` (the synthetic run of
  ``tests/faults``: each checkpoint directory carries the pass rates the run measured
  there, and real spawn-started workers read them back with
  ``tests/faults/fault_jobs.py:pass_rates_file``, which injects the faults asked for), or
- a **tiny HF Trainer** (``tests/faults/fault_trainer.py``: a 1-layer Llama trained on
  CPU, checkpoints every 5 steps) with :class:`~cod_monitor.integrations.hf.CODCallback`,
  whose workers read each snapshot's real ``model.safetensors``.

Fault kinds: worker SIGKILL, hung worker, evaluator raising, checkpoint deleted (before
or after its hand-over), checkpoint corrupted (a truncated ``model.safetensors``), W&B
failing (a real ``wandb.init`` online against a closed port, and a tracker that
raises), journal writes failing (``RLIMIT_FSIZE``: the kernel refuses writes as a full
disk does), eval worker OOM-killed (memory grows, then ``SIGKILL``), snapshot directory
removed mid-evaluation, two monitors on one ``out_dir``, wall-clock jumps
(``time.time`` shifted by hours in the process: the monitor's timers are monotonic),
a ladder replaced by an incompatible one mid-run, ``SIGTERM`` of training with a
graceful stop then resume, and training ``SIGKILL``-ed then resumed.

Counted per kind, from the journal(s) the monitors wrote and the alerts they raised:
training crashed; checkpoints handed over; observations lost (no result), with and
without an alert naming them (or the summary's ``skipped_steps``); observations
duplicated (a step with two results); the longest stall of the training loop (the
longest monitor call on the training thread: ``on_checkpoint``/``poll`` in the loop,
``CODCallback`` hooks in the Trainer; the end-of-training drain is reported apart);
faults that need an alert, how many got one, the longest time to it, and whether it
came within one evaluation (at most one later checkpoint's result was judged between
the fault and its alert).

Usage::

    python benchmarks/bench_faults.py [--quick] [--kinds a,b] [--out PATH]

Writes ``benchmarks/results/bench_faults.json`` and prints the table.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FAULTS_DIR = ROOT / "tests" / "faults"
RESULTS = HERE / "results"
sys.path.insert(0, str(FAULTS_DIR))

#: Alert reasons about faults (not about the run's drift).
FAULT_REASONS = {"evaluation_failing", "evaluation_timeout", "worker_died", "evaluation_unfinished",
                 "journal_failing", "monitor_error", "tracker_failing", "evaluation_skipped",
                 "ladder_rejected"}
N_CHECKPOINTS = 16
CHILD_TIMEOUT_S = 420


# ====================================================================== accounting
class Log:
    """What a scenario saw: checkpoints handed over, faults injected, alerts raised,
    monitor calls on the training thread."""

    def __init__(self):
        self.handed: dict[int, float] = {}  # step -> wall time of the hand-over
        self.faults: list[dict] = []
        self.alerts: list[dict] = []
        self.calls: list[float] = []  # seconds of each monitor call on the training thread
        self.drain_s = 0.0
        self.crashed = None
        self.out_dirs: list[str] = []
        self.notes: list[str] = []
        self._lock = threading.Lock()

    def alert(self, alert) -> None:
        with self._lock:
            self.alerts.append({"t": time.time(), "reason": alert.reason.value, "step": alert.step,
                                "message": alert.message})

    def fault(self, what, step=None, *, needs_alert=True, reasons=(), match=None) -> dict:
        f = {"what": what, "step": step, "t": time.time(), "needs_alert": needs_alert,
             "reasons": list(reasons), "match": match}
        self.faults.append(f)
        return f

    def timed(self, fn, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self.calls.append(time.perf_counter() - t0)

    def to_dict(self) -> dict:
        return {"handed": self.handed, "faults": self.faults, "alerts": self.alerts,
                "stall_s": max(self.calls, default=0.0), "drain_s": self.drain_s,
                "crashed": self.crashed, "out_dirs": self.out_dirs, "notes": self.notes}


def account(log: dict) -> dict:
    """Lost, duplicated, alerted: the numbers of one scenario, from its journal(s)."""
    from cod_monitor.monitor import read_journal

    records = []
    for d in log["out_dirs"]:
        path = Path(d) / "journal.jsonl"
        if path.exists():
            records.extend(read_journal(path))
    handed = {int(s) for s in log["handed"]}
    results = collections.Counter(r["step"] for r in records if r["kind"] == "result")
    named = {a["step"] for a in log["alerts"] if a["reason"] in FAULT_REASONS}
    named |= {r["step"] for r in records if r["kind"] == "alert" and r.get("reason") in FAULT_REASONS}
    named |= {r["step"] for r in records if r["kind"] == "skipped"}  # in summary skipped_steps
    for r in records:
        if r["kind"] == "drain":
            named |= {s for s, _ in r.get("unfinished", [])}
    lost = sorted(handed - set(results))
    duplicated = sum(n - 1 for n in results.values() if n > 1)
    faults = log["faults"]
    alerted, late, times = 0, 0, []
    needing = [f for f in faults if f["needs_alert"]]
    result_times = sorted((r["time"], r["step"]) for r in records if r["kind"] == "result")
    for f in needing:
        hits = [a for a in log["alerts"] if a["reason"] in f["reasons"] and a["t"] >= f["t"] - 0.5
                and (f["step"] is None or a["step"] == f["step"])
                and (not f.get("match") or f["match"] in a["message"])]
        if not hits:
            continue
        alerted += 1
        first = min(hits, key=lambda a: a["t"])
        times.append(max(0.0, first["t"] - f["t"]))
        # evaluations of later checkpoints judged between the fault and its alert
        between = [s for t, s in result_times if f["t"] < t < first["t"]
                   and (f["step"] is None or s > f["step"])]
        if len(between) > 1:
            late += 1
    return {
        "faults": len(faults), "handed": len(handed), "observed": len(handed & set(results)),
        "lost_with_alert": sum(1 for s in lost if s in named),
        "lost_without_alert": sum(1 for s in lost if s not in named),
        "lost_steps_without_alert": [s for s in lost if s not in named],
        "duplicated": duplicated, "needing_alert": len(needing), "alerted": alerted,
        "alerted_late": late, "max_time_to_alert_s": max(times, default=None),
        "stall_s": log["stall_s"], "drain_s": log["drain_s"],
        "crashed": bool(log["crashed"]), "notes": log["notes"],
    }


# ====================================================================== the plain loop
class Loop:
    """A synthetic run monitored by a real CODMonitor (background poller, spawned workers)."""

    def __init__(self, work: Path, log: Log, *, faults=None, pool=None, trackers=(),
                 sleep=0.15, ladder=None, forecast=None, out_dir=None, config=None):
        from cod_monitor.monitor import CODMonitor, ForecastConfig, PoolConfig, QueuePolicy, RunGeometry
        from cod_monitor.synthetic import synthetic_run

        self.work, self.log = work, log
        self.run = synthetic_run(n_samples=300, seed=1)
        self.ladder_dir = work / "ladder"
        if not self.ladder_dir.exists():
            self.run.ladder.without_models(
                [m.name for m in self.run.ladder.models_with_role("target")]).save(self.ladder_dir)
        pool = {"queue_policy": QueuePolicy(max_pending=100), "timeout_floor": 3.0, **(pool or {})}
        cfg = {"faults": {str(k): v for k, v in (faults or {}).items()}, "sleep": sleep,
               **(config or {})}
        self.out_dir = Path(out_dir or work / "cod")
        log.out_dirs.append(str(self.out_dir))
        self.monitor = CODMonitor(
            ladder or self.ladder_dir, {self.run.benchmark: self.run.benchmark}, cfg,
            forecast=forecast or ForecastConfig(n_bootstrap=0, refresh_interval=None),
            pool=PoolConfig(job_fn="fault_jobs:pass_rates_file", **pool),
            run=RunGeometry(params=self.run.target_params), trackers=list(trackers),
            alert_callback=log.alert, out_dir=self.out_dir, poll_interval=0.2)

    def step(self, j) -> int:
        return int(self.run.target[j]["step"])

    def write(self, j) -> Path:
        t = self.run.target[j]
        d = self.work / "ckpt" / f"checkpoint-{t['step']}"
        d.mkdir(parents=True, exist_ok=True)
        (d / "config.json").write_text("{}")
        (d / "pass_rates.json").write_text(json.dumps(
            {"sample_ids": self.run.sample_ids,
             self.run.benchmark: self.run.target_pass_rates[:, j].tolist()}))
        return d

    def hand_over(self, j, path=None) -> None:
        step = self.step(j)
        path = self.write(j) if path is None else path
        self.log.handed[step] = time.time()
        self.log.timed(self.monitor.on_checkpoint, step, tokens=self.run.target[j]["tokens"],
                       path=path)
        self.log.timed(self.monitor.poll)

    def train(self, indices=range(N_CHECKPOINTS), every=None, pause=0.05):
        for j in indices:
            if every is not None:
                every(j)
            self.hand_over(j)
            time.sleep(pause)  # the "training steps" between checkpoints

    def finish(self, timeout=120.0):
        self.monitor.wait(timeout=timeout)
        t0 = time.perf_counter()
        self.monitor.close(timeout=60)
        self.log.drain_s = time.perf_counter() - t0


def spread(n, k=N_CHECKPOINTS, first=1):
    """``n`` checkpoint indices spread over the run (not the first: the forecast is fitted)."""
    step = max(1, (k - first) // n)
    return [first + i * step for i in range(n)][:n]


def job_fault_scenario(kind, fault, reasons, pool=None, config=None):
    """A plain loop whose workers inject ``fault`` at ``n`` checkpoints."""
    def scenario(work, log, n):
        from cod_monitor.synthetic import synthetic_run

        run = synthetic_run(n_samples=300, seed=1)  # its steps, before the monitor is built
        idx = spread(n)
        steps = [int(run.target[j]["step"]) for j in idx]
        loop = Loop(work, log, faults={s: fault for s in steps}, pool=pool, config=config)
        with loop.monitor:
            loop.train(every=lambda j: log.fault(f"{kind} at step {loop.step(j)}", loop.step(j),
                                                 reasons=reasons) if j in idx else None)
            loop.finish()
    return scenario


def scenario_checkpoint_deleted(work, log, n):
    """Deleted before its hand-over (refused: lost, alerted) or right after it (the
    snapshot's hard links keep it: observed, nothing to alert)."""
    idx = spread(n)
    loop = Loop(work, log)
    with loop.monitor:
        for j in range(N_CHECKPOINTS):
            path = loop.write(j)
            if j in idx and idx.index(j) % 2 == 0:
                log.fault(f"deleted before hand-over, step {loop.step(j)}", loop.step(j),
                          reasons=["evaluation_failing"])
                shutil.rmtree(path)
                loop.hand_over(j, path=path)
            else:
                loop.hand_over(j, path=path)
                if j in idx:
                    log.fault(f"deleted right after hand-over, step {loop.step(j)}", loop.step(j),
                              needs_alert=False)
                    shutil.rmtree(path)
            time.sleep(0.05)
        loop.finish()


def scenario_snapshot_removed(work, log, n):
    """The snapshot directory removed while its evaluation runs."""
    from cod_monitor.synthetic import synthetic_run

    run = synthetic_run(n_samples=300, seed=1)
    idx = spread(n)
    steps = {int(run.target[j]["step"]) for j in idx}
    loop = Loop(work, log, faults={s: "read_late" for s in steps}, config={"late_s": 1.0})
    snapshots = loop.out_dir / "snapshots"
    stop = threading.Event()

    def remover():
        done = set()
        while not stop.is_set():
            for s in steps - done:
                snap = snapshots / f"step-{s:012d}"
                if (snap / ".started").exists():
                    log.fault(f"snapshot removed mid-evaluation, step {s}", s,
                              reasons=["evaluation_failing"])
                    shutil.rmtree(snap, ignore_errors=True)
                    done.add(s)
            time.sleep(0.02)

    t = threading.Thread(target=remover, daemon=True)
    with loop.monitor:
        t.start()
        loop.train()
        loop.finish()
    stop.set()


class RaisingTracker:
    """A tracker whose methods after ``start`` raise, as on a full disk; ``first_failure``
    is when it first raised (the fault's time)."""

    first_failure = None

    def start(self, run_info):
        pass

    def _fail(self, *args):
        if self.first_failure is None:
            self.first_failure = time.time()
        raise OSError(28, "No space left on device")

    log_forecast = log_observation = log_alert = finish = _fail


def scenario_wandb(work, log, n):
    """A real wandb.init online against a closed port (init timeout 3 s), and a tracker
    that raises: each disabled with one alert; training never waits for them. A fault's
    time is when the tracker first failed (a tracker is disabled after 3 failures in a
    row, or at once when its start fails)."""
    os.environ.update({"WANDB_MODE": "online", "WANDB_API_KEY": "x" * 40,
                       "WANDB_BASE_URL": "http://127.0.0.1:9", "WANDB_INIT_TIMEOUT": "3",
                       "WANDB_SILENT": "true", "WANDB_CONSOLE": "off"})
    from cod_monitor.trackers.wandb import WandbTracker

    class TimedWandb(WandbTracker):  # the real tracker; only notes when its start failed
        first_failure = None

        def start(self, run_info):
            try:
                return super().start(run_info)
            except Exception:
                type(self).first_failure = time.time()
                raise

    wandb, raising = TimedWandb(project="cod-faults", dir=str(work / "wandb")), RaisingTracker()
    loop = Loop(work, log, trackers=[wandb, raising])
    f_wandb = log.fault("wandb.init online without network", None, reasons=["tracker_failing"],
                        match="TimedWandb")
    f_raise = log.fault("a tracker raising on every call", None, reasons=["tracker_failing"],
                        match="RaisingTracker")
    with loop.monitor:
        loop.train()
        loop.finish()
    f_wandb["t"] = TimedWandb.first_failure or f_wandb["t"]
    f_raise["t"] = raising.first_failure or f_raise["t"]
    messages = [a["message"][:90] for a in log.alerts if a["reason"] == "tracker_failing"]
    log.notes.append(f"{len(messages)} tracker_failing alert(s): " + " | ".join(messages))


def scenario_journal(work, log, n):
    """The journal's disk refuses writes (RLIMIT_FSIZE), twice, then takes them again."""
    import resource

    loop = Loop(work, log)
    for j in range(N_CHECKPOINTS):
        loop.write(j)  # before the disk fills: the loop's own files are not the fault
    journal = loop.out_dir / "journal.jsonl"
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    episodes = [(3, 6), (9, 12)]
    with loop.monitor:
        for j in range(N_CHECKPOINTS):
            for start, end in episodes:
                if j == start:
                    loop.monitor.wait(timeout=60)
                    log.fault(f"journal writes refused from step {loop.step(j)}", None,
                              reasons=["journal_failing"])
                    resource.setrlimit(resource.RLIMIT_FSIZE, (journal.stat().st_size + 40, hard))
                if j == end:
                    loop.monitor.wait(timeout=60)
                    resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
            loop.hand_over(j, path=loop.work / "ckpt" / f"checkpoint-{loop.step(j)}")
            time.sleep(0.05)
        resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
        loop.finish()


def scenario_two_monitors(work, log, n):
    """A second monitor started on the first one's out_dir (a second rank, or a restarted
    job while the first still runs), handed the same checkpoints."""
    from cod_monitor.exceptions import CODError

    first = Loop(work, log)
    with first.monitor:
        for j in range(N_CHECKPOINTS // 2):
            first.hand_over(j)
        log.fault("second monitor on the same out_dir", None,
                  reasons=["monitor_error", "evaluation_failing"])
        second = Loop(work, Log(), out_dir=first.out_dir)
        second.monitor.alert_callback = log.alert
        try:
            second.monitor.start()
        except CODError as exc:
            log.notes.append(f"second monitor refused at start: {exc}")
            log.alerts.append({"t": time.time(), "reason": "monitor_error", "step": None,
                               "message": str(exc)})
            second = None
        for j in range(N_CHECKPOINTS // 2, N_CHECKPOINTS):
            first.hand_over(j)
            if second is not None:
                second.monitor.on_checkpoint(first.step(j), tokens=first.run.target[j]["tokens"],
                                             path=first.work / "ckpt" / f"checkpoint-{first.step(j)}")
        first.finish()
        if second is not None:
            second.monitor.close(timeout=60)


def scenario_clock(work, log, n):
    """The wall clock jumps by hours, forward and back, mid-run (time.time patched in
    this process; the monitor's own timers are monotonic)."""
    real = time.time
    offset = [0.0]
    jumps = [3600.0, -7200.0, 86400.0, -86400.0, 600.0, -600.0][:n]

    loop = Loop(work, log)
    idx = spread(len(jumps))
    with loop.monitor:
        for j in range(N_CHECKPOINTS):
            if j in idx:
                k = idx.index(j)
                offset[0] += jumps[k]
                time.time = lambda: real() + offset[0]
                log.fault(f"wall clock jumps {jumps[k]:+g} s at step {loop.step(j)}", None,
                          needs_alert=False)
                log.faults[-1]["t"] = real()  # the harness's own clock stays real
            loop.hand_over(j)
            time.sleep(0.05)
        loop.finish()
    time.time = real


def scenario_ladder_replaced(work, log, n):
    """The ladder directory replaced by an incompatible one mid-run (a benchmark missing;
    then other sample ids), with ladder refresh on."""
    from cod_monitor.monitor import ForecastConfig
    from cod_monitor.synthetic import synthetic_run

    live = work / "live-ladder"
    run = synthetic_run(n_samples=300, seed=1)
    ladder0 = run.ladder.without_models([m.name for m in run.ladder.models_with_role("target")])
    ladder0.save(live)
    loop = Loop(work, log, forecast=ForecastConfig(n_bootstrap=0, refresh_interval=0.3), ladder=live)
    other = synthetic_run(n_samples=200, seed=2, benchmark=run.benchmark)
    variants = [
        ("a ladder without the monitored benchmark",
         lambda: synthetic_run(n_samples=300, seed=1, benchmark="other").ladder),
        ("a ladder of other samples (200 other ids)", lambda: other.ladder),
    ][:max(1, n)]
    at = spread(len(variants), first=4)
    with loop.monitor:
        loop.monitor.refresh(wait=True, timeout=120)  # the first fit, from the good ladder
        for j in range(N_CHECKPOINTS):
            if j in at:
                what, make = variants[at.index(j)]
                shutil.rmtree(live)
                make().save(live)
                log.fault(f"ladder replaced by {what} at step {loop.step(j)}", None,
                          reasons=list(FAULT_REASONS | {"forecast_unavailable"}))
                # what the periodic refresh (every 0.3 s) does, waited for
                loop.monitor.refresh(wait=True, timeout=120)
            loop.hand_over(j)
            time.sleep(0.05)
        loop.finish()
        versions = loop.monitor.forecast_version(run.benchmark)
    records = [json.loads(x) for x in (loop.out_dir / "journal.jsonl").read_text().splitlines() if x]
    errors = [r["error"][:120] for r in records if r["kind"] == "error" and "forecast" in str(r.get("where"))]
    log.notes.append(f"forecast version at the end: {versions}; forecast errors journaled: {errors}")


# ====================================================================== the Trainer
TRAINER_CHILD = r'''
import json, os, signal, sys, time
sys.path.insert(0, {faults_dir!r})
from transformers import Trainer, TrainerCallback
from fault_trainer import BENCH, TinyData, ladder_scale_compute, tiny_llama, training_args
from cod_monitor.integrations.hf import CODCallback
from cod_monitor.monitor import CODMonitor, ForecastConfig, PoolConfig, QueuePolicy
from cod_monitor.synthetic import synthetic_ladder

stop = {{"flag": False}}
calls, alerts = [], []
STATS = {{}}


class Before(TrainerCallback):
    t0 = None
    def _mark(self, *a, **k):
        Before.t0 = time.perf_counter()
    on_save = on_step_end = on_log = on_train_end = on_train_begin = _mark


class After(TrainerCallback):
    def _write(self, state, **extra):
        # atomic: a SIGKILL may land while it is written
        with open(STATS["path"] + ".tmp", "w") as fh:
            json.dump({{"calls": calls, "alerts": alerts, "step": state.global_step, **extra}}, fh)
        os.replace(STATS["path"] + ".tmp", STATS["path"])
    def _done(self, args, state, control, **k):
        if Before.t0 is not None:
            calls.append(time.perf_counter() - Before.t0)
            Before.t0 = None
        self._write(state)
    on_save = on_step_end = on_log = on_train_begin = _done
    def on_train_end(self, args, state, control, **k):
        drain = time.perf_counter() - Before.t0 if Before.t0 else 0.0
        Before.t0 = None
        self._write(state, drain=drain, ended=True)


class Graceful(TrainerCallback):
    def on_step_end(self, args, state, control, **k):
        if stop["flag"]:
            control.should_save = True
            control.should_training_stop = True
        return control


class Corrupt(TrainerCallback):
    def __init__(self, steps):
        self.steps = steps
    def on_save(self, args, state, control, **k):
        if state.global_step in self.steps:
            f = os.path.join(args.output_dir, f"checkpoint-{{state.global_step}}", "model.safetensors")
            data = open(f, "rb").read()
            open(f, "wb").write(data[: len(data) // 2])
            alerts.append({{"fault": "truncated", "step": state.global_step, "t": time.time()}})


def on_alert(a):
    alerts.append({{"t": time.time(), "reason": a.reason.value, "step": a.step, "message": a.message}})


def main(output_dir, out_dir, max_steps, stats_path, resume, corrupt):
    STATS["path"] = stats_path
    corrupt = [int(s) for s in corrupt.split(",") if s]
    # graceful: on SIGTERM, save and stop at the next step (as a launcher's handler does)
    signal.signal(signal.SIGTERM, lambda *a: stop.update(flag=True))
    # fault_trainer.make_monitor's, with a ladder small enough to fit in a second here
    monitor = CODMonitor(
        synthetic_ladder(n_samples=60, n_models=4, seed=0).ladder, {{BENCH: BENCH}},
        {{"accuracy": 0.5, "sleep": 0.3}},
        forecast=ForecastConfig(trajectory="compute", n_bootstrap=0, refresh_interval=None),
        pool=PoolConfig(job_fn="fault_jobs:read_weights", queue_policy=QueuePolicy(max_pending=10)),
        trackers=[], alert_callback=on_alert, out_dir=out_dir)
    cod = CODCallback(monitor, compute_from=ladder_scale_compute, drain_timeout=120)
    trainer = Trainer(model=tiny_llama(),
                      args=training_args(output_dir, int(max_steps),
                                         restore_callback_states_from_checkpoint=True),
                      train_dataset=TinyData(),
                      callbacks=[Graceful(), Corrupt(corrupt), Before(), cod, After()])
    ckpts = []
    if resume == "1" and os.path.isdir(output_dir):
        # the latest complete checkpoint: a kill mid-save leaves one without its state
        ckpts = sorted((int(d.split("-")[1]), d) for d in os.listdir(output_dir)
                       if d.startswith("checkpoint-")
                       and os.path.exists(os.path.join(output_dir, d, "trainer_state.json")))
    trainer.train(resume_from_checkpoint=os.path.join(output_dir, ckpts[-1][1]) if ckpts else None)


if __name__ == "__main__":  # spawned evaluation workers import this file too
    main(*sys.argv[1:7])
'''


def _trainer_child(work: Path, stats: Path, max_steps: int, resume: bool, corrupt=()):
    script = work / "trainer_child.py"
    script.write_text(TRAINER_CHILD.format(faults_dir=str(FAULTS_DIR)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(FAULTS_DIR), str(ROOT)]),
           "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.Popen(
        [sys.executable, str(script), str(work / "trainer"), str(work / "cod"), str(max_steps),
         str(stats), "1" if resume else "0", ",".join(str(s) for s in corrupt)],
        env=env, stdout=subprocess.DEVNULL, stderr=open(work / f"{stats.stem}.err", "w"))


def _read_stats(path: Path, log: Log) -> dict:
    try:
        stats = json.loads(path.read_text())
    except (OSError, ValueError):  # a child killed before it wrote any
        return {}
    log.calls.extend(stats.get("calls", []))
    log.drain_s = max(log.drain_s, stats.get("drain", 0.0))
    for a in stats.get("alerts", []):
        if "reason" in a:
            log.alerts.append(a)
    return stats


def _trainer_handed(work: Path, log: Log):
    """Every checkpoint the Trainer saved is one the monitor must account for."""
    from cod_monitor.monitor import read_journal

    records = read_journal(work / "cod" / "journal.jsonl") if (work / "cod" / "journal.jsonl").exists() else []
    steps = {r["step"] for r in records if r["kind"] in ("checkpoint", "error", "thinned")}
    saved = set(log.handed) | steps
    for s in saved:
        log.handed.setdefault(int(s), 0.0)


def scenario_corrupted(work, log, n):
    """A truncated model.safetensors at ``n`` of the Trainer's checkpoints (written by the
    Trainer, cut short before the monitor takes it)."""
    max_steps = 5 * (n + 1)
    corrupt = [5 * (i + 1) for i in range(n)]
    stats = work / "stats-0.json"
    log.out_dirs.append(str(work / "cod"))
    child = _trainer_child(work, stats, max_steps, False, corrupt)
    rc = child.wait(timeout=CHILD_TIMEOUT_S)
    log.crashed = rc != 0 or None
    s = _read_stats(stats, log)
    for a in [x for x in s.get("alerts", []) if x.get("fault")]:
        log.faults.append({"what": f"model.safetensors truncated at step {a['step']}", "step": a["step"],
                           "t": a["t"], "needs_alert": True, "reasons": ["evaluation_failing"]})
    for step in range(5, max_steps + 1, 5):
        log.handed[step] = 0.0
    log.notes.append(f"trainer ended at step {s.get('step')}")


def scenario_trainer_stop(kind):
    """``n`` interruptions of a Trainer run (SIGTERM with a graceful stop, or SIGKILL),
    each followed by a resume from its latest checkpoint, to 30 steps."""
    def scenario(work, log, n):
        max_steps = 30
        log.out_dirs.append(str(work / "cod"))
        for i in range(n + 1):
            stats = work / f"stats-{i}.json"
            child = _trainer_child(work, stats, max_steps, resume=i > 0)
            last = i == n
            if not last:
                target = 5 * (2 * i + 2)  # interrupt once this checkpoint exists, mid-interval
                deadline = time.monotonic() + CHILD_TIMEOUT_S
                while not (work / "trainer" / f"checkpoint-{target}").exists():
                    if child.poll() is not None or time.monotonic() > deadline:
                        break
                    time.sleep(0.05)
                time.sleep(0.4)
                sig = signal.SIGTERM if kind == "sigterm" else signal.SIGKILL
                log.fault(f"{sig.name} of training after checkpoint-{target}", None, needs_alert=False)
                child.send_signal(sig)
            rc = child.wait(timeout=CHILD_TIMEOUT_S)
            expected = 0 if (last or kind == "sigterm") else -signal.SIGKILL
            if rc != expected:
                log.crashed = True
                log.notes.append(f"child {i} exited {rc} (expected {expected})")
            _read_stats(stats, log)
        _trainer_handed(work, log)
        for step in range(5, max_steps + 1, 5):
            log.handed.setdefault(step, 0.0)
    return scenario


# ====================================================================== kinds
#: kind -> (scenario, driver, runs in the full run, faults per run, runs in --quick)
KINDS = {
    "worker_sigkill": (job_fault_scenario("worker SIGKILL", "crash", ["worker_died"]), "loop", 3, 5, 1),
    "hung_worker": (job_fault_scenario("hung worker", "hang", ["evaluation_timeout"],
                                       pool={"timeout_floor": 2.0}), "loop", 2, 4, 1),
    "evaluator_raising": (job_fault_scenario("evaluator raising", "raise", ["evaluation_failing"]),
                          "loop", 3, 5, 1),
    "checkpoint_deleted": (scenario_checkpoint_deleted, "loop", 3, 5, 1),
    "checkpoint_corrupted": (scenario_corrupted, "trainer", 2, 3, 1),
    "wandb_failing": (scenario_wandb, "loop", 2, 2, 1),
    "journal_failing": (scenario_journal, "loop", 2, 2, 1),
    # a worker slow to die (memory growing past the time limit) is killed by the timeout
    "eval_worker_oom": (job_fault_scenario("eval worker OOM-killed", "oom",
                                           ["worker_died", "evaluation_timeout"],
                                           config={"oom_mb": 200}), "loop", 2, 4, 1),
    "snapshot_removed": (scenario_snapshot_removed, "loop", 2, 4, 1),
    "two_monitors": (scenario_two_monitors, "loop", 3, 1, 1),
    "clock_jumps": (scenario_clock, "loop", 1, 6, 1),
    "ladder_replaced": (scenario_ladder_replaced, "loop", 2, 2, 1),
    "sigterm_graceful": (scenario_trainer_stop("sigterm"), "trainer", 2, 2, 1),
    "training_sigkill": (scenario_trainer_stop("sigkill"), "trainer", 2, 2, 1),
}


def run_child(kind: str, index: int, n: int, work: Path) -> dict:
    """Run one scenario in this process (the child); return its log."""
    scenario = KINDS[kind][0]
    log = Log()
    try:
        scenario(work, log, n)
    except Exception as exc:  # the training loop (or the harness) crashed
        import traceback

        log.crashed = True
        log.notes.append(f"{type(exc).__name__}: {exc}")
        traceback.print_exc()
    return log.to_dict()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="one run per kind, fewer faults")
    p.add_argument("--kinds", default=None, help="comma-separated kinds (default: all)")
    p.add_argument("--out", type=Path, default=RESULTS / "bench_faults.json")
    p.add_argument("--child", nargs=4, metavar=("KIND", "INDEX", "N", "WORK"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        kind, index, n, work = args.child
        result = run_child(kind, int(index), int(n), Path(work))
        print("RESULT " + json.dumps(result, default=str), flush=True)
        return 0

    kinds = args.kinds.split(",") if args.kinds else list(KINDS)
    t_start = time.perf_counter()
    rows, runs = {}, []
    root = Path(tempfile.mkdtemp(prefix="cod-bench-faults-"))
    for kind in kinds:
        _, driver, full_runs, per_run, quick_runs = KINDS[kind]
        n_runs = quick_runs if args.quick else full_runs
        n = max(1, per_run // 2) if args.quick else per_run
        totals = collections.Counter()
        worst = {"stall_s": 0.0, "drain_s": 0.0, "max_time_to_alert_s": None}
        notes, unalerted = [], []
        for i in range(n_runs):
            work = root / f"{kind}-{i}"
            work.mkdir(parents=True)
            t0 = time.perf_counter()
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(FAULTS_DIR), str(ROOT)]),
                   "OMP_NUM_THREADS": "1"}
            proc = subprocess.run([sys.executable, __file__, "--child", kind, str(i), str(n), str(work)],
                                  capture_output=True, text=True, env=env, timeout=CHILD_TIMEOUT_S * 3)
            lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
            if not lines:
                log = {"handed": {}, "faults": [{"what": "harness", "step": None, "t": 0,
                                                 "needs_alert": False, "reasons": []}] * n,
                       "alerts": [], "stall_s": 0.0, "drain_s": 0.0, "crashed": True,
                       "out_dirs": [], "notes": [f"child exited {proc.returncode}: {proc.stderr[-500:]}"]}
            else:
                log = json.loads(lines[-1][len("RESULT "):])
            acc = account(log)
            acc["wall_s"] = time.perf_counter() - t0
            runs.append({"kind": kind, "run": i, "driver": driver, **acc,
                         "faults_injected": [f["what"] for f in log["faults"]]})
            for key in ("faults", "handed", "observed", "lost_with_alert", "lost_without_alert",
                        "duplicated", "needing_alert", "alerted", "alerted_late"):
                totals[key] += acc[key]
            totals["crashed"] += int(acc["crashed"])
            worst["stall_s"] = max(worst["stall_s"], acc["stall_s"])
            worst["drain_s"] = max(worst["drain_s"], acc["drain_s"])
            if acc["max_time_to_alert_s"] is not None:
                worst["max_time_to_alert_s"] = max(worst["max_time_to_alert_s"] or 0.0,
                                                   acc["max_time_to_alert_s"])
            notes += acc["notes"]
            unalerted += acc["lost_steps_without_alert"]
            print(f"  {kind} run {i}: {acc['faults']} faults, lost {acc['lost_with_alert']}+"
                  f"{acc['lost_without_alert']} (alerted+not), dup {acc['duplicated']}, alerted "
                  f"{acc['alerted']}/{acc['needing_alert']}, stall {acc['stall_s']:.2f} s, "
                  f"{acc['wall_s']:.0f} s", flush=True)
        rows[kind] = {"driver": driver, "runs": n_runs, **dict(totals), **worst, "notes": notes,
                      "lost_steps_without_alert": unalerted}
    wall = time.perf_counter() - t_start
    table = format_table(rows)
    print(table)
    goals = check_goals(rows)
    for g in goals:
        print(f"{g['goal']}: {'met' if g['met'] else 'NOT met'} ({g['value']})")
    print(f"wall time {wall:.0f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "date": time.strftime("%Y-%m-%d"), "quick": args.quick, "wall_s": wall,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version()},
        "kinds": rows, "runs": runs, "goals": goals, "table": table,
    }, indent=2, default=str))
    if any(r["crashed"] for r in runs):
        print(f"work directories of the runs kept in {root} (a run crashed)")
    else:
        shutil.rmtree(root, ignore_errors=True)
    return 0


def format_table(rows: dict) -> str:
    head = ("| kind | driver | runs | faults | crashed | handed | lost (alerted) | lost (silent) "
            "| duplicated | alerted / needing | later than 1 eval | max time to alert (s) "
            "| longest stall (s) | end drain (s) |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    tot = collections.Counter()
    for kind, r in rows.items():
        t = "—" if r["max_time_to_alert_s"] is None else f"{r['max_time_to_alert_s']:.1f}"
        lines.append(f"| {kind} | {r['driver']} | {r['runs']} | {r.get('faults', 0)} | "
                     f"{r.get('crashed', 0)} | {r.get('handed', 0)} | {r.get('lost_with_alert', 0)} | "
                     f"{r.get('lost_without_alert', 0)} | {r.get('duplicated', 0)} | "
                     f"{r.get('alerted', 0)} / {r.get('needing_alert', 0)} | {r.get('alerted_late', 0)} | "
                     f"{t} | {r['stall_s']:.2f} | {r['drain_s']:.1f} |")
        for k in ("faults", "crashed", "handed", "lost_with_alert", "lost_without_alert",
                  "duplicated", "alerted", "needing_alert", "alerted_late"):
            tot[k] += r.get(k, 0)
    lines.append(f"| **total** | | | {tot['faults']} | {tot['crashed']} | {tot['handed']} | "
                 f"{tot['lost_with_alert']} | {tot['lost_without_alert']} | {tot['duplicated']} | "
                 f"{tot['alerted']} / {tot['needing_alert']} | {tot['alerted_late']} | | "
                 f"{max(r['stall_s'] for r in rows.values()):.2f} | "
                 f"{max(r['drain_s'] for r in rows.values()):.1f} |")
    return "\n".join(lines)


def check_goals(rows: dict) -> list[dict]:
    s = lambda k: sum(r.get(k, 0) for r in rows.values())  # noqa: E731
    stall = max(r["stall_s"] for r in rows.values())
    return [
        {"goal": "0 training crashes", "met": s("crashed") == 0, "value": s("crashed")},
        {"goal": "0 duplicated observations", "met": s("duplicated") == 0, "value": s("duplicated")},
        {"goal": "0 observations lost without an alert", "met": s("lost_without_alert") == 0,
         "value": s("lost_without_alert")},
        {"goal": "every fault alerted within one evaluation",
         "met": s("alerted") == s("needing_alert") and s("alerted_late") == 0,
         "value": f"{s('alerted')} of {s('needing_alert')} alerted, {s('alerted_late')} late"},
        {"goal": "no training stall above 5 s", "met": stall <= 5.0, "value": f"{stall:.2f} s"},
        {"goal": ">= 100 faults of >= 10 kinds", "met": s("faults") >= 100 and len(rows) >= 10,
         "value": f"{s('faults')} faults, {len(rows)} kinds"},
    ]


if __name__ == "__main__":
    sys.exit(main())
