"""The on-disk format of a ladder: a directory with ``ladder.json`` and ``scores.csv[.gz]``.

``ladder.json`` holds the schema version, the compute unit, the models and, optionally,
the evaluation settings of each benchmark (``eval_settings``, see
:mod:`cod_monitor.ladder.settings`; a ladder without them is read as before);
``scores.csv`` (or its gzipped twin) is the long table ``benchmark, sample_id, model,
score[, n_samples, n_correct]``. The README documents the format, which is a public
contract. :meth:`Ladder.load <cod_monitor.ladder.ladder.Ladder.load>` and
:meth:`Ladder.save <cod_monitor.ladder.ladder.Ladder.save>` read and write it through
the functions here.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from collections.abc import Mapping, Sequence
from itertools import repeat
from operator import itemgetter
from pathlib import Path

import numpy as np

from cod_monitor._io import atomic_write
from cod_monitor.exceptions import LadderValidationError
from cod_monitor.ladder.model import (
    COUNT_COLUMNS,
    DEFAULT_COMPUTE_UNIT,
    SCORE_COLUMNS,
    ModelInfo,
    ScoreTable,
    _finite_float,
)
from cod_monitor.ladder.settings import EvalSettings

__all__ = [
    "SCHEMA_VERSION",
    "LADDER_JSON",
    "SCORES_CSV",
    "SCORES_CSV_GZ",
    "ladder_fingerprint",
    "read_ladder_json",
    "read_scores_csv",
    "scores_path",
    "write_ladder",
]

#: Version of the on-disk format written by :func:`write_ladder`.
SCHEMA_VERSION = 1
LADDER_JSON = "ladder.json"
SCORES_CSV = "scores.csv"
SCORES_CSV_GZ = "scores.csv.gz"

_TOP_KEYS = ("schema_version", "compute_unit", "models", "eval_settings")


# ------------------------------------------------------------------------------ read


def read_ladder_json(path: Path) -> tuple[list[ModelInfo], float, dict[str, EvalSettings]]:
    """The models, compute unit and evaluation settings of a ``ladder.json`` file, validated.

    The settings are ``{}`` when the file has no ``eval_settings`` section; whether each
    benchmark named there has scores is the :class:`~cod_monitor.ladder.Ladder`'s check.
    """
    if not path.is_file():
        raise LadderValidationError(
            "path", str(path), "A ladder directory needs a ladder.json file; create it or "
            "use `cod-monitor ladder import`.",
        )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LadderValidationError(
            "ladder.json", str(exc), "Fix the JSON syntax.", where=str(path)
        ) from None
    if not isinstance(meta, dict):
        raise LadderValidationError(
            "ladder.json", type(meta).__name__, "The top level must be a JSON object.",
            where=str(path),
        )
    for key in meta:
        if key not in _TOP_KEYS:
            raise LadderValidationError(
                key, meta[key], f"Remove it; ladder.json has only {', '.join(_TOP_KEYS)}.",
                where=str(path),
            )
    version = meta.get("schema_version")
    if version is None:
        raise LadderValidationError(
            "schema_version", None, f"Add \"schema_version\": {SCHEMA_VERSION}.", where=str(path)
        )
    if version != SCHEMA_VERSION or isinstance(version, bool):
        raise LadderValidationError(
            "schema_version", version, f"This cod_monitor reads schema_version "
            f"{SCHEMA_VERSION}; upgrade cod_monitor or rewrite the file.", where=str(path),
        )
    compute_unit = _finite_float(
        meta.get("compute_unit", DEFAULT_COMPUTE_UNIT), "compute_unit", str(path), positive=True
    )
    entries = meta.get("models")
    if not isinstance(entries, list) or not entries:
        raise LadderValidationError(
            "models", entries, "Give \"models\" as a non-empty list of model objects.",
            where=str(path),
        )
    models = [ModelInfo.from_dict(e, where=f"{path} models[{i}]") for i, e in enumerate(entries)]
    seen: set = set()
    for i, m in enumerate(models):
        if m.name in seen:
            raise LadderValidationError(
                "name", m.name, "Give every model a unique name.", where=f"{path} models[{i}]"
            )
        seen.add(m.name)
    return models, compute_unit, _read_eval_settings(meta.get("eval_settings"), path)


def _read_eval_settings(section, path: Path) -> dict[str, EvalSettings]:
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise LadderValidationError(
            "eval_settings", section, "Give \"eval_settings\" as a JSON object mapping each "
            "benchmark to its settings, or leave it out.", where=str(path),
        )
    return {bench: EvalSettings.from_dict(entry, where=f"{path} eval_settings[{bench!r}]")
            for bench, entry in section.items()}


def scores_path(directory: Path) -> Path:
    """The scores file of a ladder directory: ``scores.csv`` or ``scores.csv.gz``."""
    plain, packed = directory / SCORES_CSV, directory / SCORES_CSV_GZ
    if plain.exists() and packed.exists():
        raise LadderValidationError(
            "scores", f"{SCORES_CSV} and {SCORES_CSV_GZ}", "Keep only one scores file.",
            where=str(directory),
        )
    if not plain.exists() and not packed.exists():
        raise LadderValidationError(
            "scores", None, f"A ladder directory needs {SCORES_CSV} or {SCORES_CSV_GZ}.",
            where=str(directory),
        )
    return plain if plain.exists() else packed


def read_scores_csv(path: Path) -> tuple[dict[str, list], list[int]]:
    """Columns of ``scores.csv[.gz]`` (strings) and the line of each row."""
    try:
        raw = path.read_bytes()
        if path.name.endswith(".gz"):
            raw = gzip.decompress(raw)  # whole-file decompression beats a streaming reader
        text = raw.decode("utf-8-sig")
        header, columns, lines = _plain_csv(text)
        if header is None:
            header, rows, lines = _csv_rows(text)
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
        raise LadderValidationError(
            "scores", str(exc), "Give a UTF-8 CSV file (gzipped if it ends in .gz).",
            where=str(path),
        ) from None
    if header is None:
        raise LadderValidationError(
            "header", None, f"Start the file with the header {','.join(SCORE_COLUMNS)}.",
            where=str(path),
        )
    allowed = SCORE_COLUMNS + COUNT_COLUMNS
    for name in header:
        if name not in allowed or header.count(name) > 1:
            raise LadderValidationError(
                "header", name, f"Use each of the columns {', '.join(allowed)} at most once "
                "(the last two are optional).", where=str(path),
            )
    for name in SCORE_COLUMNS:
        if name not in header:
            raise LadderValidationError(
                name, None, f"Add the column {name!r} to the header.", where=str(path)
            )
    if ("n_samples" in header) != ("n_correct" in header):
        missing = "n_correct" if "n_samples" in header else "n_samples"
        raise LadderValidationError(
            missing, None, "Give both count columns or neither.", where=str(path)
        )
    if columns is not None:
        return dict(zip(header, columns)), lines
    width = len(header)
    for row, line in zip(rows, lines):
        if len(row) != width:
            raise LadderValidationError(
                "row", row, f"Every row needs {width} fields ({','.join(header)}).",
                where=f"{path}:{line}",
            )
    # itemgetter per column is several times faster than zip(*rows) on long tables
    return {name: list(map(itemgetter(j), rows)) for j, name in enumerate(header)}, lines


def _plain_csv(text: str):
    """``(header, columns, lines)`` of a CSV without quotes, carriage returns or blank
    lines, every row as wide as the header; ``(None, None, None)`` for anything else,
    which the csv module reads (and reports on, line by line).

    What ``write_ladder`` writes takes this path: splitting the whole text at once is
    several times faster than a row-by-row reader on a ladder of 10^5 rows.
    """
    if '"' in text or "\r" in text:
        return None, None, None
    first, sep, body = text.partition("\n")
    body = body[:-1] if body.endswith("\n") else body
    if not sep or not body or "\n\n" in body or not first:
        return None, None, None
    header = first.split(",")
    width = len(header)
    rows = body.split("\n")
    # equal totals are not enough: every line must hold width - 1 commas
    if any(c != width - 1 for c in map(str.count, rows, repeat(","))):
        return None, None, None
    flat = ",".join(rows).split(",")
    return header, [flat[j::width] for j in range(width)], list(range(2, len(rows) + 2))


def _csv_rows(text: str):
    """``(header, rows, lines)`` read by the csv module, tolerating blank lines."""
    with io.StringIO(text, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        rows = list(reader)
        if reader.line_num == len(rows) + 1:  # one line per row: numbers are implied
            return header, rows, list(range(2, len(rows) + 2))
        # blank lines or quoted newlines: recount, tolerating blank lines
        f.seek(0)
        reader = csv.reader(f)
        next(reader)
        rows, lines = [], []
        for row in reader:
            if row:
                rows.append(row)
                lines.append(reader.line_num)
        return header, rows, lines


# ----------------------------------------------------------------------------- write


def write_ladder(path: Path, models: Sequence[ModelInfo], tables: Mapping[str, ScoreTable],
                 compute_unit: float, *, compress: bool,
                 eval_settings: Mapping[str, EvalSettings] | None = None) -> None:
    """Write ``ladder.json`` and the scores file into the directory ``path``.

    Each file is written atomically, and the other scores file is removed if present.
    Rows are sorted by benchmark, sample order, then model compute; floats are written
    with ``repr`` precision, so that reading the directory back is lossless.

    Parameters
    ----------
    path : Path
        The ladder directory (created if needed).
    models : sequence of ModelInfo
        In the tables' column order.
    tables : mapping of str to ScoreTable
        Benchmark -> its scores.
    compute_unit : float
    compress : bool
        Gzip the scores (``scores.csv.gz``, byte-for-byte reproducible).
    eval_settings : mapping of str to EvalSettings, optional
        Benchmark -> its evaluation settings; written as ``eval_settings`` after the
        models when not empty (a ladder without settings is written as before).
    """
    path.mkdir(parents=True, exist_ok=True)
    meta = {
        "schema_version": SCHEMA_VERSION,
        "compute_unit": compute_unit,
        "models": [m.to_dict() for m in models],
    }
    if eval_settings:
        meta["eval_settings"] = {b: eval_settings[b].to_dict() for b in sorted(eval_settings)}
    atomic_write(path / LADDER_JSON, (json.dumps(meta, indent=2) + "\n").encode())
    name, stale = (SCORES_CSV_GZ, SCORES_CSV) if compress else (SCORES_CSV, SCORES_CSV_GZ)
    data = _scores_csv_text(models, tables).encode()
    if compress:
        buf = io.BytesIO()
        # fixed mtime and no file name: the same ladder gives the same bytes
        with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0) as gz:
            gz.write(data)
        data = buf.getvalue()
    atomic_write(path / name, data)
    (path / stale).unlink(missing_ok=True)


def _scores_csv_text(models: Sequence[ModelInfo], tables: Mapping[str, ScoreTable]) -> str:
    has_counts = any(t.n_samples is not None for t in tables.values())
    header = list(SCORE_COLUMNS) + (list(COUNT_COLUMNS) if has_counts else [])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    names = np.array([m.name for m in models], dtype=object)
    for benchmark, t in tables.items():
        n_rows, n_models = t.pass_rates.shape
        # Python floats: csv writes them with repr, which round-trips exactly
        cols = [
            [benchmark] * (n_rows * n_models),
            np.repeat(t.sample_ids, n_models).tolist(),
            np.tile(names, n_rows).tolist(),
            t.pass_rates.ravel().tolist(),
        ]
        if has_counts:
            for counts in (t.n_samples, t.n_correct):
                if counts is None:
                    cols.append([""] * (n_rows * n_models))
                else:
                    cols.append([c if c >= 0 else "" for c in counts.ravel().tolist()])
        writer.writerows(zip(*cols))
    return out.getvalue()


def ladder_fingerprint(path) -> str:
    """SHA-256 of a ladder directory's ``ladder.json`` and scores file(s).

    Parameters
    ----------
    path : str or path-like
        The ladder directory.

    Returns
    -------
    str
        Hex digest (``'missing'`` when neither file exists).
    """
    path = Path(path)
    h = hashlib.sha256()
    found = False
    for name in (LADDER_JSON, SCORES_CSV, SCORES_CSV_GZ):
        f = path / name
        if f.exists():
            found = True
            h.update(name.encode())
            with open(f, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest() if found else "missing"
