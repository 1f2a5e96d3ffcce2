r"""Read labeled examples (or texts to predict on) into :class:`LabeledData`.

The seed workflow is a ``text,label`` CSV each for train, validation and test.
:func:`read_labeled` reads such files (CSV, TSV or JSON Lines; with or without a
header; text pairs; several 0/1 label columns) and the same rows given in memory
(a DataFrame, a list of dicts or of tuples); :func:`read_texts` reads the texts a
model predicts on, plain text files included. Every row is checked: an empty
text or a missing label fails with one line naming the file and line (or row).

>>> import io
>>> read_labeled(io.StringIO("text,label\ngreat film,pos\ndull,neg\n")).labels
['pos', 'neg']
>>> read_labeled([("great film", "pos"), ("dull", "neg")]).path
'<list of 2 rows>'
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from bertforge.data.labeled.columns import (
    KNOWN_COLUMN_NAMES,
    Picks,
    columns_note,
    find_column,
    first_row_is_header,
    names_a_text_column,
    pick_columns,
)
from bertforge.data.labeled.formats import (
    JSON_SUFFIXES,
    TABLE_SUFFIXES,
    Table,
    delimited_table,
    first_line_is_json_object,
    is_missing,
    load,
    looks_like_jsonl,
    normalize_delimiter,
    parse_delimited,
    parse_jsonl,
    physical_lines,
    sniff_delimiter,
)
from bertforge.data.labeled.in_memory import is_in_memory, rows_table
from bertforge.data.labeled.messages import fail, listing, places, show

MULTI_HOT_VALUES = {"1": True, "0": False, "1.0": True, "0.0": False,
                    "true": True, "false": False, "yes": True, "no": False}


@dataclass
class LabeledData:
    r"""Texts (and optional pairs and labels) read from one source, with where each row was.

    ``labels`` holds one entry per text: a string for one label column (the raw
    cell, stripped), a tuple of label names for a multi-label row (0/1 columns or
    a JSON list), or ``None`` where a prediction file has no label. ``lines[i]``
    is where row ``i`` was, counted in ``unit``: the line in the file where it
    starts (``"line"``), or its 0-based position in rows given in memory
    (``"row"``). ``label_names`` lists the 0/1 label columns of a multi-label
    file, in file order. ``text_pair_column`` names the column the second texts
    were read from, where the source names its columns. ``notes`` are lines worth
    telling the user about how the source was read (columns guessed, rows
    skipped); a subset has none.

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
    unit: str = "line"
    notes: list[str] = field(default_factory=list)
    text_pair_column: str | None = None

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices) -> "LabeledData":
        """The rows at ``indices`` (positions, not line numbers), in that order."""
        indices = [int(i) for i in indices]

        def pick(values):
            return None if values is None else [values[i] for i in indices]

        return LabeledData(pick(self.texts), pick(self.labels), pick(self.text_pairs), pick(self.lines),
                           self.path, self.label_names, self.label_column, self.unit,
                           text_pair_column=self.text_pair_column)


# --------------------------------------------------------------------------- cells


def _value_kind(table: Table, value) -> str:
    return ("JSON " if table.cells == "json" else "") + type(value).__name__


def _text_cell(table: Table, value, line: int, what: str) -> str | None:
    """A text cell as a string: table cells already are; a number is taken as its digits."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    table.fail(line, f"the {what} is a {_value_kind(table, value)}, not a string", f"write the {what} as a string")


def _value_label(table: Table, value, line: int):
    """A label that is not a table's string: booleans, numbers, lists (multi-label), or None."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        if any(isinstance(item, (list, tuple, dict)) for item in value):
            table.fail(line, "the label is a list that holds lists or objects",
                       "write a multi-label row as a flat list of strings, like [\"sport\", \"news\"]")
        return tuple(str(item).strip() for item in value)
    if isinstance(value, dict):
        table.fail(line, "the label is a JSON object" if table.cells == "json" else "the label is a dict",
                   "write the label as a string, a number or a list of strings")
    return None if value is None else str(value).strip()


def _multi_hot_value(table: Table, value, line: int, column: str) -> bool:
    if isinstance(value, bool):
        return value
    flag = MULTI_HOT_VALUES.get(str(value).strip().lower())
    if flag is None:
        table.fail(line, f"label column {show(column)} holds {show(value)}, not 0 or 1",
                   "write 1 where the label applies and 0 where it does not")
    return flag


def _label_cell(table: Table, value, line: int, separator: str | None = None):
    """The label of a one-label row, or None when the cell holds no value (see ``is_missing``);
    with ``separator``, a cell of text is the tuple of the labels it joins."""
    if is_missing(value):
        return None
    label = value.strip() if isinstance(value, str) else _value_label(table, value, line)
    if separator and isinstance(label, str):
        label = tuple(part.strip() for part in label.split(separator) if part.strip())
    return None if is_missing(label) else label


