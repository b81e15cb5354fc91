"""The monitor's durable journal: append-only JSON lines, flushed and fsync'd.

Every checkpoint submitted for evaluation, every result (with its per-sample pass
rates), every drift decision, forecast version and alert is one line of
``out_dir/journal.jsonl``. A restarted monitor replays the file (:meth:`Journal.replay`)
to resume exactly: no step evaluated twice, no observation lost, pending jobs
resubmitted.

Why JSON lines rather than SQLite
---------------------------------
* The writer appends and never rewrites, so a crash can at worst leave a torn last
  line; :func:`read_journal` drops it (with a warning) and :class:`Journal` truncates
  it before appending again. ``flush`` + ``os.fsync`` after each record makes a record
  durable once :meth:`Journal.append` returns.
* One writer process and a few records per checkpoint need no transactions or
  locking, and a text file can be read with ``tail -f``, ``jq`` or ``grep`` while the
  run is live, and parsed without cod_monitor.

Record kinds
------------
Every record has ``kind``, ``seq`` (0, 1, 2, ... per file) and ``time`` (Unix seconds).

``start``        ``run_info``, ``resumed``
``checkpoint``   ``step``, ``compute``, ``tokens``, ``params``, ``snapshot``,
                 ``benchmarks`` (the jobs submitted for it)
``result``       ``step``, ``benchmark``, ``accuracy``, ``compute``, ``tokens``,
                 ``result`` (:meth:`EvalResult.to_dict`), ``attempts``, ``wall_s``
``decision``     ``step``, ``benchmark``, ``forecast``
                 (:meth:`ForecastPoint.to_dict` or null), ``drift`` (the DriftState after it), ``alert`` (reason or null)
``failed``       ``step``, ``benchmark``, ``error``, ``attempts``
``skipped``      ``step``, ``benchmark``, ``reason`` (the queue policy dropped it)
``snapshot_deleted``  ``step``, ``snapshot``
``forecast``     ``benchmark``, ``version``, ``mode``, ``fingerprint``, ``report``
``alert``        :meth:`Alert.to_dict() <cod_monitor.records.Alert.to_dict>`
``error``        ``where``, ``error`` (a failure inside the monitor, e.g. a snapshot)
``close``        ``summary``
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from cod_monitor._io import json_default
from cod_monitor.records import Observation

__all__ = [
    "JOURNAL_NAME",
    "Journal",
    "JournalState",
    "JournalWarning",
    "read_journal",
    "replay_records",
]

logger = logging.getLogger(__name__)

#: File name of the journal inside the monitor's output directory.
JOURNAL_NAME = "journal.jsonl"

_TERMINAL = ("result", "failed", "skipped")


class JournalWarning(UserWarning):
    """The journal had a torn or unreadable line, which was skipped."""


def read_journal(path) -> list[dict]:
    """All complete records of a journal file, in order.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    list of dict
        Empty when the file does not exist.

    Warns
    -----
    JournalWarning
        A line that is not valid JSON (a torn last line after a crash) is skipped.
    """
    path = Path(path)
    if not path.exists():
        return []
    records = []
    with open(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            torn = i == len(lines) - 1
            warnings.warn(
                f"{path}:{i + 1}: skipped an unreadable journal line"
                + (" (torn by a crash while writing)" if torn else ""),
                JournalWarning,
                stacklevel=2,
            )
            continue
        if isinstance(rec, dict) and "kind" in rec:
            records.append(rec)
    return records


@dataclass
class JournalState:
    """What a replayed journal says about a monitored run.

    Attributes
    ----------
    checkpoints : dict of int to dict
        ``checkpoint`` record of every step ever submitted.
    status : dict of (int, str) to str
        ``'pending'``, ``'result'``, ``'failed'`` or ``'skipped'`` per (step, benchmark).
    results : dict of (int, str) to dict
        The ``result`` record of every evaluated (step, benchmark).
    decisions : dict of (int, str) to dict
        The ``decision`` record of every judged (step, benchmark).
    drift : dict of str to dict
        Last drift state per benchmark.
    forecasts : dict of str to dict
        Last ``forecast`` record per benchmark.
    alerts : list of dict
    deleted : set of int
        Steps whose snapshot was deleted.
    n_records : int
    resumed : bool
        Whether the journal held any record before.
    """

    checkpoints: dict = field(default_factory=dict)
    status: dict = field(default_factory=dict)
    results: dict = field(default_factory=dict)
    decisions: dict = field(default_factory=dict)
    drift: dict = field(default_factory=dict)
    forecasts: dict = field(default_factory=dict)
    alerts: list = field(default_factory=list)
    deleted: set = field(default_factory=set)
    n_records: int = 0
    resumed: bool = False

    @property
    def known_steps(self) -> set:
        """Steps submitted at some point (pending, evaluated, failed or skipped)."""
        return set(self.checkpoints)

    @property
    def pending(self) -> list[tuple[int, str]]:
        """(step, benchmark) pairs submitted without a result, failure or skip, by step."""
        return sorted(k for k, v in self.status.items() if v == "pending")

    @property
    def undecided(self) -> list[tuple[int, str]]:
        """(step, benchmark) pairs with a result but no drift decision yet, by step."""
        return sorted(k for k in self.results if k not in self.decisions)

    def observations(self, *, with_results: bool = True) -> list[Observation]:
        """Every evaluated checkpoint, by step then benchmark.

        Parameters
        ----------
        with_results : bool, default True
            Attach the per-sample :class:`~cod_monitor.records.EvalResult`; without
            it the observations are light (what a resumed monitor keeps in memory).
        """
        return [self.observation(key, with_results=with_results) for key in sorted(self.results)]

    def observation(self, key: tuple[int, str], *, with_results: bool = True) -> Observation:
        """The observation of the ``result`` record of ``key`` = (step, benchmark)."""
        rec = self.results[key]
        if not with_results:
            rec = {k: v for k, v in rec.items() if k != "result"}
        return Observation.from_dict(rec)


class Journal:
    """Append-only JSON-lines journal with one fsync per record.

    Parameters
    ----------
    path : str or path-like
        The journal file (created with its directory if missing).
    fsync : bool, default True
        ``os.fsync`` after every record. Turn off only for throw-away runs.

    Attributes
    ----------
    path : Path

    Notes
    -----
    Thread-safe: the monitor's threads append concurrently. One process should own
    a journal at a time (the monitor's output directory is per run).

    Examples
    --------
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> with Journal(os.path.join(d, "journal.jsonl")) as j:
    ...     _ = j.append("checkpoint", step=10, benchmarks=["gsm8k"])
    >>> Journal(os.path.join(d, "journal.jsonl")).replay().pending
    [(10, 'gsm8k')]
    """

    def __init__(self, path, *, fsync: bool = True):
        self.path = Path(path)
        self.fsync = fsync
        self._lock = threading.Lock()
        self._file = None
        self._seq = 0

    def open(self) -> Journal:
        """Open for appending (idempotent); repairs a torn last line."""
        with self._lock:
            if self._file is not None:
                return self
            self.path.parent.mkdir(parents=True, exist_ok=True)
            existed = self.path.exists()
            self._seq = len(read_journal(self.path)) if existed else 0
            if existed:
                self._truncate_torn_tail()
            self._file = open(self.path, "ab")
            if not existed and self.fsync:
                self._fsync_dir()
        return self

    def _truncate_torn_tail(self):
        with open(self.path, "rb+") as f:
            data = f.read()
            if not data or data.endswith(b"\n"):
                return
            cut = data.rfind(b"\n") + 1
            f.truncate(cut)
            f.flush()
            os.fsync(f.fileno())
        logger.warning("journal %s: dropped a torn last line left by a crash", self.path)

    def _fsync_dir(self):
        try:
            fd = os.open(self.path.parent, os.O_RDONLY)
        except OSError:  # pragma: no cover - platforms without directory fds
            return
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def append(self, kind: str, **fields) -> dict:
        """Write one record durably.

        Parameters
        ----------
        kind : str
            Record kind (see the module docstring).
        **fields
            JSON-serialisable values (numpy scalars and arrays are converted).

        Returns
        -------
        dict
            The record as written (with ``kind``, ``seq`` and ``time``).
        """
        if self._file is None:
            self.open()
        with self._lock:
            rec = {"kind": kind, "seq": self._seq, "time": round(time.time(), 3), **fields}
            line = json.dumps(rec, default=json_default, separators=(",", ":"), allow_nan=False)
            self._file.write(line.encode("utf-8") + b"\n")
            self._file.flush()
            if self.fsync:
                os.fsync(self._file.fileno())
            self._seq += 1
        return rec

    def records(self) -> list[dict]:
        """Every complete record written so far (re-read from disk)."""
        return read_journal(self.path)

    def replay(self) -> JournalState:
        """Fold the records into a :class:`JournalState`."""
        return replay_records(self.records())

    def close(self) -> None:
        """Close the file; idempotent."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def __enter__(self) -> Journal:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()


def replay_records(records: list[dict]) -> JournalState:
    """Fold journal records into a :class:`JournalState` (see :meth:`Journal.replay`)."""
    st = JournalState(n_records=len(records), resumed=bool(records))
    for rec in records:
        kind = rec.get("kind")
        if kind == "checkpoint":
            step = int(rec["step"])
            st.checkpoints[step] = rec
            for b in rec.get("benchmarks", ()):
                st.status.setdefault((step, b), "pending")
        elif kind in _TERMINAL:
            key = (int(rec["step"]), rec["benchmark"])
            if st.status.get(key) in _TERMINAL:
                continue  # the first terminal record wins; never count a step twice
            st.status[key] = kind
            if kind == "result":
                st.results[key] = rec
        elif kind == "decision":
            key = (int(rec["step"]), rec["benchmark"])
            st.decisions[key] = rec
            if rec.get("drift") is not None:
                st.drift[rec["benchmark"]] = rec["drift"]
        elif kind == "forecast":
            st.forecasts[rec["benchmark"]] = rec
        elif kind == "alert":
            st.alerts.append(rec)
        elif kind == "snapshot_deleted":
            st.deleted.add(int(rec["step"]))
    return st
