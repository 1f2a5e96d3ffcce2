"""The one type every reader of tagged data returns: :class:`TaggedData`.

Sentences are lists of words; ``texts`` and ``offsets`` keep where each word
sits in a text, so predicted tags can be shown as character spans of what the
user gave. For word lists (CoNLL, JSON token lists) that text is the words
joined by single spaces.

>>> text, offsets = joined(["New", "York", "!"])
>>> text, offsets
('New York !', [(0, 3), (4, 8), (9, 10)])
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TaggedData:
    """Sentences as words, with one tag per word when labeled.

    ``lines[i]`` is where sentence ``i`` starts, counted in ``unit``: the 1-based
    line of a file (``"line"``), or the 0-based position of rows given in memory
    (``"row"``, so ``row 3`` is ``rows[3]``, as for labeled rows). ``scheme`` is
    the tag scheme detected (``iob1``, ``iob2``, ``bioes``, ``plain``), ``None``
    for unlabeled data.

    >>> data = TaggedData([["Hi"], ["Paris", "!"]], [["O"], ["B-LOC", "O"]], ["Hi", "Paris !"],
    ...                   [[(0, 2)], [(0, 5), (6, 7)]], [1, 3], "train.conll", "iob2")
    >>> len(data), data.subset([1]).words, data.where(1)
    (2, [['Paris', '!']], 'train.conll: line 3')
    """

    words: list[list[str]]
    tags: list[list[str]] | None            # None for unlabeled input
    texts: list[str]                        # the text each sentence's offsets point into
    offsets: list[list[tuple[int, int]]]    # (start, end) character offsets of every word in texts[i]
    lines: list[int]                        # where each sentence starts, in `unit`, for messages
    path: str                               # the file, "<stdin>", or a description like "<list of 3 rows>"
    scheme: str | None = None               # tag scheme detected, when tagged
    unit: str = "line"                      # what `lines` counts: "line" in a file, "row" in memory
    word_lines: list[list[int]] | None = None  # CoNLL: the line of every word, for messages about one word

    def __len__(self) -> int:
        return len(self.words)

    def subset(self, indices) -> "TaggedData":
        """The sentences at ``indices`` (positions, not line numbers), in the order given."""
        indices = [int(index) for index in indices]

        def pick(values):
            return None if values is None else [values[index] for index in indices]

        return TaggedData(pick(self.words), pick(self.tags), pick(self.texts), pick(self.offsets),
                          pick(self.lines), self.path, self.scheme, self.unit, pick(self.word_lines))

    def where(self, index: int, word: int | None = None) -> str:
        """Where sentence ``index`` (or its ``word``, when the file has a line per word) is, for a
        message: ``"train.conll: line 12"``."""
        if word is not None and self.word_lines is not None:
            return f"{self.path}: {self.unit} {self.word_lines[index][word]}"
        return f"{self.path}: {self.unit} {self.lines[index]}"


def joined(words: list[str]) -> tuple[str, list[tuple[int, int]]]:
    """The words joined by single spaces, and each word's ``(start, end)`` in that text."""
    offsets, start = [], 0
    for word in words:
        offsets.append((start, start + len(word)))
        start += len(word) + 1
    return " ".join(words), offsets