def _missing_labels(table: Table, column: str, lines: list[int], values: list) -> None:
    """One line naming the rows whose label is missing, and the option that skips them."""
    markers = sorted({show(value) for value in values if isinstance(value, str) and value.strip()})
    what = f"the label (column {show(column)}) is missing" + (f" ({', '.join(markers[:5])})" if markers else "")
    # Named as fine-tuning takes it: evaluating a file has no such option.
    skip = "pass drop_missing_labels=True" if table.in_memory else "fine-tune with --drop-missing-labels"
    one = len(lines) == 1
    fix = (f"fill {'it' if one else 'them'} in or delete {'the row' if one else 'those rows'}, or {skip} to skip "
           "rows without a label")
    fail(table.name, None, f"{places(table.unit, lines)}: {what}", fix)


def _multi_label_cells(table: Table, row: list, indices: list[int], names: list[str], line: int) -> tuple[str, ...]:
    """The names of the 0/1 label columns set to 1 in this row."""
    values = [row[index] for index in indices]
    if any(value is None or str(value).strip() == "" for value in values):
        table.fail(line, "a 0/1 label is missing", "write 0 or 1 in every label column")
    return tuple(column for column, value in zip(names, values) if _multi_hot_value(table, value, line, column))


def _build(table: Table, picks: Picks, require_labels: bool, want_labels: bool,
           drop_missing_labels: bool = False, label_separator: str | None = None) -> LabeledData:
    """Check every row and collect texts, pairs and labels with their line numbers."""
    columns = table.columns
    multi_names = [columns[index] for index in picks.multi]
    has_labels = want_labels and (picks.label is not None or bool(picks.multi))
    texts, lines = [], []
    pairs = [] if picks.pair is not None else None
    labels = [] if has_labels else None
    missing, missing_values = [], []  # rows without a label, and what their cells held
    for line, _, row in table.rows:
        label = None
        if labels is not None and not picks.multi:
            label = _label_cell(table, row[picks.label], line, label_separator)
            if label is None and require_labels:
                missing.append(line)
                missing_values.append(row[picks.label])
                if drop_missing_labels:
                    continue
        text = _text_cell(table, row[picks.text], line, "text")
        if text is None or not text.strip():
            table.fail(line, f"the text (column {show(columns[picks.text])}) is empty or missing",
                       "fill it in or delete the row")
        texts.append(text)
        lines.append(line)
        if pairs is not None:
            pair = _text_cell(table, row[picks.pair], line, "text pair")
            if pair is None or not pair.strip():
                table.fail(line, f"the second text (column {show(columns[picks.pair])}) is empty or missing",
                           "fill it in or delete the row")
            pairs.append(pair)
        if labels is not None:
            labels.append(_multi_label_cells(table, row, picks.multi, multi_names, line) if picks.multi else label)
    label_column = None if picks.label is None else columns[picks.label]
    pair_column = columns[picks.pair] if picks.pair is not None and table.has_header else None
    notes = [note] if want_labels and (note := columns_note(table, picks)) else []
    if missing and not drop_missing_labels:
        _missing_labels(table, label_column, missing, missing_values)
    if missing:
        rows = f"{len(missing)} row" + ("" if len(missing) == 1 else "s")
        notes.append(f"{table.name}: skipped {rows} without a label ({places(table.unit, missing)})")
    return LabeledData(texts, labels, pairs, lines, table.name, multi_names or None, label_column, table.unit,
                       notes, pair_column)


# --------------------------------------------------------------------------- reading


def _parse_table(name: str, text: str, suffix: str, delimiter: str | None, has_header: bool | None,
                 wanted: list[str]) -> Table:
    delimiter = normalize_delimiter(delimiter, name) or sniff_delimiter(text, suffix, name)
    records = parse_delimited(text, delimiter, name)
    if has_header is None:
        has_header = first_row_is_header(records, wanted)
    return delimited_table(name, records, has_header, delimiter)


