"""pysbd's English sentence splitter, run without the two parts of it that cost time without changing a sentence.

``pysbd.Segmenter.segment`` finishes by finding each sentence in the input again
with a regular expression made for that sentence and run from the start of the
input: a compile per sentence (which also flushes Python's cache of compiled
patterns, so pysbd's own patterns are compiled again and again) and a scan that
grows with the input, for offsets that :func:`bertforge.data.sentences.split_piece`
finds anyway with ``str.find``. On the Works of Poe that step was 60% of the time.

pysbd's abbreviation pass, for each abbreviation in a text, rewrites the whole
text once per occurrence of it, where one rewrite per distinct spelling does the
same (see :class:`_AbbreviationReplacer`); that made its time grow with the square
of the length of a text.

Of the abbreviations on pysbd's list, that pass only looks at those that stand
before a full stop somewhere in the text (one scan of the text finds the words
that do): an abbreviation that does not can make no change.

Most prose needs none of pysbd's rules at all: a paragraph of words, commas,
semicolons, colons and dashes whose every ``.``, ``!`` and ``?`` follows a
lower-case word that is no abbreviation and is followed by a space and a capital
letter (or ends the text) is cut after each of them, which is what pysbd does with
such text (see :func:`plain_sentences`); anything else goes to pysbd.

What comes out is what ``Segmenter(language="en", clean=False).segment`` gives,
stripped: ``tests/test_corpus_linear.py`` holds the two equal on every paragraph
of the Works of Poe, and ``tests/test_sentence_fast_path.py`` every paragraph the
plain path takes.

>>> FastSegmenter().segment("Mr. Poe met Dr. Griswold at 3 p.m. on Tuesday. They argued.")
['Mr. Poe met Dr. Griswold at 3 p.m. on Tuesday.', 'They argued.']
"""

from __future__ import annotations

import re

from pysbd.languages import Language
from pysbd.processor import Processor

_ENGLISH = Language.get_language_code("en")
_ABBREVIATIONS = frozenset(abbreviation.strip().lower() for abbreviation in _ENGLISH.Abbreviation.ABBREVIATIONS)
# Letters that re.IGNORECASE matches to an ASCII letter although str.lower() does not
# make them one (long s, Kelvin sign, dotless i, dotted I): where one occurs, lowering
# a word does not tell whether pysbd's case-blind search finds an abbreviation in it.
_CASE_FOLDS = frozenset("ſKıİ")
# A whitespace run, and any full stops in it: the words pysbd's abbreviation rewrite can touch.
_WORD_WITH_STOP = re.compile(r"(?<!\S)\S*\.\S*")
# A plain paragraph: letters (no digits), single spaces, commas, semicolons, colons and
# single dashes; ., ! and ? only after a lower-case letter and before a space and a
# capital letter or at the end. Quotes, brackets, apostrophes straight or curly,
# digits, ellipses, "--", "?!", and a mark before a lower-case word all go to pysbd.
_PLAIN = re.compile(r"(?:[^\W\d_]|[,;:—–-](?!-)| (?! )|(?<=[a-z])[.!?](?= [A-Z]|\Z))*")
# The word before each sentence end of a plain paragraph.
_END_WORD = re.compile(r"(\S+)[.!?](?= |\Z)")
# Words that pysbd keeps a ! with (its list of exclamation words).
_EXCLAMATION_WORDS = frozenset({"Yahoo", "Yum"})
# Where a plain paragraph is cut: after each mark.
_PLAIN_BREAK = re.compile(r"(?<=[.!?]) ")


