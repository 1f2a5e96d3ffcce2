r"""Read word-tagged sentences (or sentences to tag) into :class:`TaggedData`.

:func:`read_tagged` reads training and evaluation data: CoNLL files, JSON Lines
of word lists or of texts with character spans, and the same rows given in
memory. :func:`read_untagged` reads what a model tags: plain text (one sentence
a line), JSON Lines, CoNLL, or rows in memory. :func:`looks_tagged` tells,
cheaply, whether a training source is word-tagged at all, so the task can be
chosen without being named.

>>> import io
>>> data = read_tagged(io.StringIO("Hi O\nParis B-LOC\n\nBye O\n"))
>>> data.words, data.tags, data.scheme, data.where(1)
([['Hi', 'Paris'], ['Bye']], [['O', 'B-LOC'], ['O']], 'iob2', '<stream>: line 4')
>>> read_untagged(["Zürich is nice."]).offsets
[[(0, 6), (7, 9), (10, 14), (14, 15)]]
>>> looks_tagged([(["Hi", "Paris"], ["O", "B-LOC"])]), looks_tagged([("great film", "pos")])
(True, False)
"""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

from bertforge.data.labeled.formats import (
    JSON_SUFFIXES,
    TABLE_SUFFIXES,
    first_line_is_json_object,
    load,
    looks_like_jsonl,
    physical_lines,
)
from bertforge.data.labeled.in_memory import is_in_memory, rows_table, source_name
from bertforge.data.labeled.messages import fail, show
from bertforge.data.labeled.read import read_texts
from bertforge.data.tagged.conll import CONLL_SUFFIXES, DOCUMENT_START, ConllSentences, parse_conll
from bertforge.data.tagged.examples import TaggedData, joined
from bertforge.data.tagged.jsonl import SPAN_KEYS, TAG_KEYS, TEXT_KEY, TOKENS_KEY, parse_records, records_data
from bertforge.data.tagged.schemes import InvalidTag, detect_scheme
from bertforge.data.tagged.words import split_words

SNIFF_BYTES = 65536
SNIFF_LINES = 200
_TAG_LIKE = re.compile(r"O|[BIES]-\S+")
_TAGGED_FIX = "write one word and its tag per line with a blank line between sentences, or one JSON object per line"
_UNTAGGED_FIX = "write one sentence per line"
_ROWS_FIX = ("give rows as {'tokens': [...], 'tags': [...]}, {'text': ..., 'entities': [...]}"
             " or (tokens, tags) pairs")


# --------------------------------------------------------------------------- public readers


def read_tagged(source, tag_column=None) -> TaggedData:
    r"""Read labeled sentences, one tag per word, and detect their tag scheme.

    ``source`` is a path, ``"-"`` for stdin, an open stream, or rows in memory: a
    list of dicts (``{"tokens": [...], "tags": [...]}`` or ``{"text": ...,
    "entities": [...]}``), a list of ``(tokens, tags)`` pairs, or a pandas
    DataFrame with those columns. A file whose first non-blank character is
    ``{`` (or named ``.jsonl``, ``.ndjson``, ``.json``) is JSON Lines
    (:mod:`.jsonl`), any other is CoNLL (:mod:`.conll`). ``tag_column`` picks
    the tags: a 0-based column of a CoNLL file (negative from the end; the last
    by default), or a key of the records.

    ``scheme`` is what :func:`~bertforge.data.tagged.schemes.detect_scheme` finds
    (``iob2`` for texts with spans, whose tags are written in IOB2). Bad input
    raises :class:`~bertforge.errors.BertforgeError`, one line naming the file and
    line (or row) and the fix: bytes that are not UTF-8, an empty file or
    sentence, a missing tag, lines with uneven columns, tags that fit no scheme,
    spans that cut words or overlap.

    >>> import io
    >>> read_tagged(io.StringIO("EU B-ORG\nrejects O\nGerman B-MISC\ncall O\n")).scheme
    'iob2'
    >>> read_tagged([{"text": "Hi Paris", "entities": [{"start": 3, "end": 8, "label": "LOC"}]}]).tags
    [['O', 'B-LOC']]
    >>> read_tagged(io.StringIO("in O\nNew B-LOC\nYork X-LOC\n"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    bertforge.errors.BertforgeError: <stream>: line 3: tag 'X-LOC' has the prefix 'X', ...; use O or B-, I-, ...
    """
    if is_in_memory(source):
        name, unit, records = _memory_records(source, want_tags=True)
        data = records_data(records, name, unit, tag_column, want_tags=True)
        return _with_scheme(data)
    name, text, suffix = _load(source, _TAGGED_FIX)
    if looks_like_jsonl(text, suffix):
        records = parse_records(name, text)
        return _with_scheme(records_data(records, name, "line", tag_column, want_tags=True))
    sentences = parse_conll(name, text, tag_column, want_tags=True)
    _check_not_empty(name, sentences, _TAGGED_FIX)
    return _with_scheme(_conll_data(name, sentences), sentences.word_lines)


