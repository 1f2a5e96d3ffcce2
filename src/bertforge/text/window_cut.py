"""Cut a long text down to what a window reads before tokenizing it: the same ids, far less work.

A truncating model reads the first pieces of a text, head-tail its first and last pieces;
tokenizing all of a 100 KB text to keep 254 pieces spends nearly all of the time on pieces
thrown away (28 ms per 96 KB text measured with MiniLM's tokenizer, 0.2 ms for its first 2 KB).
:func:`window_texts` hands back, for each text, a shorter text that tokenizes to the same
kept ids, and :func:`count_pieces` counts pieces without going further than a caller cares.

Why a cut text gives the same ids: WordPiece splits each word on its own, and a word ends
where whitespace or punctuation does, so the words of a prefix that end before its last
word are the text's own words. The cut keeps a margin of the longest added token ([MASK]...)
so that no such token is broken either; the only assumption is that added tokens do not
overlap one another, which holds for BERT's special tokens. When a guess holds too few
complete words, the cut is doubled until it does (at worst, the whole text is used).

>>> tok = Tokenizer.train(["the cat sat on the mat"] * 20, vocab_size=40)
>>> long = "the cat sat on the mat " * 2000
>>> [len(cut) for cut in window_texts(tok, [long, "the cat"], max_length=8)]
[256, 7]
>>> tok.encode_batch([long], max_length=8)["input_ids"].tolist() == \\
...     tok.encode_batch(window_texts(tok, [long], max_length=8), max_length=8)["input_ids"].tolist()
True
"""

from __future__ import annotations

import weakref
from typing import Sequence

import numpy as np

from bertforge.text.tokenizer import Tokenizer

# Where the first guess starts: English runs about 4-5 characters a piece; too short a
# guess costs one more (doubled) try, too long a few microseconds more tokenizing.
CHARS_PER_PIECE_GUESS = 6
SMALLEST_CUT = 256

_HOW_WORDS_END: "weakref.WeakKeyDictionary[Tokenizer, tuple[np.ndarray, int]]" = weakref.WeakKeyDictionary()


def _word_rules(tokenizer: Tokenizer) -> tuple[np.ndarray, int]:
    """Which ids continue a word (``##...``), and the margin that keeps added tokens whole."""
    if tokenizer not in _HOW_WORDS_END:
        added = tokenizer.backend.get_added_tokens_decoder().values()
        margin = max((len(token.content) for token in added), default=0) + 1
        _HOW_WORDS_END[tokenizer] = (tokenizer.continuation_mask(), margin)
    return _HOW_WORDS_END[tokenizer]


def _stable_head(ids: list[int], offsets: list[tuple[int, int]], cut: int, continues: np.ndarray,
                 margin: int) -> tuple[int, int]:
    """How many leading pieces of ``text[:cut]`` are the text's own (the complete words ending
    at least ``margin`` characters before the cut, never the last word of the cut), and where
    the first piece that is not begins."""
    safe = cut - margin
    end = 0
    for index in range(len(ids)):
        if ids[index] >= len(continues) or not continues[ids[index]]:
            end = index  # a word starts here: everything before it is complete
        if offsets[index][1] > safe:
            break
    return end, (offsets[end][0] if end < len(ids) else cut)


def _stable_tail(ids: list[int], offsets: list[tuple[int, int]], continues: np.ndarray, margin: int) -> int:
    """How many trailing pieces of a suffix are the text's own: the words starting at or after
    ``margin`` characters into it (the first word may have been cut)."""
    for index in range(1, len(ids)):
        starts_word = ids[index] >= len(continues) or not continues[ids[index]]
        if starts_word and offsets[index][0] >= margin:
            return len(ids) - index
    return 0


