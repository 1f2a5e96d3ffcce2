r"""Tagged records: JSON Lines, or the same dicts given in memory, as sentences.

A record takes one of two forms, and every record of a source takes the form of
the first:

- word lists: ``{"tokens": ["Paris", "!"], "tags": ["B-LOC", "O"]}``, the tags
  under ``tags``, ``ner_tags`` or ``labels`` (or the key ``tag_column`` names);
- a text with character spans, as annotation tools export it:
  ``{"text": "Paris !", "entities": [{"start": 0, "end": 5, "label": "LOC"}]}``,
  the spans under ``entities``, ``spans`` or doccano's ``label``
  (``[[0, 5, "LOC"]]``). The text is split into words (:mod:`.words`) and every
  span must cover whole words; its tags are written in IOB2.

Messages name a record's line in a file, or its row in memory, and the item
inside it (``tokens[3]``, ``entities[0]``).

>>> records = parse_records("train.jsonl", '{"text": "I love Zürich !", "label": [[7, 13, "LOC"]]}\n')
>>> data = records_data(records, "train.jsonl", "line", want_tags=True)
>>> data.words, data.tags, data.scheme
([['I', 'love', 'Zürich', '!']], [['O', 'O', 'B-LOC', 'O']], 'iob2')
"""

from __future__ import annotations

import json
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from typing import NoReturn

from bertforge.data.labeled.formats import parse_json, physical_lines
from bertforge.data.labeled.messages import fail, listing, show
from bertforge.data.tagged.examples import TaggedData, joined
from bertforge.data.tagged.schemes import to_tags
from bertforge.data.tagged.words import split_words

TOKENS_KEY = "tokens"
TEXT_KEY = "text"
TAG_KEYS = ("tags", "ner_tags", "labels")
SPAN_KEYS = ("entities", "spans", "label")
SPANS_SCHEME = "iob2"

_RECORD_EXAMPLE = '{"tokens": ["Hi", "Paris"], "tags": ["O", "B-LOC"]}'
_ENTITY_EXAMPLE = '{"start": 0, "end": 5, "label": "LOC"} or [0, 5, "LOC"]'
_KIND_WORDS = {str: "string", bool: "boolean", int: "number", float: "number", type(None): "null",
               dict: "dict", list: "list", tuple: "tuple"}


@dataclass
class Place:
    """Where a record is, so that every check on it fails with the same ``name: line N:`` start."""

    name: str
    line: int
    unit: str = "line"

    def fail(self, what: str, fix: str) -> NoReturn:
        fail(self.name, self.line, what, fix, self.unit)


def _kind(value) -> str:
    return _KIND_WORDS.get(type(value), type(value).__name__)


def _flag(unit: str) -> str:
    """The tag-column option as a user gives it: on the command line for files, as a keyword in memory."""
    return "tag_column=" if unit == "row" else "--tag-column"


def parse_records(name: str, text: str) -> list[tuple[int, dict]]:
    """``(line, object)`` for every non-blank line of JSON Lines ``text``."""
    records = []
    for number, line in physical_lines(text):
        if not line.strip():
            continue
        try:
            value = parse_json(line, name, number)
        except json.JSONDecodeError as error:
            fix = f"write one JSON object per line, like {_RECORD_EXAMPLE}"
            if line.lstrip()[:1] == "[":
                fix = "rewrite the JSON array as one object per line (JSON Lines)"
            fail(name, number, f"not valid JSON ({error.msg} at column {error.colno})", fix)
        if not isinstance(value, dict):
            fix = f"write one JSON object per line, like {_RECORD_EXAMPLE}"
            if isinstance(value, list):
                fix = "rewrite the JSON array as one object per line (JSON Lines)"
            fail(name, number, f"a JSON {_kind(value)} where an object was expected", fix)
        records.append((number, value))
    return records


def record_form(record: dict, place: Place) -> str:
    """``"tokens"`` for a word list, ``"text"`` for a text (with spans when tagged)."""
    for key in (TOKENS_KEY, TEXT_KEY):
        if record.get(key) is not None:
            return key
    place.fail(f'no "tokens" or "text" (found: {_present(record)})',
               f'give each record "tokens" and "tags", like {_RECORD_EXAMPLE}, or "text" and "entities"')


def _present(record: dict) -> str:
    return listing([str(key) for key, value in record.items() if value is not None]) or "nothing"


def _labels_key(record: dict, form: str, tag_column, place: Place) -> str:
    """The key that holds a record's tags (word lists) or spans (texts): ``tag_column``, else the first usual one."""
    if tag_column is not None:
        if not isinstance(tag_column, str):
            fail(place.name, None, f"tag column {tag_column!r} is a position, but records name their tags by key",
                 f"pass {_flag(place.unit)} with the key, like 'ner_tags'")
        return tag_column
    keys = TAG_KEYS if form == TOKENS_KEY else SPAN_KEYS
    found = next((key for key in keys if record.get(key) is not None), None)
    if found is None:
        if form == TOKENS_KEY:
            place.fail(f"no tags: none of the keys {listing(keys)} (found: {_present(record)})",
                       f'add "tags" with one tag per token, or pass {_flag(place.unit)} with the key that holds them')
        place.fail(f"no entities: none of the keys {listing(keys)} (found: {_present(record)})",
                   f'add "entities" as a list of {_ENTITY_EXAMPLE} (an empty list when the text has none)')
    return found


