"""Examples to model features, with the names of Google's ``run_classifier.py``.

An :class:`InputExample` holds a text (and optionally a second text and a label).
:func:`convert_examples_to_features` turns a list of them into the four arrays a
BERT classifier eats, :class:`Features` ``(input_ids, input_mask, segment_ids,
labels)``, each row laid out as::

    [CLS] text [SEP] (text_b [SEP]) [PAD] ... [PAD]
    mask:     1 on real tokens, 0 on padding
    segments: 0 up to and including the first [SEP], 1 after it, 0 on padding

Texts longer than ``max_seq_length`` lose their end (pairs: the longer text
first). The whole batch is encoded in one parallel call of the tokenizer.

>>> from bertforge.text.tokenizer import Tokenizer
>>> tok = Tokenizer.train(["good film", "bad film", "good plot"] * 20,
...                       vocab_size=40, min_frequency=1)
>>> ids, mask, segs, labels = convert_examples_to_features(
...     tok, [InputExample("good film", label=1), InputExample("bad", label=0)],
...     max_seq_length=6)
>>> tok.convert_ids_to_tokens(ids[0].tolist())
['[CLS]', 'good', 'film', '[SEP]', '[PAD]', '[PAD]']
>>> mask.tolist(), labels.tolist()
([[1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 0, 0]], [1, 0])
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from bertforge.constants import NO_LABEL
from bertforge.errors import BertforgeError

if TYPE_CHECKING:  # annotations only: the functions take any tokenizer object
    from bertforge.text.tokenizer import Tokenizer

__all__ = ["InputExample", "Features", "NO_LABEL", "convert_single_example",
           "convert_examples_to_features"]


@dataclass(init=False)
class InputExample:
    """One text (or text pair) to classify, with its label if known.

    ``text_a`` is accepted as another name for ``text`` (Google's spelling), and
    ``guid`` is kept for error messages.

    >>> InputExample("is this spam?", label="ham")
    InputExample(text='is this spam?', label='ham', text_b=None, guid=None)
    >>> InputExample(text_a="first", text_b="second").text_a
    'first'
    """

    text: str
    label: Any = None
    text_b: str | None = None
    guid: Any = None

    def __init__(self, text: str | None = None, label: Any = None, text_b: str | None = None,
                 *, text_a: str | None = None, guid: Any = None):
        if text is not None and text_a is not None:
            raise BertforgeError("InputExample got both text and text_a; pass only one of them")
        self.text = text if text is not None else text_a
        self.label = label
        self.text_b = text_b
        self.guid = guid

    @property
    def text_a(self) -> str:
        return self.text


@dataclass(eq=False)
class Features:
    """Model inputs for a set of examples, one row per text, text pair or window.

    The one features type of the package: every task's encoding, the frozen-layer
    cache, prediction, embedding and export take it.

    - ``input_ids``, ``input_mask``, ``segment_ids``: int64 ``(rows, length)``.
    - ``labels``: the rows' targets, or None: ``(rows,)`` for one label per text
      (:data:`NO_LABEL` where an example has none), ``(rows, labels)`` for 0/1 label
      columns or ``(rows,)`` floats for regression; tasks that label tokens or spans
      give one row of targets per row of ids.
    - ``owner``: ``(rows,)``, the example each row comes from (the windows of a long
      text share one); None when row ``i`` is example ``i``.
    - ``word_index``: for rows of words (token classification), ``(rows, length)``: at
      the first piece of a word, that word's index in its example when this row is the
      window the word is read from; -1 everywhere else. None for rows of whole texts.
      With it, ``labels`` are per token, ``(rows, length)``.
    - ``char_offsets``: for rows of a passage (question answering), ``(rows, length, 2)``:
      each passage piece's ``(start, end)`` character offsets into its example's passage,
      ``-1`` on the question, the special tokens and padding. None elsewhere.

    Iterating gives the seed's four arrays, so ``ids, mask, segments, labels =
    convert_examples_to_features(...)`` unpacks as it always did, and ``features[:3]``
    is the model's three inputs.

    >>> import numpy as np
    >>> ids = np.array([[2, 5, 3], [2, 6, 3], [2, 7, 3]])
    >>> rows = Features(ids, np.ones_like(ids), np.zeros_like(ids), owner=np.array([0, 0, 1]))
    >>> rows.num_rows, rows.num_examples, len(rows[:3]), rows.row_owner.tolist()
    (3, 2, 3, [0, 0, 1])
    """

    input_ids: np.ndarray
    input_mask: np.ndarray
    segment_ids: np.ndarray
    labels: np.ndarray | None = None
    owner: np.ndarray | None = None
    examples: int | None = None  # how many examples the rows come from; None: one per row
    word_index: np.ndarray | None = None
    char_offsets: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.examples is None:
            self.examples = len(self.input_ids) if self.owner is None else (
                int(self.owner.max()) + 1 if len(self.owner) else 0)

    @property
    def num_rows(self) -> int:
        return len(self.input_ids)

    @property
    def num_examples(self) -> int:
        return self.examples

    @property
    def row_owner(self) -> np.ndarray:
        """The example of every row (``arange`` when each example is one row)."""
        return np.arange(self.num_rows) if self.owner is None else self.owner

    @property
    def token_labels(self) -> bool:
        """Whether ``labels`` hold one target per token (rows of words) rather than per row."""
        return self.word_index is not None

    def __iter__(self):
        return iter((self.input_ids, self.input_mask, self.segment_ids, self.labels))

    def __getitem__(self, key):
        return (self.input_ids, self.input_mask, self.segment_ids, self.labels)[key]

    def with_labels(self, labels: np.ndarray | None) -> "Features":
        """The same rows with other targets."""
        return dataclasses.replace(self, labels=labels)


def _check_length(tokenizer: Tokenizer, max_seq_length: Any, pairs: bool) -> int:
    least = 3 if pairs else 2
    if isinstance(max_seq_length, bool) or not isinstance(max_seq_length, numbers.Integral):
        raise BertforgeError(
            f"max_seq_length={max_seq_length!r} is not an int; pass e.g. 128 or 256")
    if max_seq_length < least:
        raise BertforgeError(
            f"max_seq_length={max_seq_length} is below {least}, the room [CLS] and [SEP] need"
            f"{' for pairs' if pairs else ''}; pass a larger max_seq_length")
    if max_seq_length > tokenizer.model_max_length:
        raise BertforgeError(
            f"max_seq_length={max_seq_length} is above the tokenizer's model_max_length "
            f"({tokenizer.model_max_length}), the most positions the model has; "
            f"pass max_seq_length <= {tokenizer.model_max_length}")
    return int(max_seq_length)


def _where(index: int, example: InputExample) -> str:
    return f"example {index}" + (f" (guid {example.guid!r})" if example.guid is not None else "")


def _label_id(index: int, example: InputExample, label_map: Mapping | None) -> int:
    label = example.label
    if label is None:
        return NO_LABEL
    if label_map is not None:
        try:
            return int(label_map[label])
        except KeyError:
            known = ", ".join(repr(k) for k in list(label_map)[:10])
            raise BertforgeError(
                f"{_where(index, example)}: label {label!r} is not in label_map "
                f"({known}); add it to label_map or fix the label") from None
        except TypeError:
            raise BertforgeError(
                f"{_where(index, example)}: label {label!r} cannot be looked up in label_map; "
                "use hashable labels") from None
    if isinstance(label, numbers.Integral) and not isinstance(label, bool):
        return int(label)
    raise BertforgeError(
        f"{_where(index, example)}: label {label!r} is not an int; pass "
        "label_map={label: id, ...} to turn labels into ids")


def _as_example(index: int, item: Any) -> InputExample:
    if isinstance(item, InputExample):
        return item
    if isinstance(item, str):
        return InputExample(item)
    raise BertforgeError(
        f"example {index} is a {type(item).__name__}; pass InputExample objects or strings")


def _check_example_text(index: int, example: InputExample) -> None:
    for field in ("text", "text_b"):
        value = getattr(example, field)
        if field == "text_b" and value is None:
            continue
        if not isinstance(value, str) or not value.strip():
            shown = repr(value) if value is None or isinstance(value, str) else type(value).__name__
            raise BertforgeError(
                f"{_where(index, example)}: {field} is empty or not text ({shown}); "
                "remove that example or fill in its text")


def convert_single_example(
    tokenizer: Tokenizer,
    example: InputExample,
    max_seq_length: int = 256,
    label_map: Mapping | None = None,
) -> tuple[list[int], list[int], list[int], Any]:
    """Encode one example as ``(input_ids, input_mask, segment_ids, label)`` lists.

    ``label`` is ``label_map[example.label]`` when a map is given, else the
    example's label unchanged (``None`` stays ``None``). Prefer
    :func:`convert_examples_to_features` for more than a handful of examples.

    >>> from bertforge.text.tokenizer import Tokenizer
    >>> tok = Tokenizer.train(["a b c d"] * 20, vocab_size=30, min_frequency=1)
    >>> ids, mask, segs, label = convert_single_example(
    ...     tok, InputExample("a b", text_b="c", label=7), max_seq_length=7)
    >>> tok.convert_ids_to_tokens(ids)
    ['[CLS]', 'a', 'b', '[SEP]', 'c', '[SEP]', '[PAD]']
    >>> mask, segs, label
    ([1, 1, 1, 1, 1, 1, 0], [0, 0, 0, 0, 1, 1, 0], 7)
    """
    example = _as_example(0, example)
    _check_example_text(0, example)
    length = _check_length(tokenizer, max_seq_length, example.text_b is not None)
    ids, mask, segs = tokenizer.encode(example.text, example.text_b, max_length=length,
                                       padding="max_length")
    label = example.label if label_map is None else _label_id(0, example, label_map)
    return ids, mask, segs, label


def convert_examples_to_features(
    tokenizer: Tokenizer,
    examples: Sequence[InputExample | str],
    max_seq_length: int = 256,
    label_map: Mapping | None = None,
) -> Features:
    """Encode examples into padded int64 arrays, in one parallel tokenizer call.

    Labels: with ``label_map`` each label becomes ``label_map[label]``; without
    one, labels must already be ints. Unlabeled examples (``label=None``) get
    :data:`NO_LABEL` (-1). Plain strings are accepted as unlabeled examples.
    Rows equal :func:`convert_single_example`'s lists, stacked.

    >>> from bertforge.text.tokenizer import Tokenizer
    >>> tok = Tokenizer.train(["spam offer", "ham lunch"] * 20, vocab_size=30, min_frequency=1)
    >>> feats = convert_examples_to_features(
    ...     tok, [InputExample("offer", label="spam"), "lunch"], max_seq_length=4,
    ...     label_map={"ham": 0, "spam": 1})
    >>> feats.input_ids.shape, feats.labels.tolist()
    ((2, 4), [1, -1])
    """
    if isinstance(examples, (str, InputExample)):
        raise BertforgeError(
            "examples is a single example; pass a list of InputExample objects or strings")
    examples = examples if isinstance(examples, list) else list(examples)
    # Comprehensions and one-pass checks keep Python's share of the work small next
    # to the parallel tokenizer call; the slow loops below run only to name a bad row.
    try:
        texts = [example.text for example in examples]
    except AttributeError:
        examples = [_as_example(i, item) for i, item in enumerate(examples)]
        texts = [example.text for example in examples]
    pairs = [example.text_b for example in examples]
    has_pairs = any(pair is not None for pair in pairs)
    try:
        fine = all(map(str.strip, texts)) and (
            not has_pairs or all(pair is None or pair.strip() for pair in pairs))
    except (TypeError, AttributeError):
        fine = False
    if not fine:
        for index, example in enumerate(examples):
            _check_example_text(index, example)
    labels = _label_ids(examples, label_map)
    length = _check_length(tokenizer, max_seq_length, has_pairs)
    batch = tokenizer.encode_batch(texts, pairs if has_pairs else None,
                                   max_length=length, padding="max_length")
    return Features(batch["input_ids"], batch["input_mask"], batch["segment_ids"], labels)


def _label_ids(examples: list[InputExample], label_map: Mapping | None) -> np.ndarray:
    labels = [example.label for example in examples]
    try:
        if label_map is not None:
            ids = [NO_LABEL if label is None else label_map[label] for label in labels]
        else:
            ids = [NO_LABEL if label is None else label for label in labels]
        array = np.asarray(ids)
        if array.shape == (len(labels),) and (array.dtype.kind in "iu" or not len(labels)):
            return array.astype(np.int64)
    except (KeyError, TypeError, ValueError):
        pass
    # Something is off: find the first bad label and say which example holds it.
    return np.asarray([_label_id(i, example, label_map) for i, example in enumerate(examples)],
                      dtype=np.int64)
