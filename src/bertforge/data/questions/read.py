r"""Read questions about passages, with or without their answers, into :class:`QuestionData`.

Two layouts are read:

- **SQuAD JSON** (v1.1 and v2.0): ``{"data": [{"paragraphs": [{"context", "qas":
  [{"id", "question", "answers": [{"text", "answer_start"}], "is_impossible"}]}]}]}``;
- **flat rows**, one question each, in JSON Lines, CSV/TSV or in memory (a list of
  dicts, a DataFrame): ``question``, ``context`` and, when labeled, ``answer_text`` and
  ``answer_start`` (both empty for a question with no answer). The ``answers`` of SQuAD
  (a list of ``{"text", "answer_start"}``) or of Hugging Face datasets (``{"text": [...],
  "answer_start": [...]}``) are read as well, and ``id`` when there is one.

Every answer must be the text its ``answer_start`` points at in the context, so that
training learns the span the annotator meant; a mismatch is one line naming the record
and where the text does occur.

>>> rows = [{"question": "Who came?", "context": "Ann came.", "answer_text": "Ann", "answer_start": 0},
...         {"question": "Who left?", "context": "Ann came.", "answer_text": "", "answer_start": ""}]
>>> data = read_questions(rows)
>>> data.answers, data.where(1)
([[('Ann', 0)], []], '<list of 2 rows>: row 1')
>>> looks_like_questions(rows), looks_like_questions([("great film", "pos")])
(True, False)
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, NoReturn

from bertforge.data.labeled.formats import (
    JSON_SUFFIXES,
    Table,
    delimited_table,
    load,
    parse_delimited,
    parse_json,
    parse_jsonl,
    physical_lines,
    sniff_delimiter,
)
from bertforge.data.labeled.in_memory import is_in_memory, rows_table, source_name
from bertforge.data.labeled.messages import show
from bertforge.data.questions.examples import Answer, QuestionData
from bertforge.errors import BertforgeError

QUESTION_KEY, CONTEXT_KEY = "question", "context"
ANSWER_TEXT_KEY, ANSWER_START_KEY = "answer_text", "answer_start"
KINDS = "a SQuAD JSON file, or JSON Lines or CSV rows with question and context"
_LAYOUTS = ('give SQuAD JSON ({"data": [{"paragraphs": [{"context": ..., "qas": [...]}]}]}) or one row per '
            "question with question and context (and answer_text, answer_start when labeled)")
SNIFF_BYTES = 65536


def read_questions(source, question_key: str | None = None, context_key: str | None = None) -> QuestionData:
    """Labeled questions (answers required; ``[]`` marks a question with no answer) from a
    path, ``"-"`` for stdin, a stream, or rows in memory. ``question_key`` and
    ``context_key`` name other columns for the question and the passage."""
    return _read(source, True, question_key, context_key)


def read_unanswered(source, question_key: str | None = None, context_key: str | None = None) -> QuestionData:
    """Questions to answer, from the same sources; answers in the file are left aside.

    >>> read_unanswered([("Who came?", "Ann came.")]).contexts
    ['Ann came.']
    """
    return _read(source, False, question_key, context_key)


def looks_like_questions(source) -> bool:
    """Whether a training source holds questions about passages (a cheap look at its
    start): SQuAD JSON, or rows with both a question and a context."""
    if is_in_memory(source):
        if hasattr(source, "columns"):
            return {QUESTION_KEY, CONTEXT_KEY} <= set(map(str, source.columns))
        first = source[0] if len(source) else None
        return isinstance(first, dict) and {QUESTION_KEY, CONTEXT_KEY} <= set(first)
    if not isinstance(source, (str, Path)) or str(source) == "-":
        return False
    try:
        with open(source, "rb") as file:
            head = file.read(SNIFF_BYTES).decode("utf-8", errors="replace").lstrip("\ufeff")
    except OSError:
        return False  # the reader says what is wrong with the file
    if '"paragraphs"' in head and '"qas"' in head:
        return True
    first = next((line for _, line in physical_lines(head) if line.strip()), "")
    try:
        record = json.loads(first)
    except RecursionError:
        return False  # the reader says what is wrong with the file
    except json.JSONDecodeError:
        names = {name.strip().strip('"') for name in first.replace("\t", ",").split(",")}
        return {QUESTION_KEY, CONTEXT_KEY} <= names
    return isinstance(record, dict) and {QUESTION_KEY, CONTEXT_KEY} <= set(record)


# --------------------------------------------------------------------------- reading


def _read(source, labeled: bool, question_key: str | None, context_key: str | None) -> QuestionData:
    keys = (question_key or QUESTION_KEY, context_key or CONTEXT_KEY)
    if is_in_memory(source):
        name = source_name(source)
        if isinstance(source, list) and source and isinstance(source[0], (tuple, list)):
            if labeled:
                _fail(name, None, "the rows are (question, context) pairs, with no answers",
                      "give rows as dicts with question, context, answer_text and answer_start")
            records = [(f"row {i}", _pair_record(name, i, row, keys)) for i, row in enumerate(source)]
        else:
            table = rows_table(source)
            records = [(f"row {row}", dict(zip(table.columns, values))) for row, _, values in table.rows]
        return _build(name, records, labeled, keys)
    name, text, suffix = load(source, kinds=KINDS, empty_fix=_LAYOUTS)
    squad = _squad_document(name, text, suffix)
    if squad is not None:
        return _build(name, _squad_records(name, squad), labeled, (QUESTION_KEY, CONTEXT_KEY))
    table = _rows(name, text, suffix)
    missing = [key for key in keys if key not in table.columns]
    if missing:
        found = ", ".join(table.columns[:8]) or "none"
        _fail(name, None, f"neither SQuAD JSON nor rows with {' and '.join(keys)} (found {table.column_word}s: "
                          f"{found})", _LAYOUTS)
    records = [(f"line {line}", dict(zip(table.columns, values))) for line, _, values in table.rows]
    return _build(name, records, labeled, keys)


def _squad_document(name: str, text: str, suffix: str) -> dict | None:
    """The parsed SQuAD object, or None for a file of rows."""
    if not text.lstrip().startswith("{"):
        return None
    try:
        value = parse_json(text, name)
    except json.JSONDecodeError as error:
        if error.msg == "Extra data" or suffix in (".jsonl", ".ndjson"):
            return None  # JSON Lines: one object per line
        _fail(name, None, f"not valid JSON ({error.msg} at line {error.lineno}, column {error.colno})", _LAYOUTS)
    if isinstance(value, dict) and "data" in value:
        return value
    return None  # a one-line JSON Lines file


def _rows(name: str, text: str, suffix: str) -> Table:
    if suffix in JSON_SUFFIXES or text.lstrip().startswith("{"):
        return parse_jsonl(name, text)
    delimiter = sniff_delimiter(text, suffix, name)
    return delimited_table(name, parse_delimited(text, delimiter, name), True, delimiter)


def _squad_records(name: str, document: dict) -> list[tuple[str, dict]]:
    articles = document.get("data")
    if not isinstance(articles, list):
        _fail(name, None, '"data" is not a list of articles', _LAYOUTS)
    records = []
    for a, article in enumerate(articles):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            _fail(name, f"article {a}", 'has no "paragraphs" list', _LAYOUTS)
        for p, paragraph in enumerate(paragraphs):
            where = f"article {a}, paragraph {p}"
            if not isinstance(paragraph, dict) or not isinstance(paragraph.get("qas"), list):
                _fail(name, where, 'has no "qas" list of questions', _LAYOUTS)
            for q, qa in enumerate(paragraph["qas"]):
                if not isinstance(qa, dict):
                    _fail(name, f"{where}, question {q}", "is not an object", _LAYOUTS)
                place = f"question {qa['id']} ({where})" if qa.get("id") else f"{where}, question {q}"
                records.append((place, {**qa, CONTEXT_KEY: paragraph.get("context")}))
    if not records:
        _fail(name, None, "holds no questions", _LAYOUTS)
    return records


def _pair_record(name: str, index: int, row, keys: tuple[str, str]) -> dict:
    if len(row) != 2:
        _fail(name, f"row {index}", f"has {len(row)} values, not (question, context)",
              "give one (question, context) pair per row")
    return dict(zip(keys, row))


def _build(name: str, records: list[tuple[str, dict]], labeled: bool, keys: tuple[str, str]) -> QuestionData:
    if not records:
        _fail(name, None, "there are no questions", _LAYOUTS)
    questions, contexts, ids, answers, places = [], [], [], [], []
    seen_ids: set[str] = set()
    for index, (place, record) in enumerate(records):
        question = _text(name, place, record, keys[0], "question")
        context = _text(name, place, record, keys[1], "context")
        identifier = record.get("id")
        identifier = str(index) if _blank(identifier) else str(identifier)
        if identifier in seen_ids:
            identifier = f"{identifier}#{index}"  # ids key the predictions; keep every one apart
        seen_ids.add(identifier)
        questions.append(question)
        contexts.append(context)
        ids.append(identifier)
        places.append(place)
        if labeled:
            answers.append(_answers(name, place, record, context))
    return QuestionData(questions, contexts, ids, answers if labeled else None, places, name)


def _text(name: str, place: str, record: dict, key: str, what: str) -> str:
    value = record.get(key)
    if not isinstance(value, str) or not value.strip():
        shown = "empty" if isinstance(value, str) else "missing" if _blank(value) else f"a {type(value).__name__}"
        _fail(name, place, f"the {what} ({key}) is {shown}", f"fill in the {what}, or remove the record")
    return value


def _answers(name: str, place: str, record: dict, context: str) -> list[Answer]:
    if record.get("is_impossible") in (True, "true", "True", 1, "1"):
        return []
    if "answers" in record and not _blank(record["answers"]):
        raw = record["answers"]
        if isinstance(raw, str):  # a CSV cell holding the JSON list
            try:
                raw = parse_json(raw, name, place)
            except json.JSONDecodeError:
                _fail(name, place, f"answers {show(raw)} is not JSON", 'write [{"text": ..., "answer_start": N}]')
        if isinstance(raw, dict):  # datasets' {"text": [...], "answer_start": [...]}
            texts, starts = raw.get("text") or [], raw.get("answer_start") or []
            if len(texts) != len(starts):
                _fail(name, place, f"answers has {len(texts)} texts but {len(starts)} starts",
                      "give one answer_start per answer text")
            pairs = list(zip(texts, starts))
        elif isinstance(raw, list):
            if not all(isinstance(item, dict) for item in raw):
                _fail(name, place, "answers is not a list of objects", 'write [{"text": ..., "answer_start": N}]')
            pairs = [(item.get("text"), item.get("answer_start")) for item in raw]
        else:
            _fail(name, place, f"answers is a {type(raw).__name__}", 'write [{"text": ..., "answer_start": N}]')
        if not pairs and "is_impossible" not in record and "answer_text" not in record:
            _fail(name, place, "the question has no answers", 'add one, or mark it "is_impossible": true')
    else:
        text, start = record.get(ANSWER_TEXT_KEY), record.get(ANSWER_START_KEY)
        if _blank(text) and _blank(start):
            if ANSWER_TEXT_KEY not in record and "answers" not in record:
                _fail(name, place, "has no answer (answer_text and answer_start)",
                      "add them, leave both empty for a question the passage does not answer, "
                      "or predict instead of training")
            return []
        pairs = [(text, start)]
    return [_answer(name, place, context, text, start) for text, start in pairs]


def _answer(name: str, place: str, context: str, text: Any, start: Any) -> Answer:
    if not isinstance(text, str) or not text.strip():
        _fail(name, place, f"the answer text is {'missing' if _blank(text) else show(text)}",
              "give the answer's text, or leave answer_text and answer_start both empty for no answer")
    offset = _offset(start)
    if offset is None:
        found = context.find(text)
        hint = f" (the text occurs at {found})" if found >= 0 else ""
        _fail(name, place, f"answer_start {show(start)} is not a character offset{hint}",
              "give the 0-based character offset where the answer starts in the context")
    if context[offset:offset + len(text)] != text:
        found = context.find(text)
        if found >= 0:
            fix = f"the text occurs at character {found}; fix answer_start"
        else:
            fix = "the text is nowhere in the context; fix the answer text (it must be copied from the context)"
        _fail(name, place, f"answer_start {offset} points at {show(context[offset:offset + len(text)])}, "
                           f"not at the answer {show(text)}", fix)
    return text, offset


def _offset(value: Any) -> int | None:
    if isinstance(value, bool) or _blank(value):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or (
        isinstance(value, float) and math.isnan(value))


def _fail(name: str, place: str | None, what: str, fix: str) -> NoReturn:
    raise BertforgeError(f"{name}: {place + ': ' if place else ''}{what}; {fix}")
