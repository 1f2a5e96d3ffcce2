r"""Labeled files for fine-tuning: read them, pick the task, encode the labels.

The seed workflow is a ``text,label`` CSV each for train, validation and test,
and a label encoder fitted on the training labels. This module reads such files
(CSV, TSV or JSON Lines; with or without a header; text pairs; several 0/1 label
columns), decides the task (classification, multi-label or regression), turns
labels into the arrays a classifier trains on, and splits off a validation set.

Every problem with the input raises :class:`~bertforge.errors.BertforgeError`
with one line that names the file, the line as an editor shows it (the header is
line 1) and what to do about it.

>>> import io
>>> train = read_labeled(io.StringIO("text,label\ngreat film,pos\ndull,neg\nfun,pos\n"))
>>> encoder = LabelEncoder.fit(train)
>>> encoder.classes, encoder.encode(train).targets.tolist()
(('neg', 'pos'), [1, 0, 1])
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, NoReturn, Sequence

import numpy as np

from bertforge.errors import BertforgeError

__all__ = [
    "LabeledData",
    "read_labeled",
    "read_texts",
    "detect_task",
    "LabelEncoder",
    "EncodedLabels",
    "validate_training_labels",
    "stratified_split",
    "TASKS",
    "PROBLEM_TYPES",
]

TASKS = ("classification", "multi_label", "regression")
# The same tasks under the names transformers' config.json gives them (``problem_type``).
PROBLEM_TYPES = {"classification": "single_label_classification", "multi_label": "multi_label_classification",
                 "regression": "regression"}

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

# More distinct integer labels than this and the numbers are read as a score, not
# classes (intent sets such as Banking77 have 77 integer classes).
MAX_INTEGER_CLASSES = 100
JSON_SUFFIXES = (".jsonl", ".ndjson", ".json")
TABLE_SUFFIXES = (".csv", ".tsv", ".tab")
DELIMITERS = (",", "\t", ";", "|")
MULTI_HOT_VALUES = {"1": True, "0": False, "1.0": True, "0.0": False,
                    "true": True, "false": False, "yes": True, "no": False}


# --------------------------------------------------------------------------- data


@dataclass
class LabeledData:
    r"""Texts (and optional pairs and labels) read from one file, with their line numbers.

    ``labels`` holds one entry per text: a string for one label column (the raw
    cell, stripped), a tuple of label names for a multi-label row (0/1 columns or
    a JSON list), or ``None`` where a prediction file has no label. ``lines[i]``
    is the line in the file where row ``i`` starts. ``label_names`` lists the 0/1
    label columns of a multi-label file, in file order.

    >>> data = LabeledData(["a", "b", "c"], ["x", "y", "x"], None, [2, 3, 4], "train.csv")
    >>> len(data), data.subset([2, 0]).labels, data.subset([2, 0]).lines
    (3, ['x', 'x'], [4, 2])
    """

    texts: list[str]
    labels: list | None
    text_pairs: list[str] | None
    lines: list[int]
    path: str
    label_names: list[str] | None = None
    label_column: str | None = None

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices) -> "LabeledData":
        """The rows at ``indices`` (positions, not line numbers), in that order."""
        indices = [int(i) for i in indices]

        def pick(values):
            return None if values is None else [values[i] for i in indices]

        return LabeledData(pick(self.texts), pick(self.labels), pick(self.text_pairs), pick(self.lines),
                           self.path, self.label_names, self.label_column)


def _fail(name: str, line: int | None, what: str, fix: str) -> NoReturn:
    """Raise the one-line error: ``file: line N: what; fix``."""
    where = f"{name}: line {line}: " if line is not None else f"{name}: "
    raise BertforgeError(f"{where}{what}; {fix}")


def _show(value: Any, limit: int = 40) -> str:
    """A value quoted for a message, kept short and on one line (repr escapes newlines)."""
    text = str(value)
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _listing(names: Sequence[str], limit: int = 10) -> str:
    """Names joined for a message; whitespace runs (a header cell may hold a newline) become one space."""
    shown = ", ".join(" ".join(str(name).split()) for name in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


# --------------------------------------------------------------------------- loading text


def _load(source) -> tuple[str, str, str]:
    """``(name for messages, decoded text, lower-case suffix)`` of a path, ``"-"`` or a stream."""
    if isinstance(source, str) and source == "-":
        source = sys.stdin
    if hasattr(source, "read"):
        name = getattr(source, "name", None)
        name = name if isinstance(name, str) else "<stream>"
        data = source.buffer.read() if hasattr(source, "buffer") else source.read()
    else:
        name = str(source)
        data = _read_bytes(Path(source), name)
    text = _decode_utf8(data, name) if isinstance(data, bytes) else data
    text = text.removeprefix("\ufeff")
    if not text.strip():
        _fail(name, None, "the file is empty", "it needs a header line and one row per example")
    return name, text, Path(name).suffix.lower()


def _read_bytes(path: Path, name: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        _fail(name, None, "no such file", "check the path and the current folder")
    except IsADirectoryError:
        _fail(name, None, "is a folder, not a file", "pass the path of a CSV, TSV or JSONL file")
    except PermissionError:
        _fail(name, None, "permission denied", "make the file readable or copy it somewhere readable")


def _decode_utf8(data: bytes, name: str) -> str:
    """Decode strictly, so a wrong encoding is reported at its line instead of read as noise."""
    data = data.removeprefix(b"\xef\xbb\xbf")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        before = data[:error.start].decode("utf-8")
        line = before.count("\n") + before.count("\r") - before.count("\r\n") + 1
        column = error.start - max(data.rfind(b"\n", 0, error.start), data.rfind(b"\r", 0, error.start))
        _fail(name, line, f"byte 0x{data[error.start]:02x} at column {column} is not UTF-8",
              "re-save the file as UTF-8 (for example: iconv -f latin1 -t utf-8 in.csv > out.csv)")


def _physical_lines(text: str):
    """``(line number, line)`` pairs, splitting only on \\n, \\r\\n and \\r, as editors and csv do."""
    return enumerate(io.StringIO(text, newline=""), start=1)


# --------------------------------------------------------------------------- parsing


# A row as (line it starts on, line it ends on, values): plain tuples, as 100k-row files
# should read in a fraction of a second.
Row = tuple[int, int, list]


@dataclass
class _Parsed:
    """Rows of one file before columns are picked: strings (tables) or JSON values (JSONL)."""

    name: str
    columns: list[str]              # header names; positions "0", "1", ... without a header
    has_header: bool
    header_line: int                # the header's line, or the first row's line
    rows: list[Row]
    is_json: bool = False


def _looks_like_jsonl(text: str, suffix: str) -> bool:
    return suffix in JSON_SUFFIXES or re.match(r"\s*\{", text) is not None


def _parse_jsonl(name: str, text: str) -> _Parsed:
    """Objects per line, laid out as rows over the keys of all objects (missing keys are None)."""
    objects, columns, seen = [], [], set()
    for number, line in _physical_lines(text):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            fix = 'write one JSON object per line, like {"text": "...", "label": "..."}'
            if line.lstrip()[:1] == "[":
                fix = "rewrite the JSON array as one object per line (JSON Lines)"
            _fail(name, number, f"not valid JSON ({error.msg} at column {error.colno})", fix)
        if not isinstance(value, dict):
            _fail(name, number, f"a JSON {type(value).__name__} where an object was expected",
                  'write one JSON object per line, like {"text": "...", "label": "..."}')
        for key in value:
            if key not in seen:
                seen.add(key)
                columns.append(key)
        objects.append((number, value))
    rows = [(number, number, [value.get(column) for column in columns]) for number, value in objects]
    return _Parsed(name, columns, True, rows[0][0], rows, is_json=True)


def _read_records(text: str, delimiter: str, quoting: int, name: str, limit: int | None = None) -> list[Row]:
    """csv records with the line each starts and ends on; blank lines are skipped."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting)
    records, end = [], 0
    try:
        for fields in reader:
            start, end = end + 1, reader.line_num
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue
            records.append((start, end, fields))
            if limit is not None and len(records) >= limit:
                break
    except csv.Error as error:
        _fail(name, end + 1, f"cannot be read as a table ({error})",
              "look for an unbalanced double quote or a stray NUL byte on or after this line")
    return records