def read_labeled(path, text_column=None, label_column=None, text_pair_column=None, label_columns=None,
                 delimiter: str | None = None, has_header: bool | None = None,
                 require_labels: bool = True, drop_missing_labels: bool = False,
                 label_separator: str | None = None) -> LabeledData:
    r"""Read a labeled CSV, TSV or JSON Lines file, or labeled rows in memory.

    ``path`` is a file path, ``"-"`` for stdin, an open stream, or rows in memory:
    a pandas DataFrame, a list of dicts (``[{"text": ..., "label": ...}]``) or a
    list of tuples (``[(text, label)]``, columns by position). JSON Lines is
    chosen by the suffix (``.jsonl``, ``.ndjson``, ``.json``) or a first ``{``;
    anything else is a delimited table whose delimiter is ``delimiter`` or the one
    (``,`` tab ``;`` ``|``) that splits the first rows evenly. Tab-separated files
    treat ``"`` as text unless the file is visibly CSV-quoted. ``delimiter`` and
    ``has_header`` apply to files holding tables only; JSON Lines keys, dict keys
    and DataFrame columns are the column names.

    Columns are names or 0-based positions (``1`` or ``"1"``). Without them the
    text is the first of ``text``, ``sentence``, ``review``, ... (else column 0)
    and the label the first of ``label``, ``labels``, ``class``, ``category``,
    ``target``, ... (else the last column). ``label_columns`` reads several 0/1
    columns as one multi-label row (``labels[i]`` is the tuple of names set to 1);
    ``label_separator`` reads one label column as several labels joined in a cell
    (``labels[i]`` is the tuple of them).
    A ``sentence1``/``text_a``/``question1``/``premise`` text column brings its
    partner (``sentence2``, ...) as the pair, unless columns are given.

    ``has_header=None`` detects the header: the first row is one if it holds a
    requested or usual column name, or does not look like data (no numbers, no
    sentences, no values repeated in the rows below). With
    ``require_labels=False`` (files to predict on) the label column may be absent
    (``labels`` is then ``None``) and empty labels become ``None``.

    A label is missing when its cell is empty or spells no value: ``n/a``,
    ``#N/A``, ``nan``, ``null``, ``<NA>`` (any case), NUL bytes only, a JSON
    ``null`` or a DataFrame's NaN (``None`` and ``NA`` stay labels: both are real
    class names). Training rows need a label: the error names every such line,
    unless ``drop_missing_labels`` skips them (with a note in ``notes``). Columns
    that were guessed rather than given are said in ``notes`` too.

    Raises :class:`BertforgeError`, one line naming the file, line and fix, for a
    missing or empty file, bytes that are not UTF-8, a missing column, a row with
    the wrong number of fields, an empty text, a missing label and bad JSON. For
    rows in memory the line is the row's position (``row 3``) and the source is
    named ``<DataFrame>`` or ``<list of N rows>``, as is :attr:`LabeledData.path`.

    >>> import io
    >>> data = read_labeled(io.StringIO("review,stars\nloved it,5\n\"long, slow\",2\n"))
    >>> data.texts, data.labels, data.lines
    (['loved it', 'long, slow'], ['5', '2'], [2, 3])
    >>> sms = io.StringIO("ham\tGo now, ok\nspam\tWIN cash\nham\tsee you\n")  # no header: 'ham' recurs
    >>> read_labeled(sms, text_column=1, label_column=0).labels
    ['ham', 'spam', 'ham']
    >>> read_labeled(io.StringIO("text,tags\nrain at the match,weather|sport\n"), label_separator="|").labels
    [('weather', 'sport')]
    >>> rows = [{"review": "loved it", "stars": 5}, {"review": "", "stars": 2}]
    >>> read_labeled(rows, label_column="stars")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    bertforge.errors.BertforgeError: <list of 2 rows>: row 1: the text (column 'review') is empty or missing; ...
    """
    specs = [text_column, label_column, text_pair_column, *(label_columns or [])]
    if is_in_memory(path):
        table = rows_table(path)
    else:
        name, text, suffix = load(path)
        if looks_like_jsonl(text, suffix):
            table = parse_jsonl(name, text)
        else:
            wanted = [str(spec) for spec in specs if isinstance(spec, str) and not spec.strip().isdigit()]
            table = _parse_table(name, text, suffix, delimiter, has_header, wanted)
    picks = pick_columns(table, text_column, label_column, text_pair_column, label_columns,
                         require_labels, want_labels=True)
    return _build(table, picks, require_labels, want_labels=True, drop_missing_labels=drop_missing_labels,
                  label_separator=label_separator)


