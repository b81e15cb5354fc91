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

The samples are not all: a pass rate also depends on the stop marker and scorer of the
set and on the evaluator's mode, temperature, top-p (and in ``sampled`` mode ``n`` and
``max_new_tokens``). Where the ladder records these
(:class:`~cod_monitor.ladder.settings.EvalSettings`), :func:`check_eval_sets` compares
them with the run's, the evaluator's defaults filled in, and refuses a difference
(:func:`check_settings`); where it records none, it logs one warning naming those
benchmarks.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Mapping, Sequence

from cod_monitor._validation import invalid
from cod_monitor.evaluators.base import EvaluatorConfigError
from cod_monitor.evaluators.evalset import EvalSet
from cod_monitor.evaluators.registry import make_evaluator
from cod_monitor.evaluators.settings import eval_set_settings, evaluator_settings
from cod_monitor.exceptions import InputError
from cod_monitor.ladder import EvalSettings, Ladder
from cod_monitor.ladder.settings import EVAL_SET_FIELDS, describe_value
from cod_monitor.monitor.config import PoolConfig
from cod_monitor.runtime.local import device_env
from cod_monitor.runtime.worker import EVAL_SET_SPEC_KEYS, load_eval_set

__all__ = ["check_eval_set_spec", "check_eval_sets", "check_evaluator", "check_sample_ids",
           "check_settings"]

logger = logging.getLogger(__name__)

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


def check_eval_sets(ladder: Ladder, eval_sets: Mapping, evaluator: Mapping | None = None, *,
                    read_files: bool = True) -> None:
    """Require every monitored benchmark to be in the ladder, with the ladder's samples,
    scored with the ladder's evaluation settings.

    Parameters
    ----------
    ladder : Ladder
    eval_sets : mapping of str to EvalSet, path or dict
        As :class:`~cod_monitor.monitor.CODMonitor` takes them.
    evaluator : mapping, optional
        The evaluator config the run is evaluated with; its settings, the backend's
        defaults filled in, are compared with those the ladder records. ``None`` (a
        custom job function, which decides what a config means) compares the
        evaluation sets' settings only.
    read_files : bool, default True
        Read the evaluation sets given as paths or ``EvalSet.from_jsonl`` arguments;
        ``False`` checks only those given as :class:`~cod_monitor.evaluators.EvalSet`
        (a custom job function decides what its other specs mean).

    Raises
    ------
    InputError
        A benchmark the ladder does not have, an evaluation set whose sample ids are
        not the ladder's (:func:`check_sample_ids`), or a setting that differs from the
        one the ladder records (:func:`check_settings`).
    EvalSetValidationError
        An evaluation-set file that breaks the format.
    EvaluatorConfigError
        An evaluator config that cannot build an evaluator.
    OSError
        An evaluation-set file that cannot be read.

    Notes
    -----
    Benchmarks whose ladder records no evaluation settings are named in one warning
    (logged, not raised: ladders written before the settings existed still work).
    """
    unrecorded = []
    run_evaluator = None  # the evaluator's settings, resolved once when first needed
    for benchmark, spec in eval_sets.items():
        if benchmark not in ladder.benchmarks:
            raise InputError(
                f"The ladder has no benchmark {benchmark!r}; its benchmarks are "
                f"{ladder.benchmarks}. Name each evaluation set by the ladder benchmark it "
                "was scored on."
            )
        eval_set = None
        if read_files or isinstance(spec, EvalSet):
            eval_set = load_eval_set(spec)
            check_sample_ids(benchmark, ladder.matrix(benchmark).sample_ids, eval_set.ids)
        recorded = ladder.eval_settings_for(benchmark)
        if recorded is None:
            unrecorded.append(benchmark)
            continue
        run = {} if eval_set is None else eval_set_settings(eval_set)
        if evaluator is not None:
            if run_evaluator is None:
                run_evaluator = evaluator_settings(evaluator)
            run.update(run_evaluator)
        check_settings(benchmark, recorded, EvalSettings(**run), evaluator)
    if unrecorded:
        logger.warning(
            "The ladder records no evaluation settings for benchmark(s) %s, so the monitor "
            "cannot check that the run is scored as the ladder was (stop marker, scorer, "
            "evaluator mode, temperature, top_p): a run scored otherwise, e.g. without the "
            "ladder's stop marker, would be compared with the forecast all the same. Record "
            "them in the ladder: `cod-monitor ladder score` (re-scores the checkpoints with "
            "the monitor's evaluator), `cod-monitor ladder import --eval-settings`, or an "
            "\"eval_settings\" section in ladder.json.",
            ", ".join(map(repr, unrecorded)))