def _widths_agree(records: list[Row]) -> bool:
    return len({len(fields) for _, _, fields in records}) == 1


def _sniff_delimiter(text: str, suffix: str, name: str) -> str:
    """The delimiter that splits the first rows into the same number (> 1) of fields.

    Counting on the first line alone fails on headerless files whose texts hold
    commas (``ham<TAB>Go until jurong point, crazy..``), so the first rows are
    parsed with each candidate and the one giving a steady width wins.
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


def _parse_delimited(text: str, delimiter: str, name: str) -> list[Row]:
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


def _normalize_delimiter(delimiter: str | None, name: str) -> str | None:
    if delimiter is None:
        return None
    delimiter = {"\\t": "\t", "tab": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}.get(delimiter, delimiter)
    if len(delimiter) != 1:
        _fail(name, None, f"delimiter {_show(delimiter)} is not one character", "pass ',', 'tab', ';' or '|'")
    return delimiter


def _parse_table(name: str, text: str, suffix: str, delimiter: str | None, has_header: bool | None,
                 wanted: list[str]) -> _Parsed:
    delimiter = _normalize_delimiter(delimiter, name) or _sniff_delimiter(text, suffix, name)
    records = _parse_delimited(text, delimiter, name)
    if has_header is None:
        has_header = _first_row_is_header(records, wanted)
    first_line, _, first_fields = records[0]
    if has_header:
        columns = [value.strip() for value in first_fields]
        rows = records[1:]
        if not rows:
            _fail(name, first_line, "the header is the only row", "add one row per example below the header")
    else:
        columns = [str(position) for position in range(len(first_fields))]
        rows = records
    _check_widths(name, rows, columns, delimiter)
    return _Parsed(name, columns, has_header, first_line, rows)


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
        _fail(name, start, f"has {found}, expected {expected}"
              f" ({_listing(columns)})", fix)


def _first_row_is_header(records: list[Row], wanted: list[str]) -> bool:
    """A header names the wanted or usual columns, or at least does not look like data."""
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
        if _as_number(value) is not None or len(value) > 40 or len(value.split()) > 3:
            return True
    for fields in later:
        for position, value in enumerate(fields[:len(first)]):
            if first[position] and value.strip() == first[position]:
                return True
    return False


# --------------------------------------------------------------------------- picking columns


def _find_column(parsed: _Parsed, spec, flag: str, optional: bool = False) -> int | None:
    """The index in ``parsed.columns`` of a column given by name or 0-based position."""
    if spec is None:
        return None
    wanted = str(spec).strip()
    columns = parsed.columns
    if parsed.has_header:
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
    if is_position:
        _fail(parsed.name, parsed.header_line, f"there is no column {wanted}: rows have {len(columns)} columns"
              f" ({_listing(columns)})", f"pass {flag} with a position from 0 to {len(columns) - 1} or a name")
    if not parsed.has_header:
        _fail(parsed.name, parsed.header_line, f"this first row is data, not a header, so there is no column"
              f" named {_show(wanted)}", f"pass {flag} as a position (0 to {len(columns) - 1}) or add a header line")
    kind = "key" if parsed.is_json else "column"
    _fail(parsed.name, parsed.header_line, f"no {kind} {_show(wanted)} (found: {_listing(columns)})",
          f"pass {flag} with one of these")


def _default_column(parsed: _Parsed, names: Sequence[str]) -> int | None:
    """The first usual name that the file has (case-insensitive), in order of preference."""
    if not parsed.has_header:
        return None
    lowered = [column.lower() for column in parsed.columns]
    for name in names:
        if name in lowered:
            return lowered.index(name)
    return None


@dataclass
class _Picks:
    text: int
    pair: int | None = None
    label: int | None = None
    multi: list[int] = field(default_factory=list)


def _pick_columns(parsed: _Parsed, text_column, label_column, text_pair_column, label_columns,
                  require_labels: bool, want_labels: bool) -> _Picks:
    if label_column is not None and label_columns:
        _fail(parsed.name, None, "both a label column and several label columns were given",
              "pass --label-column for one label per row or --label-columns for 0/1 columns, not both")
    text = _find_column(parsed, text_column, "--text-column")
    if text is None:
        text = _default_column(parsed, TEXT_COLUMN_NAMES) or 0
    pair = _find_column(parsed, text_pair_column, "--text-pair-column")
    if pair is None and text_column is None and text_pair_column is None:
        partner = PAIR_PARTNERS.get(parsed.columns[text].lower())
        pair = _default_column(parsed, [partner]) if partner else None
    picks = _Picks(text, pair)
    if not want_labels:
        return picks
    if label_columns:
        picks.multi = [_find_column(parsed, spec, "--label-columns", optional=not require_labels)
                       for spec in label_columns]
        if None in picks.multi:
            picks.multi = []
    else:
        picks.label = _find_column(parsed, label_column, "--label-column", optional=not require_labels)
        if picks.label is None and label_column is None:
            picks.label = _default_label_column(parsed, picks, require_labels)
    _check_distinct(parsed, picks)
    return picks


def _default_label_column(parsed: _Parsed, picks: _Picks, require_labels: bool) -> int | None:
    by_name = _default_column(parsed, LABEL_COLUMN_NAMES)
    if by_name is not None or not require_labels:
        return by_name
    # A prediction file may carry ids or metadata, so "the last column" is only a guess for training.
    last = len(parsed.columns) - 1
    if last in (picks.text, picks.pair):
        _fail(parsed.name, parsed.header_line, f"no label column (found only: {_listing(parsed.columns)})",
              "add a label column or pass --label-column")
    return last


def _check_distinct(parsed: _Parsed, picks: _Picks) -> None:
    used = [("text", picks.text), ("text pair", picks.pair), ("label", picks.label)]
    used += [("label", index) for index in picks.multi]
    seen: dict[int, str] = {}
    for role, index in used:
        if index is None:
            continue
        if index in seen:
            _fail(parsed.name, parsed.header_line, f"column {_show(parsed.columns[index])} was chosen as both"
                  f" {seen[index]} and {role}", "pass a different column for each role")
        seen[index] = role


# --------------------------------------------------------------------------- rows to LabeledData


def _text_cell(value, name: str, line: int, what: str) -> str | None:
    """A text cell as a string: table cells already are; a JSON number is taken as its digits."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    _fail(name, line, f"the {what} is a JSON {type(value).__name__}, not a string", f"write the {what} as a string")


