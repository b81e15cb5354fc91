"""`CODForecaster`: cluster on difficulty, fit per-cluster laws, filter, map, predict.

The pipeline of the paper, end to end, as one scikit-learn-style estimator:

1. difficulty features: per-sample pass rates on the ladder models, ordered by compute
   (optionally averaged with neighbouring checkpoints of the same run);
2. clustering (Improved MeanShift by default), zero vectors set aside as outliers;
3. one COD law per cluster, fitted on the cluster's mean pass rate per ladder model;
4. the extrapolatable filter; the kept clusters form the predictable subset;
5. the subset-to-full mapping, fitted on the ladder models (and anchors);
6. prediction: size-weighted mean of the kept clusters' laws at the target compute,
   passed through the mapping.

Prediction intervals come from a bootstrap that resamples samples within clusters and
ladder models, refits every law (warm-started) and the mapping, and keeps the clustering
and the filter decisions fixed.

Beyond the paper (each option documented on :class:`CODForecaster`; the paper's
configuration is the default of the class):

- ``combine='share'`` replaces step 5 by the exact decomposition of the full-set
  accuracy into the predictable subset and the rest, weighted by their shares; the rest
  (rejected clusters and outliers) gets its own forecast, by default the local trend of
  its accuracy in log-compute (:func:`~cod_monitor.cod.laws.fit_local_trend`);
- ``features='arcsine'`` clusters on the variance-stabilised pass rate;
- ``interval='backtest'`` widens the bootstrap interval by the spread of the errors the
  same configuration makes when it forecasts the ladder's own largest runs from the
  runs below them (:func:`~cod_monitor.cod.intervals.backtest_forecaster`), which the
  bootstrap cannot see.

Named configurations (this package's ``cod``, the paper's ``cod-paper``, ...) live in
:mod:`cod_monitor.cod.configs`; build one with :meth:`CODForecaster.from_config`.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass

import numpy as np

from cod_monitor._estimator import Estimator, check_is_fitted, clone
from cod_monitor._io import to_jsonable
from cod_monitor._validation import check_choice, check_real, invalid
from cod_monitor._docstrings import fill_doc
from cod_monitor.cod.clustering import ImprovedMeanShift
from cod_monitor.cod.configs import FALLBACKS, configuration
from cod_monitor.cod._memo import memoized
from cod_monitor.cod.filtering import ClusterVerdict, ExtrapolatableFilter, Verdict
from cod_monitor.cod.intervals import FITTED_LADDER_ATTRIBUTES, INTERVALS, ForecastMixin
from cod_monitor.cod.laws import LAW_FORMS, LawFit, fit_laws, fit_laws_warm, fit_local_trend
from cod_monitor.cod.mapping import SubsetToFullMapping
from cod_monitor.cod.transport import transport_ladder
from cod_monitor.exceptions import FitWarning, NoExtrapolatableClusterError
from cod_monitor.ladder import load_ladder

__all__ = [
    "CODForecaster",
    "cluster_means",
    "FALLBACKS",
    "COMBINES",
    "FEATURES",
    "INTERVALS",
    "REST_MODELS",
]

#: How the predictable subset's forecast becomes the full-set forecast.
COMBINES = ("mapping", "share")
#: How the samples outside the predictable subset are forecast (``combine='share'``).
REST_MODELS = ("trend", "law")
#: Difficulty features the clustering may see.
FEATURES = ("pass_rate", "log", "arcsine")


@dataclass(frozen=True)
class _Replicate:
    """The curve of the fit (``_state``) or of one bootstrap refit: cluster laws and
    mapping (or kept set, share and rest)."""

    fits: list
    mapping: SubsetToFullMapping | None
    kept: np.ndarray | None = None
    share: float | None = None
    rest: object = None


@fill_doc(fitted_ladder_attributes=FITTED_LADDER_ATTRIBUTES)
class CODForecaster(ForecastMixin, Estimator):
    r"""Forecast full-set accuracy at a target compute with Clustering-On-Difficulty.

    Parameters
    ----------
    clustering : 'improved_meanshift' or clusterer, default 'improved_meanshift'
        COD's :class:`~cod_monitor.cod.clustering.ImprovedMeanShift`, or an unfitted
        clusterer with scikit-learn's ``get_params``/``set_params``, ``fit(X)`` and
        ``labels_`` (label ``-1`` for outliers), cloned before each fit, e.g. the
        ablations of :mod:`cod_monitor.methods.clustering`.
    clustering_params : dict, optional
        Extra parameters for the clusterer (e.g. ``{"min_cluster_size": 10,
        "quantile": 0.1}``, the paper's K and Q). The clusterer's ``random_state``, if
        it has one, is always this estimator's.
    features : {'pass_rate', 'log', 'arcsine'}, default 'pass_rate'
        What the clustering sees. ``'pass_rate'`` is the paper's difficulty vector.
        ``'arcsine'`` clusters on :math:`\tfrac{2}{\pi}\arcsin\sqrt{p}`, the
        variance-stabilising transform of a binomial pass rate: the sampling noise of a
        pass rate is the same at every difficulty on this scale, so one MeanShift
        bandwidth separates hard samples (squeezed together near 0 on the linear scale)
        as finely as easy ones (which ``'log'`` squeezes together near 1).
        ``'log'`` clusters on :math:`\log(p/\epsilon)/\log(1/\epsilon)` (clipped to
        [0, 1], zero stays zero) with :math:`\epsilon` = ``log_floor``: it separates
        samples by their answer loss :math:`-\log p`, which is what the law's Taylor
        argument asks to be homogeneous inside a cluster, and spreads out low pass
        rates that the linear scale squeezes into one clump. Laws are always fitted on
        pass rates.
    log_floor : float, default 1e-4
        :math:`\epsilon` of ``features='log'``; pass rates below it count as zero.
    law : {'full', 'no_g', 'no_c', 'plain'}, default 'full'
        Per-cluster law form; see :data:`cod_monitor.cod.laws.LAW_FORMS`.
    a_min, b_min, c_min, c_max : float, default 1.0, 0.1, 0.0, 1.0
        The extrapolatable filter (keep ``a > a_min``, ``b > b_min``,
        ``c_min <= c < c_max``), in ``compute_unit``.
    mapping : {'spline', 'quartic', 'pchip', 'linear_tail', 'identity'}, default 'spline'
        Subset-to-full mapping of ``combine='mapping'``; ``'identity'`` is the paper's
        "without mapping" ablation (the subset forecast is reported as the full-set
        forecast); ``'linear_tail'`` is not pinned at (1, 1) and follows the slope of
        the top ladder points beyond them (see
        :class:`~cod_monitor.cod.mapping.SubsetToFullMapping`).
    combine : {'mapping', 'share'}, default 'mapping'
        ``'mapping'`` (the paper): the full-set forecast is ``mapping(subset
        forecast)``. ``'share'``: the full-set accuracy is exactly
        :math:`s\,y_{sub} + (1-s)\,y_{rest}` with :math:`s` the subset's share of the
        samples, so the forecast is :math:`s\,\hat y_{sub}(C) + (1-s)\,\hat y_{rest}(C)`
        with the rest (rejected clusters and outliers) forecast by ``rest``. Unlike the
        mapping through (1, 1), it does not assume that the rest is solved when the
        subset is, and it needs no anchor.
    rest : {'trend', 'law'}, default 'trend'
        Forecast of the rest under ``combine='share'`` (and under ``fallback='rest'``).
        ``'trend'``: its local linear trend in log-compute over the top
        ``trend_window`` of the ladder points (:func:`~cod_monitor.cod.laws.fit_local_trend`);
        it follows a falling (inverse-scaling) or flat rest, which no COD law can.
        ``'law'``: one COD law fitted to the rest's mean accuracy (end-to-end on the
        rest).
    trend_window : float in (0, 1], default 0.5
        Fraction of the ladder points, by compute, that ``rest='trend'`` is fitted on
        (at least 3).
    rmse_target : float, default 0.005
        The paper's T for the smoothing spline.
    anchors : sequence of str, optional
        Models whose (subset, full) accuracies are extra mapping points. ``None``
        uses every model whose role is ``anchor``; ``()`` uses none.
    compute_unit : float or 'ladder', optional
        FLOPs per compute unit before fitting; ``None`` takes the ladder's
        (default 1e18, the unit the filter thresholds were set in). ``'ladder'`` puts
        the smallest fitted model at compute 1, which makes ``a > a_min`` read as
        "the cluster's loss term exceeds ``a_min`` on the smallest ladder model", the
        same test whatever the FLOPs scale of the ladder.
    checkpoints : {'final', 'all'}, default 'final'
        ``'final'`` fits the last checkpoint of every ladder run (the paper);
        ``'all'`` also uses intermediate checkpoints as ladder points.
    smooth_checkpoints : bool, default False
        Average each fitted model's pass rates with its two neighbouring checkpoints
        of the same run (the paper's optional smoothing). Needs ``step`` in the ladder.
    tokens_per_param : float, optional
        The target's training tokens per parameter. When given and the ladder's fitted
        points vary tokens per parameter (over-trained runs, intermediate checkpoints),
        every ladder model is moved to the compute of the equally good model trained at
        this ratio before anything is fitted (:mod:`cod_monitor.cod.transport`);
        :meth:`predict` then takes the compute of a model trained at this ratio.
        ``None`` (the paper): compute alone.
    fallback : {'error', 'all_clusters', 'end_to_end', 'rest'}, default 'error'
        When no cluster is extrapolatable: raise
        :class:`~cod_monitor.exceptions.NoExtrapolatableClusterError`, keep every
        cluster whose law fitted, fit a single law to the full-set accuracy, or forecast
        every sample with the ``rest`` model (the limit of ``combine='share'`` with an
        empty subset).
    n_bootstrap : int, default 200
        Bootstrap replicates for :meth:`predict_interval`.
    interval : {'bootstrap', 'backtest'}, default 'bootstrap'
        ``'bootstrap'``: quantiles of the bootstrap forecasts. ``'backtest'``: the
        bootstrap half-widths combined in quadrature with
        :math:`t_{\nu}\,\sigma(d)`, the spread of the backtest errors (see
        :func:`~cod_monitor.cod.intervals.backtest_forecaster`; :math:`\nu` backtests,
        Student's quantile) scaled
        to the target's extrapolation distance :math:`d` (log of the compute ratio to
        the largest ladder point): :math:`\sigma(d)^2 = \mathrm{mean}_j\, r_j^2
        ((d + s)/(d_j + s))^2`, with :math:`r_j` and :math:`d_j` the error and the
        distance of backtest :math:`j` and :math:`s` the median log-compute step of the
        ladder: the error grows linearly with the distance, from the level a forecast
        one ladder step away already has. This adds the misspecification error (wrong
        law, wrong clusters, a ladder model off the trend) that resampling the data
        cannot show.
    n_backtest : int, default 3
        Largest runs held out, one at a time, by ``interval='backtest'``.
    random_state : int, default 0
        Seed of the bootstrap and of the clusterer.

    Attributes
    ----------
    {fitted_ladder_attributes}
    sample_ids_ : ndarray of shape (n_samples,)
    labels_ : ndarray of shape (n_samples,)
        Cluster of every sample; -1 for outliers (including zero vectors).
    cluster_sizes_ : ndarray of shape (n_clusters,)
    cluster_accuracy_ : ndarray of shape (n_clusters, n_models)
        Mean pass rate of every cluster on every ladder point.
    cluster_fits_ : list of LawFit
    verdicts_ : list of ClusterVerdict
    kept_ : ndarray of bool, shape (n_clusters,)
    subset_share_ : float
        Fraction of all samples in the predictable subset.
    full_accuracy_ : ndarray of shape (n_models,)
        Full-set accuracy of every ladder point.
    subset_accuracy_ : ndarray of shape (n_models,)
    mapping_ : SubsetToFullMapping
    fallback_used_ : str or None
        The fallback that produced the forecast, if any.
    combine_ : str
        The combination used: ``'mapping'``, or ``'share'`` (also when no cluster is
        kept and ``fallback='rest'``).
    rest_accuracy_ : ndarray of shape (n_models,) or None
        Mean accuracy of the samples outside the subset, when a rest model is used.
    rest_model_ : LocalTrend or LawFit or None
        The rest's forecast curve (compute in ``compute_unit_``).
    backtest_ : list of dict
        Only after :meth:`predict_interval` with ``interval='backtest'`` (or
        :meth:`backtest`): the backtests of
        :func:`~cod_monitor.cod.intervals.backtest_forecaster`.
    transport_ : RecipeTransport or None
        What the recipe transport did (``None`` without ``tokens_per_param``).

    Notes
    -----
    The law of cluster :math:`k` is :math:`y_k(C) = g_k + (1-g_k)\exp(-a_k C^{-b_k} - c_k)`
    and the forecast is :math:`f(\sum_k n_k y_k(C) / \sum_k n_k)` over kept clusters,
    with :math:`f` the subset-to-full mapping.

    References
    ----------
    Xu, Chen, Li, Shen, Li. "Unveiling Downstream Performance Scaling of LLMs: A
    Clustering-Based Perspective." ICLR 2026. arXiv:2502.17262.

    Examples
    --------
    >>> from cod_monitor.synthetic import synthetic_ladder
    >>> syn = synthetic_ladder(n_samples=1000, seed=0)
    >>> cod = CODForecaster(n_bootstrap=20).fit(syn.ladder, "synthetic")
    >>> abs(cod.predict(syn.target.compute) - syn.expected_accuracy[syn.target.name]) < 0.05
    True
    """

    def __init__(
        self,
        *,
        clustering="improved_meanshift",
        clustering_params: dict | None = None,
        features: str = "pass_rate",
        log_floor: float = 1e-4,
        law: str = "full",
        a_min: float = 1.0,
        b_min: float = 0.1,
        c_min: float = 0.0,
        c_max: float = 1.0,
        mapping: str = "spline",
        rmse_target: float = 0.005,
        anchors=None,
        compute_unit: float | None = None,
        checkpoints: str = "final",
        smooth_checkpoints: bool = False,
        tokens_per_param: float | None = None,
        fallback: str = "error",
        n_bootstrap: int = 200,
        random_state: int = 0,
        combine: str = "mapping",
        rest: str = "trend",
        trend_window: float = 0.5,
        interval: str = "bootstrap",
        n_backtest: int = 3,
    ):
        self.clustering = clustering
        self.clustering_params = clustering_params
        self.features = features
        self.log_floor = log_floor
        self.law = law
        self.a_min = a_min
        self.b_min = b_min
        self.c_min = c_min
        self.c_max = c_max
        self.mapping = mapping
        self.rmse_target = rmse_target
        self.anchors = anchors
        self.compute_unit = compute_unit
        self.checkpoints = checkpoints
        self.smooth_checkpoints = smooth_checkpoints
        self.tokens_per_param = tokens_per_param
        self.fallback = fallback
        self.n_bootstrap = n_bootstrap
        self.random_state = random_state
        self.combine = combine
        self.rest = rest
        self.trend_window = trend_window
        self.interval = interval
        self.n_backtest = n_backtest

    # ------------------------------------------------------------------ fitting

    @classmethod
    def from_config(cls, name: str, **params) -> CODForecaster:
        """The forecaster of the named configuration, with ``params`` changed.

        Parameters
        ----------
        name : str
            A configuration of :data:`cod_monitor.cod.configs.CONFIGURATIONS`
            (``'cod'``, ``'cod-paper'``, ...).
        **params
            Parameters of :class:`CODForecaster`; they win over the configuration's.

        Returns
        -------
        CODForecaster
            Unfitted.

        Raises
        ------
        ParameterError
            An unknown configuration name.

        Examples
        --------
        >>> CODForecaster.from_config("cod-paper-all-clusters", n_bootstrap=20)
        CODForecaster(fallback='all_clusters', n_bootstrap=20)
        """
        return cls(**{**configuration(name), **params})

    def _validate_params(self):
        owner = type(self).__name__
        if isinstance(self.clustering, str):
            check_choice(owner, "clustering", self.clustering, ("improved_meanshift",))
        elif not all(hasattr(self.clustering, a) for a in ("fit", "get_params", "set_params")):
            raise invalid(
                owner, "clustering", "'improved_meanshift' or an unfitted clusterer estimator",
                self.clustering, "Pass e.g. cod_monitor.methods.clustering.DifficultyKMeans().",
            )
        check_choice(owner, "law", self.law, LAW_FORMS)
        check_choice(owner, "features", self.features, FEATURES)
        check_choice(owner, "combine", self.combine, COMBINES)
        check_choice(owner, "rest", self.rest, REST_MODELS)
        check_real(owner, "trend_window", self.trend_window, 0.0, 1.0, closed="right")
        check_real(owner, "log_floor", self.log_floor, 0.0, 1.0)
        check_choice(owner, "checkpoints", self.checkpoints, ("final", "all"))
        check_choice(owner, "fallback", self.fallback, FALLBACKS)
        if self.compute_unit not in (None, "ladder"):
            try:
                check_real(owner, "compute_unit", self.compute_unit, 0.0)
            except ValueError:
                raise invalid(owner, "compute_unit", "a float in the range (0, inf), 'ladder' "
                              "or None", self.compute_unit) from None
        self._check_interval_params()

    def _filter(self) -> ExtrapolatableFilter:
        return ExtrapolatableFilter(
            a_min=self.a_min, b_min=self.b_min, c_min=self.c_min, c_max=self.c_max
        )

    def fit(self, ladder, benchmark: str):
        """Cluster, fit, filter and map on the ladder's evaluations of ``benchmark``.

        Parameters
        ----------
        ladder : Ladder or path
            The ladder (models and per-sample pass rates). Models with role
            ``target`` are never used.
        benchmark : str
            Benchmark to forecast.

        Returns
        -------
        self

        Raises
        ------
        ParameterError
            A parameter is invalid.
        LadderValidationError
            Unknown benchmark, an anchor that is a target, too few ladder points.
        NoExtrapolatableClusterError
            No cluster passed the filter and ``fallback='error'``.
        """
        self._validate_params()
        ladder = load_ladder(ladder)
        cur = self._curves(ladder, benchmark)
        ladder = cur.ladder  # moved to the target's recipe when tokens_per_param is set
        transport, fit_matrix, anchor_matrix = cur.transport, cur.fit_matrix, cur.anchor_matrix
        unit, X, compute, labels = cur.unit, cur.X, cur.compute, cur.labels
        acc, sizes = cur.acc, cur.sizes

        fallback_used = None
        fits = fit_laws(compute, acc, form=self.law) if len(acc) else []
        flt = self._filter()
        verdicts = [flt.judge(f, a) for f, a in zip(fits, acc)]
        kept = np.array([v.kept for v in verdicts], dtype=bool)

        if not kept.any():
            reasons = Counter(v.verdict.value for v in verdicts)
            if self.fallback == "error":
                raise NoExtrapolatableClusterError(benchmark, reasons)
            fallback_used = self.fallback
            if self.fallback == "all_clusters":
                kept = np.array([v.verdict is not Verdict.FIT_FAILED for v in verdicts])
            if self.fallback == "end_to_end" or (self.fallback != "rest" and not kept.any()):
                # one pseudo-cluster holding every sample, its law fitted to full accuracy
                fallback_used = "end_to_end"
                labels = np.zeros(len(X), dtype=int)
                acc, sizes = cluster_means(X, labels, 1)
                fits = fit_laws(compute, acc, form=self.law)
                verdicts = [ClusterVerdict(Verdict.KEPT, "end-to-end fallback")]
                kept = np.array([True])

        in_subset = np.isin(labels, np.flatnonzero(kept))
        full_acc = X.mean(axis=0)
        subset_acc = X[in_subset].mean(axis=0) if in_subset.any() else np.zeros_like(full_acc)
        # the share combination also covers an empty subset (fallback='rest')
        combine = "share" if self.combine == "share" or not in_subset.any() else "mapping"
        rest_acc = rest_model = None
        if combine == "share":
            mapping = SubsetToFullMapping(method="identity").fit(subset_acc, full_acc)
            if not in_subset.all():
                rest_acc = X[~in_subset].mean(axis=0)
                rest_model = self._fit_rest(compute, rest_acc)
        else:
            map_x, map_y = subset_acc, full_acc
            if anchor_matrix is not None:
                A = anchor_matrix.pass_rates
                map_x = np.r_[map_x, A[in_subset].mean(axis=0)]
                map_y = np.r_[map_y, A.mean(axis=0)]
            map_method = "identity" if fallback_used == "end_to_end" else self.mapping
            mapping = SubsetToFullMapping(method=map_method, rmse_target=self.rmse_target)
            mapping.fit(map_x, map_y)

        self.benchmark_ = benchmark
        self.compute_unit_ = unit
        self.models_ = fit_matrix.models
        self.anchor_models_ = anchor_matrix.models if anchor_matrix is not None else ()
        self.compute_ = compute
        self.sample_ids_ = fit_matrix.sample_ids
        self.labels_ = labels
        self.cluster_sizes_ = sizes
        self.cluster_accuracy_ = acc
        self.cluster_fits_ = fits
        self.verdicts_ = verdicts
        self.kept_ = kept
        self.subset_share_ = float(in_subset.mean())
        self.full_accuracy_ = full_acc
        self.subset_accuracy_ = subset_acc
        self.mapping_ = mapping
        self.fallback_used_ = fallback_used
        self.combine_ = combine
        self.rest_accuracy_ = rest_acc
        self.rest_model_ = rest_model
        self.transport_ = transport
        self._state = _Replicate(fits, mapping, kept, self.subset_share_, rest_model)
        self._reset_lazy_intervals(ladder)
        self._X = X
        self._anchor_X = None if anchor_matrix is None else anchor_matrix.pass_rates
        return self

    def _curves(self, ladder, benchmark: str) -> _Curves:
        """What :meth:`fit` computes before the cluster laws: the fit points (after the
        recipe transport), the compute unit, the clusters and their mean curves."""
        transport = None
        if self.tokens_per_param is not None:
            ladder, transport = transport_ladder(
                ladder, benchmark, self.tokens_per_param, checkpoints=self.checkpoints,
                smooth_checkpoints=self.smooth_checkpoints)
        fit_matrix, anchor_matrix = self._fit_points(ladder, benchmark)
        if self.compute_unit == "ladder":
            unit = float(fit_matrix.compute.min())
        else:
            unit = float(self.compute_unit or ladder.compute_unit)
        X = fit_matrix.pass_rates
        labels = self._cluster(X)
        n_clusters = int(labels.max()) + 1 if labels.size and labels.max() >= 0 else 0
        acc, sizes = cluster_means(X, labels, n_clusters)
        return _Curves(ladder, transport, fit_matrix, anchor_matrix, unit, X,
                       fit_matrix.compute / unit, labels, acc, sizes)

    def _cluster(self, X):
        params = dict(self.clustering_params or {})
        if isinstance(self.clustering, str):
            clusterer = ImprovedMeanShift(**params)
        else:
            clusterer = clone(self.clustering).set_params(**params)
        if "random_state" in clusterer.get_params():
            clusterer.set_params(random_state=self.random_state)
        if self.features == "log":
            eps = self.log_floor
            X = np.clip(np.log(np.maximum(X, eps) / eps) / np.log(1 / eps), 0.0, 1.0)
        elif self.features == "arcsine":
            X = (2.0 / np.pi) * np.arcsin(np.sqrt(np.clip(X, 0.0, 1.0)))
        if not isinstance(self.clustering, str):  # a user's clusterer: never shared
            return np.asarray(clusterer.fit(X).labels_, dtype=int)
        params = repr(sorted(clusterer.get_params().items()))
        labels = memoized("clustering", (params, np.ascontiguousarray(X, float)),
                          lambda: np.asarray(clusterer.fit(X).labels_, dtype=int))
        return labels.copy()

    def _fit_rest(self, compute, rest_acc, init=None):
        """Forecast curve of the samples outside the predictable subset."""
        if self.rest == "law":
            return fit_laws(compute, rest_acc[None, :], form=self.law, init=init)[0]
        return fit_local_trend(compute, rest_acc, window=self.trend_window)

    # --------------------------------------------------------------- prediction

    def predict_subset(self, compute):
        """Forecast accuracy on the predictable subset (before the mapping).

        Parameters
        ----------
        compute : float or array_like
            As :meth:`predict`.

        Returns
        -------
        float or ndarray
        """
        check_is_fitted(self, "mapping_")
        c = self._to_units(compute)
        return _subset_forecast(self.cluster_fits_, self.cluster_sizes_, self.kept_, c)

    def full_from_subset(self, subset_accuracy, compute):
        """Full-set accuracy from a subset accuracy at ``compute`` FLOPs.

        The last step of :meth:`predict`, for callers that forecast the subset
        themselves: ``mapping_(subset_accuracy)`` under ``combine_='mapping'``, and
        ``s * subset_accuracy + (1 - s) * rest(compute)`` under ``combine_='share'``.

        Parameters
        ----------
        subset_accuracy : float or array_like
            Accuracy on the predictable subset.
        compute : float or array_like
            Training compute in FLOPs, broadcastable against ``subset_accuracy``.

        Returns
        -------
        ndarray
        """
        check_is_fitted(self, "mapping_")
        if self.combine_ == "mapping":
            return self.mapping_.predict(subset_accuracy)
        return _share_forecast(
            subset_accuracy, self._to_units(compute), self.subset_share_, self.rest_model_
        )

    def _bootstrap(self) -> list[_Replicate]:
        """The bootstrap replicates of :meth:`bootstrap_predictions`."""
        return self._bootstrap_mapping() if self.combine_ == "mapping" else self._bootstrap_share()

    def _label_groups(self) -> list[np.ndarray]:
        """Rows of every cluster (outliers as one group): the bootstrap resamples within."""
        return [np.flatnonzero(self.labels_ == k) for k in np.unique(self.labels_)]

    def _replicate_predict(self, rep: _Replicate, c):
        """The full-set forecast of one replicate (or of the fit, ``_state``) at ``c``
        compute units."""
        if self.combine_ == "mapping":
            return rep.mapping.predict(
                _subset_forecast(rep.fits, self.cluster_sizes_, self.kept_, c)
            )
        return _share_forecast(
            _subset_forecast(rep.fits, self.cluster_sizes_, rep.kept, c), c, rep.share, rep.rest
        )

    def _warm_refits(self, draws, curves):
        """Every replicate's refits of the clusters ``curves``, warm-started from the
        fit, in one batch: ``draws`` is a list of (rows, cols, cluster means)."""
        if not curves or not draws:
            return [[] for _ in draws]
        return fit_laws_warm(
            np.array([self.compute_[cols] for _, cols, _ in draws]),
            np.array([acc[curves] for _, _, acc in draws]),
            [self.cluster_fits_[k] for k in curves], form=self.law)

    def _draws(self):
        """The bootstrap draws (rows, cols) with each draw's cluster means."""
        X, labels, n_clusters = self._X, self.labels_, len(self.cluster_fits_)
        return [(rows, cols, cluster_means(X[np.ix_(rows, cols)], labels[rows], n_clusters)[0])
                for rows, cols in self._resamples(self._label_groups())]

    def _bootstrap_share(self) -> list[_Replicate]:
        """Bootstrap of ``combine='share'``: the filter and the rest are refitted too.

        Samples are resampled within clusters (outliers as one group) and ladder points
        with replacement; every cluster law is refitted (warm-started) and judged again,
        so a cluster near a threshold moves between the subset and the rest from one
        replicate to the next; the rest model is refitted on the replicate's rest.
        """
        X, labels = self._X, self.labels_
        fitted = [k for k, f in enumerate(self.cluster_fits_) if f.success]
        rejudge = self.fallback_used_ in (None, "rest")
        flt = self._filter()
        total = len(labels)
        draws = self._draws()
        replicates = []
        for (rows, cols, _), refit in zip(draws, self._warm_refits(draws, fitted)):
            fits = list(self.cluster_fits_)
            for k, f in zip(fitted, refit):
                fits[k] = f
            # only the verdict's kept/rejected matters here, not its reason
            kept = (np.array([flt.keeps(f) for f in fits], dtype=bool) if rejudge
                    else self.kept_.copy())
            lb = labels[rows]
            in_subset = np.isin(lb, np.flatnonzero(kept))
            share = float(self.cluster_sizes_[kept].sum() / total) if kept.any() else 0.0
            rest = None
            if not in_subset.all():
                init = [self.rest_model_] if isinstance(self.rest_model_, LawFit) else None
                Xb = X[np.ix_(rows, cols)]
                rest = self._fit_rest(self.compute_[cols], Xb[~in_subset].mean(axis=0),
                                      init=init)
            replicates.append(_Replicate(fits, None, kept, share, rest))
        return replicates

    def _bootstrap_mapping(self) -> list[_Replicate]:
        """Bootstrap of ``combine='mapping'``: the kept laws and the mapping are refitted."""
        X, labels = self._X, self.labels_
        kept_ids = np.flatnonzero(self.kept_)
        draws = self._draws()
        replicates = []
        for (rows, cols, _), refit in zip(draws, self._warm_refits(draws, list(kept_ids))):
            Xb = X[np.ix_(rows, cols)]
            fits = list(self.cluster_fits_)
            for k, f in zip(kept_ids, refit):
                fits[k] = f
            in_subset = np.isin(labels[rows], kept_ids)
            map_x, map_y = Xb[in_subset].mean(axis=0), Xb.mean(axis=0)
            if self._anchor_X is not None:
                A = self._anchor_X[rows]
                map_x = np.r_[map_x, A[in_subset].mean(axis=0)]
                map_y = np.r_[map_y, A.mean(axis=0)]
            mapping = SubsetToFullMapping(
                method=self.mapping_.method_, rmse_target=self.rmse_target,
            )
            # a replicate's mapping may fall back to pchip; one warning per replicate is noise
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FitWarning)
                mapping.fit(map_x, map_y)
            replicates.append(_Replicate(fits, mapping))
        return replicates

    # ------------------------------------------------------------------- report

    def report(self) -> dict:
        """Everything the fit decided, as plain Python (JSON-serialisable).

        Returns
        -------
        dict
            Keys: ``benchmark``, ``compute_unit``, ``models`` (name, compute,
            full and subset accuracy), ``anchors``, ``n_samples``, ``n_outliers``,
            ``n_clusters``, ``n_kept``, ``subset_share``, ``fallback``,
            ``interval_error`` (why the interval is unavailable, or ``None``), ``clusters``
            (size, mean accuracy per model, law, verdict, detail) and ``mapping``
            (method, rmse, smoothing, monotone, points).
        """
        check_is_fitted(self, "mapping_")
        clusters = []
        for k, (fit, v) in enumerate(zip(self.cluster_fits_, self.verdicts_)):
            clusters.append(
                {
                    "cluster": k,
                    "size": int(self.cluster_sizes_[k]),
                    "accuracy": [round(float(a), 6) for a in self.cluster_accuracy_[k]],
                    "law": to_jsonable(fit.as_dict()),
                    "verdict": v.verdict.value,
                    "detail": v.detail,
                }
            )
        return {
            "benchmark": self.benchmark_,
            "compute_unit": self.compute_unit_,
            "models": [
                {
                    "name": m.name,
                    "compute": m.compute,
                    "full_accuracy": float(f),
                    "subset_accuracy": float(s),
                }
                for m, f, s in zip(self.models_, self.full_accuracy_, self.subset_accuracy_)
            ],
            "anchors": [m.name for m in self.anchor_models_],
            "n_samples": int(len(self.labels_)),
            "n_outliers": int(np.sum(self.labels_ < 0)),
            "n_clusters": len(self.cluster_fits_),
            "n_kept": int(self.kept_.sum()),
            "subset_share": self.subset_share_,
            "fallback": self.fallback_used_,
            "combine": self.combine_,
            "rest": None if self.rest_model_ is None else {
                "model": self.rest if self.rest_accuracy_ is not None else None,
                "accuracy": [round(float(a), 6) for a in self.rest_accuracy_],
                "curve": to_jsonable(self.rest_model_.as_dict()),
            },
            "backtest": self._backtest,
            "interval_error": self.interval_error_,
            "transport": None if self.transport_ is None else self.transport_.as_dict(),
            "clusters": clusters,
            "mapping": {
                "method": self.mapping_.method_,
                "rmse": self.mapping_.rmse_,
                "smoothing": self.mapping_.smoothing_,
                "monotone": self.mapping_.monotone_,
                "points": self.mapping_.points_.round(6).tolist(),
            },
        }


