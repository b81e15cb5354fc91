"""The live demo: train the demo target with ``CODCallback`` attached and watch it.

What :func:`run_live_demo` does, end to end, on CPU:

1. loads the demo ladder (the shipped one by default) and rebuilds its evaluation
   sets from the :class:`~cod_monitor.demo.tasks.TaskGenerator` that built it: one
   JSON-lines file per monitored benchmark (``demo`` and one per task family, as the
   ladder has them), checked sample id by sample id against the ladder;
2. trains the recipe's target run (:func:`~cod_monitor.demo.recipe.target_spec`) from
   scratch with the HF ``Trainer`` (:func:`~cod_monitor.demo.train.train_target`) and a
   :class:`~cod_monitor.integrations.hf.CODCallback`. At each saved checkpoint the
   monitor snapshots the weights and a spawn-started CPU worker evaluates them with
   ``HFEvaluator(mode="exact")``, as the ladder was evaluated, while training goes on;
3. logs forecast against observed accuracy to an offline W&B run (the ``Trainer``'s
   own run, ``WANDB_MODE=offline``, ``WANDB_DIR=<out>``) and to the local HTML report;
4. with ``sabotage``, multiplies the learning rate part-way through the run (a
   ``Trainer`` callback), so the run falls below its forecast band and the drift alert
   fires;
5. returns (and writes to ``<out>/summary.json``) the final forecast against the
   measured accuracy and the trajectory error.

Layout of ``out_dir``::

    summary.json          the demo's summary (keys: see run_live_demo)
    eval_sets/<b>.jsonl   the evaluation set of each monitored benchmark
    trainer/              the Trainer's output_dir (last two checkpoints kept)
    monitor/              the monitor's journal, CSVs, report.html, summary.json
    wandb/                the offline W&B run (``wandb sync`` it to upload)

Requires the ``hf`` and ``wandb`` extras (``pip install 'cod_monitor[hf,wandb]'``);
:func:`check_requirements` says what is missing. Importing this module imports
neither torch nor transformers nor wandb.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import logging
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cod_monitor._io import atomic_write, json_default
from cod_monitor._validation import check_int, check_real, invalid
from cod_monitor.cod.configs import DEFAULT_CONFIGURATIONS
from cod_monitor.exceptions import CODError, LadderValidationError, MissingExtraError

__all__ = [
    "DEFAULT_OUT",
    "LiveDemoConfig",
    "ConsoleTracker",
    "OutDirInUseError",
    "check_requirements",
    "demo_generator",
    "run_spread",
    "fresh_out_dir",
    "run_live_demo",
    "write_eval_sets",
]

logger = logging.getLogger(__name__)

#: Default output directory (a numbered sibling when it already holds files).
DEFAULT_OUT = Path("cod_demo_out")

#: Keys of ``summary.json`` that the CLI documents (others may be added).
SUMMARY_KEYS = ("forecast_final", "observed_final", "abs_error_pts", "trajectory_mae_pts",
                "alerts", "wandb_run_dir", "report_html", "wall_s")

#: Finished-model forecasters the demo reports beside the monitor's forecast: COD and the
#: baselines, as ``cod-monitor predict --target`` runs them.
FINISHED_METHODS = (DEFAULT_CONFIGURATIONS["predict"], "e2e-exp", "e2e-passrate", "bnsl",
                    "loss-intermediate")

#: Evaluator of the shipped ladder's build (``cod_monitor.demo.train.evaluate_model``),
#: used when the ladder's ``build.json`` does not record one.
_BUILD_EVALUATOR = {"backend": "hf", "mode": "exact", "temperature": 1.0, "top_p": 0.7,
                    "batch_size": 256}

#: W&B settings of the demo's run (those already set in the environment win, except
#: WANDB_MODE and WANDB_DIR, which the demo always sets to offline and ``out_dir``).
_WANDB_ENV = {"WANDB_MODE": "offline", "WANDB_DIR": "", "WANDB_PROJECT": "cod-monitor-demo",
              "WANDB_SILENT": "true", "WANDB_CONSOLE": "off"}

_EXTRAS = {"hf": ("torch", "transformers", "accelerate", "safetensors", "tokenizers"),
           "wandb": ("wandb",)}


def check_requirements(*, wandb: bool = True) -> None:
    """Raise ``ImportError`` with the install command when an extra is missing.

    Parameters
    ----------
    wandb : bool, default True
        Also require the ``wandb`` extra.

    Raises
    ------
    MissingExtraError
        Naming the missing modules and the ``pip install`` command (an ``ImportError``).
    """
    need = ["hf"] + (["wandb"] if wandb else [])
    missing = {extra: [m for m in _EXTRAS[extra] if importlib.util.find_spec(m) is None]
               for extra in need}
    missing = {k: v for k, v in missing.items() if v}
    if missing:
        raise MissingExtraError(
            "The live demo", [m for v in missing.values() for m in v], ",".join(missing),
            note="with torch==2.13.0 for the CPU wheel, or `make demo`, which installs them; "
                 "`cod-monitor demo --synthetic` needs neither")


def fresh_out_dir(base=DEFAULT_OUT) -> Path:
    """``base`` if it is missing or empty, else the first missing ``base-2``, ``base-3``...

    A demo never writes into a directory that already holds a run: the monitor would
    resume from the journal it finds there.
    """
    base = Path(base)
    if not base.exists() or (base.is_dir() and not any(base.iterdir())):
        return base
    k = 2
    while True:
        cand = base.with_name(f"{base.name}-{k}")
        if not cand.exists():
            return cand
        k += 1


# ------------------------------------------------------------------ evaluation sets


def demo_generator(ladder_dir):
    """The :class:`~cod_monitor.demo.tasks.TaskGenerator` that built a demo ladder.

    Reads ``build.json`` beside the ladder: its ``generator`` entry (the generator's
    keyword arguments) when present; otherwise its ``seed`` with the build's default
    evaluation size (the signature default of
    :func:`~cod_monitor.demo.build.build_demo_ladder`, which is what the shipped
    ladder was built with). :func:`write_eval_sets` checks the result against the
    ladder's sample ids.

    Parameters
    ----------
    ladder_dir : path
        A ladder directory written by ``cod-monitor ladder build-demo``.

    Returns
    -------
    TaskGenerator
    """
    from cod_monitor.demo.build import build_demo_ladder
    from cod_monitor.demo.tasks import TaskGenerator

    build = {}
    path = Path(ladder_dir) / "build.json"
    if path.exists():
        build = json.loads(path.read_text())
    kwargs = build.get("generator")
    if not isinstance(kwargs, dict):
        default_size = inspect.signature(build_demo_ladder).parameters["eval_size"].default
        kwargs = {"seed": int(build.get("seed", 0)), "eval_size": default_size}
    return TaskGenerator(**kwargs)


def run_spread(build: dict) -> dict | None:
    """How much one run's final accuracy varies with its seeds, per benchmark.

    ``final_seed_sd`` of the largest ladder run of a demo build, which
    ``build-demo --seeds K`` (K > 1) records. The live demo passes it to
    :class:`~cod_monitor.monitor.CODMonitor` as ``run_sd``: the monitored target is one
    run, the ladder's points are means over K seeds.

    Parameters
    ----------
    build : dict
        The build's ``build.json``, parsed (``{}`` when there is none).

    Returns
    -------
    dict or None
        Benchmark -> standard deviation; ``None`` when the build recorded none.
    """
    runs = [r for r in build.get("runs", [])
            if r.get("role") == "ladder" and isinstance(r.get("final_seed_sd"), dict)]
    if not runs:
        return None
    largest = max(runs, key=lambda r: r.get("compute", 0.0))
    return {b: float(v) for b, v in largest["final_seed_sd"].items()}


def write_eval_sets(ladder, generator, benchmarks: Sequence[str], out_dir) -> dict:
    """Write one JSON-lines evaluation set per benchmark, matching the ladder's samples.

    Parameters
    ----------
    ladder : Ladder
    generator : TaskGenerator
    benchmarks : sequence of str
        Ladder benchmarks to write.
    out_dir : path
        Files go to ``out_dir/<benchmark>.jsonl``.

    Returns
    -------
    dict
        Benchmark -> ``{"path", "stop", "name"}``, the eval-set spec the monitor's
        workers read (:attr:`cod_monitor.monitor.Job.eval_set`).

    Raises
    ------
    LadderValidationError
        A ladder sample the generator does not produce (the ladder was built from
        another task generator).
    """
    from cod_monitor.demo.tasks import STOP

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    records = {r["id"]: r for r in generator.eval_records()}
    specs = {}
    for b in benchmarks:
        ids = list(ladder.matrix(b).sample_ids)
        missing = [s for s in ids if s not in records]
        if missing:
            raise LadderValidationError(
                "sample_id", missing[0],
                f"The demo task generator does not produce it ({len(missing)} such sample(s)): "
                "the ladder was built from another generator. Rebuild it with "
                "`cod-monitor ladder build-demo`.", where=f"benchmark {b!r} of the ladder")
        path = out_dir / f"{b}.jsonl"
        with open(path, "w", encoding="utf-8") as fh:
            for s in ids:
                r = records[s]
                fh.write(json.dumps({"id": r["id"], "prompt": r["prompt"], "answer": r["answer"]})
                         + "\n")
        specs[b] = {"path": str(path), "stop": STOP, "name": b}
    return specs


# ------------------------------------------------------------------ console output


class ConsoleTracker:
    """A :class:`~cod_monitor.trackers.base.Tracker` that prints the run as it goes.

    One line per evaluated checkpoint of the main benchmark (observed accuracy against
    the forecast band) and one per alert of any benchmark; alerts are also kept in
    :attr:`alerts` for the summary.

    Parameters
    ----------
    benchmark : str
        The benchmark whose observations are printed (all alerts are printed).
    write : callable, default print to stdout
        ``write(line)``.

    Attributes
    ----------
    alerts : list of dict
        ``{"reason", "message", "step", "benchmark"}`` per alert, in order.
    """

    def __init__(self, benchmark: str, write: Callable[[str], None] | None = None):
        self.benchmark = benchmark
        self.write = write or _print
        self.alerts: list[dict] = []

    def start(self, run_info: dict) -> None:  # noqa: D102 - see Tracker
        pass

    def log_forecast(self, benchmark, version, curve, report) -> None:  # noqa: D102
        if benchmark == self.benchmark and curve:
            last = curve[-1]
            self.write(f"forecast v{version} for {benchmark!r}: {last.value:.3f} "
                       f"[{last.lower:.3f}, {last.upper:.3f}] at step {last.step} "
                       f"({report.get('trajectory', {}).get('mode', '?')} mode)")

    def log_observation(self, observation, forecast) -> None:  # noqa: D102
        if observation.benchmark != self.benchmark:
            return
        band = ("no forecast" if forecast is None else
                f"forecast {forecast.value:.3f} [{forecast.lower:.3f}, {forecast.upper:.3f}]")
        self.write(f"  step {observation.step:>6}  {self.benchmark}: observed "
                   f"{observation.accuracy:.3f}  {band}")

    def log_alert(self, alert) -> None:  # noqa: D102
        self.alerts.append({"reason": alert.reason.value, "message": alert.message,
                            "step": int(alert.step), "benchmark": alert.benchmark})
        self.write(f"ALERT [{alert.reason.value}] {alert.message}")

    def finish(self, summary: dict) -> None:  # noqa: D102
        pass


def _print(line: str) -> None:
    print(line, flush=True)


class _NoAlertEcho(logging.Filter):
    """Drop the monitor's own log line for an alert: :class:`ConsoleTracker` prints it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return False