def read_untagged(source, tag_column=None, text_column=None, trained=None) -> TaggedData:
    r"""Read sentences to tag: their words and where each word is in its text (``tags`` is ``None``).

    Files: JSON Lines (first line a JSON object, or a JSON suffix) with
    ``"text"`` or ``"tokens"``; CoNLL when named ``.conll``, ``.iob``, ``.bio``
    or ``.bioes`` or laid out like tagged CoNLL (words from the first column,
    any tags ignored); CSV and TSV (or any file with ``text_column`` named) by
    their text column, as texts to classify are read; otherwise plain text,
    every non-blank line a sentence.
    Texts are split into words as BERT splits them (:func:`.words.split_words`)
    and ``offsets`` point into the text as given. In memory: a list of texts, a
    list of token lists, or the rows :func:`read_tagged` takes. ``tag_column``
    is accepted so that both readers take the same arguments; tags are never read.
    ``trained`` (the columns a model was trained on) reads a table as
    :func:`~bertforge.data.labeled.read_texts` does.

    >>> import io
    >>> data = read_untagged(io.StringIO("Hello, world\n\n  Bye now\n"))
    >>> data.words, data.lines, data.offsets[1]
    ([['Hello', ',', 'world'], ['Bye', 'now']], [1, 3], [(2, 5), (6, 9)])
    >>> read_untagged([["New", "York"]]).texts
    ['New York']
    """
    if is_in_memory(source):
        name, unit, records = _memory_records(source, want_tags=False)
        return records_data(records, name, unit, want_tags=False)
    name, text, suffix = _load(source, _UNTAGGED_FIX)
    if looks_like_jsonl(text, suffix) and (suffix in JSON_SUFFIXES or first_line_is_json_object(text)):
        return records_data(parse_records(name, text), name, "line", want_tags=False)
    if suffix in CONLL_SUFFIXES or _looks_like_tagged_conll(line for _, line in physical_lines(text)):
        sentences = parse_conll(name, text, want_tags=False)
        _check_not_empty(name, sentences, "write one word per line with a blank line between sentences")
        return _conll_data(name, sentences)
    if suffix in TABLE_SUFFIXES or text_column is not None:
        # A path is read again by the table reader (it knows the suffix); stdin only once.
        path = isinstance(source, (str, os.PathLike)) and source != "-"
        table = read_texts(source if path else io.StringIO(text), text_column=text_column, trained=trained)
        return _split_texts(name, table.texts, table.lines)
    return _plain_lines(name, text)