def plain_sentences(text: str) -> list[str] | None:
    """The sentences of ``text`` if it is a plain paragraph (none of pysbd's rules apply), else None.

    >>> plain_sentences("The rain fell; it was cold. Then it stopped! Did it?")
    ['The rain fell; it was cold.', 'Then it stopped!', 'Did it?']
    >>> plain_sentences("Mr. Poe left."), plain_sentences("“Go,” he said."), plain_sentences("In 1845 it rained.")
    (None, None, None)
    """
    if not text or text[0] == " " or text[-1] == " " or not _PLAIN.fullmatch(text) or _CASE_FOLDS & set(text):
        return None
    for match in _END_WORD.finditer(text):
        word = match.group(1)
        # One letter is an initial or a list item; the word must start after a space,
        # since that is where pysbd looks for abbreviations.
        if len(word) < 2 or word.lower() in _ABBREVIATIONS or word in _EXCLAMATION_WORDS:
            return None
    if "Co. KG" in text:  # pysbd's rule for German company names
        return None
    return _PLAIN_BREAK.split(text)


class _AbbreviationReplacer(_ENGLISH.AbbreviationReplacer):
    """pysbd's English abbreviation pass, one rewrite per distinct spelling of an abbreviation.

    For each occurrence of an abbreviation pysbd replaces, in the whole text, every
    ``.`` that follows that spelling (and passes a look-ahead) with ``∯``. Each such
    rewrite only ever turns a ``.`` into ``∯``, and no pattern of the pass needs a
    ``∯`` to match: so after one rewrite for a spelling, another for the same spelling
    finds nothing, whatever was rewritten in between. Only the word after an
    abbreviation would make occurrences differ, and pysbd looks for it with a pattern
    that needs literal braces (``{dr} x``); where a text has such a thing, this pass
    does exactly what pysbd does.
    """

    def search_for_abbreviations_in_string(self, text):
        lowered = text.lower()
        # Every rewrite of the pass puts ∯ for a "." right after whitespace and a spelling
        # of the abbreviation: a spelling that is no word before a "." changes nothing.
        # So the spellings come from one scan of the text rather than a search per
        # abbreviation, except for abbreviations with a "." of their own (pysbd's search
        # reads it as "any character"), for letters whose case lower() does not tell
        # (see _CASE_FOLDS) and where braces make pysbd look at the next word.
        exact = not (_CASE_FOLDS & set(text)) and "{" not in text
        spellings = _words_before_stops(text) if exact else {}
        for abbreviation in self.lang.Abbreviation.ABBREVIATIONS:
            stripped = abbreviation.strip()
            if stripped not in lowered:
                continue
            if exact and "." not in stripped:
                for spelling in spellings.get(stripped, ()):
                    text = self.scan_for_replacements(text, spelling, 0, [])
                continue
            found = re.findall(r"(?:^|\s|\r|\n){}".format(stripped), text, flags=re.IGNORECASE)
            if not found:
                continue
            next_words = re.findall(r"(?<={" + str(re.escape(stripped)) + "} ).{1}", text)
            if next_words:
                for index, match in enumerate(found):
                    text = self.scan_for_replacements(text, match, index, next_words)
            else:
                for match in dict.fromkeys(match.strip() for match in found):
                    text = self.scan_for_replacements(text, match, 0, next_words)
        return text


def _words_before_stops(text: str) -> dict[str, dict[str, None]]:
    """Each start of a whitespace run up to a "." in it, by its lower case: "E.g." gives "E" and "E.g"."""
    words: dict[str, dict[str, None]] = {}
    for match in _WORD_WITH_STOP.finditer(text):
        run = match.group()
        stop = run.find(".")
        while stop >= 0:
            words.setdefault(run[:stop].lower(), {})[run[:stop]] = None
            stop = run.find(".", stop + 1)
    return words


class _Processor(Processor):
    def abbreviations_replacer(self):
        return _AbbreviationReplacer(self.text, self.lang)


class FastSegmenter:
    """``segment(text)``: the sentences pysbd finds in ``text``, without their offsets."""

    def segment(self, text: str) -> list[str]:
        if not text:
            return []
        plain = plain_sentences(text)
        if plain is not None:
            return plain
        return [sentence for sentence in _Processor(text, _ENGLISH, char_span=False).process() if sentence]