# ------------------------------------------------------------------ sabotage


def _lr_spike_callback(at_step: int, factor: float, write):
    """A ``TrainerCallback`` that multiplies the learning rate from ``at_step`` on."""
    from transformers import TrainerCallback

    class LRSpike(TrainerCallback):
        """Multiply every learning rate by ``factor`` before optimizer step ``at_step + 1``.

        The constant schedule recomputes ``lr = base_lr * factor(step)`` at every step,
        so the scheduler's ``base_lrs`` are scaled too, not only the optimizer's groups.
        """

        applied_at: int | None = None

        def on_step_begin(self, args, state, control, optimizer=None, lr_scheduler=None, **kw):
            if self.applied_at is not None or state.global_step < at_step or optimizer is None:
                return
            for group in optimizer.param_groups:
                group["lr"] *= factor
            if lr_scheduler is not None and hasattr(lr_scheduler, "base_lrs"):
                lr_scheduler.base_lrs = [lr * factor for lr in lr_scheduler.base_lrs]
            self.applied_at = int(state.global_step)
            write(f"SABOTAGE: learning rate x{factor:g} from step {state.global_step} "
                  f"(now {optimizer.param_groups[0]['lr']:.3g})")

    return LRSpike()


# ------------------------------------------------------------------ the demo


