"""Exception and warning types shared by every layer of cod_monitor.

Kept at the bottom of the import graph so that any module may raise them without
importing upward.
"""

from __future__ import annotations

import importlib.util

__all__ = [
    "CODError",
    "ParameterError",
    "LadderValidationError",
    "InputError",
    "FitFailedError",
    "NotFittedError",
    "NoExtrapolatableClusterError",
    "MethodUnavailableError",
    "MissingExtraError",
    "FitWarning",
    "ConfigurationWarning",
]


class CODError(Exception):
    """Base class of every error cod_monitor raises on purpose."""


class ParameterError(CODError, ValueError):
    """A parameter of a cod_monitor object or command has an invalid value.

    The message is scikit-learn's sentence: "The 'x' parameter of X must be ... Got ...
    instead.", followed by how to fix it where that is not obvious.

    Parameters
    ----------
    owner : str
        The class, function or command the parameter belongs to.
    name : str
        The parameter.
    expected : str
        What it must be.
    value : object
        What was given.
    hint : str, optional
        How to fix it, as one sentence.

    Attributes
    ----------
    owner, name, expected, value, hint : as given.
    """

    def __init__(self, owner: str, name: str, expected: str, value: object,
                 hint: str | None = None):
        self.owner = owner
        self.name = name
        self.expected = expected
        self.value = value
        self.hint = hint
        message = f"The {name!r} parameter of {owner} must be {expected}. Got {value!r} instead."
        super().__init__(f"{message} {hint}" if hint else message)

    def __reduce__(self):  # picklable across the evaluation workers' process boundary
        return type(self), (self.owner, self.name, self.expected, self.value, self.hint)


class LadderValidationError(CODError, ValueError):
    """A ladder (or its input files) breaks the data contract.

    The message always names the offending field, the value found and the fix,
    so the command line can print it as one line.

    Parameters
    ----------
    field : str
        The field (column, key or argument) that is wrong, e.g. ``"score"``.
    value : object
        The offending value, shown with ``repr``.
    fix : str
        What the user should do about it, as an imperative sentence.
    where : str, optional
        Location of the value (file, row, model), prepended to the message.

    Attributes
    ----------
    field, value, fix, where : as given.
    """

    def __init__(self, field: str, value: object, fix: str, where: str | None = None):
        self.field = field
        self.value = value
        self.fix = fix
        self.where = where
        prefix = f"{where}: " if where else ""
        super().__init__(f"{prefix}invalid {field} = {value!r}. {fix}")


class InputError(CODError, ValueError):
    """An input cannot be used: an array of the wrong shape or values, a checkpoint without
    the numbers a forecast needs, a ladder that cannot serve the mode asked for.

    The message says what was expected and what was found (scipy's one-liners with
    shapes), and what to do where that is not obvious.
    """


class FitFailedError(CODError, ValueError):
    """A numerical fit failed on this data from every starting point.

    :func:`~cod_monitor.methods.compare_methods` reports it for the method that raised
    it and goes on with the others.
    """


class NotFittedError(CODError, ValueError, AttributeError):
    """A forecaster or clusterer was used before ``fit``.

    A ``ValueError`` and an ``AttributeError``, as scikit-learn's error of the same name.
    """


class NoExtrapolatableClusterError(CODError):
    """No difficulty cluster passed the extrapolatable filter.

    Parameters
    ----------
    benchmark : str
        The benchmark being forecast.
    reasons : dict
        Rejection reason name -> number of clusters rejected for it.

    Attributes
    ----------
    benchmark, reasons : as given.
    """

    def __init__(self, benchmark: str, reasons: dict[str, int]):
        self.benchmark = benchmark
        self.reasons = dict(reasons)
        detail = ", ".join(f"{n} {r}" for r, n in sorted(self.reasons.items())) or "no clusters"
        super().__init__(
            f"no extrapolatable cluster on benchmark {benchmark!r} (rejected: {detail}). "
            "Pass fallback='all_clusters' or fallback='end_to_end' to CODForecaster "
            "(--fallback on the command line), or relax the filter thresholds."
        )


class MethodUnavailableError(CODError):
    """A forecasting method cannot run on this ladder (e.g. it needs a per-model loss).

    The message says what the method needs and how to provide it.
    """


class FitWarning(UserWarning):
    """A numerical fit converged poorly or used a fallback; results may be less reliable."""


class ConfigurationWarning(UserWarning):
    """An argument was not applied: a fixed configuration overrides it.

    Raised, for example, by :func:`cod_monitor.methods.make_forecaster` when a caller's
    ``fallback`` differs from the one a registered method pins.
    """


class MissingExtraError(CODError, ImportError):
    """An optional dependency of a feature is not installed.

    The one wording of every install hint in cod_monitor: "X requires Y. Run
    ``pip install 'cod_monitor[extra]'``." An ``ImportError``, so code that guards an
    optional import with ``except ImportError`` treats it as one.

    Parameters
    ----------
    feature : str
        What needs the dependency (a class, a function, a module).
    requires : str or sequence of str
        The distributions it needs (``"vllm"``, ``("torch", "transformers")``).
    extra : str
        The extra of ``cod_monitor`` that installs them (``"hf"``, ``"vllm"``).
    note : str, optional
        One more clause, in parentheses after the command (e.g. another way to
        install, or which modules are missing).

    Attributes
    ----------
    feature, requires, extra, note : as given (``requires`` as a tuple).

    Examples
    --------
    >>> str(MissingExtraError("VLLMEvaluator", "vllm", "vllm"))
    "VLLMEvaluator requires vllm. Run `pip install 'cod_monitor[vllm]'`."
    """

    def __init__(self, feature: str, requires, extra: str, note: str | None = None):
        self.feature = feature
        self.requires = (requires,) if isinstance(requires, str) else tuple(requires)
        self.extra = extra
        self.note = note
        needs = " and ".join(
            [", ".join(self.requires[:-1]), self.requires[-1]] if len(self.requires) > 1
            else list(self.requires))
        command = f"Run `pip install 'cod_monitor[{extra}]'`"
        super().__init__(f"{feature} requires {needs}. {command}{f' ({note})' if note else ''}.")

    def __reduce__(self):  # picklable across the evaluation workers' process boundary
        return type(self), (self.feature, self.requires, self.extra, self.note)

    @classmethod
    def check(cls, feature: str, requires, extra: str, note: str | None = None) -> None:
        """Raise the error when a module of ``requires`` cannot be found (nothing imported).

        Examples
        --------
        >>> MissingExtraError.check("json support", "json", "none")  # installed: no error
        """
        modules = (requires,) if isinstance(requires, str) else tuple(requires)
        missing = [m for m in modules if importlib.util.find_spec(m) is None]
        if missing:
            raise cls(feature, modules, extra, note)
