"""Importers: build a validated :class:`~cod_monitor.ladder.Ladder` from other formats.

- :func:`read_models_table`: model metadata from a CSV (with a column mapping) or a
  JSON list of ladder.json-style model objects; :func:`read_checkpoints_table`: the
  same with each model's checkpoint path (what ``cod-monitor ladder score`` scores).
- :func:`import_long_table`: a long table of per-sample scores, CSV (optionally
  gzipped) or JSON lines, with a column mapping.
- :func:`~cod_monitor.ladder.lm_eval.import_lm_eval_samples` (in
  :mod:`~cod_monitor.ladder.lm_eval`): lm-evaluation-harness ``--log_samples`` output.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path

from cod_monitor.exceptions import LadderValidationError
from cod_monitor.ladder.ladder import Ladder
from cod_monitor.ladder.model import COUNT_COLUMNS, DEFAULT_COMPUTE_UNIT, SCORE_COLUMNS, ModelInfo
from cod_monitor.ladder.settings import settings_by_benchmark

__all__ = [
    "read_checkpoints_table",
    "read_models_table",
    "import_long_table",
    "MODEL_FIELDS",
    "SCORE_FIELDS",
]

logger = logging.getLogger(__name__)

#: Fields of a model, as accepted in a models table (``name``, ``params`` and
#: ``tokens`` are required; ``compute`` defaults to 6 * params * tokens).
MODEL_FIELDS = ("name", "params", "tokens", "compute", "step", "role", "run", "loss",
                "learning_rate", "lr_schedule")
#: Fields of a long score table (``score`` may be derived from the two counts).
SCORE_FIELDS = SCORE_COLUMNS + COUNT_COLUMNS


# ----------------------------------------------------------------------- helpers


def _existing_file(path, field: str) -> Path:
    path = Path(path)
    if not path.is_file():
        what = "a directory" if path.is_dir() else "missing"
        raise LadderValidationError(
            field, str(path), f"Give an existing file (this path is {what})."
        )
    return path


def read_text(path: Path) -> str:
    """The file's text; gunzipped when the name ends in ``.gz``."""
    try:
        raw = path.read_bytes()
        if path.name.endswith(".gz"):
            raw = gzip.decompress(raw)
        return raw.decode("utf-8-sig")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise LadderValidationError(
            "file", str(path), f"Give a readable UTF-8 text file, gzipped only if its name "
            f"ends in .gz ({exc}).",
        ) from None


def _read_csv(path: Path) -> tuple[list[str], list[list[str]], list[int]]:
    """Header, rows and the line number of each row (blank lines skipped)."""
    text = read_text(path)
    try:
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, None)
        rows, lines = [], []
        for row in reader:
            if row:
                rows.append(row)
                lines.append(reader.line_num)
    except csv.Error as exc:
        raise LadderValidationError("file", str(path), f"Fix the CSV syntax ({exc}).") from None
    if not header:
        raise LadderValidationError("header", None, "Start the file with a header row.",
                                    where=str(path))
    header = [h.strip() for h in header]
    for row, line in zip(rows, lines):
        if len(row) != len(header):
            raise LadderValidationError(
                "row", row, f"Every row needs {len(header)} fields, like the header.",
                where=f"{path}:{line}",
            )
    return header, rows, lines


def read_jsonl(path: Path) -> list[tuple[int, dict]]:
    """``(line number, object)`` for every non-blank line."""
    out = []
    for line_no, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise LadderValidationError(
                "line", line[:80], f"Every line must be one JSON object ({exc.msg}).",
                where=f"{path}:{line_no}",
            ) from None
        if not isinstance(obj, dict):
            raise LadderValidationError(
                "line", line[:80], "Every line must be one JSON object.", where=f"{path}:{line_no}"
            )
        out.append((line_no, obj))
    return out


def _is_jsonl(path: Path) -> bool:
    name = path.name.lower().removesuffix(".gz")
    return name.endswith((".jsonl", ".ndjson"))


