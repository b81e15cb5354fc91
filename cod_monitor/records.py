"""Record types shared across layers (evaluators, pool, monitor, trackers).

They sit at the bottom of the import graph, beside :mod:`cod_monitor.exceptions`, so
that edge modules can exchange them without importing one another.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from enum import Enum

import numpy as np

from cod_monitor._io import to_jsonable

__all__ = [
    "Alert",
    "AlertReason",
    "Checkpoint",
    "EvalResult",
    "FinalForecast",
    "ForecastPoint",
    "METRIC_NAMES",
    "Observation",
    "observation_metrics",
]


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint of a training run, as the monitor sees it.

    Attributes
    ----------
    step : int
        Training step.
    compute : float or None
        Training compute so far, in FLOPs (``None`` when unknown).
    tokens : float or None
        Training tokens seen so far.
    path : str or None
        Directory holding the weights (a HF ``save_pretrained`` layout); ``None``
        while only an in-memory state exists.
    """

    step: int
    compute: float | None
    tokens: float | None = None
    path: str | None = None


@dataclass(frozen=True)
class EvalResult:
    """Per-sample pass rates of one checkpoint on one evaluation set.

    Attributes
    ----------
    eval_set : str
        Name of the evaluation set (the benchmark).
    sample_ids : tuple of str
        Sample ids, in the evaluation set's order.
    pass_rates : ndarray of shape (n_samples,)
        Per-sample pass rate in [0, 1]: a fraction of sampled answers (``sampled``
        mode) or the exact probability that the sampling policy answers correctly
        (``exact`` mode).
    mode : str
        ``'sampled'`` or ``'exact'``.
    n_samples : ndarray of shape (n_samples,) or None
        Completions drawn per sample (``sampled`` mode).
    n_correct : ndarray of shape (n_samples,) or None
        Correct completions per sample (``sampled`` mode).
    wall_s : float
        Wall time of the evaluation in seconds.
    meta : dict
        Evaluator settings (backend, temperature, top_p, ...).
    """

    eval_set: str
    sample_ids: tuple
    pass_rates: np.ndarray
    mode: str
    n_samples: np.ndarray | None = None
    n_correct: np.ndarray | None = None
    wall_s: float = 0.0
    meta: dict = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        """Mean pass rate over the set."""
        return float(np.mean(self.pass_rates))

    def to_dict(self) -> dict:
        """Plain-Python view (lists), for JSON journals."""
        return {
            "eval_set": self.eval_set,
            "sample_ids": list(self.sample_ids),
            "pass_rates": [float(p) for p in self.pass_rates],
            "mode": self.mode,
            "n_samples": None if self.n_samples is None else [int(v) for v in self.n_samples],
            "n_correct": None if self.n_correct is None else [int(v) for v in self.n_correct],
            "wall_s": self.wall_s,
            "meta": dict(self.meta),
        }

    @classmethod
    def from_dict(cls, d: dict) -> EvalResult:
        """Inverse of :meth:`to_dict`."""
        def arr(key, dtype):
            return None if d.get(key) is None else np.asarray(d[key], dtype=dtype)

        return cls(
            eval_set=d["eval_set"],
            sample_ids=tuple(d["sample_ids"]),
            pass_rates=np.asarray(d["pass_rates"], dtype=float),
            mode=d["mode"],
            n_samples=arr("n_samples", int),
            n_correct=arr("n_correct", int),
            wall_s=float(d.get("wall_s", 0.0)),
            meta=dict(d.get("meta", {})),
        )


