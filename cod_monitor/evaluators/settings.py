"""The evaluation settings of an evaluation set and an evaluator config.

:func:`run_settings` turns what a run is evaluated with (an
:class:`~cod_monitor.evaluators.EvalSet` and an evaluator config dict) into the
:class:`~cod_monitor.ladder.settings.EvalSettings` a ladder records, filling in the
evaluator's own defaults: a config that leaves out ``top_p`` is evaluated at the
backend's default top-p, and is compared as such.

What counts as a setting is what changes a pass rate's expected value: the stop marker
and the scorer of the set; the mode, temperature and top-p of the evaluator, and in
``sampled`` mode the number of completions (the resolution of a pass rate) and the
generation budget (a short one truncates answers). Not settings: the backend (``hf`` and
``vllm`` implement one policy), the seed (another seed draws other completions from the
same distribution), the device, batch size, threads and dtype (speed, or rounding).

Imports neither torch nor transformers.
"""

from __future__ import annotations

from collections.abc import Mapping

from cod_monitor.evaluators.registry import make_evaluator
from cod_monitor.ladder.settings import EVALUATOR_FIELDS, SAMPLED_ONLY_FIELDS, EvalSettings

__all__ = ["evaluator_settings", "eval_set_settings", "run_settings"]


def evaluator_settings(config: Mapping) -> dict:
    """The settings of an evaluator config, the backend's defaults filled in.

    The evaluator is built from `config` (cheap: no model is loaded) and its resolved
    parameters are read back. In ``exact`` mode ``n`` and ``max_new_tokens`` are left
    out: no completion is drawn, so they cannot change a pass rate.

    Parameters
    ----------
    config : mapping
        An evaluator config for :func:`~cod_monitor.evaluators.make_evaluator`.

    Returns
    -------
    dict
        Some of :data:`~cod_monitor.ladder.settings.EVALUATOR_FIELDS`.

    Raises
    ------
    EvaluatorConfigError
        The config cannot build an evaluator.

    Examples
    --------
    >>> evaluator_settings({"backend": "hf", "mode": "exact", "batch_size": 256})
    {'mode': 'exact', 'temperature': 1.0, 'top_p': 0.7}
    >>> evaluator_settings({"mode": "sampled", "n": 20})
    {'mode': 'sampled', 'n': 20, 'temperature': 1.0, 'top_p': 0.7, 'max_new_tokens': None}
    """
    evaluator = make_evaluator(dict(config))
    try:
        values = {name: getattr(evaluator, name) for name in EVALUATOR_FIELDS
                  if hasattr(evaluator, name)}
    finally:
        evaluator.close()
    if values.get("mode") == "exact":
        for name in SAMPLED_ONLY_FIELDS:
            values.pop(name, None)
    for name in ("temperature", "top_p"):
        if name in values:
            values[name] = float(values[name])
    return values


def eval_set_settings(eval_set) -> dict:
    """The settings of an evaluation set: its stop marker and its scorer's name.

    Parameters
    ----------
    eval_set : EvalSet

    Returns
    -------
    dict
        ``{"stop": ..., "scorer": ...}``.
    """
    return {"stop": eval_set.stop, "scorer": eval_set.scorer_name}


def run_settings(eval_set=None, evaluator: Mapping | None = None) -> EvalSettings:
    """The settings a run is evaluated with; the parts not given stay unknown.

    Parameters
    ----------
    eval_set : EvalSet, optional
        Gives ``stop`` and ``scorer``.
    evaluator : mapping, optional
        An evaluator config; gives the evaluator's settings with its defaults
        (:func:`evaluator_settings`).

    Returns
    -------
    EvalSettings

    Raises
    ------
    EvaluatorConfigError
        The config cannot build an evaluator.

    Examples
    --------
    >>> from cod_monitor.evaluators import EvalSet
    >>> es = EvalSet.from_records([{"id": "a", "prompt": "1+1=", "answer": "2"}],
    ...                           name="add", stop="\\n")
    >>> run_settings(es, {"mode": "exact"})
    EvalSettings(stop='\\n', scorer='exact', mode='exact', temperature=1.0, top_p=0.7)
    """
    values = {}
    if eval_set is not None:
        values.update(eval_set_settings(eval_set))
    if evaluator is not None:
        values.update(evaluator_settings(evaluator))
    return EvalSettings(**values)