def looks_tagged(source) -> bool:
    """Whether a training source holds word-tagged sentences; reads at most the first 64 KB, never raises.

    True for rows in memory of the forms :func:`read_tagged` takes; for a file
    named ``.conll``, ``.iob``, ``.bio`` or ``.bioes``; for JSON Lines whose first
    record has ``tokens`` and tags, or ``text`` and spans; and for text whose first
    200 word lines end in a tag (``O``, ``B-X``, ``I-X``, ``E-X``, ``S-X``) after
    a word and that has a blank line. Streams, stdin and unreadable files are
    False: the reader that runs next says what is wrong with them.

    >>> looks_tagged("train.csv"), looks_tagged([{"tokens": ["Hi"], "ner_tags": ["O"]}])
    (False, True)
    """
    try:
        return _memory_looks_tagged(source) if is_in_memory(source) else _file_looks_tagged(source)
    except Exception:  # noqa: BLE001 - a guess must not stop the reader that reports the real error
        return False


# --------------------------------------------------------------------------- files


def _load(source, empty_fix: str) -> tuple[str, str, str]:
    """``(name for messages, decoded text, lower-case suffix)`` of a path, ``"-"`` or a stream."""
    return load(source, kinds="a CoNLL, JSON Lines or text file", empty_fix=empty_fix)


def _check_not_empty(name: str, sentences: ConllSentences, fix: str) -> None:
    if not sentences.words:
        fail(name, None, f"no sentences, only blank and {DOCUMENT_START} lines", fix)


def _conll_data(name: str, sentences: ConllSentences) -> TaggedData:
    texts, offsets = zip(*(joined(words) for words in sentences.words))
    return TaggedData(sentences.words, sentences.tags, list(texts), list(offsets), sentences.lines, name,
                      word_lines=sentences.word_lines)


def _plain_lines(name: str, text: str) -> TaggedData:
    numbered = [(number, line.rstrip("\r\n")) for number, line in physical_lines(text)]
    numbered = [(number, line) for number, line in numbered if line.strip()]
    return _split_texts(name, [line for _, line in numbered], [number for number, _ in numbered])


def _split_texts(name: str, texts: list[str], lines: list[int]) -> TaggedData:
    """Texts (with the line each came from) split into words, offsets into each text."""
    words, offsets = [], []
    for number, line in zip(lines, texts):
        found = split_words(line)
        if not found:
            fail(name, number, f"the text {show(line)} holds no words", "write a sentence there or delete it")
        words.append([word for word, _, _ in found])
        offsets.append([(start, end) for _, start, end in found])
    return TaggedData(words, None, list(texts), offsets, list(lines), name)


def _with_scheme(data: TaggedData, word_lines: list[list[int]] | None = None) -> TaggedData:
    """``data`` with its tag scheme detected; a tag that fits none fails at its word's line (or its record's)."""
    if data.scheme is not None:
        return data
    try:
        data.scheme = detect_scheme(data.tags)
    except InvalidTag as error:
        if word_lines is not None:
            fail(data.path, word_lines[error.sentence][error.position], error.reason, error.fix, data.unit)
        word = data.words[error.sentence][error.position]
        fail(data.path, data.lines[error.sentence], f"tokens[{error.position}] {show(word)}: {error.reason}",
             error.fix, data.unit)
    return data


# --------------------------------------------------------------------------- rows in memory


def _memory_records(source, want_tags: bool) -> tuple[str, str, list[tuple[int, dict]]]:
    """``(name, "row", records)``: every row as the dict a JSON Lines record would be."""
    name = source_name(source)
    if not isinstance(source, list) or (source and isinstance(source[0], dict)):
        table = rows_table(source)  # a DataFrame or dicts: its checks and missing-value handling apply
        return name, "row", [(row, dict(zip(table.columns, values))) for row, _, values in table.rows]
    if not source:
        fail(name, None, "there are no rows", "pass one row per sentence")
    form = _row_form(source[0], name, 0)
    if want_tags and form in ("text", "token list"):
        fail(name, None, f"the rows are {form}s, with no tags", _ROWS_FIX)
    records = []
    for position, row in enumerate(source):
        if _row_form(row, name, position) != form:
            fail(name, position, f"a {_row_form(row, name, position)} where row 0 is a {form}",
                 "give every row the same form", unit="row")
        if form == "text":
            records.append((position, {TEXT_KEY: row}))
        elif form == "token list":
            records.append((position, {TOKENS_KEY: _plain_list(row)}))
        else:
            records.append((position, {TOKENS_KEY: _plain_list(row[0]), TAG_KEYS[0]: _plain_list(row[1])}))
    return name, "row", records


