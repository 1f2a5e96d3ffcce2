"""Tag schemes: tell which one a file uses, read entities out of tags, write them back.

Four schemes are known (:data:`SCHEMES`):

- ``iob1`` (CoNLL 2003's original files): ``I-TYPE`` inside an entity, ``B-TYPE``
  only on the first word of an entity that directly follows one of the same type;
- ``iob2`` (often called BIO): every entity starts with ``B-TYPE``;
- ``bioes`` (also called IOBES): ``B-`` begins, ``I-`` continues,
  ``E-`` ends an entity of several words, ``S-`` is a one-word entity;
- ``plain``: every tag is a label of its own (parts of speech, say), ``O`` is outside.

A tag counts as prefixed only when the part before its first ``-`` is exactly one
of the upper-case letters ``B``, ``I``, ``E``, ``S`` and a type follows. So
``PRON-DEM`` is a plain label, and a file whose tags are all lower case
(``b-per``) reads as plain labels; mixed with prefixed tags, such tags are errors.

Entities are ``(type, start, end)`` word spans, end exclusive. Reading follows
conlleval's rules, so a sequence a model predicted that opens an entity with
``I-`` still counts as that entity, the way CoNLL scores have always been taken.

>>> tags = ["B-PER", "I-PER", "O", "I-LOC"]
>>> detect_scheme([tags])
'iob1'
>>> entities(tags, "iob2")
[('PER', 0, 2), ('LOC', 3, 4)]
>>> convert(tags, "iob2", "bioes")
['B-PER', 'E-PER', 'O', 'S-LOC']
"""

from __future__ import annotations

from functools import lru_cache
from typing import Iterable, Sequence

from bertforge.data.labeled.messages import show
from bertforge.errors import BertforgeError

SCHEMES = ("iob1", "iob2", "bioes", "plain")
OUTSIDE = "O"

PREFIXES = ("B", "I", "E", "S")
# The prefixes each scheme may write; plain tags carry none.
_ALLOWED = {"iob1": frozenset("BI"), "iob2": frozenset("BI"), "bioes": frozenset("BIES"), "plain": frozenset()}
_FIX = {
    "iob1": "use O or B- or I- followed by the type (as in I-PER)",
    "iob2": "use O or B- or I- followed by the type (as in B-PER)",
    "bioes": "use O or B-, I-, E- or S- followed by the type (as in B-PER)",
}
_FIX_ANY_PREFIX = "use O or B-, I-, E- or S- followed by the type (as in B-PER)"


class InvalidTag(BertforgeError):
    """A tag that fits no scheme of its data.

    ``sentence`` (0-based index, ``None`` when one sentence was given),
    ``position`` (0-based word index), ``tag``, ``reason`` (what is wrong with
    it) and ``fix`` (what to write instead). The message counts from 1, the way
    a person reads a file.

    >>> error = InvalidTag(2, 0, "X-PER", "tag 'X-PER' has the prefix 'X'", "use B-PER")
    >>> str(error), error.sentence, error.position
    ("sentence 3, word 1: tag 'X-PER' has the prefix 'X'; use B-PER", 2, 0)
    """

    def __init__(self, sentence: int | None, position: int, tag: str, reason: str, fix: str = _FIX_ANY_PREFIX):
        self.sentence = sentence
        self.position = position
        self.tag = tag
        self.reason = reason
        self.fix = fix
        where = f"sentence {sentence + 1}, word {position + 1}" if sentence is not None else f"word {position + 1}"
        super().__init__(f"{where}: {reason}; {fix}")


def check_scheme(scheme: str) -> str:
    """``scheme`` itself when it is one of :data:`SCHEMES`; a ``ValueError`` naming them otherwise.

    >>> check_scheme("bioes")
    'bioes'
    >>> check_scheme("BIO")
    Traceback (most recent call last):
    ...
    ValueError: unknown tag scheme 'BIO'; use one of iob1, iob2, bioes, plain (BIO is iob2, IOB is iob1, IOBES is bioes)
    """
    if scheme not in _ALLOWED:
        raise ValueError(f"unknown tag scheme {scheme!r}; use one of {', '.join(SCHEMES)} "
                         "(BIO is iob2, IOB is iob1, IOBES is bioes)")
    return scheme


@lru_cache(maxsize=65536)
def split_tag(tag: str) -> tuple[str, str]:
    """The prefix and type of a tag: ``("B", "PER")`` for ``"B-PER"``, ``("O", "")`` for ``"O"``, ``("", label)`` otherwise.

    Only ``B``, ``I``, ``E``, ``S`` before the first ``-``, with a type after it,
    make a prefix; the type keeps any further hyphens.

    >>> split_tag("B-PER"), split_tag("O"), split_tag("NOUN"), split_tag("I-creative-work")
    (('B', 'PER'), ('O', ''), ('', 'NOUN'), ('I', 'creative-work'))
    >>> split_tag("PRON-DEM"), split_tag("B-")
    (('', 'PRON-DEM'), ('', 'B-'))
    """
    if tag == OUTSIDE:
        return OUTSIDE, ""
    prefix, dash, kind = tag.partition("-")
    if dash and kind and prefix in PREFIXES:
        return prefix, kind
    return "", tag