@dataclass
class LiveDemoConfig:
    """Settings of :func:`run_live_demo` (the CLI's options).

    Attributes
    ----------
    out_dir : path
        Where everything is written (see the module docstring); should be fresh.
    ladder : path, optional
        A demo ladder directory (default: the shipped one).
    benchmarks : sequence of str, optional
        Benchmarks to monitor (default: every benchmark of the ladder).
    main_benchmark : str, optional
        The benchmark of the summary's top-level numbers (default ``'demo'`` when
        monitored, else the first).
    tokens : int, optional
        Training tokens of the target run (default: the recipe's). Fewer tokens give a
        shorter run of the same model, learning rate and schedule.
    n_checkpoints : int, optional
        Evaluated checkpoints (default: the recipe's).
    seed : int, optional
        Initialisation and data seed of the target run (default: the recipe's, the
        seeds the ladder's own target run was trained with).
    sabotage : bool, default False
        Multiply the learning rate by ``sabotage_factor`` from ``sabotage_at`` of the run.
    sabotage_at : float, default 0.5
        Share of the training steps after which the sabotage starts.
    sabotage_factor : float, default 30
    threads : int, optional
        Torch threads of the training process (default: every core).
    eval_threads : int, default 1
        Threads of the evaluation worker.
    wandb : bool, default True
        Log to an offline W&B run (needs the ``wandb`` extra).
    progress : bool, default True
        Training progress lines on stderr.
    n_bootstrap : int, default 100
        Bootstrap replicates of the forecast interval.
    trajectory, trajectory_method : str, optional
        The monitor's forecast of the run in progress (the
        :class:`~cod_monitor.monitor.ForecastConfig` fields of these names); ``None``:
        their defaults.
    """

    out_dir: Path = DEFAULT_OUT
    ladder: Path | None = None
    benchmarks: Sequence[str] | None = None
    main_benchmark: str | None = None
    tokens: int | None = None
    n_checkpoints: int | None = None
    seed: int | None = None
    sabotage: bool = False
    sabotage_at: float = 0.5
    sabotage_factor: float = 30.0
    threads: int | None = None
    eval_threads: int = 1
    wandb: bool = True
    progress: bool = True
    n_bootstrap: int = 100
    trajectory: str | None = None
    trajectory_method: str | None = None
    extra_callbacks: Sequence = field(default_factory=tuple)


