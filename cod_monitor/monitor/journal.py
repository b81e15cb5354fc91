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
  it before appending again. ``os.fsync`` after each record makes a record durable
  once :meth:`Journal.append` returns, unless the disk refuses it (see below).
* One writer process and a few records per checkpoint need no transactions or
  locking, and a text file can be read with ``tail -f``, ``jq`` or ``grep`` while the
  run is live, and parsed without cod_monitor.

When the disk refuses a record
------------------------------
A write that fails (disk full, file size limit, I/O error) is cut back to the last
complete record, retried, and the record is kept in memory, in order, with every later
one: :meth:`Journal.append` never raises for it, so the monitor goes on submitting and
judging checkpoints. The kept records are written as soon as a write succeeds again
(at the latest by :meth:`Journal.close`). The first failure of a run of failures calls
``on_failure`` once (the monitor raises a ``JOURNAL_FAILING`` alert); what is still kept
at :meth:`Journal.close` is logged as an error, record by record.

Record kinds
------------
Every record has ``kind``, ``seq`` (0, 1, 2, ... per file) and ``time`` (Unix seconds).

``start``        ``run_info``, ``resumed``
``checkpoint``   ``step``, ``compute``, ``tokens``, ``params``, ``snapshot``,
                 ``benchmarks`` (the jobs submitted for it), ``path`` (the checkpoint
                 directory it was snapshotted from; null for a state dict). Written
                 before the snapshot is made, so a crash while making it leaves a
                 pending record that a resumed monitor completes.
``thinned``      ``step`` (a call of ``on_checkpoint`` that ``CheckpointConfig.every``
                 leaves out: the checkpoint is known, on purpose not evaluated)
``result``       ``step``, ``benchmark``, ``accuracy``, ``compute``, ``tokens``,
                 ``result`` (:meth:`EvalResult.to_dict`), ``attempts``, ``wall_s``
``decision``     ``step``, ``benchmark``, ``forecast``
                 (:meth:`ForecastPoint.to_dict` or null), ``drift`` (the DriftState after it), ``alert`` (reason or null);
                 with the run-conditioned forecast also ``run_forecast`` (the one-step
                 forecast it was judged against), ``run_drift`` (the surprise rule's
                 state), ``surprise`` (:class:`~cod_monitor.cod.conditioning.Surprise`),
                 ``final`` (:class:`~cod_monitor.records.FinalForecast`), ``forgotten``
                 (earlier checkpoints taken out of the update) and ``next`` (forecasts of
                 the pending checkpoints)
``failed``       ``step``, ``benchmark``, ``error``, ``attempts``
``skipped``      ``step``, ``benchmark``, ``reason`` (the queue policy dropped it)
``snapshot_deleted``  ``step``, ``snapshot``
``forecast``     ``benchmark``, ``version``, ``mode``, ``fingerprint``, ``report``
``alert``        :meth:`Alert.to_dict() <cod_monitor.records.Alert.to_dict>`
``error``        ``where``, ``error`` (a failure inside the monitor, e.g. a snapshot);
                 ``step`` when a checkpoint could not be taken (it stays unevaluated)
``drain``        ``seconds`` (how long closing waited for evaluations), ``timeout``,
                 ``unfinished`` (the ``[step, benchmark]`` pairs still pending at close;
                 the next monitor on this ``out_dir`` resubmits them)
``stopped``      ``step``, ``reason`` (the training loop stopped the run there, e.g.
                 on drift: :meth:`CODMonitor.note_stopped
                 <cod_monitor.monitor.CODMonitor.note_stopped>`)
