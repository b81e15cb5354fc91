"""The ladder store: model metadata and per-sample pass rates of a model ladder.

A *ladder* is a set of models trained with one recipe at growing compute, each
evaluated sample by sample on one or more benchmarks. In memory it is a
:class:`Ladder` holding, per benchmark, a ``(n_samples, n_models)`` pass-rate
matrix whose columns are ordered by compute. On disk it is a directory with
``ladder.json`` (the models) and ``scores.csv`` or ``scores.csv.gz`` (a long table
with one row per benchmark, sample and model); the README documents that format,
which is a public contract.

Every check raises :class:`~cod_monitor.exceptions.LadderValidationError`, whose
message names the field, the value found and the fix.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import hashlib
import io
import json
import math
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path

import numpy as np

from cod_monitor._io import atomic_write
from cod_monitor.exceptions import FitWarning, LadderValidationError

__all__ = [
    "ModelInfo",
    "PassRateMatrix",
    "Ladder",
    "ROLES",
    "SCHEMA_VERSION",
    "DEFAULT_COMPUTE_UNIT",
    "SCORE_COLUMNS",
    "COUNT_COLUMNS",
    "load_ladder",
    "ladder_fingerprint",
]

#: Version of the on-disk format written by :meth:`Ladder.save`.
SCHEMA_VERSION = 1
#: The roles a model may have: fitted on, used as a mapping anchor, or held out.
ROLES = ("ladder", "anchor", "target")
#: FLOPs per compute unit, the paper's unit.
DEFAULT_COMPUTE_UNIT = 1e18
#: Required columns of ``scores.csv``.
SCORE_COLUMNS = ("benchmark", "sample_id", "model", "score")
#: Optional columns of ``scores.csv``.
COUNT_COLUMNS = ("n_samples", "n_correct")

LADDER_JSON = "ladder.json"
SCORES_CSV = "scores.csv"
SCORES_CSV_GZ = "scores.csv.gz"

_MODEL_KEYS = ("name", "params", "tokens", "compute", "step", "role", "run", "loss")
_REQUIRED_MODEL_KEYS = ("name", "params", "tokens", "compute")
_TOP_KEYS = ("schema_version", "compute_unit", "models")
# |score - n_correct / n_samples| allowed, for scores written with few decimals
_SCORE_TOL = 1e-6
_MIN_LADDER_MODELS = 3


def _names_hint(names: Sequence[str], limit: int = 8) -> str:
    """``'a', 'b', ... (12 in all)`` for error messages."""
    shown = ", ".join(repr(n) for n in names[:limit])
    if len(names) > limit:
        shown += f", ... ({len(names)} in all)"
    return shown


def _finite_float(value, field: str, where: str | None, *, positive: bool) -> float:
    """``float(value)``, required finite (and > 0 when ``positive``)."""
    kind = "a finite positive number" if positive else "a finite number"
    if isinstance(value, bool):
        raise LadderValidationError(field, value, f"Give {field} as {kind}.", where=where)
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise LadderValidationError(field, value, f"Give {field} as {kind}.", where=where) from None
    if not math.isfinite(out) or (positive and out <= 0):
        raise LadderValidationError(field, value, f"Give {field} as {kind}.", where=where)
    return out


# --------------------------------------------------------------------------- models


@dataclass(frozen=True)
class ModelInfo:
    """Metadata of one model (or one intermediate checkpoint) of a ladder.

    Numeric fields are coerced to ``float`` (``step`` to ``int``) and validated
    on construction.

    Parameters
    ----------
    name : str
        Unique model name, as used in the ``model`` column of the scores.
    params : float
        Number of parameters, > 0.
    tokens : float
        Training tokens seen, > 0.
    compute : float
        Training compute in FLOPs, > 0 (often ``6 * params * tokens``). Always a
        float: real values exceed the int64 range.
    step : int or None, default None
        Training step of an intermediate checkpoint.
    role : {'ladder', 'anchor', 'target'}, default 'ladder'
        ``'ladder'`` models are fitted on; ``'anchor'`` models only anchor the
        subset-to-full mapping; ``'target'`` models are held out and never fitted on.
    run : str or None, default None
        The training run the checkpoint belongs to. When ``None``, checkpoints with
        equal ``params`` are one run (see :attr:`run_key`).
    loss : float or None, default None
        A validation loss of the model, for loss-based baselines.

    Raises
    ------
    LadderValidationError
        Empty name, non-positive or non-finite ``params``/``tokens``/``compute``,
        non-integer or negative ``step``, unknown ``role``, empty ``run``,
        non-finite ``loss``.

    Examples
    --------
    >>> m = ModelInfo("pythia-70m", params=7.0e7, tokens=3.0e11, compute=1.26e20)
    >>> m.role, m.run_key
    ('ladder', 'params=7e+07')
    """

    name: str
    params: float
    tokens: float
    compute: float
    step: int | None = None
    role: str = "ladder"
    run: str | None = None
    loss: float | None = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise LadderValidationError(
                "name", self.name, "Give every model a non-empty string name."
            )
        where = f"model {self.name!r}"
        for field in ("params", "tokens", "compute"):
            value = _finite_float(getattr(self, field), field, where, positive=True)
            object.__setattr__(self, field, value)
        if self.step is not None:
            object.__setattr__(self, "step", _as_step(self.step, where))
        if self.role not in ROLES:
            raise LadderValidationError(
                "role", self.role, f"Use one of {', '.join(map(repr, ROLES))}.", where=where
            )
        if self.run is not None and (not isinstance(self.run, str) or not self.run):
            raise LadderValidationError(
                "run", self.run, "Give run as a non-empty string or leave it out.", where=where
            )
        if self.loss is not None:
            object.__setattr__(
                self, "loss", _finite_float(self.loss, "loss", where, positive=False)
            )

    @property
    def run_key(self) -> str:
        """The training run this checkpoint belongs to: ``run``, else ``params=<params:g>``."""
        return self.run if self.run is not None else f"params={self.params:g}"

    def to_dict(self) -> dict:
        """The model as a ``ladder.json`` entry (optional fields left out when unset)."""
        out = {
            "name": self.name,
            "params": self.params,
            "tokens": self.tokens,
            "compute": self.compute,
        }
        if self.step is not None:
            out["step"] = self.step
        out["role"] = self.role
        if self.run is not None:
            out["run"] = self.run
        if self.loss is not None:
            out["loss"] = self.loss
        return out

    @classmethod
    def from_dict(cls, entry: Mapping, *, where: str | None = None) -> ModelInfo:
        """Build a model from a ``ladder.json`` entry.

        Parameters
        ----------
        entry : mapping
            Keys ``name``, ``params``, ``tokens``, ``compute`` (required) and
            ``step``, ``role``, ``run``, ``loss`` (optional; ``None`` means unset).
        where : str, optional
            Location of the entry, for error messages.

        Returns
        -------
        ModelInfo

        Raises
        ------
        LadderValidationError
            Not a mapping, a missing required key, an unknown key or a bad value.
        """
        if not isinstance(entry, Mapping):
            raise LadderValidationError(
                "models", entry, "Each model must be a JSON object with name, params, "
                "tokens and compute.", where=where
            )
        for key in _REQUIRED_MODEL_KEYS:
            if entry.get(key) is None:
                raise LadderValidationError(
                    key, None, f"Every model needs {', '.join(_REQUIRED_MODEL_KEYS)}.", where=where
                )
        for key in entry:
            if key not in _MODEL_KEYS:
                raise LadderValidationError(
                    key, entry[key], f"Remove it; a model has only the keys "
                    f"{', '.join(_MODEL_KEYS)}.", where=where
                )
        kwargs = {k: v for k, v in entry.items() if v is not None}
        try:
            return cls(**kwargs)
        except LadderValidationError as exc:
            if where is None:
                raise
            inner = f" ({exc.where})" if exc.where else ""
            raise LadderValidationError(
                exc.field, exc.value, exc.fix, where=f"{where}{inner}"
            ) from None


def _as_step(value, where: str | None) -> int:
    fix = "Give step as a non-negative integer or leave it out."
    if isinstance(value, bool):
        raise LadderValidationError("step", value, fix, where=where)
    try:
        as_float = float(value)
    except (TypeError, ValueError):
        raise LadderValidationError("step", value, fix, where=where) from None
    if not math.isfinite(as_float) or as_float < 0 or as_float != int(as_float):
        raise LadderValidationError("step", value, fix, where=where)
    return int(as_float)


def _sort_models(models: Iterable[ModelInfo]) -> tuple[ModelInfo, ...]:
    return tuple(sorted(models, key=lambda m: (m.compute, m.name)))


def _is_sorted(models: Sequence[ModelInfo]) -> bool:
    keys = [(m.compute, m.name) for m in models]
    return all(a <= b for a, b in zip(keys, keys[1:]))


# -------------------------------------------------------------------------- matrix


@dataclass(frozen=True, eq=False)
class PassRateMatrix:
    """Per-sample pass rates of some models on one benchmark.

    Parameters
    ----------
    benchmark : str
        The benchmark name.
    sample_ids : array-like of str, shape (n_samples,)
        Sample identifiers (stored as an object array of ``str``).
    models : sequence of ModelInfo, length n_models
        The models of the columns, sorted by compute ascending (ties by name).
    pass_rates : array-like of shape (n_samples, n_models)
        Pass rates in [0, 1] (stored as float64).
    n_samples, n_correct : array-like of int, shape (n_samples, n_models), or None
        Completions drawn and completions correct per cell; both given or both
        ``None`` (``None`` when the counts are not known for every cell).

    Attributes
    ----------
    compute : ndarray of shape (n_models,)
        Training compute of the models in FLOPs.
    model_names : list of str
        Names of the models, in column order.

    Raises
    ------
    LadderValidationError
        Shapes that disagree, models not sorted by compute, non-finite pass rates or
        pass rates outside [0, 1], only one of the two count arrays.

    Examples
    --------
    >>> import numpy as np
    >>> models = [ModelInfo(f"m{i}", 1e8 * 2**i, 1e10, 6e18 * 2**i) for i in range(3)]
    >>> m = PassRateMatrix("toy", ["a", "b"], models, np.array([[0.1, 0.5, 0.9], [0, 0, 0.2]]))
    >>> m.select_models(["m0", "m2"]).pass_rates
    array([[0.1, 0.9],
           [0. , 0.2]])
    """

    benchmark: str
    sample_ids: np.ndarray
    models: tuple[ModelInfo, ...]
    pass_rates: np.ndarray
    n_samples: np.ndarray | None = None
    n_correct: np.ndarray | None = None

    def __post_init__(self):
        ids = np.asarray(self.sample_ids, dtype=object).reshape(-1)
        if ids.size and not all(type(s) is str for s in ids):
            ids = np.array([str(s) for s in ids], dtype=object)
        object.__setattr__(self, "sample_ids", ids)
        models = tuple(self.models)
        if not all(isinstance(m, ModelInfo) for m in models):
            raise TypeError("`models` should be a sequence of ModelInfo")
        if not _is_sorted(models):
            raise LadderValidationError(
                "models",
                [m.name for m in models],
                "Sort the models by compute (ties by name) and order the columns to match.",
                where=f"benchmark {self.benchmark!r}",
            )
        object.__setattr__(self, "models", models)
        rates = np.asarray(self.pass_rates, dtype=np.float64)
        expected = (len(ids), len(models))
        if rates.shape != expected:
            raise ValueError(
                f"``pass_rates`` should have shape (n_samples, n_models): "
                f"{rates.shape = } == {expected = }"
            )
        if not np.isfinite(rates).all() or rates.size and (rates.min() < 0 or rates.max() > 1):
            raise LadderValidationError(
                "pass_rates",
                "values outside [0, 1]",
                "Pass rates must be finite and within [0, 1].",
                where=f"benchmark {self.benchmark!r}",
            )
        object.__setattr__(self, "pass_rates", rates)
        if (self.n_samples is None) != (self.n_correct is None):
            raise LadderValidationError(
                "n_samples" if self.n_samples is None else "n_correct",
                None,
                "Give both n_samples and n_correct, or neither.",
                where=f"benchmark {self.benchmark!r}",
            )
        for field in ("n_samples", "n_correct"):
            counts = getattr(self, field)
            if counts is None:
                continue
            counts = np.asarray(counts, dtype=np.int64)
            if counts.shape != expected:
                raise ValueError(
                    f"``{field}`` should have the shape of ``pass_rates``: "
                    f"{counts.shape = } == {expected = }"
                )
            object.__setattr__(self, field, counts)

    @property
    def compute(self) -> np.ndarray:
        """Training compute of the models in FLOPs, shape (n_models,)."""
        return np.array([m.compute for m in self.models], dtype=np.float64)

    @property
    def model_names(self) -> list[str]:
        """Names of the models, in column order."""
        return [m.name for m in self.models]

    def select_models(self, names_or_mask) -> PassRateMatrix:
        """The matrix restricted to some models, still in compute order.

        Parameters
        ----------
        names_or_mask : sequence of str, bool array of shape (n_models,) or int array
            Model names, a boolean column mask, or column indices.

        Returns
        -------
        PassRateMatrix

        Raises
        ------
        LadderValidationError
            A name that is not a column of this matrix.
        """
        cols = self._column_index(names_or_mask)
        return dataclasses.replace(
            self,
            models=tuple(self.models[j] for j in cols),
            pass_rates=self.pass_rates[:, cols],
            n_samples=None if self.n_samples is None else self.n_samples[:, cols],
            n_correct=None if self.n_correct is None else self.n_correct[:, cols],
        )

    def select_samples(self, index_or_mask) -> PassRateMatrix:
        """The matrix restricted to (or resampled on) some samples.

        Parameters
        ----------
        index_or_mask : bool array of shape (n_samples,) or int array
            A boolean row mask, or row indices (repeats allowed, e.g. a bootstrap).

        Returns
        -------
        PassRateMatrix
        """
        rows = np.asarray(index_or_mask)
        if rows.dtype == bool and rows.shape != (len(self.sample_ids),):
            raise ValueError(
                f"a boolean ``index_or_mask`` should have shape (n_samples,): "
                f"{rows.shape = } == {self.sample_ids.shape = }"
            )
        return dataclasses.replace(
            self,
            sample_ids=self.sample_ids[rows],
            pass_rates=self.pass_rates[rows],
            n_samples=None if self.n_samples is None else self.n_samples[rows],
            n_correct=None if self.n_correct is None else self.n_correct[rows],
        )

    def _column_index(self, names_or_mask) -> np.ndarray:
        if isinstance(names_or_mask, str):
            names_or_mask = [names_or_mask]
        sel = np.asarray(names_or_mask)
        if sel.dtype == bool:
            if sel.shape != (len(self.models),):
                raise ValueError(
                    f"a boolean ``names_or_mask`` should have shape (n_models,): "
                    f"{sel.shape = } == {len(self.models) = }"
                )
            return np.flatnonzero(sel)
        if sel.size == 0:
            return np.zeros(0, dtype=np.intp)
        if np.issubdtype(sel.dtype, np.integer):
            return np.unique(sel)  # unique and sorted keeps the compute order
        index = {name: j for j, name in enumerate(self.model_names)}
        cols = []
        for name in sel.reshape(-1).tolist():
            if name not in index:
                raise LadderValidationError(
                    "models", name, f"Use one of {_names_hint(self.model_names)}.",
                    where=f"benchmark {self.benchmark!r}",
                )
            cols.append(index[name])
        return np.unique(cols)


# -------------------------------------------------------------------------- ladder


@dataclass(frozen=True, eq=False)
class _Scores:
    """One benchmark's scores on every model of a ladder, columns in ladder order.

    Counts are -1 where not given; ``None`` when given for no cell at all.
    """

    sample_ids: np.ndarray
    pass_rates: np.ndarray
    n_samples: np.ndarray | None
    n_correct: np.ndarray | None

    def columns(self, cols) -> _Scores:
        return _Scores(
            self.sample_ids,
            self.pass_rates[:, cols],
            None if self.n_samples is None else self.n_samples[:, cols],
            None if self.n_correct is None else self.n_correct[:, cols],
        )


class Ladder:
    """Models of a ladder and their per-sample pass rates on each benchmark.

    Build one with :meth:`from_records`, :meth:`from_columns`, :meth:`load` or the
    importers in :mod:`cod_monitor.ladder.importers`; the constructor takes ready-made
    matrices. A ladder is immutable: :meth:`with_roles` and :meth:`without_models`
    return new ladders.

    Parameters
    ----------
    models : sequence of ModelInfo
        Every model of the ladder, any order (stored sorted by compute, ties by name).
    matrices : mapping of str to PassRateMatrix
        Benchmark name -> its pass rates on *all* of ``models`` (columns in any order
        of the same models; they are reordered to the ladder's order).
    compute_unit : float, default 1e18
        FLOPs per compute unit the forecaster rescales to.

    Attributes
    ----------
    models : tuple of ModelInfo
        Sorted by compute ascending (ties by name).
    compute_unit : float
    benchmarks : list of str
        Sorted by name.

    Raises
    ------
    LadderValidationError
        Duplicate model names, fewer than 3 models with role ``'ladder'``, no
        benchmark, a matrix whose models differ from ``models``, duplicate sample
        ids, a bad ``compute_unit``.

    See Also
    --------
    cod_monitor.ladder.importers : build ladders from long tables and lm-evaluation-harness logs.

    Examples
    --------
    >>> models = [ModelInfo(f"m{i}", 1e8 * 2**i, 2e9 * 2**i, 1.2e18 * 4**i) for i in range(4)]
    >>> rows = [
    ...     {"benchmark": "toy", "sample_id": s, "model": m.name,
    ...      "score": min(1, 0.1 * (i + 1) * k)}
    ...     for k, s in enumerate(["a", "b", "c"], 1) for i, m in enumerate(models)
    ... ]
    >>> ladder = Ladder.from_records(models, rows).with_roles({"m3": "target"})
    >>> ladder
    Ladder(4 models: 3 ladder, 1 target; benchmarks: toy (3 samples))
    >>> ladder.matrix("toy").pass_rates.shape
    (3, 3)
    """

    def __init__(
        self,
        models: Sequence[ModelInfo],
        matrices: Mapping[str, PassRateMatrix],
        compute_unit: float = DEFAULT_COMPUTE_UNIT,
    ):
        ordered = _sort_models(models)
        names = [m.name for m in ordered]
        tables = {}
        for benchmark, mat in matrices.items():
            if not isinstance(mat, PassRateMatrix):
                raise TypeError(
                    f"`matrices` values should be PassRateMatrix, got {type(mat).__name__}"
                )
            if sorted(mat.model_names) != sorted(names):
                missing = sorted(set(names) - set(mat.model_names))
                extra = sorted(set(mat.model_names) - set(names))
                raise LadderValidationError(
                    "models",
                    {"missing": missing, "unknown": extra},
                    "Give every benchmark's matrix a column for each model of the ladder "
                    "and no other.",
                    where=f"benchmark {benchmark!r}",
                )
            cols = [mat.model_names.index(n) for n in names]
            tables[benchmark] = _Scores(
                mat.sample_ids,
                mat.pass_rates[:, cols],
                None if mat.n_samples is None else mat.n_samples[:, cols],
                None if mat.n_correct is None else mat.n_correct[:, cols],
            )
        self._set(ordered, tables, compute_unit, where="Ladder")

    # construction ---------------------------------------------------------------

    @classmethod
    def _create(cls, models, tables, compute_unit, where, *, derived=False) -> Ladder:
        """A ladder from already-ordered models and their ``_Scores`` (no copying)."""
        self = cls.__new__(cls)
        self._set(tuple(models), dict(tables), compute_unit, where=where, derived=derived)
        return self

    def _set(self, models, tables, compute_unit, where, derived=False):
        self._compute_unit = _finite_float(compute_unit, "compute_unit", where, positive=True)
        self._models = models
        self._index = {}
        for j, m in enumerate(models):
            if m.name in self._index:
                raise LadderValidationError(
                    "name", m.name, "Give every model a unique name.", where=where
                )
            self._index[m.name] = j
        if not derived:
            self._check_ladder_models(where)
        if not tables:
            raise LadderValidationError(
                "scores", "no benchmark", "Add the models' per-sample scores.", where=where
            )
        for benchmark in tables:
            if not isinstance(benchmark, str) or not benchmark:
                raise LadderValidationError(
                    "benchmark", benchmark, "Name every benchmark with a non-empty string.",
                    where=where,
                )
        self._tables = {b: tables[b] for b in sorted(tables)}
        for benchmark, table in self._tables.items():
            ids = table.sample_ids
            if len(ids) == 0:
                raise LadderValidationError(
                    "sample_id", "no samples", "Give every benchmark at least one sample.",
                    where=f"{where}, benchmark {benchmark!r}",
                )
            if len(set(ids.tolist())) != len(ids):
                seen: set = set()
                dup = next(s for s in ids.tolist() if s in seen or seen.add(s))
                raise LadderValidationError(
                    "sample_id", dup, "Give every sample of a benchmark a unique id.",
                    where=f"{where}, benchmark {benchmark!r}",
                )

    def _check_ladder_models(self, where):
        n_ladder = sum(m.role == "ladder" for m in self._models)
        if n_ladder < _MIN_LADDER_MODELS:
            raise LadderValidationError(
                "role",
                f"{n_ladder} model(s) with role 'ladder'",
                f"A ladder needs at least {_MIN_LADDER_MODELS} models with role 'ladder' to "
                "fit on; add models or change roles.",
                where=where,
            )

    @classmethod
    def from_columns(
        cls,
        models: Sequence[ModelInfo],
        columns: Mapping[str, Sequence],
        *,
        compute_unit: float = DEFAULT_COMPUTE_UNIT,
        drop_incomplete: bool = False,
        source: str = "columns",
        line_numbers: Sequence[int] | None = None,
    ) -> Ladder:
        """Build and validate a ladder from a long table given as columns.

        The fast path behind :meth:`from_records`, :meth:`load` and the importers.

        Parameters
        ----------
        models : sequence of ModelInfo
            Every model of the ladder; each must have at least one score.
        columns : mapping of str to sequence
            Equal-length columns ``benchmark``, ``sample_id``, ``model`` and ``score``,
            optionally ``n_samples`` and ``n_correct`` (``None`` or ``''`` where a row
            has no counts). Values may be strings (as read from a CSV) or numbers.
            Without ``score``, the score is ``n_correct / n_samples``.
        compute_unit : float, default 1e18
            FLOPs per compute unit.
        drop_incomplete : bool, default False
            Drop samples that lack a score for some model (with a
            :class:`~cod_monitor.exceptions.FitWarning` giving the count) instead of
            raising.
        source : str, default 'columns'
            Name of the data's origin, for error messages.
        line_numbers : sequence of int, optional
            Line of each row in ``source``, for error messages (default: row number
            from 1).

        Returns
        -------
        Ladder

        Raises
        ------
        LadderValidationError
            A missing column; a NaN, infinite or out-of-range score; a duplicate
            (benchmark, sample_id, model); a row naming an unknown model; a model
            with no scores; incomplete samples (unless ``drop_incomplete``); counts
            that are not integers, ``n_correct > n_samples``, negative counts, or a
            score that differs from ``n_correct / n_samples`` by more than 1e-6.

        Warns
        -----
        FitWarning
            When ``drop_incomplete`` drops samples.
        """
        return _Builder(models, columns, source, line_numbers).build(
            cls, compute_unit, drop_incomplete
        )

    @classmethod
    def from_records(
        cls,
        models: Sequence[ModelInfo],
        rows: Iterable[Mapping],
        *,
        compute_unit: float = DEFAULT_COMPUTE_UNIT,
        drop_incomplete: bool = False,
        source: str = "records",
    ) -> Ladder:
        """Build and validate a ladder from score records.

        Parameters
        ----------
        models : sequence of ModelInfo
            Every model of the ladder; each must have at least one score.
        rows : iterable of mapping
            Records with keys ``benchmark``, ``sample_id``, ``model``, ``score`` and
            optionally ``n_samples``, ``n_correct``. ``sample_id`` is converted with
            ``str``. Sample order within a benchmark is the order of first appearance.
        compute_unit : float, default 1e18
            FLOPs per compute unit.
        drop_incomplete : bool, default False
            Drop samples missing a score for some model, with a warning, instead of
            raising.
        source : str, default 'records'
            Name of the records' origin, for error messages.

        Returns
        -------
        Ladder

        Raises
        ------
        LadderValidationError
            As :meth:`from_columns`; also a record missing a required key.

        Warns
        -----
        FitWarning
            When ``drop_incomplete`` drops samples.
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
        return cls.from_columns(
            models, columns, compute_unit=compute_unit, drop_incomplete=drop_incomplete,
            source=source,
        )

    @classmethod
    def load(cls, path, *, drop_incomplete: bool = False) -> Ladder:
        """Read a ladder directory (``ladder.json`` + ``scores.csv[.gz]``).

        Parameters
        ----------
        path : str or path-like
            The ladder directory.
        drop_incomplete : bool, default False
            Drop samples missing a score for some model, with a warning, instead of
            raising.

        Returns
        -------
        Ladder

        Raises
        ------
        LadderValidationError
            A missing directory or file, both ``scores.csv`` and ``scores.csv.gz``,
            malformed JSON or CSV, an unsupported ``schema_version``, and every
            check of :meth:`from_columns`.
        """
        path = Path(path)
        if not path.is_dir():
            raise LadderValidationError(
                "path", str(path), "Give the directory that holds ladder.json and scores.csv.",
            )
        models, compute_unit = _read_ladder_json(path / LADDER_JSON)
        scores_path = _scores_path(path)
        columns, lines = _read_scores_csv(scores_path)
        return cls.from_columns(
            models, columns, compute_unit=compute_unit, drop_incomplete=drop_incomplete,
            source=str(scores_path), line_numbers=lines,
        )

    def save(self, path, *, compress: bool = False) -> Path:
        """Write the ladder to a directory (created if needed).

        Writes ``ladder.json`` and ``scores.csv`` (``scores.csv.gz`` with
        ``compress=True``, byte-for-byte reproducible), each atomically, and removes
        the other scores file if present. Rows are sorted by benchmark, sample
        order, then model compute; floats are written with ``repr`` precision so
        that ``Ladder.load(ladder.save(p))`` is lossless.

        Parameters
        ----------
        path : str or path-like
            The ladder directory.
        compress : bool, default False
            Gzip the scores.

        Returns
        -------
        Path
            The directory.

        Raises
        ------
        LadderValidationError
            ``path`` exists and is not a directory or cannot be written; fewer than 3
            models with role ``'ladder'`` (such a ladder would not load).
        """
        self._check_ladder_models(where="save")
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise LadderValidationError(
                "path", str(path), "Give a directory (new or existing), not a file."
            )
        try:
            self._write(path, compress)
        except OSError as exc:
            raise LadderValidationError(
                "path", str(path), f"Give a writable directory ({exc.strerror or exc})."
            ) from None
        return path

    def _write(self, path: Path, compress: bool) -> None:
        path.mkdir(parents=True, exist_ok=True)
        meta = {
            "schema_version": SCHEMA_VERSION,
            "compute_unit": self._compute_unit,
            "models": [m.to_dict() for m in self._models],
        }
        atomic_write(path / LADDER_JSON, (json.dumps(meta, indent=2) + "\n").encode())
        name, stale = (SCORES_CSV_GZ, SCORES_CSV) if compress else (SCORES_CSV, SCORES_CSV_GZ)
        data = self._scores_csv_text().encode()
        if compress:
            buf = io.BytesIO()
            # fixed mtime and no file name: the same ladder gives the same bytes
            with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0) as gz:
                gz.write(data)
            data = buf.getvalue()
        atomic_write(path / name, data)
        (path / stale).unlink(missing_ok=True)

    def _scores_csv_text(self) -> str:
        has_counts = any(t.n_samples is not None for t in self._tables.values())
        header = list(SCORE_COLUMNS) + (list(COUNT_COLUMNS) if has_counts else [])
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        names = np.array([m.name for m in self._models], dtype=object)
        for benchmark, t in self._tables.items():
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

    # access ---------------------------------------------------------------------

    @property
    def models(self) -> tuple[ModelInfo, ...]:
        """Every model, sorted by compute ascending (ties by name)."""
        return self._models

    @property
    def compute_unit(self) -> float:
        """FLOPs per compute unit."""
        return self._compute_unit

    @property
    def benchmarks(self) -> list[str]:
        """Benchmark names, sorted."""
        return list(self._tables)

    def model(self, name: str) -> ModelInfo:
        """The model called ``name``.

        Raises
        ------
        LadderValidationError
            No model has that name (the message lists some known names).
        """
        j = self._index.get(name)
        if j is None:
            raise LadderValidationError(
                "model", name, f"Use one of the ladder's models: {_names_hint(list(self._index))}."
            )
        return self._models[j]

    def models_with_role(self, *roles: str) -> tuple[ModelInfo, ...]:
        """The models whose role is one of ``roles``, in compute order."""
        roles = _check_roles(roles)
        return tuple(m for m in self._models if m.role in roles)

    def matrix(
        self,
        benchmark: str,
        *,
        roles: Sequence[str] = ("ladder",),
        models: Sequence[str] | None = None,
    ) -> PassRateMatrix:
        """The pass-rate matrix of ``benchmark`` on some of the models.

        Parameters
        ----------
        benchmark : str
            The benchmark.
        roles : sequence of str, default ('ladder',)
            Keep the models with these roles. Ignored when ``models`` is given.
        models : sequence of str, optional
            Keep exactly these models (returned in compute order). Targets are
            refused: they are never fitted on.

        Returns
        -------
        PassRateMatrix
            Counts are ``None`` unless known for every cell of the selection.

        Raises
        ------
        LadderValidationError
            Unknown benchmark, role or model; ``models`` naming a target; a selection
            with no model.
        """
        table = self._table(benchmark)
        if models is not None:
            if isinstance(models, str):
                models = [models]
            cols = []
            for name in models:
                m = self.model(name)
                if m.role == "target":
                    raise LadderValidationError(
                        "models", name, "Targets are never fit on; change its role or drop "
                        "it from models.", where=f"benchmark {benchmark!r}",
                    )
                cols.append(self._index[name])
            cols = sorted(set(cols))
            if not cols:
                raise LadderValidationError(
                    "models", list(models), "Name at least one model.",
                    where=f"benchmark {benchmark!r}",
                )
        else:
            roles = _check_roles(roles)
            cols = [j for j, m in enumerate(self._models) if m.role in roles]
            if not cols:
                raise LadderValidationError(
                    "roles", tuple(roles), "No model has these roles; the ladder's roles are "
                    f"{sorted({m.role for m in self._models})}.",
                )
        sub = table.columns(cols)
        counts_known = sub.n_samples is not None and bool((sub.n_samples >= 0).all())
        return PassRateMatrix(
            benchmark=benchmark,
            sample_ids=sub.sample_ids.copy(),
            models=tuple(self._models[j] for j in cols),
            pass_rates=sub.pass_rates,
            n_samples=sub.n_samples if counts_known else None,
            n_correct=sub.n_correct if counts_known else None,
        )

    def with_roles(self, roles: Mapping[str, str]) -> Ladder:
        """A copy with some models' roles changed (e.g. hold one out as ``'target'``).

        The copy may have fewer than 3 ladder models (the forecaster checks what it
        needs); :meth:`save` refuses such a ladder.

        Parameters
        ----------
        roles : mapping of str to str
            Model name -> new role.

        Returns
        -------
        Ladder

        Raises
        ------
        LadderValidationError
            Unknown model or role.
        """
        changed = {}
        for name, role in roles.items():
            self.model(name)
            _check_roles((role,))
            changed[name] = role
        models = tuple(
            dataclasses.replace(m, role=changed[m.name]) if m.name in changed else m
            for m in self._models
        )
        return Ladder._create(models, self._tables, self._compute_unit, where="with_roles",
                              derived=True)

    def with_compute(self, compute: Mapping[str, float]) -> Ladder:
        """A copy with some models' compute changed (models re-ordered by compute).

        Used by the recipe transport (:mod:`cod_monitor.cod.transport`), which moves
        models to their effective compute on the target's recipe.

        Parameters
        ----------
        compute : mapping of str to float
            Model name -> new compute in FLOPs (positive, finite).

        Returns
        -------
        Ladder

        Raises
        ------
        LadderValidationError
            Unknown model, or a compute that is not positive and finite.
        """
        for name, value in compute.items():
            self.model(name)
            _finite_float(value, "compute", f"with_compute[{name!r}]", positive=True)
        models = [
            dataclasses.replace(m, compute=float(compute[m.name])) if m.name in compute else m
            for m in self._models
        ]
        order = sorted(range(len(models)), key=lambda j: (models[j].compute, models[j].name))
        tables = {b: t.columns(order) for b, t in self._tables.items()}
        return Ladder._create(tuple(models[j] for j in order), tables, self._compute_unit,
                              where="with_compute", derived=True)

    def without_models(self, names: str | Iterable[str]) -> Ladder:
        """A copy without some models.

        The copy may have fewer than 3 ladder models, as in :meth:`with_roles`.

        Parameters
        ----------
        names : str or iterable of str
            Models to drop.

        Returns
        -------
        Ladder

        Raises
        ------
        LadderValidationError
            Unknown model, or no model left.
        """
        if isinstance(names, str):
            names = [names]
        drop = {self.model(n).name for n in names}
        keep = [j for j, m in enumerate(self._models) if m.name not in drop]
        if not keep:
            raise LadderValidationError("names", sorted(drop), "Keep at least one model.")
        tables = {b: t.columns(keep) for b, t in self._tables.items()}
        models = tuple(self._models[j] for j in keep)
        return Ladder._create(models, tables, self._compute_unit, where="without_models",
                              derived=True)

    def __repr__(self) -> str:
        counts = {}
        for m in self._models:
            counts[m.role] = counts.get(m.role, 0) + 1
        roles = ", ".join(f"{counts[r]} {r}" for r in ROLES if r in counts)
        benches = [f"{b} ({len(t.sample_ids)} samples)" for b, t in self._tables.items()]
        if len(benches) > 4:
            benches = benches[:4] + [f"... {len(benches) - 4} more"]
        return f"Ladder({len(self._models)} models: {roles}; benchmarks: {', '.join(benches)})"

    def _table(self, benchmark: str) -> _Scores:
        table = self._tables.get(benchmark)
        if table is None:
            raise LadderValidationError(
                "benchmark", benchmark, f"Use one of the ladder's benchmarks: "
                f"{_names_hint(list(self._tables))}."
            )
        return table


