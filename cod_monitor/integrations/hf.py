"""Hugging Face ``Trainer`` callback: COD monitoring of a training run.

A thin adapter: every event hands over to :class:`~cod_monitor.monitor.CODMonitor`,
which snapshots checkpoints, evaluates them asynchronously, forecasts, alerts and
logs to the trackers. This module is an edge: it imports ``transformers`` at the top,
and nothing in the core imports it.
"""

from __future__ import annotations

import difflib
import inspect
import logging
import math
import os
import sys
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from cod_monitor.exceptions import CODError, MissingExtraError

MissingExtraError.check("CODCallback", "transformers", "hf")  # before importing it

from transformers import TrainerCallback, TrainerState
from transformers.trainer_callback import ExportableState
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from cod_monitor._validation import check_bool, check_real, invalid  # noqa: E402
from cod_monitor.integrations.console import show_progress
from cod_monitor.monitor import (
    CheckpointConfig,
    CODMonitor,
    DriftConfig,
    ForecastConfig,
    PoolConfig,
    RunGeometry,
)
from cod_monitor.records import Alert, Checkpoint

__all__ = ["CODCallback", "CallbackArgumentsError"]

logger = logging.getLogger(__name__)

#: Callbacks built by users in this process, oldest first (see ``CODCallback.state``).
_LIVE: list[weakref.ref] = []
_RESTORE_KEY = "_cod_restored"
_COMPUTE_FROM = ("auto", "tokens", "total_flos")
#: What the Trainer saves its state as in each checkpoint folder (``transformers.trainer``
#: names it too, but importing that module for one string would load the whole Trainer).
_TRAINER_STATE = "trainer_state.json"
#: The ``Trainer``'s W&B integration logs every key of the log stream under this prefix.
WANDB_LOG_PREFIX = "train/"


class CallbackArgumentsError(CODError, TypeError):
    """:class:`CODCallback` was given an argument it does not take, or both a monitor and
    arguments to build one.

    A ``TypeError``, as Python's own error for an unexpected keyword argument; the
    message names the argument, the accepted ones and the closest match.
    """