def _plain_list(values) -> list:
    return values.tolist() if hasattr(values, "tolist") else list(values)


def _is_sequence(value) -> bool:
    return isinstance(value, (list, tuple)) or (hasattr(value, "tolist") and hasattr(value, "__len__"))


def _row_form(row, name: str, position: int) -> str:
    if isinstance(row, str):
        return "text"
    if isinstance(row, dict):
        return "dict"
    if _is_sequence(row):
        if len(row) == 2 and all(_is_sequence(part) and not isinstance(part, str) for part in row):
            return "(tokens, tags) pair"
        return "token list"
    fail(name, position, f"the row is of type {type(row).__name__}", _ROWS_FIX, unit="row")


# --------------------------------------------------------------------------- guessing the task


def _record_looks_tagged(record: dict) -> bool:
    if record.get(TOKENS_KEY) is not None:
        return any(record.get(key) is not None for key in TAG_KEYS)
    if record.get(TEXT_KEY) is None:
        return False
    if any(isinstance(record.get(key), list) for key in SPAN_KEYS[:-1]):
        return True
    label = record.get(SPAN_KEYS[-1])
    # A classification record has "label" too; only a list of [start, end, label] spans is doccano's.
    return isinstance(label, list) and bool(label) and all(
        isinstance(span, (list, tuple)) and len(span) == 3 for span in label)


def _memory_looks_tagged(source) -> bool:
    if not isinstance(source, list):
        columns = [str(column) for column in source.columns]
        first = next(iter(source.itertuples(index=False, name=None)), None)
        if first is None:
            return False
        return _record_looks_tagged({column: _plain_value(value) for column, value in zip(columns, first)})
    if not source:
        return False
    first = source[0]
    if isinstance(first, dict):
        return _record_looks_tagged(first)
    return not isinstance(first, str) and _row_form(first, "", 0) == "(tokens, tags) pair"


def _plain_value(value):
    return value.tolist() if hasattr(value, "tolist") and not isinstance(value, str) else value


def _file_looks_tagged(source) -> bool:
    if hasattr(source, "read") or (isinstance(source, str) and source == "-"):
        return False  # reading a stream to guess would take what the reader needs
    path = Path(os.fspath(source))
    with open(path, "rb") as handle:
        data = handle.read(SNIFF_BYTES)
    if path.suffix.lower() in CONLL_SUFFIXES:
        return True
    # Lenient decoding: the sample may end inside a character, and a wrong encoding is the reader's to report.
    text = data.removeprefix(b"\xef\xbb\xbf").decode("utf-8", errors="replace")
    lines = [line for _, line in physical_lines(text)]
    if len(data) == SNIFF_BYTES and lines:
        lines = lines[:-1]  # the sample may end inside a line
    if text.lstrip()[:1] == "{":
        first = next((line for line in lines if line.strip()), "")
        record = json.loads(first)
        return isinstance(record, dict) and _record_looks_tagged(record)
    return _looks_like_tagged_conll(lines)


def _looks_like_tagged_conll(lines) -> bool:
    """The first word lines each end in a tag after a word, and a blank line separates sentences."""
    word_lines, blank = 0, False
    for line in lines:
        fields = line.split()
        if not fields:
            blank = True
            if word_lines >= SNIFF_LINES:
                break
            continue
        if fields[0] == DOCUMENT_START or word_lines >= SNIFF_LINES:
            continue
        if len(fields) < 2 or _TAG_LIKE.fullmatch(fields[-1]) is None:
            return False
        word_lines += 1
    return word_lines > 0 and blank
