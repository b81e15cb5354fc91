"""Import lm-evaluation-harness ``--log_samples`` output as a ladder.

lm-eval writes one ``samples_<task>_<timestamp>.jsonl`` file per task and model run;
:func:`import_lm_eval_samples` reads each model's files, takes one metric per record
and builds a validated :class:`~cod_monitor.ladder.Ladder` with one benchmark per task.
The generation arguments the records log (``until``, ``do_sample``, ``temperature``,
``top_p``, ``max_gen_toks``) become the benchmark's evaluation settings, as far as they
tell them (:func:`settings_of_generation_kwargs`).
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path

from cod_monitor.exceptions import LadderValidationError
from cod_monitor.ladder.importers import SCORE_FIELDS, coerce_models, read_jsonl, read_text
from cod_monitor.ladder.ladder import Ladder
from cod_monitor.ladder.model import DEFAULT_COMPUTE_UNIT
from cod_monitor.ladder.settings import UNKNOWN, EvalSettings, settings_by_benchmark

logger = logging.getLogger(__name__)

__all__ = ["import_lm_eval_samples", "LM_EVAL_DEFAULT_METRICS", "settings_of_generation_kwargs"]

#: Metrics tried, in order, when an lm-eval record does not list its metrics.
LM_EVAL_DEFAULT_METRICS = ("exact_match", "acc", "pass@1")

# lm-eval names files samples_<task>_<datetime.now().isoformat() with ':' -> '-'>.jsonl
_LM_EVAL_FILE = re.compile(
    r"^samples_(?P<task>.+)_(?P<stamp>\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}(?:\.\d+)?)"
    r"\.jsonl?(?:\.gz)?$"
)


def import_lm_eval_samples(
    paths: Mapping[str, str | PathLike | Sequence[str | PathLike]],
    models,
    *,
    metric: str | None = None,
    filter_name: str | None = None,
    compute_unit: float = DEFAULT_COMPUTE_UNIT,
    benchmark_names: Mapping[str, str] | None = None,
    drop_incomplete: bool = False,
    eval_settings=None,
) -> Ladder:
    """Build a ladder from lm-evaluation-harness ``--log_samples`` output.

    lm-eval writes, per model and task, ``samples_<task>_<timestamp>.jsonl``
    (timestamp like ``2024-05-01T12-00-00.123456``) with one JSON object per
    document and filter: ``doc_id``, ``doc``, ``target``, ``arguments``, ``resps``,
    ``filtered_resps``, ``filter``, ``metrics`` (the metric names) and each metric's
    value at the top level (e.g. ``"exact_match": 1.0``, ``"acc": 0.0``).

    Parameters
    ----------
    paths : mapping of str to path or list of paths
        Model name -> that model's samples files. A directory stands for every
        ``samples_*.jsonl`` (or ``.json``, optionally ``.gz``) directly inside it.
    models : sequence of ModelInfo, or path
        Model metadata (a path is read with :func:`read_models_table`); only the
        models named in ``paths`` are kept. lm-eval logs carry no training recipe:
        give each model's ``learning_rate`` and ``lr_schedule`` here (columns of the
        models table), as for any import.
    metric : str, optional
        The per-sample metric to read. Default: per task, the first entry of the
        first record's ``metrics`` list, else the first of ``exact_match``, ``acc``,
        ``pass@1`` present in the record.
    filter_name : str, optional
        The filter whose records to read when a task logs several (lm-eval writes
        one record per document *and filter*, e.g. ``strict-match`` and
        ``flexible-extract`` for GSM8K). Default: per task, the first filter seen in
        the first file read.
    compute_unit : float, default 1e18
        FLOPs per compute unit.
    benchmark_names : mapping of str to str, optional
        Task name -> benchmark name; other tasks keep their task name.
    drop_incomplete : bool, default False
        Drop documents missing for some model (with a warning) instead of raising.
    eval_settings : EvalSettings, dict or mapping of str to those, optional
        Settings the logs do not tell (e.g. the scorer), one object for every
        benchmark or one per benchmark (see
        :func:`~cod_monitor.ladder.settings.settings_by_benchmark`); they fill the
        fields the logs leave unknown.

    Returns
    -------
    Ladder
        One benchmark per task; ``sample_id`` is ``str(doc_id)``. Each benchmark
        records the evaluation settings its records' generation arguments tell
        (:func:`settings_of_generation_kwargs`), merged with `eval_settings`.

    Raises
    ------
    LadderValidationError
        A missing path, a file whose name does not give a task, malformed JSON,
        a record without ``doc_id`` or without the metric, a metric value that is
        not a number in [0, 1] (or a list of them), an unknown filter, a model
        absent from ``models``, a setting of `eval_settings` that contradicts the
        logs, and every check of :meth:`Ladder.from_columns`.

    Notes
    -----
    The score of a document is the mean of its metric values. Several values arise
    when the metric is a list (one value per repeat) or when the same document
    appears in several files of the same model and task (e.g. runs with different
    seeds): all are pooled. When every value is 0 or 1, ``n_samples`` and
    ``n_correct`` are set to the number of values and of ones, so pass@k can be
    computed later.

    Examples
    --------
    >>> ladder = import_lm_eval_samples(  # doctest: +SKIP
    ...     {"pythia-70m": "out/pythia-70m", "pythia-160m": "out/pythia-160m",
    ...      "pythia-410m": "out/pythia-410m"},
    ...     "models.csv",
    ...     metric="exact_match",
    ...     filter_name="strict-match",
    ... )
    """
    models = coerce_models(models)
    by_name = {m.name: m for m in models}
    names = dict(benchmark_names or {})
    if not paths:
        raise LadderValidationError("paths", {}, "Give at least one model's samples files.")
    # values[(benchmark, doc_id, model)] -> list of per-repeat metric values
    values: dict[tuple[str, str, str], list[float]] = {}
    metric_of: dict[str, str] = {}
    filter_of: dict[str, str | None] = {}
    # seen[benchmark][setting] -> the distinct values the records tell
    seen: dict[str, dict[str, list]] = {}
    for model_name, spec in paths.items():
        if model_name not in by_name:
            raise LadderValidationError(
                "model", model_name, "Add this model to the models table (or fix its name). "
                f"Known models: {', '.join(map(repr, list(by_name)[:8]))}"
                f"{', ...' if len(by_name) > 8 else ''}.",
            )
        for file in _lm_eval_files(spec, model_name):
            task = _task_of(file)
            bench = names.get(task, task)
            _read_lm_eval_file(file, bench, model_name, metric, filter_name,
                               metric_of, filter_of, values, seen.setdefault(bench, {}))
    for bench in filter_of:
        logger.info("lm-eval task %s: metric %r, filter %r", bench, metric_of[bench],
                    filter_of[bench])

    n = len(values)
    cols: dict[str, list] = {k: [None] * n for k in SCORE_FIELDS}
    for i, ((bench, doc, model_name), vals) in enumerate(values.items()):
        cols["benchmark"][i] = bench
        cols["sample_id"][i] = doc
        cols["model"][i] = model_name
        cols["score"][i] = math.fsum(vals) / len(vals)
        if all(v == 0 or v == 1 for v in vals):
            cols["n_samples"][i] = len(vals)
            cols["n_correct"][i] = int(sum(vals))
    used = [by_name[name] for name in paths]
    ladder = Ladder.from_columns(
        used, cols, compute_unit=compute_unit, drop_incomplete=drop_incomplete,
        source="lm-eval samples",
    )
    given = settings_by_benchmark(eval_settings, ladder.benchmarks)
    settings = {}
    for bench in ladder.benchmarks:
        found = _agreed_settings(bench, seen.get(bench, {}))
        if bench in given:
            found = found.merge(given[bench], where=f"eval_settings[{bench!r}] (the lm-eval "
                                "records of this task tell another value)")
        settings[bench] = found
    return ladder.with_eval_settings(settings)


def settings_of_generation_kwargs(gen_kwargs: Mapping) -> dict:
    """The evaluation settings an lm-eval ``generate_until`` request's arguments tell.

    Only what the arguments fix whatever the model backend is recorded; the rest stays
    unknown (left out).

    Parameters
    ----------
    gen_kwargs : mapping
        The request's generation arguments as lm-eval logs them (``until``,
        ``do_sample``, ``temperature``, ``top_p``, ``max_gen_toks``, ...).

    Returns
    -------
    dict
        ``mode`` is ``'sampled'`` (completions are generated and scored); ``stop`` is the
        one ``until`` string (``None`` for an empty ``until``: end-of-sequence only;
        several strings cannot be one stop marker and leave it unknown); ``temperature`` is 0.0 for greedy decoding
        (``do_sample: false`` without a temperature, or ``temperature: 0``), the given
        temperature with ``do_sample: true`` (without it, HF decodes greedily and vLLM
        samples); ``top_p`` with ``do_sample: true``; ``max_new_tokens`` from
        ``max_gen_toks``.

    Examples
    --------
    >>> settings_of_generation_kwargs({"until": ["Question:"], "do_sample": False})
    {'mode': 'sampled', 'stop': 'Question:', 'temperature': 0.0}
    """
    out: dict = {"mode": "sampled"}
    stop = _stop_of(gen_kwargs)
    if stop is not UNKNOWN and stop is not _SEVERAL:
        out["stop"] = stop
    do_sample = gen_kwargs.get("do_sample")
    temperature = gen_kwargs.get("temperature")
    if _is_number(temperature) and float(temperature) == 0.0:
        out["temperature"] = 0.0
    elif do_sample is False and temperature is None:
        out["temperature"] = 0.0
    elif do_sample is True and _is_number(temperature):
        out["temperature"] = float(temperature)
    if do_sample is True and _is_number(gen_kwargs.get("top_p")):
        out["top_p"] = float(gen_kwargs["top_p"])
    max_gen = gen_kwargs.get("max_gen_toks")
    if _is_number(max_gen) and float(max_gen) == int(max_gen) and max_gen >= 1:
        out["max_new_tokens"] = int(max_gen)
    return out


#: The stop of a request with several ``until`` strings: no one stop marker.
_SEVERAL = object()


def _stop_of(gen_kwargs: Mapping):
    """The one ``until`` string, ``None`` (end-of-sequence only), ``_SEVERAL`` or UNKNOWN."""
    until = gen_kwargs.get("until")
    if isinstance(until, str):
        until = [until]
    if not isinstance(until, list) or not all(isinstance(u, str) for u in until):
        return UNKNOWN
    until = [u for u in until if u]
    if not until:
        return None
    return until[0] if len(until) == 1 else _SEVERAL


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _generation_kwargs(rec) -> Mapping | None:
    """The generation arguments of a record's first request, or ``None`` (a
    log-likelihood request, or a record that does not log its arguments)."""
    args = rec.get("arguments")
    first = None
    if isinstance(args, Mapping):  # lm-eval >= 0.4.3: {"gen_args_0": {"arg_0": ..., ...}}
        request = args.get("gen_args_0")
        if isinstance(request, Mapping):
            first = request.get("arg_1")
    elif isinstance(args, list) and args and isinstance(args[0], list) and len(args[0]) > 1:
        first = args[0][1]  # older lm-eval: [[context, gen_kwargs], ...]
    return first if isinstance(first, Mapping) else None


def _note_settings(rec, seen: dict) -> None:
    gen = _generation_kwargs(rec)
    if gen is None:
        seen["_loglikelihood"] = [True]
        return
    told = settings_of_generation_kwargs(gen)
    if _stop_of(gen) is _SEVERAL:
        told["stop"] = _SEVERAL
    for name, value in told.items():
        values = seen.setdefault(name, [])
        if not any(v is value or v == value for v in values):
            values.append(value)


def _agreed_settings(bench: str, seen: dict) -> EvalSettings:
    """The settings every record of ``bench`` tells alike; the others stay unknown."""
    if "_loglikelihood" in seen:  # some requests are no generation: nothing is known
        return EvalSettings()
    values = {}
    for name, found in seen.items():
        if len(found) > 1:
            shown = ", ".join("several until strings" if v is _SEVERAL else repr(v)
                              for v in found)
            logger.warning(
                "lm-eval task %s: its records disagree on %s (%s); the ladder records no %s "
                "for it (give it with eval_settings= / --eval-settings if you know it)",
                bench, name, shown, name)
        elif found[0] is _SEVERAL:
            logger.warning(
                "lm-eval task %s stops at any of several 'until' strings, which one stop "
                "marker cannot express; the ladder records no stop marker for it", bench)
        else:
            values[name] = found[0]
    return EvalSettings(**values)


def _lm_eval_files(spec, model_name) -> list[Path]:
    specs = [spec] if isinstance(spec, (str, PathLike)) else list(spec)
    files = []
    for item in specs:
        p = Path(item)
        if p.is_dir():
            found = sorted(
                f for f in p.iterdir()
                if f.is_file() and f.name.startswith("samples_")
                and f.name.lower().removesuffix(".gz").endswith((".jsonl", ".json"))
            )
            if not found:
                raise LadderValidationError(
                    "paths", str(p), f"No samples_*.jsonl file in this directory (model "
                    f"{model_name!r}); run lm-eval with --log_samples or give the files.",
                )
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise LadderValidationError(
                "paths", str(p), f"Give existing samples files or directories (model "
                f"{model_name!r}).",
            )
    return files


def _task_of(file: Path) -> str:
    match = _LM_EVAL_FILE.match(file.name)
    if match:
        return match["task"]
    # lm-eval's own rule (utils.get_file_task_name): between the first and last "_"
    stem = file.name
    first, last = stem.find("_"), stem.rfind("_")
    if stem.startswith("samples_") and last > first:
        return stem[first + 1 : last]
    raise LadderValidationError(
        "file", file.name, "Name lm-eval samples files samples_<task>_<timestamp>.jsonl, as "
        "lm-eval writes them.",
    )


def _lm_eval_records(file: Path) -> list[tuple[int, dict]]:
    text = read_text(file).lstrip()
    if text.startswith("["):  # lm-eval 0.4.0-0.4.2 wrote a JSON list
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise LadderValidationError("file", str(file), f"Fix the JSON ({exc}).") from None
        return [(i + 1, r) for i, r in enumerate(data) if isinstance(r, dict)]
    return read_jsonl(file)


def _read_lm_eval_file(file, bench, model_name, metric, filter_name, metric_of, filter_of,
                       values, seen) -> None:
    records = _lm_eval_records(file)
    if not records:
        raise LadderValidationError("file", str(file), "The samples file has no records.")
    if bench not in filter_of:
        filter_of[bench] = filter_name if filter_name is not None else records[0][1].get("filter")
    chosen = filter_of[bench]
    seen_filters = dict.fromkeys(r.get("filter") for _, r in records)
    if chosen not in seen_filters:
        raise LadderValidationError(
            "filter", chosen, f"Choose one of the filters in this file: "
            f"{', '.join(map(repr, seen_filters))} (filter_name= / --filter).",
            where=str(file),
        )
    for line, rec in records:
        if rec.get("filter") != chosen:
            continue
        where = f"{file}:{line}"
        if bench not in metric_of:
            metric_of[bench] = metric or _default_metric(rec, where)
        name = metric_of[bench]
        if "doc_id" not in rec:
            raise LadderValidationError("doc_id", None, "Every record needs a doc_id.",
                                        where=where)
        if name not in rec:
            raise LadderValidationError(
                "metric", name, f"The record has no such metric; its metrics are "
                f"{rec.get('metrics')}. Choose one with metric= (--metric).", where=where,
            )
        vals = _metric_values(rec[name], name, where)
        key = (bench, str(rec["doc_id"]), model_name)
        values.setdefault(key, []).extend(vals)
        _note_settings(rec, seen)


def _default_metric(rec, where) -> str:
    listed = rec.get("metrics")
    if isinstance(listed, list) and listed and isinstance(listed[0], str):
        return listed[0]
    for name in LM_EVAL_DEFAULT_METRICS:
        if name in rec:
            return name
    raise LadderValidationError(
        "metric", None, f"The record lists no metrics and has none of "
        f"{', '.join(LM_EVAL_DEFAULT_METRICS)}; choose one with metric= (--metric).",
        where=where,
    )


def _metric_values(value, name, where) -> list[float]:
    items = value if isinstance(value, list) else [value]
    out = []
    for v in items:
        # bools are ints: exact_match may be logged as true/false
        if not isinstance(v, (int, float)) or not (0 <= float(v) <= 1):  # rejects NaN too
            raise LadderValidationError(
                name, value, "The metric must be a per-sample number in [0, 1] (or a list of "
                "them, one per repeat); choose another with metric= (--metric).", where=where,
            )
        out.append(float(v))
    if not out:
        raise LadderValidationError(name, value, "The metric has no value.", where=where)
    return out
