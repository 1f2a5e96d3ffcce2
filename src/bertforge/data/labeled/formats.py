r"""Labeled files as raw rows: encodings, JSON Lines, delimiters and quoting.

A file becomes a :class:`Table`: its column names (or positions) and its rows,
each with the line it starts on, before any column is picked. This module reads
the bytes (strict UTF-8, a BOM dropped), tells JSON Lines from delimited text,
sniffs the delimiter and decides whether a tab-separated file quotes its fields.

>>> name, text, suffix = load(io.StringIO("text\tlabel\nhi\tgreet\n"))
>>> delimiter = sniff_delimiter(text, suffix, name)
>>> delimiter, [fields for _, _, fields in parse_delimited(text, delimiter, name)]
('\t', [['text', 'label'], ['hi', 'greet']])
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import numpy as np

from bertforge.data.labeled.messages import fail, listing, show
from bertforge.errors import BertforgeError
from bertforge.text.file_encoding import EncodingProblem
from bertforge.text.file_encoding import decode_utf8 as text_of

JSON_SUFFIXES = (".jsonl", ".ndjson", ".json")
TABLE_SUFFIXES = (".csv", ".tsv", ".tab")
DELIMITERS = (",", "\t", ";", "|")

# A row as (line it starts on, line it ends on, values): plain tuples, as 100k-row files
# should read in a fraction of a second.
Row = tuple[int, int, list]


@dataclass
class Table:
    """Rows of one source before columns are picked, and how its messages name places.

    ``cells`` says what the values are: ``"text"`` (strings of a delimited file),
    ``"json"`` (JSON Lines values) or ``"python"`` (rows given in memory). ``unit``
    is what a row's number counts, ``"line"`` in a file or ``"row"`` in memory;
    ``column_word`` is what messages call a column (``"key"`` for JSON objects).
    """

    name: str
    columns: list[str]              # header names; positions "0", "1", ... without a header
    has_header: bool
    header_line: int | None         # the header's line, or the first row's line
    rows: list[Row]
    cells: str = "text"
    unit: str = "line"
    column_word: str = "column"

    @property
    def in_memory(self) -> bool:
        return self.unit == "row"

    def fail(self, line: int | None, what: str, fix: str) -> NoReturn:
        fail(self.name, line, what, fix, self.unit)

    def option(self, flag: str) -> str:
        """The command-line flag for a file; the keyword argument for rows given in memory."""
        return flag.lstrip("-").replace("-", "_") + "=" if self.in_memory else flag


# --------------------------------------------------------------------------- loading text


def load(source, kinds: str = "a CSV, TSV or JSONL file",
         empty_fix: str = "it needs a header line and one row per example") -> tuple[str, str, str]:
    """``(name for messages, decoded text, lower-case suffix)`` of a path, ``"-"`` or a stream;
    ``kinds`` and ``empty_fix`` word the messages for a missing and an empty file."""
    if isinstance(source, str) and source == "-":
        source = sys.stdin
    if hasattr(source, "read"):
        name = getattr(source, "name", None)
        name = name if isinstance(name, str) else "<stream>"
        data = source.buffer.read() if hasattr(source, "buffer") else source.read()
    else:
        name = str(source)
        data = read_bytes(Path(source), name, kinds)
    text = decode_utf8(data, name) if isinstance(data, bytes) else data
    text = text.removeprefix("\ufeff")
    if not text.strip():
        fail(name, None, "the file is empty", empty_fix)
    return name, text, Path(name).suffix.lower()


def read_bytes(path: Path, name: str, kinds: str = "a CSV, TSV or JSONL file") -> bytes:
    """A file's bytes; a missing file, a folder or no permission is one line (``kinds``: what to pass instead)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        fail(name, None, "no such file", "check the path and the current folder")
    except IsADirectoryError:
        fail(name, None, "is a folder, not a file", f"pass the path of {kinds}")
    except PermissionError:
        fail(name, None, "permission denied", "make the file readable or copy it somewhere readable")


def decode_utf8(data: bytes, name: str) -> str:
    """Decode strictly, so a wrong encoding is reported at its line instead of read as noise; UTF-16
    and binary files are named as such (see :mod:`bertforge.text.file_encoding`)."""
    data = data.removeprefix(b"\xef\xbb\xbf")
    try:
        return text_of(data, example=f"in{Path(name).suffix or '.csv'}")
    except EncodingProblem as problem:
        fail(name, problem.line, problem.what, problem.fix)


def physical_lines(text: str):
    """``(line number, line)`` pairs, splitting only on \\n, \\r\\n and \\r, as editors and csv do."""
    return enumerate(io.StringIO(text, newline=""), start=1)