def _why_not_prefixed(tag: str) -> str:
    """What is wrong with a tag met among prefixed tags."""
    if not tag:
        return "the tag is empty"
    prefix, dash, kind = tag.partition("-")
    if not dash:
        return f"tag {show(tag)} has no B-/I-/E-/S- prefix, while other tags of this data have one"
    if prefix in PREFIXES:
        return f"tag {show(tag)} has no type after its prefix"
    if prefix.upper() in PREFIXES:
        return f"tag {show(tag)} has a lower-case prefix (prefixes are upper case)"
    return f"tag {show(tag)} has the prefix {show(prefix)}, not one of B, I, E, S"


def detect_scheme(sequences: Iterable[Sequence[str]]) -> str:
    """The scheme of these tag sequences (one list of tags per sentence).

    Prefixed data is ``bioes`` when any tag has an ``E-`` or ``S-`` prefix,
    else ``iob1`` when some ``I-`` tag starts an entity (first in its sentence,
    after ``O`` or after a tag of another type), else ``iob2``; every tag of
    prefixed data must be ``O`` or prefixed, or :class:`InvalidTag` names the
    first that is not. Data without any prefixed tag is ``plain``; no tags at
    all, or only ``O``, is ``iob2``.

    >>> detect_scheme([["B-PER", "I-PER", "O"], ["B-LOC"]])
    'iob2'
    >>> detect_scheme([["I-PER", "I-PER", "B-PER"]]), detect_scheme([["S-PER", "O"]])
    ('iob1', 'bioes')
    >>> detect_scheme([["NOUN", "VERB", "PRON-DEM"]]), detect_scheme([])
    ('plain', 'iob2')
    >>> detect_scheme([["B-PER", "O"], ["O", "PER"]])
    Traceback (most recent call last):
    ...
    bertforge.data.tagged.schemes.InvalidTag: sentence 2, word 2: tag 'PER' has no B-/I-/E-/S- prefix, while other tags of this data have one; use O or B-, I-, E- or S- followed by the type (as in B-PER)
    """
    prefixed = False
    bioes = False
    iob1 = False
    first_unprefixed = None  # (sentence, position, tag): an error only if the data turns out prefixed
    first_empty = None
    for sentence, tags in enumerate(sequences):
        previous_type = ""
        for position, tag in enumerate(tags):
            prefix, kind = split_tag(tag)
            if prefix == OUTSIDE:
                previous_type = ""
                continue
            if not prefix:
                if first_unprefixed is None:
                    first_unprefixed = (sentence, position, tag)
                if not tag and first_empty is None:
                    first_empty = (sentence, position, tag)
                previous_type = ""
                continue
            prefixed = True
            if prefix in "ES":
                bioes = True
            elif prefix == "I" and kind != previous_type:
                iob1 = True
            previous_type = kind
    if first_empty is not None:
        raise InvalidTag(*first_empty, "the tag is empty", "give every word a tag (O when it is outside any entity)")
    if not prefixed:
        return "plain" if first_unprefixed is not None else "iob2"
    if first_unprefixed is not None:
        raise InvalidTag(*first_unprefixed, _why_not_prefixed(first_unprefixed[2]))
    return "bioes" if bioes else "iob1" if iob1 else "iob2"


def _checked(tags: Sequence[str], scheme: str) -> list[tuple[str, str]]:
    """``split_tag`` of every tag, each checked against ``scheme``."""
    allowed = _ALLOWED[check_scheme(scheme)]
    parts = [split_tag(tag) for tag in tags]
    if allowed:
        for position, (prefix, kind) in enumerate(parts):
            if prefix == OUTSIDE or prefix in allowed:
                continue
            tag = tags[position]
            reason = _why_not_prefixed(tag) if not prefix else f"tag {show(tag)} has the prefix {prefix}-, which {scheme} does not use"
            raise InvalidTag(None, position, tag, reason, _FIX[scheme])
    elif any(not tag for tag in tags):
        position = list(tags).index("")
        raise InvalidTag(None, position, "", "the tag is empty", "give every word a tag (O when it is outside any entity)")
    return parts