def _check_mapping(columns: Mapping[str, str] | None, allowed: Sequence[str]) -> dict:
    columns = dict(columns or {})
    for ours, theirs in columns.items():
        if ours not in allowed:
            raise LadderValidationError(
                "columns", f"{ours}={theirs}", f"Map one of our fields "
                f"({', '.join(allowed)}) to a column of the file.",
            )
        if not isinstance(theirs, str) or not theirs:
            raise LadderValidationError(
                "columns", f"{ours}={theirs}", "Name the file's column as a non-empty string."
            )
    return columns


def _resolve_columns(header, columns: dict, allowed, path) -> dict[str, int]:
    """Our field -> column index, for mapped fields and same-named columns."""
    found = {}
    for ours in allowed:
        theirs = columns.get(ours, ours)
        if theirs in header:
            found[ours] = header.index(theirs)
        elif ours in columns:
            raise LadderValidationError(
                "columns", f"{ours}={theirs}", f"The file has no column {theirs!r}; its "
                f"columns are {', '.join(map(repr, header))}.", where=str(path),
            )
    return found


# ------------------------------------------------------------------------ models


def read_models_table(
    path,
    *,
    columns: Mapping[str, str] | None = None,
    roles: Mapping[str, str] | None = None,
) -> list[ModelInfo]:
    """Read model metadata from a CSV table or a JSON list.

    Parameters
    ----------
    path : str or path-like
        A CSV file (optionally ``.gz``) with one row per model, or a ``.json`` file
        holding a list of model objects (or a ladder.json-style object with a
        ``"models"`` list).
    columns : mapping of str to str, optional
        Our field -> the file's column (or JSON key), e.g.
        ``{"name": "model", "params": "params_total", "compute": "compute_6ND"}``.
        Unmapped fields are read from same-named columns when present. Fields:
        ``name``, ``params``, ``tokens`` (required); ``compute``, ``step``, ``role``,
        ``run``, ``loss``, ``learning_rate`` (peak rate), ``lr_schedule`` (e.g.
        ``'cosine'``) (optional; empty cells mean unset). Other columns are ignored.
        Every importer takes its model metadata from this table, so the learning
        rates of an lm-eval import come from here too.
    roles : mapping of str to str, optional
        Model name -> role, overriding the file's ``role`` column.

    Returns
    -------
    list of ModelInfo
        In file order.

    Raises
    ------
    LadderValidationError
        A missing file or column, an unknown field in ``columns``, a bad value, a
        duplicate name, or a ``roles`` entry naming an unknown model.

    Notes
    -----
    When the table has no ``compute`` column, compute is the usual estimate of
    training FLOPs, :math:`C = 6 N D`, with :math:`N` = ``params`` and :math:`D` =
    ``tokens``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "models.csv"
    >>> _ = p.write_text("model,params_total,tokens\\nsmall,1e8,2e9\\n")
    >>> read_models_table(p, columns={"name": "model", "params": "params_total"})[0].compute
    1.2e+18
    """
    return [m for m, _ in _read_models(path, columns, roles, extra=())]


def read_checkpoints_table(
    path,
    *,
    columns: Mapping[str, str] | None = None,
    roles: Mapping[str, str] | None = None,
) -> tuple[list[ModelInfo], dict[str, str]]:
    """Read model metadata and each model's checkpoint path from one table.

    The table of :func:`read_models_table` with one more field, ``path``: the model's
    checkpoint (a directory an evaluator loads), as written in the table.

    Parameters
    ----------
    path : str or path-like
        A CSV file or a JSON list of model objects, as :func:`read_models_table`
        reads them, with a ``path`` column (or key) filled for every model.
    columns : mapping of str to str, optional
        Our field -> the file's column, as in :func:`read_models_table`; may map
        ``path`` too.
    roles : mapping of str to str, optional
        Model name -> role, overriding the file's ``role`` column.

    Returns
    -------
    models : list of ModelInfo
        In file order.
    paths : dict of str to str
        Model name -> its checkpoint path as written (a relative path is the caller's
        to resolve).

    Raises
    ------
    LadderValidationError
        As :func:`read_models_table`, and a model without a path.
    """
    models, paths = [], {}
    for model, extra in _read_models(path, columns, roles, extra=("path",)):
        value = extra.get("path")
        if not isinstance(value, str) or not value.strip():
            raise LadderValidationError(
                "path", value, "Give every model its checkpoint directory in a 'path' column "
                "(map another column with columns={'path': '<column>'}, --model-map "
                "path=<column>).", where=f"{path}, model {model.name!r}")
        models.append(model)
        paths[model.name] = value.strip()
    return models, paths