def as_number(value) -> float | None:
    """The finite number a cell spells, or None (booleans and nan are not numbers here).

    >>> as_number(" 3 "), as_number("1e-2"), as_number("nan"), as_number(True), as_number("two")
    (3.0, 0.01, None, None, None)
    """
    if isinstance(value, (bool, np.bool_)) or value is None:
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        number = float(value)
    else:
        try:
            number = float(str(value).strip())
        except ValueError:
            return None
    return number if math.isfinite(number) else None


# Label cells that mean "no value" in the tools that write these files: pandas (an empty cell, or
# nan when a missing float is printed), Excel (#N/A), SQL and JSON (null). "None" and "NA" are
# left out on purpose: both are real class names ("none" of the intents, NA for a region).
MISSING_VALUES = frozenset({"", "nan", "-nan", "n/a", "#n/a", "null", "<na>"})


def is_missing(value) -> bool:
    """Whether a label cell holds no value: None, a NaN, or a :data:`MISSING_VALUES` spelling
    (any case; NUL bytes and spaces around it ignored).

    >>> [is_missing(v) for v in (None, " ", "N/A", "NaN", "\\x00", float("nan"), "None", "NA", "0")]
    [True, True, True, True, True, True, False, False, False]
    """
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return isinstance(value, str) and value.strip(" \t\r\n\x00").lower() in MISSING_VALUES


# --------------------------------------------------------------------------- JSON Lines


def parse_json(text: str, name: str, line: int | str | None = None):
    """``json.loads``, with a value nested deeper than Python's JSON reader recurses as one line;
    ``json.JSONDecodeError`` is left to the caller, whose fix depends on the layout.
    ``line`` is a line number, or a place already worded (``"line 3"``, ``"article 2"``).

    >>> parse_json('{"text": "hi"}', "train.jsonl", 1)
    {'text': 'hi'}
    >>> parse_json("[" * 100_000, "train.jsonl", 2)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    bertforge.errors.BertforgeError: train.jsonl: line 2: the JSON is nested too deeply to read ...
    """
    try:
        return json.loads(text)
    except RecursionError:
        what = "the JSON is nested too deeply to read (more than about 1,000 levels of [ and {)"
        fix = "write labels as strings or flat lists"
        if isinstance(line, str):
            fail(name, None, f"{line}: {what}", fix)
        fail(name, line, what, fix)


def looks_like_jsonl(text: str, suffix: str) -> bool:
    return suffix in JSON_SUFFIXES or re.match(r"\s*\{", text) is not None


def first_line_is_json_object(text: str) -> bool:
    first = next((line for _, line in physical_lines(text) if line.strip()), "")
    try:
        return isinstance(json.loads(first), dict)
    except json.JSONDecodeError:
        return False


def parse_jsonl(name: str, text: str) -> Table:
    """Objects per line, laid out as rows over the keys of all objects (missing keys are None)."""
    objects, columns, seen = [], [], set()
    for number, line in physical_lines(text):
        if not line.strip():
            continue
        try:
            value = parse_json(line, name, number)
        except json.JSONDecodeError as error:
            fix = 'write one JSON object per line, like {"text": "...", "label": "..."}'
            if line.lstrip()[:1] == "[":
                fix = "rewrite the JSON array as one object per line (JSON Lines)"
            fail(name, number, f"not valid JSON ({error.msg} at column {error.colno})", fix)
        if not isinstance(value, dict):
            fail(name, number, f"a JSON {type(value).__name__} where an object was expected",
                 'write one JSON object per line, like {"text": "...", "label": "..."}')
        for key in value:
            if key not in seen:
                seen.add(key)
                columns.append(key)
        objects.append((number, value))
    rows = [(number, number, [value.get(column) for column in columns]) for number, value in objects]
    return Table(name, columns, True, rows[0][0], rows, cells="json", column_word="key")


# --------------------------------------------------------------------------- delimited tables