def _json_label(value, name: str, line: int):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return tuple(str(item).strip() for item in value)
    if isinstance(value, dict):
        _fail(name, line, "the label is a JSON object", "write the label as a string, a number or a list of strings")
    return None if value is None else str(value).strip()


def _multi_hot_value(value, name: str, line: int, column: str) -> bool:
    if isinstance(value, bool):
        return value
    flag = MULTI_HOT_VALUES.get(str(value).strip().lower())
    if flag is None:
        _fail(name, line, f"label column {_show(column)} holds {_show(value)}, not 0 or 1",
              "write 1 where the label applies and 0 where it does not")
    return flag


def _build(parsed: _Parsed, picks: _Picks, require_labels: bool, want_labels: bool) -> LabeledData:
    """Check every row and collect texts, pairs and labels with their line numbers."""
    name, columns = parsed.name, parsed.columns
    multi_names = [columns[index] for index in picks.multi]
    has_labels = want_labels and (picks.label is not None or bool(picks.multi))
    texts, lines = [], []
    pairs = [] if picks.pair is not None else None
    labels = [] if has_labels else None
    for line, _, row in parsed.rows:
        text = _text_cell(row[picks.text], name, line, "text")
        if text is None or not text.strip():
            _fail(name, line, f"the text (column {_show(columns[picks.text])}) is empty or missing",
                  "fill it in or delete the row")
        texts.append(text)
        lines.append(line)
        if pairs is not None:
            pair = _text_cell(row[picks.pair], name, line, "text pair")
            if pair is None or not pair.strip():
                _fail(name, line, f"the second text (column {_show(columns[picks.pair])}) is empty or missing",
                      "fill it in or delete the row")
            pairs.append(pair)
        if labels is not None:
            labels.append(_multi_label_cells(row, picks.multi, multi_names, name, line) if picks.multi
                          else _label_cell(row[picks.label], columns[picks.label], name, line, require_labels))
    label_column = None if picks.label is None else columns[picks.label]
    return LabeledData(texts, labels, pairs, lines, name, multi_names or None, label_column)