def _target_spec(cfg: LiveDemoConfig):
    from cod_monitor.demo.recipe import seed_overrides, target_spec

    overrides = {}
    if cfg.tokens is not None:
        overrides["tokens"] = int(cfg.tokens)
    if cfg.n_checkpoints is not None:
        overrides["n_checkpoints"] = int(cfg.n_checkpoints)
    if cfg.seed is not None:
        overrides.update(seed_overrides(cfg.seed))
    return target_spec(**overrides)


class OutDirInUseError(CODError, FileExistsError):
    """The live demo's output directory already holds files."""


def _validate(cfg: LiveDemoConfig) -> None:
    owner = "LiveDemoConfig"
    check_real(owner, "sabotage_at", cfg.sabotage_at, 0, 1)
    check_real(owner, "sabotage_factor", cfg.sabotage_factor, 0)
    for name in ("tokens", "n_checkpoints", "threads", "eval_threads"):
        check_int(owner, name, getattr(cfg, name), 1, none_ok=True)
    out = Path(cfg.out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise OutDirInUseError(
            f"{out} already holds files; the demo needs a fresh directory (its monitor would "
            "resume from the journal there). Pass another --out or leave it out."
        )


def _reference_accuracy(ladder, benchmark: str, spec) -> dict:
    """The build's own measurement of the target run at each step, when it is this run."""
    targets = {m.step: m for m in ladder.models
               if m.role == "target" and m.step is not None and m.params == spec.params}
    if not targets:
        return {}
    mat = ladder.matrix(benchmark, roles=("ladder", "anchor", "target"))
    acc = dict(zip(mat.model_names, mat.pass_rates.mean(axis=0)))
    return {int(s): float(acc[m.name]) for s, m in targets.items() if m.name in acc}


def finished_forecasts(ladder, benchmark: str, spec, methods=FINISHED_METHODS) -> dict:
    """Forecasts of the run's final checkpoint as a finished model of the ladder's recipe.

    Every method of ``methods`` is fitted on the ladder's runs and forecasts the
    benchmark at the run's final compute, given its tokens per parameter, as ``cod-monitor
    predict --target`` does (point forecasts, no bootstrap). They are the baselines of the
    monitor's forecast, made from the same ladder before training.

    Parameters
    ----------
    ladder : Ladder
    benchmark : str
    spec : RunSpec
        The monitored run; meaningful when it follows the ladder's recipe.
    methods : sequence of str, default FINISHED_METHODS

    Returns
    -------
    dict
        Method name -> ``{"value": float or None, "error": str or None}`` (``error`` says
        why a method could not forecast).
    """
    from cod_monitor.methods import compare_methods

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fit warnings belong to `cod-monitor predict`
        res = compare_methods(ladder, benchmark, spec.compute, list(methods), n_bootstrap=0,
                              random_state=0, tokens_per_param=spec.tokens / spec.params)
    return {name: {"value": None if r["value"] is None else float(r["value"]),
                   "error": r.get("error")} for name, r in res.items()}


def run_live_demo(config: LiveDemoConfig | None = None, **settings) -> dict:
    """Train the demo target with ``CODCallback`` and compare the forecast with the run.

    Parameters
    ----------
    config : LiveDemoConfig, optional
    **settings
        Fields of :class:`LiveDemoConfig` (instead of, or overriding, ``config``).

    Returns
    -------
    dict
        Also written to ``out_dir/summary.json``. For the main benchmark:

        - ``forecast_final`` (float or None): the forecast for the run's last
          checkpoint, made from the ladder before training;
        - ``observed_final`` (float or None): the accuracy measured at that checkpoint;
        - ``abs_error_pts`` (float or None): ``100 * |forecast_final - observed_final|``;
        - ``trajectory_mae_pts`` (float or None): mean absolute error, in points, of
          the forecast at every evaluated checkpoint;
        - ``alerts`` (list of dict): ``reason``, ``message``, ``step``, ``benchmark``
          of every alert, in order;
        - ``wandb_run_dir`` (str or None): the offline W&B run directory;
        - ``report_html`` (str): the local HTML report;
        - ``wall_s`` (float): wall time of the demo.

        Plus ``benchmark`` (the main benchmark), ``forecast_interval``,
        ``final_step``, ``per_benchmark`` (the same numbers for every monitored
        benchmark), ``checkpoints`` (step, observed, forecast, lower, upper of the main
        benchmark), ``reference_observed_final`` (the ladder build's measurement of the
        same run, when the run is the ladder's target), ``target`` (the run's recipe),
        ``sabotage`` (``None`` or step and factor), ``train_s``, ``out_dir`` and
        ``finished_forecasts``: for a run of the recipe's length (no ``tokens``
        override), the final checkpoint forecast as a finished model by COD and the
        baselines (:func:`finished_forecasts`; per method ``value``, ``error`` and
        ``abs_error_pts``), else ``None``.

    Raises
    ------
    ImportError
        A missing extra (see :func:`check_requirements`).
    FileExistsError
        ``out_dir`` already holds files.
    """
    t_start = time.perf_counter()
    # Before torch loads libgomp (and inherited by the spawned evaluation worker): with
    # the default busy-waiting, a 2-thread training step took 904 ms instead of 106 ms
    # whenever another process held one of the 2 cores (the evaluation worker does, at
    # every checkpoint); passive waiting keeps it at the 1-thread speed or better.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    cfg = config if config is not None else LiveDemoConfig()
    if settings:
        cfg = LiveDemoConfig(**{**cfg.__dict__, **settings})
    _validate(cfg)
    check_requirements(wandb=cfg.wandb)

    from cod_monitor.demo import SHIPPED_LADDER
    from cod_monitor.ladder import Ladder

    out = Path(cfg.out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    ladder_dir = Path(cfg.ladder).resolve() if cfg.ladder is not None else SHIPPED_LADDER
    ladder = Ladder.load(ladder_dir)
    benchmarks = list(cfg.benchmarks) if cfg.benchmarks else list(ladder.benchmarks)
    unknown = [b for b in benchmarks if b not in ladder.benchmarks]
    if unknown:
        raise invalid("LiveDemoConfig", "benchmarks", f"benchmarks of the ladder {ladder_dir} "
                      f"(it has {ladder.benchmarks})", list(cfg.benchmarks))
    main = cfg.main_benchmark or ("demo" if "demo" in benchmarks else benchmarks[0])
    if main not in benchmarks:
        benchmarks.insert(0, main)
    # the main benchmark first: its jobs are queued first for every checkpoint
    benchmarks = [main] + [b for b in benchmarks if b != main]

    generator = demo_generator(ladder_dir)
    eval_sets = write_eval_sets(ladder, generator, benchmarks, out / "eval_sets")
    spec = _target_spec(cfg)
    build = {}
    if (ladder_dir / "build.json").exists():
        build = json.loads((ladder_dir / "build.json").read_text())
    evaluator = dict(build.get("evaluator") or _BUILD_EVALUATOR)

    _print(f"ladder {ladder_dir}: {len(ladder.models_with_role('ladder'))} ladder checkpoints, "
           f"benchmarks {', '.join(benchmarks)}")
    _print(f"training {spec.name} from scratch: {spec.params:,} params, {spec.tokens:,} tokens, "
           f"{spec.steps} steps, lr {spec.learning_rate:.3g}, {len(spec.checkpoint_steps)} "
           f"checkpoints evaluated in a CPU worker (HFEvaluator, exact); writing to {out}")

    saved_env = {k: os.environ.get(k) for k in _WANDB_ENV}
    if cfg.wandb:
        # The Trainer's WandbCallback opens the run (offline, under out/) and the
        # monitor's WandbTracker logs into that same run.
        os.environ.update(WANDB_MODE="offline", WANDB_DIR=str(out))
        for k, v in _WANDB_ENV.items():
            os.environ.setdefault(k, v)

    from cod_monitor.demo.train import train_target
    from cod_monitor.integrations.hf import CODCallback
    from cod_monitor.monitor.judging import ALERT_LOGGER

    run_name = f"demo-{spec.name}" + ("-sabotage" if cfg.sabotage else "")
    monitor_dir = out / "monitor"
    console = ConsoleTracker(main)
    echo_filter = _NoAlertEcho()
    monitor_logger = logging.getLogger(ALERT_LOGGER)
    monitor_logger.addFilter(echo_filter)
    monitor, wandb_run_dir, sabotage, finished = None, None, None, None
    t_train = time.perf_counter()
    with warnings.catch_warnings():
        _quiet_libraries()
        try:
            if cfg.wandb:
                # Opened before the monitor's trackers start: the Trainer's WandbCallback
                # and the monitor's WandbTracker both log into this one offline run.
                import wandb

                wandb.init(project=os.environ["WANDB_PROJECT"], name=run_name, dir=str(out),
                           config={"demo": {"target": spec.to_dict(), "sabotage": cfg.sabotage}})
            monitor = _build_monitor(cfg, spec, ladder_dir, eval_sets, evaluator, build,
                                     monitor_dir, console, run_name)
            # Fit the forecasts before the first step, so the fit does not compete with
            # training for the CPU cores.
            t_fit = time.perf_counter()
            monitor.start()
            monitor.refresh(wait=True)
            # the same forecast by the finished-model methods, side by side at the end; only
            # a run of the recipe's length is the finished model they forecast
            finished = (finished_forecasts(ladder, main, spec) if cfg.tokens is None
                        else None)
            _print(f"forecasts of {len(benchmarks)} benchmark(s) fitted in "
                   f"{time.perf_counter() - t_fit:.0f} s; training starts")
            callbacks = [CODCallback(monitor), *cfg.extra_callbacks]
            if cfg.sabotage:
                at = max(1, int(round(cfg.sabotage_at * spec.steps)))
                callbacks.append(_lr_spike_callback(at, float(cfg.sabotage_factor), _print))
                sabotage = {"kind": "lr_spike", "factor": float(cfg.sabotage_factor), "step": at}
                _print(f"sabotage armed: learning rate x{cfg.sabotage_factor:g} from step {at} "
                       f"({cfg.sabotage_at:.0%} of the run)")
            t_train = time.perf_counter()
            _train(train_target, out, spec, generator, callbacks, cfg, run_name)
        finally:
            train_s = time.perf_counter() - t_train
            if monitor is not None:
                monitor.close()  # idempotent: normally closed by CODCallback.on_train_end
            if cfg.wandb:
                wandb_run_dir = _finish_wandb(out)
            monitor_logger.removeFilter(echo_filter)
            for k, v in saved_env.items():  # a library call leaves the environment as it was
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    summary = _summarize(monitor, benchmarks, main, spec, console.alerts, ladder)
    if finished is not None:
        obs = summary["observed_final"]
        for f in finished.values():
            f["abs_error_pts"] = (None if f["value"] is None or obs is None
                                  else 100 * abs(f["value"] - obs))
    summary.update(
        finished_forecasts=finished,
        wandb_run_dir=wandb_run_dir,
        report_html=str(monitor_dir / "report.html"),
        sabotage=sabotage,
        target=spec.to_dict(),
        train_s=train_s,
        out_dir=str(out),
    )
    summary["wall_s"] = time.perf_counter() - t_start
    atomic_write(out / "summary.json", json.dumps(summary, indent=2, default=json_default))
    _print_final(summary)
    return summary


def _build_monitor(cfg, spec, ladder_dir, eval_sets, evaluator, build, monitor_dir, console,
                   run_name):
    """The ``CODMonitor`` of the demo run: a CPU worker, local report, W&B, console."""
    from cod_monitor.monitor import CODMonitor, ForecastConfig, PoolConfig, QueuePolicy, RunGeometry
    from cod_monitor.trackers.local import LocalTracker

    # No PNG plots: matplotlib would render in the training process; report.html is SVG.
    trackers = [LocalTracker(monitor_dir, plots=False), console]
    if cfg.wandb:
        from cod_monitor.trackers.wandb import WandbTracker

        trackers.insert(1, WandbTracker())
    forecast = ForecastConfig(
        **({"trajectory": cfg.trajectory} if cfg.trajectory else {}),
        trajectory_method=cfg.trajectory_method,
        n_bootstrap=int(cfg.n_bootstrap),
        run_sd=run_spread(build),
        refresh_interval=None,  # the shipped ladder does not change during the demo
    )
    pool = PoolConfig(
        devices=["cpu"],
        cpu_threads=int(cfg.eval_threads),
        # Evaluation falls behind training on two shared cores; every checkpoint is
        # still evaluated (the drain at the end catches up) so the trajectory is whole.
        queue_policy=QueuePolicy(max_pending=len(spec.checkpoint_steps) + 1),
    )
    run = RunGeometry(params=float(spec.params), tokens_per_step=float(spec.tokens_per_step),
                      max_steps=int(spec.steps))
    return CODMonitor(str(ladder_dir), eval_sets, evaluator, forecast=forecast, pool=pool,
                      run=run, trackers=trackers, out_dir=str(monitor_dir), run_name=run_name)


def _train(train_target, out, spec, generator, callbacks, cfg, run_name) -> None:
    train_target(
        out / "trainer", spec=spec, generator=generator, callbacks=callbacks,
        threads=cfg.threads or os.cpu_count() or 1, progress=cfg.progress,
        report_to="wandb" if cfg.wandb else "none", save_total_limit=2,
        run_name=run_name,
    )


def _quiet_libraries() -> None:
    """Keep the demo's console to its own lines (call inside ``warnings.catch_warnings``).

    FitWarnings of the forecaster (e.g. a spline mapping replaced by a monotone one)
    are recorded in the monitor's forecast reports; the Trainer's per-save progress
    bars would interleave with the demo's lines.
    """
    from transformers.utils import logging as hf_logging

    from cod_monitor.exceptions import FitWarning

    warnings.simplefilter("ignore", FitWarning)
    hf_logging.disable_progress_bar()


def _finish_wandb(out: Path) -> str | None:
    """Finish the Trainer's W&B run (its callback leaves it open) and return its directory."""
    import wandb

    run_dir = None
    if wandb.run is not None:
        try:
            run_dir = str(Path(wandb.run.dir).parent)
        except Exception:  # noqa: BLE001 - the directory is only informative
            run_dir = None
        wandb.finish()
    if run_dir is None:
        found = sorted((out / "wandb").glob("offline-run-*"))
        run_dir = str(found[-1]) if found else None
    return run_dir


def _summarize(monitor, benchmarks, main, spec, alerts, ladder) -> dict:
    """Forecast against observation per benchmark, from the closed monitor."""
    final_step = int(spec.steps)
    per = {}
    for b in benchmarks:
        rows = []
        for o in sorted((o for o in monitor.observations if o.benchmark == b), key=lambda o: o.step):
            fp = monitor.forecast_point(b, o.step, tokens=o.tokens)
            rows.append({"step": int(o.step), "observed": float(o.accuracy),
                         "forecast": None if fp is None else fp.value,
                         "lower": None if fp is None else fp.lower,
                         "upper": None if fp is None else fp.upper})
        final = monitor.forecast_point(b, final_step, tokens=float(final_step * spec.tokens_per_step))
        last = next((r for r in rows if r["step"] == final_step), None)
        errs = [abs(r["observed"] - r["forecast"]) for r in rows if r["forecast"] is not None]
        fc = None if final is None else float(final.value)
        obs = None if last is None else last["observed"]
        per[b] = {
            "forecast_final": fc,
            "forecast_interval": None if final is None else [float(final.lower), float(final.upper)],
            "observed_final": obs,
            "abs_error_pts": None if fc is None or obs is None else 100 * abs(fc - obs),
            "trajectory_mae_pts": 100 * sum(errs) / len(errs) if errs else None,
            "n_checkpoints": len(rows),
            "checkpoints": rows,
        }
    m = per[main]
    reference = _reference_accuracy(ladder, main, spec).get(final_step)
    return {
        "benchmark": main,
        "forecast_final": m["forecast_final"],
        "forecast_interval": m["forecast_interval"],
        "observed_final": m["observed_final"],
        "abs_error_pts": m["abs_error_pts"],
        "trajectory_mae_pts": m["trajectory_mae_pts"],
        "alerts": list(alerts),
        "final_step": final_step,
        "reference_observed_final": reference,
        "checkpoints": m["checkpoints"],
        "per_benchmark": {b: {k: v for k, v in d.items() if k != "checkpoints"}
                          for b, d in per.items()},
    }


def _fmt(x, spec=".3f") -> str:
    return "n/a" if x is None else format(x, spec)


def _print_final(s: dict) -> None:
    b = s["benchmark"]
    lo, hi = s["forecast_interval"] or (None, None)
    lines = [
        "",
        f"{b!r} at the final checkpoint (step {s['final_step']}): forecast {_fmt(s['forecast_final'])} "
        f"[{_fmt(lo)}, {_fmt(hi)}] vs measured {_fmt(s['observed_final'])}: error "
        f"{_fmt(s['abs_error_pts'], '.1f')} points; trajectory error (mean over "
        f"{len(s['checkpoints'])} checkpoints) {_fmt(s['trajectory_mae_pts'], '.1f')} points.",
    ]
    if s.get("reference_observed_final") is not None:
        lines.append(f"(the ladder build measured {s['reference_observed_final']:.3f} for the same "
                     "run; small differences come from thread counts)")
    lines.append(f"{'benchmark':10s} {'forecast':>9s} {'measured':>9s} {'error':>7s} {'traj MAE':>9s}")
    for name, d in s["per_benchmark"].items():
        lines.append(f"{name:10s} {_fmt(d['forecast_final']):>9s} {_fmt(d['observed_final']):>9s} "
                     f"{_fmt(d['abs_error_pts'], '.1f'):>7s} {_fmt(d['trajectory_mae_pts'], '.1f'):>9s}")
    if s.get("finished_forecasts"):
        parts = [f"{name} {_fmt(f['value'])} ({_fmt(f['abs_error_pts'], '.1f')})"
                 for name, f in s["finished_forecasts"].items()]
        lines.append(f"{b!r} final checkpoint forecast as a finished recipe model from the same "
                     f"ladder (error in points): " + ", ".join(parts))
    alerts = s["alerts"]
    drift = [a for a in alerts if a["reason"] == "below_band"]
    lines.append(f"alerts: {len(alerts)} ({len(drift)} below-band drift)" if alerts else "alerts: none")
    for a in alerts:
        lines.append(f"  step {a['step']} [{a['reason']}] {a['message']}")
    lines.append(f"report: {s['report_html']}")
    if s.get("wandb_run_dir"):
        lines.append(f"W&B offline run: {s['wandb_run_dir']} (upload: wandb sync {s['wandb_run_dir']}; "
                     f"inspect: wandb leet inspect --summary {s['wandb_run_dir']})")
    lines.append(f"summary: {Path(s['out_dir']) / 'summary.json'}   wall time {s['wall_s']:.0f} s "
                 f"(training {s['train_s']:.0f} s)")
    _print("\n".join(lines))

