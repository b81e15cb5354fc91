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
      ``control.should_training_stop``.
    - ``on_train_end``: ``monitor.close(drain_timeout)`` drains the queued
      evaluations, finishes the trackers and writes the summary (kept in
      :attr:`summary_`); a one-line final report per benchmark is logged.

    Parameters
    ----------
    monitor : CODMonitor, optional
        The monitor to drive (any :class:`~cod_monitor.monitor.CODMonitor` setting is
        reachable this way). When omitted, one is built on the first event from the
        monitor arguments below; passing both is an error.
    ladder, eval_sets, evaluator, forecast, pool, run, drift, checkpoints, alert_callback
        As in :class:`~cod_monitor.monitor.CODMonitor`; ``None`` (the default) keeps
        the monitor's default. ``run.max_steps`` defaults to ``state.max_steps`` and
        ``run.learning_rate`` to ``args.learning_rate`` (the peak rate).
    trackers : sequence of Tracker, optional
        Default: a :class:`~cod_monitor.trackers.local.LocalTracker` in ``out_dir``
        plus a :class:`~cod_monitor.trackers.wandb.WandbTracker` when ``report_to``
        includes ``"wandb"`` (it logs into the ``Trainer``'s own W&B run). ``[]``: none.
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
          (set ``include_num_input_tokens_seen`` in ``TrainingArguments``) and
          :math:`N` = the monitor's ``params`` or ``model.num_parameters()`` (all
          parameters, embeddings included, as the demo ladder counts them).
        - ``'total_flos'``: ``state.total_flos``, the ``Trainer``'s own estimate
          (:math:`6 N D` with non-embedding parameters and every input token,
          padding included).
        - ``'auto'``: ``'tokens'`` when tokens are counted, else ``'total_flos'``.
        - ``callable(state, model) -> float``.

        Tokens (``state.num_input_tokens_seen``, when counted) are always passed too,
        so the monitor can use its trajectory law in :math:`(N, D)`.
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
    >>> Trainer(model, TrainingArguments("out", save_steps=500, report_to="wandb",
    ...                                  include_num_input_tokens_seen=True),
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
        self.monitor_kwargs = monitor_kwargs
        self.submitted_steps: list[int] = []
        self.n_observations = 0
        self.stopped_at: int | None = None
        self.compute_source: str | None = None
        self.summary_: dict | None = None
        self._initialized = False
        self._closed = False
        self._last_poll = -math.inf
        self._pending_save: int | None = None
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
                self.compute_from = cb.compute_from
                return
        logger.warning(
            "CODCallback was restored from a checkpoint, but no CODCallback built in this "
            "process is left to take a monitor from; it will do nothing. Pass a CODCallback "
            "to the resumed Trainer."
        )

    # ------------------------------------------------------------------ setup
    def setup(self, args, state) -> bool:
        """Build (if needed) and start the monitor; idempotent. False when inactive."""
        if self._initialized:
            return self.monitor is not None and not self._closed
        self._initialized = True
        if self.monitor is None and not self.monitor_kwargs:
            if not self._restored:
                logger.warning("CODCallback has no monitor and no CODMonitor arguments; it does nothing.")
            return False
        if self.monitor is None:
            self.monitor = self._build_monitor(args, state)
        start = getattr(self.monitor, "start", None)
        if callable(start):
            start()
        logger.debug("CODCallback set up: %s", type(self.monitor).__name__)
        return True

    def _build_monitor(self, args, state) -> CODMonitor:
        kwargs = dict(self.monitor_kwargs)
        kwargs.setdefault("out_dir", os.path.join(args.output_dir, "cod_monitor"))
        if getattr(args, "run_name", None):
            kwargs.setdefault("run_name", args.run_name)
        run = kwargs.get("run", RunGeometry())
        if getattr(state, "max_steps", 0) and run.max_steps is None:
            run = kwargs["run"] = replace(run, max_steps=int(state.max_steps))
        lr = getattr(args, "learning_rate", None)
        if run.learning_rate is None and isinstance(lr, (int, float)) and lr > 0:
            # compared with the ladder's learning-rate trend at start
            kwargs["run"] = replace(run, learning_rate=float(lr))
        if "trackers" not in kwargs:
            from cod_monitor.trackers.local import LocalTracker

            trackers = [LocalTracker(kwargs["out_dir"])]
            report_to = args.report_to if isinstance(args.report_to, (list, tuple)) else [args.report_to]
            if "wandb" in report_to or "all" in report_to:
                from cod_monitor.trackers.wandb import WandbTracker

                trackers.append(WandbTracker())
            kwargs["trackers"] = trackers
        return CODMonitor(**kwargs)

    def _active(self, args, state) -> bool:
        if not state.is_world_process_zero or self._closed:
            return False
        return self.setup(args, state)

    # ------------------------------------------------------------------ events
    def on_train_begin(self, args, state, control, **kwargs):
        if self._active(args, state) and int(state.global_step) > 0:
            self._reconcile(args, state, kwargs.get("model"))

    def on_step_end(self, args, state, control, **kwargs):
        if not self._active(args, state):
            return None
        self._pending_save = int(state.global_step)
        self._poll()
        return self._maybe_stop(state, control)

    def on_log(self, args, state, control, **kwargs):
        if not self._active(args, state):
            return None
        self._poll()
        return self._maybe_stop(state, control)

    def on_save(self, args, state, control, **kwargs):
        active = self._active(args, state)
        self._pending_save = None
        changed = self._sync_stop(args, state, control) if self.stop_on_drift else False
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
            self.n_observations += len(self.monitor.poll())
        except Exception:
            logger.warning("CODMonitor.close raised; the run is not affected.", exc_info=True)
            return
        for b, s in ((self.summary_ or {}).get("benchmarks") or {}).items():
            fc = s.get("last_forecast") or {}
            logger.info(
                "cod/%s: %s observation(s); last step %s accuracy %s (forecast %s [%s, %s])%s.",
                b, s.get("observations"), s.get("last_step"), _fmt(s.get("last_accuracy")),
                _fmt(fc.get("value")), _fmt(fc.get("lower")), _fmt(fc.get("upper")),
                "; ALERTING" if s.get("alerting") else "",
            )

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
        self.n_observations += len(observations)
        for o in observations:
            logger.debug("cod/%s step %d: observed %.4f", o.benchmark, o.step, o.accuracy)

    def _maybe_stop(self, state, control):
        if (self.stop_on_drift and getattr(self.monitor, "stop_requested", False)
                and not control.should_training_stop and not _distributed()):
            control.should_training_stop = True
            self.stopped_at = int(state.global_step)
            logger.warning("CODCallback stops training at step %d: the run drifted below its "
                           "forecast (stop_on_drift=True).", state.global_step)
            return control
        return None

    def _sync_stop(self, args, state, control) -> bool:
        """Multi-process runs: every rank learns rank 0's stop decision at a checkpoint."""
        if not _distributed():
            return False
        import torch
        import torch.distributed as dist

        stop = bool(state.is_world_process_zero and getattr(self.monitor, "stop_requested", False))
        device = "cpu"
        if dist.get_backend() == "nccl":
            device = torch.device("cuda", torch.cuda.current_device())
        flag = torch.tensor([int(stop)], device=device)
        dist.broadcast(flag, src=0)
        if int(flag.item()) and not control.should_training_stop:
            control.should_training_stop = True
            self.stopped_at = int(state.global_step)
            if state.is_world_process_zero:
                logger.warning("CODCallback stops training at step %d on every rank: the run "
                               "drifted below its forecast (stop_on_drift=True).", state.global_step)
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

