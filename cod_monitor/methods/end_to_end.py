"""End-to-end baselines: one curve fitted to the full-set accuracy of the ladder.

- :class:`EndToEndExp`: the COD law fitted once to the full-set accuracy;
- :class:`EndToEndPassRate`: the GPT-4 / PassUntil power law of ``-log(pass rate)``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from cod_monitor._validation import check_choice, check_real
from cod_monitor._docstrings import fill_doc
from cod_monitor.cod.laws import LAW_FORMS, LawFit, fit_laws
from cod_monitor.exceptions import FitFailedError, FitWarning, InputError
from cod_monitor.methods.base import COMMON_ATTRIBUTES, COMMON_PARAMETERS, LadderBaseline

__all__ = ["EndToEndExp", "EndToEndPassRate", "passrate_power_law"]


def passrate_power_law(compute, alpha, k):
    """Evaluate the pass-rate law :math:`p = \\exp(-\\alpha C^{-k})`.

    Parameters
    ----------
    compute : array_like
        Training compute, in the unit ``alpha`` was fitted in. Positive.
    alpha : float
        Scale of ``-log p``; positive.
    k : float
        Exponent; positive when the pass rate grows with compute.

    Returns
    -------
    ndarray
        Pass rate, same shape as ``compute``.

    Examples
    --------
    >>> round(float(passrate_power_law(4.0, alpha=2.0, k=0.5)), 4)
    0.3679
    """
    c = np.asarray(compute, dtype=float)
    with np.errstate(over="ignore"):
        return np.exp(-alpha * c ** (-k))


# ------------------------------------------------------------------ end-to-end exp


@fill_doc(common_parameters=COMMON_PARAMETERS, common_attributes=COMMON_ATTRIBUTES)
class EndToEndExp(LadderBaseline):
    """The COD law fitted once to the full-set accuracy ("end-to-end exp" baseline).

    Parameters
    ----------
    law : {'full', 'no_g', 'no_c', 'plain'}, default 'full'
        Law form; see :data:`cod_monitor.cod.laws.LAW_FORMS`.
    {common_parameters}

    Attributes
    ----------
    {common_attributes}
    law_ : LawFit
        The fitted law (compute in ``compute_unit_``).

    Notes
    -----
    .. math:: y(C) = g + (1 - g)\\,\\exp(-a C^{-b} - c)

    fitted by :func:`cod_monitor.cod.laws.fit_laws` (dense grid, then bounded least squares)
    to the ladder's full-set accuracy. Without clustering, the law must describe a mix
    of samples with very different difficulties, which is what COD improves on.

    References
    ----------
    Xu, Chen, Li, Shen, Li. "Unveiling Downstream Performance Scaling of LLMs: A
    Clustering-Based Perspective." ICLR 2026. arXiv:2502.17262 (baseline "end-to-end
    exp", Table 2).

    Examples
    --------
    >>> from cod_monitor.synthetic import synthetic_ladder
    >>> syn = synthetic_ladder(n_samples=300, seed=0)
    >>> est = EndToEndExp(n_bootstrap=10).fit(syn.ladder, "synthetic")
    >>> lo, hi = est.predict_interval(syn.target.compute)
    >>> bool(lo <= est.predict(syn.target.compute) <= hi)
    True
    """

    _method_name = "e2e-exp"

    def __init__(self, *, law: str = "full", anchors=None, compute_unit=None,
                 checkpoints="final", smooth_checkpoints=False, n_bootstrap=200,
                 random_state=0, interval="bootstrap", n_backtest=3):
        self._store_params(locals())

    def _validate_own(self):
        check_choice(type(self).__name__, "law", self.law, LAW_FORMS)

    def _fit_curve(self, compute, accuracy, aux, init):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FitWarning)
            fit = fit_laws(
                compute, accuracy[None, :], form=self.law,
                init=None if init is None else [init],
            )[0]
        if not np.isfinite([fit.a, fit.b, fit.c, fit.g]).all():
            raise FitFailedError(
                "end-to-end exp: the law fit to the full-set accuracy failed from every start"
            )
        return fit

    def _curve(self, state: LawFit, c):
        return state(c)

    def _set_fitted(self, state, aux):
        self.law_ = state

    def _fit_report(self):
        return self.law_.as_dict()


# ------------------------------------------------------------ end-to-end pass rate


@dataclass(frozen=True)
class _PowerFit:
    alpha: float
    k: float
    r2: float


@fill_doc(common_parameters=COMMON_PARAMETERS, common_attributes=COMMON_ATTRIBUTES)
class EndToEndPassRate(LadderBaseline):
    """GPT-4 / PassUntil-style power law of ``-log(pass rate)`` on the full set.

    Parameters
    ----------
    eps : float, default 1e-4
        Full-set pass rates are clipped to ``[eps, 1 - eps]`` before the double log, so
        that a ladder point at exactly 0 or 1 (possible on small benchmarks) has a finite
        but bounded influence. Must be in (0, 0.5).
    {common_parameters}

    Attributes
    ----------
    {common_attributes}
    alpha_ : float
        Scale of ``-log p`` (compute in ``compute_unit_``).
    k_ : float
        Exponent.
    r2_ : float
        Coefficient of determination of the fit in log space.

    Notes
    -----
    .. math::

        -\\log p(C) = \\alpha\\,C^{-k}
        \\quad\\Longleftrightarrow\\quad
        \\log(-\\log p) = \\log\\alpha - k \\log C

    fitted by ordinary least squares on the right-hand form, with :math:`p` the mean
    pass rate of each ladder model. Forecast: :math:`p = \\exp(-\\alpha C^{-k})`.

    References
    ----------
    OpenAI. "GPT-4 Technical Report." arXiv:2303.08774, 2023 (Sec. 3.1, HumanEval
    capability prediction).
    Hu et al. "Predicting Emergent Abilities with Infinite Resolution Evaluation"
    (PassUntil). ICLR 2024. arXiv:2310.03262.

    Examples
    --------
    >>> from cod_monitor.synthetic import synthetic_ladder
    >>> syn = synthetic_ladder(n_samples=300, seed=0)
    >>> est = EndToEndPassRate(n_bootstrap=10).fit(syn.ladder, "synthetic")
    >>> 0 < est.predict(syn.target.compute) < 1
    True
    """

    _method_name = "e2e-passrate"

    def __init__(self, *, eps: float = 1e-4, anchors=None, compute_unit=None,
                 checkpoints="final", smooth_checkpoints=False, n_bootstrap=200,
                 random_state=0, interval="bootstrap", n_backtest=3):
        self._store_params(locals())

    def _validate_own(self):
        check_real(type(self).__name__, "eps", self.eps, 0.0, 0.5)

    def _fit_curve(self, compute, accuracy, aux, init):
        p = np.clip(accuracy, self.eps, 1.0 - self.eps)
        t = np.log(-np.log(p))
        u = np.log(compute)
        if np.ptp(u) <= 0:
            raise InputError("end-to-end pass rate: `compute` needs two distinct values")
        slope, intercept = np.polyfit(u, t, 1)
        resid = t - (intercept + slope * u)
        sst = float(((t - t.mean()) ** 2).sum())
        r2 = 1.0 - float((resid**2).sum()) / sst if sst > 0 else 1.0
        return _PowerFit(alpha=float(np.exp(intercept)), k=float(-slope), r2=r2)

    def _curve(self, state: _PowerFit, c):
        return passrate_power_law(c, state.alpha, state.k)

    def _set_fitted(self, state, aux):
        self.alpha_ = state.alpha
        self.k_ = state.k
        self.r2_ = state.r2

    def _fit_report(self):
        return {"alpha": float(self.alpha_), "k": float(self.k_), "r2_log": float(self.r2_),
                "eps": float(self.eps)}
