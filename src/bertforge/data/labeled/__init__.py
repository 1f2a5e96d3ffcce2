"""Labeled data for fine-tuning: read it, tell the kind of labels, encode them, split them.

Files (CSV, TSV, JSON Lines) or rows in memory (a DataFrame, a list of dicts or
tuples) become :class:`LabeledData`; a :class:`LabelEncoder` fitted on the
training labels turns labels into training targets. The pieces live in
``formats`` (encodings, delimiters, JSON Lines), ``columns`` (which column is
what), ``in_memory`` (rows given in memory), ``read``, ``labels`` and ``split``.

>>> data = read_labeled([("great film", "pos"), ("dull", "neg"), ("fun", "pos")])
>>> LabelEncoder.fit(data).encode(data).targets.tolist()
[1, 0, 1]
"""

from bertforge.data.labeled.labels import (
    PROBLEM_TYPES,
    TASKS,
    EncodedLabels,
    LabelEncoder,
    detect_task,
    validate_training_labels,
)
from bertforge.data.labeled.read import LabeledData, read_labeled, read_texts
from bertforge.data.labeled.split import stratified_split

__all__ = [
    "LabeledData",
    "read_labeled",
    "read_texts",
    "detect_task",
    "LabelEncoder",
    "EncodedLabels",
    "validate_training_labels",
    "stratified_split",
    "TASKS",
    "PROBLEM_TYPES",
]