def check_settings(benchmark: str, ladder: EvalSettings, run: EvalSettings,
                   evaluator: Mapping | None = None) -> None:
    """Require a run's evaluation settings to be the ladder's where both are known.

    Parameters
    ----------
    benchmark : str
        Named in the error.
    ladder : EvalSettings
        What the ladder records for the benchmark.
    run : EvalSettings
        The run's settings (:func:`~cod_monitor.evaluators.settings.run_settings`).
    evaluator : mapping, optional
        The run's evaluator config as given: a differing field it leaves out is said to
        be the evaluator's default.

    Raises
    ------
    InputError
        A setting differs; the message names the benchmark, each differing field with
        the ladder's value and the run's, and the fix.

    Examples
    --------
    >>> check_settings("add", EvalSettings(stop="\\n", top_p=0.7),
    ...                EvalSettings(stop="\\n", scorer="exact", top_p=0.7))  # no error
    >>> check_settings("add", EvalSettings(stop="\\n", mode="exact"),
    ...                EvalSettings(stop=None, mode="exact"))
    Traceback (most recent call last):
    ...
    cod_monitor.exceptions.InputError: The run would not be scored as the ladder was on benchmark 'add': stop: the ladder '\\n', the run None (no stop marker). Pass rates scored with other settings cannot be compared with the ladder's forecast (without the ladder's stop marker, for one, a completion runs on past the answer and scores 0). Evaluate the run as the ladder was: give the evaluation set of 'add' stop='\\n' (e.g. eval_sets={'add': {'path': ..., 'stop': '\\n'}}). Or re-score the ladder's checkpoints with the run's settings: `cod-monitor ladder score`.
    """
    diffs = ladder.differences(run)
    if not diffs:
        return
    given = {} if evaluator is None else evaluator
    parts = []
    for name, ours, theirs in diffs:
        default = "" if name in EVAL_SET_FIELDS or name in given else (
            f" (the evaluator's default: the config does not set {name!r})")
        parts.append(f"{name}: the ladder {describe_value(name, ours)}, the run "
                     f"{describe_value(name, theirs)}{default}")
    set_fix = {name: ours for name, ours, _ in diffs if name in EVAL_SET_FIELDS}
    evaluator_fix = {name: ours for name, ours, _ in diffs if name not in EVAL_SET_FIELDS}
    fixes = []
    if set_fix:
        spec = ", ".join(f"{k!r}: {v!r}" for k, v in set_fix.items())
        fixes.append(f"give the evaluation set of {benchmark!r} "
                     + " and ".join(f"{k}={v!r}" for k, v in set_fix.items())
                     + f" (e.g. eval_sets={{{benchmark!r}: {{'path': ..., {spec}}}}})")
    if evaluator_fix:
        fixes.append(f"set {evaluator_fix!r} in the evaluator config")
    why = (" (without the ladder's stop marker, for one, a completion runs on past the "
           "answer and scores 0)" if any(name == "stop" for name, _, _ in diffs) else "")
    raise InputError(
        f"The run would not be scored as the ladder was on benchmark {benchmark!r}: "
        + "; ".join(parts) + ". Pass rates scored with other settings cannot be compared "
        f"with the ladder's forecast{why}. Evaluate the run as the ladder was: "
        + "; ".join(fixes) + ". Or re-score the ladder's checkpoints with the run's "
        "settings: `cod-monitor ladder score`."
    )


def _examples(ids: list[str]) -> str:
    if not ids:
        return "none"
    shown = ", ".join(repr(s) for s in ids[:N_EXAMPLES])
    return shown if len(ids) <= N_EXAMPLES else f"{shown} ({len(ids)} in all)"


#: The methods every tracker has (:class:`~cod_monitor.trackers.base.Tracker`).
TRACKER_METHODS = ("start", "log_forecast", "log_observation", "log_alert", "finish")


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
