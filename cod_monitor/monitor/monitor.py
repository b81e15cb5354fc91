"""`CODMonitor`: forecast, evaluate and watch a training run from any loop.

The training loop calls :meth:`CODMonitor.on_checkpoint` at each checkpoint; the call
snapshots the weights and queues their evaluation, and returns at once. Evaluations
run in worker processes on held-out devices (:mod:`~cod_monitor.runtime.pool`); their
results are compared with the forecast trajectory (:mod:`~cod_monitor.cod.trajectory`)
by the pure drift decision (:mod:`~cod_monitor.monitor.drift`), written to a durable
journal (:mod:`~cod_monitor.monitor.journal`) and sent to trackers
(:class:`~cod_monitor.trackers.base.Tracker`). A restarted monitor resumes from its
journal, and :meth:`CODMonitor.reconcile` takes the checkpoints on disk that the
journal has no record of.

Faults
------
Nothing is lost without a word: every fault that can cost an observation raises an
:class:`~cod_monitor.records.Alert` (see :class:`~cod_monitor.records.AlertReason`)
when it is known: a checkpoint that cannot be taken, an evaluation attempt that times
out (the default per-attempt limit is measured on the run's own evaluations, see
:class:`~cod_monitor.monitor.config.PoolConfig`) or whose worker dies, an evaluation
that fails on every attempt, a journal whose disk refuses writes (its records are kept
in memory, and checkpoints are still submitted and judged), and evaluations still
pending at :meth:`CODMonitor.close`, which also reports how long it waited.

Parts
-----
:class:`CODMonitor` wires parts that each do one job:

- :class:`~cod_monitor.monitor.intake.Intake`: snapshots and job submission;
- :class:`~cod_monitor.monitor.forecasts.Forecasts`: ladder watching, fits, versions,
  the forecast of a checkpoint;
- :class:`~cod_monitor.monitor.judging.Judge`: outcomes, drift decisions, alerts;
- :class:`~cod_monitor.monitor.ledger.Ledger`: where every checkpoint and evaluation
  stands, shared by the three;
- :class:`~cod_monitor.monitor.journal.Journal`: the durable record.

Threads
-------
``on_checkpoint`` runs on the training thread and does only the snapshot (hard
links, or a CPU copy of a state dict), one journal record and a queue put. The rest
runs on the monitor's own threads: the pool's dispatcher, a snapshot writer (state
dicts), a forecaster thread (initial fit and ladder refreshes) and, unless
``poll_interval`` is ``None``, a poller that processes results. The alert callback
and drift decisions run on the poller (or on whichever thread calls
:meth:`~CODMonitor.poll` / :meth:`~CODMonitor.close`), one at a time. Each tracker
has a thread of its own (:class:`~cod_monitor.monitor.fanout.TrackerFanout`), so a
slow or hung tracker holds up neither training nor judging; one that keeps failing is
disabled with a ``TRACKER_FAILING`` alert, and :meth:`~CODMonitor.close` waits at most
a few seconds for the trackers to finish.
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path

from cod_monitor._io import atomic_write, json_default
from cod_monitor._validation import check_real, invalid
from cod_monitor.cod.trajectory import TrajectoryForecaster
from cod_monitor.exceptions import CODError
from cod_monitor.ladder import Ladder, load_ladder
from cod_monitor.monitor.checks import (
    TRACKER_METHODS,
    check_eval_set_spec,
    check_eval_sets,
    check_evaluator,
)
from cod_monitor.monitor.config import CheckpointConfig, ForecastConfig, PoolConfig, RunGeometry
from cod_monitor.monitor.drift import DriftConfig
from cod_monitor.monitor.fanout import TrackerFanout
from cod_monitor.monitor.forecasts import Forecasts
from cod_monitor.monitor.incidents import (
    journal_failure_alert,
    monitor_error_alert,
    tracker_failure_alert,
    unfinished_alert,
)
from cod_monitor.monitor.intake import Intake
from cod_monitor.monitor.journal import JOURNAL_NAME, Journal, JournalState
from cod_monitor.monitor.judging import Judge
from cod_monitor.monitor.ledger import Inbox, Ledger
from cod_monitor.monitor.run_forecasts import RunForecasts
from cod_monitor.records import (
    Alert,
    AlertReason,
    Checkpoint,
    ForecastPoint,
    Observation,
    observation_metrics,
)
from cod_monitor.runtime.main_guard import check_main_guard, check_not_spawn_child
from cod_monitor.trackers.base import Tracker

__all__ = ["CODMonitor", "MonitorClosedError", "OutDirInUseError", "lock_out_dir"]

logger = logging.getLogger(__name__)

SUMMARY_NAME = "summary.json"


class MonitorClosedError(CODError, RuntimeError):
    """A closed :class:`CODMonitor` was asked to start again."""


#: The lock file a running monitor holds in its ``out_dir``.
LOCK_NAME = "monitor.lock"


class OutDirInUseError(CODError, RuntimeError):
    """Another :class:`CODMonitor` holds the ``out_dir`` this one was asked to start on."""


def lock_out_dir(out_dir):
    """Hold ``out_dir`` for one monitor: an exclusive ``flock`` on ``out_dir/monitor.lock``.

    The kernel drops the lock when its process ends, however it ends, so a crashed
    monitor never leaves a stale lock. Where ``flock`` is missing (Windows) nothing is
    locked; on a network file system it may hold only within one machine.

    Parameters
    ----------
    out_dir : path
        An existing directory.

    Returns
    -------
    file object or None
        The open lock file (release it with :func:`release_out_dir`).

    Raises
    ------
    OutDirInUseError
        The lock is held, by this process or another; the message names the holder.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return None
    fh = open(Path(out_dir) / LOCK_NAME, "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.seek(0)
        holder = fh.read().strip() or "holder unknown"
        fh.close()
        raise OutDirInUseError(
            f"{out_dir} is in use by another CODMonitor ({holder}): two monitors writing one "
            "journal would evaluate every checkpoint twice and delete each other's snapshots. "
            "Give this monitor its own out_dir, or close the other monitor first (a monitor "
            "that crashed holds nothing)."
        ) from None
    fh.seek(0)
    fh.truncate()
    fh.write(f"pid {os.getpid()} on {platform.node()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    fh.flush()
    return fh


def release_out_dir(fh) -> None:
    """Release what :func:`lock_out_dir` returned (``None`` included); returns ``None``."""
    if fh is not None:
        fh.close()  # closing the file releases the flock
    return None


#: Tracker names people pass where a tracker object belongs, and the object to pass.
_TRACKER_NAMES = {"wandb": "WandbTracker", "local": "LocalTracker", "html": "LocalTracker",
                  "csv": "LocalTracker"}


def _tracker_hint(t) -> str | None:
    """How to fix a tracker given as a name or as a class (``None`` for anything else)."""
    if isinstance(t, str):
        cls = _TRACKER_NAMES.get(t.lower(), "WandbTracker")
        return (f"Trackers are objects, not names: pass cod_monitor.trackers.{cls}(...) "
                f"instead of {t!r}.")
    if isinstance(t, type):
        return f"Pass an instance, {t.__name__}(...), not the class {t.__name__}."
    return None


class CODMonitor:
    """Watch a training run: snapshot, evaluate asynchronously, forecast, alert on drift.

    Parameters
    ----------
    ladder : Ladder or path
        The model ladder. A directory is re-read when its files change (see
        :attr:`ForecastConfig.refresh_interval`), re-fitted in the background and
        logged as a new forecast version.
    eval_sets : mapping of str to EvalSet, path or dict
        Benchmark name (as in the ladder) -> its evaluation set: an
        :class:`~cod_monitor.evaluators.EvalSet`, a JSON-lines path, or
        ``EvalSet.from_jsonl`` keyword arguments (``{"path": ..., "stop": "\\n"}``).
        Evaluate the target as the ladder was evaluated (same set, same evaluator):
        :meth:`start` refuses an evaluation set whose sample ids are not the ladder
        benchmark's. With a custom ``PoolConfig.job_fn`` the values are passed to it
        as given.
    evaluator : dict, optional
        Evaluator config for :func:`cod_monitor.evaluators.make_evaluator` (default
        ``{"backend": "hf"}``); an HF config without ``device`` gets the worker's.
        The evaluator is built once here, so an unknown backend or key, or an invalid
        value, fails at construction (not checked with a custom ``PoolConfig.job_fn``,
        which receives the config as given).
    forecast : ForecastConfig, optional
        Trajectory mode, finished-model method, interval level and bootstrap, COD
        parameters, run-to-run spread, ladder refresh interval.
    pool : PoolConfig, optional
        Evaluation devices, timeout, retries, queue policy, CPU threads, job function.
    run : RunGeometry, optional
        Parameters, tokens per step and length of the monitored run, when known.
    drift : DriftConfig, optional
        Tolerance, patience, hysteresis and cumulative-shortfall rule of the drift
        decision; its ``band_level`` is set to ``forecast.level``.
    checkpoints : CheckpointConfig, optional
        Which calls of :meth:`on_checkpoint` are evaluated and how checkpoints are
        snapshotted.
    trackers : sequence of Tracker, default ()
    alert_callback : callable, optional
        ``alert_callback(alert)`` for every alert, on a monitor thread.
    out_dir : str or path, default 'cod_monitor_out'
        Journal, snapshots and ``summary.json``. Reusing it resumes the run. One monitor
        at a time: a running monitor holds it (``monitor.lock``), and another one started
        on it raises :class:`OutDirInUseError`.
    run_name : str, optional
        Name of the run in the trackers (default: the name of ``out_dir``).
    poll_interval : float or None, default 0.5
        Seconds between passes of the background poller that processes results;
        ``None``: no poller, results are processed only in :meth:`poll` and
        :meth:`close`.

    Attributes
    ----------
    stop_requested : bool
        Set when a below-band alert is raised (a callback or loop with
        ``stop_on_drift`` reads it, stops training and says so with
        :meth:`note_stopped`); never cleared by the monitor. It does not mean that
        training stopped: see ``status`` in :meth:`summary`.
    observations : list of Observation
        Every evaluated checkpoint judged so far (without per-sample results, which
        stay in the journal).
    params : float or None
        Parameters of the monitored model: ``run.params``, or learned from the first
        checkpoint given with tokens and compute.
    drift : DriftConfig
        The drift configuration in use (``band_level`` = ``forecast.level``).

    Raises
    ------
    ParameterError
        An invalid argument (each configuration object validates its own fields when
        it is built; :meth:`check_arguments` checks the rest, the evaluator config
        included).

    Notes
    -----
    :meth:`on_checkpoint` never raises into the training loop: a failure is logged,
    journaled and reported as an ``EVALUATION_FAILING`` alert. Every other fault that
    can cost an observation raises an alert too (see the module docstring).

    Examples
    --------
    >>> with CODMonitor("ladder/", {"gsm8k": "gsm8k.jsonl"},
    ...                 {"backend": "hf", "mode": "exact"},
    ...                 run=RunGeometry(tokens_per_step=tokens_per_step),
    ...                 out_dir="runs/70b/cod") as monitor:  # doctest: +SKIP
    ...     for step in range(1, max_steps + 1):
    ...         train_step()
    ...         if step % 1000 == 0:
    ...             model.save_pretrained(f"ckpt/{step}")
    ...             monitor.on_checkpoint(step, path=f"ckpt/{step}")
    """

    def __init__(
        self,
        ladder,
        eval_sets: Mapping,
        evaluator: dict | None = None,
        *,
        forecast: ForecastConfig = ForecastConfig(),
        pool: PoolConfig = PoolConfig(),
        run: RunGeometry = RunGeometry(),
        drift: DriftConfig = DriftConfig(),
        checkpoints: CheckpointConfig = CheckpointConfig(),
        trackers: Sequence = (),
        alert_callback: Callable[[Alert], None] | None = None,
        out_dir="cod_monitor_out",
        run_name: str | None = None,
        poll_interval: float | None = 0.5,
    ):
        checked = self.check_arguments(
            ladder, eval_sets, evaluator, forecast=forecast, pool=pool, run=run, drift=drift,
            checkpoints=checkpoints, trackers=trackers, alert_callback=alert_callback,
            out_dir=out_dir, run_name=run_name, poll_interval=poll_interval)
        self.ladder = ladder
        self.eval_sets = checked["eval_sets"]
        self.benchmarks = list(self.eval_sets)
        self.evaluator = checked["evaluator"]
        self.forecast = forecast
        self.pool = pool
        self.run = run
        # the shortfall rule reads the band's half-width at the coverage it was made at
        self.drift = replace(drift, band_level=forecast.level)
        self.checkpoints = checkpoints
        self.trackers = checked["trackers"]
        self.alert_callback = alert_callback
        self.out_dir = Path(out_dir)
        self.run_name = run_name or self.out_dir.name
        self.poll_interval = checked["poll_interval"]

        self._start_lock = threading.Lock()
        self._poll_lock = threading.RLock()  # result processing, trackers
        self._started = False
        self._closed = False
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self._run_info: dict = {}
        self._summary: dict = {}
        self._drain: dict | None = None
        self._stopped: dict | None = None  # where and why the loop stopped training
        self._out_lock = None
        self._inbox = Inbox()
        self._journal = Journal(self.out_dir / JOURNAL_NAME, on_failure=self._journal_failed)
        self._ledger = Ledger(self._journal, self.benchmarks, run, checkpoints.keep_snapshots)
        self._fanout = TrackerFanout(self.trackers, lambda: self._run_info,
                                     on_disabled=self._tracker_failed)
        self._forecasts = Forecasts(ladder, self.benchmarks, forecast, self._ledger,
                                    self._journal, self._fanout, self._inbox)
        self._run_forecasts = None
        if forecast.condition_on_run:
            self._run_forecasts = RunForecasts(self.benchmarks, self._forecasts, self._ledger,
                                               forecast.level)
        self._judge = Judge(self.benchmarks, self.drift, self._ledger, self._forecasts,
                            self._journal, self._fanout, alert_callback,
                            run_forecasts=self._run_forecasts)
        self._forecasts.emit = self._judge.emit  # a changed ladder it refuses is alerted
        self._forecasts.check_settings = self._check_ladder_settings
        self._intake = Intake(self.out_dir, self.eval_sets, self.evaluator, checkpoints, pool,
                              self._ledger, self._journal, self._inbox, self._judge.emit)

    @staticmethod
    def check_arguments(ladder, eval_sets, evaluator=None, *, forecast=ForecastConfig(),
                        pool=PoolConfig(), run=RunGeometry(), drift=DriftConfig(),
                        checkpoints=CheckpointConfig(), trackers=(), alert_callback=None,
                        out_dir="cod_monitor_out", run_name=None, poll_interval=0.5,
                        owner: str = "CODMonitor") -> dict:
        """Check the arguments of a :class:`CODMonitor` (what its constructor runs).

        Every argument is checked where it is given, before any thread, process or
        file exists: types, ranges, the evaluation-set specs and, unless
        ``pool.job_fn`` replaces the evaluator, the evaluator itself, built once from
        its config (an unknown backend or key, an invalid value or a GPU device next to
        CPU workers fails here). The files named (ladder, evaluation sets) are read by
        :meth:`start`.

        Parameters
        ----------
        ladder, eval_sets, evaluator, forecast, pool, run, drift, checkpoints, trackers, alert_callback, out_dir, run_name, poll_interval
            As in :class:`CODMonitor`.
        owner : str, default 'CODMonitor'
            Named in the errors (``'CODCallback'`` when the callback checks the
            arguments it will build a monitor from).

        Returns
        -------
        dict
            ``eval_sets`` (a dict), ``evaluator`` (the config dict),
            ``trackers`` (a list) and ``poll_interval`` (a float or None), normalised.

        Raises
        ------
        ParameterError
            An invalid argument; :class:`~cod_monitor.evaluators.EvaluatorConfigError`
            (a ``ParameterError``) for an evaluator config that cannot build an
            evaluator.

        Examples
        --------
        >>> CODMonitor.check_arguments("ladder/", {"gsm8k": "gsm8k.jsonl"},
        ...                            {"backend": "hf", "mode": "exact"})["evaluator"]
        {'backend': 'hf', 'mode': 'exact'}
        """
        check_not_spawn_child(owner)  # a script re-run by a spawned worker
        if not isinstance(ladder, (Ladder, str, os.PathLike)):
            raise invalid(owner, "ladder", "a Ladder or a directory path", ladder)
        for name, value, cls in (("forecast", forecast, ForecastConfig), ("pool", pool, PoolConfig),
                                 ("run", run, RunGeometry), ("drift", drift, DriftConfig),
                                 ("checkpoints", checkpoints, CheckpointConfig)):
            if not isinstance(value, cls):
                raise invalid(owner, name, f"a {cls.__name__}", value)
        if not isinstance(eval_sets, Mapping) or not eval_sets:
            raise invalid(owner, "eval_sets", "a non-empty mapping of benchmark name to "
                          "evaluation set", eval_sets)
        custom_jobs = pool.job_fn is not None
        for benchmark, spec in eval_sets.items():
            check_eval_set_spec(owner, benchmark, spec, custom_jobs)
        if evaluator is not None and not isinstance(evaluator, dict):
            raise invalid(owner, "evaluator", "a config dict or None", evaluator)
        config = dict(evaluator) if evaluator is not None else {"backend": "hf"}
        if not custom_jobs:
            check_evaluator(owner, config, pool)
        if isinstance(trackers, (str, bytes)) or not isinstance(trackers, Iterable):
            raise invalid(owner, "trackers", "a sequence of trackers", trackers)
        trackers = list(trackers)
        for t in trackers:
            hint = _tracker_hint(t)
            if hint is not None:
                raise invalid(owner, "trackers", "a sequence of tracker objects", trackers, hint)
            if not isinstance(t, Tracker):
                missing = [m for m in TRACKER_METHODS if not callable(getattr(t, m, None))]
                raise invalid(owner, "trackers", "a sequence of trackers (objects with the "
                              "methods of cod_monitor.trackers.base.Tracker)", trackers,
                              f"{type(t).__name__} lacks {', '.join(missing)}.")
        if alert_callback is not None and not callable(alert_callback):
            raise invalid(owner, "alert_callback", "a callable or None", alert_callback)
        if not isinstance(out_dir, (str, os.PathLike)) or not os.fspath(out_dir):
            raise invalid(owner, "out_dir", "a directory path", out_dir)
        if os.path.exists(out_dir) and not os.path.isdir(out_dir):
            raise invalid(owner, "out_dir", "a directory path", os.fspath(out_dir),
                          "It is a file; pass a directory (created when the monitor starts).")
        if run_name is not None and (not isinstance(run_name, str) or not run_name):
            raise invalid(owner, "run_name", "a non-empty str or None", run_name)
        return {
            "eval_sets": dict(eval_sets),
            "evaluator": config,
            "trackers": trackers,
            "poll_interval": check_real(owner, "poll_interval", poll_interval, 0, none_ok=True),
        }

    # ------------------------------------------------------------------ state
    @property
    def params(self) -> float | None:
        """Parameters of the monitored model (given, or learned from a checkpoint)."""
        return self._ledger.params

    @property
    def stop_requested(self) -> bool:
        """Whether a below-band alert was raised (never cleared)."""
        return self._judge.stop_requested

    @property
    def observations(self) -> list[Observation]:
        """Every judged observation, by judgement order (a resumed run's first)."""
        return self._judge.observations

    @property
    def alerting(self) -> list[str]:
        """Benchmarks with a standing below-band alert."""
        return self._judge.alerting

    @property
    def _background(self) -> bool:
        """Whether the poller processes results (it stops at close)."""
        return self.poll_interval is not None and not self._closed

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> CODMonitor:
        """Open the journal (resuming from it), start the workers and threads; idempotent.

        Called by :meth:`on_checkpoint`, :meth:`poll` and ``with``; call it before
        training, so that a mistake in the inputs stops the run before it trains and
        the first checkpoint's call stays short. It first reads the ladder and the
        evaluation sets and checks that every monitored benchmark is in the ladder and
        that its evaluation set holds exactly the ladder benchmark's sample ids
        (:func:`~cod_monitor.monitor.checks.check_eval_sets`; with a custom
        ``PoolConfig.job_fn`` only the sets given as ``EvalSet`` objects are checked).

        On a journal that already holds records it resumes: pending jobs are
        resubmitted, and a pending checkpoint whose snapshot a crash cut short is
        snapshotted again from the checkpoint directory its record names (or failed
        with an alert when that is gone). With ``PoolConfig(timeout=None)`` it warns,
        once, that a hung evaluation would go unseen.

        Raises
        ------
        MonitorClosedError
            After :meth:`close`.
        MainGuardError
            With the local backend, ``start`` is reached from top-level code of the
            main script outside ``if __name__ == "__main__":``: every spawn-started
            worker would run the script, and so the training, again.
        OutDirInUseError
            Another monitor (in this process or another one on this machine) holds
            ``out_dir``: two monitors writing one journal would evaluate every
            checkpoint twice and delete each other's snapshots.
        InputError
            A benchmark the ladder lacks, or an evaluation set whose sample ids are not
            the ladder's (the message gives the counts, examples and the fix).
        LadderValidationError
            The ladder cannot be read (an ``EvalSetValidationError`` for an evaluation
            set that cannot).
        OSError
            An evaluation-set file that cannot be read.
        """
        with self._start_lock:
            if self._started:
                return self
            if self._closed:
                raise MonitorClosedError("CODMonitor is closed")
            # before anything starts: a mistake here stops the run before it trains
            check_eval_sets(load_ladder(self.ladder), self.eval_sets,
                            self.evaluator if self.pool.job_fn is None else None,
                            read_files=self.pool.job_fn is None)
            if self.pool.backend == "local":
                check_main_guard("CODMonitor")  # before any worker is spawned
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self._out_lock = lock_out_dir(self.out_dir)
            try:
                self._journal.open()
            except BaseException:
                self._out_lock = release_out_dir(self._out_lock)
                raise
            state = self._journal.replay()
            self._intake.start()
            self._run_info = self._make_run_info(state.resumed)
            self._journal.append("start", run_info=self._run_info, resumed=state.resumed)
            logger.info("%s", self._start_line())
            self._resume(state)
            self._intake.run_pool()
            self._started = True
            self._forecasts.start()
            if self.poll_interval is not None:
                self._poller = threading.Thread(target=self._poll_loop, name="cod-monitor",
                                                daemon=True)
                self._poller.start()
        return self

    def _check_ladder_settings(self, ladder, benchmark: str) -> None:
        """The check of :meth:`start` for one benchmark of a changed ladder."""
        check_eval_sets(ladder, {benchmark: self.eval_sets[benchmark]},
                        self.evaluator if self.pool.job_fn is None else None,
                        read_files=self.pool.job_fn is None)

    def _make_run_info(self, resumed: bool) -> dict:
        return {
            "run_name": self.run_name,
            "out_dir": str(self.out_dir),
            "benchmarks": list(self.benchmarks),
            "ladder": self._forecasts.ladder_summary(),
            "trajectory": self.forecast.trajectory,
            "trajectory_method": self.forecast.trajectory_method,
            "run_sd": self.forecast.run_sd,
            "level": self.forecast.level,
            "condition_on_run": self.forecast.condition_on_run,
            "params": self.run.params,
            "tokens_per_step": self.run.tokens_per_step,
            "max_steps": self.run.max_steps,
            "learning_rate": self.run.learning_rate,
            "devices": [str(d) for d in self.pool.devices],
            "evaluator": self.evaluator if self.pool.job_fn is None else {"job_fn": str(self.pool.job_fn)},
            "drift": asdict(self.drift),
            "queue_policy": asdict(self.pool.queue_policy),
            "resumed": resumed,
        }

    def _start_line(self) -> str:
        """What the monitor watches and knows of the run, in one line (logged at start)."""
        run = self.run
        n = "unknown (learned from the first checkpoint with tokens and compute)" \
            if run.params is None else f"{run.params:.3g}"
        tps = ("from the checkpoints' tokens" if run.tokens_per_step is None
               else f"{run.tokens_per_step:.6g}")
        evaluator = (f"job_fn {self.pool.job_fn}" if self.pool.job_fn is not None else
                     ", ".join(f"{k}={v}" for k, v in self.evaluator.items()))
        return (f"CODMonitor: monitoring {len(self.benchmarks)} benchmark(s) "
                f"({', '.join(self.benchmarks)}); N={n} parameters; tokens/step={tps}; "
                f"max_steps={run.max_steps if run.max_steps else 'unknown (no final forecast)'}; "
                f"evaluator {evaluator} on {', '.join(str(d) for d in self.pool.devices)} "
                f"({self.pool.backend}); forecast: trajectory mode {self.forecast.trajectory}, "
                f"{'conditioned on the run' if self.forecast.condition_on_run else 'ladder only'}; "
                f"out_dir {self.out_dir}")

    def _resume(self, state: JournalState) -> None:
        """Rebuild steps, statuses, drift states and pending jobs from the journal."""
        self._ledger.restore(state)
        self._judge.restore(state)
        if state.stopped is not None:
            self._stopped = {"step": state.stopped.get("step"), "reason": state.stopped.get("reason")}
        self._forecasts.restore(state)
        resubmitted = self._intake.resume(state)
        if state.resumed:
            logger.info(
                "CODMonitor resumed from %s: %d checkpoint(s) known, %d observation(s), %d job(s) resubmitted",
                self._journal.path, len(self._ledger), len(self.observations), resubmitted,
            )

    def close(self, timeout: float | None = None) -> dict:
        """Drain evaluations (up to ``timeout`` seconds), finish trackers, write the summary.

        Jobs unfinished at the deadline stay pending in the journal (and their
        snapshots on disk) and are resubmitted by the next monitor on this ``out_dir``;
        they are named in an ``EVALUATION_UNFINISHED`` alert per benchmark and in a
        ``drain`` journal record. How long the drain took is logged and kept in the
        summary (``drain``). With the default ``PoolConfig(timeout='auto')`` every
        evaluation attempt has a time limit, so even ``timeout=None`` here ends.
        Idempotent.

        Returns
        -------
        dict
            The summary (also written to ``out_dir/summary.json``).
        """
        with self._start_lock:
            if self._closed:
                return self._summary
            self._closed = True
            started = self._started
        if not started:
            return {}
        deadline = None if timeout is None else time.monotonic() + timeout

        def remaining():
            return None if deadline is None else max(0.0, deadline - time.monotonic())

        t0 = time.monotonic()
        self._intake.drain_writes()
        # the first forecast must exist before results can be judged
        self._forecasts.wait_first_fit(remaining())
        self._intake.close(remaining())
        drain_s = time.monotonic() - t0
        self._forecasts.stop()
        self._stop.set()
        self._inbox.wake()
        if self._poller is not None:
            self._poller.join()
        with self._poll_lock:
            self._process()
            self._judge.decide_ready(force=True)
            self._report_drain(drain_s, timeout)
            self._inbox.run_all()  # alerts posted meanwhile (a journal failing) reach the trackers
            summary = self.summary()
            self._fanout.finish(summary)  # waits at most fanout.FINISH_TIMEOUT_S
            self._inbox.run_all()  # a tracker disabled while finishing: journal and log
            summary["alerts"] = dict(self._judge.alert_counts)
            try:
                atomic_write(self.out_dir / SUMMARY_NAME,
                             json.dumps(summary, indent=2, default=json_default))
            except OSError:
                logger.warning("CODMonitor could not write %s", self.out_dir / SUMMARY_NAME, exc_info=True)
            self._journal.append("close", summary=summary)
            self._journal.close()
            self._out_lock = release_out_dir(self._out_lock)
        self._forecasts.join(remaining())
        self._summary = summary
        return summary

    def _report_drain(self, seconds: float, timeout: float | None) -> None:
        """Journal, log and alert what closing left unfinished, and how long it waited."""
        unfinished = {b: self._ledger.pending_steps(b) for b in self.benchmarks}
        unfinished = {b: steps for b, steps in unfinished.items() if steps}
        pairs = [[s, b] for b, steps in unfinished.items() for s in steps]
        self._drain = {"seconds": round(seconds, 3), "timeout": timeout,
                       "unfinished": len(pairs)}
        self._journal.append("drain", seconds=round(seconds, 3), timeout=timeout,
                             unfinished=sorted(pairs))
        if not pairs:
            logger.info("CODMonitor drained its evaluations in %.1f s", seconds)
            return
        logger.warning("CODMonitor closed after waiting %.1f s for its evaluations; %d "
                       "evaluation(s) unfinished", seconds, len(pairs))
        for b, steps in unfinished.items():
            self._judge.emit(unfinished_alert(b, steps, seconds, timeout, self.out_dir))

    def _journal_failed(self, error: OSError) -> None:
        """The journal's disk refused a record (any thread): alert on the processing
        thread, once per run of failures."""
        newest = max((s for s, _, _ in self._ledger.positions()), default=0)
        for b in self.benchmarks:
            self._inbox.post(self._judge.emit,
                             journal_failure_alert(newest, b, self._journal.path, error))

    def _tracker_failed(self, failure) -> None:
        """A tracker was disabled (any thread): one ``TRACKER_FAILING`` alert, raised on
        the processing thread, so it reaches the journal, the log and the other trackers."""
        newest = max((s for s, _, _ in self._ledger.positions()), default=0)
        self._inbox.post(self._judge.emit,
                         tracker_failure_alert(newest, self.benchmarks[0], failure))

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
            background thread. Needs a config directory.
        config_dir : str or path, optional
            Overrides :attr:`CheckpointConfig.config_dir` for this checkpoint.
        """
        try:
            if self._closed:
                logger.warning("CODMonitor.on_checkpoint(step=%s) after close() is ignored", step)
                return
            self.start()
            self._intake.take(step, tokens, compute, path, state_dict, config_dir)
        except Exception as exc:  # never into the training loop
            logger.warning("CODMonitor could not take the checkpoint at step %s: %s", step, exc,
                           exc_info=True)
            try:
                self._intake.refuse(step, exc)
            except Exception:  # pragma: no cover - the journal's disk is gone
                logger.warning("CODMonitor could not record a failure", exc_info=True)

    def reconcile(self, checkpoints: Iterable[Checkpoint]) -> list[int]:
        """Take the checkpoints on disk that the journal has no record of; never raises.

        A training process can die after writing a checkpoint and before handing it to
        :meth:`on_checkpoint`; its checkpoint is then on disk and nowhere else. Call
        this when training resumes, with the checkpoints its directory holds (the
        :class:`~cod_monitor.integrations.hf.CODCallback` does, with the ``Trainer``'s
        ``checkpoint-<step>`` folders). Every checkpoint whose step the journal has no
        record of (taken, refused or thinned) is taken as :meth:`on_checkpoint` takes
        one, without ``CheckpointConfig.every`` thinning; a step with a record is never
        taken twice. One that cannot be taken (its directory is gone or unreadable) gets
        an ``EVALUATION_FAILING`` alert per benchmark and a journal record saying why.

        Parameters
        ----------
        checkpoints : iterable of Checkpoint
            ``step``, ``path`` (the checkpoint directory) and, when known, ``tokens``
            and ``compute`` (``None`` for unknown, completed as in
            :meth:`on_checkpoint`).

        Returns
        -------
        list of int
            The steps taken now, by step.

        Examples
        --------
        >>> from cod_monitor.records import Checkpoint
        >>> monitor.reconcile([Checkpoint(step=1200, compute=None, tokens=2.4e9,
        ...                               path="ckpt/1200")])  # doctest: +SKIP
        [1200]
        """
        taken = []
        try:
            if self._closed:
                logger.warning("CODMonitor.reconcile after close() is ignored")
                return taken
            self.start()
            for c in sorted(checkpoints, key=lambda c: c.step):
                if self._intake.recorded(int(c.step)):
                    continue
                logger.warning("CODMonitor: checkpoint %s (step %s) is on disk but was never "
                               "handed over (a crash between its save and on_checkpoint?); "
                               "taking it now", c.path, c.step)
                try:
                    if self._intake.take(c.step, c.tokens, c.compute, c.path, None, None,
                                         thin=False):
                        taken.append(int(c.step))
                except Exception as exc:
                    logger.warning("CODMonitor could not take the checkpoint at step %s: %s",
                                   c.step, exc)
                    self._intake.refuse(c.step, exc)
        except Exception:  # never into the training loop
            logger.warning("CODMonitor.reconcile failed", exc_info=True)
        return taken

    def wait_for_snapshots(self, timeout: float | None = None) -> bool:
        """Block until every state-dict snapshot queued so far is written.

        Returns
        -------
        bool
            False on timeout.
        """
        return self._ledger.wait_writes(timeout)

    # ------------------------------------------------------------------ processing
    def poll(self) -> list[Observation]:
        """Return the observations judged since the last call; never blocks on an evaluation.

        With a background poller (the default) results are processed on the
        monitor's poller thread, so this call only collects what it judged (and wakes
        it): the training thread never runs tracker I/O. With ``poll_interval=None``
        this call does the processing itself: new forecast versions, drift decisions,
        journal records and tracker calls.

        Returns
        -------
        list of Observation
        """
        if not self._started:
            if self._closed:
                return []
            self.start()
        if self._background:
            self._inbox.wake()
        else:
            with self._poll_lock:
                self._process()
        return self._judge.take_unreturned()

    def _poll_loop(self):
        while not self._stop.is_set():
            self._inbox.wait(self.poll_interval)
            if self._stop.is_set():
                return
            try:
                with self._poll_lock:
                    self._process()
            except Exception as exc:  # pragma: no cover - must not die silently
                logger.warning("CODMonitor background poll failed", exc_info=True)
                with self._poll_lock:
                    self._alert_error(0, "processing results", exc)

    def _process(self):
        self._fanout.start()
        self._inbox.run_all()
        for outcome in self._intake.outcomes():
            try:
                self._judge.handle(outcome)
            except Exception as exc:  # one outcome's failure must not drop the others
                self._unhandled(outcome, exc)
        self._judge.decide_ready()

    def _unhandled(self, outcome, exc: Exception) -> None:
        """An outcome whose handling raised: fail its evaluation (so nothing waits for
        it) with a ``MONITOR_ERROR`` alert."""
        step, b = int(outcome.job.group or 0), outcome.job.job_id.split(":", 1)[-1]
        logger.warning("CODMonitor could not handle the outcome of job %s",
                       outcome.job.job_id, exc_info=True)
        try:
            self._ledger.settle(step, b, "failed", attempts=outcome.attempts,
                                error=f"the monitor could not handle its outcome: {exc!r}")
        except Exception:  # pragma: no cover - the ledger itself is broken
            logger.warning("CODMonitor could not settle job %s", outcome.job.job_id, exc_info=True)
        self._alert_error(step, f"handling the outcome of job {outcome.job.job_id}", exc, b)

    def _alert_error(self, step: int, where: str, exc: Exception, benchmark: str | None = None):
        """A ``MONITOR_ERROR`` alert (per benchmark unless one is named); never raises."""
        for b in [benchmark] if benchmark in self.benchmarks else self.benchmarks:
            try:
                self._judge.emit(monitor_error_alert(step, b, where, exc))
            except Exception:  # pragma: no cover - the alert path itself is broken
                logger.warning("CODMonitor could not raise an alert", exc_info=True)

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
        ok = self._forecasts.refresh(force=force, wait=wait, timeout=timeout)
        if wait and self.poll_interval is None:
            self.poll()
        return ok

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every submitted evaluation has been judged and the trackers have
        made their calls (or ``timeout``).

        Useful in scripts and tests; a training loop never needs it. Tracker calls run
        on each tracker's own thread (:class:`~cod_monitor.monitor.fanout.TrackerFanout`):
        this waits for them too, so a tracker's records can be read when it returns.

        Returns
        -------
        bool
            False on timeout.
        """
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._background:
                self._inbox.wake()
            # under the poll lock: the poller takes an observation off the waiting list
            # before judging it, so reading without the lock could return before the
            # decision (and its alert, and stop_requested) exists
            with self._poll_lock:
                if not self._background:
                    self._process()
                busy = self._ledger.busy() or self._judge.waiting()
            if not busy:
                return self._fanout.flush(None if end is None else max(0.0, end - time.monotonic()))
            if end is not None and time.monotonic() > end:
                return False
            time.sleep(0.05)

    # -------------------------------------------------------------------- queries
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
        return self._forecasts.point(benchmark, step, tokens=tokens, compute=compute)

    def forecaster(self, benchmark: str) -> TrajectoryForecaster | None:
        """The fitted forecaster in use for ``benchmark`` (``None`` before the first fit)."""
        return self._forecasts.model(benchmark)

    def forecast_version(self, benchmark: str) -> int | None:
        """Current forecast version of ``benchmark``."""
        return self._forecasts.version(benchmark)

    def run_forecasts(self, benchmark: str) -> list[tuple]:
        """The run-conditioned forecasts made so far: ``(step, one_step, final)`` per
        judged checkpoint, in judgement order, where ``one_step`` is the
        :class:`~cod_monitor.records.ForecastPoint` the checkpoint was judged against
        (made before it was seen) and ``final`` the
        :class:`~cod_monitor.records.FinalForecast` made after it (``None`` when the
        run's length is unknown). Empty with ``condition_on_run=False``."""
        return list(self._judge.run_history.get(benchmark, []))

    def note_stopped(self, step: int, reason: str = "drift") -> None:
        """Record that the training loop stopped the run at ``step``; never raises.

        Call it when training actually stops because of the monitor (the callbacks
        do, with ``stop_on_drift``): :attr:`stop_requested` only says that a
        below-band alert was raised, and the summary's ``status`` says
        ``'stopped_by_drift'`` only after this call. The record is journaled, so a
        monitor restarted on the same ``out_dir`` (to finish the evaluations, say)
        still reports it; a checkpoint handed over after ``step`` (training resumed)
        makes it history.

        Parameters
        ----------
        step : int
            The training step at which the loop stopped.
        reason : str, default 'drift'
            Why: ``'drift'`` (a below-band alert) or a word of the caller's.

        Examples
        --------
        >>> if monitor.stop_requested:  # doctest: +SKIP
        ...     monitor.note_stopped(step)
        ...     break
        """
        try:
            self._stopped = {"step": int(step), "reason": str(reason)}
            logger.info("CODMonitor: training stopped at step %d (%s)", int(step), reason)
            if self._started and not self._closed:
                self._journal.append("stopped", **self._stopped)
        except Exception:  # never into the training loop
            logger.warning("CODMonitor could not record the stop at step %s", step, exc_info=True)

    def metrics(self, observation: Observation) -> dict:
        """The flat scalars of one judged checkpoint, for the training loop's own logger.

        :func:`~cod_monitor.records.observation_metrics` of the observation with the
        forecast it was judged against (the run-conditioned one when there is one), the
        final forecast made after it and whether an alert stood after it; what the
        callbacks log through the ``Trainer``'s log stream, and what a plain loop
        passes to its logger (e.g. ``Accelerator.log``).

        Parameters
        ----------
        observation : Observation
            One returned by :meth:`poll`.

        Returns
        -------
        dict of str to float or int
            ``cod/<benchmark>/<name>`` (see :data:`~cod_monitor.records.METRIC_NAMES`).

        Examples
        --------
        >>> for obs in monitor.poll():  # doctest: +SKIP
        ...     accelerator.log(monitor.metrics(obs), step=step)
        """
        judged = self._judge.judgement(observation.benchmark, observation.step)
        if judged is None:  # judged by an earlier session: today's forecast of it
            compute = None if math.isnan(observation.compute) else observation.compute
            judged = (self.forecast_point(observation.benchmark, observation.step,
                                          tokens=observation.tokens, compute=compute),
                      None, observation.benchmark in self.alerting)
        forecast, final, alerting = judged
        return observation_metrics(observation, forecast, final, alerting=alerting)

    def summary(self) -> dict:
        """Where the run stands, per benchmark (also passed to ``Tracker.finish``).

        ``status`` is ``'running'`` before :meth:`close`, then ``'finished'``; or
        ``'stopped_by_drift'`` (``'stopped'`` for another reason) once the training
        loop said it stopped the run (:meth:`note_stopped`), with ``stopped_at`` (its
        step) and ``stop_reason``. ``drift_detected``: a below-band alert was raised
        (whether or not training was stopped). ``stop_requested`` is kept for older
        readers and means ``status == 'stopped_by_drift'``. ``drain`` is ``None``
        before :meth:`close`, then ``{"seconds", "timeout", "unfinished"}``: how long
        closing waited for evaluations, its limit, and how many it left pending.
        """
        benchmarks = {b: self._benchmark_summary(b) for b in self.benchmarks}
        stopped = self._stop_record()
        if stopped is not None:
            status = "stopped_by_drift" if stopped["reason"] == "drift" else "stopped"
        else:
            status = "finished" if self._closed else "running"
        return {
            "run_name": self.run_name,
            "out_dir": str(self.out_dir),
            "status": status,
            "drift_detected": bool(self.stop_requested or self._judge.alert_counts.get(
                AlertReason.BELOW_BAND.value, 0)),
            "stopped_at": None if stopped is None else stopped["step"],
            "stop_reason": None if stopped is None else stopped["reason"],
            "benchmarks": benchmarks,
            "alerts": dict(self._judge.alert_counts),
            "failed": sum(v["failed"] for v in benchmarks.values()),
            "skipped": sum(v["skipped"] for v in benchmarks.values()),
            "stop_requested": status == "stopped_by_drift",
            "pool": self._intake.stats,
            "drain": self._drain,
        }

    def _stop_record(self) -> dict | None:
        """The stop the loop noted, unless training went on past it (a later checkpoint)."""
        stopped = self._stopped
        if stopped is None or stopped.get("step") is None:
            return stopped
        newest = max((s for s, _, _ in self._ledger.positions()), default=None)
        if newest is not None and newest > int(stopped["step"]):
            return None
        return stopped

    def _benchmark_summary(self, b: str) -> dict:
        obs = [o for o in self.observations if o.benchmark == b]
        last = obs[-1] if obs else None
        last_fp = final_fp = None
        if last is not None:
            last_fp = self.forecast_point(b, last.step, tokens=last.tokens,
                                          compute=None if math.isnan(last.compute) else last.compute)
        if self.run.max_steps:
            final_fp = self.forecast_point(b, int(self.run.max_steps))
        model = self.forecaster(b)
        return {
            "observations": len(obs),
            "last_step": None if last is None else last.step,
            "last_accuracy": None if last is None else last.accuracy,
            "last_forecast": None if last_fp is None else last_fp.to_dict(),
            "final_forecast": None if final_fp is None else final_fp.to_dict(),
            "run_final_forecast": (None if self._judge.finals.get(b) is None
                                   else self._judge.finals[b].to_dict()),
            "recipe": self._forecasts.recipe(b),
            "forecast_version": self.forecast_version(b),
            "mode": None if model is None else model.mode_,
            "forecast_error": self._forecasts.error(b),
            "alerting": b in self._judge.alerting,
            "failed": self._ledger.count(b, "failed"),
            "skipped": self._ledger.count(b, "skipped"),
            "skipped_steps": self._ledger.steps_with(b, "skipped"),
            "pending": self._ledger.count(b, "pending"),
        }