class CODCallback(TrainerCallback, ExportableState):
    """Monitor a ``Trainer`` run with COD: evaluate checkpoints, forecast, alert on drift.

    Add it to the ``Trainer`` and train as usual::

        trainer = Trainer(..., callbacks=[CODCallback(ladder="ladder/",
                                                      eval_sets={"gsm8k": "gsm8k.jsonl"})])

    Events (all on the world-rank-0 process only; other ranks do nothing):

    - first event (normally ``on_train_begin``): build the monitor from the monitor
      arguments unless one was passed, and start it (workers, forecaster). Done once,
      lazily.
    - ``on_train_begin`` of a resumed run (``state.global_step > 0``): the
      ``<output_dir>/checkpoint-<step>`` folders up to the resumed step that the
      monitor's journal has no record of (the process died between saving one and
      ``on_save``) are handed over with ``monitor.reconcile(...)``, their tokens and
      compute read from their ``trainer_state.json``; nothing with a record is
      submitted twice. Later folders are left to the training, which saves them again.
    - ``on_save``: the ``Trainer`` has written ``<output_dir>/checkpoint-<global_step>``
      and may delete it at the next save (``save_total_limit``), so the monitor
      snapshots it now (hard links) and queues its evaluation:
      ``monitor.on_checkpoint(global_step, tokens=..., compute=..., path=...)``. It
      returns at once. A folder that is already gone is still handed over, so that the
      monitor records it and raises an ``EVALUATION_FAILING`` alert.
    - ``on_step_end`` and ``on_log``: ``monitor.poll()`` (at most every
      :attr:`poll_every_s` seconds) to collect judged observations; with
      ``stop_on_drift``, a below-band alert (``monitor.stop_requested``) sets
      ``control.should_training_stop`` and the stop is recorded
      (``monitor.note_stopped``: the summary says ``status: stopped_by_drift``).
    - ``on_train_end``: ``monitor.close(drain_timeout)`` drains the queued
      evaluations, finishes the trackers and writes the summary (kept in
      :attr:`summary_`); the observations judged while draining go through the log
      stream too, and a one-line final report per benchmark is logged.

    What it sets up at ``on_train_begin``, before building the monitor (see Notes):

    - **the log stream**: every judged checkpoint's scalars
      (:meth:`CODMonitor.metrics <cod_monitor.monitor.CODMonitor.metrics>`:
      ``cod/<benchmark>/accuracy``, ``forecast``, ``forecast_lower``,
      ``forecast_upper``, ``final_forecast`` (the run-conditioned one, when known)
      with ``_lower``/``_upper``, ``checkpoint_step``, ``alerting``) are added to the
      ``Trainer``'s own logs, so every ``report_to`` backend (TensorBoard, MLflow,
      W&B, ...), the console printer and ``state.log_history`` get them. When new
      ones are ready it asks the ``Trainer`` to log at the next step
      (``control.should_log``); they are logged at the current training step, and
      ``checkpoint_step`` names the checkpoint.
    - **tokens**: unless ``run.tokens_per_step`` is given, the ``Trainer``'s own
      token counting is turned on (``include_num_input_tokens_seen='all'``; exact,
      summed over processes, and its logs then carry ``num_input_tokens_seen`` and
      ``train_tokens_per_second``), and tokens per step are read from the batch
      geometry when the training set's sequences all have one length.
    - **parameters**: ``run.params`` defaults to the model's parameter count (all
      parameters, embeddings included).
    - **the console**: a start-up line, one line per judged checkpoint and the
      final report are shown on stderr when the script configured no logging (see
      :func:`~cod_monitor.integrations.console.show_progress`; ``console=False``
      turns this off).

    Parameters
    ----------
    monitor : CODMonitor, optional
        The monitor to drive (any :class:`~cod_monitor.monitor.CODMonitor` setting is
        reachable this way). When omitted, one is built on the first event from the
        monitor arguments below; passing both is an error.
    ladder, eval_sets, evaluator, forecast, pool, run, drift, checkpoints, alert_callback
        As in :class:`~cod_monitor.monitor.CODMonitor`; ``None`` (the default) keeps
        the monitor's default. ``run.max_steps`` defaults to ``state.max_steps`` (set
        by the ``Trainer`` at train begin, from ``num_train_epochs`` too),
        ``run.learning_rate`` to ``args.learning_rate`` (the peak rate),
        ``run.params`` to the model's parameter count and ``run.tokens_per_step`` to
        the batch geometry (per-device batch size x gradient accumulation x
        processes x sequence length) when the training set's sequences all have one
        length.
    trackers : sequence of Tracker, optional
        Default: a :class:`~cod_monitor.trackers.local.LocalTracker` in ``out_dir``
        plus a :class:`~cod_monitor.trackers.wandb.WandbTracker` when ``report_to``
        includes ``"wandb"``. That tracker logs into the ``Trainer``'s own W&B run,
        where the log stream already brings the scalars (as ``train/cod/...``): it
        plots them against their checkpoint step and adds the charts, tables, alerts
        and summary, without a second series of its own
        (``WandbTracker(log_stream_prefix='train/')``). ``[]``: none.
    out_dir : str or path, optional
        The monitor's directory; default ``<output_dir>/cod_monitor``.
    run_name : str, optional
        Default: ``args.run_name``.
    stop_on_drift : bool, default False
        Stop training (``control.should_training_stop = True``) once the monitor
        raises a below-band alert. Multi-process runs stop at the next checkpoint: the
        decision is broadcast from rank 0 in ``on_save`` so that every rank leaves the
        loop together.
    drain_timeout : float or None, default 600
        Seconds ``on_train_end`` waits for queued evaluations (``None``: no limit);
        jobs still running stay pending in the monitor's journal and are resumed by the
        next monitor on the same ``out_dir``.
    compute_from : {'auto', 'tokens', 'total_flos'} or callable, default 'auto'
        Training compute (FLOPs) passed with each checkpoint. It must follow the
        ladder's convention (``compute`` in ``ladder.json``, normally :math:`6ND`).

        - ``'tokens'``: :math:`6 N D` with :math:`D` = ``state.num_input_tokens_seen``
          (the ``Trainer``'s count, which the callback turns on) and :math:`N` = the
          monitor's ``params`` (by default ``model.num_parameters()``: all
          parameters, embeddings included, as the demo ladder counts them).
        - ``'total_flos'``: ``state.total_flos``, the ``Trainer``'s own estimate
          (:math:`6 N D` with non-embedding parameters and every input token,
          padding included).
        - ``'auto'``: ``'tokens'`` when tokens are counted, else ``'total_flos'``.
        - ``callable(state, model) -> float``.

        Tokens (``state.num_input_tokens_seen``, when counted) are always passed too,
        so the monitor can use its trajectory law in :math:`(N, D)`. With
        ``'total_flos'`` or a callable, ``params`` is not taken from the model: the
        monitor learns it from the compute given (``compute / (6 tokens)``).
    console : bool, default True
        Show the monitor's lines on stderr when logging is not configured (see
        above).
    _cod_restored : bool, default False
        Set only by the ``Trainer`` when it rebuilds the callback from
        ``trainer_state.json`` (see Notes).

    Raises
    ------
    ParameterError
        An invalid ``compute_from``, ``stop_on_drift``, ``drain_timeout`` or
        ``monitor``, monitor arguments without ``ladder`` and ``eval_sets``, or any
        monitor argument :meth:`CODMonitor.check_arguments
        <cod_monitor.monitor.CODMonitor.check_arguments>` refuses (the evaluator config
        included): all checked here, not at the first event.
    CallbackArgumentsError
        Both a monitor and arguments to build one, or a keyword argument the callback
        does not take (a ``TypeError`` naming it, the accepted ones and the closest).

    Attributes
    ----------
    monitor : CODMonitor or None
        The monitor (``None`` before the first event when built from arguments).
    monitor_kwargs : dict
        The monitor arguments given (those not ``None``).
    submitted_steps : list of int
        Checkpoint steps handed to the monitor.
    n_observations : int
        Observations collected so far (by ``poll`` during training, and at the final
        drain).
    stopped_at : int or None
        Step at which ``stop_on_drift`` stopped training.
    compute_source : str or None
        How the last checkpoint's compute was obtained (``'6*N*tokens'``,
        ``'total_flos'``, ``'callable'`` or ``None`` when unknown).
    tokens_source : str or None
        Where the checkpoints' tokens come from (a sentence, also in the start-up
        line), ``None`` when they are unknown.
    log_stream : bool
        Whether the cod scalars reach the ``report_to`` backends (the callback runs
        ahead of them); ``False`` when the ``Trainer``'s callback handler could not
        be found (they then reach ``log_history``, the console and the trackers only).
    summary_ : dict or None
        What ``monitor.close`` returned at the end of training.
    poll_every_s : float
        Minimum seconds between two ``poll`` calls from ``on_step_end``/``on_log``
        (class attribute, 2.0).

    Notes
    -----
    State across ``resume_from_checkpoint``: the callback is an ``ExportableState``,
    so with ``TrainingArguments(restore_callback_states_from_checkpoint=True)`` its
    ``submitted_steps``, ``n_observations``, ``stopped_at`` and ``compute_source``
    come back from ``trainer_state.json``. The ``Trainer`` restores by constructing a
    new callback from the saved state; that new callback takes its monitor and
    settings from the most recently built, not yet used ``CODCallback`` of the process
    (the one you passed to the resumed ``Trainer``), since a monitor cannot be saved
    as JSON. The monitor's own journal (in its ``out_dir``) is what guarantees that no
    checkpoint is evaluated twice and no observation is lost; the state is taken while
    the checkpoint is written, just before ``on_save`` submits it, so it already
    counts that checkpoint.

    The log stream: ``Trainer.log`` appends a copy of the logs to
    ``state.log_history`` and then calls ``on_log`` on every callback in order, and
    the ``report_to`` callbacks come before those passed with ``callbacks=``. So at
    ``on_train_begin`` the callback finds the ``Trainer``'s callback handler (the
    caller of its event) and moves itself ahead of the reporting callbacks; in
    ``on_log`` it adds the new scalars to the logs (the reporters, the printer) and
    to the ``log_history`` entry of that log. One log carries at most one
    checkpoint per benchmark; the rest go in the next ones. In a multi-process run
    the extra log (``should_log``, which makes every process gather the loss) is
    asked for on every process at once, after the decision is broadcast at a
    checkpoint; otherwise the scalars wait for the next regular log. Should the
    ``transformers`` internals differ, a warning says so and the scalars still
    reach ``log_history``, the console and the trackers.

    The callback never raises into the training loop after setup: a failing
    ``poll`` or ``close`` is logged as a warning. Bad arguments raise when the callback
    is built; what needs the files (the ladder, the evaluation sets and whether their
    sample ids match, see :meth:`CODMonitor.start
    <cod_monitor.monitor.CODMonitor.start>`) raises at the first event
    (``on_train_begin``), before any compute is spent.

    Environment variables: those of W&B when a ``WandbTracker`` is used
    (``WANDB_MODE``, ``WANDB_DIR``, ``WANDB_PROJECT``, ...); none of its own.

    Examples
    --------
    >>> from transformers import Trainer, TrainingArguments  # doctest: +SKIP
    >>> cb = CODCallback(ladder="ladder/", eval_sets={"gsm8k": "gsm8k.jsonl"},
    ...                  evaluator={"backend": "hf", "mode": "exact"},
    ...                  pool=PoolConfig(devices=["cuda:7"]),
    ...                  stop_on_drift=True)  # doctest: +SKIP
    >>> Trainer(model, TrainingArguments("out", save_steps=500, report_to="wandb"),
    ...         train_dataset=ds, callbacks=[cb]).train()  # doctest: +SKIP
    """

    poll_every_s: float = 2.0

    def __init__(
        self,
        monitor: CODMonitor | None = None,
        *,
        ladder=None,
        eval_sets: Mapping | None = None,
        evaluator: dict | None = None,
        forecast: ForecastConfig | None = None,
        pool: PoolConfig | None = None,
        run: RunGeometry | None = None,
        drift: DriftConfig | None = None,
        checkpoints: CheckpointConfig | None = None,
        trackers: Sequence | None = None,
        alert_callback: Callable[[Alert], None] | None = None,
        out_dir=None,
        run_name: str | None = None,
        stop_on_drift: bool = False,
        drain_timeout: float | None = 600.0,
        compute_from: str | Callable = "auto",
        console: bool = True,
        _cod_restored: bool = False,
        **unknown,
    ):
        owner = "CODCallback"
        if unknown:
            raise unknown_arguments(CODCallback, unknown)
        if not (callable(compute_from) or (isinstance(compute_from, str)
                                           and compute_from in _COMPUTE_FROM)):
            raise invalid(owner, "compute_from", "a str among {'auto', 'tokens', 'total_flos'} "
                          "or a callable", compute_from)
        monitor_kwargs = monitor_arguments(
            owner, monitor, ladder=ladder, eval_sets=eval_sets, evaluator=evaluator,
            forecast=forecast, pool=pool, run=run, drift=drift, checkpoints=checkpoints,
            trackers=trackers, alert_callback=alert_callback, out_dir=out_dir,
            run_name=run_name)
        self.monitor = monitor
        self.stop_on_drift = check_bool(owner, "stop_on_drift", stop_on_drift)
        self.drain_timeout = check_real(owner, "drain_timeout", drain_timeout, 0, closed="left",
                                        none_ok=True)
        self.compute_from = compute_from
        self.console = check_bool(owner, "console", console)
        self.monitor_kwargs = monitor_kwargs
        self.submitted_steps: list[int] = []
        self.n_observations = 0
        self.stopped_at: int | None = None
        self.compute_source: str | None = None
        self.tokens_source: str | None = None
        self.log_stream = False
        self.summary_: dict | None = None
        self._initialized = False
        self._closed = False
        self._last_poll = -math.inf
        self._pending_save: int | None = None
        self._handler = None  # weakref to the Trainer's CallbackHandler
        self._unlogged: dict[str, list[dict]] = {}  # per benchmark, oldest first
        self._log_next_step = False  # several processes: log at the next step, everywhere
        self._history_warned = False
        self._counting: str | None = None  # 'turned on' when this callback enabled it
        self._geometry: str | None = None  # how tokens per step were read from the batches
        self._sources: dict[str, str] = {}  # run geometry the callback filled in, and whence
        self._tokens_at_begin = 0
        self._restored = bool(_cod_restored)
        if self._restored:
            self._adopt()
        else:
            _LIVE[:] = [r for r in _LIVE if r() is not None]
            _LIVE.append(weakref.ref(self))

    # ------------------------------------------------------------------ state
    def state(self) -> dict:
        """What ``trainer_state.json`` keeps of this callback (see Notes)."""
        submitted = list(self.submitted_steps)
        if self._pending_save is not None and self._pending_save not in submitted:
            submitted.append(self._pending_save)  # on_save follows right after this call
        return {
            "args": {
                "stop_on_drift": self.stop_on_drift,
                "drain_timeout": self.drain_timeout,
                "compute_from": self.compute_from if isinstance(self.compute_from, str) else "auto",
                "console": self.console,
                _RESTORE_KEY: True,
            },
            "attributes": {
                "submitted_steps": submitted,
                "n_observations": self.n_observations,
                "stopped_at": self.stopped_at,
                "compute_source": self.compute_source,
            },
        }

    def _adopt(self):
        """Take the monitor and settings of the callback this one replaces on resume."""
        for ref in reversed(_LIVE):
            cb = ref()
            if cb is not None and not cb._initialized and not getattr(cb, "_adopted", False):
                cb._adopted = True
                self.monitor, self.monitor_kwargs = cb.monitor, dict(cb.monitor_kwargs)
                self.stop_on_drift, self.drain_timeout = cb.stop_on_drift, cb.drain_timeout
                self.compute_from, self.console = cb.compute_from, cb.console
                return
        logger.warning(
            "CODCallback was restored from a checkpoint, but no CODCallback built in this "
            "process is left to take a monitor from; it will do nothing. Pass a CODCallback "
            "to the resumed Trainer."
        )

    # ------------------------------------------------------------------ setup
    def setup(self, args, state, model=None, train_dataloader=None) -> bool:
        """Build (if needed) and start the monitor; idempotent. False when inactive.

        ``model`` and ``train_dataloader`` (the ``Trainer``'s event arguments) give the
        parameter count and the batch geometry of a monitor built here.
        """
        if self._initialized:
            return self.monitor is not None and not self._closed
        self._initialized = True
        if self.monitor is None and not self.monitor_kwargs:
            if not self._restored:
                logger.warning("CODCallback has no monitor and no CODMonitor arguments; it does nothing.")
            return False
        if self.console:
            show_progress()
        if self.monitor is None:
            self.monitor = self._build_monitor(args, state, model, train_dataloader)
        start = getattr(self.monitor, "start", None)
        if callable(start):
            start()
        logger.debug("CODCallback set up: %s", type(self.monitor).__name__)
        return True

    def _build_monitor(self, args, state, model=None, train_dataloader=None) -> CODMonitor:
        kwargs = dict(self.monitor_kwargs)
        kwargs.setdefault("out_dir", os.path.join(args.output_dir, "cod_monitor"))
        if getattr(args, "run_name", None):
            kwargs.setdefault("run_name", args.run_name)
        run = kwargs.get("run", RunGeometry())
        if getattr(state, "max_steps", 0) and run.max_steps is None:
            run = replace(run, max_steps=int(state.max_steps))
            self._sources["max_steps"] = "the Trainer's"
        lr = getattr(args, "learning_rate", None)
        if run.learning_rate is None and isinstance(lr, (int, float)) and lr > 0:
            # compared with the ladder's learning-rate trend at start
            run = replace(run, learning_rate=float(lr))
        # with compute from 6*N*tokens, N is the model's; a callable or total_flos brings
        # its own compute, and params are then learned from it (compute / 6 tokens)
        from_tokens = isinstance(self.compute_from, str) and self.compute_from != "total_flos"
        n = _n_params(model) if run.params is None and from_tokens else None
        if n:
            run = replace(run, params=float(n))
            self._sources["params"] = "the model's"
        if run.tokens_per_step is None:
            per_step, how = _geometry_tokens_per_step(args, train_dataloader, model)
            if per_step:
                run = replace(run, tokens_per_step=float(per_step))
                self._geometry = how
        kwargs["run"] = run
        if "trackers" not in kwargs:
            from cod_monitor.trackers.local import LocalTracker

            trackers = [LocalTracker(kwargs["out_dir"])]
            report_to = args.report_to if isinstance(args.report_to, (list, tuple)) else [args.report_to]
            if "wandb" in report_to or "all" in report_to:
                from cod_monitor.trackers.wandb import WandbTracker

                # the log stream brings the scalars to the Trainer's run only when
                # this callback runs ahead of its WandbCallback
                trackers.append(WandbTracker(
                    log_stream_prefix=WANDB_LOG_PREFIX if self.log_stream else None))
            kwargs["trackers"] = trackers
        return CODMonitor(**kwargs)

    def _active(self, args, state, **kwargs) -> bool:
        if not state.is_world_process_zero or self._closed:
            return False
        return self.setup(args, state, kwargs.get("model"), kwargs.get("train_dataloader"))

    # ------------------------------------------------------------------ events
    def on_train_begin(self, args, state, control, **kwargs):
        # every process: the Trainer's token count gathers over all of them
        self._count_tokens(args, state)
        if not state.is_world_process_zero or self._closed:
            return
        first = not self._initialized and (self.monitor is not None or bool(self.monitor_kwargs))
        if first:
            self._join_log_stream()
        if not self._active(args, state, **kwargs):
            return
        if first:
            self._say_hello(args, state)
        if int(state.global_step) > 0:
            self._reconcile(args, state, kwargs.get("model"))

    def on_step_end(self, args, state, control, **kwargs):
        changed = self._check_counting(args, state, kwargs.get("model"))
        if self._log_next_step:  # decided on every process at the last checkpoint
            self._log_next_step = False
            control.should_log = changed = True
        if not self._active(args, state, **kwargs):
            return control if changed else None
        self._pending_save = int(state.global_step)
        self._poll()
        if self._unlogged and self.log_stream and not _distributed():
            control.should_log = changed = True  # the Trainer logs (and calls on_log) now
        return self._maybe_stop(state, control) or (control if changed else None)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or self.monitor is None or not self._initialized:
            return None
        if self._active(args, state, **kwargs):
            self._poll()
        self._add_to_log(state, logs)
        return None if self._closed else self._maybe_stop(state, control)

    def on_save(self, args, state, control, **kwargs):
        active = self._active(args, state, **kwargs)
        self._pending_save = None
        changed = self._sync_stop(args, state, control)
        step = int(state.global_step)
        if active and step not in self.submitted_steps:
            path = os.path.join(args.output_dir, f"{PREFIX_CHECKPOINT_DIR}-{step}")
            if not os.path.isdir(path):
                # handed over all the same: the monitor records it and alerts, since it
                # will have no observation
                logger.warning("CODCallback: no checkpoint directory %s at step %d.", path, step)
                self.monitor.on_checkpoint(step, path=path)
            else:
                tokens, compute = self._compute(state, kwargs.get("model"))
                self.monitor.on_checkpoint(step, tokens=tokens, compute=compute, path=path)
                self.submitted_steps.append(step)
                logger.debug("CODCallback submitted step %d (compute %s from %s)", step, compute,
                             self.compute_source)
        return control if changed else None

    def on_train_end(self, args, state, control, **kwargs):
        if not state.is_world_process_zero or self._closed or not self._initialized:
            return
        self._closed = True
        if self.monitor is None:
            return
        try:
            self.summary_ = self.monitor.close(self.drain_timeout)
            # the observations judged while draining, not yet returned by a poll
            self._take(self.monitor.poll())
        except Exception:
            logger.warning("CODMonitor.close raised; the run is not affected.", exc_info=True)
            return
        self._flush_log(args, state, control)
        for b, s in ((self.summary_ or {}).get("benchmarks") or {}).items():
            fc = s.get("last_forecast") or {}
            logger.info(
                "cod/%s: %s observation(s); last step %s accuracy %s (forecast %s [%s, %s])%s.",
                b, s.get("observations"), s.get("last_step"), _fmt(s.get("last_accuracy")),
                _fmt(fc.get("value")), _fmt(fc.get("lower")), _fmt(fc.get("upper")),
                "; ALERTING" if s.get("alerting") else "",
            )
        logger.info("CODCallback: %s.", status_words(self.summary_))

    # ------------------------------------------------------------------ log stream
    def _join_log_stream(self) -> None:
        """Find the ``Trainer``'s callback handler and move this callback ahead of the
        reporting callbacks (see Notes); warn, never raise, when that fails."""
        try:
            handler = _calling_handler(self)
            if handler is None:
                raise LookupError("no CallbackHandler holding this callback calls it")
            callbacks = handler.callbacks
            me = next(i for i, cb in enumerate(callbacks) if cb is self)
            first = next((i for i, cb in enumerate(callbacks) if _reports(cb)), None)
            if first is not None and first < me:
                # the handler is iterating over this list right now (on_train_begin):
                # moving an item backwards leaves the items after it where they were,
                # so the iteration goes on with the same next callback
                callbacks.insert(first, callbacks.pop(me))
            self._handler = weakref.ref(handler)
            self.log_stream = True
        except Exception as exc:
            self.log_stream = False
            logger.warning(
                "CODCallback could not put itself ahead of the Trainer's reporting callbacks "
                "(%s: %s; another transformers version?): the cod/* metrics will reach "
                "state.log_history, the console and the cod_monitor trackers, not the "
                "report_to backends.", type(exc).__name__, exc)

    def _take(self, observations) -> None:
        """Count observations and queue their scalars for the log stream."""
        self.n_observations += len(observations)
        for o in observations:
            logger.debug("cod/%s step %d: observed %.4f", o.benchmark, o.step, o.accuracy)
            try:
                metrics = self.monitor.metrics(o)
            except Exception:
                logger.warning("CODCallback could not make the metrics of step %s; the run is "
                               "not affected.", o.step, exc_info=True)
                continue
            self._unlogged.setdefault(o.benchmark, []).append(metrics)

    def _next_metrics(self) -> dict:
        """The oldest queued scalars of every benchmark (one checkpoint each: a log
        has one value per key)."""
        out = {}
        for b in list(self._unlogged):
            queue = self._unlogged[b]
            out.update(queue.pop(0))
            if not queue:
                del self._unlogged[b]
        return out

    def _add_to_log(self, state, logs) -> None:
        """Add the queued scalars to ``logs`` and to its ``log_history`` entry."""
        if not self._unlogged or not isinstance(logs, dict):
            return
        try:
            history = state.log_history
            entry = history[-1] if history else None
            # Trainer.log appended {**logs, "step": global_step} just before on_log
            ours = (isinstance(entry, dict) and entry.get("step") == state.global_step
                    and all(logs.get(k) is v for k, v in entry.items() if k != "step"))
            metrics = self._next_metrics()
            logs.update(metrics)
            if ours:
                entry.update(metrics)
            else:
                if not self._history_warned:
                    self._history_warned = True
                    logger.warning("CODCallback: the last state.log_history entry is not the "
                                   "log being written (another transformers version?); the "
                                   "cod/* metrics get entries of their own.")
                history.append({**metrics, "step": int(state.global_step)})
        except Exception:
            logger.warning("CODCallback could not add the cod/* metrics to the Trainer's log; "
                           "the run is not affected.", exc_info=True)

    def _flush_log(self, args, state, control) -> None:
        """At the end of training: log what is still queued as the Trainer would (one
        ``log_history`` entry, then ``on_log`` on every callback), as many times as
        one benchmark has checkpoints left."""
        handler = None if self._handler is None else self._handler()
        for _ in range(max((len(q) for q in self._unlogged.values()), default=0)):
            try:
                if handler is None:
                    state.log_history.append({**self._next_metrics(), "step": int(state.global_step)})
                    continue
                logs: dict = {}
                state.log_history.append({"step": int(state.global_step)})
                handler.on_log(args, state, control, logs)  # this callback fills both
            except Exception:
                logger.warning("CODCallback could not log the last cod/* metrics; the run is "
                               "not affected.", exc_info=True)
                return

    # ------------------------------------------------------------------ tokens
    def _tokens_given(self) -> bool:
        run = self.monitor_kwargs.get("run") if self.monitor is None else getattr(self.monitor, "run", None)
        return getattr(run, "tokens_per_step", None) is not None

    def _count_tokens(self, args, state) -> None:
        """Turn on the Trainer's token counting unless tokens per step are given
        (every process, at train begin: it gathers over all of them)."""
        self._tokens_at_begin = float(getattr(state, "num_input_tokens_seen", 0) or 0)
        if self._tokens_given() or (self.monitor is None and not self.monitor_kwargs):
            return
        mode = getattr(args, "include_num_input_tokens_seen", None)
        if mode not in ("no", False, None):
            return  # the user's own setting ('all' or 'non_padding')
        try:
            if mode is None:
                raise AttributeError("TrainingArguments has no include_num_input_tokens_seen")
            args.include_num_input_tokens_seen = "all"
            self._counting = "turned on"
        except Exception as exc:
            self._counting = f"unavailable ({exc})"

    def _check_counting(self, args, state, model) -> bool:
        """After the first step: a count still at zero means the batches have no input
        ids; turn it off (every process alike) and say what to pass. Returns False."""
        if self._counting != "turned on":
            return False
        self._counting = "checked"
        if float(getattr(state, "num_input_tokens_seen", 0) or 0) > self._tokens_at_begin:
            return False
        try:
            args.include_num_input_tokens_seen = "no"
        except Exception:  # it counts nothing anyway
            pass
        self._counting = "failed"
        if state.is_world_process_zero:
            logger.warning(
                "CODCallback: the Trainer counted no tokens in the first step (the batches have "
                "no %r); checkpoints go without tokens, and the forecast of the final accuracy "
                "is lost. Pass run=RunGeometry(tokens_per_step=...) (tokens of one optimizer "
                "step, all processes together).", _main_input(model))
        return False

    def _tokens_words(self) -> str:
        run = getattr(self.monitor, "run", None)
        per_step = getattr(run, "tokens_per_step", None)
        rate = f"tokens/step={per_step:.6g}" if per_step else "tokens/step unknown"
        if self._geometry and per_step:
            rate += f" (from the batch geometry: {self._geometry})"
        elif per_step:
            rate += " (given)"
        if self._counting == "turned on":
            self.tokens_source = ("counted by the Trainer (include_num_input_tokens_seen='all', "
                                  "turned on by CODCallback)")
        elif self._counting is None and not self._tokens_given():
            self.tokens_source = "counted by the Trainer (include_num_input_tokens_seen)"
        elif per_step:
            self.tokens_source = "step x tokens_per_step"
        else:
            self.tokens_source = None
        return f"{rate}, tokens {self.tokens_source or 'UNKNOWN'}"

    def _say_hello(self, args, state) -> None:
        """The start-up line, and a warning when tokens will be unknown."""
        try:
            # the monitor's own start line says the rest (evaluator, devices, out_dir);
            # this one says where the callback took each number from
            m = self.monitor
            benchmarks = list(getattr(m, "benchmarks", []) or [])
            params = getattr(m, "params", None)
            max_steps = getattr(getattr(m, "run", None), "max_steps", None)
            report_to = args.report_to if isinstance(args.report_to, (list, tuple)) else [args.report_to]
            logger.info(
                "CODCallback: monitoring %d benchmark%s (%s): %s, %s, %s; cod/* metrics in the "
                "Trainer's logs (log_history, console, report_to=%s)%s.", len(benchmarks),
                "" if len(benchmarks) == 1 else "s", ", ".join(map(str, benchmarks)),
                f"N={params:.3g} params ({self._sources.get('params', 'given')})" if params
                else "N learned from the first checkpoint's compute and tokens",
                self._tokens_words(),
                f"max_steps={max_steps} ({self._sources.get('max_steps', 'given')})" if max_steps
                else "max_steps unknown (no forecast of the final accuracy)",
                ",".join(str(r) for r in report_to if r) or "none",
                "" if self.log_stream else " (not the report_to backends: see the warning above)")
            doubled = [t for t in getattr(m, "trackers", []) or []
                       if type(t).__name__ == "WandbTracker"
                       and getattr(t, "log_stream_prefix", "") is None]
            report_to = args.report_to if isinstance(args.report_to, (list, tuple)) else [args.report_to]
            if doubled and self.log_stream and ("wandb" in report_to or "all" in report_to):
                logger.info("CODCallback: the Trainer's W&B run gets the cod/* scalars through its "
                            "log stream (as train/cod/...) and from the monitor's WandbTracker; "
                            "pass WandbTracker(log_stream_prefix='train/') for one series per "
                            "quantity.")
            if self.tokens_source is None:
                logger.warning(
                    "CODCallback cannot know the training tokens (%s): checkpoints go without "
                    "tokens, and the forecast of the final accuracy is lost. Pass "
                    "run=RunGeometry(tokens_per_step=...) (tokens of one optimizer step, all "
                    "processes together), or set include_num_input_tokens_seen='all'.",
                    self._counting or "no count")
        except Exception:
            logger.warning("CODCallback could not write its start-up line.", exc_info=True)

    # ------------------------------------------------------------------ helpers
    def _reconcile(self, args, state, model) -> None:
        """Hand the monitor the checkpoints on disk up to the resumed step (see the
        class docstring); never raises."""
        reconcile = getattr(self.monitor, "reconcile", None)
        if not callable(reconcile):
            return
        try:
            found = []
            for step, path in _checkpoint_dirs(args.output_dir):
                if step > int(state.global_step):
                    continue  # after the resumed step: training saves it again
                tokens, compute = self._compute(_saved_state(path, step), model)
                found.append(Checkpoint(step=step, compute=compute, tokens=tokens, path=path))
            taken = reconcile(found)
        except Exception:
            logger.warning("CODCallback could not reconcile the checkpoints in %s with the "
                           "monitor's journal; the run is not affected.", args.output_dir,
                           exc_info=True)
            return
        for step in taken:
            if step not in self.submitted_steps:
                self.submitted_steps.append(step)
        self.submitted_steps.sort()

    def _poll(self):
        now = time.monotonic()
        if now - self._last_poll < self.poll_every_s:
            return
        self._last_poll = now
        try:
            observations = self.monitor.poll()
        except Exception:
            logger.warning("CODMonitor.poll raised; the run is not affected.", exc_info=True)
            return
        self._take(observations)

    def _maybe_stop(self, state, control):
        if (self.stop_on_drift and getattr(self.monitor, "stop_requested", False)
                and not control.should_training_stop and not _distributed()):
            control.should_training_stop = True
            self._stopped(state, "")
            return control
        return None

    def _stopped(self, state, where: str) -> None:
        self.stopped_at = int(state.global_step)
        if not state.is_world_process_zero:
            return
        note = getattr(self.monitor, "note_stopped", None)
        if callable(note):
            note(self.stopped_at, "drift")  # the summary says stopped_by_drift
        logger.warning("CODCallback stops training at step %d%s: the run drifted below its "
                       "forecast (stop_on_drift=True).", self.stopped_at, where)

    def _sync_stop(self, args, state, control) -> bool:
        """Multi-process runs, at a checkpoint: every rank learns rank 0's stop decision
        (with ``stop_on_drift``) and whether cod metrics wait for the log stream (then
        every rank logs at the next step). Returns whether it stopped training."""
        if not _distributed():
            return False
        import torch
        import torch.distributed as dist

        zero = state.is_world_process_zero
        stop = bool(zero and self.stop_on_drift and getattr(self.monitor, "stop_requested", False))
        log = bool(zero and self._unlogged and self.log_stream)
        device = "cpu"
        if dist.get_backend() == "nccl":
            device = torch.device("cuda", torch.cuda.current_device())
        flags = torch.tensor([int(stop), int(log)], device=device)
        dist.broadcast(flags, src=0)
        stop, self._log_next_step = bool(flags[0].item()), bool(flags[1].item())
        if stop and not control.should_training_stop:
            control.should_training_stop = True
            self._stopped(state, " on every rank")
            return True
        return False

    def _compute(self, state, model):
        """(tokens, compute) of the checkpoint; see ``compute_from``."""
        tokens = float(getattr(state, "num_input_tokens_seen", 0) or 0) or None
        how = self.compute_from
        if callable(how):
            self.compute_source = "callable"
            return tokens, float(how(state, model))
        if how in ("auto", "tokens") and tokens:
            n = getattr(self.monitor, "params", None) or _n_params(model)
            if n:
                self.compute_source = "6*N*tokens"
                return tokens, 6.0 * float(n) * tokens
        if how in ("auto", "total_flos") and getattr(state, "total_flos", 0):
            self.compute_source = "total_flos"
            return tokens, float(state.total_flos)
        self.compute_source = None
        return tokens, None



