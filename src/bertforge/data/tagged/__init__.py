"""Word-tagged data for token classification: read it, tell its tag scheme, split texts into words.

CoNLL files, JSON Lines (word lists, or texts with character spans) and rows in
memory become :class:`TaggedData`, one tag per word; :mod:`.schemes` reads and
writes the tag schemes (IOB1, IOB2, BIOES, plain labels). The pieces live in
``examples`` (the type), ``conll``, ``jsonl``, ``words`` and ``read``.

>>> data = read_tagged([(["Hi", "Paris"], ["O", "B-LOC"])])
>>> data.scheme, entities(data.tags[0], data.scheme)
('iob2', [('LOC', 1, 2)])
"""

from bertforge.data.tagged.examples import TaggedData
from bertforge.data.tagged.read import looks_tagged, read_tagged, read_untagged
from bertforge.data.tagged.schemes import (
    OUTSIDE,
    SCHEMES,
    InvalidTag,
    convert,
    detect_scheme,
    entities,
    repair,
    split_tag,
    to_tags,
)
from bertforge.data.tagged.words import split_words

__all__ = [
    "TaggedData",
    "read_tagged",
    "read_untagged",
    "looks_tagged",
    "split_words",
    "SCHEMES",
    "OUTSIDE",
    "InvalidTag",
    "split_tag",
    "detect_scheme",
    "entities",
    "to_tags",
    "convert",
    "repair",
]