def _read_models(path, columns, roles, *, extra: tuple[str, ...]) -> list[tuple[ModelInfo, dict]]:
    """(model, its ``extra`` fields) per entry of a models table, in file order."""
    path = _existing_file(path, "models")
    fields = MODEL_FIELDS + extra
    columns = _check_mapping(columns, fields)
    if path.name.lower().removesuffix(".gz").endswith(".json"):
        entries = _models_from_json(path, columns)
    else:
        entries = _models_from_csv(path, columns, fields)
    models = []
    seen = set()
    for where, entry in entries:
        entry = dict(entry)
        extras = {k: entry.pop(k) for k in extra if k in entry}
        if "compute" not in entry:
            entry = dict(entry)
            params = _number(entry, "params", where)
            tokens = _number(entry, "tokens", where)
            entry["compute"] = 6.0 * params * tokens
        model = ModelInfo.from_dict(entry, where=where)
        if model.name in seen:
            raise LadderValidationError("name", model.name, "Give every model a unique name.",
                                        where=where)
        seen.add(model.name)
        models.append((model, extras))
    if not models:
        raise LadderValidationError("models", str(path), "List at least one model.")
    if roles:
        for name, role in roles.items():
            if name not in seen:
                raise LadderValidationError(
                    "roles", f"{name}={role}", f"No model {name!r} in {path}; known models: "
                    f"{', '.join(map(repr, sorted(seen)[:8]))}{', ...' if len(seen) > 8 else ''}.",
                )
        models = [(ModelInfo.from_dict({**m.to_dict(), "role": roles[m.name]},
                                       where=f"roles[{m.name!r}]"), extras)
                  if m.name in roles else (m, extras) for m, extras in models]
    return models


def _number(entry, key, where) -> float:
    value = entry.get(key)
    if value is None:
        raise LadderValidationError(key, None, f"Give {key} for every model.", where=where)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise LadderValidationError(key, value, f"Give {key} as a number.", where=where) from None


def _models_from_csv(path, columns, fields=MODEL_FIELDS):
    header, rows, lines = _read_csv(path)
    found = _resolve_columns(header, columns, fields, path)
    for ours in ("name", "params", "tokens"):
        if ours not in found:
            raise LadderValidationError(
                ours, None, f"The models table needs a {ours!r} column; map it with "
                f"columns={{{ours!r}: '<column>'}} (--model-map {ours}=<column>). Columns: "
                f"{', '.join(map(repr, header))}.", where=str(path),
            )
    for row, line in zip(rows, lines):
        entry = {}
        for ours, j in found.items():
            value = row[j].strip()
            if value != "":
                entry[ours] = value
        yield f"{path}:{line}", entry


def _models_from_json(path, columns):
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise LadderValidationError("file", str(path), f"Fix the JSON syntax ({exc}).") from None
    if isinstance(data, dict) and "models" in data:
        data = data["models"]
    if not isinstance(data, list):
        raise LadderValidationError(
            "models", type(data).__name__, "Give a JSON list of model objects (or an object "
            "with a \"models\" list).", where=str(path),
        )
    theirs_to_ours = {theirs: ours for ours, theirs in columns.items()}
    for i, obj in enumerate(data):
        where = f"{path} [{i}]"
        if not isinstance(obj, dict):
            raise LadderValidationError("models", obj, "Give every model as a JSON object.",
                                        where=where)
        yield where, {theirs_to_ours.get(k, k): v for k, v in obj.items()}


