"""Checks of a monitor's inputs: its arguments when it is built, its files when it starts.

:func:`check_eval_set_spec` and :func:`check_evaluator` run at construction (through
:meth:`CODMonitor.check_arguments <cod_monitor.monitor.CODMonitor.check_arguments>`);
:func:`check_eval_sets` runs when the monitor starts, before training proceeds.

The forecast of a benchmark is a forecast of the accuracy on the samples the ladder
was scored on; an accuracy measured on other samples (a foreign set, a subset, a set
generated with other settings) cannot be compared with it, and no later step would
notice. :func:`check_eval_sets` therefore requires the evaluation set of every
monitored benchmark to hold exactly the ladder benchmark's sample ids (in any order),
and raises :class:`~cod_monitor.exceptions.InputError` with the counts and examples of
each side otherwise.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping, Sequence

from cod_monitor._validation import invalid
from cod_monitor.evaluators.base import EvaluatorConfigError
from cod_monitor.evaluators.evalset import EvalSet
from cod_monitor.evaluators.registry import make_evaluator
from cod_monitor.exceptions import InputError
from cod_monitor.ladder import Ladder
from cod_monitor.monitor.config import PoolConfig
from cod_monitor.runtime.local import device_env
from cod_monitor.runtime.worker import load_eval_set

__all__ = ["check_eval_set_spec", "check_eval_sets", "check_evaluator", "check_sample_ids"]

#: Example ids quoted per side in a mismatch message.
N_EXAMPLES = 3


def check_sample_ids(benchmark: str, ladder_ids: Sequence, eval_ids: Sequence) -> None:
    """Require an evaluation set's sample ids to be the ladder benchmark's.

    Ids are compared as strings, order aside.

    Parameters
    ----------
    benchmark : str
        Named in the error.
    ladder_ids : sequence
        The sample ids of the benchmark in the ladder.
    eval_ids : sequence
        The sample ids of the evaluation set.

    Raises
    ------
    InputError
        The two sets of ids differ; the message gives the count on each side and in
        common, a few ids found on one side only, and the fix.

    Examples
    --------
    >>> check_sample_ids("add", ["a", "b"], ["b", "a"])  # same ids: no error
    >>> check_sample_ids("add", ["a", "b", "c"], ["a", "x"])
    Traceback (most recent call last):
    ...
    cod_monitor.exceptions.InputError: The evaluation set of benchmark 'add' does not hold the ladder's samples: the ladder has 3 sample ids, the evaluation set 2, and 1 are in common. Only in the ladder: 'b', 'c'. Only in the evaluation set: 'x'. The forecast is the accuracy on the ladder's samples, so an accuracy measured on other samples cannot be compared with it. Evaluate the run on exactly the samples the ladder was scored on (same prompts, same ids), or score the ladder on this evaluation set.
    """
    ladder_set = {str(s) for s in ladder_ids}
    eval_set = {str(s) for s in eval_ids}
    if ladder_set == eval_set:
        return
    only_ladder = [str(s) for s in ladder_ids if str(s) not in eval_set]
    only_eval = [str(s) for s in eval_ids if str(s) not in ladder_set]
    raise InputError(
        f"The evaluation set of benchmark {benchmark!r} does not hold the ladder's samples: "
        f"the ladder has {len(ladder_set)} sample ids, the evaluation set {len(eval_set)}, "
        f"and {len(ladder_set & eval_set)} are in common. "
        f"Only in the ladder: {_examples(only_ladder)}. "
        f"Only in the evaluation set: {_examples(only_eval)}. "
        "The forecast is the accuracy on the ladder's samples, so an accuracy measured on "
        "other samples cannot be compared with it. Evaluate the run on exactly the samples "
        "the ladder was scored on (same prompts, same ids), or score the ladder on this "
        "evaluation set."
    )


def check_eval_sets(ladder: Ladder, eval_sets: Mapping, *, read_files: bool = True) -> None:
    """Require every monitored benchmark to be in the ladder, with the ladder's samples.

    Parameters
    ----------
    ladder : Ladder
    eval_sets : mapping of str to EvalSet, path or dict
        As :class:`~cod_monitor.monitor.CODMonitor` takes them.
    read_files : bool, default True
        Read the evaluation sets given as paths or ``EvalSet.from_jsonl`` arguments;
        ``False`` checks only those given as :class:`~cod_monitor.evaluators.EvalSet`
        (a custom job function decides what its other specs mean).

    Raises
    ------
    InputError
        A benchmark the ladder does not have, or an evaluation set whose sample ids
        are not the ladder's (:func:`check_sample_ids`).
    EvalSetValidationError
        An evaluation-set file that breaks the format.
    OSError
        An evaluation-set file that cannot be read.
    """
    for benchmark, spec in eval_sets.items():
        if benchmark not in ladder.benchmarks:
            raise InputError(
                f"The ladder has no benchmark {benchmark!r}; its benchmarks are "
                f"{ladder.benchmarks}. Name each evaluation set by the ladder benchmark it "
                "was scored on."
            )
        if not (read_files or isinstance(spec, EvalSet)):
            continue
        check_sample_ids(benchmark, ladder.matrix(benchmark).sample_ids,
                         load_eval_set(spec).ids)


def _examples(ids: list[str]) -> str:
    if not ids:
        return "none"
    shown = ", ".join(repr(s) for s in ids[:N_EXAMPLES])
    return shown if len(ids) <= N_EXAMPLES else f"{shown} ({len(ids)} in all)"


#: The methods every tracker has (:class:`~cod_monitor.trackers.base.Tracker`).
TRACKER_METHODS = ("start", "log_forecast", "log_observation", "log_alert", "finish")
#: The keys of an evaluation-set spec dict: ``EvalSet.from_jsonl``'s arguments.
EVAL_SET_SPEC_KEYS = ("path", "name", "scorer", "stop")


def check_eval_set_spec(owner: str, benchmark, spec, custom_jobs: bool) -> None:
    """Check one entry of ``eval_sets`` (a custom job function reads its own specs).

    Raises
    ------
    ParameterError
        A key that is not a benchmark name, or a value that is not an evaluation-set spec.
    """
    if not isinstance(benchmark, str) or not benchmark:
        raise invalid(owner, "eval_sets", "a mapping whose keys are the ladder's benchmark "
                      "names", benchmark, "Key each evaluation set by the name (a non-empty "
                      "str) of the ladder benchmark it was scored on.")
    if custom_jobs or isinstance(spec, (EvalSet, str, os.PathLike)):
        return
    expected = ("an EvalSet, a JSON-lines path or a dict of EvalSet.from_jsonl arguments "
                "with 'path'")
    if not isinstance(spec, Mapping):
        raise invalid(owner, "eval_sets", expected, spec, f"It is the value of {benchmark!r}.")
    unknown = [k for k in spec if k not in EVAL_SET_SPEC_KEYS]
    if unknown or "path" not in spec:
        close = [c for k in unknown for c in difflib.get_close_matches(str(k), EVAL_SET_SPEC_KEYS, n=1)]
        what = (f"Unknown key(s) {unknown}" + (f" (did you mean {close[0]!r}?)" if close else "")
                if unknown else "'path' is missing")
        raise invalid(owner, "eval_sets", expected, dict(spec),
                      f"{what} in the spec of {benchmark!r}; its keys are "
                      f"{list(EVAL_SET_SPEC_KEYS)}.")


def check_evaluator(owner: str, config: dict, pool: PoolConfig) -> None:
    """Build the evaluator once from ``config``: the workers will build the same.

    Raises
    ------
    EvaluatorConfigError
        The config cannot build an evaluator, or names a GPU for CPU workers.
    """
    try:
        make_evaluator(dict(config)).close()
    except EvaluatorConfigError as exc:
        if exc.owner != "make_evaluator":
            raise  # names the evaluator's own parameter
        raise EvaluatorConfigError(owner, "evaluator", exc.expected, exc.value, exc.hint) from None
    device = str(config.get("device", ""))
    cpu_workers = [d for d in pool.devices if device_env(d)[0] == "cpu"]
    if device.startswith("cuda") and cpu_workers:
        raise EvaluatorConfigError(
            owner, "evaluator", "a config whose device the workers of PoolConfig.devices can "
            "use", config, f"Its device {device!r} is a GPU, but PoolConfig.devices has CPU "
            "workers, which see no GPU; remove 'device' from the evaluator config (each worker "
            "then evaluates on its own pool device) or give PoolConfig GPU devices.")