def monitor_arguments(owner: str, monitor, **given) -> dict:
    """Check a callback's ``monitor`` against the ``CODMonitor`` keyword arguments it was
    given (``None`` = not given), and return those given, checked.

    Both callbacks (this one and :mod:`cod_monitor.integrations.lightning`'s) take either
    a ready monitor or the arguments to build one when training starts; the arguments
    are checked now, so that a mistake fails before any compute is spent.

    Raises
    ------
    CallbackArgumentsError
        Both a monitor and arguments to build one.
    ParameterError
        ``monitor`` is not a monitor, ``ladder``/``eval_sets`` is missing from the
        arguments, or :meth:`CODMonitor.check_arguments` refuses one.
    """
    monitor_kwargs = {k: v for k, v in given.items() if v is not None}
    if monitor is not None and monitor_kwargs:
        raise CallbackArgumentsError(
            "CODCallback takes either a monitor or CODMonitor keyword arguments, not both; "
            f"got a monitor and {sorted(monitor_kwargs)}."
        )
    if monitor is not None and not all(callable(getattr(monitor, m, None))
                                       for m in ("on_checkpoint", "poll", "close")):
        raise invalid(owner, "monitor", "a CODMonitor or None", monitor)
    if monitor_kwargs:
        for name in ("ladder", "eval_sets"):
            if name not in monitor_kwargs:
                raise invalid(owner, name, "given with the other CODMonitor arguments",
                              None, "Pass ladder= and eval_sets= (or a ready "
                              "monitor=CODMonitor(...)).")
        CODMonitor.check_arguments(owner=owner, **monitor_kwargs)
    return monitor_kwargs