def _check_roles(roles) -> tuple[str, ...]:
    roles = (roles,) if isinstance(roles, str) else tuple(roles)
    for role in roles:
        if role not in ROLES:
            raise LadderValidationError("role", role, f"Use one of {', '.join(map(repr, ROLES))}.")
    return roles


# -------------------------------------------------------------- long table -> ladder


class _Builder:
    """Validate a long table given as columns and assemble per-benchmark matrices."""

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

    def build(self, cls, compute_unit, drop_incomplete) -> Ladder:
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
                raise ValueError(
                    f"columns should have equal lengths: {len(col) = } for {key!r} == {n = }"
                )

        model_idx = self._model_index(cols["model"])
        bench, bench_of_row = self._benchmarks(cols["benchmark"])
        sample_ids = cols["sample_id"]
        if set(map(type, sample_ids)) - {str}:
            sample_ids = [s if type(s) is str else self._sample_id(s, i)
                          for i, s in enumerate(sample_ids)]
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
            tables[b] = _Scores(
                key_ids[rows],
                block,
                None if ns is None else ns[rows],
                None if nc is None else nc[rows],
            )
        return cls._create(self.models, tables, compute_unit, where=self.source)

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


def _read_ladder_json(path: Path) -> tuple[list[ModelInfo], float]:
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
    return models, compute_unit


