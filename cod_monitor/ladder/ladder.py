"""The :class:`Ladder`: models of one recipe and their per-sample pass rates.

A *ladder* is a set of models trained with one recipe at growing compute, each
evaluated sample by sample on one or more benchmarks. In memory it is a
:class:`Ladder` holding, per benchmark, a ``(n_samples, n_models)`` pass-rate
matrix whose columns are ordered by compute. On disk it is a directory
(:mod:`cod_monitor.ladder.storage`); long tables become ladders through
:mod:`cod_monitor.ladder.builder`.

Every check raises :class:`~cod_monitor.exceptions.LadderValidationError`, whose
message names the field, the value found and the fix.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from cod_monitor.exceptions import LadderValidationError
from cod_monitor.ladder.builder import TableBuilder, records_to_columns
from cod_monitor.ladder.model import (
    DEFAULT_COMPUTE_UNIT,
    ROLES,
    ModelInfo,
    PassRateMatrix,
    ScoreTable,
    _finite_float,
    _names_hint,
    _sort_models,
)
from cod_monitor.ladder.settings import EvalSettings
from cod_monitor.ladder.storage import (
    LADDER_JSON,
    read_ladder_json,
    read_scores_csv,
    scores_path,
    write_ladder,
)

__all__ = ["Ladder", "load_ladder"]

_MIN_LADDER_MODELS = 3


class Ladder:
    """Models of a ladder and their per-sample pass rates on each benchmark.

    Build one with :meth:`from_records`, :meth:`from_columns`, :meth:`load` or the
    importers in :mod:`cod_monitor.ladder.importers`; the constructor takes ready-made
    matrices. A ladder is immutable: :meth:`with_roles`, :meth:`with_compute`,
    :meth:`without_models` and :meth:`with_eval_settings` return new ladders (each keeps
    the evaluation settings).

    Parameters
    ----------
    models : sequence of ModelInfo
        Every model of the ladder, any order (stored sorted by compute, ties by name).
    matrices : mapping of str to PassRateMatrix
        Benchmark name -> its pass rates on *all* of ``models`` (columns in any order
        of the same models; they are reordered to the ladder's order).
    compute_unit : float, default 1e18
        FLOPs per compute unit the forecaster rescales to.
    eval_settings : mapping of str to EvalSettings or dict, optional
        Benchmark -> how its pass rates were scored
        (:class:`~cod_monitor.ladder.settings.EvalSettings`: stop marker, scorer,
        evaluator mode, temperature, ...). Benchmarks left out record none.

    Attributes
    ----------
    models : tuple of ModelInfo
        Sorted by compute ascending (ties by name).
    compute_unit : float
    benchmarks : list of str
        Sorted by name.
    eval_settings : dict of str to EvalSettings
        The benchmarks that record evaluation settings, sorted by name.

    Raises
    ------
    LadderValidationError
        Duplicate model names, fewer than 3 models with role ``'ladder'``, no
        benchmark, a matrix whose models differ from ``models``, duplicate sample
        ids, a bad ``compute_unit``, evaluation settings of a benchmark without scores
        or with a bad value.

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
        eval_settings: Mapping[str, EvalSettings | Mapping] | None = None,
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
            tables[benchmark] = ScoreTable(
                mat.sample_ids,
                mat.pass_rates[:, cols],
                None if mat.n_samples is None else mat.n_samples[:, cols],
                None if mat.n_correct is None else mat.n_correct[:, cols],
            )
        self._set(ordered, tables, compute_unit, where="Ladder", eval_settings=eval_settings)

    # construction ---------------------------------------------------------------

    @classmethod
    def _create(cls, models, tables, compute_unit, where, *, derived=False,
                eval_settings=None) -> Ladder:
        """A ladder from already-ordered models and their ``ScoreTable`` (no copying)."""
        self = cls.__new__(cls)
        self._set(tuple(models), dict(tables), compute_unit, where=where, derived=derived,
                  eval_settings=eval_settings)
        return self

    def _set(self, models, tables, compute_unit, where, derived=False, eval_settings=None):
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
        self._settings = self._check_settings(eval_settings or {}, where)

    def _check_settings(self, eval_settings, where) -> dict[str, EvalSettings]:
        """Benchmark -> settings, validated; benchmarks that record nothing left out."""
        if not isinstance(eval_settings, Mapping):
            raise LadderValidationError(
                "eval_settings", eval_settings, "Give a mapping of benchmark name to its "
                "evaluation settings.", where=where)
        out = {}
        for benchmark in sorted(eval_settings, key=str):
            if benchmark not in self._tables:
                raise LadderValidationError(
                    "eval_settings", benchmark, "Record evaluation settings only for the "
                    f"ladder's benchmarks ({_names_hint(list(self._tables))}); remove this "
                    "entry or fix its name.", where=where)
            settings = EvalSettings.from_dict(
                eval_settings[benchmark], where=f"{where}, eval_settings[{benchmark!r}]")
            if settings.recorded:
                out[benchmark] = settings
        return out

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
    def from_columns(cls, models: Sequence[ModelInfo], columns: Mapping[str, Sequence], *,
                     compute_unit: float = DEFAULT_COMPUTE_UNIT, drop_incomplete: bool = False,
                     source: str = "columns", line_numbers: Sequence[int] | None = None,
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
            Validated; models sorted by compute (ties by name).

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
        models, tables = TableBuilder(models, columns, source, line_numbers).build(
            drop_incomplete
        )
        return cls._create(models, tables, compute_unit, where=source)

    @classmethod
    def from_records(cls, models: Sequence[ModelInfo], rows: Iterable[Mapping], *,
                     compute_unit: float = DEFAULT_COMPUTE_UNIT, drop_incomplete: bool = False,
                     source: str = "records") -> Ladder:
        """Build and validate a ladder from score records.

        Parameters
        ----------
        models : sequence of ModelInfo
            Every model of the ladder; each must have at least one score.
        rows : iterable of mapping
            Records with keys ``benchmark``, ``sample_id``, ``model``, ``score`` and
            optionally ``n_samples``, ``n_correct``. ``sample_id`` is converted with
            ``str``. Sample order within a benchmark is the order of first appearance.
        compute_unit, drop_incomplete, source
            As :meth:`from_columns` (``source`` defaults to ``'records'``).

        Returns
        -------
        Ladder
            As :meth:`from_columns` returns it.

        Raises
        ------
        LadderValidationError
            As :meth:`from_columns`; also a record missing a required key.
        """
        columns = records_to_columns(rows, source)
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
            The ladder stored in ``path``.

        Raises
        ------
        LadderValidationError
            A missing directory or file, both ``scores.csv`` and ``scores.csv.gz``,
            malformed JSON or CSV, an unsupported ``schema_version``, evaluation
            settings of the wrong type or for a benchmark without scores, and every
            check of :meth:`from_columns`.
        """
        path = Path(path)
        if not path.is_dir():
            raise LadderValidationError(
                "path", str(path), "Give the directory that holds ladder.json and scores.csv.",
            )
        models, compute_unit, settings = read_ladder_json(path / LADDER_JSON)
        scores = scores_path(path)
        columns, lines = read_scores_csv(scores)
        ladder = cls.from_columns(
            models, columns, compute_unit=compute_unit, drop_incomplete=drop_incomplete,
            source=str(scores), line_numbers=lines,
        )
        # the new ladder is not shared yet: its settings are set in place
        ladder._settings = ladder._check_settings(settings, where=str(path / LADDER_JSON))
        return ladder

    def save(self, path, *, compress: bool = False) -> Path:
        """Write the ladder to a directory (created if needed).

        Writes ``ladder.json`` (with the evaluation settings, when any) and
        ``scores.csv`` (``scores.csv.gz`` with
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
            write_ladder(path, self._models, self._tables, self._compute_unit,
                         compress=compress, eval_settings=self._settings)
        except OSError as exc:
            raise LadderValidationError(
                "path", str(path), f"Give a writable directory ({exc.strerror or exc})."
            ) from None
        return path

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

    @property
    def eval_settings(self) -> dict[str, EvalSettings]:
        """Benchmark -> its evaluation settings, for the benchmarks that record them."""
        return dict(self._settings)

    def eval_settings_for(self, benchmark: str) -> EvalSettings | None:
        """How ``benchmark``'s pass rates were scored, or ``None`` when not recorded.

        Raises
        ------
        LadderValidationError
            Unknown benchmark.
        """
        self._table(benchmark)
        return self._settings.get(benchmark)

    def with_eval_settings(self, eval_settings: Mapping[str, EvalSettings | Mapping | None]
                           ) -> Ladder:
        """A copy recording other evaluation settings for some benchmarks.

        Parameters
        ----------
        eval_settings : mapping of str to EvalSettings, dict or None
            Benchmark -> its settings (an :class:`~cod_monitor.ladder.settings.EvalSettings`
            or its ``ladder.json`` dict), replacing what the benchmark recorded; ``None``
            removes them. Other benchmarks keep theirs.

        Returns
        -------
        Ladder

        Raises
        ------
        LadderValidationError
            A benchmark the ladder lacks, or a bad setting.

        Examples
        --------
        >>> from cod_monitor.synthetic import synthetic_ladder
        >>> ladder = synthetic_ladder(n_samples=20, seed=0).ladder
        >>> b = ladder.benchmarks[0]
        >>> ladder.with_eval_settings({b: {"stop": "\\n", "mode": "exact"}}).eval_settings_for(b)
        EvalSettings(stop='\\n', mode='exact')
        """
        if not isinstance(eval_settings, Mapping):
            raise LadderValidationError(
                "eval_settings", eval_settings, "Give a mapping of benchmark name to its "
                "evaluation settings (None removes them).", where="with_eval_settings")
        merged = dict(self._settings)
        for benchmark, settings in eval_settings.items():
            if settings is None:
                if benchmark not in self._tables:
                    self._table(benchmark)  # raises: the ladder has no such benchmark
                merged.pop(benchmark, None)
            else:
                merged[benchmark] = settings
        return Ladder._create(self._models, self._tables, self._compute_unit,
                              where="with_eval_settings", derived=True, eval_settings=merged)

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

    def learning_rate_trend(self, *, roles: Sequence[str] = ("ladder",)):
        """The ladder's peak learning rate as a power law of parameters, or ``None``.

        Fits ``log(learning_rate)`` against ``log(params)`` over the final checkpoint of
        every run with one of ``roles`` that records a ``learning_rate`` (see
        :func:`~cod_monitor.ladder.trend.learning_rate_trend`). A monitor compares a
        target's rate with ``trend.at(target_params)``: a recipe that departs from the
        ladder's trend makes the ladder's forecast less reliable.

        Parameters
        ----------
        roles : sequence of str, default ('ladder',)

        Returns
        -------
        LearningRateTrend or None
            ``None`` when fewer than 2 sizes record a learning rate.

        Raises
        ------
        LadderValidationError
            An unknown role.
        """
        from cod_monitor.ladder.trend import learning_rate_trend

        return learning_rate_trend(self._models, roles=roles)

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
            A new ladder; this one is left unchanged.

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
                              derived=True, eval_settings=self._settings)

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
            A new ladder, models sorted by their new compute.

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
                              where="with_compute", derived=True, eval_settings=self._settings)

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
            A new ladder without ``names``.

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
                              derived=True, eval_settings=self._settings)

    def __repr__(self) -> str:
        counts = {}
        for m in self._models:
            counts[m.role] = counts.get(m.role, 0) + 1
        roles = ", ".join(f"{counts[r]} {r}" for r in ROLES if r in counts)
        benches = [f"{b} ({len(t.sample_ids)} samples)" for b, t in self._tables.items()]
        if len(benches) > 4:
            benches = benches[:4] + [f"... {len(benches) - 4} more"]
        return f"Ladder({len(self._models)} models: {roles}; benchmarks: {', '.join(benches)})"

    def _table(self, benchmark: str) -> ScoreTable:
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


def load_ladder(ladder) -> Ladder:
    """``ladder`` itself if it is a :class:`Ladder`, else :meth:`Ladder.load` of the path.

    Parameters
    ----------
    ladder : Ladder or str or path-like

    Returns
    -------
    Ladder
        ``ladder`` itself, or the ladder stored in the directory.

    Raises
    ------
    TypeError
        Neither a ladder nor a path.
    LadderValidationError
        As :meth:`Ladder.load`.
    """
    if isinstance(ladder, Ladder):
        return ladder
    if isinstance(ladder, (str, os.PathLike)):
        return Ladder.load(ladder)