def records_data(records: list[tuple[int, dict]], name: str, unit: str, tag_column=None,
                 want_tags: bool = True) -> TaggedData:
    """The sentences of ``records`` (``(line or row, dict)`` pairs, at least one).

    Tags of word lists are returned as given (the caller detects their scheme);
    texts with spans come back tagged in IOB2.
    """
    first_line, first = records[0]
    form = record_form(first, Place(name, first_line, unit))
    words, texts, offsets, lines = [], [], [], []
    tags = [] if want_tags else None
    for line, record in records:
        place = Place(name, line, unit)
        if record_form(record, place) != form:
            other = TEXT_KEY if form == TOKENS_KEY else TOKENS_KEY
            place.fail(f'a record with "{other}" where {unit} {first_line} has "{form}"',
                       f"give every {unit} the same form")
        # Each record may name its tags differently (exports merged from two tools do).
        key = _labels_key(record, form, tag_column, place) if want_tags else None
        if form == TOKENS_KEY:
            sentence_words = token_list(record[TOKENS_KEY], place)
            text, sentence_offsets = joined(sentence_words)
            if want_tags:
                tags.append(tag_list(record.get(key), key, len(sentence_words), record, place))
        else:
            text, found = raw_text(record[TEXT_KEY], place)
            sentence_words = [word for word, _, _ in found]
            sentence_offsets = [(start, end) for _, start, end in found]
            if want_tags:
                tags.append(span_tags(record.get(key), key, text, sentence_offsets, record, place))
        words.append(sentence_words)
        texts.append(text)
        offsets.append(sentence_offsets)
        lines.append(line)
    scheme = SPANS_SCHEME if want_tags and form == TEXT_KEY else None
    return TaggedData(words, tags, texts, offsets, lines, name, scheme, unit)


# --------------------------------------------------------------------------- word lists


def token_list(tokens, place: Place) -> list[str]:
    """The tokens of a record, each a non-empty string without whitespace.

    Whitespace inside a token is refused because the sentence's text is its
    tokens joined by spaces: such a token would not come back as one word.
    """
    if not isinstance(tokens, (list, tuple)):
        place.fail(f'"tokens" is a {_kind(tokens)}, not a list', "give the tokens as a list of strings")
    if not tokens:
        place.fail("the sentence has no tokens", "give it its tokens or delete it")
    for index, token in enumerate(tokens):
        if not isinstance(token, str):
            place.fail(f"tokens[{index}] is a {_kind(token)} ({show(token)}), not a string",
                       "write every token as a string")
        if token.split() != [token]:
            if not token.strip():
                place.fail(f"tokens[{index}] is empty or only whitespace", "delete it: a token holds a word")
            place.fail(f"tokens[{index}] {show(token)} holds whitespace",
                       "split it into one token per word, each with its tag")
    return list(tokens)


def tag_list(tags, key: str, length: int, record: dict, place: Place) -> list[str]:
    """One tag string per token (stripped); class ids and length mismatches are refused."""
    if tags is None:
        place.fail(f"no {show(key)} (found: {_present(record)})", "give every record its tags, one per token")
    if not isinstance(tags, (list, tuple)):
        place.fail(f"{show(key)} is a {_kind(tags)}, not a list", "give the tags as a list of strings, one per token")
    if len(tags) != length:
        place.fail(f"{len(tags)} tag{'' if len(tags) == 1 else 's'} for {length} token{'' if length == 1 else 's'}",
                   "give one tag per token")
    for index, tag in enumerate(tags):
        if isinstance(tag, (int, float)) and not isinstance(tag, bool):
            place.fail(f"{key}[{index}] is the number {tag}, not a tag name",
                       "write tags as strings like 'B-PER' (class ids, such as Hugging Face's ner_tags,"
                       " need the data set's list of tag names)")
        if not isinstance(tag, str):
            place.fail(f"{key}[{index}] is a {_kind(tag)}, not a string", "write tags as strings like 'B-PER' or 'O'")
    return [tag.strip() for tag in tags]


# --------------------------------------------------------------------------- texts with spans


def raw_text(text, place: Place) -> tuple[str, list[tuple[str, int, int]]]:
    """A record's text and its words, refusing a text with no word."""
    if not isinstance(text, str):
        place.fail(f'"text" is a {_kind(text)}, not a string', "write the text as a string")
    found = split_words(text)
    if not found:
        place.fail("the text is empty" if not text else "the text holds no words, only whitespace",
                   "fill it in or delete it")
    return text, found


