"""Typed configuration of a :class:`~cod_monitor.monitor.CODMonitor`.

Each object groups the settings of one part of the monitor and validates them when it
is built, so a mistake fails where it is written, not at the first checkpoint:

- :class:`ForecastConfig`: how the forecast of the run is made and refreshed;
- :class:`PoolConfig`: the evaluation workers (devices, timeouts, retries, queue);
- :class:`RunGeometry`: what is known of the monitored run (size, tokens per step,
  length);
- :class:`CheckpointConfig`: which checkpoints are evaluated and how they are
  snapshotted.

The drift decision has its own :class:`~cod_monitor.monitor.drift.DriftConfig`, and
the queue policy its :class:`~cod_monitor.runtime.jobs.QueuePolicy`. All are frozen
dataclasses: change one with :func:`dataclasses.replace`.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from cod_monitor._validation import check_bool, check_choice, check_int, check_real, invalid
from cod_monitor.cod.forecaster import CODForecaster
from cod_monitor.cod.trajectory import TRAJECTORY_MODES
from cod_monitor.exceptions import MissingExtraError, ParameterError
from cod_monitor.methods import available_methods
from cod_monitor.runtime.jobs import QueuePolicy
from cod_monitor.runtime.local import device_env, unusable_gpus
from cod_monitor.runtime.pool import AUTO_TIMEOUT_FLOOR_S, check_timeout
from cod_monitor.runtime.priority import check_worker_priority
from cod_monitor.runtime.ray_backend import check_ray_address, check_ray_resources, ray_device

__all__ = ["CheckpointConfig", "ForecastConfig", "PoolConfig", "RunGeometry"]


#: CODForecaster parameters that ForecastConfig sets itself, and where to set them.
_SET_BY_FORECAST_CONFIG = {"n_bootstrap": "ForecastConfig(n_bootstrap=...)",
                           "random_state": "nothing (forecasts are seeded with 0)"}


def _is_function_path(path: str) -> bool:
    """Whether ``path`` has the form ``'package.module:function'``."""
    module, sep, name = path.partition(":")
    return bool(sep) and all(p.isidentifier() for p in module.split(".") + name.split("."))


def _store(obj, **values) -> None:
    """Set normalised values on a frozen dataclass from its ``__post_init__``."""
    for name, value in values.items():
        object.__setattr__(obj, name, value)


@dataclass(frozen=True)
class ForecastConfig:
    """How the monitor forecasts the run, and how often it re-reads the ladder.

    Parameters
    ----------
    trajectory : {'auto', 'compute', 'trajectory', 'trajectory_e2e', 'recipe', 'blend'}, default 'auto'
        How a checkpoint's forecast is made (see :mod:`cod_monitor.cod.trajectory`);
        ``'auto'`` uses ``'blend'`` (the mean of the (N, D) trajectory law's forecast
        and the finished-model forecast at the recipe-equivalent compute) when the
        ladder has runs of intermediate checkpoints whose tokens grow with their size,
        the law alone (``'trajectory_e2e'``) when they do not, else ``'compute'``.
    trajectory_method : str, optional
        The forecaster of finished models behind the ``'compute'``, ``'recipe'`` and
        ``'blend'`` modes, a name of :func:`cod_monitor.methods.available_methods` (``'cod'``,
        ``'e2e-exp'``, ...), built with ``n_bootstrap`` and ``random_state=0``;
        ``None``: COD with ``cod_params``.
    level : float, default 0.9
        Coverage of the forecast interval, in (0, 1). The drift decision reads the
        band at this coverage.
    n_bootstrap : int, default 100
        Bootstrap replicates of the forecast interval (0: residual spread only).
    cod_params : dict, optional
        Extra :class:`~cod_monitor.cod.forecaster.CODForecaster` parameters (names
        checked here; ``n_bootstrap`` and ``random_state`` are set by this object).
    run_sd : float or mapping of str to float, optional
        How much one healthy run's accuracy varies with its seed (a standard deviation,
        per benchmark when a mapping), added to the forecast band; see
        :class:`~cod_monitor.cod.trajectory.TrajectoryForecaster`. Estimate it from
        runs of one ladder size trained with several seeds. ``None``: 0.
    refresh_interval : float or None, default 60
        Seconds between checks of a ladder directory for changes (a change is re-fitted
        and logged as a new forecast version); ``None`` never re-reads it.
    condition_on_run : bool, default True
        Update the forecast with the run's own evaluated checkpoints
        (:mod:`cod_monitor.cod.conditioning`): each checkpoint is judged against the
        forecast made before it was seen, then learned from, and the forecast of the
        final accuracy follows the run. ``False``: the ladder-only forecast, as before.
        The ladder-only band is judged in both cases (a run off from its first
        checkpoint is caught by it).
    fit_priority : {'low', 'normal'}, default 'low'
        CPU priority of the thread that fits the forecasts inside the training process.
        ``'low'``: niceness 19 for that thread alone (Linux), so that a training loop
        that keeps every core busy loses little to it (the first forecast then comes
        from the time training leaves free). ``'normal'``: as any thread.
    trajectory_law : {'additive', 'two_phase', 'auto'}, default 'additive'
        Form of the (N, D) trajectory law behind the ``'trajectory_e2e'``, ``'recipe'``
        and ``'blend'`` modes (``law_form`` of
        :class:`~cod_monitor.cod.trajectory.TrajectoryForecaster`).

    Raises
    ------
    ParameterError
        A value outside its range, an unknown mode or method name, a ``cod_params``
        key that is not a ``CODForecaster`` parameter.

    Examples
    --------
    >>> ForecastConfig(level=0.8, run_sd={"gsm8k": 0.01}).run_sd_for("gsm8k")
    0.01
    """

    trajectory: str = "auto"
    trajectory_method: str | None = None
    level: float = 0.9
    n_bootstrap: int = 100
    cod_params: dict | None = None
    run_sd: float | Mapping[str, float] | None = None
    refresh_interval: float | None = 60.0
    condition_on_run: bool = True
    fit_priority: str = "low"
    trajectory_law: str = "additive"

    def __post_init__(self):
        owner = "ForecastConfig"
        check_choice(owner, "trajectory_law", self.trajectory_law,
                     ("additive", "two_phase", "auto"))
        check_bool(owner, "condition_on_run", self.condition_on_run)
        check_choice(owner, "trajectory", self.trajectory, TRAJECTORY_MODES)
        check_choice(owner, "fit_priority", self.fit_priority, ("low", "normal"))
        if self.trajectory_method is not None:
            check_choice(owner, "trajectory_method", self.trajectory_method,
                         available_methods(), none_ok=True)
        _store(
            self,
            level=check_real(owner, "level", self.level, 0, 1),
            n_bootstrap=check_int(owner, "n_bootstrap", self.n_bootstrap, 0),
            cod_params=self._checked_cod_params(owner),
            run_sd=self._checked_run_sd(owner),
            refresh_interval=check_real(owner, "refresh_interval", self.refresh_interval, 0,
                                        none_ok=True),
        )

    def _checked_cod_params(self, owner) -> dict | None:
        params = self.cod_params
        if params is None:
            return None
        expected = "a dict of CODForecaster parameters or None"
        if not isinstance(params, Mapping):
            raise invalid(owner, "cod_params", expected, params)
        known = sorted(set(CODForecaster().get_params()) - set(_SET_BY_FORECAST_CONFIG))
        for key in params:
            if isinstance(key, str) and key in _SET_BY_FORECAST_CONFIG:
                raise invalid(owner, "cod_params", f"{expected}, without {key!r}", dict(params),
                              f"ForecastConfig sets {key!r} itself; pass "
                              f"{_SET_BY_FORECAST_CONFIG[key]} instead.")
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                guess = f"Did you mean {close[0]!r}? " if close else ""
                raise invalid(owner, "cod_params", expected, dict(params),
                              f"{key!r} is not a CODForecaster parameter. {guess}The "
                              f"parameters are {known}.")
        return dict(params)

    def _checked_run_sd(self, owner):
        value = self.run_sd
        try:
            if isinstance(value, Mapping):
                return {str(b): check_real(owner, "run_sd", v, 0, closed="left")
                        for b, v in value.items()}
            return check_real(owner, "run_sd", value, 0, closed="left", none_ok=True)
        except ParameterError:
            raise invalid(owner, "run_sd", "None, a float in the range [0, inf) or a mapping "
                          "of benchmark name to such floats", value) from None

    def run_sd_for(self, benchmark: str) -> float:
        """The run-to-run standard deviation of ``benchmark`` (0 when not given)."""
        if isinstance(self.run_sd, Mapping):
            return float(self.run_sd.get(benchmark, 0.0))
        return float(self.run_sd or 0.0)


@dataclass(frozen=True)
class PoolConfig:
    """The evaluation workers (see :class:`~cod_monitor.runtime.pool.EvalPool`).

    Parameters
    ----------
    devices : sequence of str or int, default ('cpu',)
        One evaluation worker per entry; a single entry may be given alone. With
        ``backend='local'``: ``'cpu'``, ``'cuda:1'``, ``'cuda:0,1'`` or a GPU index,
        checked with torch when torch is installed (it is imported then): refused on
        a CPU-only build of torch, and beyond the GPUs torch sees (unless
        ``CUDA_VISIBLE_DEVICES`` is set). With ``backend='ray'``: ``'cpu'`` or
        ``'cuda'`` (an actor with ``ray_num_gpus`` GPUs that Ray picks).
    timeout : float, 'auto' or None, default 'auto'
        Seconds one evaluation attempt may take before its worker is killed and
        restarted (the job is retried, and an ``EVALUATION_TIMEOUT`` alert raised).
        ``'auto'``: 5 times (:data:`~cod_monitor.runtime.pool.AUTO_TIMEOUT_FACTOR`) the
        slowest evaluation of this run so far (a resumed run's included), at least
        ``timeout_floor``. ``None``: no limit, so a hung evaluation is never detected
        (warned about when the monitor starts).
    timeout_floor : float, default 300
        Seconds: the least limit of ``timeout='auto'``, and its limit before any
        evaluation has finished. Raise it when loading the model in a worker takes
        minutes.
    max_retries : int, default 2
        Retries after the first attempt before a job is reported failed. A
        configuration error (an invalid evaluator parameter, a missing extra, a broken
        evaluation set) is reported after its one attempt, never retried.
    queue_policy : QueuePolicy or str, default 'latest'
        What happens when evaluation falls behind (``'latest'``, ``'every_nth'``,
        ``'every_nth:<n>'`` or a :class:`~cod_monitor.runtime.jobs.QueuePolicy`);
        stored as a ``QueuePolicy``.
    cpu_threads : int, optional
        Threads of CPU evaluation workers.
    cpu_nice : int or 'idle', default 'idle'
        Priority of CPU evaluation workers, so that a training loop on the same cores
        keeps them: ``'idle'``, Linux's ``SCHED_IDLE`` policy (niceness 19 elsewhere),
        or a niceness to add (0 to 19). An idle worker runs only on CPU time training
        leaves unused and gives a core back the moment a training thread wakes; a
        niced one still delays the parallel regions of a training step (measured:
        BENCHMARKS.md, "In-loop cost"). Where training keeps every core busy, an idle
        worker's evaluations wait for the gaps (that wait does not count against
        ``timeout``): give a niceness there (e.g. 10) if they must progress during
        training. GPU workers run at the parent's priority.
    job_fn : callable or str, optional
        Replaces the evaluator in the workers: ``job_fn(snapshot, eval_set, config) ->
        EvalResult``, a picklable module-level function or ``'module:function'``.
    backend : {'local', 'ray'}, default 'local'
        What runs the workers: processes on this machine
        (:class:`~cod_monitor.runtime.local.LocalProcesses`), or one Ray actor per
        entry of ``devices`` (:class:`~cod_monitor.runtime.ray_backend.RayEvalPool`;
        needs ``pip install 'cod_monitor[ray]'``). On Ray the monitor's ``out_dir``
        must be on a filesystem the evaluation nodes share: it is checked when the
        monitor starts.
    ray_address : str, optional
        The Ray cluster (``backend='ray'`` only): ``None`` starts a local Ray (or
        reuses this process's connection, or joins ``RAY_ADDRESS``), ``'auto'`` joins
        the cluster of ``ray start`` on this machine, or an address such as
        ``'ray://head:10001'``.
    ray_resources : dict, optional
        Custom Ray resources of every actor (``backend='ray'`` only), e.g.
        ``{"eval_gpu": 1}`` to pin the actors to held-out evaluation nodes started
        with ``ray start --resources='{"eval_gpu": 1}'``.
    ray_num_gpus : float, default 1
        GPUs of each ``'cuda'`` actor (``backend='ray'`` only; a fraction shares a GPU).

    Raises
    ------
    ParameterError
        An unknown device or a GPU this machine cannot use, a timeout that is neither
        ``'auto'``, ``None`` nor positive, a non-positive ``timeout_floor``, a negative
        retry count, an unknown queue policy, a ``job_fn`` str that is not a
        ``'module:function'`` path, an unknown backend, a ``ray_*`` value that is
        invalid or given without ``backend='ray'``.
    MissingExtraError
        ``backend='ray'`` without Ray installed.

    Examples
    --------
    >>> PoolConfig(devices=["cpu", "cpu"], queue_policy="every_nth:3").queue_policy.n
    3
    """

    devices: Sequence = ("cpu",)
    timeout: float | str | None = "auto"
    timeout_floor: float = AUTO_TIMEOUT_FLOOR_S
    max_retries: int = 2
    queue_policy: QueuePolicy | str = "latest"
    cpu_threads: int | None = None
    cpu_nice: int | str = "idle"
    job_fn: Callable | str | None = None
    backend: str = "local"
    ray_address: str | None = None
    ray_resources: Mapping[str, float] | None = None
    ray_num_gpus: float = 1.0

    def __post_init__(self):
        owner = "PoolConfig"
        check_choice(owner, "backend", self.backend, ("local", "ray"))
        ray_fields = self._checked_ray_fields(owner)
        devices = self.devices
        if not isinstance(devices, (str, int, Sequence)):  # None, a set: no order, no len
            raise invalid(owner, "devices", "a non-empty sequence of 'cpu', 'cuda[:ids]' or GPU "
                          "indices", devices, "Use devices=['cpu'] for one CPU worker.")
        devices = (devices,) if isinstance(devices, (str, int)) else tuple(devices)
        if not devices:
            raise invalid(owner, "devices", "a non-empty sequence", self.devices)
        for d in devices:
            if self.backend == "ray":
                ray_device(d, owner=owner)
            else:
                self._check_local_device(owner, d)
        job_fn = self.job_fn
        if not (job_fn is None or callable(job_fn) or (
                isinstance(job_fn, str) and _is_function_path(job_fn))):
            raise invalid(owner, "job_fn", "a callable, a 'module:function' str or None", job_fn)
        _store(
            self,
            devices=devices,
            timeout=check_timeout(owner, self.timeout),
            timeout_floor=check_real(owner, "timeout_floor", self.timeout_floor, 0),
            max_retries=check_int(owner, "max_retries", self.max_retries, 0),
            queue_policy=self._checked_policy(owner),
            cpu_threads=check_int(owner, "cpu_threads", self.cpu_threads, 1, none_ok=True),
            cpu_nice=check_worker_priority(owner, "cpu_nice", self.cpu_nice),
            **ray_fields,
        )

    def _check_local_device(self, owner, device) -> None:
        try:
            device_env(device)  # fail here, not in the first on_checkpoint
        except ParameterError:
            raise invalid(owner, "devices", "a sequence of 'cpu', 'cuda[:ids]' or GPU "
                          "indices", self.devices) from None
        why = unusable_gpus(device)
        if why is not None:
            raise invalid(owner, "devices", "a sequence of devices this machine can "
                          f"evaluate on ({why})", self.devices,
                          "Use devices=['cpu'], or install a CUDA build of torch "
                          "(https://pytorch.org/get-started/locally/) on a machine with "
                          "the GPUs named.")

    def _checked_ray_fields(self, owner) -> dict:
        """The ``ray_*`` fields, checked; refused when set without ``backend='ray'``."""
        if self.backend != "ray":
            for name, default in (("ray_address", None), ("ray_resources", None),
                                  ("ray_num_gpus", 1.0)):
                if getattr(self, name) != default:
                    raise invalid(owner, name, f"{default!r} when backend='local'",
                                  getattr(self, name), f"Set backend='ray' to evaluate on Ray "
                                  f"actors, or leave {name} out.")
            return {}
        MissingExtraError.check("PoolConfig(backend='ray')", "ray", "ray")
        return {"ray_address": check_ray_address(owner, self.ray_address, "ray_address"),
                "ray_resources": check_ray_resources(owner, self.ray_resources, "ray_resources"),
                "ray_num_gpus": check_real(owner, "ray_num_gpus", self.ray_num_gpus, 0)}

    def _checked_policy(self, owner) -> QueuePolicy:
        try:
            return QueuePolicy.parse(self.queue_policy)
        except ParameterError:
            raise invalid(owner, "queue_policy", "a QueuePolicy or a str among {'latest', "
                          "'every_nth', 'every_nth:<n>'}", self.queue_policy) from None


@dataclass(frozen=True)
class RunGeometry:
    """What is known of the monitored run before it starts.

    Parameters
    ----------
    params : float, optional
        Parameters of the monitored model; otherwise ``compute / (6 * tokens)`` of the
        first checkpoint that gives both.
    tokens_per_step : float, optional
        Tokens per optimizer step, for checkpoints given without ``tokens``.
    max_steps : int, optional
        Length of the run, to draw the forecast curve to its end and forecast its
        final accuracy.
    learning_rate : float, optional
        Peak learning rate of the run. Compared at start with the ladder's
        learning-rate trend (when the ladder records its runs' rates): a run whose rate
        departs from it gets a warning, and its run-conditioned forecast trusts the
        ladder less.

    Raises
    ------
    ParameterError
        A non-positive value.

    Examples
    --------
    >>> RunGeometry(tokens_per_step=2048).tokens_at(100)
    204800.0
    """

    params: float | None = None
    tokens_per_step: float | None = None
    max_steps: int | None = None
    learning_rate: float | None = None

    def __post_init__(self):
        owner = "RunGeometry"
        _store(
            self,
            learning_rate=check_real(owner, "learning_rate", self.learning_rate, 0,
                                     none_ok=True),
            params=check_real(owner, "params", self.params, 0, none_ok=True),
            tokens_per_step=check_real(owner, "tokens_per_step", self.tokens_per_step, 0,
                                       none_ok=True),
            max_steps=check_int(owner, "max_steps", self.max_steps, 1, none_ok=True),
        )

    def tokens_at(self, step: int) -> float | None:
        """``step * tokens_per_step``, or ``None`` when tokens per step are unknown."""
        return None if self.tokens_per_step is None else float(step) * self.tokens_per_step


@dataclass(frozen=True)
class CheckpointConfig:
    """Which checkpoints the monitor evaluates, and how it snapshots them.

    Parameters
    ----------
    every : int, default 1
        Evaluate one checkpoint in ``every`` calls of
        :meth:`~cod_monitor.monitor.CODMonitor.on_checkpoint`.
    config_dir : str or path, optional
        Configuration (and tokenizer) files of the model: required for state-dict
        snapshots, and fills in files a checkpoint directory lacks.
    keep_snapshots : bool, default False
        Keep snapshots after their evaluation.
    link : bool, default True
        Hard link checkpoint files into snapshots (copy when ``False``).

    Raises
    ------
    ParameterError
        ``every`` below 1, a ``config_dir`` that is not an existing directory.

    Examples
    --------
    >>> CheckpointConfig(every=5, keep_snapshots=True).every
    5
    """

    every: int = 1
    config_dir: str | os.PathLike | None = None
    keep_snapshots: bool = False
    link: bool = True

    def __post_init__(self):
        owner = "CheckpointConfig"
        if self.config_dir is not None and not isinstance(self.config_dir, (str, os.PathLike)):
            raise invalid(owner, "config_dir", "a directory path or None", self.config_dir)
        if self.config_dir is not None and not os.path.isdir(self.config_dir):
            # else every state-dict snapshot would fail, one alert per checkpoint
            raise invalid(owner, "config_dir", "an existing directory or None", self.config_dir,
                          "Save the model's config.json and tokenizer there (save_pretrained) "
                          "before building the monitor.")
        _store(
            self,
            every=check_int(owner, "every", self.every, 1),
            keep_snapshots=check_bool(owner, "keep_snapshots", self.keep_snapshots),
            link=check_bool(owner, "link", self.link),
        )
