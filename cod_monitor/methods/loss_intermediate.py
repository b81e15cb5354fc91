"""The loss-intermediate baseline: compute to validation loss, then loss to accuracy."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from cod_monitor._estimator import check_is_fitted
from cod_monitor._validation import check_choice
from cod_monitor._docstrings import fill_doc
from cod_monitor.cod.intervals import as_scalar
from cod_monitor.exceptions import FitFailedError, FitWarning, MethodUnavailableError
from cod_monitor.methods.base import (
    COMMON_ATTRIBUTES,
    COMMON_PARAMETERS,
    EXP_CLIP,
    LadderBaseline,
    affine_fit,
    geomean,
    refine,
)

__all__ = ["MIN_LOSS_POINTS", "LossIntermediate", "loss_power_law", "sigmoid_link"]

#: Fewest ladder points carrying a ``loss`` that :class:`LossIntermediate` accepts.
MIN_LOSS_POINTS = 3


def loss_power_law(compute, E, A, alpha):
    """Evaluate the loss law :math:`L(C) = E + A\\,C^{-\\alpha}`.

    Parameters
    ----------
    compute : array_like
        Training compute in the unit ``A`` was fitted in. Positive.
    E : float
        Irreducible loss.
    A, alpha : float
        Scale and exponent of the reducible part.

    Returns
    -------
    ndarray of float
        The loss at each compute, shaped as ``compute``.

    Examples
    --------
    >>> float(loss_power_law(100.0, E=1.5, A=2.0, alpha=0.5))
    1.7
    """
    c = np.asarray(compute, dtype=float)
    with np.errstate(over="ignore"):
        return E + A * c ** (-alpha)


def sigmoid_link(loss, lo, hi, k, L0):
    """Evaluate the loss-to-accuracy sigmoid :math:`lo + (hi - lo) / (1 + e^{k (L - L_0)})`.

    Parameters
    ----------
    loss : array_like
        Validation loss.
    lo, hi : float
        Accuracy approached at high and at low loss (for ``k > 0``).
    k : float
        Steepness; accuracy falls with loss when positive.
    L0 : float
        Loss at the midpoint between ``lo`` and ``hi``.

    Returns
    -------
    ndarray
        Accuracy, same shape as ``loss``.

    Examples
    --------
    >>> sigmoid_link([1.5, 2.0, 2.5], lo=0.25, hi=0.75, k=4.0, L0=2.0).round(3)
    array([0.69, 0.5 , 0.31])
    """
    z = np.clip(k * (np.asarray(loss, dtype=float) - L0), -EXP_CLIP, EXP_CLIP)
    return lo + (hi - lo) / (1.0 + np.exp(z))


_LINKS = ("sigmoid", "linear")


@dataclass(frozen=True)
class _LossFit:
    loss_theta: np.ndarray  # (E, log A, alpha) with x = C / c_ref
    c_ref: float
    link: str
    link_theta: np.ndarray  # sigmoid: (lo, hi, log k, L0); linear: (intercept, slope)
    loss_rmse: float
    link_rmse: float

    def loss(self, c):
        E, logA, alpha = self.loss_theta
        return loss_power_law(np.asarray(c, dtype=float) / self.c_ref, E, np.exp(logA), alpha)

    def accuracy_at_loss(self, L):
        return _link_eval(self.link, self.link_theta, L)


def _link_eval(link, theta, L):
    if link == "linear":
        return theta[0] + theta[1] * np.asarray(L, dtype=float)
    lo, hi, logk, L0 = theta
    return sigmoid_link(L, lo, hi, np.exp(logk), L0)


@fill_doc(common_parameters=COMMON_PARAMETERS, common_attributes=COMMON_ATTRIBUTES)
class LossIntermediate(LadderBaseline):
    """Two-step forecast through the validation loss (Chen et al. 2024, OLMo ladder).

    Parameters
    ----------
    link : {'sigmoid', 'linear'}, default 'sigmoid'
        Loss-to-accuracy link of step 2.
    {common_parameters}

    Attributes
    ----------
    {common_attributes}
    loss_ : ndarray of shape (n_models,)
        The ``loss`` of every fitted ladder point.
    loss_params_ : dict
        ``E``, ``A``, ``alpha`` of step 1 (compute in ``compute_unit_``) and ``rmse``.
    link_params_ : dict
        Step 2: ``lo``, ``hi``, ``k``, ``L0`` (sigmoid) or ``intercept``, ``slope``
        (linear), and ``rmse``.

    Raises
    ------
    MethodUnavailableError
        At :meth:`fit`, when fewer than 3 ladder points carry a ``loss``.

    Warns
    -----
    FitWarning
        At :meth:`fit`, when some (but at least 3) ladder points lack a ``loss``; only
        those with one are fitted.

    Notes
    -----
    Step 1, compute to loss, on the ladder points that carry a ``loss``:

    .. math:: L(C) = E + A\\,C^{-\\alpha}

    Step 2, loss to full-set accuracy, on the same points' (loss, accuracy) pairs:

    .. math::

        y(L) = lo + \\frac{hi - lo}{1 + \\exp(k (L - L_0))}
        \\quad\\text{or}\\quad y(L) = p + q L

    Forecast: :math:`y(L(C))` clipped to [0, 1]. Both nonlinear fits solve the linear
    pair in closed form over a grid of the nonlinear parameters (:math:`\\alpha`;
    :math:`k, L_0`) and refine the best start with bounded least squares, with
    :math:`E \\in [0, \\min L]`, :math:`A, k > 0` and :math:`lo, hi \\in [0, 1]`.
    The bootstrap resamples samples (which changes the accuracies) and models (which
    changes both steps); the losses themselves carry no per-sample noise.

    References
    ----------
    Chen, Li, Sun, Ma, Zhang, Zhou. "Scaling Laws for Predicting Downstream Performance
    in LLMs." arXiv:2410.08527, 2024.
    Bhagia et al. "Establishing Task Scaling Laws via Compute-Efficient Model Ladders."
    arXiv:2412.04403, 2024 (OLMo 2 ladder).
    Xu et al. arXiv:2502.17262 (the loss-intermediate baseline of Table 2).

    Examples
    --------
    >>> from cod_monitor.synthetic import synthetic_ladder
    >>> from cod_monitor.exceptions import MethodUnavailableError
    >>> syn = synthetic_ladder(n_samples=300, seed=0)   # synthetic ladders carry no loss
    >>> try:
    ...     LossIntermediate().fit(syn.ladder, "synthetic")
    ... except MethodUnavailableError as exc:
    ...     "loss" in str(exc)
    True
    """

    _method_name = "loss-intermediate"

    def __init__(self, *, link: str = "sigmoid", anchors=None, compute_unit=None,
                 checkpoints="final", smooth_checkpoints=False, n_bootstrap=200,
                 random_state=0, interval="bootstrap", n_backtest=3):
        self._store_params(locals())

    def _validate_own(self):
        check_choice(type(self).__name__, "link", self.link, _LINKS)

    def _columns(self, models, benchmark):
        has = np.array([m.loss is not None for m in models], dtype=bool)
        n_distinct = len({m.compute for m, h in zip(models, has) if h})
        if n_distinct < MIN_LOSS_POINTS:
            raise MethodUnavailableError(
                f"loss-intermediate needs a validation loss per ladder model: only "
                f"{int(has.sum())} of the {len(models)} ladder points of benchmark "
                f"{benchmark!r} carry a `loss` ({MIN_LOSS_POINTS} of distinct compute are "
                "needed). Add a \"loss\" field (a float, e.g. each model's validation "
                "cross-entropy on one held-out text set) to every model entry in "
                "ladder.json, or pass ModelInfo(..., loss=...) to Ladder.from_records."
            )
        if not has.all():
            missing = [m.name for m, h in zip(models, has) if not h]
            warnings.warn(
                f"loss-intermediate: {len(missing)} ladder points have no `loss` and are "
                f"left out: {', '.join(missing)}",
                FitWarning,
                stacklevel=3,
            )
        keep = np.flatnonzero(has)
        return keep, np.array([models[j].loss for j in keep], dtype=float)

    # --- step 1
    @staticmethod
    def _fit_loss_law(compute, loss, init):
        c_ref = geomean(compute)
        x = compute / c_ref
        lmin, spread = float(loss.min()), float(np.ptp(loss))
        e_lo = 0.0 if lmin > 0 else lmin - max(spread, 1.0)
        e_hi = lmin if lmin > e_lo else e_lo + 1e-12
        lower = np.array([e_lo, np.log(1e-12), 1e-4])
        upper = np.array([e_hi, np.log(1e6), 5.0])
        if init is None:
            alphas = np.logspace(-3, np.log10(3.0), 80)
            H = x[None, :] ** (-alphas[:, None])
            E, A, sse = affine_fit(H, loss, (e_lo, e_hi))
            order = np.argsort(sse)[:3]
            starts = [[E[i], np.log(max(A[i], 1e-12)), alphas[i]] for i in order]
        else:
            E, logA, alpha = init.loss_theta
            starts = [[E, logA + alpha * np.log(init.c_ref / c_ref), alpha]]

        def resid(th):
            return th[0] + np.exp(th[1]) * x ** (-th[2]) - loss

        res = refine(resid, starts, lower, upper, max_nfev=300 if init is None else 100)
        if res is None:
            raise FitFailedError("loss-intermediate: the compute-to-loss power law fit failed")
        return res.x, c_ref, float(np.sqrt(np.mean(resid(res.x) ** 2)))

    # --- step 2
    def _fit_link(self, loss, accuracy, init):
        if self.link == "linear":
            if np.ptp(loss) <= 0:
                raise FitFailedError("loss-intermediate: the ladder losses are all equal")
            slope, intercept = np.polyfit(loss, accuracy, 1)
            theta = np.array([intercept, slope])
        else:
            spread = max(float(np.ptp(loss)), 1e-6)
            lmin, lmax = float(loss.min()), float(loss.max())
            lower = np.array([0.0, 0.0, np.log(0.01 / spread), lmin - 3 * spread])
            upper = np.array([1.0, 1.0, np.log(1000.0 / spread), lmax + 3 * spread])
            if init is None:
                logk = np.log(np.logspace(np.log10(0.3), np.log10(300.0), 16) / spread)
                L0 = np.linspace(lmin - spread, lmax + spread, 25)
                gk, g0 = (g.ravel() for g in np.meshgrid(logk, L0, indexing="ij"))
                z = np.exp(gk)[:, None] * (loss[None, :] - g0[:, None])
                S = 1.0 / (1.0 + np.exp(np.clip(z, -EXP_CLIP, EXP_CLIP)))
                lo, span, sse = affine_fit(S, accuracy, (0.0, 1.0), b_max=1.0)
                order = np.argsort(sse)[:3]
                starts = [[lo[i], min(lo[i] + span[i], 1.0), gk[i], g0[i]] for i in order]
            else:
                starts = [init.link_theta]

            def resid(th):
                return _link_eval("sigmoid", th, loss) - accuracy

            res = refine(resid, starts, lower, upper, max_nfev=300 if init is None else 100)
            if res is None:
                raise FitFailedError("loss-intermediate: the loss-to-accuracy sigmoid fit failed")
            theta = res.x
        rmse = float(np.sqrt(np.mean((_link_eval(self.link, theta, loss) - accuracy) ** 2)))
        return theta, rmse

    def _fit_curve(self, compute, accuracy, aux, init):
        loss_theta, c_ref, loss_rmse = self._fit_loss_law(compute, aux, init)
        link_theta, link_rmse = self._fit_link(aux, accuracy, init)
        return _LossFit(loss_theta, c_ref, self.link, link_theta, loss_rmse, link_rmse)

    def _curve(self, state: _LossFit, c):
        return state.accuracy_at_loss(state.loss(c))

    def _set_fitted(self, state: _LossFit, aux):
        E, logA, alpha = state.loss_theta
        self.loss_ = aux
        self.loss_params_ = {
            "E": float(E),
            "A": float(np.exp(logA + alpha * np.log(state.c_ref))),
            "alpha": float(alpha),
            "rmse": state.loss_rmse,
        }
        if state.link == "linear":
            link = {"intercept": float(state.link_theta[0]), "slope": float(state.link_theta[1])}
        else:
            lo, hi, logk, L0 = state.link_theta
            link = {"lo": float(lo), "hi": float(hi), "k": float(np.exp(logk)), "L0": float(L0)}
        link["rmse"] = state.link_rmse
        self.link_params_ = link

    def loss_at(self, compute):
        """Step 1 alone: the forecast validation loss at ``compute`` FLOPs.

        ``compute`` is as in :meth:`predict`; the loss is a float for scalar input.
        """
        check_is_fitted(self, "full_accuracy_")
        return as_scalar(self._state.loss(self._to_units(compute)))

    def _fit_report(self):
        return {"link": self.link, "loss_law": self.loss_params_, "link_fit": self.link_params_}
