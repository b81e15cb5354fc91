"""Lightning 2.x callback: COD monitoring of a ``Trainer.fit`` run.

A thin adapter, like :mod:`cod_monitor.integrations.hf`: every event hands over to
:class:`~cod_monitor.monitor.CODMonitor`, which snapshots checkpoints, evaluates them
asynchronously, forecasts, alerts and logs to the trackers.

Lightning checkpoints are seen where they are written: the callback wraps the
strategy's ``CheckpointIO`` when fitting starts, so every ``Trainer.save_checkpoint``
(``ModelCheckpoint`` saves included, the final one too) reaches the monitor on
global rank 0 at the moment it is written. A callback hook cannot do this: ``on_train_batch_end``
sees a new ``.ckpt`` one step late and never sees the final one.

The monitor evaluates Hugging Face models: the weights handed over are the
``transformers`` model the ``LightningModule`` holds (``hf_model_attr``), taken from
the checkpoint's ``state_dict`` with the attribute's prefix removed. A ``.ckpt`` file
is read (on resume, or with :func:`read_ckpt_weights`) only with
``torch.load(weights_only=True)``: a file that holds other pickled objects is refused.

This module is an edge: it imports ``lightning`` and ``torch`` at the top, and nothing
in the core imports it. It needs the ``lightning`` and ``hf`` extras.
"""

from __future__ import annotations

import logging
import math
import os
import pickle
import shutil
import time
import uuid
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from cod_monitor.exceptions import CODError, MissingExtraError

MissingExtraError.check("The Lightning CODCallback", "lightning", "lightning")  # before importing it

import torch
from lightning.fabric.plugins import CheckpointIO
from lightning.pytorch.callbacks import Callback

from cod_monitor._validation import check_bool, check_int, check_real, invalid  # noqa: E402
from cod_monitor.evaluators.base import CheckpointError
from cod_monitor.integrations.console import show_progress
from cod_monitor.integrations.hf import (
    CallbackArgumentsError,
    status_words,
    monitor_arguments,
    unknown_arguments,
)
from cod_monitor.monitor import (
    CheckpointConfig,
    CODMonitor,
    DriftConfig,
    ForecastConfig,
    PoolConfig,
    RunGeometry,
)
from cod_monitor.records import Alert, Checkpoint
from cod_monitor.runtime.snapshots import (
    SKIP_PATTERNS,
    WEIGHT_PATTERNS,
    cpu_state_dict,
    write_state_dict,
)

__all__ = ["CODCallback", "CallbackArgumentsError", "ckpt_to_hf", "hf_state_dict",
           "read_ckpt_weights"]

logger = logging.getLogger(__name__)

_OWNER = "CODCallback"
#: Where the model's config and tokenizer files go, inside the monitor's ``out_dir``.
CONFIG_DIR_NAME = "hf_config"
#: Files that make a directory loadable by ``AutoTokenizer.from_pretrained``.
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json",
                    "vocab.txt")
#: What ``torch.compile`` puts between a module and its parameters' names.
_COMPILED_PREFIX = "_orig_mod."


# --------------------------------------------------------------------------- .ckpt files
def hf_state_dict(state_dict: Mapping, hf_model_attr: str = "model") -> dict:
    """The weights of a ``LightningModule``'s ``transformers`` model, under HF names.

    A ``LightningModule`` that holds its model as ``self.model`` saves its weights as
    ``model.<HF name>``; this keeps those keys and removes the prefix (and the
    ``_orig_mod.`` of a ``torch.compile``-d model). Keys of other submodules (a
    metric, a value head) are left out. No tensor is copied.

    Parameters
    ----------
    state_dict : mapping of str to tensor
        ``LightningModule.state_dict()``, or the ``'state_dict'`` of a ``.ckpt``.
    hf_model_attr : str, default 'model'
        The attribute of the ``LightningModule`` holding the ``transformers`` model
        (dotted for a nested one: ``'net.backbone'``).

    Returns
    -------
    dict
        HF parameter name -> tensor.

    Raises
    ------
    CheckpointError
        No key starts with ``hf_model_attr + '.'``.

    Examples
    --------
    >>> hf_state_dict({"model.lm_head.weight": 1, "loss_fn.weight": 2})
    {'lm_head.weight': 1}
    """
    prefix = f"{hf_model_attr}."
    out = {}
    for key, value in state_dict.items():
        if key.startswith(prefix):
            name = key[len(prefix):]
            if name.startswith(_COMPILED_PREFIX):
                name = name[len(_COMPILED_PREFIX):]
            out[name] = value
    if not out:
        heads = sorted({str(k).split(".", 1)[0] for k in state_dict})
        raise CheckpointError(
            f"No weight of the checkpoint's state_dict starts with {prefix!r}; its keys start "
            f"with {heads[:8]}. Set hf_model_attr= to the attribute of your LightningModule "
            "that holds the transformers model."
        )
    return out


