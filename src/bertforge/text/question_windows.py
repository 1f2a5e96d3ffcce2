"""Question and passage as model rows: the passage cut into overlapping windows of pieces.

Each row is ``[CLS] question [SEP] passage window [SEP]`` with segment 0 up to the first
``[SEP]`` and 1 after it. A passage longer than the room the question leaves is read in
windows that start ``doc_stride`` pieces apart (the step between starts, as in Google's
``run_squad.py``; ``transformers``' ``run_qa.py`` calls the overlap its stride), the last
one ending at the passage's end. Every passage piece keeps its character offsets into the
passage as given, so an answer found in any window is an exact substring of the text.

Training targets are the answer's first and last piece in each window that holds the
whole answer; a window that does not, and a question with no answer, point at ``[CLS]``
(position 0).

>>> from bertforge.text.tokenizer import Tokenizer
>>> tok = Tokenizer.train(["who came ? ann came to paris and bob came later"] * 20, vocab_size=60)
>>> rows = encode_questions(tok, ["Who came?"], ["Ann came to Paris and Bob came later"], 10,
...                         QuestionWindows(doc_stride=2), answers=[[("Bob", 22)]])
>>> [tok.decode(ids[mask == 1].tolist(), skip_special_tokens=False) for ids, mask in zip(rows.input_ids, rows.input_mask)]
['[CLS] who came? [SEP] ann came to paris [SEP]', '[CLS] who came? [SEP] to paris and bob [SEP]', '[CLS] who came? [SEP] and bob came later [SEP]']
>>> rows.labels.tolist(), rows.owner.tolist()
([[0, 0], [8, 8], [6, 6]], [0, 0, 0])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from bertforge.errors import BertforgeError
from bertforge.text.features import Features

MODE = "question-windows"
DEFAULT_DOC_STRIDE = 128
DEFAULT_MAX_QUESTION_LENGTH = 64
SPECIAL_TOKENS = 3  # [CLS] question [SEP] passage [SEP]


@dataclass(frozen=True)
class QuestionWindows:
    """How a passage is cut into windows beside its question.

    ``doc_stride``: passage pieces between the starts of two windows (default: 128, or
    half the room a question leaves when that is less); ``max_question_length``: a
    longer question keeps its first pieces.

    >>> QuestionWindows(doc_stride=64).to_dict()
    {'mode': 'question-windows', 'doc_stride': 64, 'max_question_length': 64}
    >>> QuestionWindows.from_dict({'mode': 'question-windows', 'doc_stride': 64}).doc_stride
    64
    """

    doc_stride: int | None = None
    max_question_length: int = DEFAULT_MAX_QUESTION_LENGTH

    def __post_init__(self) -> None:
        if self.doc_stride is not None and self.doc_stride < 1:
            raise BertforgeError(f"--doc-stride must be at least 1 piece, got {self.doc_stride}")
        if self.max_question_length < 1:
            raise BertforgeError(f"the question length must be at least 1 piece, got {self.max_question_length}")

    def step(self, room: int) -> int:
        """Pieces between window starts when ``room`` passage pieces fit in a row."""
        stride = self.doc_stride if self.doc_stride is not None else min(DEFAULT_DOC_STRIDE, max(1, room // 2))
        return max(1, min(stride, room))

    def to_dict(self) -> dict[str, Any]:
        return {"mode": MODE, "doc_stride": self.doc_stride, "max_question_length": self.max_question_length}

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> "QuestionWindows":
        values = values or {}
        if values.get("mode", MODE) != MODE:
            return cls()  # a setting of another task's reading; questions use their own defaults
        return cls(values.get("doc_stride"), int(values.get("max_question_length") or DEFAULT_MAX_QUESTION_LENGTH))


def window_starts(pieces: int, room: int, step: int) -> list[int]:
    """Where each window of ``room`` pieces starts, ``step`` apart, the last reaching the end.

    >>> window_starts(10, 4, 3), window_starts(3, 4, 3), window_starts(0, 4, 3)
    ([0, 3, 6], [0], [0])
    """
    starts = [0]
    while starts[-1] + room < pieces:
        starts.append(starts[-1] + step)
    return starts


def answer_pieces(offsets: np.ndarray, start: int, end: int) -> tuple[int, int] | None:
    """The first and last piece of the character span ``[start, end)`` among a passage's
    pieces' ``(start, end)`` offsets, or None when no piece overlaps it.

    >>> answer_pieces(np.array([[0, 3], [4, 8], [8, 9]]), 4, 9), answer_pieces(np.array([[0, 3]]), 5, 6)
    ((1, 2), None)
    """
    inside = np.flatnonzero((offsets[:, 1] > start) & (offsets[:, 0] < end))
    return (int(inside[0]), int(inside[-1])) if len(inside) else None


def encode_questions(tokenizer, questions: Sequence[str], contexts: Sequence[str], max_length: int,
                     windows: QuestionWindows, answers: Sequence[Sequence[tuple[str, int]]] | None = None,
                     where=None) -> Features:
    """Rows of ``(question, passage window)`` with each passage piece's character offsets
    (``char_offsets``), the example each row comes from (``owner``) and, with ``answers``
    (each question's references; the first is learned, ``[]`` for no answer), each row's
    ``labels``: the answer's ``(first, last)`` piece in the row, ``(0, 0)`` for ``[CLS]``.

    ``where(i)`` names example ``i`` in messages."""
    where = where or (lambda index: f"question {index}")
    question_pieces = tokenizer.pieces_with_offsets(list(questions))
    passage_pieces = tokenizer.pieces_with_offsets(list(contexts))
    cls_id, sep_id, pad_id = tokenizer.cls_id, tokenizer.sep_id, tokenizer.pad_id
    rows_ids, rows_segments, rows_offsets, owners, labels = [], [], [], [], []
    for index, ((question, _), (passage, offsets)) in enumerate(zip(question_pieces, passage_pieces)):
        question = question[:windows.max_question_length]
        room = max_length - len(question) - SPECIAL_TOKENS
        if room < 1:
            raise BertforgeError(f"{where(index)}: the question takes {len(question)} pieces, leaving no room for the "
                                 f"passage in {max_length}; pass a larger --max-seq-length")
        offsets = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
        span = None
        if answers is not None and answers[index]:
            text, start = answers[index][0]
            span = answer_pieces(offsets, start, start + len(text))
        head = [cls_id, *question, sep_id]
        for first in window_starts(len(passage), room, windows.step(room)):
            last = min(first + room, len(passage))
            rows_ids.append(np.array([*head, *passage[first:last], sep_id], dtype=np.int64))
            rows_segments.append(len(head))
            row_offsets = np.full((len(head) + last - first + 1, 2), -1, dtype=np.int64)
            row_offsets[len(head):len(head) + last - first] = offsets[first:last]
            rows_offsets.append(row_offsets)
            owners.append(index)
            if answers is not None:
                inside = span is not None and first <= span[0] and span[1] < last
                labels.append((span[0] - first + len(head), span[1] - first + len(head)) if inside else (0, 0))
    width = max(map(len, rows_ids), default=0)
    count = len(rows_ids)
    input_ids = np.full((count, width), pad_id, dtype=np.int64)
    input_mask = np.zeros((count, width), dtype=np.int64)
    segment_ids = np.zeros((count, width), dtype=np.int64)
    char_offsets = np.full((count, width, 2), -1, dtype=np.int64)
    for row, (ids, question_end, offsets) in enumerate(zip(rows_ids, rows_segments, rows_offsets)):
        input_ids[row, :len(ids)] = ids
        input_mask[row, :len(ids)] = 1
        segment_ids[row, question_end:len(ids)] = 1
        char_offsets[row, :len(ids)] = offsets
    return Features(input_ids, input_mask, segment_ids,
                    labels=np.array(labels, dtype=np.int64).reshape(-1, 2) if answers is not None else None,
                    owner=np.array(owners, dtype=np.int64), examples=len(questions), char_offsets=char_offsets)