def _label_cell(value, column: str, name: str, line: int, require_labels: bool):
    label = value.strip() if isinstance(value, str) else _json_label(value, name, line)
    if label is None or label == "":
        if require_labels:
            _fail(name, line, f"the label (column {_show(column)}) is missing", "fill it in or delete the row")
        return None
    return label


def _multi_label_cells(row: list, indices: list[int], names: list[str], name: str, line: int) -> tuple[str, ...]:
    """The names of the 0/1 label columns set to 1 in this row."""
    values = [row[index] for index in indices]
    if any(value is None or str(value).strip() == "" for value in values):
        _fail(name, line, "a 0/1 label is missing", "write 0 or 1 in every label column")
    return tuple(column for column, value in zip(names, values) if _multi_hot_value(value, name, line, column))


# --------------------------------------------------------------------------- reading


def read_labeled(path, text_column=None, label_column=None, text_pair_column=None, label_columns=None,
                 delimiter: str | None = None, has_header: bool | None = None,
                 require_labels: bool = True) -> LabeledData:
    r"""Read a labeled CSV, TSV or JSON Lines file.

    ``path`` is a file path, ``"-"`` for stdin, or an open stream. JSON Lines is
    chosen by the suffix (``.jsonl``, ``.ndjson``, ``.json``) or a first ``{``;
    anything else is a delimited table whose delimiter is ``delimiter`` or the one
    (``,`` tab ``;`` ``|``) that splits the first rows evenly. Tab-separated files
    treat ``"`` as text unless the file is visibly CSV-quoted. ``delimiter`` and
    ``has_header`` apply to tables only; JSON Lines keys are the column names.

    Columns are names or 0-based positions (``1`` or ``"1"``). Without them the
    text is the first of ``text``, ``sentence``, ``review``, ... (else column 0)
    and the label the first of ``label``, ``labels``, ``class``, ``category``,
    ``target``, ... (else the last column). ``label_columns`` reads several 0/1
    columns as one multi-label row (``labels[i]`` is the tuple of names set to 1).
    A ``sentence1``/``text_a``/``question1``/``premise`` text column brings its
    partner (``sentence2``, ...) as the pair, unless columns are given.

    ``has_header=None`` detects the header: the first row is one if it holds a
    requested or usual column name, or does not look like data (no numbers, no
    sentences, no values repeated in the rows below). With
    ``require_labels=False`` (files to predict on) the label column may be absent
    (``labels`` is then ``None``) and empty labels become ``None``.

    Raises :class:`BertforgeError`, one line naming the file, line and fix, for a
    missing or empty file, bytes that are not UTF-8, a missing column, a row with
    the wrong number of fields, an empty text, a missing label and bad JSON.

    >>> import io
    >>> data = read_labeled(io.StringIO("review,stars\nloved it,5\n\"long, slow\",2\n"))
    >>> data.texts, data.labels, data.lines
    (['loved it', 'long, slow'], ['5', '2'], [2, 3])
    >>> sms = io.StringIO("ham\tGo now, ok\nspam\tWIN cash\nham\tsee you\n")  # no header: 'ham' recurs
    >>> read_labeled(sms, text_column=1, label_column=0).labels
    ['ham', 'spam', 'ham']
    """
    name, text, suffix = _load(path)
    specs = [text_column, label_column, text_pair_column, *(label_columns or [])]
    if _looks_like_jsonl(text, suffix):
        parsed = _parse_jsonl(name, text)
    else:
        wanted = [str(spec) for spec in specs if isinstance(spec, str) and not spec.strip().isdigit()]
        parsed = _parse_table(name, text, suffix, delimiter, has_header, wanted)
    picks = _pick_columns(parsed, text_column, label_column, text_pair_column, label_columns,
                          require_labels, want_labels=True)
    return _build(parsed, picks, require_labels, want_labels=True)


