"""Option readers shared by the ``cod-monitor`` sub-commands (private)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from cod_monitor.exceptions import LadderValidationError
from cod_monitor.ladder.storage import LADDER_JSON, SCORES_CSV, SCORES_CSV_GZ

__all__ = ["check_compute_unit", "parse_pairs", "read_json_option", "refuse_overwrite", "unescape"]

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\"}


def check_compute_unit(value: float) -> None:
    """Refuse a ``--compute-unit`` that is not a positive, finite number of FLOPs.

    Raises
    ------
    LadderValidationError
        Naming the flag, the value and the fix.
    """
    if not (math.isfinite(value) and value > 0):
        raise LadderValidationError(
            "--compute-unit", value, "Give --compute-unit (the ladder's compute_unit) as a "
            "positive number of FLOPs, e.g. 1e18.")


def read_json_option(value: str, flag: str, what: str):
    """The JSON an option gives: inline text (starting with ``{`` or ``[``) or a file.

    Parameters
    ----------
    value : str
        The option's value.
    flag : str
        The option, for the error (e.g. ``'--evaluator'``).
    what : str
        What the JSON describes, for the error (e.g. ``'the evaluator config'``).

    Returns
    -------
    object
        The parsed JSON.

    Raises
    ------
    LadderValidationError
        No such file, or invalid JSON.
    """
    text = value.strip()
    if not text.startswith(("{", "[")):
        path = Path(value)
        if not path.is_file():
            raise LadderValidationError(
                flag, value, f"Give {what} as JSON text (starting with '{{') or the path of a "
                "JSON file; no such file.")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise LadderValidationError(flag, value, f"Give a readable UTF-8 JSON file ({exc}).") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise LadderValidationError(flag, value, f"Fix the JSON of {what} ({exc}).") from None


def unescape(value: str) -> str:
    r"""``\n``, ``\t``, ``\r`` and ``\\`` in a command-line value as the characters.

    A shell passes ``--stop '\n'`` as a backslash and an ``n``; a stop marker is far
    more often a newline. Other backslashes are kept.

    Examples
    --------
    >>> unescape(r"\n") == "\n", unescape(r"a\\b"), unescape(r"\d")
    (True, 'a\\b', '\\d')
    """
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m[1], m[0]), value)


def refuse_overwrite(out, force: bool) -> None:
    """Refuse an ``--out`` directory that holds a ladder, unless ``--force``.

    Raises
    ------
    LadderValidationError
        ``out`` holds ``ladder.json`` or a scores file and ``force`` is false.
    """
    held = [name for name in (LADDER_JSON, SCORES_CSV, SCORES_CSV_GZ)
            if (Path(out) / name).exists()]
    if held and not force:
        raise LadderValidationError(
            "--out", str(out), f"It already holds a ladder ({', '.join(held)}); pass --force "
            "to overwrite it, or choose another --out directory."
        )


def parse_pairs(values: list[str], flag: str, form: str = "ours=theirs") -> dict[str, str]:
    """Parse repeated ``KEY=VALUE`` options into a dict.

    Parameters
    ----------
    values : list of str
        The option values.
    flag : str
        The option, for error messages (e.g. ``"--map"``).
    form : str, default 'ours=theirs'
        The expected shape, for error messages.

    Returns
    -------
    dict of str to str

    Raises
    ------
    LadderValidationError
        A value without ``=``, with an empty side, or repeating a key.
    """
    out: dict[str, str] = {}
    for value in values:
        key, sep, val = value.partition("=")
        key, val = key.strip(), val.strip()
        if not sep or not key or not val:
            raise LadderValidationError(flag, value, f"Use {flag} {form}.")
        if key in out:
            raise LadderValidationError(flag, value, f"Give {key!r} once.")
        out[key] = val
    return out
