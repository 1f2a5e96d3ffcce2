r"""Labeled rows already in memory: a pandas DataFrame, a list of dicts, tuples or texts.

A notebook user often holds the data already. Such rows become the same
:class:`~bertforge.data.labeled.formats.Table` a file does, so the columns are
picked by the same options and the same guessing. A row's number is its 0-based
position (``rows[3]``, ``frame.iloc[3]``) and messages say ``row 3`` where a file
would say ``line 3``. pandas is not imported: a DataFrame is anything with
``columns`` and ``itertuples``, and its missing values (NaN, ``NA``, ``NaT``)
count as empty cells.

>>> table = rows_table([{"text": "great film", "label": "pos"}, ("dull",)])
Traceback (most recent call last):
...
bertforge.errors.BertforgeError: <list of 2 rows>: row 1: a tuple where row 0 is a dict; give every row the same form
>>> table = rows_table([("great film", "pos"), ("dull", "neg")])
>>> table.name, table.columns, [values for _, _, values in table.rows]
('<list of 2 rows>', ['0', '1'], [['great film', 'pos'], ['dull', 'neg']])
"""

from __future__ import annotations

import numpy as np

from bertforge.data.labeled.formats import Row, Table
from bertforge.data.labeled.messages import fail

_ROW_FORMS = {dict: "dict", tuple: "tuple", list: "list", str: "text"}
_FIX_FORM = "give each row as a dict like {'text': ..., 'label': ...} or a tuple like (text, label)"


def is_in_memory(source) -> bool:
    """Whether ``source`` is rows in memory (a list, or a DataFrame) rather than a path or stream.

    >>> is_in_memory([("a", "b")]), is_in_memory("train.csv")
    (True, False)
    """
    return isinstance(source, list) or _is_data_frame(source)


def _is_data_frame(source) -> bool:
    return hasattr(source, "columns") and hasattr(source, "itertuples")


def source_name(source) -> str:
    """How rows given in memory are named in messages, reports and ``bertforge.json``.

    >>> source_name([("a", "b"), ("c", "d")]), source_name([("a", "b")])
    ('<list of 2 rows>', '<list of 1 row>')
    """
    if _is_data_frame(source):
        return "<DataFrame>"
    return f"<list of {len(source)} row{'' if len(source) == 1 else 's'}>"


def rows_table(source) -> Table:
    """The :class:`Table` of a DataFrame or a list of rows (see the module docstring)."""
    return _frame_table(source) if _is_data_frame(source) else _list_table(source)


def _cell(value):
    """A plain Python value: numpy scalars and arrays unwrapped, missing values as None."""
    if isinstance(value, (np.generic, np.ndarray)):
        value = value.tolist()
    if value is None or isinstance(value, (str, bool, int, list, tuple, dict)):
        return value
    try:
        return None if bool(value != value) else value  # NaN and NaT differ from themselves
    except (TypeError, ValueError):
        return None  # pandas.NA has no truth value


def _frame_table(frame) -> Table:
    name = source_name(frame)
    columns = [str(column) for column in frame.columns]
    if not columns:
        fail(name, None, "the DataFrame has no columns", "pass a DataFrame with a text column")
    rows: list[Row] = [(position, position, [_cell(value) for value in values])
                       for position, values in enumerate(frame.itertuples(index=False, name=None))]
    if not rows:
        fail(name, None, "the DataFrame has no rows", "pass one row per example")
    return Table(name, columns, True, None, rows, cells="python", unit="row")


def _list_table(rows: list) -> Table:
    name = source_name(rows)
    if not rows:
        fail(name, None, "there are no rows", "pass one row per example")
    form = _form(rows[0], name, 0)
    for position, row in enumerate(rows):
        if _form(row, name, position) != form:
            fail(name, position, f"a {_form(row, name, position)} where row 0 is a {form}",
                 "give every row the same form", unit="row")
    if form == "dict":
        return _dict_table(name, rows)
    if form == "text":
        return Table(name, ["0"], False, None, [(position, position, [row]) for position, row in enumerate(rows)],
                     cells="python", unit="row")
    return _sequence_table(name, rows)


def _form(row, name: str, position: int) -> str:
    form = next((shown for kind, shown in _ROW_FORMS.items() if isinstance(row, kind)), None)
    if form is None:
        fail(name, position, f"the row is of type {type(row).__name__}, not a dict, a tuple or a text", _FIX_FORM,
             unit="row")
    return form


def _dict_table(name: str, rows: list[dict]) -> Table:
    """Rows over the keys of all dicts, in the order they first appear (missing keys are None)."""
    keys = list(dict.fromkeys(key for row in rows for key in row))
    values = [(position, position, [_cell(row.get(key)) for key in keys]) for position, row in enumerate(rows)]
    return Table(name, [str(key) for key in keys], True, None, values, cells="python", unit="row",
                 column_word="key")


def _sequence_table(name: str, rows: list) -> Table:
    width = len(rows[0])
    if width == 0:
        fail(name, 0, "the row is empty", _FIX_FORM, unit="row")
    for position, row in enumerate(rows):
        if len(row) != width:
            fail(name, position, f"has {len(row)} value{'' if len(row) == 1 else 's'}, expected {width} as in row 0",
                 "give every row the same values, like (text, label)", unit="row")
    values = [(position, position, [_cell(value) for value in row]) for position, row in enumerate(rows)]
    return Table(name, [str(position) for position in range(width)], False, None, values, cells="python",
                 unit="row")
