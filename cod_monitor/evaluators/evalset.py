"""Evaluation sets: prompts, reference answers and the scorer that compares them.

An :class:`EvalSet` is what an :class:`~cod_monitor.evaluators.base.Evaluator` runs a
checkpoint on. On disk it is a JSON-lines file, one sample per line::

    {"id": "add-0001", "prompt": "12+7=", "answer": "19"}

Fields other than ``id``, ``prompt`` and ``answer`` are kept in
:attr:`EvalSample.meta`. The scorer and the stop marker belong to the set, not to the
file, and are passed to :meth:`EvalSet.from_jsonl`.

Every scorer (:mod:`~cod_monitor.evaluators.scoring`) sees the completion *cut at the
stop marker*: the text generated after the prompt, up to (not including) the first
occurrence of :attr:`EvalSet.stop`.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from cod_monitor.evaluators.base import EvalSetValidationError
from cod_monitor.evaluators.scoring import ScorerSpec, cut_at_stop, parse_number, resolve_scorer
from cod_monitor.exceptions import MissingExtraError

__all__ = ["EvalSample", "EvalSet"]


# --------------------------------------------------------------------------- samples


@dataclass(frozen=True)
class EvalSample:
    """One prompt with its reference answer.

    Attributes
    ----------
    id : str
        Unique id within the set (the ladder's ``sample_id``).
    prompt : str
        Text the model continues.
    answer : str
        Reference answer, as the model should write it right after the prompt.
    meta : dict
        Any other fields of the record (difficulty, task family, ...).
    """

    id: str
    prompt: str
    answer: str
    meta: dict = field(default_factory=dict, compare=True)

    def to_record(self) -> dict:
        """The sample as one JSON-lines record: ``id``, ``prompt``, ``answer``, then ``meta``."""
        return {"id": self.id, "prompt": self.prompt, "answer": self.answer, **self.meta}


@dataclass(frozen=True)
class EvalSet:
    """A named set of :class:`EvalSample` plus a scorer and a stop marker.

    Build one with :meth:`from_jsonl`, :meth:`from_records` or
    :meth:`from_lm_eval_task`; the constructor validates its arguments.

    Parameters
    ----------
    name : str
        Name of the set (the benchmark in the ladder).
    samples : tuple of EvalSample
        The samples, in order. Ids must be unique, prompts non-empty.
    scorer : str or callable, default='exact'
        How a completion (cut at `stop`) is compared with the answer:

        - ``'exact'``: ``completion == answer``;
        - ``'normalized'``: equal after lower-casing and removing punctuation and
          extra whitespace (:func:`normalize_text`);
        - ``'last_number'``: the last number in the completion equals the answer
          numerically (answers must be numbers);
        - ``'regex:<pattern>'``: the first match (its first group if the pattern has
          one) equals the answer, both stripped;
        - a callable ``(completion, answer) -> bool``.
    stop : str or None, default=None
        Stop marker that follows the answer (e.g. ``"\\n"`` or ``"."``). Sampled
        completions are cut at its first occurrence; ``exact`` mode scores the answer
        followed by it. ``None`` means the answer is followed by the end-of-sequence
        token. An answer must not contain the stop marker.

    Attributes
    ----------
    ids : tuple of str
        Sample ids in order.

    Raises
    ------
    EvalSetValidationError
        No samples, duplicate ids, empty prompt, unknown scorer, non-numeric answer with
        ``'last_number'``, or an answer containing the stop marker.

    Examples
    --------
    >>> es = EvalSet.from_records(
    ...     [{"id": "a", "prompt": "1+1=", "answer": "2"}], name="add", stop="\\n")
    >>> len(es), es.ids, es.score("2\\nmore", "2")
    (1, ('a',), True)
    """

    name: str
    samples: tuple
    scorer: ScorerSpec = "exact"
    stop: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "samples", tuple(self.samples))
        if not isinstance(self.name, str) or not self.name:
            raise EvalSetValidationError("name", self.name, "Give the eval set a non-empty name.")
        if self.stop is not None and not isinstance(self.stop, str):
            raise EvalSetValidationError("stop", self.stop, "Pass the stop marker as a string or None.")
        if self.stop == "":
            object.__setattr__(self, "stop", None)
        resolve_scorer(self.scorer, where=f"eval set {self.name!r}")
        if not self.samples:
            raise EvalSetValidationError(
                "samples", (), "Give the eval set at least one sample.", where=f"eval set {self.name!r}"
            )
        seen: dict[str, int] = {}
        for i, s in enumerate(self.samples):
            where = f"eval set {self.name!r}, sample {i}"
            if not isinstance(s, EvalSample):
                raise EvalSetValidationError(
                    "samples", type(s).__name__, "Pass EvalSample objects (or use EvalSet.from_records).", where
                )
            if s.id in seen:
                raise EvalSetValidationError(
                    "id", s.id, f"Ids must be unique; it is also the id of sample {seen[s.id]}.", where
                )
            seen[s.id] = i
            if not s.prompt:
                raise EvalSetValidationError("prompt", s.prompt, "Give every sample a non-empty prompt.", where)
            if self.stop and self.stop in s.answer:
                raise EvalSetValidationError(
                    "answer", s.answer,
                    f"The answer contains the stop marker {self.stop!r}, so no cut completion can match it; "
                    "choose a stop marker that never occurs inside an answer.", where,
                )
            if self.scorer == "last_number" and parse_number(s.answer.strip()) is None:
                raise EvalSetValidationError(
                    "answer", s.answer, "Scorer 'last_number' needs numeric answers; use another scorer.", where
                )

    # -- container protocol
    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[EvalSample]:
        return iter(self.samples)

    def __getitem__(self, i: int) -> EvalSample:
        return self.samples[i]

    @property
    def ids(self) -> tuple:
        """Sample ids, in order."""
        return tuple(s.id for s in self.samples)

    @property
    def prompts(self) -> list:
        """Prompts, in order."""
        return [s.prompt for s in self.samples]

    @property
    def answers(self) -> list:
        """Reference answers, in order."""
        return [s.answer for s in self.samples]

    @property
    def scorer_name(self) -> str:
        """The scorer's name (a callable's ``__qualname__``)."""
        if isinstance(self.scorer, str):
            return self.scorer
        return getattr(self.scorer, "__qualname__", repr(self.scorer))

    # -- scoring
    def score(self, completion: str, answer: str) -> bool:
        """Score one completion: cut it at :attr:`stop`, then apply the scorer.

        Parameters
        ----------
        completion : str
            Text generated after the prompt (stop marker and beyond included or not).
        answer : str
            The reference answer.

        Returns
        -------
        bool
        """
        return bool(resolve_scorer(self.scorer)(cut_at_stop(completion, self.stop), answer))

    def count_correct(self, completions: Iterable[Iterable[str]]) -> list:
        """Number of correct completions per sample.

        Parameters
        ----------
        completions : iterable of iterables of str
            For each sample, in order, its sampled completions.

        Returns
        -------
        list of int
        """
        fn = resolve_scorer(self.scorer)
        out = []
        for s, comps in zip(self.samples, completions, strict=True):
            out.append(sum(bool(fn(cut_at_stop(c, self.stop), s.answer)) for c in comps))
        return out

    # -- builders
    @classmethod
    def from_records(
        cls,
        records: Iterable[Mapping[str, Any]],
        *,
        name: str,
        scorer: ScorerSpec = "exact",
        stop: str | None = None,
        where: str | None = None,
    ) -> EvalSet:
        """Build a set from mappings with keys ``id``, ``prompt``, ``answer`` (+ extras).

        Numeric ids and answers are converted to ``str``; other keys go to ``meta``.

        Parameters
        ----------
        records : iterable of mapping
        name : str
        scorer : str or callable, default='exact'
        stop : str or None, default=None
        where : str, optional
            Source named in error messages (e.g. the file).

        Returns
        -------
        EvalSet

        Raises
        ------
        EvalSetValidationError
            A missing or non-scalar ``id``/``prompt``/``answer`` and anything the
            constructor rejects.
        """
        samples = []
        for i, rec in enumerate(records):
            loc = f"{where or 'records'}, record {i}"
            if not isinstance(rec, Mapping):
                raise EvalSetValidationError("record", rec, "Each record must be a JSON object.", loc)
            vals = {}
            for key in ("id", "prompt", "answer"):
                v = rec.get(key)
                if v is None:
                    raise EvalSetValidationError(
                        key, v, f"Give every record a {key!r} field.", loc
                    )
                if isinstance(v, bool) or not isinstance(v, (str, int, float)):
                    raise EvalSetValidationError(key, v, f"Make {key!r} a string.", loc)
                vals[key] = v if isinstance(v, str) else str(v)
            meta = {k: v for k, v in rec.items() if k not in ("id", "prompt", "answer")}
            samples.append(EvalSample(vals["id"], vals["prompt"], vals["answer"], meta))
        return cls(name=name, samples=tuple(samples), scorer=scorer, stop=stop)

    @classmethod
    def from_jsonl(
        cls,
        path: str | os.PathLike,
        *,
        name: str | None = None,
        scorer: ScorerSpec = "exact",
        stop: str | None = None,
    ) -> EvalSet:
        """Read a JSON-lines file of ``{id, prompt, answer, ...}`` records.

        Parameters
        ----------
        path : path-like
        name : str, optional
            Defaults to the file name without its extension.
        scorer, stop : see :class:`EvalSet`.

        Returns
        -------
        EvalSet
            The records in file order; blank lines are skipped.

        Raises
        ------
        EvalSetValidationError
            Invalid JSON (with the line number) or an invalid record.
        FileNotFoundError
            No file at ``path``.
        """
        path = os.fspath(path)
        if name is None:
            name = os.path.basename(path).split(".")[0] or "evalset"
        if not os.path.isfile(path):
            # FileNotFoundError as open() would raise it, with the fix in its message
            what = "is a directory, not" if os.path.isdir(path) else "does not exist; give"
            raise FileNotFoundError(errno.ENOENT, f"The evaluation set {path!r} {what} a "
                                    "JSON-lines file of {id, prompt, answer} records", path)
        records = []
        with open(path, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise EvalSetValidationError(
                        "line", line.strip()[:80], f"Make every line one JSON object ({exc.msg}).",
                        where=f"{path}:{lineno}",
                    ) from None
        return cls.from_records(records, name=name, scorer=scorer, stop=stop, where=path)

    def to_jsonl(self, path: str | os.PathLike) -> None:
        """Write the samples as JSON lines (``meta`` fields inlined).

        The scorer and stop marker are not written; pass them again to
        :meth:`from_jsonl`.
        """
        with open(os.fspath(path), "w", encoding="utf-8") as fh:
            for s in self.samples:
                fh.write(json.dumps(s.to_record(), ensure_ascii=False) + "\n")

    def to_dict(self) -> dict:
        """Plain-Python view, for shipping to worker processes as JSON.

        Raises
        ------
        TypeError
            The scorer is a callable (pickle the set instead).
        """
        if not isinstance(self.scorer, str):
            raise TypeError(
                f"EvalSet {self.name!r} has a callable scorer that JSON cannot carry; pickle the EvalSet instead."
            )
        return {
            "name": self.name,
            "scorer": self.scorer,
            "stop": self.stop,
            "samples": [s.to_record() for s in self.samples],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EvalSet:
        """Inverse of :meth:`to_dict`."""
        return cls.from_records(d["samples"], name=d["name"], scorer=d.get("scorer", "exact"), stop=d.get("stop"))

    @classmethod
    def from_lm_eval_task(
        cls,
        task_name: str,
        *,
        limit: int | None = None,
        split: str | None = None,
        scorer: ScorerSpec = "exact",
        stop: str | None = None,
        doc_to_answer: Callable[[Any], str] | None = None,
        task_manager: Any = None,
    ) -> EvalSet:
        """Build a set from an lm-evaluation-harness task (requires ``lm_eval``).

        The prompt is ``doc_to_text(doc)`` and the answer is the task's
        ``target_delimiter`` followed by ``doc_to_target(doc)`` (an integer target of
        a multiple-choice task is mapped through ``doc_to_choice``): the same
        context/continuation split lm-eval scores log-likelihoods on, so ``exact``
        mode matches lm-eval's tokenisation.

        Parameters
        ----------
        task_name : str
            An lm-eval task name (e.g. ``"gsm8k"``); groups are not supported.
        limit : int, optional
            Keep only the first `limit` documents.
        split : {'test', 'validation', 'train'}, optional
            Split to read; default: the task's evaluation split (test if present,
            else validation).
        scorer : str or callable, default='exact'
        stop : str, optional
            Default: the first ``until`` string of the task's ``generation_kwargs``,
            else ``"\\n"``.
        task_manager : lm_eval.tasks.TaskManager, optional
            Reused if given (building one indexes every task, which takes seconds).

        Returns
        -------
        EvalSet
            Ids are ``"<task>/<index>"``; ``meta`` holds the document index.

        Raises
        ------
        MissingExtraError
            ``lm_eval`` is not installed.
        EvalSetValidationError
            Unknown split, or a task without documents in it.

        Notes
        -----
        Datasets are fetched by lm-eval itself (``datasets``), from its cache or the
        hub; nothing here downloads anything else.
        """
        MissingExtraError.check("EvalSet.from_lm_eval_task", "lm_eval", "lmeval")
        from lm_eval.tasks import TaskManager, get_task_dict

        tm = task_manager if task_manager is not None else TaskManager()
        task_dict = get_task_dict([task_name], tm)
        task = _first_task(task_dict)
        if task is None:
            raise EvalSetValidationError("task_name", task_name, "Pass a single lm-eval task, not a group.")

        if split is None:
            docs = task.eval_docs
            docs = docs() if callable(docs) else docs
        else:
            getter = {"test": "test_docs", "validation": "validation_docs", "train": "training_docs"}.get(split)
            if getter is None:
                raise EvalSetValidationError("split", split, "Use 'test', 'validation' or 'train'.")
            docs = getattr(task, getter)()
            if docs is None:
                raise EvalSetValidationError("split", split, f"Task {task_name!r} has no {split} split.")
        config = getattr(task, "config", None)
        delim = getattr(config, "target_delimiter", " ") if config is not None else " "
        if stop is None:
            gen = getattr(config, "generation_kwargs", None) or {}
            until = gen.get("until") if isinstance(gen, Mapping) else None
            if isinstance(until, str):
                until = [until]
            stop = until[0] if until else "\n"

        records = []
        for i, doc in enumerate(docs):
            if limit is not None and i >= limit:
                break
            prompt = task.doc_to_text(doc)
            if doc_to_answer is not None:
                records.append({"id": f"{task_name}/{i}", "prompt": str(prompt), "answer": str(doc_to_answer(doc)),
                                "doc_index": i})
                continue
            target = task.doc_to_target(doc)
            if isinstance(target, int) and not isinstance(target, bool) and hasattr(task, "doc_to_choice"):
                choices = task.doc_to_choice(doc)
                if isinstance(choices, (list, tuple)) and 0 <= target < len(choices):
                    target = choices[target]
            if isinstance(target, (list, tuple)):
                target = target[0]
            answer = (delim or "") + str(target)
            records.append({"id": f"{task_name}/{i}", "prompt": str(prompt), "answer": answer, "doc_index": i})
        if not records:
            raise EvalSetValidationError("task_name", task_name, "The task yielded no documents; check split/limit.")
        return cls.from_records(records, name=task_name, scorer=scorer, stop=stop, where=f"lm-eval task {task_name!r}")


def _first_task(task_dict: Any) -> Any:
    """The first leaf Task in a (possibly nested) lm-eval task dict."""
    if hasattr(task_dict, "doc_to_text"):
        return task_dict
    if isinstance(task_dict, Mapping):
        for v in task_dict.values():
            t = _first_task(v)
            if t is not None:
                return t
    return None
