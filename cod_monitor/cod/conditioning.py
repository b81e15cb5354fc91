r"""The forecast of a run conditioned on its own checkpoints.

A ladder gives the *prior*: :math:`f_0(D)`, the forecast of the run's accuracy after
:math:`D` tokens (:class:`~cod_monitor.cod.trajectory.TrajectoryForecaster`). The run
departs from it in level and in rate: a larger model trained at its own learning rate
does not follow the ladder's curve exactly. :class:`RunConditioner` learns that
departure from the run's evaluated checkpoints with a Bayesian linear model,

.. math:: y(D) = f_0(D) + a + b\,\bigl(f_0(D) - f_0(D_T)\bigr) + \varepsilon,
          \qquad \varepsilon \sim \mathcal N(0, \sigma^2),

where :math:`D_T` is the end of the run. :math:`a` is the departure of the final
accuracy; :math:`b` scales the progress the ladder predicts (``b = 0.2``: the run gains
20 % more than the ladder's curve between two checkpoints). The basis follows the
prior's own curvature, so a faster run still saturates where the ladder says curves
saturate. Both have Gaussian priors centred on 0 whose widths come from the ladder
(:func:`estimate_run_prior`: how far the ladder's own largest runs departed from the
forecast made without them), so the first checkpoints move the forecast little and a
long run is forecast from its own curve.

* **With no observation** the forecast is the prior: :meth:`RunConditioner.final` and
  :meth:`RunConditioner.predict` return :math:`f_0` exactly.
* **Checkpoint noise** :math:`\sigma`: its prior is the ladder runs' spread around their
  own fitted curves; the run's residuals update it (a scaled inverse-:math:`\chi^2`
  with ``noise_dof`` pseudo-observations), since one run wanders more between
  checkpoints than a ladder point averaged over seeds.
* **Robust to sudden drops.** Every observation is judged against the forecast made
  *before* it (:meth:`RunConditioner.predict`); its weight in the update is the Huber
  weight :math:`\min(1, c/|z|)` of its standardised surprise :math:`z`, and an
  observation the caller marks ``exclude`` (e.g. one under a drift alert) does not enter
  the update at all. A collapse is therefore reported, not learned away.

Everything here is pure numpy: no I/O, no clock. The monitor
(:mod:`cod_monitor.monitor.forecasts`) replays the same observations after a restart and
gets the same forecasts.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np
from scipy.special import ndtri

from cod_monitor._validation import check_real, invalid

__all__ = ["RunConditioner", "RunPrior", "Surprise", "estimate_run_prior", "final_tokens"]

#: Floors of the prior widths: a ladder whose few backtests happened to agree must not
#: make the forecast deaf to the run.
LEVEL_SD_FLOOR = 0.01
RATE_SD_FLOOR = 0.1
NOISE_SD_FLOOR = 0.01
#: Widths used when the ladder cannot be backtested (too few runs with checkpoints).
DEFAULT_LEVEL_SD = 0.03
DEFAULT_RATE_SD = 0.3
DEFAULT_NOISE_SD = 0.01
#: Checkpoints averaged into a run's "final" accuracy (the paper's checkpoint smoothing).
FINAL_CHECKPOINTS = 3


@dataclass(frozen=True)
class RunPrior:
    """How far a run may depart from the ladder's forecast, before it is seen.

    Attributes
    ----------
    level_sd : float
        Prior standard deviation of :math:`a`, the departure of the final accuracy.
    rate_sd : float
        Prior standard deviation of :math:`b`, the relative departure of the progress.
    noise_sd : float
        Prior checkpoint-to-checkpoint noise :math:`\\sigma` of one run.
    backtests : list of dict
        Per backtested ladder run: ``run``, ``level``, ``rate``, ``noise``,
        ``n_checkpoints``.
    reason : str
        Where the widths come from (a sentence).
    """

    level_sd: float = DEFAULT_LEVEL_SD
    rate_sd: float = DEFAULT_RATE_SD
    noise_sd: float = DEFAULT_NOISE_SD
    backtests: list = field(default_factory=list)
    reason: str = "defaults (the ladder was not backtested)"

    def __post_init__(self):
        for name in ("level_sd", "rate_sd", "noise_sd"):
            check_real("RunPrior", name, getattr(self, name), 0.0)

    def widened(self, factor: float, why: str) -> RunPrior:
        """The same prior with ``level_sd`` and ``rate_sd`` multiplied by ``factor``."""
        return RunPrior(self.level_sd * factor, self.rate_sd * factor, self.noise_sd,
                        list(self.backtests), f"{self.reason}; widened {factor:g}x: {why}")

    def with_level_floor(self, sd: float, why: str) -> RunPrior:
        """The prior with ``sd`` added to ``level_sd`` in quadrature when it is wider."""
        if not sd > self.level_sd:
            return self
        return RunPrior(float(np.hypot(self.level_sd, sd)), self.rate_sd, self.noise_sd,
                        list(self.backtests), f"{self.reason}; {why}")

    def with_run_sd(self, run_sd: float) -> RunPrior:
        """The prior with one run's seed-to-seed spread added to ``level_sd``."""
        if not run_sd:
            return self
        return RunPrior(float(np.hypot(self.level_sd, run_sd)), self.rate_sd, self.noise_sd,
                        list(self.backtests), f"{self.reason}; seed spread {run_sd:.3f} added")

    def to_dict(self) -> dict:
        """Plain-Python view (journal, report)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> RunPrior:
        """Inverse of :meth:`to_dict` (unknown keys are ignored)."""
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


@dataclass(frozen=True)
class Surprise:
    """One observation judged against the forecast made before it was seen.

    Attributes
    ----------
    tokens, observed : float
    expected, sd : float
        The one-step-ahead forecast and its predictive standard deviation (fit
        uncertainty and checkpoint noise).
    z : float
        ``(observed - expected) / sd``.
    weight : float
        The observation's weight in the update (0 when excluded).
    calibration : float
        The factor the model's predictive standard deviation was multiplied by (see
        :class:`RunConditioner`).
    """

    tokens: float
    observed: float
    expected: float
    sd: float
    z: float
    weight: float
    calibration: float = 1.0

    def to_dict(self) -> dict:
        return asdict(self)


def final_tokens(tokens_per_step: float | None, max_steps: int | None,
                 checkpoint_every: int | None = None) -> np.ndarray | None:
    """The tokens of the checkpoints whose mean is a run's final accuracy.

    The last :data:`FINAL_CHECKPOINTS` checkpoints, ``checkpoint_every`` steps apart
    (one checkpoint, at ``max_steps``, when the spacing is unknown); ``None`` when the
    run's length is unknown.
    """
    if not tokens_per_step or not max_steps:
        return None
    if checkpoint_every and checkpoint_every < max_steps:
        steps = max_steps - checkpoint_every * np.arange(FINAL_CHECKPOINTS)[::-1]
        steps = steps[steps > 0]
    else:
        steps = np.array([max_steps])
    return steps.astype(float) * float(tokens_per_step)


def _fit_departure(dev: np.ndarray, prog: np.ndarray) -> tuple[float, float, np.ndarray]:
    """Least-squares ``dev ~ a + b * prog``: (a, b, residuals); ``b = 0`` when ``prog``
    is flat."""
    if len(dev) >= 3 and np.ptp(prog) > 1e-9:
        X = np.c_[np.ones_like(prog), prog]
        coef = np.linalg.lstsq(X, dev, rcond=None)[0]
        return float(coef[0]), float(coef[1]), dev - X @ coef
    a = float(np.mean(dev))
    return a, 0.0, dev - a


def estimate_run_prior(ladder, benchmark: str, make_forecaster: Callable[[], object], *,
                       max_backtests: int = 2) -> RunPrior:
    """The widths of :class:`RunConditioner`'s prior, from backtests on the ladder.

    Each of the ``max_backtests`` largest ladder runs (by final compute) with at least
    3 checkpoints is forecast by a forecaster fitted on the runs of smaller final
    compute only, as the target is forecast from the ladder. Its departure along the
    run is fitted as ``a + b * (f0(D) - f0(D_T))``; the widths are the root mean squares
    of the backtests' ``a`` and ``b`` (at least the floors) and the spread of the
    residuals.

    Parameters
    ----------
    ladder : Ladder
    benchmark : str
    make_forecaster : callable
        Returns an unfitted forecaster like the monitor's (``fit(ladder, benchmark)``
        and ``predict(params, tokens)``).
    max_backtests : int, default 2

    Returns
    -------
    RunPrior
        The defaults, with the reason, when no run could be backtested.
    """
    from cod_monitor.cod.trajectory import ladder_runs

    full = ladder.matrix(benchmark, roles=("ladder",))
    acc = full.pass_rates.mean(axis=0)
    runs = {k: idx for k, idx in ladder_runs(full.models).items() if len(idx) >= 3}
    final_compute = {k: full.models[idx[-1]].compute for k, idx in runs.items()}
    order = sorted(runs, key=final_compute.get)
    rows, failures = [], []
    run_final: dict[str, float] = {}
    for m in ladder.models:
        if m.role == "ladder":
            key = m.run_key if m.step is not None else f"model={m.name}"
            run_final[key] = max(run_final.get(key, -math.inf), m.compute)
    for key in order[::-1][:max_backtests]:
        idx = runs[key]
        # the run itself and every run that ends at or above its compute
        drop = [m.name for m in ladder.models if m.role == "ladder" and run_final[
            m.run_key if m.step is not None else f"model={m.name}"] >= final_compute[key]]
        try:
            sub = ladder.without_models(drop)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = make_forecaster().fit(sub, benchmark)
                N = np.array([full.models[i].params for i in idx])
                D = np.array([full.models[i].tokens for i in idx])
                f0 = np.asarray(model.predict(N, D), dtype=float)
        except Exception as exc:  # too few runs left, a fit that fails: no backtest
            failures.append(f"{key}: {type(exc).__name__}")
            continue
        tail = min(FINAL_CHECKPOINTS, len(idx))
        prog = f0 - f0[-tail:].mean()
        dev = acc[idx] - f0
        a, b, resid = _fit_departure(dev, prog)
        dof = max(len(idx) - 2, 1)
        rows.append({"run": key, "level": a, "rate": b,
                     "noise": float(np.sqrt(np.sum(resid**2) / dof)), "n_checkpoints": len(idx)})
    if not rows:
        why = "no ladder run could be backtested"
        if failures:
            why += " (" + "; ".join(failures) + ")"
        return RunPrior(reason=f"defaults: {why}")

    def rms(key):
        return float(np.sqrt(np.mean([r[key] ** 2 for r in rows])))

    return RunPrior(
        level_sd=max(rms("level"), LEVEL_SD_FLOOR),
        rate_sd=max(rms("rate"), RATE_SD_FLOOR),
        noise_sd=max(rms("noise"), NOISE_SD_FLOOR),
        backtests=rows,
        reason=(f"backtests of the {len(rows)} largest ladder run"
                f"{'s' if len(rows) != 1 else ''} forecast from the smaller ones"),
    )


class RunConditioner:
    """The run's forecast, updated by each of its checkpoints (see the module docstring).

    Parameters
    ----------
    prior_curve : callable
        ``prior_curve(tokens) -> accuracy`` for an array of tokens: the ladder-only
        forecast of this run.
    prior : RunPrior
    end_tokens : array_like, optional
        Tokens of the checkpoints whose mean is the run's final accuracy
        (:func:`final_tokens`); ``None`` when the run's length is unknown (then
        :meth:`final` returns ``None`` and the departure is measured at the last
        observed checkpoint's tokens).
    huber : float, default 2.0
        Surprises beyond ``huber`` standard deviations are down-weighted.
    noise_dof : float, default 3.0
        Weight of ``prior.noise_sd`` against the run's own residuals, in observations.

    Examples
    --------
    >>> import numpy as np
    >>> curve = lambda d: 0.5 * (1 - np.exp(-np.asarray(d) / 1e6))
    >>> rc = RunConditioner(curve, RunPrior(), end_tokens=[4e6])
    >>> round(rc.final()[0], 4) == round(float(curve(4e6)), 4)  # no observation: the prior
    True
    >>> for d in (5e5, 1e6, 1.5e6, 2e6):
    ...     _ = rc.observe(d, float(curve(d)) + 0.05)
    >>> rc.final()[0] > float(curve(4e6)) + 0.02  # a run ahead of the ladder stays ahead
    True
    """

    def __init__(self, prior_curve: Callable, prior: RunPrior, *, end_tokens=None,
                 huber: float = 2.0, noise_dof: float = 3.0):
        if not isinstance(prior, RunPrior):
            raise invalid("RunConditioner", "prior", "a RunPrior", prior)
        self.huber = check_real("RunConditioner", "huber", huber, 0.0)
        self.noise_dof = check_real("RunConditioner", "noise_dof", noise_dof, 0.0)
        self.prior_curve = prior_curve
        self.prior = prior
        self.end_tokens = None if end_tokens is None else np.atleast_1d(
            np.asarray(end_tokens, dtype=float))
        self._anchor = None if self.end_tokens is None else float(
            np.mean(self._f0(self.end_tokens)))
        self.history: list[Surprise] = []
        self._mean = np.zeros(2)
        self._cov = np.diag([prior.level_sd**2, prior.rate_sd**2])
        self._sigma = float(prior.noise_sd)
        self._calibration = 1.0

    # ------------------------------------------------------------------ model
    def _f0(self, tokens) -> np.ndarray:
        return np.clip(np.asarray(self.prior_curve(np.asarray(tokens, dtype=float)), dtype=float),
                       0.0, 1.0)

    def _basis(self, f0: np.ndarray) -> np.ndarray:
        anchor = self._anchor
        if anchor is None:  # unknown end: measure the departure at the latest checkpoint
            anchor = float(self._f0(self.history[-1].tokens)) if self.history else 0.0
        return np.c_[np.ones_like(f0), f0 - anchor]

    def _refit(self) -> None:
        used = [s for s in self.history if s.weight > 0]
        p0 = np.diag([1.0 / self.prior.level_sd**2, 1.0 / self.prior.rate_sd**2])
        if not used:
            self._mean, self._cov, self._sigma = np.zeros(2), np.linalg.inv(p0), self.prior.noise_sd
            self._calibration = 1.0
            return
        t = np.array([s.tokens for s in used])
        f0 = self._f0(t)
        X = self._basis(f0)
        dev = np.array([s.observed for s in used]) - f0
        w = np.array([s.weight for s in used])
        # from the prior's noise every time, so that a replayed run (a resumed monitor)
        # gets exactly the same forecast as the run that was learned step by step
        sigma = self.prior.noise_sd
        for _ in range(5):  # noise and coefficients, each given the other
            prec = p0 + (X * (w / sigma**2)[:, None]).T @ X
            cov = np.linalg.inv(prec)
            mean = cov @ (X.T @ (w * dev) / sigma**2)
            ssr = float(np.sum(w * (dev - X @ mean) ** 2))
            n_eff = float(np.sum(w))
            # residuals around the fitted mean understate the noise (about one
            # parameter's worth: the prior holds the other back)
            dof = max(n_eff - 1.0, 0.0)
            sigma = math.sqrt((self.noise_dof * self.prior.noise_sd**2 + ssr)
                              / (self.noise_dof + dof)) if (self.noise_dof + dof) > 0 else sigma
            sigma = max(sigma, NOISE_SD_FLOOR)
        self._mean, self._cov, self._sigma = mean, cov, sigma
        self._calibrate()

    # ------------------------------------------------------------------ queries
    @property
    def n_observed(self) -> int:
        """Observations seen (used or not)."""
        return len(self.history)

    @property
    def departure(self) -> dict:
        """The posterior departure from the ladder: ``level`` (a), ``rate`` (b), their
        standard deviations, and the checkpoint noise ``noise_sd``."""
        sd = np.sqrt(np.diag(self._cov))
        return {"level": float(self._mean[0]), "level_sd": float(sd[0]),
                "rate": float(self._mean[1]), "rate_sd": float(sd[1]),
                "noise_sd": float(self._sigma), "calibration": float(self._calibration),
                "n_used": int(sum(s.weight > 0 for s in self.history))}

    def predict(self, tokens, *, noise: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """The forecast of the checkpoint(s) after ``tokens`` tokens: mean and standard
        deviation (with the checkpoint noise unless ``noise=False``). With no observation
        the mean is the prior's."""
        f0 = self._f0(np.atleast_1d(tokens))
        X = self._basis(f0)
        mean = np.clip(f0 + X @ self._mean, 0.0, 1.0)
        var = np.einsum("ij,jk,ik->i", X, self._cov, X)
        if noise:
            var = var + self._sigma**2
        return mean, self._calibration * np.sqrt(np.maximum(var, 0.0))

    def final(self) -> tuple[float, float] | None:
        """The forecast of the run's final accuracy (the mean of the checkpoints at
        ``end_tokens``) and its standard deviation; ``None`` when the end is unknown."""
        if self.end_tokens is None:
            return None
        f0 = self._f0(self.end_tokens)
        X = self._basis(f0)
        xbar = X.mean(axis=0)
        mean = float(np.clip(np.mean(f0) + xbar @ self._mean, 0.0, 1.0))
        var = float(xbar @ self._cov @ xbar) + self._sigma**2 / len(self.end_tokens)
        return mean, self._calibration * math.sqrt(max(var, 0.0))

    def interval(self, mean, sd, level: float) -> tuple:
        """The central ``level`` interval of a forecast, clipped to [0, 1]."""
        z = float(ndtri((1 + level) / 2))
        return np.clip(mean - z * sd, 0.0, 1.0), np.clip(mean + z * sd, 0.0, 1.0)

    # ------------------------------------------------------------------ updates
    def observe(self, tokens: float, accuracy: float, *, exclude: bool = False) -> Surprise:
        """Judge one observation against the forecast made before it, then learn from it.

        Parameters
        ----------
        tokens : float
            Tokens seen at the checkpoint.
        accuracy : float
        exclude : bool, default False
            Keep it out of the update (e.g. a checkpoint under a drift alert).

        Returns
        -------
        Surprise
        """
        tokens = check_real("RunConditioner.observe", "tokens", tokens, 0.0)
        accuracy = check_real("RunConditioner.observe", "accuracy", accuracy, 0.0, 1.0,
                              closed="both")
        mean, sd = self.predict(tokens)
        expected, sd = float(mean[0]), max(float(sd[0]), 1e-9)
        z = (accuracy - expected) / sd
        weight = 1.0
        if exclude:
            weight = 0.0
        elif z < -self.huber:
            # only shortfalls are down-weighted: a run ahead of its forecast is no fault,
            # and a departure the ladder did not foresee must still be learned
            weight = self.huber / abs(z)
        s = Surprise(tokens=tokens, observed=accuracy, expected=expected, sd=sd, z=float(z),
                     weight=float(weight), calibration=self._calibration)
        self.history.append(s)
        if weight > 0:
            self._refit()
        return s

    def _calibrate(self) -> None:
        """The predictive spread's factor, from the one-step errors seen so far.

        The model's own spread (fit uncertainty and checkpoint noise around its curve)
        understates how far the next checkpoint lands when the run's curve does not
        have the ladder's shape; the mean squared standardised one-step error of the
        learned-from observations (each clipped at 3, with ``noise_dof`` pseudo-
        observations of 1) says by how much. Never below 1.
        """
        raw = [min((s.z * s.calibration) ** 2, 9.0) for s in self.history if s.weight > 0]
        if not raw:
            self._calibration = 1.0
            return
        self._calibration = max(1.0, math.sqrt((self.noise_dof + sum(raw))
                                               / (self.noise_dof + len(raw))))

    def exclude(self, tokens_at_or_after: float) -> None:
        """Take the observations at or after ``tokens_at_or_after`` out of the update
        (a drift alert found them to be a departure, not the run's course)."""
        changed = False
        for i, s in enumerate(self.history):
            if s.tokens >= tokens_at_or_after and s.weight > 0:
                self.history[i] = replace(s, weight=0.0)
                changed = True
        if changed:
            self._refit()

    def replay(self, observations: Sequence[tuple[float, float, bool]]) -> None:
        """Observe ``(tokens, accuracy, exclude)`` in order (a resumed run)."""
        for tokens, accuracy, excl in observations:
            self.observe(tokens, accuracy, exclude=excl)
