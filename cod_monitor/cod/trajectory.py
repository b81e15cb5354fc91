"""Forecast the accuracy of a run *in progress*, checkpoint by checkpoint.

COD (:class:`~cod_monitor.cod.forecaster.CODForecaster`) fits the *finished* models of a
ladder: accuracy as a function of the compute :math:`C = 6ND` of a model trained to
the end of its token budget. A checkpoint of a bigger run at compute :math:`C_t` is
not such a model: it has more parameters and has seen far fewer tokens than a ladder
model of equal compute. The modes:

``'compute'``
    The finished-model forecast at the checkpoint's compute. Biased for intermediate
    checkpoints: an early checkpoint of a large model is a badly *under-trained*
    model for its compute, so the forecast is too high early in the run and the bias
    shrinks as the run approaches the ladder's tokens-per-parameter ratio. Useful for
    the end-of-run forecast, and the only choice when the ladder has no intermediate
    checkpoints.
``'trajectory'``
    COD's clusters, extrapolatable filter and subset-to-full mapping, with each kept
    cluster's law written in parameters :math:`N` and tokens seen :math:`D` and
    fitted on *every* checkpoint of the ladder runs (models with ``step``/``run``):

    .. math:: y_k(N, D) = g_k + (1-g_k)\\exp\\left(-A_k N^{-\\alpha_k}
              - B_k D^{-\\beta_k} - c_k\\right)

    i.e. the COD law with the answer loss written as a Chinchilla-style sum of a
    model-size and a data term. The forecast for a checkpoint of the target run is
    :math:`f(\\sum_k n_k y_k(N_T, D_t) / \\sum_k n_k)` with :math:`f` COD's last step
    (:meth:`CODForecaster.full_from_subset`: the subset-to-full mapping, or the
    subset/rest share combination).
``'trajectory_e2e'``
    One such law fitted to the full-set accuracy directly (an ablation: no
    clustering, no mapping).
``'recipe'``
    A forecaster of *finished* models (COD, or the estimator given as ``finished``)
    evaluated at the checkpoint's *recipe-equivalent compute*: the compute of the
    finished model of the ladder's recipe (the line :math:`\\log D = k \\log N + m`
    through the ladder runs' final checkpoints) that the (N, D) law of
    ``'trajectory_e2e'`` rates as good as the checkpoint
    (:func:`cod_monitor.cod.transport.recipe_compute`). The law only translates an
    in-progress checkpoint into the finished model it equals; the level comes from the
    finished-model forecaster, so at the end of a run trained by the recipe the
    forecast is that forecaster's own.
``'blend'``
    The mean of the ``'trajectory_e2e'`` and ``'recipe'`` forecasts: two models of one
    quantity that fail in different ways (the (N, D) law's shape is separable in
    parameters and tokens; the recipe route leans on the finished-model forecaster's
    extrapolation), averaged with equal weights because the ladder's few largest runs
    cannot tell which one will be right for the target (weights estimated from them
    picked the wrong one on the benchmark's ladders; see ``BENCHMARKS.md``, "Live
    forecast"). Its band is that of the equal mixture of the two: each band's variance
    averaged, plus the squared half-distance between the two forecasts.
``'auto'``
    ``'blend'`` when the ladder has at least ``min_runs`` runs with at least
    ``min_checkpoints`` checkpoints each and its runs' training tokens grow with their
    size (the recipe line), ``'trajectory_e2e'`` when only the first holds, else
    ``'compute'``.

The accuracy of each mode on synthetic and demo runs is measured by
``benchmarks/bench_monitor.py`` and reported in ``BENCHMARKS.md``.

Intervals
---------
:meth:`TrajectoryForecaster.predict_interval` is a prediction interval for one
*observed* checkpoint, not only for the law: a bootstrap over samples (within
clusters) and ladder runs gives the uncertainty of the fit, and the residual spread
of the ladder's own points around the fitted curve (``residual_sd_``: checkpoint to
checkpoint noise of a constant-learning-rate run, evaluation noise and lack of fit)
is added in quadrature. In ``'compute'`` mode the residuals are those of the
finished ladder models, which COD fits closely, so its band stays narrow and its
bias shows up as drift alerts. ``run_sd`` adds one more term in quadrature: how much a
single healthy run varies with its seed. The ladder's residuals cannot show it when its
points average several seeds.

A failure of an interval's source never stops the forecasts: a bootstrap that fails
gives no replicate, and in ``'recipe'`` mode a finished-model interval that is
unavailable (e.g. ``interval='backtest'`` on a ladder too small to backtest) is
replaced by that forecaster's bootstrap spread alone, so that a monitor keeps a band
to judge drift against. ``interval_error_`` (and ``report()``) says what was lost.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.special import ndtri

from cod_monitor._estimator import Estimator, check_is_fitted, clone
from cod_monitor._validation import check_bool, check_choice, check_int, check_real, invalid
from cod_monitor.cod.configs import DEFAULT_CONFIGURATIONS
from cod_monitor.cod.forecaster import CODForecaster, cluster_means
from cod_monitor.cod.laws_nd import (TRAJECTORY_FORMS, TrajectoryLaw, fit_trajectory_laws,
                                     fit_trajectory_laws_many, trajectory_accuracy)
from cod_monitor.cod.routing import RoutedCOD
from cod_monitor.cod.transport import recipe_compute
from cod_monitor.exceptions import FitWarning, InputError
from cod_monitor.ladder import load_ladder
from cod_monitor.ladder.selection import final_checkpoints
from cod_monitor.records import ForecastPoint

__all__ = [
    "TRAJECTORY_MODES",
    "TrajectoryForecaster",
    "TrajectoryLaw",
    "fit_trajectory_laws",
    "ladder_runs",
    "trajectory_accuracy",
]

#: Modes of :class:`TrajectoryForecaster` (``'auto'`` resolves to one of the others).
TRAJECTORY_MODES = ("auto", "compute", "trajectory", "trajectory_e2e", "recipe", "blend")
# What a forecaster of finished models must offer (``finished``).
_FINISHED_API = ("fit", "predict", "predict_interval", "bootstrap_predictions", "get_params")


def ladder_runs(models) -> dict[str, list[int]]:
    """Column indices of every run's checkpoints, by step (models without ``step``
    are runs of one checkpoint)."""
    runs: dict[str, list[int]] = {}
    for i, m in enumerate(models):
        key = m.run_key if m.step is not None else f"model={m.name}"
        runs.setdefault(key, []).append(i)
    for key in runs:
        runs[key].sort(key=lambda i: (models[i].step or 0, models[i].tokens))
    return runs


class TrajectoryForecaster(Estimator):
    """Forecast a run's accuracy at each of its checkpoints (see the module docstring).

    Parameters
    ----------
    mode : {'auto', 'compute', 'trajectory', 'trajectory_e2e', 'recipe', 'blend'}, default 'auto'
    cod_params : dict, optional
        Parameters of the underlying :class:`~cod_monitor.cod.forecaster.CODForecaster`
        (clusters, filter, mapping, compute-mode forecasts), changed from the
        monitor's configuration (``DEFAULT_CONFIGURATIONS["monitor"]`` of
        :mod:`cod_monitor.cod.configs`); ``random_state`` and ``n_bootstrap`` come from
        this object unless given here.
    finished : estimator, optional
        The forecaster of finished models behind the ``'compute'``, ``'recipe'`` and
        ``'blend'`` modes: an unfitted estimator with ``fit(ladder, benchmark)``,
        ``predict(compute)``, ``predict_interval(compute, level)`` and
        ``bootstrap_predictions(compute)`` (e.g. from
        :func:`cod_monitor.methods.make_forecaster`), cloned before fitting
        (``cod_params`` do not reach it). ``None``: the package's default,
        :class:`~cod_monitor.cod.routing.RoutedCOD` (``predict``'s ``cod``), or, when
        ``cod_params`` are given, the :class:`~cod_monitor.cod.forecaster.CODForecaster`
        they configure (``cod_`` below).
    n_bootstrap : int, default 100
        Bootstrap replicates of the interval (0: residual spread only).
    noise : bool, default True
        Add the residual spread of the ladder points (``residual_sd_``) to the interval.
    run_sd : float, default 0
        Standard deviation of one run's accuracy around the expected one (how much a
        healthy run varies with its initialisation and data order), added to the
        interval in quadrature. A ladder whose points average several seeds shows less
        spread than the single run being monitored; the demo build records the spread
        of its seeds (``final_seed_sd`` in ``build.json``).
    min_runs, min_checkpoints : int, default 3, 3
        What ``'auto'`` (and ``'trajectory'``) need: runs with at least
        ``min_checkpoints`` checkpoints each.
    law_form : {'additive', 'two_phase', 'auto'}, default 'additive'
        Form of the full-set trajectory law of the ``'trajectory_e2e'``, ``'recipe'``
        and ``'blend'`` modes (:mod:`cod_monitor.cod.laws_nd`). ``'auto'`` fits both on
        the ladder without its largest runs and keeps ``'two_phase'`` only when it
        forecasts their checkpoints better (``reason_`` gives both errors). The
        per-cluster laws of ``'trajectory'`` are additive. ``'two_phase'`` is not the
        default: on the demo ladder it brings the ladder-only forecast of the final much
        closer, but the forecast conditioned on the run gets worse (BENCHMARKS.md,
        "Live forecast").
    random_state : int, default 0

    Attributes
    ----------
    mode_ : str
        The mode in use (``'auto'`` resolved).
    reason_ : str
        Why ``'auto'`` chose it (and, with ``law_form='auto'``, the law's form).
    law_form_ : str or None
        The form of the full-set law (``None`` in the modes without one).
    benchmark_ : str
    cod_ : CODForecaster
        Clusters, filter and mapping of the ``'trajectory'`` mode.
    finished_ : estimator
        The forecaster of finished models of the ``'compute'``, ``'recipe'`` and
        ``'blend'`` modes (see ``finished``; ``cod_`` in the other modes, which do not
        read it).
    recipe_line_ : tuple of float or None
        ``(slope, intercept)`` of :math:`\\log D` against :math:`\\log N` over the
        ladder runs' final checkpoints; ``'recipe'`` and ``'blend'`` modes only.
    laws_ : list of TrajectoryLaw or None
        Per COD cluster (``None`` for clusters not kept); a one-element list in
        ``'trajectory_e2e'``, ``'recipe'`` and ``'blend'`` modes; empty in ``'compute'``
        mode.
    weights_ : ndarray
        Cluster weights of the subset forecast.
    residual_sd_ : float
        RMS residual of the full-set accuracy of the ladder points around the fit.
    n_runs_, n_points_ : int
        Ladder runs and checkpoints fitted.
    interval_error_ : str or None
        What the interval lacks, when a source of it failed (the bootstrap, or the
        finished-model forecaster's interval); ``None`` when the interval is whole or
        not computed yet (:meth:`prepare` computes it).

    Examples
    --------
    >>> from cod_monitor.synthetic import synthetic_ladder
    >>> syn = synthetic_ladder(n_samples=500, seed=0)
    >>> tf = TrajectoryForecaster(n_bootstrap=0).fit(syn.ladder, syn.benchmark)
    >>> tf.mode_  # no intermediate checkpoints in this ladder
    'compute'
    >>> fp = tf.forecast(step=100, params=7e10, tokens=1.4e12)
    >>> fp.lower <= fp.value <= fp.upper
    True
    """

    def __init__(
        self,
        *,
        mode: str = "auto",
        cod_params: dict | None = None,
        finished=None,
        n_bootstrap: int = 100,
        noise: bool = True,
        run_sd: float = 0.0,
        min_runs: int = 3,
        min_checkpoints: int = 3,
        law_form: str = "additive",
        random_state: int = 0,
    ):
        self.mode = mode
        self.cod_params = cod_params
        self.finished = finished
        self.n_bootstrap = n_bootstrap
        self.noise = noise
        self.run_sd = run_sd
        self.min_runs = min_runs
        self.min_checkpoints = min_checkpoints
        self.law_form = law_form
        self.random_state = random_state

    # ---------------------------------------------------------------- fitting

    def _validate_params(self):
        owner = type(self).__name__
        check_choice(owner, "mode", self.mode, TRAJECTORY_MODES)
        if self.finished is not None and not all(
                hasattr(self.finished, a) for a in _FINISHED_API):
            raise invalid(owner, "finished", "None or an unfitted forecaster of finished "
                          f"models (with {', '.join(_FINISHED_API)})", self.finished)
        check_int(owner, "n_bootstrap", self.n_bootstrap, 0)
        check_bool(owner, "noise", self.noise)
        check_real(owner, "run_sd", self.run_sd, 0.0, closed="left")
        check_int(owner, "min_runs", self.min_runs, 1)
        check_int(owner, "min_checkpoints", self.min_checkpoints, 1)
        check_choice(owner, "law_form", self.law_form, ("auto",) + TRAJECTORY_FORMS)

    def fit(self, ladder, benchmark: str):
        """Fit COD and, when the ladder allows, the per-cluster trajectory laws.

        Parameters
        ----------
        ladder : Ladder or path
            Models with role ``'ladder'`` are fitted; intermediate checkpoints need
            ``step`` (and ``run``, unless a run is identified by its ``params``).
        benchmark : str

        Returns
        -------
        self

        Raises
        ------
        ValueError
            ``mode='trajectory'`` (or ``'trajectory_e2e'``) on a ladder without
            enough runs of intermediate checkpoints.
        LadderValidationError, NoExtrapolatableClusterError
            As :meth:`CODForecaster.fit`.
        """
        self._validate_params()
        ladder = load_ladder(ladder)
        cod = CODForecaster.from_config(
            DEFAULT_CONFIGURATIONS["monitor"], random_state=self.random_state,
            n_bootstrap=self.n_bootstrap, **(self.cod_params or {}),
        ).fit(ladder, benchmark)
        full = ladder.matrix(benchmark, roles=("ladder",))
        runs = ladder_runs(full.models)
        long_runs = [r for r, idx in runs.items() if len(idx) >= self.min_checkpoints]
        enough = len(long_runs) >= self.min_runs
        mode = self.mode
        recipe_line = None
        if mode == "auto":
            mode = "trajectory_e2e" if enough else "compute"
            reason = (
                f"{len(long_runs)} ladder runs have >= {self.min_checkpoints} checkpoints"
                + (" (enough for the trajectory law)" if enough
                   else f"; the trajectory law needs {self.min_runs}")
            )
            if enough:
                try:
                    recipe_line = self._recipe_line(full.models)
                except InputError:
                    reason += "; no recipe line (tokens do not grow with size): the law alone"
                else:
                    mode = "blend"
        else:
            reason = "set by the caller"
            if mode != "compute" and not enough:
                raise InputError(
                    f"mode={mode!r} needs at least {self.min_runs} ladder runs with "
                    f">= {self.min_checkpoints} checkpoints (models with step and run); "
                    f"this ladder has {len(long_runs)}. Use mode='compute' or 'auto'."
                )

        try:
            finished = self._fit_finished(cod, mode, ladder, benchmark)
        except Exception as exc:
            if self.mode != "auto" or mode != "blend":
                raise
            # the blend's second component failed: the law alone still forecasts the run
            mode, recipe_line = "trajectory_e2e", None
            reason += (f"; the finished-model forecaster failed ({type(exc).__name__}: "
                       f"{exc}): the law alone")
            finished = cod
        if self.mode == "auto" and mode == "blend":
            reason += ("; the mean of the law's forecast and the finished-model forecast at "
                       "the recipe-equivalent compute")

        X = full.pass_rates
        labels = None
        N = np.array([m.params for m in full.models])
        D = np.array([m.tokens for m in full.models])
        full_acc = X.mean(axis=0)
        if mode in ("recipe", "blend") and recipe_line is None:
            recipe_line = self._recipe_line(full.models)
        if mode == "compute":
            laws, weights = [], np.zeros(0)
            final = np.array([m.name in {f.name for f in finished.models_} for m in full.models])
            pred = np.asarray(finished.predict(np.array([m.compute for m in full.models])[final]))
            resid = full_acc[final] - pred
            n_points = int(final.sum())
        else:
            if mode == "trajectory":
                # COD's labels are per sample; the ladder matrix has the same samples
                labels, kept = self._labels_for(cod, full)
                n_clusters = len(cod.cluster_fits_)
                acc, sizes = cluster_means(X, labels, n_clusters)
                ids = np.flatnonzero(kept)
                fitted = fit_trajectory_laws(N, D, acc[ids])
                laws = [None] * n_clusters
                for k, law in zip(ids, fitted):
                    laws[k] = law
                weights = np.zeros(n_clusters)
                weights[ids] = sizes[ids] / sizes[ids].sum()
            else:
                form, why = self._law_form(N, D, full_acc)
                if why:
                    reason += f"; {why}"
                laws = fit_trajectory_laws(N, D, full_acc, form=form)
                weights = np.ones(1)
            # for _point below
            self.cod_, self.finished_, self.laws_, self.weights_ = cod, finished, laws, weights
            self.mode_, self.recipe_line_ = mode, recipe_line
            C = np.array([m.compute for m in full.models])
            resid = full_acc - self._point(N, D, C)
            n_points = len(full.models)

        self.mode_ = mode
        self.reason_ = reason
        self.law_form_ = (laws[0].form if mode not in ("compute", "trajectory") and laws
                          else None)
        self.benchmark_ = benchmark
        self.cod_ = cod
        self.finished_ = finished
        self.recipe_line_ = recipe_line
        self.laws_ = laws
        self.weights_ = weights
        self.residual_sd_ = float(np.sqrt(np.mean(resid**2))) if len(resid) else 0.0
        self.n_runs_ = len(runs)
        self.n_points_ = n_points
        self._fit_data = (X, N, D, runs, labels)
        self._replicates = None
        self.interval_error_ = None
        return self

    def _law_form(self, N, D, acc) -> tuple[str, str]:
        """The full-set law's form and, for ``'auto'``, why: each form fitted without the
        ladder's largest runs, judged on their checkpoints."""
        if self.law_form != "auto":
            return self.law_form, ""
        big = N == N.max()
        try:
            rmse = {}
            for form in TRAJECTORY_FORMS:
                law = fit_trajectory_laws(N[~big], D[~big], acc[~big], form=form)[0]
                rmse[form] = float(np.sqrt(np.mean((law(N[big], D[big]) - acc[big]) ** 2)))
        except (InputError, ValueError) as exc:
            return "additive", f"additive trajectory law (no held-out check: {exc})"
        form = "two_phase" if rmse["two_phase"] < rmse["additive"] else "additive"
        return form, (
            f"{form} trajectory law (fitted without the largest runs, it missed their "
            f"checkpoints by {100 * rmse[form]:.2f} points RMS, the other form by "
            f"{100 * rmse['additive' if form == 'two_phase' else 'two_phase']:.2f})")

    def _fit_finished(self, cod, mode, ladder, benchmark):
        """The fitted forecaster of finished models (``cod`` in the modes that do not read it)."""
        if self.finished is not None:
            return clone(self.finished).fit(ladder, benchmark)
        if mode in ("compute", "recipe", "blend") and not self.cod_params:
            # the package's one default forecaster of finished models (the route chosen
            # by the ladder's backtests); only these modes read it
            return RoutedCOD(n_bootstrap=self.n_bootstrap,
                             random_state=self.random_state).fit(ladder, benchmark)
        return cod

    @staticmethod
    def _recipe_line(models) -> tuple[float, float]:
        """(slope, intercept) of log tokens against log params over the runs' final checkpoints."""
        finals = [models[i] for i in final_checkpoints(models)]
        ln = np.log([m.params for m in finals])
        ld = np.log([m.tokens for m in finals])
        slope = float(np.polyfit(ln, ld, 1)[0]) if np.ptp(ln) > 0 else float("nan")
        if not slope > 0:
            raise InputError(
                "mode='recipe' needs ladder runs of several sizes whose training tokens grow "
                f"with their parameters (the recipe line); the final checkpoints give a slope of "
                f"{slope:.3g} over {len(finals)} runs. Use mode='trajectory_e2e' or 'compute'."
            )
        return slope, float(np.mean(ld - slope * ln))

    @staticmethod
    def _labels_for(cod, full):
        if not np.array_equal(np.asarray(cod.sample_ids_), np.asarray(full.sample_ids)):
            index = {s: i for i, s in enumerate(cod.sample_ids_)}
            order = np.array([index[s] for s in full.sample_ids])
            return cod.labels_[order], cod.kept_
        return cod.labels_, cod.kept_

    # ------------------------------------------------------------- prediction

    def _equivalent_compute(self, params, tokens, compute, law=None):
        """Compute of the finished recipe model as good as each checkpoint (``'recipe'``)."""
        c = _flops(params, tokens, compute)
        slope, intercept = self.recipe_line_
        law = self.laws_[0] if law is None else law
        try:
            return recipe_compute(params, tokens, c, law, slope=slope, intercept=intercept)
        except ValueError:  # a law flat in params and tokens: no equivalence, keep the compute
            return np.broadcast_to(np.asarray(c, dtype=float), np.broadcast(params, tokens).shape)

    def _recipe_point(self, params, tokens, compute, law):
        """The finished-model forecast at the recipe-equivalent compute under ``law``."""
        c_eq = self._equivalent_compute(params, tokens, compute, law)
        out = np.clip(np.asarray(self.finished_.predict(c_eq), dtype=float), 0.0, 1.0)
        return out.reshape(np.broadcast(params, tokens).shape)

    def _point(self, params, tokens, compute, laws=None):
        if self.mode_ == "compute":
            return np.asarray(self.finished_.predict(_flops(params, tokens, compute)), dtype=float)
        laws = self.laws_ if laws is None else laws
        if self.mode_ == "recipe":
            return self._recipe_point(params, tokens, compute, laws[0])
        if self.mode_ == "trajectory_e2e":
            return np.clip(laws[0](params, tokens), 0.0, 1.0)
        if self.mode_ == "blend":
            return 0.5 * (np.clip(laws[0](params, tokens), 0.0, 1.0)
                          + self._recipe_point(params, tokens, compute, laws[0]))
        subset = 0.0
        for w, law in zip(self.weights_, laws):
            if law is not None and w > 0:
                subset = subset + w * law(params, tokens)
        c = _flops(params, tokens, compute)
        # COD's last step: the subset-to-full mapping (or the subset/rest share combination)
        full = self.cod_.full_from_subset(np.clip(subset, 0.0, 1.0), c)
        return np.clip(np.asarray(full, dtype=float), 0.0, 1.0)

    def _args(self, params, tokens, compute):
        if compute is not None:
            compute = np.asarray(compute, dtype=float)
        if self.mode_ == "compute" and compute is not None:
            return None, None, compute
        if params is None or tokens is None:
            raise InputError(
                f"mode {self.mode_!r} needs the checkpoint's params and tokens"
                + (" (or its compute)" if self.mode_ == "compute" else "")
            )
        p, t = np.asarray(params, dtype=float), np.asarray(tokens, dtype=float)
        if np.any(~np.isfinite(p)) or np.any(p <= 0) or np.any(~np.isfinite(t)) or np.any(t <= 0):
            raise InputError(f"`params` and `tokens` should be positive, got {params!r}, {tokens!r}")
        return p, t, compute

    def predict(self, params=None, tokens=None, *, compute=None):
        """Forecast accuracy of a checkpoint with ``params`` parameters after ``tokens`` tokens.

        Parameters
        ----------
        params : float or array_like
            Parameters of the run (:math:`N_T`).
        tokens : float or array_like
            Tokens seen at the checkpoint(s).
        compute : float or array_like, optional
            FLOPs at the checkpoint; ``'compute'`` mode uses it instead of
            ``6 * params * tokens``.

        Returns
        -------
        float or ndarray
        """
        check_is_fitted(self, "mode_")
        p, t, c = self._args(params, tokens, compute)
        out = self._point(p, t, c)
        return float(out) if np.ndim(out) == 0 else out

    def predict_interval(self, params=None, tokens=None, *, compute=None, level: float = 0.9):
        """Prediction interval for the accuracy *observed* at a checkpoint.

        Parameters
        ----------
        params, tokens, compute
            As :meth:`predict`.
        level : float, default 0.9

        Returns
        -------
        (lower, upper) : floats or ndarrays
        """
        check_is_fitted(self, "mode_")
        check_real(f"{type(self).__name__}.predict_interval", "level", level, 0.0, 1.0)
        p, t, c = self._args(params, tokens, compute)
        if self.mode_ in ("recipe", "blend"):
            # the equivalence (a root-find per checkpoint) once, for the point and the band
            c_eq = self._equivalent_compute(p, t, c)
            here = np.asarray(self.finished_.predict(c_eq), dtype=float).reshape(
                np.broadcast(p, t).shape)
            point = np.clip(here, 0.0, 1.0)  # as _point
            lo_half, hi_half = self._recipe_halfwidths(p, t, c, c_eq, here, level)
            if self.mode_ == "blend":
                point, lo_half, hi_half = self._blend_band(p, t, point, lo_half, hi_half, level)
        else:
            point = np.asarray(self._point(p, t, c), dtype=float)
            lo_half, hi_half = _halfwidths(self._draws(p, t, c), point, level)
        z = float(ndtri((1 + level) / 2))
        spread = np.hypot(self.residual_sd_ if self.noise else 0.0, self.run_sd)
        if spread > 0:
            lo_half, hi_half = np.hypot(lo_half, z * spread), np.hypot(hi_half, z * spread)
        lower = np.clip(point - lo_half, 0.0, 1.0)
        upper = np.clip(point + hi_half, 0.0, 1.0)
        scalar = np.ndim(point) == 0
        return (float(lower), float(upper)) if scalar else (lower, upper)

    def forecast(self, step: int, params=None, tokens=None, *, compute=None, level: float = 0.9,
                 version: int = 0) -> ForecastPoint:
        """The :class:`~cod_monitor.records.ForecastPoint` of one checkpoint.

        Parameters
        ----------
        step : int
        params, tokens, compute
            As :meth:`predict` (scalars).
        level : float, default 0.9
        version : int, default 0

        Returns
        -------
        ForecastPoint
        """
        value = self.predict(params, tokens, compute=compute)
        lower, upper = self.predict_interval(params, tokens, compute=compute, level=level)
        if compute is None:
            compute = float(_flops(params, tokens, None))
        return ForecastPoint(
            step=int(step), compute=float(compute), benchmark=self.benchmark_, value=float(value),
            lower=float(lower), upper=float(upper), version=int(version), mode=self.mode_,
            tokens=None if tokens is None else float(tokens),
        )

    def _blend_band(self, p, t, recipe_point, recipe_lo, recipe_hi, level):
        """Point and half-widths of ``'blend'``: the equal mixture of the (N, D) law's
        forecast (its bootstrap band) and the recipe forecast (its band, given)."""
        self._ensure_replicates()
        law_point = np.clip(self.laws_[0](p, t), 0.0, 1.0)
        draws = np.asarray([np.clip(r[0](p, t), 0.0, 1.0) for r in self._replicates],
                           dtype=float)
        law_lo, law_hi = _halfwidths(draws, law_point, level)
        z = float(ndtri((1 + level) / 2))
        # variance of an equal two-component mixture: the mean of the components'
        # variances plus the squared distance of each from the mixture's mean
        gap = z * 0.5 * (law_point - recipe_point)
        lo = np.sqrt(0.5 * (law_lo**2 + recipe_lo**2) + gap**2)
        hi = np.sqrt(0.5 * (law_hi**2 + recipe_hi**2) + gap**2)
        return 0.5 * (law_point + recipe_point), lo, hi

    def _recipe_halfwidths(self, p, t, c, c_eq, here, level):
        """Half-widths of the ``'recipe'`` interval around ``here`` (the finished-model
        forecast at the equivalent compute ``c_eq``), from two independent sources added
        in quadrature: the finished-model forecaster's own interval at ``c_eq`` (what
        ``predict`` reports for a finished model there, backtest widening included when
        it is configured), and the spread of the equivalence itself under the (N, D) law
        refitted on resampled runs and samples."""
        shape = here.shape
        if not self.n_bootstrap:
            return np.zeros(shape), np.zeros(shape)
        lo, hi = self._finished_interval(c_eq, here, level)
        lo_half = np.maximum(here - lo, 0.0)
        hi_half = np.maximum(hi - here, 0.0)
        self._ensure_replicates()
        moved = np.asarray([np.asarray(self.finished_.predict(
            self._equivalent_compute(p, t, c, r[0])), dtype=float).reshape(shape)
            for r in self._replicates], dtype=float)
        law_lo, law_hi = _halfwidths(moved, here, level)
        return np.hypot(lo_half, law_lo), np.hypot(hi_half, law_hi)

    def _finished_interval(self, c_eq, here, level):
        """The finished-model forecaster's interval at ``c_eq`` (shape of ``here``); where
        it is unavailable, that forecaster's bootstrap spread around ``here``."""
        shape = np.shape(here)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FitWarning)  # said once, by interval_error_
            lo, hi = self.finished_.predict_interval(c_eq, level=level)
            lo = np.asarray(lo, dtype=float).reshape(shape)
            hi = np.asarray(hi, dtype=float).reshape(shape)
            lost = ~(np.isfinite(lo) & np.isfinite(hi))
            if lost.any():
                # its bootstrap alone keeps a band (narrower than the one configured, and
                # said so) so that drift is still judged
                draws = np.asarray(self.finished_.bootstrap_predictions(c_eq), dtype=float)
        if lost.any():
            b_lo, b_hi = _halfwidths(draws.reshape((-1,) + shape), here, level)
            lo, hi = np.where(lost, here - b_lo, lo), np.where(lost, here + b_hi, hi)
            self._interval_lost(
                "the finished-model interval is unavailable ("
                + (getattr(self.finished_, "interval_error_", None) or "not finite")
                + "); the band uses its bootstrap spread alone")
        return lo, hi

    def _interval_lost(self, reason: str) -> None:
        if self.interval_error_ != reason:  # once per fit and reason, not per checkpoint
            self.interval_error_ = reason
            warnings.warn(f"{type(self).__name__}: {reason}", FitWarning, stacklevel=4)

    def _ensure_replicates(self) -> None:
        """The (N, D) law's bootstrap, computed once; a failure leaves no replicate."""
        if self._replicates is None:
            try:
                self._replicates = self._bootstrap()
            except Exception as exc:  # the band loses a source; the forecasts go on
                self._replicates = []
                self._interval_lost(f"the trajectory-law bootstrap failed "
                                    f"({type(exc).__name__}: {exc})")

    def _draws(self, p, t, c) -> np.ndarray:
        if self.mode_ == "compute":
            if not self.n_bootstrap:
                return np.zeros((0,))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FitWarning)  # said once, by interval_error_
                draws = self.finished_.bootstrap_predictions(_flops(p, t, c))
            if not len(draws):
                self._interval_lost(
                    "the finished-model bootstrap is unavailable ("
                    + (getattr(self.finished_, "interval_error_", None) or "no replicate")
                    + "); the band is the residual spread alone")
            return draws
        self._ensure_replicates()
        return np.asarray([self._point(p, t, c, laws=r) for r in self._replicates], dtype=float)

    def prepare(self) -> TrajectoryForecaster:
        """Compute the interval's bootstraps (and the finished-model forecaster's
        backtests, in ``'recipe'`` mode) now; they are otherwise computed on first use.

        Failures do not raise: they set ``interval_error_`` (see the module docstring).
        """
        check_is_fitted(self, "mode_")
        if self.mode_ == "compute" and self.n_bootstrap:
            self._draws(None, None, np.asarray(self.finished_.models_[-1].compute))
        if self.mode_ in ("recipe", "blend") and self.n_bootstrap:
            # the backtests too, on the caller's (the monitor's forecaster) thread
            compute = float(self.finished_.models_[-1].compute)
            self._finished_interval(compute, np.asarray(self.finished_.predict(compute)), 0.9)
        if self.mode_ != "compute":
            self._ensure_replicates()
        return self

    def _bootstrap(self) -> list:
        n_boot = int(self.n_bootstrap)
        if n_boot == 0:
            return []
        X, N, D, runs, labels = self._fit_data
        rng = np.random.default_rng(self.random_state)
        run_cols = list(runs.values())
        min_runs = min(3, len(run_cols))
        if self.mode_ == "trajectory":
            ids = [k for k, law in enumerate(self.laws_) if law is not None]
            groups = [np.flatnonzero(labels == k) for k in np.unique(labels)]
        else:
            ids, groups = [0], [np.arange(len(X))]
        requests = []
        for _ in range(n_boot):
            pick = rng.integers(0, len(run_cols), size=len(run_cols))
            while len(set(pick.tolist())) < min_runs:
                pick = rng.integers(0, len(run_cols), size=len(run_cols))
            cols = np.concatenate([run_cols[i] for i in pick])
            rows = np.concatenate([rng.choice(g, size=len(g)) for g in groups])
            Xb = X[np.ix_(rows, cols)]
            if self.mode_ == "trajectory":
                acc, _ = cluster_means(Xb, labels[rows], len(self.laws_))
                requests.append((N[cols], D[cols], acc[ids], [self.laws_[k] for k in ids]))
            else:
                requests.append((N[cols], D[cols], Xb.mean(axis=0), self.laws_))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FitWarning)
            # every replicate's refits in one batch
            refits = fit_trajectory_laws_many(requests)
        reps = []
        for fitted in refits:
            if self.mode_ == "trajectory":
                laws = list(self.laws_)
                for k, law in zip(ids, fitted):
                    laws[k] = law if law.success else self.laws_[k]
            else:
                laws = [fitted[0] if fitted[0].success else self.laws_[0]]
            reps.append(laws)
        return reps

    # ------------------------------------------------------------------ report

    def report(self) -> dict:
        """What the fit decided, as plain Python (JSON-serialisable).

        Returns
        -------
        dict
            :meth:`CODForecaster.report` of the underlying COD fit (clusters, laws,
            verdicts, mapping), plus ``trajectory``: ``mode``, ``reason``,
            ``residual_sd``, ``n_runs``, ``n_points``, ``laws`` (per kept cluster:
            ``cluster``, ``weight`` and the :class:`TrajectoryLaw` parameters) and
            ``interval_error`` (``interval_error_``).
        """
        check_is_fitted(self, "mode_")
        laws = []
        for k, law in enumerate(self.laws_):
            if law is not None:
                laws.append({"cluster": k if self.mode_ == "trajectory" else None,
                             "weight": float(self.weights_[k]), **law.as_dict()})
        out = self.cod_.report()
        out["trajectory"] = {
            "mode": self.mode_,
            "reason": self.reason_,
            "finished": None if self.finished is None else " ".join(repr(self.finished).split()),
            "recipe_line": None if self.recipe_line_ is None else {
                "slope": self.recipe_line_[0], "intercept": self.recipe_line_[1]},
            "residual_sd": self.residual_sd_,
            "n_runs": self.n_runs_,
            "n_points": self.n_points_,
            "laws": laws,
            "interval_error": self.interval_error_,
        }
        return out


def _halfwidths(draws, point, level):
    """Distances from ``point`` to the central ``level`` quantiles of ``draws`` (0 without draws)."""
    draws = np.asarray(draws, dtype=float)
    if not draws.shape[0]:
        return np.zeros_like(point), np.zeros_like(point)
    lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return np.maximum(point - lo, 0.0), np.maximum(hi - point, 0.0)


def _flops(params, tokens, compute):
    """The checkpoint's compute when given, else the 6·N·D estimate."""
    return compute if compute is not None else 6.0 * np.asarray(params) * np.asarray(tokens)
