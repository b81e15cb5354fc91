"""Docstring pieces shared by several estimators (private).

:func:`fill_doc` replaces ``{name}`` placeholders in a class or function docstring
with the pieces given, so that a parameter described the same way in several
estimators is written once. Only the named placeholders are replaced: the rest of the
docstring (math with braces included) is left as it is.
"""

from __future__ import annotations

__all__ = ["fill_doc"]


def fill_doc(**pieces: str):
    """Decorator: put each ``pieces[name]`` where the docstring says ``{name}``.

    Parameters
    ----------
    **pieces : str
        Placeholder name -> text, already indented as the docstring needs it (its
        first line is inserted after the placeholder's own indentation).

    Returns
    -------
    callable
        The decorator; it returns the object with its ``__doc__`` filled.

    Raises
    ------
    KeyError
        A piece whose placeholder the docstring does not hold.
    """

    def decorate(obj):
        doc = obj.__doc__
        for name, text in pieces.items():
            key = "{" + name + "}"
            if key not in doc:
                raise KeyError(f"{obj.__qualname__}'s docstring has no {key} placeholder")
            doc = doc.replace(key, text.strip("\n").lstrip())
        obj.__doc__ = doc
        return obj

    return decorate
