"""What callers hand the tokenizer to encode, checked: texts, lists of texts, lengths.

Each bad item fails with one line naming it (and its row) and the fix; a good list
passes in one C-level sweep, so the checks cost little on large batches.

>>> check_texts(["a cat", "a dog"], "texts")
>>> check_texts(["a cat", " "], "texts")
Traceback (most recent call last):
...
bertforge.errors.BertforgeError: texts[1] is empty (' '); remove that row or fill in its text
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bertforge.errors import BertforgeError


def as_list(items: Any, what: str) -> list:
    """``items`` as a list; a single string is an error (a list of texts was meant).

    >>> as_list(("a", "b"), "texts")
    ['a', 'b']
    """
    if isinstance(items, (str, bytes)):
        raise BertforgeError(
            f"{what} is a single {type(items).__name__}; pass a list of texts "
            "(or use encode() for one text)"
        )
    try:
        return items if isinstance(items, list) else list(items)
    except TypeError:
        raise BertforgeError(f"{what} is a {type(items).__name__}; pass a list of texts") from None


def check_text(text: Any, what: str) -> None:
    """A non-empty ``str``, or an error naming ``what``.

    >>> check_text(3, "text")
    Traceback (most recent call last):
    ...
    bertforge.errors.BertforgeError: text is int, not str; pass a non-empty text
    """
    if not isinstance(text, str):
        raise BertforgeError(f"{what} is {type(text).__name__}, not str; pass a non-empty text")
    if not text.strip():
        raise BertforgeError(f"{what} is empty ({text!r}); pass a text with words in it")


def check_texts(texts: list, what: str, allow_none: bool = False) -> None:
    """Every item a non-empty ``str`` (or None, with ``allow_none``), else an error naming its row."""
    # Fast path: one C-level pass; it raises TypeError on the first non-str item.
    try:
        if allow_none:
            fine = all(t is None or t.strip() for t in texts)
        else:
            fine = all(map(str.strip, texts))
    except (TypeError, AttributeError):
        fine = False
    if fine:
        return
    for index, text in enumerate(texts):
        if text is None and allow_none:
            continue
        if not isinstance(text, str):
            raise BertforgeError(
                f"{what}[{index}] is {type(text).__name__}, not str; "
                f"pass one non-empty text per item (row {index} of {len(texts)})"
            )
        if not text.strip():
            raise BertforgeError(
                f"{what}[{index}] is empty ({text!r}); remove that row or fill in its text"
            )


def checked_max_length(max_length: Any, pairs: bool, model_max_length: int) -> int:
    """The length to cut encodings at: ``max_length``, or ``model_max_length`` when None.

    >>> checked_max_length(None, False, 512), checked_max_length(128, True, 512)
    (512, 128)
    >>> checked_max_length(2, True, 512)
    Traceback (most recent call last):
    ...
    bertforge.errors.BertforgeError: max_length=2 is too small; pass an int of at least 3 (room for [CLS] and [SEP] twice)
    """
    if max_length is None:
        return model_max_length
    least = 3 if pairs else 2
    if isinstance(max_length, bool) or not isinstance(max_length, (int, np.integer)) \
            or max_length < least:
        raise BertforgeError(
            f"max_length={max_length!r} is too small; pass an int of at least {least} "
            f"(room for [CLS] and [SEP]{' twice' if pairs else ''})"
        )
    if max_length > model_max_length:
        raise BertforgeError(
            f"max_length={max_length} is above this tokenizer's model_max_length "
            f"({model_max_length}); pass max_length <= {model_max_length}"
        )
    return int(max_length)