class AlertReason(str, Enum):
    """Why the monitor raised (or cleared) an alert.

    The drift decision raises ``BELOW_BAND``, ``RECOVERED`` and
    ``FORECAST_UNAVAILABLE``; the others report a fault of the monitoring itself, so
    that no checkpoint goes unevaluated without a word:

    - ``EVALUATION_FAILING``: a checkpoint will have no observation (its evaluation
      failed on every attempt, or it could not be taken or snapshotted);
    - ``EVALUATION_TIMEOUT``: an evaluation attempt ran past its time limit; its worker
      was killed and restarted and the job retried;
    - ``WORKER_DIED``: an evaluation worker died mid-job (a crash, an OOM kill); it was
      restarted and the job retried;
    - ``EVALUATION_UNFINISHED``: evaluations still pending when the monitor closed
      (the next monitor on the same ``out_dir`` resubmits them);
    - ``JOURNAL_FAILING``: the journal's disk refuses writes (records are kept in
      memory meanwhile);
    - ``MONITOR_ERROR``: the monitor's own processing failed (e.g. on a result it
      cannot record); the traceback is in the log;
    - ``TRACKER_FAILING``: a tracker kept failing (or hung) and was disabled; the
      journal, the log and the other trackers carry on;
    - ``EVALUATION_SKIPPED``: the queue policy dropped a waiting checkpoint to make room
      for a newer one, so it has no observation (raised once per stretch of drops; every
      dropped step is in the journal and in the summary's ``skipped_steps``);
    - ``LADDER_REJECTED``: the ladder changed mid-run into one that cannot forecast a
      monitored benchmark (the benchmark is gone, its samples are not the ones the run
      is evaluated on, or the refit failed); the previous forecast version stays in use.
    """

    BELOW_BAND = "below_band"
    RECOVERED = "recovered"
    EVALUATION_FAILING = "evaluation_failing"
    FORECAST_UNAVAILABLE = "forecast_unavailable"
    EVALUATION_TIMEOUT = "evaluation_timeout"
    WORKER_DIED = "worker_died"
    EVALUATION_UNFINISHED = "evaluation_unfinished"
    JOURNAL_FAILING = "journal_failing"
    MONITOR_ERROR = "monitor_error"
    TRACKER_FAILING = "tracker_failing"
    EVALUATION_SKIPPED = "evaluation_skipped"
    LADDER_REJECTED = "ladder_rejected"