@contextmanager
def _fields_up_to(length: int):
    """csv's field limit raised to ``length`` for a while: its default (131,072 characters)
    would refuse long documents, and no field can be longer than the text it comes from."""
    previous = csv.field_size_limit()
    csv.field_size_limit(max(previous, min(length + 1, sys.maxsize)))
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def _read_records(text: str, delimiter: str, quoting: int, name: str, limit: int | None = None) -> list[Row]:
    """csv records with the line each starts and ends on; blank lines are skipped."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting)
    records, end = [], 0
    try:
        with _fields_up_to(len(text)):
            for fields in reader:
                start, end = end + 1, reader.line_num
                if not fields or (len(fields) == 1 and not fields[0].strip()):
                    continue
                records.append((start, end, fields))
                if limit is not None and len(records) >= limit:
                    break
    except csv.Error as error:
        fail(name, end + 1, f"cannot be read as a table ({error})",
             "look for an unbalanced double quote on or after this line")
    return records


def _widths_agree(records: list[Row]) -> bool:
    return len({len(fields) for _, _, fields in records}) == 1


def sniff_delimiter(text: str, suffix: str, name: str) -> str:
    """The delimiter that splits the first rows into the same number (> 1) of fields.

    Counting on the first line alone fails on headerless files whose texts hold
    commas (``ham<TAB>Go until jurong point, crazy..``), so the first rows are
    parsed with each candidate and the one giving a steady width wins.

    >>> sniff_delimiter("ham\\tGo until jurong point, crazy, ok\\nspam\\tWIN now\\n", ".txt", "sms")
    '\\t'
    """
    preferred = ("\t",) if suffix in (".tsv", ".tab") else ()
    sample = text[:65536]
    for delimiter in preferred + DELIMITERS:
        quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
        try:
            records = _read_records(sample, delimiter, quoting, name, limit=30)
        except BertforgeError:
            continue
        if len(sample) < len(text) and len(records) > 1:
            records = records[:-1]  # the sample may cut the last record short
        if records and len(records[0][2]) > 1 and _widths_agree(records):
            return delimiter
    if preferred:
        return preferred[0]
    first_line = sample.splitlines()[0] if sample else ""
    counts = [first_line.count(delimiter) for delimiter in DELIMITERS]
    return DELIMITERS[counts.index(max(counts))] if max(counts) > 0 else ","


def _has_csv_escapes(records: list[Row]) -> bool:
    """Whether some field is written CSV-style: ``"..."`` with a doubled quote inside."""
    return any(len(value) > 1 and value[0] == value[-1] == '"' and '""' in value[1:-1]
               for _, _, fields in records for value in fields)


def parse_delimited(text: str, delimiter: str, name: str) -> list[Row]:
    """Records of a delimited file; for tabs, decide whether quotes are syntax or text.

    Most TSV files (GLUE, the SMS Spam release) treat ``"`` as an ordinary
    character, while spreadsheet and pandas exports quote fields that hold tabs,
    newlines or quotes. Read literally first and switch to CSV quoting only when
    the literal reading gives ragged rows or shows CSV escapes.
    """
    if delimiter != "\t":
        return _read_records(text, delimiter, csv.QUOTE_MINIMAL, name)
    literal = _read_records(text, delimiter, csv.QUOTE_NONE, name)
    escaped = _has_csv_escapes(literal)
    if _widths_agree(literal) and not escaped:
        return literal
    try:
        quoted = _read_records(text, delimiter, csv.QUOTE_MINIMAL, name)
    except BertforgeError:
        return literal
    return quoted if _widths_agree(quoted) or escaped else literal


def normalize_delimiter(delimiter: str | None, name: str) -> str | None:
    """A delimiter given by name (``tab``, ``comma``, ...) or as ``\\t``, as the one character.

    >>> normalize_delimiter("tab", "x.csv"), normalize_delimiter(None, "x.csv")
    ('\\t', None)
    """
    if delimiter is None:
        return None
    delimiter = {"\\t": "\t", "tab": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}.get(delimiter, delimiter)
    if len(delimiter) != 1:
        fail(name, None, f"delimiter {show(delimiter)} is not one character", "pass ',', 'tab', ';' or '|'")
    return delimiter


def delimited_table(name: str, records: list[Row], has_header: bool, delimiter: str) -> Table:
    """The :class:`Table` of a delimited file's records, the first of them its header or not."""
    first_line, _, first_fields = records[0]
    if has_header:
        columns = [value.strip() for value in first_fields]
        rows = records[1:]
        if not rows:
            fail(name, first_line, "the header is the only row", "add one row per example below the header")
    else:
        columns = [str(position) for position in range(len(first_fields))]
        rows = records
    _check_widths(name, rows, columns, delimiter)
    return Table(name, columns, has_header, first_line, rows)


def _check_widths(name: str, rows: list[Row], columns: list[str], delimiter: str) -> None:
    expected = len(columns)
    for start, end, fields in rows:
        if len(fields) == expected:
            continue
        shown = {"\t": "a tab", ",": "a comma"}.get(delimiter, repr(delimiter))
        fix = f"put a text that contains {shown} in double quotes"
        if end > start:
            fix += (f"; this row runs on to line {end}, so a double quote opened"
                    f" on line {start} is probably never closed")
        found = f"{len(fields)} field" + ("" if len(fields) == 1 else "s")
        fail(name, start, f"has {found}, expected {expected}"
             f" ({listing(columns)})", fix)