``close``        ``summary``
"""

from __future__ import annotations

import errno
import json
import logging
import os
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cod_monitor._io import json_default, to_jsonable
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

#: Tries of one write before its record is kept in memory, and the pause after each
#: failed try: a full disk may free space in a moment, and the training thread (which
#: appends a checkpoint's record) must not wait long.
_WRITE_TRIES = 3
_RETRY_PAUSE_S = 0.05


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
    refused : set of int
        Steps whose checkpoint could not be taken (an ``error`` record with a step;
        its alert was raised then).
    thinned : set of int
        Steps that ``CheckpointConfig.every`` left out on purpose.
    stopped : dict or None
        The last ``stopped`` record (where and why the training loop stopped the run).
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
    refused: set = field(default_factory=set)
    thinned: set = field(default_factory=set)
    stopped: dict | None = None
    n_records: int = 0
    resumed: bool = False

    @property
    def known_steps(self) -> set:
        """Steps submitted at some point (pending, evaluated, failed or skipped)."""
        return set(self.checkpoints)

    @property
    def recorded_steps(self) -> set:
        """Steps the journal has any record of: submitted, refused or thinned.

        A checkpoint on disk whose step is not among them was never seen by the
        monitor (e.g. the process died between saving it and handing it over).
        """
        return set(self.checkpoints) | self.refused | self.thinned

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
    on_failure : callable, optional
        ``on_failure(error)`` with the ``OSError`` of the first write the disk refuses
        after a success (once per run of failures, not once per record); called on
        the appending thread, outside the journal's lock, and must not block.

    Attributes
    ----------
    path : Path
    n_unwritten : int
        Records the disk refused so far that are kept in memory (see the module
        docstring); 0 while writes succeed.

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

    def __init__(self, path, *, fsync: bool = True,
                 on_failure: Callable[[OSError], None] | None = None):
        self.path = Path(path)
        self.fsync = fsync
        self.on_failure = on_failure
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._seq = 0
        self._size = 0  # bytes of complete records in the file
        self._unwritten: list[bytes] = []  # refused by the disk, oldest first
        self._failing = False
        self._torn = False  # a failed write could not be cut back: end it with a newline

    @property
    def n_unwritten(self) -> int:
        """Records kept in memory because the disk refused them."""
        with self._lock:
            return len(self._unwritten)

    def open(self) -> Journal:
        """Open for appending (idempotent); repairs a torn last line."""
        with self._lock:
            self._open()
        return self

    def _open(self) -> None:
        """:meth:`open`, holding the lock."""
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        existed = self.path.exists()
        self._seq = len(read_journal(self.path)) if existed else 0
        if existed:
            self._truncate_torn_tail()
        # unbuffered: a refused write is known at once and cut back (see _write)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        self._size = os.fstat(self._fd).st_size
        if not existed and self.fsync:
            self._fsync_dir()

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
        """Write one record durably; never raises when the disk refuses it.

        Parameters
        ----------
        kind : str
            Record kind (see the module docstring).
        **fields
            JSON-serialisable values (numpy scalars and arrays are converted; a
            non-finite float is written as null).

        Returns
        -------
        dict
            The record (with ``kind``, ``seq`` and ``time``), written or, when the
            disk refused it, kept in memory to be written later.

        Raises
        ------
        OSError
            The journal file cannot be opened (at the first append, when
            :meth:`open` was not called).
        """
        with self._lock:
            self._open()
            rec = {"kind": kind, "seq": self._seq, "time": round(time.time(), 3), **fields}
            self._seq += 1
            self._unwritten.append(_encode(rec))
            error = self._write_unwritten()
            first_failure = error is not None and not self._failing
            self._failing = error is not None
        if first_failure:
            logger.warning("journal %s: the disk refused a record (%s); it is kept in memory "
                           "and written when writes succeed again", self.path, error)
            if self.on_failure is not None:
                try:
                    self.on_failure(error)
                except Exception:
                    logger.warning("journal on_failure callback raised", exc_info=True)
        return rec

    def _write_unwritten(self) -> OSError | None:
        """Write the kept records in order, trying a few times; the last error or None.

        Holds the lock. A record leaves the list only once it is entirely in the file.
        While the disk is known to refuse writes, one try per append is enough: the
        pauses are for a passing failure, and would slow every append of a lasting one.
        """
        was_failing = self._failing
        n_kept = len(self._unwritten)
        error = None
        for attempt in range(1 if was_failing else _WRITE_TRIES):
            if attempt:
                time.sleep(_RETRY_PAUSE_S)
            try:
                while self._unwritten:
                    self._write(self._unwritten[0])
                    del self._unwritten[0]
                if self.fsync:
                    os.fsync(self._fd)
                if was_failing:
                    logger.warning("journal %s: writes succeed again; the %d record(s) kept in "
                                   "memory are written", self.path, n_kept)
                return None
            except OSError as exc:
                error = exc
        return error

    def _write(self, line: bytes) -> None:
        """Append one whole line, or cut the file back to its last complete record."""
        data = (b"\n" + line) if self._torn else line
        view = memoryview(data)
        try:
            while view:
                written = os.write(self._fd, view)
                if not written:  # never for a regular file; never loop on it either
                    raise OSError(errno.EIO, "the journal write made no progress")
                view = view[written:]
        except OSError:
            # a partial line would merge with the next record and make both unreadable
            try:
                os.ftruncate(self._fd, self._size)
            except OSError:
                self._torn = True  # the next write starts with a newline instead
            raise
        if self._torn:
            self._torn = False
            self._size = os.fstat(self._fd).st_size
        else:
            self._size += len(data)

    def records(self) -> list[dict]:
        """Every complete record so far: those on disk (re-read), then those the disk
        refused and that are kept in memory."""
        with self._lock:
            kept = list(self._unwritten)
        return read_journal(self.path) + [json.loads(line) for line in kept]

    def replay(self) -> JournalState:
        """Fold the records into a :class:`JournalState`."""
        return replay_records(self.records())

    def close(self) -> None:
        """Write what the disk refused so far, if it now can, and close; idempotent.

        Records still refused are logged as errors (kind, step and benchmark of each):
        a monitor resumed from this journal will not know them.
        """
        with self._lock:
            if self._fd is None:
                return
            error = self._write_unwritten() if self._unwritten else None
            if error is not None:
                lost = [json.loads(line) for line in self._unwritten]
                logger.error(
                    "journal %s: %d record(s) could not be written (%s) and are lost from it: %s",
                    self.path, len(lost), error,
                    "; ".join(f"{r['kind']} step={r.get('step')} benchmark={r.get('benchmark')}"
                              for r in lost))
                self._unwritten.clear()
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Journal:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()


def _encode(rec: dict) -> bytes:
    """One record as a JSON line; a value strict JSON refuses (NaN, inf) becomes null."""
    try:
        line = json.dumps(rec, default=json_default, separators=(",", ":"), allow_nan=False)
    except ValueError:
        line = json.dumps(to_jsonable(rec, other=str), separators=(",", ":"), allow_nan=False)
    return line.encode("utf-8") + b"\n"


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
        elif kind == "error" and rec.get("step") is not None:
            st.refused.add(int(rec["step"]))
        elif kind == "thinned":
            st.thinned.add(int(rec["step"]))
        elif kind == "stopped":
            st.stopped = rec
    return st