def span_tags(spans, key: str, text: str, offsets: list[tuple[int, int]], record: dict, place: Place) -> list[str]:
    """IOB2 tags of the words at ``offsets`` from character spans, each checked to cover whole words."""
    if spans is None:
        place.fail(f"no {show(key)} (found: {_present(record)})",
                   f"give every record its entities, as a list of {_ENTITY_EXAMPLE} (empty when it has none)")
    if isinstance(spans, str) and key == "label":
        place.fail(f'"label" is the string {show(spans)}, not a list of spans: this looks like text classification',
                   f'give the entities as "label": [[start, end, "TYPE"], ...], or train a text classifier on it')
    if not isinstance(spans, (list, tuple)):
        place.fail(f"{show(key)} is a {_kind(spans)}, not a list", f"give the entities as a list of {_ENTITY_EXAMPLE}")
    word_starts = [start for start, _ in offsets]
    word_ends = [end for _, end in offsets]
    first_word = {start: index for index, start in enumerate(word_starts)}
    last_word = {end: index for index, end in enumerate(word_ends)}
    checked = []
    for index, item in enumerate(spans):
        start, end, label = _span(item, f"{key}[{index}]", text, place)
        if start not in first_word or end not in last_word:
            _fail_off_words(f"{key}[{index}]", start, end, label, text, word_starts, word_ends, place)
        checked.append((start, end, label, index))
    checked.sort()
    # Sorted spans that do not overlap so far end in order, so each needs comparing with its neighbour only.
    for (start, end, label, index), (start_before, end_before, label_before, index_before) in zip(checked[1:],
                                                                                                 checked):
        if start < end_before:
            place.fail(f"{key}[{index}] {show(text[start:end])} ({label}, {start}-{end}) overlaps"
                       f" {key}[{index_before}] {show(text[start_before:end_before])} ({label_before},"
                       f" {start_before}-{end_before})",
                       "keep one of them: word tags hold one entity per word")
    word_spans = [(label, first_word[start], last_word[end] + 1) for start, end, label, _ in checked]
    return to_tags(word_spans, len(offsets), SPANS_SCHEME)


def _span(item, name: str, text: str, place: Place) -> tuple[int, int, str]:
    """``(start, end, label)`` of one span, as a dict or a ``[start, end, label]`` list, checked to fit the text."""
    if isinstance(item, dict):
        start = item.get("start", item.get("start_offset"))
        end = item.get("end", item.get("end_offset"))
        label = item.get("label", item.get("labels"))
        if isinstance(label, list) and len(label) == 1:
            label = label[0]  # Label Studio writes its one label as a list
    elif isinstance(item, (list, tuple)) and len(item) == 3:
        start, end, label = item
    else:
        place.fail(f"{name} is {show(item)}, not an entity", f"write each entity as {_ENTITY_EXAMPLE}")
    for value in (start, end):
        if not isinstance(value, int) or isinstance(value, bool):
            place.fail(f"{name} has start {show(start)} and end {show(end)}, not character offsets",
                       f"write each entity as {_ENTITY_EXAMPLE}, offsets counted in characters")
    if not 0 <= start < end <= len(text):
        place.fail(f"{name} ({show(label)}, {start}-{end}) does not fit the text of {len(text)} characters",
                   f"give 0 <= start < end <= {len(text)} (character offsets, end exclusive)")
    if not isinstance(label, str) or not label.strip():
        place.fail(f"{name} {show(text[start:end])} ({start}-{end}) has no label",
                   "give every entity a label (a non-empty string)")
    # Annotation tools often take a space in with a selected word; the span is the word.
    stripped = text[start:end].strip()
    if not stripped:
        place.fail(f"{name} ({show(label)}, {start}-{end}) covers only whitespace", "mark the words of the entity")
    start += len(text[start:end]) - len(text[start:end].lstrip())
    return start, start + len(stripped), label.strip()


def _fail_off_words(name: str, start: int, end: int, label: str, text: str, word_starts: list[int],
                    word_ends: list[int], place: Place) -> NoReturn:
    """Say which boundary of a span cuts a word, and which word boundaries are nearest."""
    cuts = []
    if start not in word_starts:
        cuts.append("start where a word starts")
    if end not in word_ends:
        cuts.append("end where a word ends")
    nearest_start = _nearest_start(start, word_starts, word_ends)
    nearest_end = _nearest_end(end, word_starts, word_ends)
    fix = "move it onto the words it marks"
    if nearest_start is not None and nearest_end is not None and nearest_start < nearest_end:
        fix = (f"the nearest word boundaries are {nearest_start}-{nearest_end}"
               f" ({show(text[nearest_start:nearest_end])}); words split at whitespace and punctuation")
    place.fail(f"{name} {show(text[start:end])} ({label}, {start}-{end}) does not {' and '.join(cuts)}", fix)


def _nearest_start(position: int, word_starts: list[int], word_ends: list[int]) -> int | None:
    """The start of the word holding ``position``, else of the next word: widen a cut word, skip a gap."""
    index = bisect_right(word_starts, position) - 1
    if index >= 0 and position < word_ends[index]:
        return word_starts[index]
    return word_starts[index + 1] if index + 1 < len(word_starts) else None


def _nearest_end(position: int, word_starts: list[int], word_ends: list[int]) -> int | None:
    """The end of the word holding the character before ``position``, else of the word before."""
    index = bisect_left(word_ends, position)
    if index < len(word_ends) and word_starts[index] < position:
        return word_ends[index]
    return word_ends[index - 1] if index > 0 else None
