"""From a long table (one row per benchmark, sample and model) to a ladder's tables.

:class:`TableBuilder` validates columns as read from a CSV file, a JSON lines file or
records, and assembles one pass-rate table per benchmark; every problem raises
:class:`~cod_monitor.exceptions.LadderValidationError` naming the file and line.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping

import numpy as np

from cod_monitor.exceptions import FitWarning, InputError, LadderValidationError
from cod_monitor.ladder.model import (
    COUNT_COLUMNS,
    SCORE_COLUMNS,
    ModelInfo,
    ScoreTable,
    _names_hint,
    _sort_models,
)

__all__ = ["TableBuilder", "records_to_columns"]

# |score - n_correct / n_samples| allowed, for scores written with few decimals
_SCORE_TOL = 1e-6


def records_to_columns(rows: Iterable[Mapping], source: str) -> dict[str, list]:
    """The long table of score records as columns (what :class:`TableBuilder` reads).

    Parameters
    ----------
    rows : iterable of mapping
        Records with keys ``benchmark``, ``sample_id``, ``model``, ``score`` and
        optionally ``n_samples``, ``n_correct``.
    source : str
        Name of the records' origin, for error messages.

    Returns
    -------
    dict of str to list

    Raises
    ------
    LadderValidationError
        A record that is not a mapping or lacks a required key.
    """
    rows = rows if isinstance(rows, list) else list(rows)
    keys = list(SCORE_COLUMNS)
    if any("n_samples" in r or "n_correct" in r for r in rows):
        keys += list(COUNT_COLUMNS)
    columns = {}
    for key in keys:
        try:
            if key in COUNT_COLUMNS:
                columns[key] = [r.get(key) for r in rows]
            else:
                columns[key] = [r[key] for r in rows]
        except KeyError:
            i = next(i for i, r in enumerate(rows) if key not in r)
            raise LadderValidationError(
                key, None, f"Give every record the keys {', '.join(SCORE_COLUMNS)}.",
                where=f"{source}:{i + 1}",
            ) from None
        except (TypeError, AttributeError):
            i = next(i for i, r in enumerate(rows) if not isinstance(r, Mapping))
            raise LadderValidationError(
                "rows", rows[i], "Give every record as a mapping (dict).",
                where=f"{source}:{i + 1}",
            ) from None
    return columns


class TableBuilder:
    """Validate a long table given as columns and assemble per-benchmark tables.

    ``TableBuilder(models, columns, source, line_numbers).build(drop_incomplete)`` returns
    the models sorted by compute and one :class:`~cod_monitor.ladder.model.ScoreTable`
    per benchmark, for :meth:`Ladder.from_columns <cod_monitor.ladder.ladder.Ladder.from_columns>`.
    """

    def __init__(self, models, columns, source, line_numbers):
        self.source = source
        self.models = _sort_models(models)
        self.columns = columns
        self.line_numbers = line_numbers

    def where(self, i: int) -> str:
        line = self.line_numbers[i] if self.line_numbers is not None else i + 1
        return f"{self.source}:{line}"

    def fail(self, field, rows: np.ndarray | int, values, fix):
        """Raise about the first offending row (``rows`` is a mask or an index)."""
        i = int(np.argmax(rows)) if isinstance(rows, np.ndarray) else rows
        raise LadderValidationError(field, values[i], fix, where=self.where(i))

    def build(self, drop_incomplete: bool) -> tuple[tuple[ModelInfo, ...], dict[str, ScoreTable]]:
        cols = self.columns
        has_score = "score" in cols
        has_counts = "n_samples" in cols or "n_correct" in cols
        for key in ("benchmark", "sample_id", "model"):
            if key not in cols:
                raise LadderValidationError(
                    key, None, f"Give the columns {', '.join(SCORE_COLUMNS)}.", where=self.source
                )
        if not has_score and not has_counts:
            raise LadderValidationError(
                "score", None, "Give a score column, or n_samples and n_correct columns.",
                where=self.source,
            )
        if has_counts and ("n_samples" not in cols or "n_correct" not in cols):
            missing = "n_samples" if "n_samples" not in cols else "n_correct"
            raise LadderValidationError(
                missing, None, "Give both n_samples and n_correct columns, or neither.",
                where=self.source,
            )
        n = len(cols["model"])
        for key, col in cols.items():
            if len(col) != n:
                raise InputError(
                    f"columns should have equal lengths: {len(col) = } for {key!r} == {n = }"
                )

        model_idx = self._model_index(cols["model"])
        bench, bench_of_row = self._benchmarks(cols["benchmark"])
        sample_ids = cols["sample_id"]
        if set(map(type, sample_ids)) - {str}:
            sample_ids = [s if type(s) is str else self._sample_id(s, i)
                          for i, s in enumerate(sample_ids)]
        blank = next((i for i, s in enumerate(sample_ids) if not s.strip()), None)
        if blank is not None:  # an empty CSV cell: one "" id would merge unrelated rows
            raise LadderValidationError(
                "sample_id", sample_ids[blank], "Give every row a non-empty sample id.",
                where=self.where(blank))
        # global sample index: (benchmark, sample_id) in order of first appearance;
        # dict.fromkeys and map keep the per-row work in C
        row_keys = list(zip(bench_of_row, sample_ids))
        keys = {k: j for j, k in enumerate(dict.fromkeys(row_keys))}
        sample_idx = np.fromiter(map(keys.__getitem__, row_keys), dtype=np.int64, count=n)
        counts = self._counts(cols, n) if has_counts else None
        score = self._scores(cols, n, counts)

        n_models = len(self.models)
        cell = sample_idx * n_models + model_idx
        order = np.argsort(cell, kind="stable")
        dup = np.flatnonzero(cell[order][1:] == cell[order][:-1])
        if dup.size:
            i = int(order[dup[0] + 1])
            raise LadderValidationError(
                "sample_id", sample_ids[i], f"Duplicate score of model {cols['model'][i]!r} on "
                f"benchmark {bench_of_row[i]!r}; keep one row per benchmark, sample and model.",
                where=self.where(i),
            )
        scored = np.bincount(model_idx, minlength=n_models)
        if (scored == 0).any():
            name = self.models[int(np.argmin(scored))].name
            raise LadderValidationError(
                "model", name, "This model has no scores; add its scores or remove it from "
                "the models (ladder.json).", where=self.source,
            )

        n_keys = len(keys)
        rates = np.full((n_keys, n_models), np.nan)
        rates[sample_idx, model_idx] = score
        ns = nc = None
        if counts is not None and (counts[0] >= 0).any():
            ns = np.full((n_keys, n_models), -1, dtype=np.int64)
            nc = np.full((n_keys, n_models), -1, dtype=np.int64)
            ns[sample_idx, model_idx] = counts[0]
            nc[sample_idx, model_idx] = counts[1]
        key_bench = np.fromiter((bench[b] for b, _ in keys), dtype=np.int64, count=n_keys)
        key_ids = np.array([s for _, s in keys], dtype=object)

        tables = {}
        for b, bi in bench.items():
            rows = np.flatnonzero(key_bench == bi)
            block = rates[rows]
            filled = ~np.isnan(block)
            complete = filled.all(axis=1)
            if not complete.all():
                rows = self._incomplete(b, rows, filled, complete, key_ids, drop_incomplete)
                block = rates[rows]
            tables[b] = ScoreTable(
                key_ids[rows],
                block,
                None if ns is None else ns[rows],
                None if nc is None else nc[rows],
            )
        return self.models, tables

    def _model_index(self, model_col) -> np.ndarray:
        index = {m.name: j for j, m in enumerate(self.models)}
        if len(index) != len(self.models):
            seen: set = set()
            dup = next(m.name for m in self.models if m.name in seen or seen.add(m.name))
            raise LadderValidationError(
                "name", dup, "Give every model a unique name.", where=self.source
            )
        try:
            return np.fromiter(map(index.__getitem__, model_col), dtype=np.int64,
                               count=len(model_col))
        except (KeyError, TypeError):
            i = next(i for i, m in enumerate(model_col) if not isinstance(m, str) or m not in index)
            raise LadderValidationError(
                "model", model_col[i], "Scores name a model missing from the models "
                f"(ladder.json); add it there or drop its rows. Known models: "
                f"{_names_hint(list(index))}.", where=self.where(i),
            ) from None

    def _benchmarks(self, bench_col):
        names = set(bench_col)  # few distinct values: check those, not every row
        if not all(type(b) is str and b for b in names):
            i = next(i for i, b in enumerate(bench_col) if type(b) is not str or not b)
            raise LadderValidationError(
                "benchmark", bench_col[i], "Name the benchmark of every row.", where=self.where(i)
            )
        bench = {b: j for j, b in enumerate(sorted(names))}
        return bench, bench_col

    def _sample_id(self, value, i) -> str:
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            raise LadderValidationError(
                "sample_id", value, "Give every row a sample id.", where=self.where(i)
            )
        return str(value)

    def _scores(self, cols, n, counts) -> np.ndarray:
        if "score" not in cols:
            ns, nc = counts
            if (ns < 0).any():
                self.fail("score", ns < 0, cols["n_samples"],
                          "Give a score, or n_samples and n_correct, in every row.")
            return nc / ns
        raw = cols["score"]
        fix = "Scores are pass rates: finite numbers in [0, 1]."
        try:
            score = np.asarray(raw, dtype=np.float64).reshape(n)
        except (TypeError, ValueError):
            for i, v in enumerate(raw):
                try:
                    float(v)
                except (TypeError, ValueError):
                    raise LadderValidationError("score", v, fix, where=self.where(i)) from None
            raise
        bad = ~np.isfinite(score)
        if bad.any():
            self.fail("score", bad, raw, fix)
        bad = (score < 0) | (score > 1)
        if bad.any():
            self.fail("score", bad, raw, fix)
        if counts is not None:
            ns, nc = counts
            has = ns >= 0
            ratio = np.divide(nc, ns, out=np.zeros(n), where=has)
            bad = has & (np.abs(score - ratio) > _SCORE_TOL)
            if bad.any():
                i = int(np.argmax(bad))
                raise LadderValidationError(
                    "score", raw[i], f"It should equal n_correct / n_samples = {nc[i]}/{ns[i]} "
                    f"= {float(ratio[i])!r} (within {_SCORE_TOL:g}); fix the score or the counts.",
                    where=self.where(i),
                )
        return score

    def _counts(self, cols, n) -> tuple[np.ndarray, np.ndarray]:
        """``(n_samples, n_correct)`` as int64, -1 where a row gives none."""
        parsed = []
        for field in COUNT_COLUMNS:
            raw = cols[field]
            if "" in raw or None in raw:
                present = np.fromiter((v is not None and v != "" for v in raw), bool, count=n)
                rows = np.flatnonzero(present)
                given = [raw[i] for i in rows]
            else:  # the common case: counts in every row
                present = np.ones(n, dtype=bool)
                rows = np.arange(n)
                given = raw
            out = np.full(n, -1, dtype=np.int64)
            fix = f"Give {field} as a non-negative integer."
            try:
                values = np.asarray(given, dtype=np.float64).reshape(len(rows))
            except (TypeError, ValueError):
                for i in rows:
                    try:
                        float(raw[i])
                    except (TypeError, ValueError):
                        raise LadderValidationError(
                            field, raw[i], fix, where=self.where(i)
                        ) from None
                raise
            ok = np.isfinite(values)
            ok[ok] = values[ok] == np.round(values[ok])
            if not ok.all():
                i = int(rows[np.argmin(ok)])
                raise LadderValidationError(field, raw[i], fix, where=self.where(i))
            out[rows] = values.astype(np.int64)
            parsed.append((out, present))
        (ns, has_ns), (nc, has_nc) = parsed
        if (has_ns != has_nc).any():
            i = int(np.argmax(has_ns != has_nc))
            field = "n_correct" if has_ns[i] else "n_samples"
            raise LadderValidationError(
                field, None, "Give both n_samples and n_correct in a row, or neither.",
                where=self.where(i),
            )
        bad = has_ns & (ns < 1)
        if bad.any():
            self.fail("n_samples", bad, cols["n_samples"],
                      "n_samples counts completions: give a positive integer.")
        bad = has_nc & ((nc < 0) | (nc > ns))
        if bad.any():
            i = int(np.argmax(bad))
            raise LadderValidationError(
                "n_correct", cols["n_correct"][i], f"n_correct must be within 0 and "
                f"n_samples = {ns[i]}.", where=self.where(i),
            )
        return ns, nc

    def _incomplete(self, benchmark, rows, filled, complete, key_ids, drop) -> np.ndarray:
        n_total = len(rows)
        n_bad = int((~complete).sum())
        missing = (~filled).sum(axis=0)
        worst = int(np.argmax(missing))
        others = int((missing > 0).sum()) - 1
        detail = (
            f"model {self.models[worst].name!r} lacks {int(missing[worst])} of them"
            + (f" and {others} other model(s) lack some" if others else "")
        )
        if missing[worst] == n_total:
            raise LadderValidationError(
                "model", self.models[worst].name, f"This model has no scores on benchmark "
                f"{benchmark!r}: every model must be scored on every benchmark; import the "
                "benchmark into a separate ladder or drop the model.", where=self.source,
            )
        if not drop:
            example = key_ids[rows[int(np.argmin(complete))]]
            raise LadderValidationError(
                "scores", f"{n_bad} of {n_total} samples incomplete",
                f"Every sample needs a score from every model ({detail}; e.g. sample "
                f"{example!r}). Pass drop_incomplete=True / --drop-incomplete to drop them, or "
                "leave out the models that lack them.",
                where=f"{self.source}, benchmark {benchmark!r}",
            )
        warnings.warn(
            f"dropped {n_bad} of {n_total} samples of benchmark {benchmark!r} that lack a "
            f"score for some model ({detail})",
            FitWarning,
            stacklevel=4,
        )
        return rows[complete]


# ------------------------------------------------------------------------------ I/O