def unknown_arguments(callback: type, unknown: dict) -> CallbackArgumentsError:
    """The error for keyword arguments ``callback`` (a ``CODCallback`` class) does not
    take: it names the first, the closest accepted name and every accepted one."""
    accepted = [name for name in inspect.signature(callback).parameters
                if not name.startswith("_") and name != "unknown"]
    name = sorted(unknown)[0]
    close = difflib.get_close_matches(name, accepted, n=1)
    guess = f" Did you mean {close[0]!r}?" if close else ""
    more = f" (and {len(unknown) - 1} more unknown)" if len(unknown) > 1 else ""
    return CallbackArgumentsError(
        f"CODCallback got an unexpected keyword argument {name!r}{more}.{guess} It accepts "
        f"{', '.join(accepted)}; other CODMonitor settings go through a ready "
        "monitor=CODMonitor(...)."
    )


def _checkpoint_dirs(output_dir) -> list[tuple[int, str]]:
    """``(step, path)`` of every ``checkpoint-<step>`` folder of ``output_dir``, by step."""
    prefix = f"{PREFIX_CHECKPOINT_DIR}-"
    try:
        names = os.listdir(output_dir)
    except OSError:
        return []
    out = []
    for name in names:
        path = os.path.join(output_dir, name)
        if name.startswith(prefix) and name[len(prefix):].isdigit() and os.path.isdir(path):
            out.append((int(name[len(prefix):]), path))
    return sorted(out)


