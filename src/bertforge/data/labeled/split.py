"""Hold out part of the labeled rows, keeping every class on both sides.

>>> train, holdout = stratified_split(["a"] * 4 + ["b"] * 2, fraction=0.5)
>>> len(train), len(holdout)
(3, 3)
"""

from __future__ import annotations

import numpy as np

from bertforge.data.labeled.labels import detect_task, sorted_classes
from bertforge.data.labeled.read import LabeledData
from bertforge.errors import BertforgeError


def _holdout_size(count: int, fraction: float) -> int:
    """round(count * fraction), but leaving at least one on each side when there are two."""
    if count < 2:
        return 0
    return min(max(1, round(count * fraction)), count - 1)


def stratified_split(labels, fraction: float = 0.1, seed: int = 0,
                     task: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(train_indices, holdout_indices)``, sorted int64 row positions.

    Classification splits each class apart (sorted class order, so a seed gives
    the same split every run): a class with two examples or more keeps at least
    one on each side, a class with one stays in train. Regression and
    multi-label split at random. ``labels`` may be a :class:`LabeledData`.

    >>> labels = ["a"] * 8 + ["b"] * 2
    >>> train, holdout = stratified_split(labels, fraction=0.25, seed=0)
    >>> len(train), len(holdout), sorted(labels[i] for i in holdout)
    (7, 3, ['a', 'a', 'b'])
    """
    if not 0 < fraction < 1:
        raise BertforgeError(f"the holdout fraction is {fraction}; pass a number between 0 and 1, like 0.1")
    values = labels.labels if isinstance(labels, LabeledData) else labels
    if values is None:
        raise BertforgeError("there are no labels to split; read the file with its label column")
    task = task or detect_task(labels)
    rng = np.random.default_rng(seed)
    count = len(values)
    if task != "classification":
        order = rng.permutation(count)
        size = _holdout_size(count, fraction)
        return np.sort(order[size:]).astype(np.int64), np.sort(order[:size]).astype(np.int64)
    by_class: dict[str, list[int]] = {}
    for row, label in enumerate(values.tolist() if isinstance(values, np.ndarray) else values):
        by_class.setdefault(str(label), []).append(row)
    train, holdout = [], []
    for label in sorted_classes(by_class):
        rows = rng.permutation(by_class[label])
        size = _holdout_size(len(rows), fraction)
        holdout.extend(rows[:size].tolist())
        train.extend(rows[size:].tolist())
    return np.array(sorted(train), dtype=np.int64), np.array(sorted(holdout), dtype=np.int64)