def coerce_models(models) -> list[ModelInfo]:
    if isinstance(models, (str, PathLike)):
        return read_models_table(models)
    models = list(models)
    for m in models:
        if not isinstance(m, ModelInfo):
            raise TypeError(f"`models` should hold ModelInfo, got {type(m).__name__}")
    return models


# -------------------------------------------------------------------- long table


def import_long_table(
    path,
    models,
    *,
    columns: Mapping[str, str] | None = None,
    benchmark: str | None = None,
    compute_unit: float = DEFAULT_COMPUTE_UNIT,
    drop_incomplete: bool = False,
    skip_unknown_models: bool = False,
    eval_settings=None,
) -> Ladder:
    """Build a ladder from a long table of per-sample scores.

    Parameters
    ----------
    path : str or path-like
        A CSV file (``.csv`` or ``.csv.gz``) or JSON lines (``.jsonl``/``.ndjson``,
        optionally ``.gz``) with one row per (benchmark, sample, model).
    models : sequence of ModelInfo, or path
        Model metadata (a path is read with :func:`read_models_table`). Models with
        no rows in the table are left out of the ladder, so one metadata table can
        serve several score files.
    columns : mapping of str to str, optional
        Our field -> the file's column, for ``benchmark``, ``sample_id``, ``model``,
        ``score``, ``n_samples``, ``n_correct``; unmapped fields use same-named
        columns. Other columns are ignored.
    benchmark : str, optional
        The benchmark name when the file has no benchmark column. When it has one,
        only that benchmark's rows are imported.
    compute_unit : float, default 1e18
        FLOPs per compute unit.
    drop_incomplete : bool, default False
        Drop samples missing a score for some model (with a warning) instead of
        raising.
    skip_unknown_models : bool, default False
        Skip rows of models absent from ``models`` (to import a subset of the
        table's models) instead of raising.
    eval_settings : EvalSettings, dict or mapping of str to those, optional
        How the scores were produced (stop marker, scorer, evaluator mode, ...): one
        settings object for every benchmark or one per benchmark (see
        :func:`~cod_monitor.ladder.settings.settings_by_benchmark`). A long table
        carries none of them, so nothing is recorded without it.

    Returns
    -------
    Ladder
        The table's benchmarks (or ``benchmark``), on the models it scores.

    Raises
    ------
    LadderValidationError
        A missing file or column, no benchmark column and no ``benchmark``, a row
        naming an unknown model, and every check of :meth:`Ladder.from_columns`.

    Notes
    -----
    Without a score column the score is ``n_correct / n_samples``. A value that
    cannot be read (e.g. ``"abc"`` as a score) is reported with its file and line.

    Examples
    --------
    Import a table shaped like the Large Language Monkeys release
    (``problem_id,model,n_samples,n_correct,pass_rate``):

    >>> ladder = import_long_table(  # doctest: +SKIP
    ...     "math_llmonkeys.csv",
    ...     read_models_table("models.csv", columns={"name": "model",
    ...                       "params": "params_total", "compute": "compute_6ND"}),
    ...     columns={"sample_id": "problem_id", "score": "pass_rate"},
    ...     benchmark="math",
    ... )
    """
    path = _existing_file(path, "scores")
    columns = _check_mapping(columns, SCORE_FIELDS)
    models = coerce_models(models)
    if _is_jsonl(path):
        cols, lines = _long_from_jsonl(path, columns)
    else:
        cols, lines = _long_from_csv(path, columns)

    if "benchmark" in cols:
        if benchmark is not None:
            keep = [i for i, b in enumerate(cols["benchmark"]) if b == benchmark]
            if not keep:
                raise LadderValidationError(
                    "benchmark", benchmark, f"The file has no rows of this benchmark; it has "
                    f"{', '.join(map(repr, sorted(set(cols['benchmark']))[:8]))}.",
                    where=str(path),
                )
            cols, lines = _subset(cols, lines, keep)
    elif benchmark is None:
        raise LadderValidationError(
            "benchmark", None, "The file has no benchmark column: map one with "
            "columns={'benchmark': '<column>'} (--map benchmark=<column>) or name the "
            "benchmark with benchmark= (--benchmark NAME).", where=str(path),
        )
    else:
        cols["benchmark"] = [benchmark] * len(lines)

    known = {m.name for m in models}
    model_col = cols["model"]
    unknown = [i for i, m in enumerate(model_col) if m not in known]
    if unknown and not skip_unknown_models:
        missing = sorted({model_col[i] for i in unknown})
        raise LadderValidationError(
            "model", model_col[unknown[0]], f"{len(missing)} model(s) of the scores are not in "
            f"the models table ({', '.join(map(repr, missing[:5]))}"
            f"{', ...' if len(missing) > 5 else ''}): add them to the models table, or pass "
            "skip_unknown_models=True (--skip-unknown-models) to import only the listed models.",
            where=f"{path}:{lines[unknown[0]]}",
        )
    if unknown:
        drop = set(unknown)
        cols, lines = _subset(cols, lines, [i for i in range(len(lines)) if i not in drop])
    present = set(cols["model"])
    dropped = [m.name for m in models if m.name not in present]
    if dropped:
        logger.debug("%d model(s) of the models table have no scores in %s and are left out",
                     len(dropped), path)
    ladder = Ladder.from_columns(
        [m for m in models if m.name in present],
        cols,
        compute_unit=compute_unit,
        drop_incomplete=drop_incomplete,
        source=str(path),
        line_numbers=lines,
    )
    if eval_settings is None:
        return ladder
    return ladder.with_eval_settings(settings_by_benchmark(eval_settings, ladder.benchmarks))


