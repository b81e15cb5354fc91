"""What the live demo runs with: its settings and the inputs its ladder's build fixes.

:func:`cod_monitor.demo.live.run_live_demo` takes a :class:`LiveDemoConfig`, checks it
with :func:`validate_config` and :func:`check_requirements`, and writes into a fresh
output directory (:func:`fresh_out_dir`). From the ladder's ``build.json`` it takes the
task generator that built the ladder (:func:`demo_generator`), from which
:func:`write_eval_sets` rebuilds the evaluation sets, and the spread of a run's final
accuracy over seeds (:func:`run_spread`).

Importing this module imports neither torch nor transformers nor wandb.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cod_monitor._validation import check_int, check_real
from cod_monitor.exceptions import CODError, LadderValidationError, MissingExtraError

__all__ = [
    "DEFAULT_OUT",
    "LiveDemoConfig",
    "OutDirInUseError",
    "check_requirements",
    "demo_generator",
    "fresh_out_dir",
    "run_spread",
    "validate_config",
    "write_eval_sets",
]

#: Default output directory (a numbered sibling when it already holds files).
DEFAULT_OUT = Path("cod_demo_out")

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

    Parameters
    ----------
    base : path, default DEFAULT_OUT

    Returns
    -------
    Path
        A directory that is missing or empty.
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


# ------------------------------------------------------------------ settings


@dataclass
class LiveDemoConfig:
    """Settings of :func:`~cod_monitor.demo.live.run_live_demo` (the CLI's options).

    Attributes
    ----------
    out_dir : path
        Where everything is written (its layout: :mod:`cod_monitor.demo.live`); should
        be fresh.
    ladder : path, optional
        A demo ladder directory (default: the shipped one).
    benchmarks : sequence of str, optional
        Benchmarks to monitor (default: ``demo`` and ``knowledge`` when the ladder has
        them, else every benchmark of the ladder).
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


class OutDirInUseError(CODError, FileExistsError):
    """The live demo's output directory already holds files."""


def validate_config(cfg: LiveDemoConfig) -> None:
    """Check the settings of a live demo before anything is loaded or written.

    Parameters
    ----------
    cfg : LiveDemoConfig

    Raises
    ------
    ParameterError
        A setting out of its range.
    OutDirInUseError
        ``cfg.out_dir`` already holds files.
    """
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
