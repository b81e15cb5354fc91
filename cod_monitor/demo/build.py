"""Build the demo ladder: train every run of the recipe, evaluate every checkpoint.

:func:`build_demo_ladder` trains the ladder runs and the target of
:mod:`cod_monitor.demo.recipe` (in two 1-thread worker processes by default: on 2
cores that beats one 2-thread process, and a worker whose partner has finished
takes both threads), evaluates every checkpoint with
``HFEvaluator(mode="exact", temperature=1.0, top_p=0.7)``
(:data:`~cod_monitor.demo.recipe.EVALUATOR`) on the
:class:`~cod_monitor.demo.tasks.TaskGenerator` evaluation set, and writes::

    OUT/ladder/            ladder.json + scores.csv.gz (Ladder.save format)
    OUT/eval.jsonl         the evaluation set {id, prompt, answer, family, level}
    OUT/tokenizer/         the char tokenizer (AutoTokenizer.from_pretrained)
    OUT/models/<run>/      final weights of every run (keep_weights='final')
    OUT/build.json         recipe, timings, machine, per-run final accuracy
    OUT/report.txt         accuracy by family/level/run and by difficulty cluster
    OUT/curves.png         the same as curves (when matplotlib is installed)

Layout of the ladder: one model entry per evaluated checkpoint (``name =
"<run>-s<step>"``, ``run``, ``step``, ``tokens``, ``compute = 6 N D``, ``loss`` =
held-out next-token loss, ``learning_rate`` = the run's peak rate and ``lr_schedule`` =
``'constant_with_warmup'``, the recipe's); every checkpoint of the target run has role
``'target'``. One benchmark per task family (``fact``, ``city``, ``add``) and one
combined benchmark ``demo`` holding all samples (the same sample ids). Pass rates
are rounded to ``score_decimals`` (1e-4 by default: 100 times finer than a
100-sample estimate) so the table compresses. Every benchmark records the evaluation
settings it was scored with (:func:`demo_eval_settings`: stop marker ``"\\n"``, scorer
``'exact'``, exact mode at temperature 1, top_p 0.7), which a monitor checks its run
against.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np

from cod_monitor._io import atomic_write, to_jsonable
from cod_monitor._validation import check_choice, check_int, invalid
from cod_monitor.demo.recipe import (
    EVALUATOR,
    LADDER_SEEDS,
    LR_SCHEDULE,
    TARGET_SEEDS,
    RunSpec,
    ladder_specs,
    target_spec,
)
from cod_monitor.demo.report import final_accuracy, ladder_report, plot_curves
from cod_monitor.demo.sabotage import Sabotage
from cod_monitor.demo.tasks import BENCHMARK_FAMILIES, STOP, TaskGenerator, parse_sample_id
from cod_monitor.evaluators.settings import evaluator_settings
from cod_monitor.ladder import EvalSettings, Ladder, ModelInfo, PassRateMatrix

__all__ = ["BuildResult", "build_demo_ladder", "add_runs", "seed_variants", "ladder_report",
           "DEMO_COMPUTE_UNIT", "demo_eval_settings"]

logger = logging.getLogger(__name__)

#: FLOPs per compute unit written into the demo ladder. The paper's unit (1e18)
#: puts its ladder at roughly 10 to 1e4 units; 1e10 puts these tiny runs (4e10 to
#: 3e13 FLOPs) in the same range, where the filter thresholds a > 1, b > 0.1 were set.
DEMO_COMPUTE_UNIT = 1e10


@dataclass
class BuildResult:
    """What :func:`build_demo_ladder` produced.

    Attributes
    ----------
    ladder : Ladder
    path : Path
        The ladder directory.
    summary : dict
        The content of ``build.json``.
    report : str
        The content of ``report.txt``.
    """

    ladder: Ladder
    path: Path
    summary: dict = field(default_factory=dict)
    report: str = ""


# --------------------------------------------------------------------------- workers


def _partition(specs: list[RunSpec], workers: int) -> list[list[RunSpec]]:
    """Greedy longest-first split of the runs by cost ``params * tokens``."""
    groups: list[list[RunSpec]] = [[] for _ in range(workers)]
    load = [0.0] * workers
    for spec in sorted(specs, key=lambda s: -s.params * s.tokens):
        k = int(np.argmin(load))
        groups[k].append(spec)
        load[k] += spec.params * spec.tokens
    return [g for g in groups if g]


def _train_and_evaluate(spec, generator, *, backend, threads, on_step, keep_weights,
                        out_dir, progress, emit, sabotage=None):
    """Train one run; ``emit`` every checkpoint's pass rates and the run's timing."""
    import torch

    from cod_monitor.demo.tokenizer import build_tokenizer
    from cod_monitor.demo.train import evaluate_model, train_run, validation_blocks, validation_loss

    val = validation_blocks(generator, spec.block_size)
    tokenizer = build_tokenizer()
    eval_s = [0.0]

    def on_checkpoint(step, model):
        t0 = time.perf_counter()
        result = evaluate_model(model, generator, tokenizer=tokenizer)
        loss = validation_loss(model, val)
        eval_s[0] += time.perf_counter() - t0
        emit({"kind": "checkpoint", "run": spec.name, "step": int(step),
              "pass_rates": result.pass_rates.tolist(), "sample_ids": list(result.sample_ids),
              "loss": loss, "eval_s": time.perf_counter() - t0})
        if keep_weights == "all":
            model.save_pretrained(Path(out_dir) / "models" / spec.name / f"checkpoint-{step}")
        model.train()

    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # no "Writing model shards" bars per save
    try:
        with torch.random.fork_rng():
            model, info = train_run(spec, generator, backend=backend, threads=threads,
                                    on_checkpoint=on_checkpoint, on_step=on_step,
                                    progress=progress, sabotage=sabotage)
        if keep_weights in ("final", "all"):
            model.save_pretrained(Path(out_dir) / "models" / spec.name)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    emit({"kind": "run", "run": spec.name, "wall_s": info["wall_s"], "eval_s": eval_s[0],
          "train_s": info["wall_s"] - eval_s[0],
          "tokens_per_s": spec.tokens / max(info["wall_s"] - eval_s[0], 1e-9),
          "final_train_loss": info["losses"][-1] if info["losses"] else None,
          **({"corrupted_blocks": info["corrupted_blocks"]} if "corrupted_blocks" in info
             else {})})


def _worker_main(specs, gen_kwargs, backend, keep_weights, out_dir, progress, queue, active,
                 cores, sabotages=None):
    """Entry point of a spawned worker: 1 thread, more once the other workers are done."""
    try:
        import torch

        torch.set_num_threads(1)
        current = [1]

        def on_step(step):
            want = max(1, cores // max(1, active.value))
            if want != current[0]:
                torch.set_num_threads(want)
                current[0] = want

        generator = TaskGenerator(**gen_kwargs)
        for spec in specs:
            _train_and_evaluate(spec, generator, backend=backend, threads=None, on_step=on_step,
                                keep_weights=keep_weights, out_dir=out_dir, progress=progress,
                                emit=queue.put, sabotage=(sabotages or {}).get(spec.name))
    except BaseException:  # reported to the parent, which raises
        queue.put({"kind": "error", "traceback": traceback.format_exc()})
    finally:
        with active.get_lock():
            active.value -= 1
        queue.put({"kind": "done"})


def _run_all(specs, gen_kwargs, *, workers, threads, backend, keep_weights, out_dir, progress,
             sabotages=None, on_message=None):
    """Train and evaluate every run; returns the list of emitted messages.

    ``sabotages`` maps run names to the :class:`~cod_monitor.demo.sabotage.Sabotage` to
    inject; ``on_message(message, messages)`` is called in this process as each message
    arrives (a run's checkpoints all arrive before its ``'run'`` message)."""
    messages: list[dict] = []

    def receive(msg):
        messages.append(msg)
        if on_message is not None:
            on_message(msg, messages)

    if workers <= 1:
        generator = TaskGenerator(**gen_kwargs)
        for spec in sorted(specs, key=lambda s: s.params * s.tokens):
            _train_and_evaluate(spec, generator, backend=backend, threads=threads, on_step=None,
                                keep_weights=keep_weights, out_dir=out_dir, progress=progress,
                                emit=receive, sabotage=(sabotages or {}).get(spec.name))
        return messages
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    groups = _partition(specs, workers)
    queue = ctx.Queue()
    active = ctx.Value("i", len(groups))
    cores = max(threads or 0, len(groups))
    # spawned workers inherit the environment: 1 thread each; and passive OpenMP waits,
    # because a worker whose partner finished goes to 2 threads, and with busy-waiting
    # a 2-thread step is many times slower whenever anything else holds a core
    saved = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        procs = [
            ctx.Process(target=_worker_main, args=(g, gen_kwargs, backend, keep_weights,
                                                    str(out_dir), progress, queue, active, cores,
                                                    dict(sabotages or {})),
                        daemon=True)
            for g in groups
        ]
        for p in procs:
            p.start()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    done, errors = 0, []
    while done < len(procs):
        msg = queue.get()
        if msg["kind"] == "done":
            done += 1
        elif msg["kind"] == "error":
            errors.append(msg["traceback"])
        else:
            receive(msg)
    for p in procs:
        p.join()
    if errors:
        raise RuntimeError("a demo build worker failed:\n" + "\n".join(errors))
    return messages


# ----------------------------------------------------------------------------- build


def _checkpoint_columns(specs, messages, generator, *, score_decimals):
    """One ModelInfo and one column of pass rates per evaluated checkpoint, by compute."""
    by_run = {s.name: s for s in specs}
    ckpts = [m for m in messages if m["kind"] == "checkpoint"]
    sample_ids = [sid for sid, _ in generator.eval_samples]
    models, columns = [], []
    for m in ckpts:
        spec = by_run[m["run"]]
        if m["sample_ids"] != sample_ids:
            raise RuntimeError(f"sample order of {m['run']} step {m['step']} differs")
        models.append(ModelInfo(
            name=f"{spec.name}-s{m['step']:04d}",
            params=spec.params,
            tokens=float(m["step"] * spec.tokens_per_step),
            compute=spec.compute_at(m["step"]),
            step=m["step"],
            role=spec.role,
            run=spec.name,
            loss=round(float(m["loss"]), 6),
            learning_rate=spec.learning_rate,
            lr_schedule=LR_SCHEDULE,
        ))
        columns.append(np.round(np.asarray(m["pass_rates"], dtype=float), score_decimals))
    return models, columns, sample_ids


def _ladder_from_columns(models, columns, sample_ids, compute_unit) -> Ladder:
    order = sorted(range(len(models)), key=lambda j: (models[j].compute, models[j].name))
    models = [models[j] for j in order]
    X = np.clip(np.stack([columns[j] for j in order], axis=1), 0.0, 1.0)
    ids = np.array(sample_ids, dtype=object)
    matrices = {name: PassRateMatrix(name, ids[mask], models, X[mask])
                for name, mask in benchmark_masks(sample_ids).items()}
    settings = demo_eval_settings()
    return Ladder(models, matrices, compute_unit=compute_unit,
                  eval_settings=dict.fromkeys(matrices, settings))


def demo_eval_settings() -> EvalSettings:
    """The evaluation settings of every demo benchmark: its evaluation sets' stop marker
    (:data:`~cod_monitor.demo.tasks.STOP`) and ``'exact'`` scorer, and the evaluator of
    :data:`~cod_monitor.demo.recipe.EVALUATOR` with its defaults filled in.

    Examples
    --------
    >>> demo_eval_settings()
    EvalSettings(stop='\\n', scorer='exact', mode='exact', temperature=1.0, top_p=0.7)
    """
    return EvalSettings(stop=STOP, scorer="exact", **evaluator_settings(EVALUATOR))


def benchmark_masks(sample_ids) -> dict[str, np.ndarray]:
    """Benchmark -> its rows of ``sample_ids``: the benchmarks of
    :data:`~cod_monitor.demo.tasks.BENCHMARK_FAMILIES` present, then one per family."""
    families = np.array([parse_sample_id(s)[0] for s in sample_ids])
    masks = {name: np.isin(families, fams) for name, fams in BENCHMARK_FAMILIES.items()}
    masks = {name: m for name, m in masks.items() if m.any()}
    masks.update({f: families == f for f in dict.fromkeys(families.tolist())})
    return masks


def _assemble(specs, messages, generator, *, score_decimals, compute_unit) -> Ladder:
    models, columns, sample_ids = _checkpoint_columns(specs, messages, generator,
                                                      score_decimals=score_decimals)
    return _ladder_from_columns(models, columns, sample_ids, compute_unit)


def _whole_set(ladder: Ladder, generator: TaskGenerator) -> PassRateMatrix | None:
    """Every evaluation sample of ``generator`` on the ladder's models, in the generator's
    order (from the per-family benchmarks); ``None`` when the ladder lacks one."""
    roles = sorted({m.role for m in ladder.models})
    rows: dict[str, np.ndarray] = {}
    models = None
    for family in dict.fromkeys(parse_sample_id(sid)[0] for sid, _ in generator.eval_samples):
        if family not in ladder.benchmarks:
            return None
        m = ladder.matrix(family, roles=roles)
        models = m.models
        rows.update(zip(m.sample_ids, m.pass_rates))
    ids = [sid for sid, _ in generator.eval_samples]
    if models is None or set(rows) != set(ids):
        return None
    return PassRateMatrix("all", np.array(ids, dtype=object), models,
                          np.stack([rows[i] for i in ids]))


def add_runs(
    ladder: Ladder,
    specs: list[RunSpec],
    *,
    seed: int = 0,
    eval_size: int = 1200,
    workers: int = 2,
    threads: int = 2,
    backend: Literal["trainer", "loop"] = "trainer",
    score_decimals: int = 4,
    progress: bool = True,
    sabotage: Mapping[str, Sabotage] | None = None,
    on_run: Callable[[Ladder, dict], None] | None = None,
) -> Ladder:
    """Train more runs, evaluate them like the demo ladder's, and add them to it.

    For runs that are not part of the recipe's ladder, e.g. the anchors of
    :func:`~cod_monitor.demo.recipe.anchor_specs` or variants of the target (other seeds,
    another learning rate, injected faults), without rebuilding the rest. Each new
    checkpoint records its run's ``learning_rate`` and the recipe's ``lr_schedule``.

    Parameters
    ----------
    ladder : Ladder
        A demo ladder (e.g. ``Ladder.load(SHIPPED_LADDER)``); its benchmarks must be the
        families of the evaluation set that `seed` and `eval_size` rebuild.
    specs : list of RunSpec
        Runs to train; their names must be new to `ladder`.
    seed, eval_size : int
        The evaluation set's generator settings: those in the ladder's ``build.json``.
    workers, threads, backend, score_decimals, progress
        As in :func:`build_demo_ladder` (no weights are kept).
    sabotage : mapping of str to Sabotage, optional
        Run name -> the fault to inject into that run (:mod:`cod_monitor.demo.sabotage`).
    on_run : callable, optional
        ``on_run(ladder_so_far, run_info)`` in this process each time a run finishes:
        `ladder` plus the checkpoints of every run finished so far, and that run's
        ``run`` message (``run``, ``wall_s``, ``train_s``, ``eval_s``,
        ``tokens_per_s``, ``final_train_loss``); e.g. to save partial results.

    Returns
    -------
    Ladder
        `ladder` plus one model per evaluated checkpoint of `specs`.

    Raises
    ------
    ParameterError
        A run name already in `ladder`, a sabotage naming no run of `specs`, or an
        evaluation set that differs from the ladder's (other sample ids).
    """
    taken = {m.run_key for m in ladder.models}
    clash = sorted(s.name for s in specs if s.name in taken)
    if clash:
        raise invalid("add_runs", "specs", "runs whose names are new to the ladder",
                      [s.name for s in specs],
                      f"Runs {clash} are already in the ladder; give the new runs other names.")
    sabotage = dict(sabotage or {})
    unknown = sorted(set(sabotage) - {s.name for s in specs})
    if unknown:
        raise invalid("add_runs", "sabotage", "a mapping from names of runs in specs to "
                      "Sabotage", unknown, "Key every sabotage by the name of a run to train.")
    gen_kwargs = {"seed": seed, "eval_size": eval_size}
    generator = TaskGenerator(**gen_kwargs)
    demo = _whole_set(ladder, generator)
    if demo is None:
        raise invalid(
            "add_runs", "seed", "the seed of the ladder's evaluation set", seed,
            f"The evaluation set of seed={seed}, eval_size={eval_size} is not the ladder's; "
            "pass the 'generator' settings recorded in the ladder's build.json.",
        )

    def with_runs(messages) -> Ladder:
        models, columns, sample_ids = _checkpoint_columns(specs, messages, generator,
                                                          score_decimals=score_decimals)
        models = list(demo.models) + models
        columns = [demo.pass_rates[:, j] for j in range(len(demo.models))] + columns
        return _ladder_from_columns(models, columns, sample_ids, ladder.compute_unit)

    def on_message(msg, messages):
        if on_run is None or msg["kind"] != "run":
            return
        done = {m["run"] for m in messages if m["kind"] == "run"}
        on_run(with_runs([m for m in messages if m["run"] in done]), msg)

    messages = _run_all(specs, gen_kwargs, workers=workers, threads=threads, backend=backend,
                        keep_weights="none", out_dir=None, progress=progress,
                        sabotages=sabotage, on_message=on_message)
    return with_runs(messages)


def _variant_bases(specs: list[RunSpec], seeds: int,
                   target_seeds: int = 1) -> list[tuple[RunSpec, str]]:
    out = []
    for k in range(1, max(seeds, target_seeds)):
        for spec in specs:
            if (spec.role == "ladder" and k < seeds) or (spec.role == "target"
                                                          and k < target_seeds):
                variant = replace(spec, name=f"{spec.name}-seed{k}",
                                  data_seed=spec.data_seed + 10 * k, init_seed=spec.init_seed + k)
                out.append((variant, spec.name))
    return out


def seed_variants(specs: list[RunSpec], seeds: int) -> list[RunSpec]:
    """The extra training runs of each ladder spec: seeds ``1 .. seeds - 1``.

    Variant k of run ``X`` is named ``X-seed<k>`` and differs from ``X`` only in its
    data seed (``+ 10 k``) and initialisation seed (``+ k``).

    Why: which rare facts a tiny model memorises depends on its seeds, so a single
    run's per-sample pass rates mix the sample's difficulty with the run's luck
    (:func:`cod_monitor.difficulty_reversals` counts it); the mean over seeds keeps the
    difficulty (``benchmarks/bench_demo_seeds.py``).
    """
    return [variant for variant, _ in _variant_bases(specs, seeds)]


def _seed_spread(group: list[dict]) -> dict:
    """Standard deviation across the seeds of a checkpoint's mean accuracy, per benchmark
    (``demo`` and every family)."""
    rates = np.array([g["pass_rates"] for g in group], dtype=float)  # seeds x samples
    masks = benchmark_masks(group[0]["sample_ids"])
    return {b: round(float(np.std(rates[:, m].mean(axis=1), ddof=1)), 6)
            for b, m in masks.items()}


def _average_seeds(messages: list[dict], base_of: dict[str, str]) -> list[dict]:
    """Checkpoint messages of seed variants merged into their base run's (mean rates, loss,
    and the seeds' spread of accuracy per benchmark)."""
    if not base_of:
        return messages
    groups: dict[tuple, list[dict]] = {}
    out = []
    for m in messages:
        if m["kind"] != "checkpoint":
            out.append(m)
            continue
        groups.setdefault((base_of.get(m["run"], m["run"]), m["step"]), []).append(m)
    for (run, step), group in groups.items():
        if any(g["sample_ids"] != group[0]["sample_ids"] for g in group):
            raise RuntimeError(f"sample order differs between the seeds of {run} step {step}")
        out.append({**group[0], "run": run,
                    "pass_rates": np.mean([g["pass_rates"] for g in group], axis=0).tolist(),
                    "loss": float(np.mean([g["loss"] for g in group])),
                    "n_seeds": len(group),
                    **({"seed_sd": _seed_spread(group)} if len(group) > 1 else {})})
    return out


def _final_seed_spread(messages: list[dict]) -> dict:
    """Run -> the seeds' spread of accuracy per benchmark at its final checkpoint."""
    finals: dict[str, dict] = {}
    for m in messages:
        if m["kind"] == "checkpoint" and "seed_sd" in m:
            if m["run"] not in finals or m["step"] > finals[m["run"]]["step"]:
                finals[m["run"]] = m
    return {run: m["seed_sd"] for run, m in finals.items()}


def build_demo_ladder(
    out_dir,
    *,
    specs: list[RunSpec] | None = None,
    seed: int = 0,
    eval_size: int = 1200,
    workers: int = 2,
    threads: int = 2,
    backend: Literal["trainer", "loop"] = "trainer",
    keep_weights: Literal["final", "all", "none"] = "final",
    score_decimals: int = 4,
    compute_unit: float = DEMO_COMPUTE_UNIT,
    progress: bool = True,
    command: str | None = None,
    seeds: int = LADDER_SEEDS,
    target_seeds: int = TARGET_SEEDS,
    families: Sequence[str] | None = None,
    train_weights: Mapping[str, float] | None = None,
) -> BuildResult:
    """Train the demo ladder and its target, evaluate every checkpoint, save.

    Parameters
    ----------
    out_dir : path
        Output directory (created); see the module docstring for its layout.
    specs : list of RunSpec, optional
        Runs to train; default :func:`~cod_monitor.demo.recipe.ladder_specs` plus
        :func:`~cod_monitor.demo.recipe.target_spec`. At least three ladder runs.
    seed : int, default 0
        Seed of the evaluation set (and of the training stream's mixing).
    eval_size : int, default 1200
        Requested evaluation samples (levels are capped at half their instances, so a
        few less may result).
    workers : int, default 2
        Worker processes (1 thread each; ``1`` trains in this process with
        ``threads`` threads).
    threads : int, default 2
        Cores to use in all.
    backend : {'trainer', 'loop'}, default 'trainer'
    keep_weights : {'final', 'all', 'none'}, default 'final'
    score_decimals : int, default 4
        Pass rates are rounded to this many decimals.
    compute_unit : float, default 1e10
        Written into ``ladder.json`` (see :data:`DEMO_COMPUTE_UNIT`).
    progress : bool, default True
        Progress lines on stderr.
    command : str, optional
        The command line to record in ``build.json``.
    seeds : int, default LADDER_SEEDS
        Training runs per ladder size, each with other data and initialisation seeds
        (see :func:`seed_variants`); a ladder checkpoint's pass rates and loss are the
        mean over them. Anchors are trained once.
    target_seeds : int, default TARGET_SEEDS
        Training runs of each target, averaged the same way: the target's pass rates
        are the mean over its seeds, the truth a forecast is judged against, and
        ``build.json`` gives their spread (``final_seed_sd``).
    families, train_weights : optional
        :class:`~cod_monitor.demo.tasks.TaskGenerator`'s task mix (default: the demo's);
        recorded in ``build.json`` with the rest of the generator's settings.

    Returns
    -------
    BuildResult

    Raises
    ------
    ParameterError
        `seeds` or `target_seeds` below 1, or an unknown `keep_weights`.
    """
    check_int("build_demo_ladder", "seeds", seeds, 1)
    check_int("build_demo_ladder", "target_seeds", target_seeds, 1)
    check_choice("build_demo_ladder", "keep_weights", keep_weights, ("final", "all", "none"))
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    specs = list(specs) if specs is not None else [*ladder_specs(), target_spec()]
    gen_kwargs = {"seed": seed, "eval_size": eval_size}
    if families is not None:
        gen_kwargs["families"] = list(families)
    if train_weights is not None:
        gen_kwargs["train_weights"] = dict(train_weights)
    generator = TaskGenerator(**gen_kwargs)
    generator.write_eval_jsonl(out_dir / "eval.jsonl")
    from cod_monitor.demo.tokenizer import save_tokenizer

    save_tokenizer(out_dir / "tokenizer")
    pairs = _variant_bases(specs, seeds, target_seeds)
    variants = [variant for variant, _ in pairs]
    messages = _run_all(specs + variants, gen_kwargs, workers=workers, threads=threads,
                        backend=backend, keep_weights=keep_weights, out_dir=out_dir,
                        progress=progress)
    messages = _average_seeds(messages, {variant.name: base for variant, base in pairs})
    ladder = _assemble(specs, messages, generator, score_decimals=score_decimals,
                       compute_unit=compute_unit)
    path = ladder.save(out_dir / "ladder", compress=True)
    wall = time.perf_counter() - t0
    runs = {m["run"]: m for m in messages if m["kind"] == "run"}
    final_acc = final_accuracy(ladder)
    seed_sd = _final_seed_spread(messages)
    summary = {
        "command": command,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "wall_s": wall,
        "machine": {"platform": platform.platform(), "python": sys.version.split()[0],
                    "cpus": os.cpu_count(), "workers": workers, "threads": threads},
        "versions": _versions(),
        "seed": seed,
        "seeds_per_ladder_size": seeds,
        "seeds_per_target": target_seeds,
        "seed_runs": [
            {**v.to_dict(), **{k: runs.get(v.name, {}).get(k) for k in
                               ("wall_s", "train_s", "eval_s", "tokens_per_s")}}
            for v in variants
        ],
        # what rebuilds the evaluation set and scores a checkpoint as the ladder was
        # scored (the live demo reads both)
        "generator": gen_kwargs,
        "evaluator": dict(EVALUATOR),
        "n_eval_samples": len(generator.eval_samples),
        "backend": backend,
        "compute_unit": compute_unit,
        "runs": [
            {**s.to_dict(), **{k: runs.get(s.name, {}).get(k) for k in
                               ("wall_s", "train_s", "eval_s", "tokens_per_s")},
             "final_accuracy": final_acc.get(s.name),
             # how much one run's final accuracy varies with its seeds (the live demo adds
             # it to the forecast band: a monitored run is one seed, the ladder a mean)
             **({"final_seed_sd": seed_sd[s.name]} if s.name in seed_sd else {})}
            for s in sorted(specs, key=lambda s: s.compute)
        ],
        "scores_bytes": (path / "scores.csv.gz").stat().st_size,
    }
    report = ladder_report(ladder)
    atomic_write(out_dir / "build.json", json.dumps(to_jsonable(summary), indent=2))
    (out_dir / "report.txt").write_text(report)
    plot_curves(ladder, out_dir / "curves.png")
    if progress:
        sys.stderr.write(report + f"\nbuilt {path} in {wall:.0f}s\n")
    return BuildResult(ladder=ladder, path=path, summary=summary, report=report)


def _versions() -> dict:
    out = {}
    for mod in ("torch", "transformers", "numpy"):
        try:
            out[mod] = __import__(mod).__version__
        except ImportError:  # pragma: no cover
            out[mod] = None
    return out
