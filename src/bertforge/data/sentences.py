"""Sentence boundaries in English text: telling one sentence per line from prose, and cutting.

:func:`detect_text_format` decides from the lines of a sample whether a file
holds one sentence per line, one paragraph per line, or prose wrapped over
several lines (what the corpus reader's ``"auto"`` does). :func:`split_sentences` cuts prose into sentences with `pysbd
<https://github.com/nipunsadvilkar/pySBD>`_, mending the few places where it cuts
wrongly, and :func:`split_clauses` cuts a sentence further at commas, semicolons,
colons and dashes. Nothing here reads files; :mod:`bertforge.data.corpus` does.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Iterable

__all__ = ["detect_text_format", "is_heading", "split_sentences", "split_clauses"]
# A file is one sentence per line when this share of lines end like a sentence ...
SENTENCE_END_SHARE = 0.8
# ... and no more than this share hold a sentence end in the middle (a paragraph per line).
INNER_END_SHARE = 0.2

# Prose whose lines are this long (the median) is a paragraph per line: wrapped text is
# 60 to 100 characters wide.
PARAGRAPH_LINE_CHARS = 200

# pysbd's time grows faster than the length of its input (per character, a text of
# 20,000 characters takes about twice as long as one of 2,000, and 40,000 about four
# times), so longer prose is first cut at sentence ends that are beyond doubt ...
MAX_SEGMENT_CHARS = 5000
# ... and a stretch with no such end outside quotes and brackets (a quote left open, as a
# quotation over several paragraphs is; text tokenized as " word . Next") is cut anyway
# once it is this long, so no input reaches pysbd longer than this. The Works of Poe
# hold one stretch of 20,018 characters; the limit keeps it whole, so their sentences
# are those of the whole paragraphs.
MAX_PIECE_CHARS = 25_000

_CLOSERS = "\"'”’»)\\]"
_OPENERS = "\"'“‘«(\\["
# A line that ends like a sentence: . ! ? or … then any closing quotes or brackets.
_SENTENCE_END = re.compile(rf"[.!?…][{_CLOSERS}]*$")
# A sentence end that no abbreviation explains: a lower-case word of two letters or more
# ("Mr.", "St.", "E." and "e.g." are not), . ! or ?, closers, a space and a capital letter.
_CERTAIN_END = re.compile(rf"\b[a-z]{{2,}}[.!?][{_CLOSERS}]*\s+(?=[{_OPENERS}]*[A-Z])")
# A sentence end inside a line, for telling a paragraph per line: the same, or with a space
# before the mark, as text tokenized for language models has it ("the game . The next").
_INNER_END = re.compile(rf"\b[a-z]{{2,}} ?[.!?][{_CLOSERS}]*\s+(?=[{_OPENERS}]*[A-Z])")
# Where split_clauses cuts: after , ; : (not inside a number such as 3,500 or 10:30),
# after — and – (not in a range such as 1809–1849), after -- and after a spaced " - ";
# closing quotes and brackets stay with the clause they close, and a run of marks is one cut.
_CLAUSE_MARK = r"(?:(?<!\d)[,;:]|[,;:](?!\d)|—|(?<!\d)–|–(?!\d)|-{2,}|(?<=\s)-(?=\s))"
_CLAUSE_BREAK = re.compile(rf"{_CLAUSE_MARK}[{_CLOSERS}]*(?:\s*{_CLAUSE_MARK}[{_CLOSERS}]*)*")
_WORD_CHARACTER = re.compile(r"[^\W_]")
# Titles that stand before a name; pysbd knows them, but not after a dash or a quote
# mark, hence the check of its output.
_TITLE_END = re.compile(r"(?<![^\W\d_])(?:Mr|Mrs|Ms|Messrs|Mme|Mlle|Dr|St|Prof|Rev)\.$")
_CAPITALISED = re.compile(rf"[{_OPENERS}]*[A-Z]")
# A first word of only closing quotes, brackets or underscores (the end of _italics_).
_CLOSING_TOKEN = re.compile(rf"[{_CLOSERS}_}}]+(?= )")
# The space between two words: where a stretch with no sentence end is cut at the last resort.
_WORD_GAP = re.compile(r"(?<=[^\W_]) (?=[^\W_])")
# A heading line of wiki markup, "= Title =", "= = Section = =" or "== Section ==": the
# same number of "=" on each side of a title. A top-level one ("= Title =") starts a document.
_HEADING = re.compile(r"(=(?: ?=)*) +(\S(?:.*?\S)?) +(=(?: ?=)*)")


def is_heading(line: str) -> int:
    """The level of a wiki-style heading line (``= Title =`` is 1, ``= = Part = =`` 2), else 0.

    >>> is_heading(" = Valkyria Chronicles III = "), is_heading("= = Gameplay = ="), is_heading("== Plot ==")
    (1, 2, 2)
    >>> is_heading("x = y = z"), is_heading("= not closed"), is_heading("= = uneven =")
    (0, 0, 0)
    """
    match = _HEADING.fullmatch(line.strip())
    if not match or "=" in match.group(2)[:1] + match.group(2)[-1:]:
        return 0
    opening, closing = match.group(1).count("="), match.group(3).count("=")
    return opening if opening == closing else 0


def detect_text_format(lines: Iterable[str]) -> str:
    """``"sentences"``, ``"paragraphs"`` or ``"prose"`` for a sample of lines from one file.

    This is what ``"auto"`` does. Blank lines and headings (``= Title =``) are
    ignored. The text is one sentence per line when at least 80% of the lines end
    like a sentence (``.``, ``!``, ``?`` or ``…``, then any closing quotes or
    brackets) and at most 20% also hold a sentence end in the middle (a lower-case
    word, ``.``, ``!`` or ``?``, a space and a capital letter; a space before the
    mark too, as tokenized text has it). It is one paragraph
    per line when as many end like a sentence but more hold one in the middle, or
    when the lines are long (a median over 200 characters). Anything else is prose
    wrapped over lines, where a sentence may go on on the next line.

    >>> detect_text_format(["The cat sat.", '"Is it?" he asked.', "", "Mr. Poe left."])
    'sentences'
    >>> detect_text_format(["The thousand injuries of Fortunato I had borne as I best could;",
    ...                     "but when he ventured upon insult, I vowed revenge. You, who so"])
    'prose'
    >>> detect_text_format(["= Rain =", "It rained. We stayed in.", "The sun came out. We left."])
    'paragraphs'
    """
    lines = [line.strip() for line in lines]
    lines = [line for line in lines if line and not is_heading(line)]
    if not lines:
        return "sentences"
    ends = sum(1 for line in lines if _SENTENCE_END.search(line))
    inner = sum(1 for line in lines if _INNER_END.search(line))
    ended = ends >= SENTENCE_END_SHARE * len(lines)
    if ended and inner <= INNER_END_SHARE * len(lines):
        return "sentences"
    if ended or sorted(map(len, lines))[len(lines) // 2] > PARAGRAPH_LINE_CHARS:
        return "paragraphs"
    return "prose"


@lru_cache(maxsize=1)
def _segmenter():
    """One pysbd splitter per process (building it compiles many rules): ``segment(text)`` -> sentences."""
    from bertforge.data.segmenter import FastSegmenter  # only prose needs pysbd, and importing it costs time

    return FastSegmenter()


def split_sentences(text: str) -> list[str]:
    """The sentences of one block of prose, stripped, whitespace runs made one space.

    pysbd does the splitting, so abbreviations, initials, decimals, ellipses and
    quotations stay inside their sentence; text in quotes or brackets is kept
    together, as pysbd does. Text longer than 5,000 characters is first cut at
    sentence ends beyond doubt, outside quotes and brackets, and no piece pysbd
    sees is longer than 25,000 characters, because pysbd's time grows faster than
    its input. The pieces are split on their own, so a reader can hand them to
    different processes (:func:`prose_pieces` and :func:`split_piece`).

    >>> split_sentences("Mr. E. A. Poe paid $3.50, e.g. for ink.  “Is it?” he asked. Wait... no.")
    ['Mr. E. A. Poe paid $3.50, e.g. for ink.', '“Is it?” he asked.', 'Wait... no.']
    """
    return [sentence for piece in prose_pieces(text) for sentence in split_piece(piece)]


def prose_pieces(text: str) -> list[str]:
    """``text``, whitespace runs made one space, cut where splitting on each side alone changes nothing.

    >>> [len(piece) for piece in prose_pieces("It rained all day. " * 600)]
    [4997, 4997, 1405]
    """
    return _pieces(" ".join(text.split()))


def split_piece(piece: str) -> list[str]:
    """The sentences of one piece from :func:`prose_pieces` (whitespace already made single spaces).

    >>> split_piece("It sinks if let alone.’ Then it rose.")
    ['It sinks if let alone.’', 'Then it rose.']
    """
    spans: list[list[int]] = []
    start = 0
    for segment in _segmenter().segment(piece):
        segment = segment.strip()
        found = piece.find(segment, start) if segment else -1
        if found < 0:  # never seen: pysbd with clean=False returns pieces of its input
            continue
        start = found + len(segment)
        glued = _glued_length(piece[spans[-1][0]:spans[-1][1]], segment) if spans else 0
        if glued:
            spans[-1][1] = found + glued
        if glued < len(segment):
            spans.append([start - len(segment[glued:].lstrip()), start])
    return [piece[begin:end] for begin, end in spans]


def _glued_length(previous: str, segment: str) -> int:
    """How much of pysbd's next ``segment`` belongs to the ``previous`` sentence: all, a first token, or none.

    pysbd cuts closing marks off after ``!``, ``?`` or ``.`` ('...alone.' then '’',
    '...am _here!' then '_ To-morrow ...'), cuts before a comma or semicolon after
    an abbreviation it does not know ('...the MS.' then ', and now ...'), and misses
    a title after a dash or a quote ('...Vredenburgh—Mr.' then 'Barnard is ...')."""
    if not _WORD_CHARACTER.search(segment) or segment[0] in ",;:":
        return len(segment)
    if _TITLE_END.search(previous) and _CAPITALISED.match(segment):
        return len(segment)
    closing = _CLOSING_TOKEN.match(segment)
    return closing.end() if closing else 0


def _pieces(text: str) -> list[str]:
    """``text`` cut into pieces of at most MAX_SEGMENT_CHARS where that can be done safely.

    A cut goes after a sentence end beyond doubt (see ``_CERTAIN_END``) with no
    quote or bracket open, as close to the limit as possible; where there is none
    within the limit, at the first one after it, unless that makes a piece longer
    than MAX_PIECE_CHARS (see :func:`_bounded`). Such a cut is never where pysbd's
    output would be mended across it (the next piece starts with a capital letter,
    or a word after a word), so the pieces split alone give the sentences of the whole."""
    if len(text) <= MAX_SEGMENT_CHARS:
        return [text]
    cuts = _safe_cuts(text)
    pieces, start, candidate = [], 0, None
    for cut in cuts + [len(text)]:
        if cut - start > MAX_SEGMENT_CHARS:
            end = candidate if candidate is not None and candidate > start else cut
            if end < len(text):
                pieces.extend(_bounded(text, start, end))
                start = end
        candidate = cut
    pieces.extend(_bounded(text, start, len(text)))
    return [piece for piece in pieces if piece.strip()]


def _bounded(text: str, start: int, end: int) -> list[str]:
    """``text[start:end]`` whole when it is at most MAX_PIECE_CHARS long, else cut into
    pieces of at most MAX_SEGMENT_CHARS: after the last sentence end beyond doubt in
    reach (quotes and brackets not counted), else at the last space between two words,
    else (a run of that many characters without a space) at the limit."""
    if end - start <= MAX_PIECE_CHARS:
        return [text[start:end]]
    pieces = []
    while end - start > MAX_SEGMENT_CHARS:
        limit = start + MAX_SEGMENT_CHARS
        cut = max((match.end() for match in _CERTAIN_END.finditer(text, start, limit)), default=0)
        if cut <= start:
            cut = max((match.end() for match in _WORD_GAP.finditer(text, start, limit)), default=0)
        cut = cut if cut > start else limit
        pieces.append(text[start:cut])
        start = cut
    pieces.append(text[start:end])
    return pieces


def _safe_cuts(text: str) -> list[int]:
    """Positions after certain sentence ends where no quote or bracket is open."""
    cuts, previous = [], 0
    curly = straight = brackets = 0
    for match in _CERTAIN_END.finditer(text):
        between = text[previous:match.end()]
        curly += between.count("“") - between.count("”")
        straight += between.count('"')
        brackets += between.count("(") - between.count(")")
        previous = match.end()
        if curly == 0 and straight % 2 == 0 and brackets == 0:
            cuts.append(match.end())
    return cuts


def split_clauses(sentence: str) -> list[str]:
    """A sentence cut after commas, semicolons, colons and dashes into pseudo-sentences.

    The mark stays with the piece before it, and so do closing quotes and
    brackets after it. Numbers (``3,500``, ``10:30``, ``1809–1849``) and
    hyphenated words (``well-known``) are not cut; ``--`` and a spaced `` - ``
    are dashes. A piece of punctuation only joins the piece before it.

    >>> split_clauses("He had a weak point—this Fortunato—although he was feared; he paid 3,500 francs.")
    ['He had a weak point—', 'this Fortunato—', 'although he was feared;', 'he paid 3,500 francs.']
    >>> split_clauses("“I have my doubts,” I replied -- a well-known ruse: Mr. B—.")
    ['“I have my doubts,”', 'I replied --', 'a well-known ruse:', 'Mr. B—.']
    """
    spans: list[list[int]] = []
    start = 0
    for end in [match.end() for match in _CLAUSE_BREAK.finditer(sentence)] + [len(sentence)]:
        if _WORD_CHARACTER.search(sentence, start, end):
            spans.append([start, end])
            start = end
        elif spans:
            spans[-1][1] = end
            start = end
        # else: punctuation before the first word stays at the start of the first piece.
    pieces = [sentence[begin:end].strip() for begin, end in spans]
    if not spans and sentence.strip():
        pieces = [sentence.strip()]
    return [piece for piece in pieces if piece]
