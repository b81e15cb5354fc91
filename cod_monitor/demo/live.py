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
4. with ``sabotage``, multiplies the learning rate part-way through the run to the
   end (a :class:`~cod_monitor.demo.sabotage.Sabotage` of kind ``'lr_spike'`` whose
   window ends with the run, composed into the schedule), so the run falls below its
   forecast band and the drift alert fires;
5. returns (and writes to ``<out>/summary.json``) the final forecast against the
   measured accuracy and the trajectory error.

Layout of ``out_dir``::

    summary.json          the demo's summary (keys: see run_live_demo)
    eval_sets/<b>.jsonl   the evaluation set of each monitored benchmark
    trainer/              the Trainer's output_dir (last two checkpoints kept)
    monitor/              the monitor's journal, CSVs, report.html, summary.json
    wandb/                the offline W&B run (``wandb sync`` it to upload)

The demo's settings and the inputs its ladder's build fixes (task generator,
evaluation sets) are in :mod:`cod_monitor.demo.live_config`; its console lines, summary
and finished-model forecasts in :mod:`cod_monitor.demo.live_summary`. This module runs
it: monitor, training, sabotage and the offline W&B run.

Requires the ``hf`` and ``wandb`` extras (``pip install 'cod_monitor[hf,wandb]'``);
:func:`~cod_monitor.demo.live_config.check_requirements` says what is missing.
Importing this module imports neither torch nor transformers nor wandb.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from pathlib import Path

from cod_monitor._io import atomic_write, json_default
from cod_monitor._validation import invalid
from cod_monitor.demo.live_config import (
    LiveDemoConfig,
    check_requirements,
    demo_generator,
    run_spread,
    validate_config,
    write_eval_sets,
)
from cod_monitor.demo.live_summary import (
    ConsoleTracker,
    echo,
    finished_forecasts,
    print_summary,
    summarize,
)

__all__ = ["run_live_demo"]

logger = logging.getLogger(__name__)

#: Evaluator of the shipped ladder's build (``cod_monitor.demo.train.evaluate_model``),
#: used when the ladder's ``build.json`` does not record one.
_BUILD_EVALUATOR = {"backend": "hf", "mode": "exact", "temperature": 1.0, "top_p": 0.7,
                    "batch_size": 256}

#: W&B settings of the demo's run (those already set in the environment win, except
#: WANDB_MODE and WANDB_DIR, which the demo always sets to offline and ``out_dir``).
_WANDB_ENV = {"WANDB_MODE": "offline", "WANDB_DIR": "", "WANDB_PROJECT": "cod-monitor-demo",
              "WANDB_SILENT": "true", "WANDB_CONSOLE": "off"}

# ------------------------------------------------------------------ console output


