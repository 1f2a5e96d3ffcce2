"""The one-line errors of labeled input: where (file and line, or row), what, and the fix.

Every module of :mod:`bertforge.data.labeled` reports bad input through
:func:`fail`, so all of them read the same way.

>>> try:
...     fail("train.csv", 4, "the label is missing", "fill it in or delete the row")
... except Exception as error:
...     print(error)
train.csv: line 4: the label is missing; fill it in or delete the row
"""

from __future__ import annotations

from typing import Any, NoReturn, Sequence

from bertforge.errors import BertforgeError


def fail(name: str, line: int | None, what: str, fix: str, unit: str = "line") -> NoReturn:
    """Raise the one-line error ``name: line N: what; fix``.

    ``unit`` says what ``line`` counts: ``"line"`` in a file, ``"row"`` for rows
    given in memory.

    >>> fail("<list of 3 rows>", 2, "the text is empty", "fill it in", unit="row")
    Traceback (most recent call last):
    ...
    bertforge.errors.BertforgeError: <list of 3 rows>: row 2: the text is empty; fill it in
    """
    where = f"{name}: {unit} {line}: " if line is not None else f"{name}: "
    raise BertforgeError(f"{where}{what}; {fix}")


def show(value: Any, limit: int = 40) -> str:
    """A value quoted for a message, kept short and on one line (repr escapes newlines).

    >>> show("a\\nb"), show("x" * 50, limit=5)
    ("'a\\\\nb'", "'xxxxx...'")
    """
    text = str(value)
    return repr(text if len(text) <= limit else text[:limit] + "...")


def listing(names: Sequence[str], limit: int = 10) -> str:
    """Names joined for a message; whitespace runs (a header cell may hold a newline) become one space.

    >>> listing(["text", "la\\nbel"]), listing("abcd", limit=2)
    ('text, la bel', 'a, b and 2 more')
    """
    shown = ", ".join(" ".join(str(name).split()) for name in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def places(unit: str, numbers: Sequence[int], limit: int = 5) -> str:
    """Where several rows are, for a message: ``line 4``, ``lines 4, 9 and 12``, and past ``limit``
    a count of the rest.

    >>> places("line", [4]), places("row", [1, 3]), places("line", range(2, 10), limit=3)
    ('line 4', 'rows 1 and 3', 'lines 2, 3, 4 and 5 more')
    """
    shown = [str(number) for number in list(numbers)[:limit]]
    total = len(numbers)
    if total > limit:
        return f"{unit}s {', '.join(shown)} and {total - limit} more"
    if len(shown) == 1:
        return f"{unit} {shown[0]}"
    return f"{unit}s {', '.join(shown[:-1])} and {shown[-1]}"
