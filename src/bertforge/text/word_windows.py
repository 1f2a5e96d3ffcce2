"""Sentences given as words -> model rows, and the rows' per-token outputs -> one per word.

Each word is split into word pieces; its tag goes on its first piece and the other
pieces are left out of the loss (or, with ``continuation``, learn a tag of their own).
A sentence longer than the window is read in overlapping windows of whole words, and
every word is read from the window where it has the most context on both sides (a
variant of the rule BERT's reading-comprehension code uses for its document spans:
a sentence's own start or end counts as full context), so a word cut
off near a window's edge is predicted where it sits well inside another.

>>> tok = Tokenizer.train(["one two three four five six seven eight"] * 20, vocab_size=60)
>>> words = "one two three four five six seven eight".split()
>>> rows = encode_words(tok, [words], max_length=6, windows=WordWindows(stride=2))
>>> [tok.decode(row) for row in rows.input_ids]
['one two three four', 'three four five six', 'five six seven eight']
>>> rows.word_index[1].tolist()  # the middle window is where 'four' and 'five' are read
[-1, -1, 3, 4, -1, -1]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from bertforge.constants import IGNORE_INDEX
from bertforge.errors import BertforgeError
from bertforge.text.features import Features
from bertforge.text.tokenizer import Tokenizer

MODE = "word-windows"


@dataclass(frozen=True)
class WordWindows:
    """How a sentence longer than the window is read: windows of whole words, each
    starting ``stride`` words after the one before (default: half the words of that
    window), so consecutive windows overlap.

    >>> WordWindows(stride=16).to_dict()
    {'mode': 'word-windows', 'stride': 16}
    >>> WordWindows(stride=0)
    Traceback (most recent call last):
    ...
    bertforge.errors.BertforgeError: --stride 0 is not a positive whole number of words; pass e.g. 32
    """

    stride: int | None = None

    def __post_init__(self) -> None:
        if self.stride is not None and (isinstance(self.stride, bool) or not isinstance(self.stride, (int, np.integer))
                                        or self.stride < 1):
            raise BertforgeError(f"--stride {self.stride!r} is not a positive whole number of words; pass e.g. 32")

    def to_dict(self) -> dict[str, Any]:
        return {"mode": MODE, "stride": self.stride}

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> "WordWindows":
        return cls((values or {}).get("stride"))


def window_spans(piece_counts: Sequence[int], budget: int, stride: int | None) -> list[tuple[int, int]]:
    """``(first word, end word)`` of each window over words of ``piece_counts`` pieces.

    >>> window_spans([1, 1, 1, 1, 1], budget=3, stride=None)
    [(0, 3), (1, 4), (2, 5)]
    >>> window_spans([2, 2, 1], budget=10, stride=None)
    [(0, 3)]
    """
    words = len(piece_counts)
    spans, start = [], 0
    while True:
        end, used = start, 0
        while end < words and used + piece_counts[end] <= budget:
            used += piece_counts[end]
            end += 1
        end = max(end, start + 1)  # a word longer than the window is cut to it (see encode_words)
        spans.append((start, end))
        if end >= words:
            return spans
        step = stride or max(1, (end - start) // 2)
        start = min(start + step, end)  # never past the window's end: no word is skipped


def best_windows(spans: list[tuple[int, int]], words: int) -> np.ndarray:
    """For each word, the window it has most context in: the most words on its nearer
    side, where a sentence's own start or end counts as full context.

    >>> best_windows([(0, 3), (1, 4), (2, 5)], 5).tolist()
    [0, 0, 1, 2, 2]
    """
    best = np.zeros(words, dtype=np.int64)
    score = np.full(words, -1, dtype=np.int64)
    for window, (start, end) in enumerate(spans):
        positions = np.arange(start, end)
        left = positions - start if start > 0 else np.full(len(positions), words)
        right = end - 1 - positions if end < words else np.full(len(positions), words)
        context = np.minimum(left, right)
        better = context > score[start:end]  # ties stay with the earlier window
        best[start:end][better] = window
        score[start:end][better] = context[better]
    return best


def encode_words(tokenizer: Tokenizer, sentences: Sequence[Sequence[str]], max_length: int,
                 windows: WordWindows = WordWindows(), tags: Sequence[Sequence[int]] | None = None,
                 continuation: Sequence[int] | None = None) -> Features:
    """Rows of ``[CLS] pieces [SEP]`` for sentences given as words, padded to the longest row.

    ``tags``: one tag id per word; the word's first piece gets it (``labels``), the other
    pieces :data:`IGNORE_INDEX`, or ``continuation[tag]`` when ``continuation`` maps each tag
    to the one its later pieces learn. ``word_index`` says where each word is read back.
    """
    budget = max_length - 2
    if budget < 1:
        raise BertforgeError(f"max length {max_length} leaves no room for words; pass at least 3")
    rows: list[list[int]] = []
    label_rows: list[list[int]] = []
    index_rows: list[list[int]] = []
    owner: list[int] = []
    for example, pieces in enumerate(tokenizer.word_pieces(sentences)):
        pieces = [ids[:budget] for ids in pieces]
        spans = window_spans([len(ids) for ids in pieces], budget, windows.stride)
        best = best_windows(spans, len(pieces))
        word_tags = tags[example] if tags is not None else None
        for window, (start, end) in enumerate(spans):
            ids, labels, index = [tokenizer.cls_id], [IGNORE_INDEX], [-1]
            for word in range(start, end):
                count = len(pieces[word])
                ids += pieces[word]
                index += [word if best[word] == window else -1] + [-1] * (count - 1)
                if word_tags is not None:
                    tag = int(word_tags[word])
                    later = IGNORE_INDEX if continuation is None else int(continuation[tag])
                    labels += [tag] + [later] * (count - 1)
            rows.append(ids + [tokenizer.sep_id])
            label_rows.append(labels + [IGNORE_INDEX])
            index_rows.append(index + [-1])
            owner.append(example)
    width = max((len(row) for row in rows), default=2)
    shape = (len(rows), width)
    input_ids = np.full(shape, tokenizer.pad_id, dtype=np.int64)
    input_mask = np.zeros(shape, dtype=np.int64)
    labels = np.full(shape, IGNORE_INDEX, dtype=np.int64)
    word_index = np.full(shape, -1, dtype=np.int64)
    for r, row in enumerate(rows):
        input_ids[r, :len(row)] = row
        input_mask[r, :len(row)] = 1
        if tags is not None:
            labels[r, :len(row)] = label_rows[r]
        word_index[r, :len(row)] = index_rows[r]
    return Features(input_ids, input_mask, np.zeros_like(input_ids), labels if tags is not None else None,
                    owner=np.asarray(owner, dtype=np.int64), examples=len(sentences), word_index=word_index)


def fold_words(outputs: np.ndarray, rows: Features) -> np.ndarray:
    """Per-token outputs ``(rows, length, k)`` -> per word ``(examples, most words, k)``,
    each word's from the row that reads it (zeros past a sentence's last word).

    >>> rows = Features(*(np.zeros((2, 3)),) * 3, owner=np.array([0, 0]), word_index=np.array([[-1, 0, -1], [-1, 1, -1]]))
    >>> fold_words(np.arange(12.0).reshape(2, 3, 2), rows).tolist()
    [[[2.0, 3.0], [8.0, 9.0]]]
    """
    row, position = np.nonzero(rows.word_index >= 0)
    words = rows.word_index[row, position]
    width = int(words.max()) + 1 if len(words) else 0
    folded = np.zeros((rows.num_examples, width, *outputs.shape[2:]), dtype=np.float32)
    folded[rows.row_owner[row], words] = outputs[row, position]
    return folded


__all__ = ["MODE", "WordWindows", "best_windows", "encode_words", "fold_words", "window_spans"]