def _scores_path(directory: Path) -> Path:
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


def _read_scores_csv(path: Path) -> tuple[dict[str, list], list[int]]:
    """Columns of ``scores.csv[.gz]`` (strings) and the line of each row."""
    try:
        raw = path.read_bytes()
        if path.name.endswith(".gz"):
            raw = gzip.decompress(raw)  # whole-file decompression beats a streaming reader
        with io.StringIO(raw.decode("utf-8-sig"), newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            rows = list(reader)
            if reader.line_num == len(rows) + 1:  # one line per row: numbers are implied
                lines = list(range(2, len(rows) + 2))
            else:  # blank lines or quoted newlines: recount, tolerating blank lines
                f.seek(0)
                reader = csv.reader(f)
                next(reader)
                rows, lines = [], []
                for row in reader:
                    if row:
                        rows.append(row)
                        lines.append(reader.line_num)
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
    width = len(header)
    for row, line in zip(rows, lines):
        if len(row) != width:
            raise LadderValidationError(
                "row", row, f"Every row needs {width} fields ({','.join(header)}).",
                where=f"{path}:{line}",
            )
    # itemgetter per column is several times faster than zip(*rows) on long tables
    return {name: list(map(itemgetter(j), rows)) for j, name in enumerate(header)}, lines


def load_ladder(ladder) -> Ladder:
    """Accept a :class:`Ladder` or a path to a ladder directory."""
    if isinstance(ladder, Ladder):
        return ladder
    if isinstance(ladder, (str, os.PathLike)):
        return Ladder.load(ladder)
    raise TypeError(f"`ladder` should be a Ladder or a directory path, got {type(ladder).__name__}")

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
    for name in ("ladder.json", "scores.csv", "scores.csv.gz"):
        f = path / name
        if f.exists():
            found = True
            h.update(name.encode())
            with open(f, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest() if found else "missing"