def read_texts(path_or_stream, text_column=None, text_pair_column=None) -> LabeledData:
    r"""Read texts to predict on: CSV/TSV, JSON Lines, or plain text with one text per line.

    ``path_or_stream`` is a path, ``"-"`` for stdin, or an open stream. Tables
    and JSON Lines are read as in :func:`read_labeled` (labels are ignored); a
    file that is neither (no table suffix, no column requested, first line not a
    JSON object and no usual text column name in it) is plain text: every
    non-blank line is one text, and ``lines`` says which line it came from.

    >>> import io
    >>> data = read_texts(io.StringIO("first question ?\n\nsecond, with a comma\n"))
    >>> data.texts, data.lines, data.labels
    (['first question ?', 'second, with a comma'], [1, 3], None)
    >>> read_texts(io.StringIO('{"text": "hi there", "id": 7}\n')).texts
    ['hi there']
    """
    name, text, suffix = _load(path_or_stream)
    if _looks_like_jsonl(text, suffix) and (suffix in JSON_SUFFIXES or _first_line_is_json_object(text)):
        parsed = _parse_jsonl(name, text)
    elif suffix in TABLE_SUFFIXES or text_column is not None or text_pair_column is not None \
            or _first_line_names_a_text_column(text, suffix, name):
        wanted = [str(spec) for spec in (text_column, text_pair_column) if isinstance(spec, str)]
        parsed = _parse_table(name, text, suffix, None, None, wanted)
    else:
        return _plain_lines(name, text)
    picks = _pick_columns(parsed, text_column, None, text_pair_column, None, False, want_labels=False)
    return _build(parsed, picks, require_labels=False, want_labels=False)


def _first_line_is_json_object(text: str) -> bool:
    first = next((line for _, line in _physical_lines(text) if line.strip()), "")
    try:
        return isinstance(json.loads(first), dict)
    except json.JSONDecodeError:
        return False


def _first_line_names_a_text_column(text: str, suffix: str, name: str) -> bool:
    first_line = next((line for _, line in _physical_lines(text) if line.strip()), "")
    delimiter = _sniff_delimiter(text, suffix, name)
    return any(value.strip().lower() in TEXT_COLUMN_NAMES for value in first_line.rstrip("\r\n").split(delimiter))


def _plain_lines(name: str, text: str) -> LabeledData:
    texts, lines = [], []
    for number, line in _physical_lines(text):
        line = line.rstrip("\r\n")
        if line.strip():
            texts.append(line)
            lines.append(number)
    return LabeledData(texts, None, None, lines, name)


# --------------------------------------------------------------------------- tasks


def _as_number(value) -> float | None:
    """The finite number a label spells, or None (booleans and nan are not numbers here)."""
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


def _is_multi(value) -> bool:
    return isinstance(value, (tuple, list, set, frozenset, np.ndarray))


def detect_task(labels, label_separator: str | None = None, multi_columns: bool = False) -> str:
    """``"classification"``, ``"multi_label"`` or ``"regression"`` for these labels.

    Multi-label when several label columns were read (``multi_columns``, or
    rows holding tuples), or a separator splits labels; regression when every
    label is a number and some are not integers or there are more than 20
    distinct integers; classification otherwise. ``labels`` may be a
    :class:`LabeledData`.

    >>> detect_task(["pos", "neg"]), detect_task(["0.5", "3"]), detect_task(["1", "2", "1"])
    ('classification', 'regression', 'classification')
    >>> detect_task(["sport|news", "news"], label_separator="|")
    'multi_label'
    """
    if isinstance(labels, LabeledData):
        multi_columns = multi_columns or labels.label_names is not None
        labels = labels.labels or []
    if isinstance(labels, np.ndarray) and labels.ndim == 2:
        return "multi_label"
    if multi_columns or label_separator:
        return "multi_label"
    if any(_is_multi(label) for label in labels):
        return "multi_label"
    # Look at each distinct label once: files have many rows but few labels.
    distinct = {label.item() if isinstance(label, np.generic) else label for label in labels} - {None}
    numbers = {_as_number(label) for label in distinct}
    if distinct and None not in numbers:
        if any(not number.is_integer() for number in numbers) or len(numbers) > MAX_INTEGER_CLASSES:
            return "regression"
    return "classification"


