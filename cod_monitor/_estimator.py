"""The estimator protocol of the forecasters and clusterers (private).

Every forecaster and clusterer follows scikit-learn's conventions: constructor arguments
are stored unchanged under their own names, ``get_params``/``set_params`` read and write
them (``deep`` parameters as ``outer__inner``), fitted state ends in ``_``, and ``clone``
builds an unfitted copy.  This module implements that protocol on its own so that
``cod-monitor predict`` and the monitor's forecast thread do not import scikit-learn
(about 1 s of CPU at start, most of it pandas and ``scipy.stats``).  ``sklearn.base.clone``
and scikit-learn's parameter-setting tools still work on them: they only need
``get_params`` and ``set_params``.
"""

from __future__ import annotations

import copy
import inspect
from numbers import Integral

import numpy as np

from cod_monitor.exceptions import NotFittedError

__all__ = ["ClusterMixin", "Estimator", "check_is_fitted", "check_random_state", "clone"]

_UNSET = inspect.Parameter.empty


class Estimator:
    """Base class: parameters are the constructor's keyword arguments."""

    @classmethod
    def _param_names(cls) -> list[str]:
        init = cls.__init__
        if init is object.__init__:
            return []
        names = []
        for p in inspect.signature(init).parameters.values():
            if p.name == "self" or p.kind == p.VAR_KEYWORD:
                continue
            if p.kind == p.VAR_POSITIONAL:
                raise TypeError(
                    f"{cls.__name__}.__init__ takes *{p.name}: an estimator's parameters "
                    "must be named keyword arguments"
                )
            names.append(p.name)
        return sorted(names)

    def get_params(self, deep: bool = True) -> dict:
        """The estimator's parameters.

        Parameters
        ----------
        deep : bool, default True
            Also list the parameters of parameters that are estimators themselves, as
            ``outer__inner``.

        Returns
        -------
        dict
            Parameter name -> value.
        """
        out = {}
        for name in self._param_names():
            value = getattr(self, name)
            if deep and _is_estimator(value):
                out.update((f"{name}__{k}", v) for k, v in value.get_params(deep=True).items())
            out[name] = value
        return out

    def set_params(self, **params):
        """Set parameters (``outer__inner`` reaches a nested estimator's); returns self.

        Raises
        ------
        ValueError
            For a name that is not a parameter, listing the valid ones.
        """
        if not params:
            return self
        valid = self.get_params(deep=True)
        nested: dict[str, dict] = {}
        for key, value in params.items():
            name, sep, sub = key.partition("__")
            if name not in valid:
                raise ValueError(
                    f"invalid parameter {name!r} for {type(self).__name__}; valid parameters "
                    f"are {sorted(self._param_names())}"
                )
            if sep:
                nested.setdefault(name, {})[sub] = value
            else:
                setattr(self, name, value)
                valid[name] = value
        for name, sub_params in nested.items():
            valid[name].set_params(**sub_params)
        return self

    def __repr__(self) -> str:
        # like scikit-learn: only the parameters that differ from their defaults
        signature = inspect.signature(type(self).__init__).parameters
        shown = []
        for name in self._param_names():
            value = getattr(self, name)
            default = signature[name].default
            if default is not _UNSET and _same(value, default):
                continue
            shown.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"


class ClusterMixin:
    """``fit_predict``: the labels of the fitted samples."""

    def fit_predict(self, X, y=None, **kwargs):
        """Fit on ``X`` and return ``labels_``."""
        return self.fit(X, **kwargs).labels_


def _is_estimator(value) -> bool:
    return hasattr(value, "get_params") and not isinstance(value, type)


def _same(value, default) -> bool:
    if value is default:
        return True
    try:
        equal = value == default
    except Exception:  # noqa: BLE001 - arrays and odd types compare any way they like
        return False
    return equal if isinstance(equal, bool) else False


def clone(estimator):
    """An unfitted copy of ``estimator`` with the same parameters.

    Estimator-valued parameters are cloned in turn, lists, tuples and sets element by
    element, and every other value is deep-copied, so the copy shares no mutable state
    with the original.
    """
    if isinstance(estimator, (list, tuple, set, frozenset)):
        return type(estimator)(clone(e) for e in estimator)
    if not _is_estimator(estimator):
        return copy.deepcopy(estimator)
    params = {k: clone(v) for k, v in estimator.get_params(deep=False).items()}
    return type(estimator)(**params)


def check_is_fitted(estimator, attribute: str | None = None) -> None:
    """Raise :class:`~cod_monitor.exceptions.NotFittedError` unless ``estimator`` is fitted.

    Fitted means: it has ``attribute`` when one is given, else any public attribute whose
    name ends in ``_`` (the convention for what ``fit`` sets).
    """
    if attribute is not None:
        fitted = hasattr(estimator, attribute)
    else:
        fitted = any(k.endswith("_") and not k.startswith("__") for k in vars(estimator))
    if not fitted:
        raise NotFittedError(
            f"This {type(estimator).__name__} is not fitted yet: call fit() first."
        )


def check_random_state(seed) -> np.random.RandomState:
    """``np.random.RandomState`` from ``None`` (numpy's global one), an int or itself.

    The same streams as scikit-learn's helper of the same name, so seeds keep giving the
    results they gave before.
    """
    if seed is None or seed is np.random:
        return np.random.mtrand._rand
    if isinstance(seed, Integral) and not isinstance(seed, bool):
        return np.random.RandomState(int(seed))
    if isinstance(seed, np.random.RandomState):
        return seed
    raise ValueError(
        f"random_state = {seed!r} cannot seed a numpy RandomState: give None, an int or "
        "a numpy.random.RandomState"
    )
