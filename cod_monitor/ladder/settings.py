"""How a ladder benchmark was scored: :class:`EvalSettings`.

A pass rate depends on more than a checkpoint and its prompts: on where a completion
is cut (the evaluation set's stop marker), how it is compared with the answer (the
scorer) and how completions are drawn (the evaluator's mode, temperature, top-p, and
in ``sampled`` mode the number of completions and the generation budget). A run scored
otherwise than its ladder cannot be compared with the ladder's forecast; an evaluation
set without the ladder's stop marker, for one, scores every checkpoint 0.

A ladder records these settings per benchmark in the optional ``eval_settings`` section
of ``ladder.json``::

    "eval_settings": {
      "gsm8k": {"stop": "\\n", "scorer": "exact", "mode": "exact",
                "temperature": 1.0, "top_p": 0.7}
    }

A key left out is *not recorded* (unknown, never checked); ``null`` is a value:
``"stop": null`` means no stop marker (the answer ends at the end-of-sequence token),
``"max_new_tokens": null`` a budget sized from the answers, as in the evaluator. The
monitor compares the recorded settings with its run's at start
(:func:`cod_monitor.monitor.checks.check_eval_sets`). This module needs nothing but the
standard library: resolving an evaluator config's defaults happens in
:mod:`cod_monitor.evaluators.settings`.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cod_monitor.exceptions import LadderValidationError

__all__ = [
    "EVAL_MODES",
    "EVAL_SET_FIELDS",
    "EVALUATOR_FIELDS",
    "SAMPLED_ONLY_FIELDS",
    "SETTING_FIELDS",
    "UNKNOWN",
    "EvalSettings",
    "describe_value",
    "settings_by_benchmark",
]

#: The evaluation modes (those of :data:`cod_monitor.evaluators.base.MODES`).
EVAL_MODES = ("exact", "sampled")
#: Settings that belong to the evaluation set.
EVAL_SET_FIELDS = ("stop", "scorer")
#: Settings that belong to the evaluator config.
EVALUATOR_FIELDS = ("mode", "n", "temperature", "top_p", "max_new_tokens")
#: Every setting, in ``ladder.json`` order.
SETTING_FIELDS = EVAL_SET_FIELDS + EVALUATOR_FIELDS
#: Settings that change a ``sampled`` pass rate only: ``exact`` mode draws no completion.
SAMPLED_ONLY_FIELDS = ("n", "max_new_tokens")


class _Unknown(enum.Enum):
    """The type of :data:`UNKNOWN` (an enum member: one object, even after pickling)."""

    UNKNOWN = "unknown"

    def __repr__(self) -> str:
        return "UNKNOWN"


#: A setting that was not recorded. ``None`` is a value of some settings (no stop
#: marker; a generation budget sized from the answers), so "unknown" needs its own marker.
UNKNOWN = _Unknown.UNKNOWN


@dataclass(frozen=True)
class EvalSettings:
    """The settings a benchmark's pass rates were scored with; any may be unknown.

    Every field defaults to :data:`UNKNOWN` (not recorded, never compared). Numbers
    are stored as ``float`` (``temperature``, ``top_p``) or ``int`` (``n``,
    ``max_new_tokens``).

    Parameters
    ----------
    stop : str or None
        The evaluation set's stop marker (:attr:`EvalSet.stop
        <cod_monitor.evaluators.EvalSet.stop>`); ``None``: no stop marker, the answer
        ends at the end-of-sequence token.
    scorer : str
        The evaluation set's scorer name (``'exact'``, ``'normalized'``,
        ``'last_number'``, ``'regex:<pattern>'``, or a callable's qualified name).
    mode : {'exact', 'sampled'}
        The evaluator's mode.
    n : int
        Completions per prompt (``sampled`` mode), >= 1.
    temperature : float
        Sampling temperature, >= 0 (0: greedy decoding).
    top_p : float
        Nucleus mass, in (0, 1].
    max_new_tokens : int or None
        Generation budget (``sampled`` mode), >= 1; ``None``: sized from the longest
        answer, the evaluator's default.

    Attributes
    ----------
    recorded : tuple of str
        The fields that are not :data:`UNKNOWN`, in :data:`SETTING_FIELDS` order.

    Raises
    ------
    LadderValidationError
        A value of the wrong type or out of range (the message names the field, the
        value and the fix).

    See Also
    --------
    cod_monitor.evaluators.settings.run_settings : the settings of an evaluation set
        and an evaluator config, the evaluator's defaults filled in.

    Examples
    --------
    >>> ladder = EvalSettings(stop="\\n", scorer="exact", mode="exact", top_p=0.7)
    >>> ladder.recorded
    ('stop', 'scorer', 'mode', 'top_p')
    >>> run = EvalSettings(stop=None, scorer="exact", mode="exact", temperature=1.0, top_p=0.7)
    >>> ladder.differences(run)
    [('stop', '\\n', None)]
    >>> EvalSettings.from_dict(ladder.to_dict()) == ladder
    True
    """

    stop: str | None | _Unknown = UNKNOWN
    scorer: str | _Unknown = UNKNOWN
    mode: str | _Unknown = UNKNOWN
    n: int | _Unknown = UNKNOWN
    temperature: float | _Unknown = UNKNOWN
    top_p: float | _Unknown = UNKNOWN
    max_new_tokens: int | None | _Unknown = UNKNOWN

    def __post_init__(self):
        for name in self.recorded:
            object.__setattr__(self, name, _CHECKS[name](getattr(self, name)))

    def __repr__(self) -> str:  # the recorded fields only: a valid constructor call
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.recorded)
        return f"EvalSettings({inner})"

    @property
    def recorded(self) -> tuple[str, ...]:
        """The fields that are not :data:`UNKNOWN`, in :data:`SETTING_FIELDS` order."""
        return tuple(f for f in SETTING_FIELDS if getattr(self, f) is not UNKNOWN)

    def to_dict(self) -> dict:
        """The recorded fields as a ``ladder.json`` object (unknown fields left out)."""
        return {f: getattr(self, f) for f in self.recorded}

    @classmethod
    def from_dict(cls, entry: Mapping, *, where: str | None = None) -> EvalSettings:
        """Read settings from a ``ladder.json`` object: absent keys are unknown.

        Parameters
        ----------
        entry : mapping
            Keys among :data:`SETTING_FIELDS`; ``null`` is a value (see the fields).
        where : str, optional
            Location of the object, for error messages.

        Returns
        -------
        EvalSettings

        Raises
        ------
        LadderValidationError
            Not a mapping, an unknown key or a bad value.
        """
        if isinstance(entry, EvalSettings):
            return entry
        if not isinstance(entry, Mapping):
            raise LadderValidationError(
                "eval_settings", entry, "Give a benchmark's evaluation settings as a JSON "
                f"object with some of the keys {', '.join(SETTING_FIELDS)}.", where=where)
        for key in entry:
            if key not in SETTING_FIELDS:
                raise LadderValidationError(
                    key, entry[key], f"Remove it; evaluation settings have only the keys "
                    f"{', '.join(SETTING_FIELDS)}.", where=where)
        try:
            return cls(**dict(entry))
        except LadderValidationError as exc:
            if where is None:
                raise
            raise LadderValidationError(exc.field, exc.value, exc.fix, where=where) from None

    def merge(self, other: EvalSettings, *, where: str | None = None) -> EvalSettings:
        """These settings with the unknown fields taken from `other`.

        Parameters
        ----------
        other : EvalSettings
        where : str, optional
            Named in the error.

        Returns
        -------
        EvalSettings

        Raises
        ------
        LadderValidationError
            A field known on both sides with different values.
        """
        values = {}
        for name in SETTING_FIELDS:
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine is not UNKNOWN and theirs is not UNKNOWN and mine != theirs:
                raise LadderValidationError(
                    name, theirs, f"It contradicts the value {mine!r} found for it; give one "
                    "value, or leave the field out to keep the one found.", where=where)
            values[name] = mine if mine is not UNKNOWN else theirs
        return EvalSettings(**values)

    def differences(self, run: EvalSettings) -> list[tuple[str, object, object]]:
        """The fields recorded on both sides whose values differ.

        ``n`` and ``max_new_tokens`` are compared only when neither side is in ``exact``
        mode: an exact pass rate draws no completion, so they cannot change it.

        Parameters
        ----------
        run : EvalSettings
            The other side (the run's settings, when ``self`` is the ladder's).

        Returns
        -------
        list of (field, own value, run's value)
            In :data:`SETTING_FIELDS` order; empty when nothing known differs.
        """
        exact = "exact" in (self.mode, run.mode)
        out = []
        for name in SETTING_FIELDS:
            if exact and name in SAMPLED_ONLY_FIELDS:
                continue
            mine, theirs = getattr(self, name), getattr(run, name)
            if mine is not UNKNOWN and theirs is not UNKNOWN and mine != theirs:
                out.append((name, mine, theirs))
        return out

    def describe(self) -> str:
        """One line for people: ``stop '\\n', scorer 'exact', mode 'exact', ...``."""
        if not self.recorded:
            return "not recorded"
        return ", ".join(f"{name} {describe_value(name, getattr(self, name))}"
                         for name in self.recorded)


def describe_value(name: str, value) -> str:
    """A setting's value for a message: ``repr``, with what ``None`` means.

    Examples
    --------
    >>> describe_value("stop", None)
    'None (no stop marker)'
    """
    if value is None and name == "stop":
        return "None (no stop marker)"
    if value is None and name == "max_new_tokens":
        return "None (sized from the answers)"
    return repr(value)


def settings_by_benchmark(spec, benchmarks: Iterable[str], *,
                          where: str = "eval_settings") -> dict[str, EvalSettings]:
    """Evaluation settings given for a whole ladder, as benchmark -> settings.

    Parameters
    ----------
    spec : EvalSettings, mapping or None
        One settings object (an :class:`EvalSettings` or its dict, e.g. ``{"stop":
        "\\n", "mode": "exact"}``) for every benchmark, or a mapping of benchmark name
        to settings objects (only some benchmarks may be named). ``None``: nothing.
    benchmarks : iterable of str
        The ladder's benchmarks.
    where : str, default 'eval_settings'
        Named in errors (e.g. ``'--eval-settings'``).

    Returns
    -------
    dict of str to EvalSettings

    Raises
    ------
    LadderValidationError
        Not a mapping, a benchmark the ladder lacks, or a bad setting.

    Examples
    --------
    >>> settings_by_benchmark({"mode": "exact"}, ["a", "b"])
    {'a': EvalSettings(mode='exact'), 'b': EvalSettings(mode='exact')}
    >>> settings_by_benchmark({"b": {"stop": None}}, ["a", "b"])
    {'b': EvalSettings(stop=None)}
    """
    benchmarks = list(benchmarks)
    if spec is None:
        return {}
    if isinstance(spec, EvalSettings):
        return dict.fromkeys(benchmarks, spec)
    if not isinstance(spec, Mapping):
        raise LadderValidationError(
            where, spec, f"Give one settings object (keys among {', '.join(SETTING_FIELDS)}) "
            "for every benchmark, or an object mapping benchmark names to settings objects.")
    if spec and all(isinstance(v, (Mapping, EvalSettings)) for v in spec.values()):
        out = {}
        for benchmark, entry in spec.items():
            if benchmark not in benchmarks:
                raise LadderValidationError(
                    where, benchmark, "Key each benchmark's settings by a benchmark of the "
                    f"ladder ({', '.join(map(repr, benchmarks[:8]))}"
                    f"{', ...' if len(benchmarks) > 8 else ''}), or give one settings object "
                    "for all of them.")
            out[benchmark] = EvalSettings.from_dict(entry, where=f"{where}[{benchmark!r}]")
        return out
    one = EvalSettings.from_dict(spec, where=where)
    return dict.fromkeys(benchmarks, one)


# --------------------------------------------------------------------- field checks


def _check_stop(value):
    if value is None or (isinstance(value, str) and value):
        return value
    raise LadderValidationError(
        "stop", value, "Give stop as the evaluation set's stop marker, a non-empty string "
        "(e.g. \"\\n\"), or null for no stop marker (the answer ends at end-of-sequence).")


def _check_scorer(value):
    if isinstance(value, str) and value:
        return value
    raise LadderValidationError(
        "scorer", value, "Give scorer as the evaluation set's scorer name, a non-empty string "
        "such as 'exact', 'normalized', 'last_number' or 'regex:<pattern>'.")


def _check_mode(value):
    if value in EVAL_MODES and isinstance(value, str):
        return value
    raise LadderValidationError(
        "mode", value, f"Give mode as one of {', '.join(map(repr, EVAL_MODES))}.")


def _as_int(value, name: str, fix: str, *, none_ok: bool):
    if value is None and none_ok:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LadderValidationError(name, value, fix)
    if not math.isfinite(value) or value != int(value) or value < 1:
        raise LadderValidationError(name, value, fix)
    return int(value)


def _as_float(value, name: str, fix: str, low: float, high: float, *, low_open: bool):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise LadderValidationError(name, value, fix)
    if value > high or value < low or (low_open and value == low):
        raise LadderValidationError(name, value, fix)
    return float(value)


_CHECKS = {
    "stop": _check_stop,
    "scorer": _check_scorer,
    "mode": _check_mode,
    "n": lambda v: _as_int(v, "n", "Give n (completions per prompt) as an integer >= 1.",
                           none_ok=False),
    "temperature": lambda v: _as_float(
        v, "temperature", "Give temperature as a finite number >= 0 (0: greedy decoding).",
        0.0, math.inf, low_open=False),
    "top_p": lambda v: _as_float(v, "top_p", "Give top_p as a number in (0, 1] (1: no nucleus).",
                                 0.0, 1.0, low_open=True),
    "max_new_tokens": lambda v: _as_int(
        v, "max_new_tokens", "Give max_new_tokens as an integer >= 1, or null for a budget "
        "sized from the answers.", none_ok=True),
}
