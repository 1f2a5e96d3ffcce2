r"""Which column is the text, the second text and the label: given, guessed, and said in messages.

Columns are given by name or 0-based position, or guessed from the names people
usually give them (``text``, ``sentence``, ``review``, ...; ``label``, ``class``,
``target``, ...). Whether a file's first row is a header is guessed here too, as
it rests on the same names. A column that is missing or chosen twice fails with
one line that lists the columns there are.

>>> table = Table("train.csv", ["id", "sentence1", "sentence2", "gold_label"], True, 1, [])
>>> picks = pick_columns(table, None, None, None, None, require_labels=True, want_labels=True)
>>> [table.columns[index] for index in (picks.text, picks.pair, picks.label)]
['sentence1', 'sentence2', 'gold_label']
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

from bertforge.data.labeled.formats import Row, Table, as_number
from bertforge.data.labeled.messages import listing, show

# Column names that people give their text and label columns, most likely first.
TEXT_COLUMN_NAMES = ("text", "sentence", "sentence1", "text_a", "review", "content", "document",
                     "question", "question1", "premise", "comment", "body", "message", "tweet",
                     "utterance", "query", "input")
LABEL_COLUMN_NAMES = ("label", "labels", "class", "category", "target", "y", "sentiment",
                      "intent", "topic", "score", "gold_label", "output")
# Pair datasets (GLUE and the like) name their second text after the first one.
PAIR_PARTNERS = {"sentence1": "sentence2", "text_a": "text_b", "question1": "question2",
                 "premise": "hypothesis", "question": "context"}
KNOWN_COLUMN_NAMES = frozenset(TEXT_COLUMN_NAMES + LABEL_COLUMN_NAMES + tuple(PAIR_PARTNERS.values()))


# --------------------------------------------------------------------------- is there a header


def first_row_is_header(records: list[Row], wanted: list[str]) -> bool:
    """A header names the wanted or usual columns, or at least does not look like data.

    >>> first_row_is_header([(1, 1, ["review", "stars"]), (2, 2, ["fine", "4"])], [])
    True
    >>> first_row_is_header([(1, 1, ["ham", "see you"]), (2, 2, ["ham", "ok"])], [])
    False
    """
    first = [value.strip() for value in records[0][2]]
    names = {value.lower() for value in first}
    if any(name.lower() in names for name in wanted) or names & KNOWN_COLUMN_NAMES:
        return True
    if len(first) == 1:
        return False  # one column of texts: an unknown first line is more likely a text than a name
    return not _looks_like_data(first, [fields for _, _, fields in records[1:101]])


def _looks_like_data(first: list[str], later: list[list[str]]) -> bool:
    """Numbers, sentences, or values that recur in the same column below are data, not names."""
    for value in first:
        if as_number(value) is not None or len(value) > 40 or len(value.split()) > 3:
            return True
    for fields in later:
        for position, value in enumerate(fields[:len(first)]):
            if first[position] and value.strip() == first[position]:
                return True
    return False


def names_a_text_column(values: Sequence[str]) -> bool:
    """Whether a first row holds one of the usual text column names (any case)."""
    return any(value.strip().lower() in TEXT_COLUMN_NAMES for value in values)


# --------------------------------------------------------------------------- picking columns


def find_column(table: Table, spec, flag: str, optional: bool = False) -> int | None:
    """The index in ``table.columns`` of a column given by name or 0-based position."""
    if spec is None:
        return None
    wanted = str(spec).strip()
    columns = table.columns
    if table.has_header:
        if wanted in columns:
            return columns.index(wanted)
        lowered = [column.lower() for column in columns]
        if wanted.lower() in lowered:
            return lowered.index(wanted.lower())
    is_position = isinstance(spec, int) or re.fullmatch(r"-?\d+", wanted) is not None
    if is_position and 0 <= int(wanted) < len(columns):
        return int(wanted)
    if optional:
        return None
    flag = table.option(flag)
    if is_position:
        table.fail(table.header_line, f"there is no column {wanted}: rows have {len(columns)} columns"
                   f" ({listing(columns)})", f"pass {flag} with a position from 0 to {len(columns) - 1} or a name")
    if not table.has_header and table.in_memory:
        table.fail(None, f"the rows are sequences of values, so there is no column named {show(wanted)}",
                   f"pass {flag} as a position (0 to {len(columns) - 1}) or give the rows as dicts")
    if not table.has_header:
        table.fail(table.header_line, f"this first row is data, not a header, so there is no column"
                   f" named {show(wanted)}",
                   f"pass {flag} as a position (0 to {len(columns) - 1}) or add a header line")
    table.fail(table.header_line, f"no {table.column_word} {show(wanted)} (found: {listing(columns)})",
               f"pass {flag} with one of these")


def default_column(table: Table, names: Sequence[str]) -> int | None:
    """The first usual name that the table has (case-insensitive), in order of preference."""
    if not table.has_header:
        return None
    lowered = [column.lower() for column in table.columns]
    for name in names:
        if name in lowered:
            return lowered.index(name)
    return None


@dataclass
class Picks:
    """The chosen columns, as indices into :attr:`Table.columns` (``multi``: 0/1 label columns),
    and the roles (``"text"``, ``"pair"``, ``"label"``) chosen by guessing, not by an option."""

    text: int
    pair: int | None = None
    label: int | None = None
    multi: list[int] = field(default_factory=list)
    guessed: set[str] = field(default_factory=set)


def pick_columns(table: Table, text_column, label_column, text_pair_column, label_columns,
                 require_labels: bool, want_labels: bool) -> Picks:
    """The columns to read, from the options given and, where none is, from the usual names."""
    if label_column is not None and label_columns:
        table.fail(None, "both a label column and several label columns were given",
                   f"pass {table.option('--label-column')} for one label per row or"
                   f" {table.option('--label-columns')} for 0/1 columns, not both")
    text = find_column(table, text_column, "--text-column")
    guessed = set()
    if text is None:
        text = default_column(table, TEXT_COLUMN_NAMES) or 0
        guessed.add("text")
    pair = find_column(table, text_pair_column, "--text-pair-column")
    if pair is None and text_column is None and text_pair_column is None:
        partner = PAIR_PARTNERS.get(table.columns[text].lower())
        pair = default_column(table, [partner]) if partner else None
        if pair is not None:
            guessed.add("pair")
    picks = Picks(text, pair, guessed=guessed)
    if not want_labels:
        return picks
    if label_columns:
        picks.multi = [find_column(table, spec, "--label-columns", optional=not require_labels)
                       for spec in label_columns]
        if None in picks.multi:
            picks.multi = []
    else:
        picks.label = find_column(table, label_column, "--label-column", optional=not require_labels)
        if picks.label is None and label_column is None:
            picks.label = _default_label_column(table, picks, require_labels)
            if picks.label is not None:
                guessed.add("label")
    _check_distinct(table, picks)
    return picks


# The option that overrides each guessed role.
_ROLE_OPTIONS = {"text": "--text-column", "pair": "--text-pair-column", "label": "--label-column"}


def columns_note(table: Table, picks: Picks) -> str | None:
    """The one line that says which columns were read, when some were guessed; None when all were given.

    >>> table = Table("train.csv", ["id", "sentence", "category"], True, 1, [])
    >>> columns_note(table, pick_columns(table, None, None, None, None, require_labels=True, want_labels=True))
    "train.csv: text: 'sentence', label: 'category' (guessed; --text-column and --label-column override)"
    >>> columns_note(table, pick_columns(table, "sentence", None, None, None, require_labels=True, want_labels=True))
    "train.csv: text: 'sentence', label: 'category' (label guessed; --label-column overrides)"
    """
    if not picks.guessed:
        return None
    roles = [("text", picks.text), ("pair", picks.pair), ("label", picks.label)]
    shown = [(role, index) for role, index in roles if index is not None]
    parts = [f"{role}: {_column_name(table, index)}" for role, index in shown]
    if picks.multi:
        parts.append("labels: " + ", ".join(_column_name(table, index) for index in picks.multi))
    guessed = [role for role, _ in shown if role in picks.guessed]
    options = [table.option(_ROLE_OPTIONS[role]) for role in guessed]
    which = "guessed" if len(guessed) == len(shown) and not picks.multi else f"{' and '.join(guessed)} guessed"
    override = f"{options[0]} overrides" if len(options) == 1 else \
        f"{', '.join(options[:-1])} and {options[-1]} override"
    return f"{table.name}: {', '.join(parts)} ({which}; {override})"


def _column_name(table: Table, index: int) -> str:
    return show(table.columns[index]) if table.has_header else f"column {index}"


def _default_label_column(table: Table, picks: Picks, require_labels: bool) -> int | None:
    by_name = default_column(table, LABEL_COLUMN_NAMES)
    if by_name is not None or not require_labels:
        return by_name
    # A prediction file may carry ids or metadata, so "the last column" is only a guess for training.
    last = len(table.columns) - 1
    if last in (picks.text, picks.pair):
        table.fail(table.header_line, f"no label column (found only: {listing(table.columns)})",
                   f"add a label column or pass {table.option('--label-column')}")
    return last


def _check_distinct(table: Table, picks: Picks) -> None:
    used = [("text", picks.text), ("text pair", picks.pair), ("label", picks.label)]
    used += [("label", index) for index in picks.multi]
    seen: dict[int, str] = {}
    for role, index in used:
        if index is None:
            continue
        if index in seen:
            table.fail(table.header_line, f"column {show(table.columns[index])} was chosen as both"
                       f" {seen[index]} and {role}", "pass a different column for each role")
        seen[index] = role
