r"""CoNLL files: one word a line with its columns, a blank line between sentences.

Columns are split on runs of whitespace (a word never holds a space there); the
word is the first column and the tag the last, or the column ``tag_column``
names (0-based, negative from the end: CoNLL 2003's ``word POS chunk NER``
lines read their NER tags by default and their POS tags with ``tag_column=1``).
A whitespace-only line counts as blank (WNUT 2017's train file separates
sentences with a lone tab), several blank lines are one separator, and
``-DOCSTART-`` lines are document marks, not words.

>>> sentences = parse_conll("train.conll", "-DOCSTART- O\n\nParis B-LOC\n!\tO\n\n\nHi O\n")
>>> sentences.words, sentences.tags, sentences.lines
([['Paris', '!'], ['Hi']], [['B-LOC', 'O'], ['O']], [3, 7])
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bertforge.data.labeled.formats import physical_lines
from bertforge.data.labeled.messages import fail, show

CONLL_SUFFIXES = (".conll", ".iob", ".bio", ".bioes")
DOCUMENT_START = "-DOCSTART-"
TAG_COLUMN_FLAG = "--tag-column"


@dataclass
class ConllSentences:
    """The sentences of a CoNLL file, with the line of every word for messages."""

    words: list[list[str]]
    tags: list[list[str]] | None
    lines: list[int]                 # the line of each sentence's first word
    word_lines: list[list[int]]      # the line of every word


def parse_conll(name: str, text: str, tag_column=None, want_tags: bool = True) -> ConllSentences:
    r"""The sentences of CoNLL ``text``; ``want_tags=False`` reads the words alone (any tags ignored).

    With tags, every word line must have as many columns as the first one, so a
    stray space inside a word (which shifts the tag column) is caught where it is.

    >>> parse_conll("pos.conll", "The DT B-NP\ncat NN\n")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    bertforge.errors.BertforgeError: pos.conll: line 2: 2 columns where line 1 has 3; give every word line ...
    """
    words: list[list[str]] = []
    tags: list[list[str]] = []
    lines: list[int] = []
    word_lines: list[list[int]] = []
    in_sentence = False
    width = first_line = tag_index = None
    for number, line in physical_lines(text):
        fields = line.split()
        if not fields or fields[0] == DOCUMENT_START:
            in_sentence = False
            continue
        if want_tags:
            if width is None:
                width, first_line = len(fields), number
                tag_index = tag_column_index(name, number, width, tag_column)
            elif len(fields) != width:
                fail(name, number, f"{len(fields)} column{'' if len(fields) == 1 else 's'} where line {first_line}"
                     f" has {width}",
                     "give every word line the same columns, separated by spaces or tabs (a word cannot hold a space)")
        if not in_sentence:
            in_sentence = True
            words.append([])
            tags.append([])
            word_lines.append([])
            lines.append(number)
        words[-1].append(fields[0])
        word_lines[-1].append(number)
        if want_tags:
            tags[-1].append(fields[tag_index])
    return ConllSentences(words, tags if want_tags else None, lines, word_lines)


def tag_column_index(name: str, line: int, width: int, tag_column=None) -> int:
    """The 0-based index of the tag among ``width`` columns; column 0 is the word, so it is never the tag.

    >>> tag_column_index("x.conll", 1, 4), tag_column_index("x.conll", 1, 4, 1), tag_column_index("x.conll", 1, 4, "-2")
    (3, 1, 2)
    """
    if width == 1:
        fail(name, line, "one column (the word) and no tag",
             "write each word's tag after it, separated by a space or a tab")
    if tag_column is None:
        return width - 1
    if isinstance(tag_column, str):
        if re.fullmatch(r"\s*-?\d+\s*", tag_column) is None:
            fail(name, None, f"tag column {show(tag_column)} is a name, but CoNLL columns have none",
                 f"pass {TAG_COLUMN_FLAG} as a position: 1 to {width - 1}, or -1 for the last")
        tag_column = int(tag_column)
    index = tag_column + width if tag_column < 0 else tag_column
    if index == 0:
        fail(name, line, f"tag column {tag_column} is the word, not a tag",
             f"pass {TAG_COLUMN_FLAG} from 1 to {width - 1}, or -1 for the last")
    if not 0 < index < width:
        fail(name, line, f"there is no column {tag_column}: lines have {width} columns",
             f"pass {TAG_COLUMN_FLAG} from 1 to {width - 1} (0-based), or -1 for the last")
    return index