def read_ckpt_weights(path, *, hf_model_attr: str = "model") -> dict:
    """Read the HF model's weights from a Lightning ``.ckpt`` file, safely.

    The file is a torch-pickled dict; it is loaded with ``torch.load(weights_only=True)``
    (memory-mapped when the file allows it), which unpickles tensors and plain
    containers only, so a file holding any other object is refused instead of run.

    Parameters
    ----------
    path : str or path-like
        The ``.ckpt`` file.
    hf_model_attr : str, default 'model'
        See :func:`hf_state_dict`.

    Returns
    -------
    dict
        HF parameter name -> CPU tensor.

    Raises
    ------
    FileNotFoundError
        No such file.
    CheckpointError
        The file holds objects ``weights_only=True`` refuses, is not a Lightning
        checkpoint (no ``'state_dict'``), or has no weight under ``hf_model_attr``.

    Examples
    --------
    >>> weights = read_ckpt_weights("lightning_logs/version_0/checkpoints/last.ckpt")  # doctest: +SKIP
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint file {path!r} does not exist")
    try:
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc):
                raise
            # a file in torch's legacy (non-zip) format cannot be memory-mapped
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path} holds objects other than tensors and plain containers, and cod_monitor "
            "loads .ckpt files only with torch.load(weights_only=True). Save the checkpoint "
            "without them (e.g. plain-dict hyperparameters), or export the model with "
            f"save_pretrained. ({str(exc).splitlines()[0]})"
        ) from exc
    if not isinstance(ckpt, Mapping) or not isinstance(ckpt.get("state_dict"), Mapping):
        raise CheckpointError(f"{path} is not a Lightning checkpoint: it has no 'state_dict'.")
    return hf_state_dict(ckpt["state_dict"], hf_model_attr)


def ckpt_to_hf(path, dest, *, config_dir, hf_model_attr: str = "model") -> str:
    """Convert a Lightning ``.ckpt`` into an HF ``save_pretrained`` directory.

    The directory holds ``model.safetensors`` (the weights of
    :func:`read_ckpt_weights`) and the files of ``config_dir`` (``config.json``,
    tokenizer); it is written next to ``dest`` and renamed into place, so it exists
    complete or not at all. Every evaluator of cod_monitor loads it.

    Parameters
    ----------
    path : str or path-like
        The ``.ckpt`` file.
    dest : str or path-like
        The directory to create (replaced if it exists).
    config_dir : str or path-like
        Configuration and tokenizer files of the model (e.g.
        ``model.config.save_pretrained(d)`` and ``tokenizer.save_pretrained(d)``).
    hf_model_attr : str, default 'model'
        See :func:`hf_state_dict`.

    Returns
    -------
    str
        ``dest``.

    Raises
    ------
    FileNotFoundError, CheckpointError
        As :func:`read_ckpt_weights`; ``FileNotFoundError`` also for a missing
        ``config_dir``.

    Examples
    --------
    >>> ckpt_to_hf("checkpoints/last.ckpt", "hf/last", config_dir="hf_config")  # doctest: +SKIP
    'hf/last'
    """
    if not os.path.isdir(os.fspath(config_dir)):
        raise FileNotFoundError(f"config_dir {os.fspath(config_dir)!r} does not exist")
    # one CPU copy: tied weights loaded from the file share storage, which
    # safetensors refuses; cpu_state_dict gives them one shared copy that the writer splits
    weights = cpu_state_dict(read_ckpt_weights(path, hf_model_attr=hf_model_attr))
    write_state_dict(weights, dest, config_dir=config_dir)
    return os.fspath(dest)


# --------------------------------------------------------------------------- CheckpointIO
class _MonitoredCheckpointIO(CheckpointIO):
    """The strategy's ``CheckpointIO``, plus a hand-over of every checkpoint it saves.

    Installed by :meth:`CODCallback.setup`; the wrapped plugin does the I/O.
    """

    def __init__(self, inner: CheckpointIO, callback: CODCallback):
        super().__init__()
        self.inner = inner
        self.callback = callback

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        # handed over first: the monitor's journal records the checkpoint before its
        # file exists, so a crash while writing cannot leave a file the monitor never saw
        self.callback._checkpoint_saved(checkpoint, path)
        self.inner.save_checkpoint(checkpoint, path, storage_options)

    def load_checkpoint(self, *args, **kwargs):
        return self.inner.load_checkpoint(*args, **kwargs)

    def remove_checkpoint(self, *args, **kwargs) -> None:
        self.inner.remove_checkpoint(*args, **kwargs)

    def teardown(self) -> None:
        self.inner.teardown()

    def __getattr__(self, name):
        # attributes of the wrapped plugin (e.g. an XLA or async plugin's own)
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)


# --------------------------------------------------------------------------- callback
class CODCallback(Callback):
    """Monitor a Lightning ``Trainer.fit`` run with COD: evaluate checkpoints, forecast,
    alert on drift.

    Add it to the ``Trainer``; nothing else is needed::

        cb = CODCallback(ladder="ladder/", eval_sets={"gsm8k": "gsm8k.jsonl"},
                         tokenizer=tokenizer)
        Trainer(callbacks=[cb, ModelCheckpoint(every_n_train_steps=500)]).fit(module)

    The ``LightningModule`` must hold its ``transformers`` model as an attribute
    (``self.model`` by default, see ``hf_model_attr``); that model is what is
    evaluated.

    Events (the monitor lives on global rank 0 only; the other ranks take part in two
    collectives and do nothing else):

    - ``setup`` (fit): wrap the strategy's ``CheckpointIO`` so that every checkpoint
      is handed over as it is written (``teardown`` puts the original back).
    - ``on_train_start``: on rank 0, build the monitor from the monitor arguments
      unless one was passed, start it (ladder, evaluation sets, workers) and write the
      model's config and tokenizer to ``<out_dir>/hf_config``. A mistake raises here,
      before any training step, on every rank (rank 0's outcome is broadcast, so no
      rank waits for one that failed). A run resumed from a ``.ckpt`` whose step this
      callback's state does not list (a checkpoint written without it) has that file
      read with ``weights_only=True`` and handed over with ``monitor.reconcile``,
      which takes it only if the monitor's journal has no record of its step.
    - every checkpoint save (rank 0, in the wrapped ``CheckpointIO``, before the
      file is written): ``monitor.on_checkpoint(step, tokens=..., compute=...,
      state_dict=<the HF model's weights>, config_dir=<out_dir>/hf_config)``. The
      monitor copies the weights to CPU memory now and writes them with safetensors
      on a background thread; it returns at once. A step already handed over (e.g.
      ``last.ckpt`` beside ``step=N.ckpt``) is not handed over again.
    - ``on_train_batch_end``: count the batch's tokens (rank 0); at each optimizer
      step, ``monitor.poll()`` (at most every :attr:`poll_every_s` seconds), and
      every judged checkpoint's scalars (:meth:`CODMonitor.metrics
      <cod_monitor.monitor.CODMonitor.metrics>`: ``cod/<benchmark>/accuracy``,
      ``forecast``, ``forecast_lower``, ``forecast_upper``, ``final_forecast``,
      ``checkpoint_step``, ``alerting``, ...) go to every logger of the ``Trainer``
      (``logger.log_metrics(..., step=trainer.global_step)``, rank 0); with
      ``stop_on_drift``, every ``stop_check_every_n_steps`` steps rank 0's decision
      (``monitor.stop_requested``, set by a below-band alert) is broadcast with
      ``trainer.strategy.broadcast`` and every rank sets ``trainer.should_stop``
      at the same step (recorded with ``monitor.note_stopped``: the summary says
      ``status: stopped_by_drift``).
    - ``on_fit_end``: ``monitor.close(drain_timeout)`` drains the queued evaluations,
      finishes the trackers and writes the summary (kept in :attr:`summary_`); the
      observations judged while draining go to the loggers too.

    When training starts, ``run.params`` defaults to the HF model's parameter count
    (with ``compute_from='tokens'``), and the monitor's lines (a start-up line, one
    per judged checkpoint, the final report) are shown on stderr when the script
    configured no logging (``console=False`` turns this off; see
    :func:`~cod_monitor.integrations.console.show_progress`).
    - ``on_exception``: ``monitor.close(0)``; unfinished evaluations stay pending in
      the journal and are resumed by the next monitor on the same ``out_dir``.

    Parameters
    ----------
    monitor : CODMonitor, optional
        The monitor to drive. When omitted, one is built on rank 0 at
        ``on_train_start`` from the monitor arguments below; passing both is an
        error. With ``strategy='ddp_spawn'`` pass the arguments: the callback is
        pickled into the spawned processes, and a monitor cannot be.
    ladder, eval_sets, evaluator, forecast, pool, run, drift, checkpoints, alert_callback, run_name
        As in :class:`~cod_monitor.monitor.CODMonitor`; ``None`` (the default) keeps
        the monitor's default. ``run.max_steps`` defaults to ``trainer.max_steps``
        (or ``trainer.estimated_stepping_batches`` when that is finite), and
        ``run.tokens_per_step`` to ``tokens_per_step``.
    trackers : sequence of Tracker, optional
        Default: a :class:`~cod_monitor.trackers.local.LocalTracker` in ``out_dir``
        plus a :class:`~cod_monitor.trackers.wandb.WandbTracker` when the ``Trainer``
        logs with a ``WandbLogger``: it logs into that logger's run, where the
        scalars already come through the logger, so it adds the charts, tables,
        alerts and summary without a second series (``log_stream_prefix``).
        ``[]``: none.
    out_dir : str or path, optional
        The monitor's directory; default ``<trainer.default_root_dir>/cod_monitor``
        (the same for every resumed run, unlike ``lightning_logs/version_N``).
    hf_model_attr : str, default 'model'
        The attribute of the ``LightningModule`` that holds the ``transformers``
        ``PreTrainedModel`` (dotted for a nested one, ``'net.backbone'``). Its
        weights are the checkpoint's ``state_dict`` entries under that prefix.
    tokenizer : PreTrainedTokenizerBase or str or path, optional
        The model's tokenizer, or a directory holding its files; saved with the
        model's config for the evaluator. Required unless
        ``CheckpointConfig(config_dir=...)`` holds the tokenizer's files or
        ``PoolConfig(job_fn=...)`` replaces the evaluator.
    tokens_per_step : float, optional
        Training tokens per optimizer step (all ranks together). When omitted (and
        the monitor's ``run.tokens_per_step`` too), tokens are counted from the
        batches: the elements of the batch's ``input_ids`` (a mapping's
        ``'input_ids'``, an integer tensor, or the first element of a tuple or list;
        batch size times sequence length), times the world size, summed over every
        batch, gradient-accumulation batches included. Pass it for other batch
        layouts.
    compute_from : 'tokens' or callable, default 'tokens'
        Training compute (FLOPs) passed with each checkpoint, in the ladder's
        convention (``compute`` in ``ladder.json``, normally :math:`6ND`).
        ``'tokens'``: :math:`6 N D` with :math:`D` the tokens above and :math:`N` the
        monitor's ``params`` or the HF model's parameter count (embeddings
        included, as the demo ladder counts them). ``callable(trainer, pl_module) ->
        float``: your own.
    stop_on_drift : bool, default False
        Stop training (``trainer.should_stop = True`` on every rank) once the
        monitor raises a below-band alert.
    stop_check_every_n_steps : int, default 1
        With ``stop_on_drift``, how many optimizer steps apart rank 0's decision is
        read (and, with several processes, broadcast: one small collective per
        check; raise it when a collective per step costs too much).
    drain_timeout : float or None, default 600
        Seconds ``on_fit_end`` waits for queued evaluations (``None``: no limit);
        jobs still running stay pending in the monitor's journal and are resumed by
        the next monitor on the same ``out_dir``.
    console : bool, default True
        Show the monitor's lines on stderr when logging is not configured.

    Raises
    ------
    ParameterError
        An invalid ``hf_model_attr``, ``tokenizer``, ``tokens_per_step``,
        ``compute_from``, ``stop_on_drift``, ``stop_check_every_n_steps``,
        ``drain_timeout`` or ``monitor``; no tokenizer for a monitor that evaluates
        with its evaluator; monitor arguments without ``ladder`` and ``eval_sets``,
        or any monitor argument :meth:`CODMonitor.check_arguments
        <cod_monitor.monitor.CODMonitor.check_arguments>` refuses: all checked
        here, not when training starts.
    CallbackArgumentsError
        Both a monitor and arguments to build one, or a keyword argument the callback
        does not take (a ``TypeError`` naming it, the accepted ones and the closest).

    Attributes
    ----------
    monitor : CODMonitor or None
        The monitor (``None`` on other ranks, and before ``on_train_start`` when
        built from arguments).
    monitor_kwargs : dict
        The monitor arguments given (those not ``None``).
    submitted_steps : list of int
        Checkpoint steps handed to the monitor.
    n_observations : int
        Observations collected so far (by ``poll`` during training, and at the final
        drain).
    stopped_at : int or None
        Step at which ``stop_on_drift`` stopped training.
    tokens_seen : float or None
        Tokens counted from the batches so far (all ranks; ``None`` when a batch's
        tokens could not be read and ``tokens_per_step`` is not given).
    compute_source : str or None
        How the last checkpoint's compute was obtained (``'6*N*tokens'``,
        ``'callable'`` or ``None`` when unknown).
    summary_ : dict or None
        What ``monitor.close`` returned at the end of training.
    poll_every_s : float
        Minimum seconds between two ``poll`` calls (class attribute, 2.0).

    Notes
    -----
    Resume: the callback's state (``submitted_steps``, ``n_observations``,
    ``stopped_at``, ``tokens_seen``, ``compute_source``) is saved in every full
    checkpoint (``Callback.state_dict``) and restored by ``trainer.fit(...,
    ckpt_path=...)``. The state is taken while the checkpoint is written, just before
    it is handed over, so it already counts that checkpoint. The monitor's own
    journal (in ``out_dir``) is what guarantees that no checkpoint is evaluated twice
    and no observation is lost: pass the resumed run the same ``out_dir``.

    The callback never raises into the training loop after ``on_train_start``: a
    failing hand-over, ``poll`` or ``close`` is logged as a warning (the monitor
    alerts on what it loses). Bad arguments raise when the callback is built; what
    needs the files (the ladder, the evaluation sets, the model attribute) raises
    at ``on_train_start``, before any training step.

    Checkpoints that do not go through the strategy's ``CheckpointIO`` are not seen:
    sharded saves (DeepSpeed, FSDP with ``state_dict_type='sharded'``) and
    ``trainer.save_checkpoint`` after ``fit`` returns. Save the final checkpoint
    inside ``fit`` (``ModelCheckpoint`` does). Only the ``lightning`` package
    (``import lightning.pytorch``) is supported, not the standalone
    ``pytorch_lightning``.

    Environment variables: those of W&B when a ``WandbTracker`` is used; none of its
    own.

    Examples
    --------
    >>> from lightning.pytorch import Trainer  # doctest: +SKIP
    >>> from lightning.pytorch.callbacks import ModelCheckpoint  # doctest: +SKIP
    >>> cb = CODCallback(ladder="ladder/", eval_sets={"gsm8k": "gsm8k.jsonl"},
    ...                  evaluator={"backend": "hf", "mode": "exact"},
    ...                  pool=PoolConfig(devices=["cuda:7"]), tokenizer=tokenizer,
    ...                  stop_on_drift=True)  # doctest: +SKIP
    >>> Trainer(max_steps=10_000, callbacks=[
    ...     cb, ModelCheckpoint(every_n_train_steps=500, save_top_k=-1)]).fit(module)  # doctest: +SKIP
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
        hf_model_attr: str = "model",
        tokenizer=None,
        tokens_per_step: float | None = None,
        compute_from: str | Callable = "tokens",
        stop_on_drift: bool = False,
        stop_check_every_n_steps: int = 1,
        drain_timeout: float | None = 600.0,
        console: bool = True,
        **unknown,
    ):
        if unknown:
            raise unknown_arguments(CODCallback, unknown)
        # the monitor is built when training starts; its arguments are checked now
        monitor_kwargs = monitor_arguments(
            _OWNER, monitor, ladder=ladder, eval_sets=eval_sets, evaluator=evaluator,
            forecast=forecast, pool=pool, run=run, drift=drift, checkpoints=checkpoints,
            trackers=trackers, alert_callback=alert_callback, out_dir=out_dir,
            run_name=run_name)
        if not (isinstance(hf_model_attr, str) and hf_model_attr
                and all(p.isidentifier() for p in hf_model_attr.split("."))):
            raise invalid(_OWNER, "hf_model_attr", "an attribute name of the LightningModule "
                          "(dotted for a nested one, e.g. 'net.backbone')", hf_model_attr)
        if isinstance(tokenizer, (str, os.PathLike)):
            if not os.path.isdir(os.fspath(tokenizer)):
                raise invalid(_OWNER, "tokenizer", "a tokenizer, an existing directory holding "
                              "its files, or None", tokenizer, "No such directory.")
        elif tokenizer is not None and not callable(getattr(tokenizer, "save_pretrained", None)):
            raise invalid(_OWNER, "tokenizer", "a tokenizer (an object with save_pretrained), "
                          "a directory holding its files, or None", type(tokenizer).__name__)
        if tokenizer is None and _needs_tokenizer(monitor, monitor_kwargs):
            raise invalid(_OWNER, "tokenizer", "given when the monitor evaluates with its "
                          "evaluator", None, "Pass tokenizer= (the model's tokenizer or its "
                          "directory), or CheckpointConfig(config_dir=...) holding its files.")
        if not (callable(compute_from) or (isinstance(compute_from, str)
                                           and compute_from == "tokens")):
            raise invalid(_OWNER, "compute_from", "'tokens' or a callable", compute_from)
        self.monitor = monitor
        self.monitor_kwargs = monitor_kwargs
        self.hf_model_attr = hf_model_attr
        self.tokenizer = tokenizer
        self.tokens_per_step = check_real(_OWNER, "tokens_per_step", tokens_per_step, 0,
                                          none_ok=True)
        self.compute_from = compute_from
        self.stop_on_drift = check_bool(_OWNER, "stop_on_drift", stop_on_drift)
        self.stop_check_every_n_steps = check_int(_OWNER, "stop_check_every_n_steps",
                                                  stop_check_every_n_steps, 1)
        self.drain_timeout = check_real(_OWNER, "drain_timeout", drain_timeout, 0, closed="left",
                                        none_ok=True)
        self.console = check_bool(_OWNER, "console", console)
        self.submitted_steps: list[int] = []
        self.n_observations = 0
        self.stopped_at: int | None = None
        self.tokens_seen: float | None = 0.0
        self.compute_source: str | None = None
        self.summary_: dict | None = None
        self._trainer_ref = None
        self._io: _MonitoredCheckpointIO | None = None
        self._started = False
        self._closed = False
        self._restored = False
        self._estimate_before: int | None = None  # steps trained before counting began
        self._last_step: int | None = None
        self._last_poll = -math.inf
        self._config_dir: str | None = None
        self._n_params: int | None = None

    def __getstate__(self):
        # ddp_spawn pickles the callback; the trainer is re-attached by setup
        state = dict(self.__dict__)
        state["_trainer_ref"] = None
        return state

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        """The callback's state, saved in every full checkpoint (see Notes)."""
        submitted = list(self.submitted_steps)
        trainer = self._trainer()
        if trainer is not None and self._live() and trainer.global_step not in submitted:
            submitted.append(int(trainer.global_step))  # handed over right after this call
        return {
            "submitted_steps": submitted,
            "n_observations": self.n_observations,
            "stopped_at": self.stopped_at,
            "tokens_seen": self.tokens_seen,
            "compute_source": self.compute_source,
        }

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore the state a checkpoint saved (``trainer.fit(ckpt_path=...)``)."""
        self.submitted_steps = sorted(int(s) for s in state_dict.get("submitted_steps", []))
        self.n_observations = int(state_dict.get("n_observations", 0))
        self.stopped_at = state_dict.get("stopped_at")
        tokens = state_dict.get("tokens_seen", 0.0)
        self.tokens_seen = None if tokens is None else float(tokens)
        self.compute_source = state_dict.get("compute_source")
        self._restored = True

    # ------------------------------------------------------------------ hooks
    def setup(self, trainer, pl_module, stage: str) -> None:
        """Wrap the strategy's ``CheckpointIO`` (fitting only; every rank)."""
        if stage != "fit":
            return
        self._trainer_ref = weakref.ref(trainer)
        current = trainer.strategy.checkpoint_io  # configures a wrapping plugin's base
        if isinstance(current, _MonitoredCheckpointIO) and current.callback is self:
            return
        self._io = _MonitoredCheckpointIO(current, self)
        trainer.strategy.checkpoint_io = self._io

    def teardown(self, trainer, pl_module, stage: str) -> None:
        """Put the strategy's own ``CheckpointIO`` back."""
        if self._io is not None and trainer.strategy.checkpoint_io is self._io:
            trainer.strategy.checkpoint_io = self._io.inner
        self._io = None

    def on_train_start(self, trainer, pl_module) -> None:
        """Start the monitor on rank 0; raise on every rank if that fails (see class
        docstring)."""
        self._trainer_ref = weakref.ref(trainer)
        error = None
        if trainer.is_global_zero and not self._closed:
            try:
                self._start(trainer, pl_module)
            except Exception as exc:
                error = exc
        if trainer.world_size > 1:
            # every rank learns rank 0's outcome: none waits on a rank that failed
            message = trainer.strategy.broadcast(
                None if error is None else f"{type(error).__name__}: {error}", src=0)
            if message is not None and error is None:
                raise CODError(f"CODCallback could not start its monitor on global rank 0, "
                               f"so every rank stops: {message}")
        if error is not None:
            raise error
        if self._live() and trainer.global_step > 0:
            if not self._restored and self._tokens_per_step() is None:
                self._estimate_before = int(trainer.global_step)
            self._reconcile(trainer, pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        """Count tokens; at each optimizer step poll, and check the stop decision."""
        if self._live():
            self._count_tokens(trainer, batch)
        step = int(trainer.global_step)
        if step == self._last_step:
            return  # inside gradient accumulation: no optimizer step yet
        self._last_step = step
        if self._live():
            self._poll()
        if self.stop_on_drift and step % self.stop_check_every_n_steps == 0:
            self._check_stop(trainer)

    def on_fit_end(self, trainer, pl_module) -> None:
        """Drain the evaluations and close the monitor (rank 0)."""
        self._close(self.drain_timeout)

    def on_exception(self, trainer, pl_module, exception) -> None:
        """Close the monitor without waiting; pending jobs stay in its journal."""
        self._close(0.0)

    # ------------------------------------------------------------------ rank 0
    def _trainer(self):
        return None if self._trainer_ref is None else self._trainer_ref()

    def _live(self) -> bool:
        """Whether this process drives a started, open monitor (global rank 0 only)."""
        return self._started and not self._closed and self.monitor is not None

    def _start(self, trainer, pl_module) -> None:
        """Build (if needed) and start the monitor, write the config directory."""
        if self._started:
            return
        if self.monitor is None and not self.monitor_kwargs:
            logger.warning("CODCallback has no monitor and no CODMonitor arguments; it does nothing.")
            return
        hf_model = self._hf_model(pl_module)
        self._n_params = _n_params(hf_model)
        if self.console:
            show_progress()
        if self.monitor is None:
            self.monitor = self._build_monitor(trainer)
        # the files first: a failure here leaves no worker process running
        self._config_dir = self._write_config_dir(hf_model)
        self.monitor.start()
        self._started = True
        logger.debug("CODCallback set up: %s, config in %s", type(self.monitor).__name__,
                     self._config_dir)
        self._say_hello(trainer)

    def _say_hello(self, trainer) -> None:
        """The start-up line."""
        try:
            m = self.monitor
            run, pool = getattr(m, "run", None), getattr(m, "pool", None)
            per_step = self._tokens_per_step()
            tokens = (f"tokens/step={per_step:.6g} (given)" if per_step
                      else "tokens counted from the batches' input_ids")
            evaluator = (f"job_fn {pool.job_fn}" if getattr(pool, "job_fn", None) is not None
                         else getattr(m, "evaluator", None))
            benchmarks = list(getattr(m, "benchmarks", []) or [])
            params = getattr(m, "params", None)
            logger.info(
                "CODCallback: monitoring %d benchmark%s (%s), N=%s params, %s, max_steps=%s, "
                "evaluator %s, devices %s, loggers %s, out_dir %s.", len(benchmarks),
                "" if len(benchmarks) == 1 else "s", ", ".join(map(str, benchmarks)),
                f"{params:.3g}" if params else "unknown", tokens,
                getattr(run, "max_steps", None), evaluator,
                [str(d) for d in getattr(pool, "devices", []) or []],
                [type(lg).__name__ for lg in trainer.loggers] or "none", getattr(m, "out_dir", None))
        except Exception:
            logger.warning("CODCallback could not write its start-up line.", exc_info=True)

    def _hf_model(self, pl_module):
        """The ``transformers`` model at ``hf_model_attr`` of ``pl_module``."""
        obj, module = pl_module, type(pl_module).__name__
        expected = f"the attribute of {module} that holds its transformers model"
        for part in self.hf_model_attr.split("."):
            if not hasattr(obj, part):
                raise invalid(_OWNER, "hf_model_attr", expected, self.hf_model_attr,
                              f"{type(obj).__name__} has no attribute {part!r}.")
            obj = getattr(obj, part)
        obj = getattr(obj, "_orig_mod", obj)  # a torch.compile-d model
        config = getattr(obj, "config", None)
        if not (callable(getattr(config, "save_pretrained", None))
                and callable(getattr(obj, "state_dict", None))):
            raise invalid(_OWNER, "hf_model_attr", expected, self.hf_model_attr,
                          f"It is a {type(obj).__name__}, not a transformers PreTrainedModel "
                          "(no config.save_pretrained).")
        return obj

    def _build_monitor(self, trainer) -> CODMonitor:
        kwargs = dict(self.monitor_kwargs)
        kwargs.setdefault("out_dir", os.path.join(trainer.default_root_dir, "cod_monitor"))
        run = kwargs.get("run", RunGeometry())
        if run.max_steps is None:
            max_steps = _max_steps(trainer)
            if max_steps:
                run = replace(run, max_steps=max_steps)
        if run.tokens_per_step is None and self.tokens_per_step is not None:
            run = replace(run, tokens_per_step=self.tokens_per_step)
        if run.params is None and not callable(self.compute_from) and self._n_params:
            # compute is 6*N*tokens with this N; a callable's compute teaches its own N
            run = replace(run, params=float(self._n_params))
        kwargs["run"] = run
        if "trackers" not in kwargs:
            from cod_monitor.trackers.local import LocalTracker

            trackers = [LocalTracker(kwargs["out_dir"])]
            wandb_loggers = [lg for lg in trainer.loggers if type(lg).__name__ == "WandbLogger"]
            if wandb_loggers:
                from cod_monitor.trackers.wandb import WandbTracker

                # the logger opens its run lazily; the tracker then reuses it (wandb.run).
                # The scalars reach that run through the logger (log_metrics adds its
                # prefix with '-'), so the tracker logs no series of its own.
                prefix = getattr(wandb_loggers[0], "_prefix", "") or ""
                trackers.append(WandbTracker(run=wandb_loggers[0].experiment,
                                             log_stream_prefix=f"{prefix}-" if prefix else ""))
            kwargs["trackers"] = trackers
        return CODMonitor(**kwargs)

    def _write_config_dir(self, hf_model) -> str:
        """Write the model's config (+ generation config) and tokenizer files to
        ``<out_dir>/hf_config``, replacing it whole.

        Snapshots hard-link these files, so the directory is built beside and renamed
        into place: rewriting a file in place would change the snapshots' copies.
        """
        final = Path(self.monitor.out_dir) / CONFIG_DIR_NAME
        tmp = final.parent / f".tmp-{CONFIG_DIR_NAME}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir(parents=True)
        try:
            hf_model.config.save_pretrained(tmp)
            generation = getattr(hf_model, "generation_config", None)
            if callable(getattr(generation, "save_pretrained", None)):
                generation.save_pretrained(tmp)
            if isinstance(self.tokenizer, (str, os.PathLike)):
                _copy_files(self.tokenizer, tmp)
            elif self.tokenizer is not None:
                self.tokenizer.save_pretrained(tmp)
            extra = getattr(getattr(self.monitor, "checkpoints", None), "config_dir", None)
            if extra is not None:
                _copy_files(extra, tmp, only_missing=True)
            if final.exists():
                stale = final.parent / f".tmp-{CONFIG_DIR_NAME}-old-{uuid.uuid4().hex[:8]}"
                os.rename(final, stale)
                shutil.rmtree(stale, ignore_errors=True)
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return str(final)

    def _checkpoint_saved(self, checkpoint, path) -> None:
        """Hand a checkpoint being saved to the monitor (the ``CheckpointIO`` calls this
        on every rank that saves); never raises."""
        trainer = self._trainer()
        if trainer is None or not trainer.is_global_zero or not self._live():
            return
        if not (isinstance(checkpoint, Mapping) and "state_dict" in checkpoint
                and "global_step" in checkpoint):
            return  # not a Trainer checkpoint (ddp_spawn sends weights home this way)
        try:
            step = int(checkpoint["global_step"])
            if step in self.submitted_steps:
                logger.debug("CODCallback: step %d already handed over (%s not again)", step, path)
                return
            weights = hf_state_dict(checkpoint["state_dict"], self.hf_model_attr)
            tokens = self._tokens(step)
            compute = self._compute(trainer, tokens)
            self.monitor.on_checkpoint(step, tokens=tokens, compute=compute, state_dict=weights,
                                       config_dir=self._config_dir)
            self.submitted_steps.append(step)
            logger.debug("CODCallback submitted step %d (%s; compute %s from %s)", step, path,
                         compute, self.compute_source)
        except Exception:
            logger.warning("CODCallback could not hand the checkpoint %s to the monitor; the run "
                           "is not affected.", path, exc_info=True)

    def _reconcile(self, trainer, pl_module) -> None:
        """Hand over the resumed ``.ckpt`` when this callback's state does not list its
        step (see the class docstring); never raises."""
        step, path = int(trainer.global_step), trainer.ckpt_path
        if step in self.submitted_steps or not path or not os.path.isfile(os.fspath(path)):
            return
        staging = Path(self.monitor.out_dir) / f".tmp-resumed-{step}-{uuid.uuid4().hex[:8]}"
        try:
            ckpt_to_hf(path, staging, config_dir=self._config_dir, hf_model_attr=self.hf_model_attr)
            tokens = self._tokens(step)
            compute = self._compute(trainer, tokens)
            # the monitor snapshots the directory now (hard links): it may go right after
            taken = self.monitor.reconcile([Checkpoint(step=step, compute=compute, tokens=tokens,
                                                       path=str(staging))])
            self.submitted_steps = sorted(set(self.submitted_steps) | set(taken))
        except Exception:
            logger.warning("CODCallback could not hand the resumed checkpoint %s to the monitor; "
                           "the run is not affected.", path, exc_info=True)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _tokens_per_step(self) -> float | None:
        run = getattr(self.monitor, "run", None)
        return self.tokens_per_step or getattr(run, "tokens_per_step", None)

    def _count_tokens(self, trainer, batch) -> None:
        if self._tokens_per_step() is not None or self.tokens_seen is None:
            return
        try:
            n = _batch_tokens(batch)
            if n is None:
                self.tokens_seen = None
                logger.warning("CODCallback cannot count the tokens of a %s batch (no "
                               "'input_ids'); checkpoints go without tokens. Pass "
                               "tokens_per_step=.", type(batch).__name__)
                return
            n *= max(1, int(trainer.world_size))
            if self._estimate_before:
                # resumed without this callback's state: the steps before are estimated
                # from this batch's geometry
                per_step = n * max(1, int(trainer.accumulate_grad_batches))
                self.tokens_seen = float(self._estimate_before * per_step)
                logger.warning("CODCallback resumed at step %d without its saved state: tokens "
                               "before it are estimated as %d per step.", self._estimate_before,
                               per_step)
                self._estimate_before = None
            self.tokens_seen += n
        except Exception:
            logger.warning("CODCallback could not count a batch's tokens; the run is not "
                           "affected.", exc_info=True)

    def _tokens(self, step: int) -> float | None:
        per_step = self._tokens_per_step()
        if per_step is not None:
            return float(step) * per_step
        return self.tokens_seen or None

    def _compute(self, trainer, tokens) -> float | None:
        """Compute (FLOPs) of a checkpoint; see ``compute_from``."""
        if callable(self.compute_from):
            self.compute_source = "callable"
            return float(self.compute_from(trainer, trainer.lightning_module))
        n = getattr(self.monitor, "params", None) or self._n_params
        if tokens and n:
            self.compute_source = "6*N*tokens"
            return 6.0 * float(n) * float(tokens)
        self.compute_source = None
        return None

    def _poll(self) -> None:
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

    def _take(self, observations) -> None:
        """Count observations and log their scalars to the Trainer's loggers (rank 0)."""
        self.n_observations += len(observations)
        trainer = self._trainer()
        loggers = [] if trainer is None else list(trainer.loggers)
        for o in observations:
            logger.debug("cod/%s step %d: observed %.4f", o.benchmark, o.step, o.accuracy)
            if not loggers:
                continue
            try:
                metrics = self.monitor.metrics(o)
            except Exception:
                logger.warning("CODCallback could not make the metrics of step %s; the run is "
                               "not affected.", o.step, exc_info=True)
                continue
            for lg in loggers:  # one call per observation: a row has one value per key
                try:
                    lg.log_metrics(metrics, step=int(trainer.global_step))
                except Exception:
                    logger.warning("CODCallback could not log to %s; the run is not affected.",
                                   type(lg).__name__, exc_info=True)

    def _check_stop(self, trainer) -> None:
        """Every rank: take rank 0's stop decision, at the same step."""
        stop = False
        if trainer.is_global_zero and self._live():
            try:
                stop = bool(getattr(self.monitor, "stop_requested", False))
            except Exception:
                logger.warning("CODCallback could not read the stop decision.", exc_info=True)
        if trainer.world_size > 1:
            stop = bool(trainer.strategy.broadcast(stop, src=0))
        if stop and not trainer.should_stop:
            trainer.should_stop = True
            self.stopped_at = int(trainer.global_step)
            if trainer.is_global_zero and self._live():
                self.monitor.note_stopped(self.stopped_at, "drift")  # status: stopped_by_drift
            if trainer.is_global_zero:
                logger.warning("CODCallback stops training at step %d%s: the run drifted below "
                               "its forecast (stop_on_drift=True).", trainer.global_step,
                               " on every rank" if trainer.world_size > 1 else "")

    def _close(self, timeout: float | None) -> None:
        if not self._live():
            return
        self._closed = True
        try:
            self.summary_ = self.monitor.close(timeout)
            # the observations judged while draining, not yet returned by a poll
            self._take(self.monitor.poll())
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
        logger.info("CODCallback: %s.", status_words(self.summary_))


# --------------------------------------------------------------------------- helpers
def _needs_tokenizer(monitor, monitor_kwargs: dict) -> bool:
    """Whether the monitor's evaluator will load a tokenizer that nothing else provides."""
    if monitor is not None:
        pool, checkpoints = getattr(monitor, "pool", None), getattr(monitor, "checkpoints", None)
    elif monitor_kwargs:
        pool, checkpoints = monitor_kwargs.get("pool"), monitor_kwargs.get("checkpoints")
    else:
        return False  # an inactive callback
    if getattr(pool, "job_fn", None) is not None:
        return False
    return getattr(checkpoints, "config_dir", None) is None


def _copy_files(src, dst: Path, *, only_missing: bool = False) -> None:
    """Copy the top-level files of ``src`` (no weights, no training state) into ``dst``."""
    src = Path(src)
    if not src.is_dir():
        raise FileNotFoundError(f"directory {str(src)!r} does not exist")
    skip = SKIP_PATTERNS + WEIGHT_PATTERNS
    for entry in src.iterdir():
        if not entry.is_file() or any(entry.match(p) for p in skip):
            continue
        if only_missing and (dst / entry.name).exists():
            continue
        shutil.copy2(entry, dst / entry.name)


def _batch_tokens(batch) -> int | None:
    """Tokens in one batch on one rank: the elements of its ``input_ids``."""
    if isinstance(batch, Mapping):
        batch = batch.get("input_ids")
    elif isinstance(batch, (tuple, list)) and batch:
        batch = batch[0]
    if isinstance(batch, torch.Tensor) and not batch.is_floating_point():
        return int(batch.numel())
    return None


def _max_steps(trainer) -> int | None:
    """The run's length in optimizer steps, when the ``Trainer`` knows it."""
    if trainer.max_steps and trainer.max_steps > 0:
        return int(trainer.max_steps)
    try:
        n = float(trainer.estimated_stepping_batches)
    except Exception:  # no dataloader length, an iterable dataset: unknown
        return None
    return int(n) if math.isfinite(n) and n > 0 else None


def _n_params(model) -> int | None:
    if hasattr(model, "num_parameters"):
        return int(model.num_parameters())
    return int(sum(p.numel() for p in model.parameters()))


def _fmt(x) -> str:
    return f"{x:.3f}" if isinstance(x, (int, float)) and math.isfinite(x) else "–"
