"""Faults to inject into a demo training run, for testing what a monitor catches.

A :class:`Sabotage` is one fault over a window of the run, given as fractions of the
run's optimizer steps (equivalently of its tokens: every step has the same tokens):

============  ==================================================================
``lr_spike``  learning rate x ``factor`` (e.g. 10 to 30) inside the window, then
              back to the schedule (a loss spike from a bad rate for a while);
              with ``end=1`` a lasting jump, the live demo's ``--sabotage``
``corrupt``   the training blocks consumed inside the window have shuffled
              answers: each task example keeps its prompt and gets the answer of
              another example (the next one drawn); ``factor`` is the share of
              examples so changed (default 1: all)
``slowdown``  from ``start``, the learning rate is multiplied by a factor that
              falls smoothly from 1 to ``factor`` (a small value, e.g. 0.02) at
              ``end``, and stays there. Measured on the demo target (from 40%, to
              x0.02): it acts as a cooldown and *raises* accuracy (0.58 instead of
              0.41 at the end), so it is a schedule that departs from the recipe,
              not a fault that lowers accuracy
``high_lr``   learning rate x ``factor`` (e.g. 3) over the window, by default the
              whole run: a run that is bad from the start
``corrupt_``  the share of examples with shuffled answers (as ``corrupt``) rises
``ramp``      smoothly from 0 at ``start`` to ``factor`` (default 0.5) at ``end``,
              and stays there: a gradual fault that lowers accuracy
============  ==================================================================

The training code (:func:`cod_monitor.demo.train.train_run`,
:func:`~cod_monitor.demo.train.train_target`, and through them
:func:`cod_monitor.demo.build.add_runs`) multiplies the schedule's learning-rate
multiplier by :meth:`Sabotage.lr_factor` and corrupts the blocks of each step with the
share of examples :meth:`Sabotage.corrupt_share` gives. Nothing here imports torch.

Step convention: ``k`` counts optimizer steps already taken (the argument of a
``LambdaLR`` multiplier), so step ``k + 1`` (1-based, as the ``Trainer`` counts) runs
with ``lr_factor(k)``. The window is ``k`` in ``[start_step, end_step)``, i.e. the
optimizer steps ``start_step + 1 .. end_step``, with ``start_step = round(start * T)``
and ``end_step = round(end * T)`` for a run of ``T`` steps.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from cod_monitor._validation import check_choice, check_int, check_real, invalid
from cod_monitor.demo.tasks import TaskSample

__all__ = ["SABOTAGE_KINDS", "DATA_KINDS", "DEFAULT_FACTORS", "Sabotage", "shuffle_answers"]

#: The kinds of fault :class:`Sabotage` knows.
SABOTAGE_KINDS = ("lr_spike", "corrupt", "slowdown", "high_lr", "corrupt_ramp")
#: The kinds that change the training data (the others change the learning rate).
DATA_KINDS = ("corrupt", "corrupt_ramp")
#: ``factor`` of each kind when none is given.
DEFAULT_FACTORS = {"lr_spike": 20.0, "corrupt": 1.0, "slowdown": 0.02, "high_lr": 3.0,
                   "corrupt_ramp": 0.5}


@dataclass(frozen=True)
class Sabotage:
    """One fault injected into a training run over a window of its steps.

    Parameters
    ----------
    kind : {'lr_spike', 'corrupt', 'slowdown', 'high_lr', 'corrupt_ramp'}
        See the module docstring.
    start : float, default 0.0
        Start of the window, as a fraction of the run's steps (tokens), in [0, 1).
    end : float, default 1.0
        End of the window, a fraction in (start, 1].
    factor : float, optional
        ``lr_spike``, ``high_lr``: learning-rate multiplier (> 0; default 20 and 3).
        ``slowdown``: the multiplier reached at ``end``, in (0, 1) (default 0.02).
        ``corrupt``: share of the window's examples whose answer is replaced, in
        (0, 1] (default 1). ``corrupt_ramp``: the share reached at ``end``, in (0, 1]
        (default 0.5).

    Raises
    ------
    ParameterError
        An unknown kind, a window outside [0, 1] or empty, a factor out of its range.

    Examples
    --------
    >>> spike = Sabotage("lr_spike", start=0.5, end=0.55, factor=20)
    >>> spike.steps(200)
    (100, 110)
    >>> [spike.lr_factor(k, 200) for k in (99, 100, 109, 110)]
    [1.0, 20.0, 20.0, 1.0]
    >>> slow = Sabotage("slowdown", start=0.4)
    >>> [round(slow.lr_factor(k, 100), 4) for k in (39, 40, 70, 99)]
    [1.0, 1.0, 0.1414, 0.0201]
    """

    kind: str
    start: float = 0.0
    end: float = 1.0
    factor: float | None = None

    def __post_init__(self):
        owner = "Sabotage"
        check_choice(owner, "kind", self.kind, SABOTAGE_KINDS)
        start = check_real(owner, "start", self.start, 0.0, 1.0, closed="left")
        end = check_real(owner, "end", self.end, 0.0, 1.0, closed="right")
        if end <= start:
            raise invalid(owner, "end", f"a fraction of the run above start={start:g}", end,
                          "Give a non-empty window: start < end <= 1.")
        factor = DEFAULT_FACTORS[self.kind] if self.factor is None else self.factor
        if self.kind == "slowdown":
            factor = check_real(owner, "factor", factor, 0.0, 1.0)
        elif self.kind in DATA_KINDS:
            factor = check_real(owner, "factor", factor, 0.0, 1.0, closed="right")
        else:
            factor = check_real(owner, "factor", factor, 0.0)
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)
        object.__setattr__(self, "factor", factor)

    def steps(self, total_steps: int) -> tuple[int, int]:
        """``(start_step, end_step)``: the window is the optimizer steps ``start_step + 1
        .. end_step`` of a run of ``total_steps`` steps (at least one step).

        Raises
        ------
        ParameterError
            ``total_steps`` not a positive int.
        """
        total = check_int("Sabotage.steps", "total_steps", total_steps, 1)
        first = min(int(round(self.start * total)), total - 1)
        last = max(int(round(self.end * total)), first + 1)
        return first, min(last, total)

    def lr_factor(self, k: int, total_steps: int) -> float:
        """Multiplier of the scheduled learning rate after ``k`` optimizer steps.

        Parameters
        ----------
        k : int
            Optimizer steps already taken (the ``LambdaLR`` argument): step ``k + 1``
            runs with this multiplier.
        total_steps : int
            Steps of the run.

        Returns
        -------
        float
            1 outside the fault; ``factor`` inside an ``lr_spike`` or ``high_lr``
            window; for ``slowdown``, ``factor ** ((1 - cos(pi u)) / 2)`` with ``u``
            the position in the window (smooth in log scale from 1 to ``factor``,
            then ``factor`` to the end of the run); always 1 for the data kinds
            (``corrupt``, ``corrupt_ramp``).
        """
        first, last = self.steps(total_steps)
        if self.kind in DATA_KINDS or k < first:
            return 1.0
        if self.kind == "slowdown":
            return float(self.factor ** _ramp(k, first, last))
        return float(self.factor) if k < last else 1.0

    def corrupt_share(self, step: int, total_steps: int) -> float:
        """Share of the examples of optimizer step ``step`` (1-based) whose answers are
        shuffled: ``factor`` inside a ``corrupt`` window; for ``corrupt_ramp``,
        ``factor * (1 - cos(pi u)) / 2`` with ``u`` the position in the window, then
        ``factor`` to the end of the run; 0 otherwise."""
        if self.kind not in DATA_KINDS:
            return 0.0
        first, last = self.steps(total_steps)
        k = step - 1  # the same position convention as lr_factor
        if k < first:
            return 0.0
        if self.kind == "corrupt":
            return float(self.factor) if k < last else 0.0
        return float(self.factor * _ramp(k, first, last))

    def corrupts_step(self, step: int, total_steps: int) -> bool:
        """Whether any example of optimizer step ``step`` (1-based) is corrupted."""
        return self.corrupt_share(step, total_steps) > 0

    def to_dict(self, total_steps: int | None = None) -> dict:
        """``kind``, ``start``, ``end``, ``factor``; with ``total_steps``, also
        ``start_step`` and ``end_step`` (the window is steps ``start_step + 1 ..
        end_step``) and ``total_steps``."""
        out = {"kind": self.kind, "start": self.start, "end": self.end, "factor": self.factor}
        if total_steps is not None:
            first, last = self.steps(total_steps)
            out.update(start_step=first, end_step=last, total_steps=int(total_steps))
        return out

    def describe(self, total_steps: int) -> str:
        """One sentence for logs, e.g. ``"learning rate x20 over steps 101-110 of 200"``."""
        first, last = self.steps(total_steps)
        span = f"steps {first + 1}-{last} of {total_steps}"
        if self.kind == "corrupt":
            return f"answers shuffled in {self.factor:.0%} of the examples over {span}"
        if self.kind == "corrupt_ramp":
            return (f"share of examples with shuffled answers rising smoothly from 0 to "
                    f"{self.factor:.0%} over {span}" + (", then held" if last < total_steps
                                                        else ""))
        if self.kind == "slowdown":
            return (f"learning rate falling smoothly from x1 to x{self.factor:g} over {span}"
                    + (", then held" if last < total_steps else ""))
        return f"learning rate x{self.factor:g} over {span}"


def _ramp(k: int, first: int, last: int) -> float:
    """0 at ``k = first``, rising smoothly ((1 - cos(pi u)) / 2) to 1 at ``k = last``,
    then 1."""
    u = min(1.0, (k - first) / max(1, last - first))
    return (1.0 - math.cos(math.pi * u)) / 2.0


def shuffle_answers(samples: Iterable[TaskSample], *, share: float = 1.0,
                    seed: int | str = 0) -> Iterator[TaskSample]:
    """The samples with their answers replaced by the answer of the next sample.

    Prompts, families and levels are kept; sample ``i`` gets the answer of sample
    ``i + 1`` of the stream (another example drawn independently, so usually of
    another family or level: a wrong answer, though by chance it may coincide with the
    right one). With ``share < 1`` each sample is changed with that probability, drawn
    from a generator seeded by ``seed``. Lazy: one sample of look-ahead.

    Parameters
    ----------
    samples : iterable of TaskSample
        A stream (infinite streams are fine).
    share : float, default 1.0
        Probability that a sample's answer is replaced, in (0, 1].
    seed : int or str, default 0

    Yields
    ------
    TaskSample

    Examples
    --------
    >>> s = [TaskSample("add", 1, "1+2=", "3"), TaskSample("add", 1, "2+2=", "4"),
    ...      TaskSample("sort", 3, "s:ba=", "ab")]
    >>> [x.text for x in shuffle_answers(s)]
    ['1+2=4\\n', '2+2=ab\\n']
    """
    share = check_real("shuffle_answers", "share", share, 0.0, 1.0, closed="right")
    rng = random.Random(f"cod-demo-corrupt-{seed}")
    it = iter(samples)
    current = next(it, None)
    for nxt in it:
        if share >= 1.0 or rng.random() < share:
            yield TaskSample(current.family, current.level, current.prompt, nxt.answer)
        else:
            yield current
        current = nxt
