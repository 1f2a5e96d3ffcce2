"""Texts longer than the model's window: truncate, keep head and tail, or slide a window.

One setting, :class:`LongText`, is shared by fine-tuning, evaluation, prediction
and embeddings. :func:`encode_windows` turns texts into model rows, several per
text for ``sliding-window``, and :func:`combine` folds the rows' outputs back into
one per text (mean or max of logits; embeddings are averaged).

``head-tail`` keeps the first quarter and the last three quarters of the window,
the split Sun et al. (2019, "How to Fine-Tune BERT for Text Classification?")
found best for long reviews: openings and conclusions carry the most signal.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from bertforge.errors import BertforgeError
from bertforge.text.features import Features
from bertforge.text.tokenizer import Tokenizer

MODES = ("truncate", "head-tail", "sliding-window")
AGGREGATIONS = ("mean", "max")


@dataclass(frozen=True)
class LongText:
    """How a text longer than ``max_length`` tokens is read.

    ``mode``: ``"truncate"`` (the first tokens), ``"head-tail"`` (a quarter from the
    start, the rest from the end) or ``"sliding-window"`` (windows every ``stride``
    tokens, default half a window, each run by the model). ``aggregate``: how the
    windows' logits combine, ``"mean"`` or ``"max"``.

    >>> LongText("sliding-window", stride=64)
    LongText(mode='sliding-window', stride=64, aggregate='mean')
    >>> LongText("overlap")
    Traceback (most recent call last):
    ...
    bertforge.errors.BertforgeError: long-text mode 'overlap' is not known; use truncate, head-tail or sliding-window
    """

    mode: str = "truncate"
    stride: int | None = None
    aggregate: str = "mean"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise BertforgeError(f"long-text mode {self.mode!r} is not known; use {', '.join(MODES[:-1])} or {MODES[-1]}")
        if self.aggregate not in AGGREGATIONS:
            raise BertforgeError(f"window aggregation {self.aggregate!r} is not known; use mean or max")
        if self.aggregate != "mean" and self.mode != "sliding-window":
            raise BertforgeError(f"--window-aggregate applies to --long-text sliding-window, not {self.mode}")
        if self.stride is not None:
            if self.mode != "sliding-window":
                raise BertforgeError(f"--stride applies to --long-text sliding-window, not {self.mode}")
            if isinstance(self.stride, bool) or not isinstance(self.stride, (int, np.integer)) or self.stride < 1:
                raise BertforgeError(f"stride {self.stride!r} is not a positive whole number of tokens; pass e.g. 128")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> "LongText":
        values = values or {}
        return cls(values.get("mode", "truncate"), values.get("stride"), values.get("aggregate", "mean"))


def encode_windows(tokenizer: Tokenizer, texts: Sequence[str], text_pairs: Sequence[str] | None, max_length: int,
                   long_text: LongText = LongText()) -> Features:
    """Tokenize ``texts`` into rows of at most ``max_length`` tokens, padded to the longest row.

    >>> tok = Tokenizer.train(["one two three four five six seven eight nine ten"] * 20, vocab_size=60)
    >>> text = "one two three four five six seven eight nine ten"
    >>> rows = encode_windows(tok, [text, "two"], None, max_length=6, long_text=LongText("sliding-window", stride=2))
    >>> [tok.decode(row) for row in rows.input_ids], rows.owner.tolist()
    (['one two three four', 'three four five six', 'five six seven eight', 'seven eight nine ten', 'two'], [0, 0, 0, 0, 1])
    >>> tok.decode(encode_windows(tok, [text], None, 6, LongText("head-tail")).input_ids[0])
    'one eight nine ten'
    """
    if long_text.mode == "truncate":
        arrays = tokenizer.encode_batch(list(texts), None if text_pairs is None else list(text_pairs),
                                        max_length=max_length, padding="longest")
        return Features(arrays["input_ids"], arrays["input_mask"], arrays["segment_ids"])
    if text_pairs is not None:
        raise BertforgeError(f"--long-text {long_text.mode} reads single texts; use --long-text truncate for text pairs")
    budget = max_length - 2  # [CLS] and [SEP]
    if budget < 1:
        raise BertforgeError(f"max length {max_length} leaves no room for text; pass at least 3")
    stride = long_text.stride or max(1, budget // 2)
    if stride > budget:
        raise BertforgeError(f"stride {stride} is longer than the window of {budget} tokens, so text would be "
                             f"skipped; pass --stride <= {budget}")
    rows: list[list[int]] = []
    owner: list[int] = []
    for index, pieces in enumerate(tokenizer.token_ids(list(texts))):
        for window in _cut(pieces, budget, stride, long_text.mode):
            rows.append([tokenizer.cls_id, *window, tokenizer.sep_id])
            owner.append(index)
    width = max((len(row) for row in rows), default=2)
    input_ids = np.full((len(rows), width), tokenizer.pad_id, dtype=np.int64)
    input_mask = np.zeros((len(rows), width), dtype=np.int64)
    for r, row in enumerate(rows):
        input_ids[r, :len(row)] = row
        input_mask[r, :len(row)] = 1
    return Features(input_ids, input_mask, np.zeros_like(input_ids), owner=np.asarray(owner, dtype=np.int64),
                    examples=len(texts))


def _cut(pieces: list[int], budget: int, stride: int, mode: str) -> list[list[int]]:
    if len(pieces) <= budget:
        return [pieces]
    if mode == "head-tail":
        head = budget // 4
        return [pieces[:head] + pieces[len(pieces) - (budget - head):]]
    starts = list(range(0, len(pieces) - budget + 1, stride))
    if starts[-1] + budget < len(pieces):  # the last window ends on the last token
        starts.append(len(pieces) - budget)
    return [pieces[start:start + budget] for start in starts]


def combine(outputs: np.ndarray, rows: Features, aggregate: str = "mean") -> np.ndarray:
    """One output per text from the outputs of its rows (mean or max over rows).

    >>> rows = Features(*(np.zeros((3, 2)),) * 3, owner=np.array([0, 0, 1]))
    >>> combine(np.array([[1.0, 4.0], [3.0, 0.0], [5.0, 5.0]]), rows).tolist()
    [[2.0, 2.0], [5.0, 5.0]]
    >>> combine(np.array([[1.0, 4.0], [3.0, 0.0], [5.0, 5.0]]), rows, "max").tolist()
    [[3.0, 4.0], [5.0, 5.0]]
    """
    if rows.owner is None or (rows.num_rows == rows.num_examples
                              and np.array_equal(rows.owner, np.arange(rows.num_examples))):
        return outputs  # one row per text: nothing to fold
    owner, texts = rows.owner, rows.num_examples
    shape = (texts, *outputs.shape[1:])
    if aggregate == "max":
        folded = np.full(shape, -np.inf, dtype=outputs.dtype)
        np.maximum.at(folded, owner, outputs)
        return folded
    folded = np.zeros(shape, dtype=outputs.dtype)
    np.add.at(folded, owner, outputs)
    counts = np.bincount(owner, minlength=texts).reshape(-1, *([1] * (outputs.ndim - 1)))
    return (folded / np.maximum(counts, 1)).astype(outputs.dtype, copy=False)


__all__ = ["AGGREGATIONS", "MODES", "LongText", "combine", "encode_windows"]
