"""The one JSON-safety helper and the atomic file write, shared by every layer (private).

:func:`to_jsonable` turns what cod_monitor records hold (numpy scalars and arrays,
enums, paths, dataclasses, non-finite floats) into plain JSON values; every writer
(ladder files, journal, summary, trackers, HTML report) goes through it.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
from enum import Enum
from pathlib import Path

import numpy as np


def json_default(obj):
    """``json.dumps`` fallback: numpy scalars and arrays as Python values, else ``str``.

    ``default=str`` alone would write an ``np.int64`` or ``np.float32`` as a string.
    """
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def to_jsonable(x, *, nan=None, other=None):
    """A copy of ``x`` made of JSON values only, recursively.

    numpy scalars and arrays become Python numbers and lists, enums their ``value``,
    paths strings, dataclasses dicts, tuples lists; a non-finite float becomes ``nan``
    (``None`` by default: strict JSON has no NaN). Any other object becomes
    ``other(obj)`` when ``other`` is given (``str``, say), else it is returned as it is,
    for ``json.dumps`` to accept or refuse.
    """
    if isinstance(x, float):
        return x if math.isfinite(x) else nan
    if x is None or isinstance(x, (bool, int, str)):
        return x
    if isinstance(x, dict):
        return {str(k) if not isinstance(k, str) else k: to_jsonable(v, nan=nan, other=other) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_jsonable(v, nan=nan, other=other) for v in x]
    if isinstance(x, np.ndarray):
        return to_jsonable(x.tolist(), nan=nan)
    if isinstance(x, np.generic):
        return to_jsonable(x.item(), nan=nan)
    if isinstance(x, Enum):
        return to_jsonable(x.value, nan=nan, other=other)
    if isinstance(x, Path):
        return str(x)
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return to_jsonable(dataclasses.asdict(x), nan=nan, other=other)
    return x if other is None else other(x)


def atomic_write(path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` via a temporary file and a rename.

    Readers (and a process killed mid-write) never see half a file. ``str`` data is
    written as UTF-8. The file gets the permissions of a plain ``open(path, "w")``.
    """
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        # mkstemp makes the file 0600; summaries, ladders and reports are for reading
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
