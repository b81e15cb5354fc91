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
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from cod_monitor.clustering import make_clusterer
from cod_monitor.exceptions import FitWarning, NoExtrapolatableClusterError
from cod_monitor.filtering import ClusterVerdict, ExtrapolatableFilter, Verdict
from cod_monitor.ladder import Ladder
from cod_monitor.laws import LAW_FORMS, LawFit, fit_laws
from cod_monitor.mapping import SubsetToFullMapping
from cod_monitor.selection import select_fit_points

__all__ = ["CODForecaster", "load_ladder", "FALLBACKS"]

#: What to do when no cluster passes the filter.
FALLBACKS = ("error", "all_clusters", "end_to_end")


def load_ladder(ladder) -> Ladder:
    """Accept a :class:`Ladder` or a path to a ladder directory."""
    if isinstance(ladder, Ladder):
        return ladder
    if isinstance(ladder, (str, os.PathLike)):
        return Ladder.load(ladder)
    raise TypeError(f"`ladder` should be a Ladder or a directory path, got {type(ladder).__name__}")


@dataclass(frozen=True)
class _Replicate:
    """One bootstrap refit: cluster laws and mapping."""

    fits: list
    mapping: SubsetToFullMapping


class CODForecaster(BaseEstimator):
    r"""Forecast full-set accuracy at a target compute with Clustering-On-Difficulty.

    Parameters
    ----------
    clustering : str, default 'improved_meanshift'
        Clusterer name for :func:`cod_monitor.clustering.make_clusterer`
        (``'improved_meanshift'``, ``'meanshift'``, ``'kmeans'``, ``'improved_kmeans'``,
        ``'dbscan'``).
    clustering_params : dict, optional
        Extra parameters for the clusterer (e.g. ``{"min_cluster_size": 10,
        "quantile": 0.1}``, the paper's K and Q).
    features : {'pass_rate', 'log'}, default 'pass_rate'
        What the clustering sees. ``'pass_rate'`` is the paper's difficulty vector.
        ``'log'`` clusters on :math:`\log(p/\epsilon)/\log(1/\epsilon)` (clipped to
        [0, 1], zero stays zero) with :math:`\epsilon` = ``log_floor``: it separates
        samples by their answer loss :math:`-\log p`, which is what the law's Taylor
        argument asks to be homogeneous inside a cluster, and spreads out low pass
        rates that the linear scale squeezes into one clump. Laws are always fitted on
        pass rates.
    log_floor : float, default 1e-4
        :math:`\epsilon` of ``features='log'``; pass rates below it count as zero.
    law : {'full', 'no_g', 'no_c', 'plain'}, default 'full'
        Per-cluster law form; see :data:`cod_monitor.laws.LAW_FORMS`.
    a_min, b_min, c_min, c_max : float, default 1.0, 0.1, 0.0, 1.0
        The extrapolatable filter (keep ``a > a_min``, ``b > b_min``,
        ``c_min <= c < c_max``), in ``compute_unit``.
    mapping : {'spline', 'quartic', 'pchip', 'identity'}, default 'spline'
        Subset-to-full mapping; ``'identity'`` is the paper's "without mapping"
        ablation (the subset forecast is reported as the full-set forecast).
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
    fallback : {'error', 'all_clusters', 'end_to_end'}, default 'error'
        When no cluster is extrapolatable: raise
        :class:`~cod_monitor.exceptions.NoExtrapolatableClusterError`, keep every
        cluster whose law fitted, or fit a single law to the full-set accuracy.
    n_bootstrap : int, default 200
        Bootstrap replicates for :meth:`predict_interval`.
    random_state : int, default 0
        Seed of the bootstrap and of the clusterer.

    Attributes
    ----------
    benchmark_ : str
    compute_unit_ : float
    models_ : tuple of ModelInfo
        The ladder points fitted, by compute.
    compute_ : ndarray of shape (n_models,)
        Their compute in ``compute_unit_``.
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
        clustering: str = "improved_meanshift",
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
        fallback: str = "error",
        n_bootstrap: int = 200,
        random_state: int = 0,
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
        self.fallback = fallback
        self.n_bootstrap = n_bootstrap
        self.random_state = random_state

    # ------------------------------------------------------------------ fitting

    def _validate_params(self):
        def choice(name, valid):
            value = getattr(self, name)
            if value not in valid:
                raise ValueError(
                    f"The {name!r} parameter of CODForecaster must be one of "
                    f"{list(valid)}. Got {value!r} instead."
                )

        choice("law", LAW_FORMS)
        choice("features", ("pass_rate", "log"))
        if not 0 < self.log_floor < 1:
            raise ValueError(
                "The 'log_floor' parameter of CODForecaster must be a float in (0, 1). "
                f"Got {self.log_floor!r} instead."
            )
        choice("checkpoints", ("final", "all"))
        choice("fallback", FALLBACKS)
        if self.compute_unit not in (None, "ladder") and not (
            isinstance(self.compute_unit, (int, float))
            and np.isfinite(self.compute_unit)
            and self.compute_unit > 0
        ):
            raise ValueError(
                "The 'compute_unit' parameter of CODForecaster must be a float in "
                f"(0, inf), 'ladder' or None. Got {self.compute_unit!r} instead."
            )
        if int(self.n_bootstrap) < 0:
            raise ValueError(
                "The 'n_bootstrap' parameter of CODForecaster must be an int in "
                f"[0, inf). Got {self.n_bootstrap!r} instead."
            )

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
        LadderValidationError
            Unknown benchmark, an anchor that is a target, too few ladder points.
        NoExtrapolatableClusterError
            No cluster passed the filter and ``fallback='error'``.
        """
        self._validate_params()
        ladder = load_ladder(ladder)
        fit_matrix, anchor_matrix = select_fit_points(
            ladder,
            benchmark,
            anchors=self.anchors,
            checkpoints=self.checkpoints,
            smooth_checkpoints=self.smooth_checkpoints,
        )
        if self.compute_unit == "ladder":
            unit = float(fit_matrix.compute.min())
        else:
            unit = float(self.compute_unit or ladder.compute_unit)
        X = fit_matrix.pass_rates
        compute = fit_matrix.compute / unit

        fallback_used = None
        labels = self._cluster(X)
        n_clusters = int(labels.max()) + 1 if labels.size and labels.max() >= 0 else 0
        acc, sizes = _cluster_means(X, labels, n_clusters)
        fits = fit_laws(compute, acc, form=self.law) if n_clusters else []
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
            if self.fallback == "end_to_end" or not kept.any():
                # one pseudo-cluster holding every sample, its law fitted to full accuracy
                fallback_used = "end_to_end"
                labels = np.zeros(len(X), dtype=int)
                acc, sizes = _cluster_means(X, labels, 1)
                fits = fit_laws(compute, acc, form=self.law)
                verdicts = [ClusterVerdict(Verdict.KEPT, "end-to-end fallback")]
                kept = np.array([True])

        in_subset = np.isin(labels, np.flatnonzero(kept))
        subset_acc = X[in_subset].mean(axis=0)
        full_acc = X.mean(axis=0)
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
        # kept for the bootstrap, which is computed lazily on first use
        self._X = X
        self._anchor_X = None if anchor_matrix is None else anchor_matrix.pass_rates
        self._replicates = None
        return self

    def _cluster(self, X):
        params = dict(self.clustering_params or {})
        clusterer = make_clusterer(self.clustering, **params)
        if "random_state" in clusterer.get_params():
            clusterer.set_params(random_state=self.random_state)
        if self.features == "log":
            eps = self.log_floor
            X = np.clip(np.log(np.maximum(X, eps) / eps) / np.log(1 / eps), 0.0, 1.0)
        return np.asarray(clusterer.fit(X).labels_, dtype=int)

    # --------------------------------------------------------------- prediction

    def predict_subset(self, compute):
        """Forecast accuracy on the predictable subset (before the mapping).

        Parameters
        ----------
        compute : float or array_like
            Training compute in FLOPs.

        Returns
        -------
        float or ndarray
        """
        check_is_fitted(self, "mapping_")
        c = self._to_units(compute)
        return _subset_forecast(self.cluster_fits_, self.cluster_sizes_, self.kept_, c)

    def predict(self, compute):
        """Forecast full-set accuracy at ``compute`` FLOPs.

        Parameters
        ----------
        compute : float or array_like
            Training compute in FLOPs (positive).

        Returns
        -------
        float or ndarray
            Accuracy in [0, 1]; a float for scalar input.
        """
        check_is_fitted(self, "mapping_")
        out = self.mapping_.predict(self.predict_subset(compute))
        return float(out) if np.ndim(out) == 0 else out

    def predict_interval(self, compute, level: float = 0.9):
        """Bootstrap interval of the full-set forecast.

        Parameters
        ----------
        compute : float or array_like
            Training compute in FLOPs.
        level : float, default 0.9
            Central coverage of the interval.

        Returns
        -------
        (lower, upper) : tuple of float or ndarray
        """
        check_is_fitted(self, "mapping_")
        if not 0 < level < 1:
            raise ValueError(f"`level` should be in (0, 1), got {level!r}")
        draws = self.bootstrap_predictions(compute)
        if draws.shape[0] == 0:
            point = np.asarray(self.predict(compute), dtype=float)
            return _scalar(point), _scalar(point)
        lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2], axis=0)
        # the point forecast belongs inside its own interval even when the bootstrap is skewed
        point = np.asarray(self.predict(compute), dtype=float)
        return _scalar(np.minimum(lo, point)), _scalar(np.maximum(hi, point))

    def bootstrap_predictions(self, compute) -> np.ndarray:
        """Full-set forecasts of every bootstrap replicate, shape (n_bootstrap, *shape)."""
        check_is_fitted(self, "mapping_")
        c = self._to_units(compute)
        if self._replicates is None:
            self._replicates = self._bootstrap()
        out = [
            rep.mapping.predict(_subset_forecast(rep.fits, self.cluster_sizes_, self.kept_, c))
            for rep in self._replicates
        ]
        return np.asarray(out, dtype=float).reshape((len(out),) + np.shape(c))

    def _bootstrap(self) -> list[_Replicate]:
        rng = np.random.default_rng(self.random_state)
        X, labels, m = self._X, self.labels_, len(self.compute_)
        groups = [np.flatnonzero(labels == k) for k in np.unique(labels)]
        kept_ids = np.flatnonzero(self.kept_)
        n_clusters = len(self.cluster_fits_)
        min_distinct = min(4, len(np.unique(self.compute_)))
        replicates = []
        for _ in range(int(self.n_bootstrap)):
            rows = np.concatenate([rng.choice(g, size=len(g)) for g in groups])
            cols = rng.integers(0, m, size=m)
            while len(np.unique(self.compute_[cols])) < min_distinct:
                cols = rng.integers(0, m, size=m)
            Xb = X[np.ix_(rows, cols)]
            lb = labels[rows]
            acc, _ = _cluster_means(Xb, lb, n_clusters)
            fits = list(self.cluster_fits_)
            refit = fit_laws(
                self.compute_[cols],
                acc[kept_ids],
                form=self.law,
                init=[self.cluster_fits_[k] for k in kept_ids],
            )
            for k, f in zip(kept_ids, refit):
                fits[k] = f
            in_subset = np.isin(lb, kept_ids)
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

    def _to_units(self, compute):
        c = np.asarray(compute, dtype=float)
        if not np.all(np.isfinite(c)) or np.any(c <= 0):
            raise ValueError(f"`compute` should be positive and finite FLOPs, got {compute!r}")
        return c / self.compute_unit_

    # ------------------------------------------------------------------- report

    def report(self) -> dict:
        """Everything the fit decided, as plain Python (JSON-serialisable).

        Returns
        -------
        dict
            Keys: ``benchmark``, ``compute_unit``, ``models`` (name, compute,
            full and subset accuracy), ``anchors``, ``n_samples``, ``n_outliers``,
            ``n_clusters``, ``n_kept``, ``subset_share``, ``fallback``, ``clusters``
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
                    "law": _law_dict(fit),
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
            "clusters": clusters,
            "mapping": {
                "method": self.mapping_.method_,
                "rmse": self.mapping_.rmse_,
                "smoothing": self.mapping_.smoothing_,
                "monotone": self.mapping_.monotone_,
                "points": self.mapping_.points_.round(6).tolist(),
            },
        }


def _law_dict(fit: LawFit) -> dict:
    d = fit.as_dict()
    return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in d.items()}


def _scalar(x):
    return float(x) if np.ndim(x) == 0 else x


def _cluster_means(X, labels, n_clusters):
    """Mean pass rate of every cluster on every model, and cluster sizes."""
    sizes = np.bincount(labels[labels >= 0], minlength=n_clusters)[:n_clusters]
    sums = np.zeros((n_clusters, X.shape[1]))
    np.add.at(sums, labels[labels >= 0], X[labels >= 0])
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / sizes[:, None]
    return np.nan_to_num(means), sizes


def _subset_forecast(fits, sizes, kept, compute_units):
    """Size-weighted mean of the kept clusters' laws at ``compute_units``."""
    ids = np.flatnonzero(kept)
    w = sizes[ids] / sizes[ids].sum()
    c = np.asarray(compute_units, dtype=float)
    total = np.zeros_like(c)
    for wk, k in zip(w, ids):
        total = total + wk * fits[k](c)
    return total