def _subset(cols: dict, lines: list, keep: list[int]):
    return {k: [v[i] for i in keep] for k, v in cols.items()}, [lines[i] for i in keep]


def _required_score_fields(found, path, header):
    for ours in ("sample_id", "model"):
        if ours not in found:
            raise LadderValidationError(
                ours, None, f"The scores need a {ours!r} column; map it with --map "
                f"{ours}=<column> (columns={{{ours!r}: ...}}). Columns: "
                f"{', '.join(map(repr, header))}.", where=str(path),
            )
    has_counts = "n_samples" in found and "n_correct" in found
    if "score" not in found and not has_counts:
        raise LadderValidationError(
            "score", None, "The scores need a score column, or n_samples and n_correct "
            "columns; map them with --map score=<column> (columns={'score': ...}). Columns: "
            f"{', '.join(map(repr, header))}.", where=str(path),
        )


def _long_from_csv(path, columns):
    header, rows, lines = _read_csv(path)
    found = _resolve_columns(header, columns, SCORE_FIELDS, path)
    _required_score_fields(found, path, header)
    if ("n_samples" in found) != ("n_correct" in found):
        found.pop("n_samples", None)  # one count column alone cannot be used
        found.pop("n_correct", None)
    cols = {ours: [row[j].strip() for row in rows] for ours, j in found.items()}
    return cols, lines


def _long_from_jsonl(path, columns):
    records = read_jsonl(path)
    lines = [n for n, _ in records]
    keys = dict.fromkeys(k for _, r in records for k in r)
    header = list(keys)
    found = {}
    for ours in SCORE_FIELDS:
        theirs = columns.get(ours, ours)
        if theirs in keys:
            found[ours] = theirs
        elif ours in columns:
            raise LadderValidationError(
                "columns", f"{ours}={theirs}", f"No record has the key {theirs!r}; keys seen: "
                f"{', '.join(map(repr, header))}.", where=str(path),
            )
    _required_score_fields(found, path, header)
    if ("n_samples" in found) != ("n_correct" in found):
        found.pop("n_samples", None)
        found.pop("n_correct", None)
    cols = {}
    for ours, theirs in found.items():
        col = [r.get(theirs) for _, r in records]
        if ours in ("benchmark", "sample_id", "model"):
            for (line, _), value in zip(records, col):
                if value is None:
                    raise LadderValidationError(
                        theirs, None, f"Give {theirs!r} in every record.", where=f"{path}:{line}"
                    )
            if ours != "sample_id":
                col = [v if isinstance(v, str) else str(v) for v in col]
        cols[ours] = col
    return cols, lines