@dataclass
class _Labels:
    """Labels with what a message needs: the file, and each row's line."""

    values: list
    name: str
    lines: list[int] | None = None
    column: str | None = None
    label_names: list[str] | None = None

    @classmethod
    def of(cls, labels) -> "_Labels":
        if isinstance(labels, LabeledData):
            if labels.labels is None:
                _fail(labels.path, None, "no label column was read", "add a label column or pass --label-column")
            return cls(list(labels.labels), labels.path, labels.lines, labels.label_column, labels.label_names)
        return cls(list(labels.tolist() if isinstance(labels, np.ndarray) else labels), "labels")

    def where(self, row: int) -> str:
        return f"line {self.lines[row]}" if self.lines is not None else f"item {row}"

    def fail(self, row: int | None, what: str, fix: str) -> NoReturn:
        if row is not None and self.lines is None:
            _fail(self.name, None, f"item {row}: {what}", fix)
        _fail(self.name, None if row is None else self.lines[row], what, fix)


def _split_label(label, separator: str | None) -> list[str]:
    if _is_multi(label):
        return [str(part).strip() for part in label if str(part).strip()]
    parts = str(label).split(separator) if separator else [str(label)]
    return [part.strip() for part in parts if part.strip()]


def _sorted_classes(classes) -> list[str]:
    """Numeric labels in numeric order (2 before 10), others alphabetically: the same every run."""
    classes = [str(label) for label in set(classes)]
    if classes and all(_as_number(label) is not None for label in classes):
        return sorted(classes, key=lambda label: (_as_number(label), label))
    return sorted(classes)


def _regression_target(source: _Labels, row: int) -> float:
    number = _as_number(source.values[row])
    if number is None:
        column = f" (column {_show(source.column)})" if source.column else ""
        source.fail(row, f"the label {_show(source.values[row])}{column} is not a number",
                    "a regression task needs a number in every row: fix it, or choose another --label-column")
    return number


def validate_training_labels(labels, task: str | None = None, label_separator: str | None = None) -> str:
    r"""Check that training labels can teach something; return the task.

    Every row needs a label; classification needs two classes or more,
    multi-label at least one label set somewhere, and regression numbers that
    are not all the same. ``labels`` is a :class:`LabeledData` (messages name
    its file and lines) or a plain list.

    >>> validate_training_labels(["spam", "ham"])
    'classification'
    >>> validate_training_labels(["ham", "ham"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    bertforge.errors.BertforgeError: labels: every row from item 0 to item 1 has the label 'ham'; a classifier needs...
    """
    source = _Labels.of(labels)
    task = task or detect_task(labels if isinstance(labels, LabeledData) else source.values, label_separator,
                               multi_columns=source.label_names is not None)
    _check_task(task)
    if not source.values:
        source.fail(None, "there are no rows", "add training examples")
    for row, label in enumerate(source.values):
        if label is None:
            source.fail(row, "the label is missing", "every training row needs a label: fill it in or delete the row")
    if task == "regression":
        targets = {_regression_target(source, row) for row in range(len(source.values))}
        if len(targets) < 2:
            _fail_one_value(source, f"the number {_show(source.values[0])}",
                            "a regression target must vary: check --label-column")
    elif task == "multi_label":
        if not any(_split_label(label, label_separator) for label in source.values):
            _fail_one_value(source, "no label set",
                            "a multi-label classifier needs rows with labels: check the label columns")
    else:
        classes = set(map(str, source.values))
        if len(classes) < 2:
            _fail_one_value(source, f"the label {_show(source.values[0])}",
                            "a classifier needs at least two classes:"
                            " check --label-column or add examples of the other classes")
        if len(source.values) >= 20 and len(classes) > len(source.values) // 2:
            # Most rows with a label of their own: the label column holds the texts.
            source.fail(None, f"{len(classes)} different labels in {len(source.values)} rows look like texts, "
                              "not classes", "name the columns with --text-column and --label-column")
    return task


def _fail_one_value(source: _Labels, value: str, fix: str) -> NoReturn:
    last = len(source.values) - 1
    if source.lines:
        span = f"from line {source.lines[0]} to line {source.lines[last]}"
    else:
        span = f"from item 0 to item {last}"
    column = f" in column {_show(source.column)}" if source.column else ""
    _fail(source.name, None, f"every row {span} has {value}{column}", fix)


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise BertforgeError(f"unknown task {_show(task)}; pass one of {', '.join(TASKS)}")


# --------------------------------------------------------------------------- label encoding


class EncodedLabels(tuple):
    """``(targets, kept)`` from :meth:`LabelEncoder.encode`, with ``dropped`` and ``unseen``.

    ``targets`` are the arrays to train on, ``kept`` the row positions they belong
    to (``data.subset(kept)`` lines texts up with targets), ``dropped`` how many
    rows were left out and ``unseen`` how many rows each dropped label had
    (missing labels count under ``None``).
    """

    def __new__(cls, targets: np.ndarray, kept: np.ndarray, dropped: int = 0, unseen: dict | None = None):
        encoded = super().__new__(cls, (targets, kept))
        encoded.dropped = dropped
        encoded.unseen = unseen or {}
        return encoded

    @property
    def targets(self) -> np.ndarray:
        return self[0]

    @property
    def kept(self) -> np.ndarray:
        return self[1]


