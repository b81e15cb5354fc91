"""Score a ladder's checkpoints as the monitor's workers score a run's.

:func:`score_ladder` evaluates every checkpoint of a ladder on every evaluation set with
:func:`~cod_monitor.runtime.worker.run_evaluation`, the job function of the monitor's
pool workers (the evaluator built from the same config dict by
:func:`~cod_monitor.evaluators.make_evaluator`, the sets read by
:func:`~cod_monitor.runtime.worker.load_eval_set`), and returns a
:class:`~cod_monitor.ladder.Ladder` that records those evaluation settings, so that a
monitor evaluating its run with the same sets and config passes the settings check at
start. ``cod-monitor ladder score`` is its command line.

Runs in the calling process, one checkpoint after another (the evaluator, and with it a
vLLM engine or a tokenizer cache, is built once and kept). Imports neither torch nor
transformers until the first evaluation.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence

from cod_monitor.evaluators.registry import make_evaluator
from cod_monitor.evaluators.settings import run_settings
from cod_monitor.exceptions import InputError, LadderValidationError
from cod_monitor.ladder import DEFAULT_COMPUTE_UNIT, Ladder, ModelInfo
from cod_monitor.runtime.worker import load_eval_set, run_evaluation

__all__ = ["score_ladder", "MIN_LADDER_MODELS"]

#: Models with role ``'ladder'`` a ladder needs (:meth:`Ladder.save` refuses fewer).
MIN_LADDER_MODELS = 3


def score_ladder(
    models: Sequence[ModelInfo],
    checkpoints: Mapping[str, str | os.PathLike],
    eval_sets: Mapping,
    evaluator: Mapping | None = None,
    *,
    compute_unit: float = DEFAULT_COMPUTE_UNIT,
    progress: Callable[[str], None] | None = None,
) -> Ladder:
    """Evaluate every ladder checkpoint on every evaluation set, as the monitor would.

    Parameters
    ----------
    models : sequence of ModelInfo
        The ladder's models (at least 3 with role ``'ladder'``).
    checkpoints : mapping of str to path
        Model name -> its checkpoint directory (``save_pretrained`` layout, or what the
        evaluator config's backend loads, e.g. a torch DCP directory).
    eval_sets : mapping of str to EvalSet, path or dict
        Benchmark name -> its evaluation set, as :class:`~cod_monitor.monitor.CODMonitor`
        takes them: an ``EvalSet``, a JSON-lines path, or ``{"path", "name", "scorer",
        "stop"}``.
    evaluator : mapping, optional
        The evaluator config, as the monitor takes it (default ``{"backend": "hf"}``;
        an HF config without ``device`` evaluates on ``COD_MONITOR_DEVICE`` or the
        CPU, as a pool worker does).
    compute_unit : float, default 1e18
        FLOPs per compute unit of the ladder.
    progress : callable, optional
        Called with one line per model scored (its accuracies and the time taken).

    Returns
    -------
    Ladder
        The models' per-sample pass rates (with ``n_samples``/``n_correct`` in
        ``sampled`` mode), and per benchmark the evaluation settings of its set and of
        the evaluator config, the evaluator's defaults filled in.

    Raises
    ------
    LadderValidationError
        A model without a checkpoint, a checkpoint that is not a directory, fewer than
        3 models with role ``'ladder'``, no evaluation set, a bad evaluation-set file.
    EvaluatorConfigError
        The config cannot build an evaluator.
    InputError
        An evaluation returned other sample ids than its set's.
    CheckpointError, MissingExtraError, ExactModeError
        As the evaluator raises them.

    Examples
    --------
    >>> ladder = score_ladder(models, {"m0": "ckpt/m0", ...},  # doctest: +SKIP
    ...                       {"gsm8k": {"path": "gsm8k.jsonl", "stop": "\\n"}},
    ...                       {"backend": "hf", "mode": "exact"})
    >>> ladder.eval_settings_for("gsm8k")  # doctest: +SKIP
    EvalSettings(stop='\\n', scorer='exact', mode='exact', temperature=1.0, top_p=0.7)
    """
    models = list(models)
    config = dict(evaluator) if evaluator is not None else {"backend": "hf"}
    # every check before the first evaluation: a mistake fails in seconds, not hours
    if not eval_sets:
        raise LadderValidationError("eval_sets", {}, "Give at least one evaluation set.")
    n_ladder = sum(m.role == "ladder" for m in models)
    if n_ladder < MIN_LADDER_MODELS:
        raise LadderValidationError(
            "role", f"{n_ladder} model(s) with role 'ladder'", f"A ladder needs at least "
            f"{MIN_LADDER_MODELS} models with role 'ladder'; add models or change roles.")
    paths = {}
    for m in models:
        path = checkpoints.get(m.name)
        if path is None:
            raise LadderValidationError(
                "path", None, "Give every model its checkpoint directory.",
                where=f"model {m.name!r}")
        if not os.path.isdir(path):
            raise LadderValidationError(
                "path", os.fspath(path), "Give the model's checkpoint directory (this path "
                f"is {'a file' if os.path.exists(path) else 'missing'}).",
                where=f"model {m.name!r}")
        paths[m.name] = os.fspath(path)
    make_evaluator(dict(config)).close()  # an unknown backend or key fails here
    sets = {bench: load_eval_set(spec) for bench, spec in eval_sets.items()}
    settings = {bench: run_settings(es, config) for bench, es in sets.items()}

    columns: dict[str, list] = {k: [] for k in ("benchmark", "sample_id", "model", "score",
                                                "n_samples", "n_correct")}
    t_start = time.perf_counter()
    for i, m in enumerate(models, 1):
        t0 = time.perf_counter()
        accuracies = []
        for bench, es in sets.items():
            result = run_evaluation(paths[m.name], es, config)
            if tuple(result.sample_ids) != tuple(es.ids):
                raise InputError(
                    f"The evaluation of model {m.name!r} on {bench!r} returned other sample ids "
                    f"than its set's ({len(result.sample_ids)} ids, the set {len(es)}); check "
                    "the evaluator backend.")
            counts = result.n_samples is not None and result.n_correct is not None
            n = len(es)
            columns["benchmark"] += [bench] * n
            columns["sample_id"] += list(es.ids)
            columns["model"] += [m.name] * n
            columns["score"] += [float(v) for v in result.pass_rates]
            columns["n_samples"] += ([int(v) for v in result.n_samples] if counts
                                     else [None] * n)
            columns["n_correct"] += ([int(v) for v in result.n_correct] if counts
                                     else [None] * n)
            accuracies.append(f"{bench} {float(result.pass_rates.mean()):.4f}")
        if progress is not None:
            now = time.perf_counter()
            progress(f"[{i}/{len(models)}] {m.name}: {', '.join(accuracies)} "
                     f"({now - t0:.1f} s; {now - t_start:.1f} s elapsed)")
    if all(v is None for v in columns["n_samples"]):  # exact mode: no counts
        del columns["n_samples"], columns["n_correct"]
    ladder = Ladder.from_columns(models, columns, compute_unit=compute_unit,
                                 source="ladder score")
    return ladder.with_eval_settings(settings)
