"""`CODMonitor`: forecast, evaluate and watch a training run from any loop.

The training loop calls :meth:`CODMonitor.on_checkpoint` at each checkpoint; the call
snapshots the weights and queues their evaluation, and returns at once. Evaluations
run in worker processes on held-out devices (:mod:`~cod_monitor.runtime.pool`); their
results are compared with the forecast trajectory
(:mod:`~cod_monitor.cod.trajectory`) by the pure drift decision
(:mod:`~cod_monitor.monitor.drift`), written to a durable journal
(:mod:`~cod_monitor.monitor.journal`) and sent to trackers
(:class:`~cod_monitor.trackers.base.Tracker`). A restarted monitor resumes from its
journal.

Threads
-------
``on_checkpoint`` runs on the training thread and does only the snapshot (hard
links, or a CPU copy of a state dict), one journal record and a queue put. The rest
runs on the monitor's own threads: the pool's dispatcher, a snapshot writer (state
dicts), a forecaster thread (initial fit and ladder refreshes) and, with
``background=True``, a poller that processes results every ``poll_interval`` seconds.
Trackers, the alert callback and drift decisions run on the poller (or on whichever
thread calls :meth:`~CODMonitor.poll` / :meth:`~CODMonitor.close`), one at a time.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import math
import os
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from cod_monitor._io import atomic_write, json_default
from cod_monitor.ladder import Ladder, ladder_fingerprint, load_ladder
from cod_monitor.monitor.drift import (
    DriftConfig,
    DriftState,
    decide,
    evaluation_failure_alert,
)
from cod_monitor.monitor.journal import (
    JOURNAL_NAME,
    Journal,
    alert_to_dict,
    forecast_to_dict,
)
from cod_monitor.runtime.pool import EvalPool, Job, JobOutcome, QueuePolicy, device_env
from cod_monitor.runtime.snapshots import (
    SnapshotWriter,
    cpu_state_dict,
    delete_snapshot,
    snapshot_directory,
)
from cod_monitor.cod.trajectory import (
    TRAJECTORY_MODES,
    TrajectoryForecaster,
    check_finished_method,
    is_spread,
)
from cod_monitor.records import (
    Alert,
    AlertReason,
    EvalResult,
    ForecastPoint,
    Observation,
)

__all__ = ["CODMonitor"]

logger = logging.getLogger(__name__)

SNAPSHOT_DIR = "snapshots"
SUMMARY_NAME = "summary.json"
_CURVE_POINTS = 32




def _stat_key(path) -> tuple:
    path = Path(path)
    out = []
    for name in ("ladder.json", "scores.csv", "scores.csv.gz"):
        try:
            st = (path / name).stat()
            out.append((name, st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((name, None, None))
    return tuple(out)


@dataclass
class _Forecast:
    version: int
    model: TrajectoryForecaster
    fingerprint: str


@dataclass
class _Step:
    compute: float | None
    tokens: float | None
    snapshot: str
    remaining: set
    deleted: bool = False


class CODMonitor:
    """Watch a training run: snapshot, evaluate asynchronously, forecast, alert on drift.

    Parameters
    ----------
    ladder : Ladder or path
        The model ladder. A directory is re-read when its files change (every
        ``refresh_interval`` seconds), re-fitted in the background and logged as a new
        forecast version.
    eval_sets : mapping of str to EvalSet, path or dict
        Benchmark name (as in the ladder) -> its evaluation set: an
        :class:`~cod_monitor.evaluators.EvalSet`, a JSON-lines path, or
        ``EvalSet.from_jsonl`` keyword arguments (``{"path": ..., "stop": "\\n"}``).
        Evaluate the target as the ladder was evaluated (same set, same evaluator).
    evaluator : dict, optional
        Evaluator config for :func:`cod_monitor.evaluators.make_evaluator` (default
        ``{"backend": "hf"}``); an HF config without ``device`` gets the worker's.
    devices : sequence of str or int, default ('cpu',)
        One evaluation worker per entry (``'cpu'``, ``'cuda:1'``, ...).
    trackers : sequence of Tracker, default ()
    out_dir : str or path, default 'cod_monitor_out'
        Journal, snapshots and ``summary.json``. Reusing it resumes the run.
    every : int, default 1
        Evaluate one checkpoint in ``every`` calls of :meth:`on_checkpoint`.
    trajectory : {'auto', 'compute', 'trajectory', 'trajectory_e2e', 'recipe'}, default 'auto'
        How a checkpoint's forecast is made (see
        :mod:`cod_monitor.cod.trajectory`); ``'auto'`` uses the (N, D) trajectory law
        on the full set (``'trajectory_e2e'``) when the ladder has runs of intermediate
        checkpoints, else ``'compute'``.
    trajectory_method : str, optional
        The forecaster of finished models behind the ``'compute'`` and ``'recipe'``
        modes, a name of :data:`cod_monitor.methods.METHODS` (``'cod'``,
        ``'e2e-exp'``, ...); ``None``: COD with ``cod_params``.
    level : float, default 0.9
        Coverage of the forecast interval.
    drift : DriftConfig, optional
        Tolerance, patience, hysteresis and cumulative-shortfall rule of the drift
        decision; its ``band_level`` is set to ``level``.
    queue_policy : QueuePolicy or str, default 'latest'
        What happens when evaluation falls behind (see :mod:`cod_monitor.runtime.pool`).
    alert_callback : callable, optional
        ``alert_callback(alert)`` for every alert, on a monitor thread.
    params : float, optional
        Parameters of the monitored model; otherwise ``compute / (6 * tokens)`` of the
        first checkpoint that gives both.
    tokens_per_step : float, optional
        Tokens per optimizer step, for checkpoints given without ``tokens``.
    max_steps : int, optional
        Length of the run, to draw the forecast curve to its end.
    config_dir : str or path, optional
        Configuration (and tokenizer) files of the model: required for state-dict
        snapshots, and fills in files a checkpoint directory lacks.
    job_fn : callable or str, optional
        Replaces the evaluator in the workers (see :class:`EvalPool`).
    timeout : float, optional
        Seconds one evaluation attempt may take.
    max_retries : int, default 2
    keep_snapshots : bool, default False
        Keep snapshots after their evaluation.
    link : bool, default True
        Hard link checkpoint files into snapshots (copy when ``False``).
    refresh_interval : float or None, default 60
        Seconds between checks of the ladder directory; ``None`` never re-reads it.
    background : bool, default True
        Process results on a background thread; otherwise only in :meth:`poll`
        and :meth:`close`.
    poll_interval : float, default 0.5
    n_bootstrap : int, default 100
        Bootstrap replicates of the forecast interval.
    cod_params : dict, optional
        Extra :class:`~cod_monitor.cod.forecaster.CODForecaster` parameters.
    run_sd : float or mapping of str to float, optional
        How much one healthy run's accuracy varies with its seed (a standard deviation,
        per benchmark when a mapping), added to the forecast band; see
        :class:`~cod_monitor.cod.trajectory.TrajectoryForecaster`. Estimate it from
        runs of one ladder size trained with several seeds. ``None``: 0.
    cpu_threads : int, optional
        Threads of CPU evaluation workers.
    run_name : str, optional

    Attributes
    ----------
    stop_requested : bool
        Set when a below-band alert is raised (an HF callback with ``stop_on_drift``
        reads it); never cleared by the monitor.
    observations : list of Observation
        Every evaluated checkpoint judged so far (without per-sample results, which
        stay in the journal).

    Notes
    -----
    :meth:`on_checkpoint` never raises into the training loop: a failure is logged,
    journaled and reported as an ``EVALUATION_FAILING`` alert.

    Examples
    --------
    >>> with CODMonitor(ladder="ladder/", eval_sets={"gsm8k": "gsm8k.jsonl"},
    ...                 evaluator={"backend": "hf", "mode": "exact"},
    ...                 out_dir="runs/70b/cod") as monitor:  # doctest: +SKIP
    ...     for step in range(1, max_steps + 1):
    ...         train_step()
    ...         if step % 1000 == 0:
    ...             model.save_pretrained(f"ckpt/{step}")
    ...             monitor.on_checkpoint(step, tokens=step * tokens_per_step,
    ...                                   path=f"ckpt/{step}")
    """

    def __init__(
        self,
        ladder,
        eval_sets: Mapping,
        evaluator: dict | None = None,
        *,
        devices: Sequence = ("cpu",),
        trackers: Sequence = (),
        out_dir="cod_monitor_out",
        every: int = 1,
        trajectory: str = "auto",
        trajectory_method: str | None = None,
        level: float = 0.9,
        drift: DriftConfig | None = None,
        queue_policy: QueuePolicy | str = "latest",
        alert_callback: Callable[[Alert], None] | None = None,
        params: float | None = None,
        tokens_per_step: float | None = None,
        max_steps: int | None = None,
        config_dir=None,
        job_fn=None,
        timeout: float | None = None,
        max_retries: int = 2,
        keep_snapshots: bool = False,
        link: bool = True,
        refresh_interval: float | None = 60.0,
        background: bool = True,
        poll_interval: float = 0.5,
        n_bootstrap: int = 100,
        cod_params: dict | None = None,
        run_sd: float | Mapping[str, float] | None = None,
        cpu_threads: int | None = None,
        run_name: str | None = None,
    ):
        if not isinstance(ladder, (Ladder, str, os.PathLike)):
            raise TypeError(f"`ladder` should be a Ladder or a directory path, got {type(ladder).__name__}")
        if not isinstance(eval_sets, Mapping) or not eval_sets:
            raise ValueError(
                "The 'eval_sets' parameter of CODMonitor must be a non-empty mapping of benchmark "
                f"name to evaluation set. Got {eval_sets!r} instead."
            )
        if evaluator is not None and not isinstance(evaluator, dict):
            raise TypeError(f"`evaluator` should be a config dict, got {type(evaluator).__name__}")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"The 'every' parameter of CODMonitor must be an int in [1, inf). Got {every!r} instead.")
        if trajectory not in TRAJECTORY_MODES:
            raise ValueError(
                f"The 'trajectory' parameter of CODMonitor must be a str among {list(TRAJECTORY_MODES)}. "
                f"Got {trajectory!r} instead."
            )
        check_finished_method(trajectory_method, "The 'trajectory_method' parameter of CODMonitor")
        if not 0 < level < 1:
            raise ValueError(f"The 'level' parameter of CODMonitor must be a float in (0, 1). Got {level!r} instead.")
        sds = run_sd.values() if isinstance(run_sd, Mapping) else [0.0 if run_sd is None else run_sd]
        if not all(is_spread(v) for v in sds):
            raise ValueError(
                "The 'run_sd' parameter of CODMonitor must be None, a float in [0, inf) or a "
                f"mapping of benchmark name to such floats. Got {run_sd!r} instead."
            )
        for name, value in (("params", params), ("tokens_per_step", tokens_per_step)):
            if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(
                    f"The {name!r} parameter of CODMonitor must be a float in (0, inf) or None. Got {value!r} instead."
                )
        self.ladder = ladder
        self.eval_sets = dict(eval_sets)
        self.benchmarks = list(self.eval_sets)
        self.evaluator = dict(evaluator) if evaluator is not None else {"backend": "hf"}
        self.devices = list(devices) if not isinstance(devices, (str, int)) else [devices]
        if not self.devices:
            raise ValueError("The 'devices' parameter of CODMonitor must be a non-empty sequence. Got [] instead.")
        for d in self.devices:
            device_env(d)  # fail here, not in the first on_checkpoint
        self.trackers = list(trackers)
        self.out_dir = Path(out_dir)
        self.every = every
        self.trajectory = trajectory
        self.trajectory_method = trajectory_method
        self.level = level
        # the shortfall rule reads the band's half-width at the coverage it was made at
        self.drift = dataclasses.replace(drift if drift is not None else DriftConfig(),
                                         band_level=level)
        self.queue_policy = QueuePolicy.parse(queue_policy)
        self.alert_callback = alert_callback
        self.params = params
        self.tokens_per_step = tokens_per_step
        self.max_steps = max_steps
        self.config_dir = config_dir
        self.job_fn = job_fn
        self.timeout = timeout
        self.max_retries = max_retries
        self.keep_snapshots = keep_snapshots
        self.link = link
        self.refresh_interval = refresh_interval
        self.background = background
        self.poll_interval = poll_interval
        self.n_bootstrap = n_bootstrap
        self.cod_params = cod_params
        self.run_sd = run_sd
        self.cpu_threads = cpu_threads
        self.run_name = run_name or self.out_dir.name

        self.stop_requested = False
        self.observations: list[Observation] = []
        self._start_lock = threading.Lock()
        self._state_lock = threading.RLock()  # steps, statuses (short sections)
        self._poll_lock = threading.RLock()  # result processing, trackers
        self._started = False
        self._closed = False
        self._n_calls = 0
        self._steps: dict[int, _Step] = {}
        self._status: dict[tuple, str] = {}
        self._awaiting: dict[str, list[Observation]] = {b: [] for b in self.benchmarks}
        self._drift: dict[str, DriftState] = {b: DriftState() for b in self.benchmarks}
        self._forecasts: dict[str, _Forecast] = {}
        self._forecast_errors: dict[str, str] = {}
        self._prior_versions: dict[str, tuple] = {}
        self._events: queue.Queue = queue.Queue()
        self._unreturned: collections.deque = collections.deque(maxlen=10_000)
        self._alert_counts: collections.Counter = collections.Counter()
        self._trackers_started = False
        self._trackers_finished = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._refit_request = threading.Event()
        self._force_refit = False
        self._fit_done = threading.Condition()
        self._fit_generation = 0
        self._compute_scale = 1.0
        self._threads: list[threading.Thread] = []
        self._journal: Journal | None = None
        self._pool: EvalPool | None = None
        self._writer: SnapshotWriter | None = None
        self._writes_pending = 0
        self._run_info: dict = {}

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> CODMonitor:
        """Open the journal (resuming from it), start the workers and threads; idempotent.

        Called by :meth:`on_checkpoint`, :meth:`poll` and ``with``; call it before
        training to keep the first checkpoint's call short.
        """
        with self._start_lock:
            if self._started:
                return self
            if self._closed:
                raise RuntimeError("CODMonitor is closed")
            self.out_dir.mkdir(parents=True, exist_ok=True)
            (self.out_dir / SNAPSHOT_DIR).mkdir(exist_ok=True)
            self._journal = Journal(self.out_dir / JOURNAL_NAME).open()
            state = self._journal.replay()
            self._pool = EvalPool(
                self.devices, job_fn=self.job_fn, timeout=self.timeout, max_retries=self.max_retries,
                queue_policy=self.queue_policy, cpu_threads=self.cpu_threads,
                on_outcome=lambda _o: self._wake.set(),
            )
            self._writer = SnapshotWriter()
            self._run_info = self._make_run_info(state.resumed)
            self._journal.append("start", run_info=self._run_info, resumed=state.resumed)
            self._resume(state)
            self._pool.start()
            self._started = True
            self._spawn(self._fit_loop, "cod-forecast")
            if self.background:
                self._spawn(self._poll_loop, "cod-monitor")
        return self

    def _spawn(self, target, name):
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def _ladder_summary(self) -> dict:
        """Source, model counts and compute unit of the ladder (``ladder.json`` only)."""
        if isinstance(self.ladder, Ladder):
            models = [m.to_dict() for m in self.ladder.models]
            out = {"source": "in-memory", "compute_unit": self.ladder.compute_unit}
        else:
            out = {"source": str(self.ladder)}
            try:
                meta = json.loads((Path(self.ladder) / "ladder.json").read_text())
                models = list(meta.get("models") or [])
                out["compute_unit"] = meta.get("compute_unit")
            except (OSError, ValueError, AttributeError):
                return out
        ladder = [m for m in models if m.get("role", "ladder") == "ladder"]
        out.update(
            n_models=len(models),
            n_ladder=len(ladder),
            runs=len({m.get("run") or f"params={m.get('params')}" for m in ladder}),
            n_target=sum(m.get("role") == "target" for m in models),
        )
        return out

    def _run_sd(self, benchmark: str) -> float:
        if isinstance(self.run_sd, Mapping):
            return float(self.run_sd.get(benchmark, 0.0))
        return float(self.run_sd or 0.0)

    def _make_run_info(self, resumed: bool) -> dict:
        return {
            "run_name": self.run_name,
            "out_dir": str(self.out_dir),
            "benchmarks": list(self.benchmarks),
            "ladder": self._ladder_summary(),
            "trajectory": self.trajectory,
            "trajectory_method": self.trajectory_method,
            "run_sd": dict(self.run_sd) if isinstance(self.run_sd, Mapping) else self.run_sd,
            "level": self.level,
            "params": self.params,
            "tokens_per_step": self.tokens_per_step,
            "max_steps": self.max_steps,
            "devices": [str(d) for d in self.devices],
            "evaluator": self.evaluator if self.job_fn is None else {"job_fn": str(self.job_fn)},
            "drift": asdict(self.drift),
            "queue_policy": asdict(self.queue_policy),
            "resumed": resumed,
        }

    def _resume(self, state) -> None:
        """Rebuild steps, statuses, drift states and pending jobs from the journal."""
        for key, status in state.status.items():
            self._status[key] = status
        for step, rec in state.checkpoints.items():
            remaining = {b for b in rec.get("benchmarks", ()) if state.status.get((step, b)) == "pending"}
            self._steps[step] = _Step(rec.get("compute"), rec.get("tokens"), rec["snapshot"], remaining,
                                      deleted=step in state.deleted)
            if self.params is None and rec.get("params"):
                self.params = float(rec["params"])
        for b, d in state.drift.items():
            if b in self._drift:
                self._drift[b] = DriftState.from_dict(d)
        for b, rec in state.forecasts.items():
            self._prior_versions[b] = (int(rec["version"]), rec.get("fingerprint"))
        for (step, b), rec in state.decisions.items():
            if b in self._drift and (step, b) in state.results:
                res = state.results[(step, b)]
                self.observations.append(Observation(
                    step=step, compute=_nan_if_none(res.get("compute")), benchmark=b,
                    accuracy=float(res["accuracy"]), tokens=res.get("tokens")))
        self.observations.sort(key=lambda o: (o.step, o.benchmark))
        for step, b in state.undecided:
            if b in self._awaiting:
                res = state.results[(step, b)]
                self._awaiting[b].append(Observation(
                    step=step, compute=_nan_if_none(res.get("compute")), benchmark=b,
                    accuracy=float(res["accuracy"]), tokens=res.get("tokens")))
        for b in state.alerts:
            self._alert_counts[b.get("reason")] += 1
        resubmitted = 0
        for step, b in state.pending:
            st = self._steps[step]
            if b not in self.eval_sets:
                self._terminal(step, b, "skipped", reason="benchmark no longer monitored")
                continue
            if not Path(st.snapshot).is_dir():
                error = f"the snapshot {st.snapshot} of a pending job is gone (crash while writing it?)"
                self._terminal(step, b, "failed", error=error, attempts=0)
                self._events.put(("alert", evaluation_failure_alert(step, b, error, 0)))
                continue
            self._pool.submit(self._job(step, b))
            resubmitted += 1
        for step, st in self._steps.items():
            if not st.remaining and not st.deleted:
                self._maybe_delete(step)
        if state.resumed:
            logger.info(
                "CODMonitor resumed from %s: %d checkpoint(s) known, %d observation(s), %d job(s) resubmitted",
                self._journal.path, len(self._steps), len(self.observations), resubmitted,
            )

    def close(self, timeout: float | None = None) -> dict:
        """Drain evaluations (up to ``timeout`` seconds), finish trackers, write the summary.

        Jobs unfinished at the deadline stay pending in the journal (and their
        snapshots on disk) and are resubmitted by the next monitor on this ``out_dir``.
        Idempotent.

        Returns
        -------
        dict
            The summary (also written to ``out_dir/summary.json``).
        """
        with self._start_lock:
            if self._closed:
                return self._summary_cache if hasattr(self, "_summary_cache") else {}
            self._closed = True
            started = self._started
        if not started:
            self._summary_cache = {}
            return {}
        deadline = None if timeout is None else time.monotonic() + timeout

        def remaining():
            return None if deadline is None else max(0.0, deadline - time.monotonic())

        self._writer.close(wait=True)
        # the first forecast must exist before results can be judged
        with self._fit_done:
            self._fit_done.wait_for(lambda: self._fit_generation > 0 or self._stop.is_set(),
                                    timeout=remaining())
        self._pool.close(timeout=remaining())
        self._stop.set()
        self._refit_request.set()
        self._wake.set()
        for t in self._threads:
            if t.name == "cod-monitor":
                t.join()
        with self._poll_lock:
            self._process()
            self._decide_ready(force=True)
            summary = self.summary()
            self._ensure_trackers_started()
            if not self._trackers_finished:
                self._track("finish", summary)
                self._trackers_finished = True
            try:
                atomic_write(self.out_dir / SUMMARY_NAME,
                             json.dumps(summary, indent=2, default=json_default))
            except OSError:
                logger.warning("CODMonitor could not write %s", self.out_dir / SUMMARY_NAME, exc_info=True)
            self._journal.append("close", summary=summary)
            self._journal.close()
        for t in self._threads:
            t.join(timeout=remaining() if deadline is not None else None)
        self._summary_cache = summary
        return summary

    def __enter__(self) -> CODMonitor:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # --------------------------------------------------------------- training side

    def on_checkpoint(self, step: int, *, tokens: float | None = None, compute: float | None = None,
                      path=None, state_dict=None, config_dir=None) -> None:
        """Snapshot a checkpoint and queue its evaluation; returns at once, never raises.

        Parameters
        ----------
        step : int
            Training step (the x-axis of every record; a step already seen, in this
            session or in the journal, is not evaluated again).
        tokens : float, optional
            Training tokens seen so far (else ``step * tokens_per_step``).
        compute : float, optional
            Training FLOPs so far (else ``6 * params * tokens``).
        path : str or path, optional
            Checkpoint directory (``save_pretrained`` layout). Snapshotted now, with
            hard links, because the trainer may delete it right after.
        state_dict : mapping, optional
            In-memory weights instead of ``path``: copied to CPU now, written by a
            background thread. Needs ``config_dir``.
        config_dir : str or path, optional
            Overrides the monitor's ``config_dir`` for this checkpoint.
        """
        try:
            self._on_checkpoint(step, tokens, compute, path, state_dict, config_dir)
        except Exception as exc:  # never into the training loop
            logger.warning("CODMonitor could not take the checkpoint at step %s: %s", step, exc,
                           exc_info=True)
            self._record_error(step, "on_checkpoint", exc)

    def _on_checkpoint(self, step, tokens, compute, path, state_dict, config_dir):
        if self._closed:
            logger.warning("CODMonitor.on_checkpoint(step=%s) after close() is ignored", step)
            return
        self.start()
        self._n_calls += 1
        if (self._n_calls - 1) % self.every:
            return
        if isinstance(step, bool) or int(step) != step or step < 0:
            raise ValueError(f"`step` should be a non-negative int, got {step!r}")
        step = int(step)
        if (path is None) == (state_dict is None):
            raise ValueError("on_checkpoint needs exactly one of path= and state_dict=")
        with self._state_lock:
            if step in self._steps:
                logger.debug("step %d already submitted or evaluated; not evaluated again", step)
                return
        tokens, compute, params = self._resolve(step, tokens, compute)
        dest = self.out_dir / SNAPSHOT_DIR / f"step-{step:012d}"
        config_dir = config_dir if config_dir is not None else self.config_dir
        record = {"step": step, "compute": compute, "tokens": tokens, "params": params,
                  "snapshot": str(dest), "benchmarks": list(self.benchmarks)}
        if path is not None:
            snap = snapshot_directory(path, dest, link=self.link, extra_from=config_dir)
            with self._state_lock:
                self._register(step, compute, tokens, dest)
            self._journal.append("checkpoint", method=snap.method, **record)
            self._submit_all(step)
            logger.debug("checkpoint %d snapshotted (%s, %d files) in %.1f ms", step, snap.method,
                         snap.n_files, 1e3 * snap.seconds)
        else:
            if config_dir is None:
                raise ValueError("a state_dict snapshot needs config_dir= (the model's config.json and tokenizer)")
            cpu = cpu_state_dict(state_dict)
            with self._state_lock:
                self._register(step, compute, tokens, dest)
                self._writes_pending += 1
            self._journal.append("checkpoint", method="safetensors", **record)
            self._writer.submit(cpu, dest, config_dir=config_dir,
                                on_done=lambda fut, s=step: self._after_write(s, fut))

    def _register(self, step, compute, tokens, dest):
        self._steps[step] = _Step(compute, tokens, str(dest), set(self.benchmarks))
        for b in self.benchmarks:
            self._status[(step, b)] = "pending"

    def _resolve(self, step, tokens, compute):
        if tokens is None and self.tokens_per_step is not None:
            tokens = float(step) * float(self.tokens_per_step)
        tokens = None if tokens is None else float(tokens)
        compute = None if compute is None else float(compute)
        if self.params is None and tokens and compute:
            self.params = compute / (6.0 * tokens)
        if compute is None and tokens and self.params:
            compute = 6.0 * self.params * tokens
        return tokens, compute, self.params

    def _after_write(self, step, fut):
        with self._state_lock:
            self._writes_pending -= 1
        exc = fut.exception()
        if exc is None:
            self._submit_all(step)
            return
        logger.warning("CODMonitor could not write the snapshot of step %d: %s", step, exc)
        error = f"could not write the snapshot: {exc!r}"
        for b in self.benchmarks:
            self._terminal(step, b, "failed", error=error, attempts=0)
            self._events.put(("alert", evaluation_failure_alert(step, b, error, 0)))
        self._wake.set()

    def _job(self, step, b) -> Job:
        return Job(job_id=f"{step}:{b}", snapshot=self._steps[step].snapshot, eval_set=self.eval_sets[b],
                   config=self.evaluator, group=step)

    def _submit_all(self, step):
        for b in self.benchmarks:
            self._pool.submit(self._job(step, b))

    def _record_error(self, step, where, exc):
        try:
            if self._journal is not None:
                self._journal.append("error", step=_int_or_none(step), where=where, error=repr(exc))
            for b in self.benchmarks:
                self._events.put(("alert", Alert(
                    step=_int_or_none(step) or 0, benchmark=b, reason=AlertReason.EVALUATION_FAILING,
                    message=(f"cod/{b} at step {step}: the checkpoint could not be queued for evaluation "
                             f"({type(exc).__name__}: {exc}); it has no observation."),
                )))
            self._wake.set()
        except Exception:  # pragma: no cover - the journal's disk is gone
            logger.warning("CODMonitor could not record a failure", exc_info=True)

    # ---------------------------------------------------------------- forecasting

    def _fit_loop(self):
        source = None if isinstance(self.ladder, Ladder) else Path(self.ladder)
        last_stat = last_fp = None
        first = True
        while not self._stop.is_set():
            force, self._force_refit = self._force_refit, False
            try:
                if first or force:
                    stat = None if source is None else _stat_key(source)
                    fp = "in-memory" if source is None else ladder_fingerprint(source)
                    self._fit_all(fp, force=force)
                    last_stat, last_fp = stat, fp
                elif source is not None:
                    stat = _stat_key(source)
                    if stat != last_stat:
                        fp = ladder_fingerprint(source)
                        if fp != last_fp:
                            logger.info("the ladder %s changed; re-fitting the forecasts", source)
                            self._fit_all(fp)
                        last_stat, last_fp = stat, fp
            except Exception as exc:
                # an unreadable ladder (e.g. caught mid-rewrite): retried at the next check
                logger.warning("CODMonitor could not load the ladder %s: %s", self.ladder, exc)
                if first:
                    for b in self.benchmarks:
                        self._events.put(("forecast_error", b, f"could not load the ladder: {exc}"))
            finally:
                first = False
                with self._fit_done:
                    self._fit_generation += 1
                    self._fit_done.notify_all()
                self._wake.set()
            if source is None or self.refresh_interval is None:
                self._refit_request.wait()
            else:
                self._refit_request.wait(self.refresh_interval)
            self._refit_request.clear()

    def _fit_all(self, fingerprint, force=False):
        ladder = load_ladder(self.ladder)
        comp = np.array([m.compute / (6.0 * m.params * m.tokens) for m in ladder.models])
        self._compute_scale = float(np.median(comp)) if len(comp) else 1.0
        for b in self.benchmarks:
            if self._stop.is_set():
                return
            t0 = time.perf_counter()
            try:
                model = TrajectoryForecaster(
                    mode=self.trajectory, method=self.trajectory_method,
                    cod_params=self.cod_params, n_bootstrap=self.n_bootstrap,
                    run_sd=self._run_sd(b),
                ).fit(ladder, b).prepare()
            except Exception as exc:
                logger.warning("CODMonitor could not fit the forecast of %s: %s", b, exc)
                self._events.put(("forecast_error", b, f"{type(exc).__name__}: {exc}"))
                continue
            logger.debug("forecast of %s fitted in %.1fs (mode %s)", b, time.perf_counter() - t0, model.mode_)
            self._events.put(("forecast", b, model, fingerprint, force))

    def refresh(self, *, force: bool = False, wait: bool = True, timeout: float | None = None) -> bool:
        """Check the ladder now: re-fit if its files changed (always with ``force``).

        The fit runs on the forecaster thread; with ``wait`` this call blocks until it
        has finished and its new version has been logged.

        Returns
        -------
        bool
            False if ``wait`` timed out.
        """
        self.start()
        with self._fit_done:
            target = self._fit_generation + 1
        if force:
            self._force_refit = True
        self._refit_request.set()
        if not wait:
            return True
        with self._fit_done:
            ok = self._fit_done.wait_for(lambda: self._fit_generation >= target, timeout=timeout)
        if not self.background:
            self.poll()
        return ok

    def _set_forecast(self, b, model, fingerprint, force=False):
        prior = self._forecasts.get(b)
        if prior is not None:
            if prior.fingerprint == fingerprint and not force:
                return
            version = prior.version + 1
        elif b in self._prior_versions:
            v, fp = self._prior_versions[b]
            version = v if fp == fingerprint else v + 1
        else:
            version = 1
        self._forecasts[b] = _Forecast(version, model, fingerprint)
        self._forecast_errors.pop(b, None)
        report = model.report()
        report["fingerprint"] = fingerprint
        self._journal.append("forecast", benchmark=b, version=version, mode=model.mode_,
                             fingerprint=fingerprint, report=report)
        curve = self._curve(b)
        self._track("log_forecast", b, version, curve, report)
        logger.info("cod/%s: forecast version %d (%s mode) ready", b, version, model.mode_)

    def _curve(self, b) -> list[ForecastPoint]:
        with self._state_lock:
            known = sorted((s, st.tokens, st.compute) for s, st in self._steps.items())
        points = {s: (tok, comp) for s, tok, comp in known}
        if self.max_steps and self.tokens_per_step:
            grid = np.unique(np.linspace(0, self.max_steps, _CURVE_POINTS + 1)[1:].round().astype(int))
            for s in grid:
                points.setdefault(int(s), (float(s) * self.tokens_per_step, None))
        out = []
        for s in sorted(points):
            tok, comp = points[s]
            fp = self.forecast_point(b, s, tokens=tok, compute=comp)
            if fp is not None:
                out.append(fp)
        return out

    def forecast_point(self, benchmark: str, step: int, *, tokens=None, compute=None) -> ForecastPoint | None:
        """The current forecast for a checkpoint, or ``None`` when none is available.

        Parameters
        ----------
        benchmark : str
        step : int
        tokens, compute : float, optional
            As in :meth:`on_checkpoint`.

        Returns
        -------
        ForecastPoint or None
        """
        fc = self._forecasts.get(benchmark)
        if fc is None:
            return None
        if tokens is None and self.tokens_per_step is not None:
            tokens = float(step) * self.tokens_per_step
        params = self.params
        if params is None and tokens and compute:
            params = compute / (6.0 * tokens)
        model_compute = None
        if params and tokens:
            model_compute = self._compute_scale * 6.0 * params * tokens
        elif compute:
            model_compute = compute
        try:
            fp = fc.model.forecast(step, params, tokens, compute=model_compute, level=self.level,
                                   version=fc.version)
        except ValueError:
            return None
        if compute is not None and compute != fp.compute:
            fp = replace(fp, compute=float(compute))
        return fp

    # ------------------------------------------------------------------ processing

    def poll(self) -> list[Observation]:
        """Return the observations judged since the last call; never blocks on an evaluation.

        With ``background=True`` (the default) results are processed on the monitor's
        poller thread, so this call only collects what it judged (and wakes it): the
        training thread never runs tracker I/O. With ``background=False`` this call does
        the processing itself: new forecast versions, drift decisions, journal records
        and tracker calls.

        Returns
        -------
        list of Observation
        """
        if not self._started:
            if self._closed:
                return []
            self.start()
        if self.background and not self._closed:
            self._wake.set()
        else:
            with self._poll_lock:
                self._process()
        out = []
        while True:
            try:
                out.append(self._unreturned.popleft())
            except IndexError:
                return out

    def _poll_loop(self):
        while not self._stop.is_set():
            self._wake.wait(self.poll_interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                with self._poll_lock:
                    self._process()
            except Exception:  # pragma: no cover - must not die silently
                logger.warning("CODMonitor background poll failed", exc_info=True)

    def _process(self):
        self._ensure_trackers_started()
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                break
            kind = event[0]
            if kind == "forecast":
                self._set_forecast(*event[1:])
            elif kind == "forecast_error":
                _, b, error = event
                if b not in self._forecasts:
                    self._forecast_errors[b] = error
                self._journal.append("error", where=f"forecast/{b}", error=error)
            elif kind == "alert":
                self._emit_alert(event[1])
        for outcome in self._pool.poll():
            self._handle_outcome(outcome)
        self._decide_ready()

    def _terminal(self, step, b, status, **fields):
        with self._state_lock:
            if self._status.get((step, b)) in ("result", "failed", "skipped"):
                return False
            self._status[(step, b)] = status
            st = self._steps.get(step)
            if st is not None:
                st.remaining.discard(b)
        self._journal.append(status, step=step, benchmark=b, **fields)
        self._maybe_delete(step)
        return True

    def _handle_outcome(self, o: JobOutcome):
        step = int(o.job.group)
        b = o.job.job_id.split(":", 1)[1]
        st = self._steps.get(step)
        if o.status == "done":
            result = o.result
            if not isinstance(result, EvalResult):
                error = f"the job returned {type(result).__name__}, not an EvalResult"
                if self._terminal(step, b, "failed", error=error, attempts=o.attempts):
                    self._emit_alert(evaluation_failure_alert(step, b, error, o.attempts))
                return
            obs = Observation(step=step, compute=_nan_if_none(st.compute if st else None), benchmark=b,
                              accuracy=result.accuracy, result=result,
                              tokens=st.tokens if st else None)
            if self._terminal(step, b, "result", accuracy=obs.accuracy, compute=st.compute if st else None,
                              tokens=obs.tokens, result=result.to_dict(), attempts=o.attempts,
                              wall_s=o.wall_s, worker=o.worker):
                self._awaiting.setdefault(b, []).append(obs)
        elif o.status == "failed":
            if self._terminal(step, b, "failed", error=o.error, attempts=o.attempts):
                self._emit_alert(evaluation_failure_alert(step, b, o.error or "", o.attempts))
        elif o.status == "skipped":
            logger.debug("step %d of %s skipped by the queue policy", step, b)
            self._terminal(step, b, "skipped", reason=o.error)
        # 'cancelled': stays pending in the journal; the next monitor resubmits it

    def _decide_ready(self, force: bool = False):
        for b, waiting in self._awaiting.items():
            if not waiting:
                continue
            if b not in self._forecasts and b not in self._forecast_errors and not force:
                continue  # the first fit is still running: judge these when it lands
            waiting.sort(key=lambda o: o.step)
            with self._state_lock:
                pending_steps = sorted(s for (s, bb), v in self._status.items() if bb == b and v == "pending")
            while waiting:
                obs = waiting[0]
                if not force and pending_steps and pending_steps[0] < obs.step:
                    break  # keep drift decisions in step order
                waiting.pop(0)
                self._judge(obs)

    def _judge(self, obs: Observation):
        b = obs.benchmark
        fp = self.forecast_point(b, obs.step, tokens=obs.tokens,
                                 compute=None if obs.compute is None or math.isnan(obs.compute) else obs.compute)
        alert, state = decide(obs, fp, self._drift[b], self.drift)
        self._drift[b] = state
        self._journal.append("decision", step=obs.step, benchmark=b, accuracy=obs.accuracy,
                             forecast=forecast_to_dict(fp), drift=state.to_dict(),
                             alert=None if alert is None else alert.reason.value)
        self._track("log_observation", obs, fp)
        light = replace(obs, result=None)
        self.observations.append(light)
        self._unreturned.append(obs)
        if alert is not None:
            self._emit_alert(alert)

    def _emit_alert(self, alert: Alert):
        self._alert_counts[alert.reason.value] += 1
        self._journal.append("alert", **alert_to_dict(alert))
        if alert.reason is AlertReason.RECOVERED:
            logger.info(alert.message)
        else:
            logger.warning(alert.message)
        if alert.reason is AlertReason.BELOW_BAND:
            self.stop_requested = True
        self._track("log_alert", alert)
        if self.alert_callback is not None:
            try:
                self.alert_callback(alert)
            except Exception:
                logger.warning("CODMonitor alert_callback raised", exc_info=True)

    def _maybe_delete(self, step):
        if self.keep_snapshots:
            return
        with self._state_lock:
            st = self._steps.get(step)
            if st is None or st.remaining or st.deleted:
                return
            st.deleted = True
        if delete_snapshot(st.snapshot):
            logger.debug("deleted the snapshot of step %d", step)
        self._journal.append("snapshot_deleted", step=step, snapshot=st.snapshot)

    def _ensure_trackers_started(self):
        if self._trackers_started:
            return
        self._trackers_started = True
        self._track("start", dict(self._run_info))

    def _track(self, method, *args):
        for t in self.trackers:
            try:
                getattr(t, method)(*args)
            except Exception:
                logger.warning("tracker %s.%s raised; continuing", type(t).__name__, method, exc_info=True)

    # -------------------------------------------------------------------- queries

    @property
    def alerting(self) -> list[str]:
        """Benchmarks with a standing below-band alert."""
        return [b for b, s in self._drift.items() if s.alerting]

    def forecaster(self, benchmark: str) -> TrajectoryForecaster | None:
        """The fitted forecaster in use for ``benchmark`` (``None`` before the first fit)."""
        fc = self._forecasts.get(benchmark)
        return None if fc is None else fc.model

    def forecast_version(self, benchmark: str) -> int | None:
        """Current forecast version of ``benchmark``."""
        fc = self._forecasts.get(benchmark)
        return None if fc is None else fc.version

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every submitted evaluation has been judged (or ``timeout``).

        Useful in scripts and tests; a training loop never needs it.

        Returns
        -------
        bool
            False on timeout.
        """
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            if self.background and not self._closed:
                self._wake.set()
            # under the poll lock: the poller takes an observation off _awaiting before
            # judging it, so reading without the lock could return before the decision
            # (and its alert, and stop_requested) exists
            with self._poll_lock:
                if not (self.background and not self._closed):
                    self._process()
                with self._state_lock:
                    busy = self._writes_pending > 0 or any(
                        v == "pending" for v in self._status.values())
                waiting = any(self._awaiting.values())
            if not busy and not waiting:
                return True
            if end is not None and time.monotonic() > end:
                return False
            time.sleep(0.05)

    def summary(self) -> dict:
        """Where the run stands, per benchmark (also passed to ``Tracker.finish``)."""
        benchmarks = {}
        with self._state_lock:
            status = dict(self._status)
        for b in self.benchmarks:
            obs = [o for o in self.observations if o.benchmark == b]
            last = obs[-1] if obs else None
            fc = self._forecasts.get(b)
            last_fp = None
            if last is not None:
                last_fp = self.forecast_point(b, last.step, tokens=last.tokens,
                                              compute=None if math.isnan(last.compute) else last.compute)
            final_fp = None
            if self.max_steps:
                final_fp = self.forecast_point(b, int(self.max_steps))
            benchmarks[b] = {
                "observations": len(obs),
                "last_step": None if last is None else last.step,
                "last_accuracy": None if last is None else last.accuracy,
                "last_forecast": forecast_to_dict(last_fp),
                "final_forecast": forecast_to_dict(final_fp),
                "forecast_version": None if fc is None else fc.version,
                "mode": None if fc is None else fc.model.mode_,
                "forecast_error": self._forecast_errors.get(b),
                "alerting": self._drift[b].alerting,
                "failed": sum(1 for (s, bb), v in status.items() if bb == b and v == "failed"),
                "skipped": sum(1 for (s, bb), v in status.items() if bb == b and v == "skipped"),
                "pending": sum(1 for (s, bb), v in status.items() if bb == b and v == "pending"),
            }
        return {
            "run_name": self.run_name,
            "out_dir": str(self.out_dir),
            "benchmarks": benchmarks,
            "alerts": dict(self._alert_counts),
            "failed": sum(v["failed"] for v in benchmarks.values()),
            "skipped": sum(v["skipped"] for v in benchmarks.values()),
            "stop_requested": self.stop_requested,
            "pool": dict(self._pool.stats) if self._pool is not None else {},
        }


def _nan_if_none(x):
    return float("nan") if x is None else float(x)


def _int_or_none(x):
    try:
        return int(x)
    except (TypeError, ValueError):
        return None