def entities(tags: Sequence[str], scheme: str) -> list[tuple[str, int, int]]:
    """The ``(type, start, end)`` entities of one sentence's tags, end exclusive, in order.

    ``iob1`` and ``iob2`` read the same way, by conlleval's rules: ``B-X`` starts
    an entity; ``I-X`` continues one of type X, or starts one after ``O`` or
    another type. ``bioes``: ``B-`` starts; ``I-`` and ``E-`` continue an entity
    of their type or else start one; ``E-`` and ``S-`` end it, ``S-`` being a
    one-word entity; an entity cut short (``B-X`` then ``O``) ends where it stops.
    ``plain``: each run of one label other than ``O`` is an entity.

    >>> entities(["O", "I-PER", "I-PER", "B-PER", "I-LOC"], "iob1")
    [('PER', 1, 3), ('PER', 3, 4), ('LOC', 4, 5)]
    >>> entities(["B-PER", "E-PER", "S-LOC", "B-ORG", "O", "E-ORG"], "bioes")
    [('PER', 0, 2), ('LOC', 2, 3), ('ORG', 3, 4), ('ORG', 5, 6)]
    >>> entities(["NOUN", "NOUN", "O", "VERB"], "plain")
    [('NOUN', 0, 2), ('VERB', 3, 4)]
    """
    parts = _checked(tags, scheme)
    found = []
    open_type, open_start = "", -1  # the entity being read, "" when none
    if scheme == "plain":
        # A plain label is the whole tag, hyphens and all.
        for position, tag in enumerate(tags):
            label = "" if tag == OUTSIDE else tag
            if label != open_type:
                if open_type:
                    found.append((open_type, open_start, position))
                open_type, open_start = label, position
        if open_type:
            found.append((open_type, open_start, len(parts)))
        return found
    for position, (prefix, kind) in enumerate(parts):
        continues = prefix in ("I", "E") and kind == open_type
        if open_type and not continues:
            found.append((open_type, open_start, position))
            open_type = ""
        if prefix == OUTSIDE:
            continue
        if not continues:
            open_type, open_start = kind, position
        if prefix in ("E", "S"):
            found.append((open_type, open_start, position + 1))
            open_type = ""
    if open_type:
        found.append((open_type, open_start, len(parts)))
    return found


def _checked_spans(spans: Iterable[Sequence], length: int) -> list[tuple[str, int, int]]:
    """The spans sorted by start, checked to lie inside the sentence without overlapping."""
    ordered = sorted((tuple(span) for span in spans), key=lambda span: (span[1], span[2]))
    end_before = 0
    for kind, start, end in ordered:
        if not isinstance(kind, str) or not kind:
            raise ValueError(f"entity {(kind, start, end)!r} has no type; give each entity a non-empty type")
        if not 0 <= start < end <= length:
            raise ValueError(f"entity {(kind, start, end)!r} does not fit a sentence of {length} words; "
                             "give 0 <= start < end <= length (end exclusive)")
        if start < end_before:
            raise ValueError(f"entity {(kind, start, end)!r} overlaps the entity before it; "
                             "tags hold one entity per word")
        end_before = end
    return ordered


def to_tags(spans: Iterable[Sequence], length: int, scheme: str) -> list[str]:
    """Tags of a sentence of ``length`` words holding the ``(type, start, end)`` entities ``spans``, in ``scheme``.

    ``iob1`` writes ``B-`` only where an entity directly follows one of the
    same type. Two such entities written ``plain`` read back as one, since
    plain tags cannot mark the boundary.

    >>> to_tags([("PER", 0, 2), ("PER", 2, 3)], 4, "iob1")
    ['I-PER', 'I-PER', 'B-PER', 'O']
    >>> to_tags([("PER", 0, 2), ("PER", 2, 3)], 4, "iob2")
    ['B-PER', 'I-PER', 'B-PER', 'O']
    >>> to_tags([("PER", 0, 3), ("LOC", 3, 4)], 4, "bioes")
    ['B-PER', 'I-PER', 'E-PER', 'S-LOC']
    """
    check_scheme(scheme)
    tags = [OUTSIDE] * length
    previous_type, previous_end = "", -1
    for kind, start, end in _checked_spans(spans, length):
        if scheme == "plain":
            tags[start:end] = [kind] * (end - start)
            continue
        inside = f"I-{kind}"
        tags[start:end] = [inside] * (end - start)
        if scheme == "iob2" or (scheme == "iob1" and previous_end == start and previous_type == kind):
            tags[start] = f"B-{kind}"
        elif scheme == "bioes":
            if end - start == 1:
                tags[start] = f"S-{kind}"
            else:
                tags[start], tags[end - 1] = f"B-{kind}", f"E-{kind}"
        previous_type, previous_end = kind, end
    return tags


def convert(tags: Sequence[str], source: str, target: str) -> list[str]:
    """Tags read in scheme ``source``, written in scheme ``target``.

    >>> convert(["I-PER", "I-PER", "B-PER", "O"], "iob1", "iob2")
    ['B-PER', 'I-PER', 'B-PER', 'O']
    >>> convert(["B-LOC", "E-LOC", "S-PER"], "bioes", "iob1")
    ['I-LOC', 'I-LOC', 'I-PER']
    """
    check_scheme(target)
    return to_tags(entities(tags, source), len(tags), target)


def repair(tags: Sequence[str], scheme: str) -> list[str]:
    """The same entities, written validly in ``scheme``: none starts with ``I-``, ``bioes`` ones end with ``E-`` or ``S-``.

    >>> repair(["O", "I-PER", "I-PER", "O"], "iob2")
    ['O', 'B-PER', 'I-PER', 'O']
    >>> repair(["B-PER", "O", "I-LOC", "I-LOC"], "bioes")
    ['S-PER', 'O', 'B-LOC', 'E-LOC']
    """
    return convert(tags, scheme, scheme)