@dataclass(frozen=True)
class _Curves:
    """The data of one fit up to its cluster laws (see :meth:`CODForecaster._curves`)."""

    ladder: object
    transport: object
    fit_matrix: object
    anchor_matrix: object
    unit: float
    X: np.ndarray
    compute: np.ndarray
    labels: np.ndarray
    acc: np.ndarray
    sizes: np.ndarray


def cluster_means(X, labels, n_clusters):
    """Mean pass rate of every cluster on every model, and cluster sizes.

    Shared by the forecaster and the trajectory laws of the monitor. Outliers
    (label -1) are ignored; an empty cluster gets zeros.

    Returns
    -------
    means : ndarray of shape (n_clusters, n_models)
    sizes : ndarray of shape (n_clusters,)
    """
    member = labels >= 0
    lab = labels[member]
    sizes = np.bincount(lab, minlength=n_clusters)[:n_clusters]
    # one weighted bincount over (cluster, model) bins: the same sums, in the same row
    # order, as np.add.at, without its per-element overhead
    n_models = X.shape[1]
    bins = (lab[:, None] * n_models + np.arange(n_models)).ravel()
    sums = np.bincount(bins, weights=X[member].ravel(), minlength=n_clusters * n_models)
    sums = sums[:n_clusters * n_models].reshape(n_clusters, n_models)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / sizes[:, None]
    return np.nan_to_num(means), sizes


def _share_forecast(subset, compute_units, share, rest):
    """``share * subset + (1 - share) * rest(compute)``, clipped to [0, 1]."""
    subset = np.asarray(subset, dtype=float)
    if rest is None or share >= 1:
        return np.clip(subset, 0.0, 1.0)
    return np.clip(share * subset + (1 - share) * rest(compute_units), 0.0, 1.0)


def _subset_forecast(fits, sizes, kept, compute_units):
    """Size-weighted mean of the kept clusters' laws at ``compute_units``."""
    ids = np.flatnonzero(kept)
    w = sizes[ids] / sizes[ids].sum()
    c = np.asarray(compute_units, dtype=float)
    total = np.zeros_like(c)
    for wk, k in zip(w, ids):
        total = total + wk * fits[k](c)
    return total