def stable_prefixes(tokenizer: Tokenizer, texts: Sequence[str], pieces: int,
                    exact: bool = False) -> list[tuple[str, int, bool]]:
    """For each text ``(prefix, kept, whole)``: a prefix whose first ``kept`` ids, at least
    ``pieces`` of them, are the text's own first ids; ``whole`` when the prefix is the text
    itself (then ``kept`` is its exact number of pieces). With ``exact`` the prefix ends where
    its kept pieces do, so that it has ``kept`` pieces and no more.

    >>> tok = Tokenizer.train(["red green blue"] * 20, vocab_size=40)
    >>> [(len(p), kept, whole) for p, kept, whole in stable_prefixes(tok, ["red " * 500, "blue"], 10)]
    [(256, 62, False), (4, 1, True)]
    """
    continues, margin = _word_rules(tokenizer)
    cuts = [max(SMALLEST_CUT, pieces * CHARS_PER_PIECE_GUESS + 2 * margin)] * len(texts)
    found: list[tuple[str, int, bool] | None] = [None] * len(texts)
    while True:
        todo = [i for i, answer in enumerate(found) if answer is None]
        if not todo:
            return found  # type: ignore[return-value]
        wanted = [texts[i] if cuts[i] >= len(texts[i]) else texts[i][:cuts[i]] for i in todo]
        for i, text, (ids, offsets) in zip(todo, wanted, tokenizer.pieces_with_offsets(wanted)):
            if len(text) == len(texts[i]):
                found[i] = (texts[i], len(ids), True)
                continue
            kept, boundary = _stable_head(ids, offsets, len(text), continues, margin)
            if kept >= pieces:
                found[i] = (text[:boundary] if exact else text, kept, False)
            else:
                cuts[i] *= 2


def stable_suffixes(tokenizer: Tokenizer, texts: Sequence[str], pieces: int) -> list[tuple[str, int, bool]]:
    """The mirror of :func:`stable_prefixes`: a suffix whose last ``kept`` ids (at least
    ``pieces``) are the text's own last ids.

    >>> tok = Tokenizer.train(["red green blue"] * 20, vocab_size=40)
    >>> [(len(s), kept >= 10, whole) for s, kept, whole in stable_suffixes(tok, ["red " * 500], 10)]
    [(256, True, False)]
    """
    continues, margin = _word_rules(tokenizer)
    margin *= 2  # an added token that ends inside the suffix may have begun before it
    cuts = [max(SMALLEST_CUT, pieces * CHARS_PER_PIECE_GUESS + 2 * margin)] * len(texts)
    found: list[tuple[str, int, bool] | None] = [None] * len(texts)
    while True:
        todo = [i for i, answer in enumerate(found) if answer is None]
        if not todo:
            return found  # type: ignore[return-value]
        wanted = [texts[i] if cuts[i] >= len(texts[i]) else texts[i][len(texts[i]) - cuts[i]:] for i in todo]
        for i, text, (ids, offsets) in zip(todo, wanted, tokenizer.pieces_with_offsets(wanted)):
            if len(text) == len(texts[i]):
                found[i] = (texts[i], len(ids), True)
                continue
            kept = _stable_tail(ids, offsets, continues, margin)
            if kept >= pieces:
                found[i] = (text, kept, False)
            else:
                cuts[i] *= 2


def count_pieces(tokenizer: Tokenizer, texts: Sequence[str], most: int) -> list[int]:
    """The number of pieces of each text, exact up to ``most``; above it, some number above ``most``
    (the rest of the text is never tokenized).

    >>> tok = Tokenizer.train(["red green blue"] * 20, vocab_size=40)
    >>> exact, above = count_pieces(tok, ["red green", "red " * 100_000], most=50)
    >>> exact, above > 50
    (2, True)
    """
    return [kept for _, kept, _ in stable_prefixes(tokenizer, texts, most + 1)]


