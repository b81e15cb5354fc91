"""The records of a ladder: :class:`ModelInfo` (one model) and :class:`PassRateMatrix`
(per-sample pass rates of some models on one benchmark).

The :class:`~cod_monitor.ladder.ladder.Ladder` holds them; every check raises
:class:`~cod_monitor.exceptions.LadderValidationError`, whose message names the field,
the value found and the fix.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from cod_monitor.exceptions import InputError, LadderValidationError

__all__ = [
    "ModelInfo",
    "PassRateMatrix",
    "ROLES",
    "DEFAULT_COMPUTE_UNIT",
    "SCORE_COLUMNS",
    "COUNT_COLUMNS",
    "LR_SCHEDULES",
]

#: The roles a model may have: fitted on, used as a mapping anchor, or held out.
ROLES = ("ladder", "anchor", "target")
#: FLOPs per compute unit, the paper's unit.
DEFAULT_COMPUTE_UNIT = 1e18
#: Required columns of ``scores.csv``.
SCORE_COLUMNS = ("benchmark", "sample_id", "model", "score")
#: Optional columns of ``scores.csv``.
COUNT_COLUMNS = ("n_samples", "n_correct")

#: Common names of learning-rate schedules for ``ModelInfo.lr_schedule`` (others are
#: accepted: the name is a label, compared as written).
LR_SCHEDULES = ("constant", "constant_with_warmup", "cosine", "linear", "wsd")

_MODEL_KEYS = ("name", "params", "tokens", "compute", "step", "role", "run", "loss",
               "learning_rate", "lr_schedule")
_REQUIRED_MODEL_KEYS = ("name", "params", "tokens", "compute")


def _names_hint(names: Sequence[str], limit: int = 8) -> str:
    """``'a', 'b', ... (12 in all)`` for error messages."""
    shown = ", ".join(repr(n) for n in names[:limit])
    if len(names) > limit:
        shown += f", ... ({len(names)} in all)"
    return shown


def _finite_float(value, field: str, where: str | None, *, positive: bool,
                  fix: str | None = None) -> float:
    """``float(value)``, required finite (and > 0 when ``positive``); ``fix`` replaces the
    default advice of the error."""
    kind = "a finite positive number" if positive else "a finite number"
    fix = fix or f"Give {field} as {kind}."
    if isinstance(value, bool):
        raise LadderValidationError(field, value, fix, where=where)
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise LadderValidationError(field, value, fix, where=where) from None
    if not math.isfinite(out) or (positive and out <= 0):
        raise LadderValidationError(field, value, fix, where=where)
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
    learning_rate : float or None, default None
        Peak learning rate of the model's training run (the constant rate of a
        constant schedule), > 0. Part of the recipe: a target whose rate departs
        from the ladder's trend (:meth:`Ladder.learning_rate_trend
        <cod_monitor.ladder.Ladder.learning_rate_trend>`) is forecast less reliably.
    lr_schedule : str or None, default None
        Short name of the run's learning-rate schedule, e.g. ``'constant'``,
        ``'constant_with_warmup'``, ``'cosine'``, ``'linear'``, ``'wsd'``
        (:data:`LR_SCHEDULES` lists these common names; any non-empty name is
        accepted).

    Raises
    ------
    LadderValidationError
        Empty name, non-positive or non-finite ``params``/``tokens``/``compute``,
        non-integer or negative ``step``, unknown ``role``, empty ``run``,
        non-finite or negative ``loss``, non-positive or non-finite ``learning_rate``, empty or
        non-string ``lr_schedule``.

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
    learning_rate: float | None = None
    lr_schedule: str | None = None

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
            loss = _finite_float(self.loss, "loss", where, positive=False)
            if loss < 0:  # a cross-entropy: a negative one is a sign flip or another metric
                raise LadderValidationError(
                    "loss", self.loss, "Give loss as the model's validation loss (a "
                    "cross-entropy, >= 0) or leave it out.", where=where)
            object.__setattr__(self, "loss", loss)
        if self.learning_rate is not None:
            object.__setattr__(self, "learning_rate", _finite_float(
                self.learning_rate, "learning_rate", where, positive=True,
                fix="Give learning_rate as the run's peak learning rate, a finite positive "
                "number (e.g. 3e-4), or leave it out."))
        if self.lr_schedule is not None and (
                not isinstance(self.lr_schedule, str) or not self.lr_schedule.strip()):
            raise LadderValidationError(
                "lr_schedule", self.lr_schedule, "Give lr_schedule as a short non-empty name "
                f"such as {', '.join(map(repr, LR_SCHEDULES))}, or leave it out.", where=where
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
        if self.learning_rate is not None:
            out["learning_rate"] = self.learning_rate
        if self.lr_schedule is not None:
            out["lr_schedule"] = self.lr_schedule
        return out

    @classmethod
    def from_dict(cls, entry: Mapping, *, where: str | None = None) -> ModelInfo:
        """Build a model from a ``ladder.json`` entry.

        Parameters
        ----------
        entry : mapping
            Keys ``name``, ``params``, ``tokens``, ``compute`` (required) and
            ``step``, ``role``, ``run``, ``loss``, ``learning_rate``, ``lr_schedule``
            (optional; ``None`` means unset).
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
            raise InputError(
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
                raise InputError(
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
            raise InputError(
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
                raise InputError(
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


# ---------------------------------------------------------------- a ladder's tables


@dataclass(frozen=True, eq=False)
class ScoreTable:
    """One benchmark's scores on every model of a ladder, columns in ladder order.

    Counts are -1 where not given; ``None`` when given for no cell at all.
    """

    sample_ids: np.ndarray
    pass_rates: np.ndarray
    n_samples: np.ndarray | None
    n_correct: np.ndarray | None

    def columns(self, cols) -> ScoreTable:
        return ScoreTable(
            self.sample_ids,
            self.pass_rates[:, cols],
            None if self.n_samples is None else self.n_samples[:, cols],
            None if self.n_correct is None else self.n_correct[:, cols],
        )