@dataclass(frozen=True)
class LabelEncoder:
    r"""Labels to training targets and back, fitted on the training labels only.

    ``classes`` are sorted (numbers numerically) so ids are the same every run;
    for 0/1 label columns they keep the file's column order. Regression has no
    classes. ``to_dict``/``from_dict`` store it in a model's ``bertforge.json``;
    ``id2label``/``label2id``/``num_labels``/``problem_type`` are the fields a
    ``config.json`` wants.

    >>> encoder = LabelEncoder.fit(["spam", "ham", "ham"])
    >>> encoder.id2label, encoder.decode([1, 0])
    ({0: 'ham', 1: 'spam'}, ['spam', 'ham'])
    >>> LabelEncoder.from_dict(encoder.to_dict()) == encoder
    True
    >>> tags = LabelEncoder.fit(["a|b", "b"], label_separator="|")
    >>> tags.task, tags.encode(["b|a", "a"]).targets.tolist()
    ('multi_label', [[1.0, 1.0], [1.0, 0.0]])
    """

    task: str
    classes: tuple[str, ...] = ()
    label_separator: str | None = None

    def __post_init__(self):
        _check_task(self.task)
        object.__setattr__(self, "classes", tuple(self.classes))

    @classmethod
    def fit(cls, labels, task: str | None = None, label_separator: str | None = None) -> "LabelEncoder":
        """Learn the classes of training ``labels`` (a :class:`LabeledData` or a list).

        ``task`` defaults to :func:`detect_task`. The labels are first checked
        with :func:`validate_training_labels`.
        """
        source = _Labels.of(labels)
        task = validate_training_labels(labels if isinstance(labels, LabeledData) else source.values,
                                        task, label_separator)
        if task == "regression":
            return cls(task)
        if task == "multi_label":
            if source.label_names is not None:
                return cls(task, tuple(source.label_names))
            found = {part for label in source.values for part in _split_label(label, label_separator)}
            return cls(task, tuple(_sorted_classes(found)), label_separator)
        return cls(task, tuple(_sorted_classes(map(str, source.values))))

    @cached_property
    def label2id(self) -> dict[str, int]:
        if self.task == "regression":
            return {"LABEL_0": 0}
        return {label: index for index, label in enumerate(self.classes)}

    @cached_property
    def id2label(self) -> dict[int, str]:
        return {index: label for label, index in self.label2id.items()}

    @property
    def num_labels(self) -> int:
        """Output width of the classifier head: 1 for regression."""
        return 1 if self.task == "regression" else len(self.classes)

    @property
    def problem_type(self) -> str:
        """The ``transformers`` name of the task, for ``config.json``."""
        return PROBLEM_TYPES[self.task]

    def encode(self, data, unknown: str = "error") -> EncodedLabels:
        """Targets for ``data`` (a :class:`LabeledData` or a list of labels).

        Classification gives int64 class ids ``(n,)``, multi-label float32 multi-hot
        ``(n, num_labels)``, regression float32 ``(n,)``. A label training never saw
        (or a missing one) raises one line listing up to five such labels with the
        line of each first occurrence, unless ``unknown="drop"``: then those rows
        are left out, and the result's ``kept``, ``dropped`` and ``unseen`` say which.
        A label that is not a number in a regression task always raises.
        """
        if unknown not in ("error", "drop"):
            raise BertforgeError(f"unknown={_show(unknown)} is not a choice; pass 'error' or 'drop'")
        source = _Labels.of(data)
        kept, first_row, rows_per_label = [], {}, {}
        for row, label in enumerate(source.values):
            unseen = self._unseen_in(label)
            for key in unseen:
                first_row.setdefault(key, row)
                rows_per_label[key] = rows_per_label.get(key, 0) + 1
            if not unseen:
                kept.append(row)
        if first_row and unknown == "error":
            self._fail_unseen(source, first_row)
        targets = self._targets(source, kept)
        return EncodedLabels(targets, np.array(kept, dtype=np.int64), len(source.values) - len(kept), rows_per_label)

    def _unseen_in(self, label) -> list:
        """Labels in this row that training never saw; ``[None]`` for a missing label."""
        if label is None:
            return [None]
        if self.task == "regression":
            return []
        if self.task == "classification":
            return [] if str(label) in self.label2id else [str(label)]
        return [part for part in _split_label(label, self.label_separator) if part not in self.label2id]

    def _targets(self, source: _Labels, rows: list[int]) -> np.ndarray:
        values = source.values
        if self.task == "regression":
            return np.array([_regression_target(source, row) for row in rows], dtype=np.float32)
        if self.task == "classification":
            return np.array([self.label2id[str(values[row])] for row in rows], dtype=np.int64)
        multi_hot = np.zeros((len(rows), len(self.classes)), dtype=np.float32)
        for position, row in enumerate(rows):
            multi_hot[position, [self.label2id[part] for part in _split_label(values[row], self.label_separator)]] = 1.0
        return multi_hot

    def _fail_unseen(self, source: _Labels, first_rows: dict) -> NoReturn:
        if None in first_rows:
            source.fail(first_rows[None], "the label is missing",
                        "fill it in, or pass --unknown-labels drop to skip rows without a label")
        shown = [f"{_show(label)} ({source.where(row)})" for label, row in list(first_rows.items())[:5]]
        more = f" and {len(first_rows) - 5} more" if len(first_rows) > 5 else ""
        count = f"{len(first_rows)} label" + ("" if len(first_rows) == 1 else "s")
        _fail(source.name, None, f"{count} never seen in training: {', '.join(shown)}{more}"
              f" (training had {_listing(list(self.classes))})",
              "fix them, or pass --unknown-labels drop to skip those rows")

    def decode(self, ids, threshold: float = 0.5) -> list:
        """Labels for class ids; multi-label takes ``(n, k)`` scores and gives tuples of labels
        scoring at least ``threshold``; regression returns the floats unchanged."""
        values = np.asarray(ids)
        if self.task == "regression":
            return [float(value) for value in values.reshape(-1)]
        if self.task == "multi_label":
            return [tuple(self.classes[k] for k in np.flatnonzero(row >= threshold)) for row in np.atleast_2d(values)]
        out_of_range = values[(values < 0) | (values >= len(self.classes))]
        if out_of_range.size:
            raise BertforgeError(f"class id {int(out_of_range[0])} is out of range; this encoder has"
                                 f" {len(self.classes)} classes (ids 0 to {len(self.classes) - 1})")
        return [self.classes[int(value)] for value in values.reshape(-1)]

    def to_dict(self) -> dict:
        """JSON-ready fields for ``bertforge.json`` (and ``config.json``: string keys in ``id2label``)."""
        return {"task": self.task, "classes": list(self.classes), "label_separator": self.label_separator,
                "num_labels": self.num_labels, "problem_type": self.problem_type,
                "id2label": {str(index): label for index, label in self.id2label.items()},
                "label2id": dict(self.label2id)}

    @classmethod
    def from_dict(cls, saved: dict) -> "LabelEncoder":
        """The encoder saved by :meth:`to_dict`; also reads a ``config.json`` (``id2label``, ``problem_type``)."""
        tasks = {problem: task for task, problem in PROBLEM_TYPES.items()}
        task = saved.get("task") or tasks.get(saved.get("problem_type") or "single_label_classification")
        if task is None:
            raise BertforgeError(f"saved labels have an unknown problem_type {_show(saved.get('problem_type'))};"
                                 " re-save the model with bertforge")
        classes = saved.get("classes")
        if classes is None and task != "regression":
            id2label = saved.get("id2label") or {}
            classes = [id2label[key] for key in sorted(id2label, key=int)]
        return cls(task, tuple(classes or ()), saved.get("label_separator"))


