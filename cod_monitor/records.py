"""Record types shared across layers (evaluators, pool, monitor, trackers).

They sit at the bottom of the import graph, beside :mod:`cod_monitor.exceptions`, so
that edge modules can exchange them without importing one another.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Checkpoint", "EvalResult"]


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint of a training run, as the monitor sees it.

    Attributes
    ----------
    step : int
        Training step.
    compute : float
        Training compute so far, in FLOPs.
    tokens : float or None
        Training tokens seen so far.
    path : str or None
        Directory holding the weights (a HF ``save_pretrained`` layout); ``None``
        while only an in-memory state exists.
    """

    step: int
    compute: float
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