def window_texts(tokenizer: Tokenizer, texts: Sequence[str], max_length: int, mode: str = "truncate",
                 text_pairs: Sequence[str | None] | None = None) -> list[str] | tuple[list[str], list[str | None]]:
    """Texts that tokenize, under ``max_length`` and ``mode`` (``truncate`` or ``head-tail``),
    to the ids their originals do, each cut to what the window reads. With ``text_pairs``
    (truncate only) both lists come back.

    A pair loses pieces from its longer text first, and when both are long and the room left is
    odd the longer one keeps the extra piece: for such a pair both texts are counted whole (but
    never truncated whole: the tokenizer would list every overflowing window of the pair) and
    cut so that the same one stays the longer.

    >>> tok = Tokenizer.train(["one two three four five six"] * 20, vocab_size=40)
    >>> long = "one two three four five six " * 1000
    >>> cut = window_texts(tok, [long], max_length=10, mode="head-tail")[0]
    >>> from bertforge.text.long_text import LongText, encode_windows
    >>> ids = [encode_windows(tok, [t], None, 10, LongText("head-tail")).input_ids.tolist() for t in (long, cut)]
    >>> ids[0] == ids[1]
    True
    >>> len(cut) < len(long) // 50
    True
    """
    texts = list(texts)
    if mode == "head-tail":
        if text_pairs is not None:
            raise ValueError("head-tail reads single texts")
        budget = max_length - 2
        head, tail = budget // 4, budget - budget // 4
        prefixes = stable_prefixes(tokenizer, texts, head + 1)  # one more: the cut text must still be cut
        suffixes = stable_suffixes(tokenizer, texts, tail)
        return [text if p_whole or s_whole or len(prefix) + len(suffix) >= len(text) else f"{prefix} {suffix}"
                for text, (prefix, _, p_whole), (suffix, _, s_whole) in zip(texts, prefixes, suffixes)]
    if mode != "truncate":
        raise ValueError(f"mode {mode!r}: only truncate and head-tail read part of a text")
    if text_pairs is None:
        return [prefix for prefix, _, _ in stable_prefixes(tokenizer, texts, max_length - 2)]
    pairs = list(text_pairs)
    room = max_length - 3
    # More than the room on each side: then a text cut here still loses the same pieces.
    firsts = stable_prefixes(tokenizer, texts, room + 1)
    present = [i for i, pair in enumerate(pairs) if pair is not None]
    seconds = dict(zip(present, stable_prefixes(tokenizer, [pairs[i] for i in present], room + 1)))
    cut_texts, cut_pairs = [], []
    for i, (text, (first, first_kept, _)) in enumerate(zip(texts, firsts)):
        if i not in seconds:
            cut_texts.append(first)
            cut_pairs.append(None)
            continue
        second, second_kept, _ = seconds[i]
        both_long = first_kept > room and second_kept > room
        if both_long and room % 2:
            first, second = _keep_the_longer(tokenizer, text, pairs[i], room)
            cut_texts.append(first)
            cut_pairs.append(second)
        else:
            cut_texts.append(first)
            cut_pairs.append(second)
    return cut_texts, cut_pairs


def _keep_the_longer(tokenizer: Tokenizer, text: str, pair: str, room: int) -> tuple[str, str]:
    """Cut a long text and its long pair so that the first stays longer than the second exactly
    when it was (the truncation's tie goes to the second), each with more pieces than ``room``."""
    first_count, second_count = (len(ids) for ids, _ in tokenizer.pieces_with_offsets([text, pair]))
    first_longer = first_count > second_count
    shorter, longer = (pair, text) if first_longer else (text, pair)
    short_cut, short_kept, _ = stable_prefixes(tokenizer, [shorter], room + 1, exact=True)[0]
    long_cut = stable_prefixes(tokenizer, [longer], short_kept + (1 if first_longer else 0), exact=True)[0][0]
    return (long_cut, short_cut) if first_longer else (short_cut, long_cut)


__all__ = ["count_pieces", "stable_prefixes", "stable_suffixes", "window_texts"]
