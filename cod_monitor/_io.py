"""Small file helpers shared by the ladder store, the monitor and the trackers."""

from __future__ import annotations

import os
import tempfile
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