# --------------------------------------------------------------------------- splitting


def _holdout_size(count: int, fraction: float) -> int:
    """round(count * fraction), but leaving at least one on each side when there are two."""
    if count < 2:
        return 0
    return min(max(1, round(count * fraction)), count - 1)


def stratified_split(labels, fraction: float = 0.1, seed: int = 0,
                     task: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(train_indices, holdout_indices)``, sorted int64 row positions.

    Classification splits each class apart (sorted class order, so a seed gives
    the same split every run): a class with two examples or more keeps at least
    one on each side, a class with one stays in train. Regression and
    multi-label split at random. ``labels`` may be a :class:`LabeledData`.

    >>> labels = ["a"] * 8 + ["b"] * 2
    >>> train, holdout = stratified_split(labels, fraction=0.25, seed=0)
    >>> len(train), len(holdout), sorted(labels[i] for i in holdout)
    (7, 3, ['a', 'a', 'b'])
    """
    if not 0 < fraction < 1:
        raise BertforgeError(f"the holdout fraction is {fraction}; pass a number between 0 and 1, like 0.1")
    values = labels.labels if isinstance(labels, LabeledData) else labels
    if values is None:
        raise BertforgeError("there are no labels to split; read the file with its label column")
    task = task or detect_task(labels)
    rng = np.random.default_rng(seed)
    count = len(values)
    if task != "classification":
        order = rng.permutation(count)
        size = _holdout_size(count, fraction)
        return np.sort(order[size:]).astype(np.int64), np.sort(order[:size]).astype(np.int64)
    by_class: dict[str, list[int]] = {}
    for row, label in enumerate(values.tolist() if isinstance(values, np.ndarray) else values):
        by_class.setdefault(str(label), []).append(row)
    train, holdout = [], []
    for label in _sorted_classes(by_class):
        rows = rng.permutation(by_class[label])
        size = _holdout_size(len(rows), fraction)
        holdout.extend(rows[:size].tolist())
        train.extend(rows[size:].tolist())
    return np.array(sorted(train), dtype=np.int64), np.array(sorted(holdout), dtype=np.int64)