class _NoAlertEcho(logging.Filter):
    """Drop the monitor's own log line for an alert: :class:`ConsoleTracker` prints it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return False


# ------------------------------------------------------------------ sabotage


def _live_sabotage(cfg: LiveDemoConfig, steps: int):
    """The ``--sabotage`` of the live demo as a :class:`~cod_monitor.demo.sabotage.Sabotage`:
    learning rate x ``sabotage_factor`` from step ``at = max(1, round(sabotage_at *
    steps))`` to the end (optimizer steps ``at + 1 ..``), and ``at``. ``None`` for the
    fault when ``at`` is the last step (nothing is left to sabotage)."""
    from cod_monitor.demo.sabotage import Sabotage

    at = max(1, int(round(cfg.sabotage_at * steps)))
    if at >= steps:
        return None, at
    return Sabotage("lr_spike", start=at / steps, end=1.0,
                    factor=float(cfg.sabotage_factor)), at


def _sabotage_notice(at_step: int, factor: float, write):
    """A ``TrainerCallback`` that writes one line when the sabotage starts (the schedule
    applies it; this only tells the console)."""
    from transformers import TrainerCallback

    class SabotageNotice(TrainerCallback):
        said = False

        def on_step_begin(self, args, state, control, optimizer=None, **kw):
            if self.said or state.global_step < at_step or optimizer is None:
                return
            self.said = True
            write(f"SABOTAGE: learning rate x{factor:g} from step {state.global_step} "
                  f"(now {optimizer.param_groups[0]['lr']:.3g})")

    return SabotageNotice()


# ------------------------------------------------------------------ the demo


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


def default_benchmarks(ladder) -> list[str]:
    """The benchmarks the live demo monitors by default: the headline ``demo`` and the
    ``knowledge`` stress case when the ladder has them (their families are subsets of
    the same samples), else every benchmark of the ladder."""
    from cod_monitor.demo.tasks import BENCHMARK_FAMILIES

    named = [b for b in BENCHMARK_FAMILIES if b in ladder.benchmarks]
    return named or list(ladder.benchmarks)


def run_live_demo(config: LiveDemoConfig | None = None, **settings) -> dict:
    """Train the demo target with ``CODCallback`` and compare the forecast with the run.

    Parameters
    ----------
    config : LiveDemoConfig, optional
        See :class:`~cod_monitor.demo.live_config.LiveDemoConfig`.
    **settings
        Fields of :class:`~cod_monitor.demo.live_config.LiveDemoConfig` (instead of, or
        overriding, ``config``).

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
        benchmark), ``truth_final``, ``truth_error_pts`` and ``truth_seeds`` (the
        ladder's target, the mean over the build's ``truth_seeds`` training runs of this
        recipe, and the forecast's error against it; ``None`` for another run),
        ``target`` (the run's recipe),
        ``sabotage`` (``None`` or step and factor), ``train_s``, ``out_dir`` and
        ``finished_forecasts``: for a run of the recipe's length (no ``tokens``
        override), the final checkpoint forecast as a finished model by COD and the
        baselines (:func:`~cod_monitor.demo.live_summary.finished_forecasts`; per
        method ``value``, ``error``, ``abs_error_pts`` and ``truth_error_pts``), else
        ``None``.

    Raises
    ------
    ImportError
        A missing extra (see :func:`~cod_monitor.demo.live_config.check_requirements`).
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
    validate_config(cfg)
    check_requirements(wandb=cfg.wandb)

    from cod_monitor.demo import SHIPPED_LADDER
    from cod_monitor.ladder import Ladder

    out = Path(cfg.out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    ladder_dir = Path(cfg.ladder).resolve() if cfg.ladder is not None else SHIPPED_LADDER
    ladder = Ladder.load(ladder_dir)
    benchmarks = list(cfg.benchmarks) if cfg.benchmarks else default_benchmarks(ladder)
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

    echo(f"ladder {ladder_dir}: {len(ladder.models_with_role('ladder'))} ladder checkpoints, "
         f"benchmarks {', '.join(benchmarks)}")
    echo(f"training {spec.name} from scratch: {spec.params:,} params, {spec.tokens:,} tokens, "
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
            echo(f"forecasts of {len(benchmarks)} benchmark(s) fitted in "
                 f"{time.perf_counter() - t_fit:.0f} s; training starts")
            callbacks = [CODCallback(monitor), *cfg.extra_callbacks]
            fault = None
            if cfg.sabotage:
                fault, at = _live_sabotage(cfg, spec.steps)
                callbacks.append(_sabotage_notice(at, float(cfg.sabotage_factor), echo))
                sabotage = {"kind": "lr_spike", "factor": float(cfg.sabotage_factor), "step": at}
                echo(f"sabotage armed: learning rate x{cfg.sabotage_factor:g} from step {at} "
                     f"({cfg.sabotage_at:.0%} of the run)")
            t_train = time.perf_counter()
            _train(train_target, out, spec, generator, callbacks, cfg, run_name, fault)
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

    summary = summarize(monitor, benchmarks, main, spec, console.alerts, ladder)
    if finished is not None:
        obs, truth = summary["observed_final"], summary["truth_final"]
        for f in finished.values():
            f["abs_error_pts"] = (None if f["value"] is None or obs is None
                                  else 100 * abs(f["value"] - obs))
            f["truth_error_pts"] = (None if f["value"] is None or truth is None
                                    else 100 * abs(f["value"] - truth))
    summary["truth_seeds"] = build.get("seeds_per_target")
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
    print_summary(summary)
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

        # the Trainer's WandbCallback brings the per-checkpoint scalars (CODCallback puts
        # them in its log stream, as train/cod/...); the tracker adds charts and summary
        trackers.insert(1, WandbTracker(log_stream_prefix="train/"))
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
                      max_steps=int(spec.steps), learning_rate=float(spec.learning_rate))
    return CODMonitor(str(ladder_dir), eval_sets, evaluator, forecast=forecast, pool=pool,
                      run=run, trackers=trackers, out_dir=str(monitor_dir), run_name=run_name)


def _train(train_target, out, spec, generator, callbacks, cfg, run_name, sabotage=None) -> None:
    train_target(
        out / "trainer", spec=spec, generator=generator, callbacks=callbacks,
        threads=cfg.threads or os.cpu_count() or 1, progress=cfg.progress,
        report_to="wandb" if cfg.wandb else "none", save_total_limit=2,
        run_name=run_name, sabotage=sabotage,
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