def read_texts(path_or_stream, text_column=None, text_pair_column=None, trained=None) -> LabeledData:
    r"""Read texts to predict on: CSV/TSV, JSON Lines, plain text with one text per line, or rows in memory.

    ``path_or_stream`` is a path, ``"-"`` for stdin, an open stream, or rows in
    memory as :func:`read_labeled` takes them (a list of plain strings too: one
    text each). Tables and JSON Lines are read as in :func:`read_labeled` (labels
    are ignored); a file that is neither (no table suffix, no column requested,
    first line not a JSON object and no usual text column name in it) is plain
    text: every non-blank line is one text, and ``lines`` says which line it came
    from.

    ``trained`` holds the ``text_column`` and ``text_pair_column`` a model was
    fine-tuned on. A table is read by them where no column is given: a first
    line that names them makes a stream a table, a stream of lines split by the
    same number of tabs is a headerless table when they are positions, and a
    table without them fails naming the columns it has and the option to pass.
    Plain lines stay one text each whatever they say.

    >>> import io
    >>> data = read_texts(io.StringIO("first question ?\n\nsecond, with a comma\n"))
    >>> data.texts, data.lines, data.labels
    (['first question ?', 'second, with a comma'], [1, 3], None)
    >>> read_texts(io.StringIO('{"text": "hi there", "id": 7}\n')).texts
    ['hi there']
    >>> read_texts(["hi there", "bye"]).texts
    ['hi there', 'bye']
    >>> read_texts(io.StringIO("Who wrote it ?\n"), trained={"text_column": "question"}).texts
    ['Who wrote it ?']
    >>> read_texts(io.StringIO("id,question\n7,Who wrote it ?\n"), trained={"text_column": "question"}).texts
    ['Who wrote it ?']
    """
    known = [spec for spec in ((trained or {}).get(key) for key in ("text_column", "text_pair_column"))
             if spec is not None]
    if is_in_memory(path_or_stream):
        table = rows_table(path_or_stream)
    else:
        name, text, suffix = load(path_or_stream)
        named = [str(spec) for spec in known if not _is_position(spec)]
        positions = [int(spec) for spec in known if _is_position(spec)]
        wanted = [str(spec) for spec in (text_column, text_pair_column) if isinstance(spec, str)] + named
        if looks_like_jsonl(text, suffix) and (suffix in JSON_SUFFIXES or first_line_is_json_object(text)):
            table = parse_jsonl(name, text)
        elif suffix in TABLE_SUFFIXES or text_column is not None or text_pair_column is not None \
                or _first_line_names_a_text_column(text, suffix, name, named):
            table = _parse_table(name, text, suffix, None, None, wanted)
        elif positions and _tab_separated(text, max(positions)):
            # Lines laid out as the model's headerless training file: a header only if it names columns.
            table = _parse_table(name, text, suffix, "\t", _first_line_names_columns(text), wanted)
        else:
            return _plain_lines(name, text)
    if known and not _bare_texts(table):
        text_column, text_pair_column = (
            given if given is not None else _trained_column(table, (trained or {}).get(key), flag, role)
            for given, key, flag, role in ((text_column, "text_column", "--text-column", "text"),
                                           (text_pair_column, "text_pair_column", "--text-pair-column",
                                            "second text")))
    picks = pick_columns(table, text_column, None, text_pair_column, None, False, want_labels=False)
    return _build(table, picks, require_labels=False, want_labels=False)


def _is_position(spec) -> bool:
    return isinstance(spec, int) or str(spec).strip().lstrip("-").isdigit()


def _bare_texts(table: Table) -> bool:
    """One column and no header: a list of texts, whatever columns a model was trained on."""
    return len(table.columns) == 1 and not table.has_header


def _trained_column(table: Table, spec, flag: str, role: str):
    """The column a model was trained on, where this table has it; else one line naming the
    columns there are and the option that picks one."""
    if spec is None or find_column(table, spec, flag, optional=True) is not None:
        return spec
    flag = table.option(flag)
    found = f"found: {listing(table.columns)}" if table.has_header else \
        f"no header, {len(table.columns)} columns"
    shown = str(spec).strip() if _is_position(spec) else show(str(spec))
    table.fail(table.header_line, f"the model was fine-tuned with its {role} in {table.column_word} {shown}, which "
               f"this file does not have ({found})", f"pass {flag} with the {table.column_word} that holds it here")


def _tab_separated(text: str, position: int) -> bool:
    """Whether the first lines all hold the same number of tabs, enough for ``position``:
    a headerless table such as a model trained by column positions reads. Tabs are rare in
    plain texts; commas are not, so they never make lines a table here."""
    lines = itertools.islice((line for _, line in physical_lines(text) if line.strip()), 100)
    counts = {line.count("\t") for line in lines}
    return len(counts) == 1 and 0 <= position <= counts.pop() >= 1


def _first_line_names_columns(text: str) -> bool:
    first_line = next((line for _, line in physical_lines(text) if line.strip()), "")
    return bool({value.strip().lower() for value in first_line.split("\t")} & KNOWN_COLUMN_NAMES)


def _first_line_names_a_text_column(text: str, suffix: str, name: str, names: list[str] = ()) -> bool:
    first_line = next((line for _, line in physical_lines(text) if line.strip()), "")
    delimiter = sniff_delimiter(text, suffix, name)
    values = first_line.rstrip("\r\n").split(delimiter)
    wanted = {value.lower() for value in names}
    return names_a_text_column(values) or any(value.strip().lower() in wanted for value in values)


def _plain_lines(name: str, text: str) -> LabeledData:
    texts, lines = [], []
    for number, line in physical_lines(text):
        line = line.rstrip("\r\n")
        if line.strip():
            texts.append(line)
            lines.append(number)
    return LabeledData(texts, None, None, lines, name)