@dataclass(frozen=True)
class Observation:
    """Measured accuracy of one checkpoint on one benchmark.

    Attributes
    ----------
    step : int
    compute : float
        FLOPs at the checkpoint.
    benchmark : str
    accuracy : float
        Mean pass rate over the full evaluation set.
    result : EvalResult or None
        The per-sample evaluation behind it.
    tokens : float or None
        Training tokens seen at the checkpoint, when known.
    """

    step: int
    compute: float
    benchmark: str
    accuracy: float
    result: EvalResult | None = None
    tokens: float | None = None

    def to_dict(self) -> dict:
        """JSON-ready view: ``compute`` NaN as ``None``, ``result`` as a dict (or ``None``)."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["result"] = None if self.result is None else self.result.to_dict()
        return to_jsonable(d)

    @classmethod
    def from_dict(cls, d: dict) -> Observation:
        """Inverse of :meth:`to_dict`; also reads the journal's ``result`` records.

        ``compute`` missing or ``None`` becomes NaN; unknown keys are ignored.
        """
        compute = d.get("compute")
        return cls(
            step=int(d["step"]),
            compute=math.nan if compute is None else float(compute),
            benchmark=d["benchmark"],
            accuracy=float(d["accuracy"]),
            result=None if d.get("result") is None else EvalResult.from_dict(d["result"]),
            tokens=d.get("tokens"),
        )


@dataclass(frozen=True)
class ForecastPoint:
    """The forecast for one checkpoint (or for the end of the run).

    Attributes
    ----------
    step : int
    compute : float
        FLOPs the forecast is for.
    benchmark : str
    value : float
        Forecast accuracy.
    lower, upper : float
        Interval bounds (the drift band before tolerance).
    version : int
        Forecast version (increments when the ladder changes and is re-fitted).
    mode : str
        Trajectory mode that produced it (e.g. ``'compute'``, ``'trajectory'``).
    tokens : float or None
        Training tokens the forecast is for, when known.
    """

    step: int
    compute: float
    benchmark: str
    value: float
    lower: float
    upper: float
    version: int = 0
    mode: str = "compute"
    tokens: float | None = None

    def to_dict(self) -> dict:
        """JSON-ready view; a non-finite number becomes ``None``."""
        return to_jsonable(asdict(self))

    @classmethod
    def from_dict(cls, d: dict) -> ForecastPoint:
        """Inverse of :meth:`to_dict` (unknown keys are ignored)."""
        return cls(**_known_fields(cls, d))


@dataclass(frozen=True)
class FinalForecast:
    """The forecast of a run's final accuracy, made after one evaluated checkpoint.

    Attributes
    ----------
    step : int
        The checkpoint after which the forecast was made.
    benchmark : str
    final_step : int
        The run's last step (``max_steps``).
    value, lower, upper : float
        The run-conditioned forecast of the accuracy at ``final_step`` and its
        interval (the accuracy smoothed over the last checkpoints, as a run's final
        accuracy is reported).
    prior_value, prior_lower, prior_upper : float
        The ladder-only forecast of the same checkpoint and its band.
    n_used : int
        Evaluated checkpoints the forecast has learned from.
    level, rate : float
        The run's estimated departure from the ladder: accuracy added at the end of
        the run, and the relative change of its progress (``0.2``: 20 % more progress
        between two checkpoints than the ladder's curve).
    version : int
        The ladder forecast version it is conditioned on.
    """

    step: int
    benchmark: str
    final_step: int
    value: float
    lower: float
    upper: float
    prior_value: float
    prior_lower: float
    prior_upper: float
    n_used: int = 0
    level: float = 0.0
    rate: float = 0.0
    version: int = 0

    def to_dict(self) -> dict:
        """JSON-ready view; a non-finite number becomes ``None``."""
        return to_jsonable(asdict(self))

    @classmethod
    def from_dict(cls, d: dict) -> FinalForecast:
        """Inverse of :meth:`to_dict` (unknown keys are ignored)."""
        return cls(**_known_fields(cls, d))


@dataclass(frozen=True)
class Alert:
    """A drift alert (or its clearing), with a full-sentence message holding the numbers.

    Attributes
    ----------
    step : int
    benchmark : str
    reason : AlertReason
    message : str
    observed, lower, upper : float or None
    """

    step: int
    benchmark: str
    reason: AlertReason
    message: str
    observed: float | None = None
    lower: float | None = None
    upper: float | None = None

    def to_dict(self) -> dict:
        """JSON-ready view, ``reason`` as its string value."""
        d = asdict(self)
        d["reason"] = self.reason.value
        return to_jsonable(d)

    @classmethod
    def from_dict(cls, d: dict) -> Alert:
        """Inverse of :meth:`to_dict` (unknown keys are ignored)."""
        kw = _known_fields(cls, d)
        kw["reason"] = AlertReason(kw["reason"])
        return cls(**kw)


#: The per-checkpoint scalars a training loop's own logger gets, as ``cod/<benchmark>/<name>``
#: (see :func:`observation_metrics`).
METRIC_NAMES = (
    "accuracy", "forecast", "forecast_lower", "forecast_upper", "final_forecast",
    "final_forecast_lower", "final_forecast_upper", "checkpoint_step", "alerting",
)


def observation_metrics(observation: Observation, forecast: ForecastPoint | None = None,
                        final: FinalForecast | None = None, *, alerting: bool = False,
                        prefix: str = "cod") -> dict:
    """The flat scalars of one judged checkpoint, one key per quantity.

    What the training loop's own logger (the HF ``Trainer``'s ``report_to``
    backends, a Lightning logger, ``Accelerator.log``) records for an observation.
    The loop logs them at its current step, which is later than the checkpoint's
    (evaluation is asynchronous): ``checkpoint_step`` says which checkpoint they are
    about.

    Parameters
    ----------
    observation : Observation
    forecast : ForecastPoint, optional
        The forecast the checkpoint was judged against.
    final : FinalForecast, optional
        The run-conditioned forecast of the final accuracy, made after it.
    alerting : bool, default False
        Whether a below-band alert stood for the benchmark after it was judged.
    prefix : str, default 'cod'

    Returns
    -------
    dict of str to float or int
        ``<prefix>/<benchmark>/<name>`` for the names of :data:`METRIC_NAMES`:
        ``accuracy``, ``checkpoint_step`` and ``alerting`` (0 or 1) always; the
        ``forecast*`` keys with a forecast, the ``final_forecast*`` keys with a final
        forecast. A non-finite number is left out.

    Examples
    --------
    >>> obs = Observation(step=500, compute=1e20, benchmark="gsm8k", accuracy=0.41)
    >>> observation_metrics(obs, ForecastPoint(500, 1e20, "gsm8k", 0.43, 0.40, 0.46))
    ... # doctest: +NORMALIZE_WHITESPACE
    {'cod/gsm8k/accuracy': 0.41, 'cod/gsm8k/forecast': 0.43, 'cod/gsm8k/forecast_lower': 0.4,
     'cod/gsm8k/forecast_upper': 0.46, 'cod/gsm8k/checkpoint_step': 500,
     'cod/gsm8k/alerting': 0}
    """
    values: dict = {"accuracy": observation.accuracy}
    if forecast is not None:
        values.update(forecast=forecast.value, forecast_lower=forecast.lower,
                      forecast_upper=forecast.upper)
    if final is not None:
        values.update(final_forecast=final.value, final_forecast_lower=final.lower,
                      final_forecast_upper=final.upper)
    p = f"{prefix}/{observation.benchmark}"
    # plain floats: loggers (TensorBoard, MLflow) refuse numpy scalars or NaN
    out = {f"{p}/{k}": float(v) for k, v in values.items()
           if v is not None and math.isfinite(float(v))}
    out[f"{p}/checkpoint_step"] = int(observation.step)
    out[f"{p}/alerting"] = int(bool(alerting))
    return out


def _known_fields(cls, d: dict) -> dict:
    """The entries of ``d`` that are fields of the dataclass ``cls``."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in d.items() if k in names}