def _saved_state(path, step: int) -> TrainerState:
    """The ``TrainerState`` a checkpoint folder saved (its tokens, FLOPs), or one that
    knows only its step when ``trainer_state.json`` is missing or unreadable."""
    try:
        return TrainerState.load_from_json(os.path.join(path, _TRAINER_STATE))
    except (OSError, ValueError, TypeError):
        return TrainerState(global_step=step)


def _calling_handler(callback):
    """The ``CallbackHandler`` whose ``call_event`` is running ``callback``'s event (the
    frames above this call), or ``None``."""
    from transformers.trainer_callback import CallbackHandler

    frame = sys._getframe(1)
    while frame is not None:
        obj = frame.f_locals.get("self")
        if isinstance(obj, CallbackHandler) and any(cb is callback for cb in obj.callbacks):
            return obj
        frame = frame.f_back
    return None


def _reports(callback) -> bool:
    """Whether ``callback`` is one of the ``Trainer``'s ``report_to`` integrations."""
    return type(callback).__module__.startswith("transformers.integrations")


def _main_input(model) -> str:
    return getattr(model, "main_input_name", None) or "input_ids"


def _geometry_tokens_per_step(args, train_dataloader, model) -> tuple[float | None, str | None]:
    """Tokens per optimizer step from the batch geometry, and how they were found.

    Per-device batch size x gradient accumulation x processes x sequence length, when
    the training set is indexable and its first, middle and last sequences have one
    length (packed pre-training blocks); ``(None, None)`` otherwise (variable lengths,
    an iterable dataset): the checkpoints' counted tokens then say it.
    """
    try:
        dataset = getattr(train_dataloader, "dataset", None)
        if dataset is None or not hasattr(dataset, "__getitem__"):
            return None, None
        n = len(dataset)
        key = _main_input(model)
        lengths = {len(dataset[i][key]) for i in sorted({0, n // 2, n - 1})}
        if len(lengths) != 1:
            return None, None
        (length,) = lengths
        batch = int(args.per_device_train_batch_size)
        accumulation = int(args.gradient_accumulation_steps)
        world = int(getattr(args, "world_size", 1) or 1)
        if min(batch, accumulation, world, length) < 1:
            return None, None
        how = (f"{batch} per device x {accumulation} accumulation x {world} process"
               f"{'' if world == 1 else 'es'} x {length} tokens")
        return float(batch * accumulation * world * length), how
    except Exception:  # an iterable or unusual dataset: the counted tokens say it
        return None, None


def status_words(summary) -> str:
    """How a monitored run ended, in words, from :meth:`CODMonitor.summary
    <cod_monitor.monitor.CODMonitor.summary>`: ``'training finished'``,
    ``'training stopped by drift at step 6'``, with ``'(drift detected: ...)'`` when a
    below-band alert was raised but training went on.

    Examples
    --------
    >>> status_words({"status": "stopped_by_drift", "stopped_at": 6, "drift_detected": True})
    'training stopped by drift at step 6'
    """
    summary = summary or {}
    status = summary.get("status") or "finished"
    words = "training " + status.replace("_", " ")
    if summary.get("stopped_at") is not None:
        words += f" at step {summary['stopped_at']}"
    if summary.get("drift_detected") and status != "stopped_by_drift":
        words += " (drift detected: a below-band alert was raised)"
    return words


def _distributed() -> bool:
    """Whether this is one process of a multi-process run."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _n_params(model) -> int | None:
    if model is None:
        return None
    if hasattr(model, "num_parameters"):
        return int(model.num_parameters())
    return int(sum(p.numel() for p in model.parameters()))


def _fmt(x) -> str:
    return f"{x:.3f}" if isinstance(x, (int, float)) and math.isfinite(x) else "–"

