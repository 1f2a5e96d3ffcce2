"""Classification's metrics by kind of labels: the task names, the best-checkpoint metric, the dispatch.

A classifier's labels are of one kind (:data:`~bertforge.data.labeled.labels.TASKS`:
single-label, multi-label or regression), also known by the ``problem_type``
names of ``transformers``. This module maps a kind to its metric functions in
:mod:`bertforge.evaluation.metrics` and to the metric that picks the best
checkpoint.

>>> import numpy as np
>>> logits = np.array([[2.0, 0.1], [0.3, 1.5], [1.0, 0.2]])
>>> metrics = compute_metrics("classification", [0, 1, 1], logits, labels=["ham", "spam"])
>>> metrics["task"], metrics["accuracy"], metrics["confusion_matrix"]
('classification', 0.6666666666666666, [[1, 0], [1, 1]])
"""

from __future__ import annotations

from typing import Any, Sequence

from bertforge.data.labeled.labels import PROBLEM_TYPES, TASKS
from bertforge.errors import BertforgeError
from bertforge.evaluation.metrics import (
    classification_metrics_from_logits,
    multilabel_metrics_from_logits,
    regression_metrics,
)

# The model config speaks Hugging Face's `problem_type`; accept those names too.
_TASK_ALIASES = {problem: task for task, problem in PROBLEM_TYPES.items()} | {
    "multilabel": "multi_label",
    "multi-label": "multi_label",
}

_PRIMARY_METRICS = {
    "classification": ("accuracy", True),
    "multi_label": ("micro_f1", True),
    "regression": ("mse", False),
}


def normalize_task(task: str) -> str:
    """The canonical task name, accepting Hugging Face's ``problem_type`` names.

    >>> normalize_task("multi_label_classification")
    'multi_label'
    """
    name = _TASK_ALIASES.get(task, task)
    if name not in TASKS:
        raise BertforgeError(f"unknown task {task!r}: use one of {', '.join(TASKS)}")
    return name


def primary_metric(task: str) -> tuple[str, bool]:
    """The metric that picks the best checkpoint: ``(name, higher_is_better)``.

    >>> primary_metric("classification")
    ('accuracy', True)
    >>> primary_metric("regression")
    ('mse', False)
    """
    return _PRIMARY_METRICS[normalize_task(task)]


def compute_metrics(task: str, y_true, scores, labels: Sequence | None = None,
                    threshold: float = 0.5) -> dict[str, Any]:
    """Metrics from raw model outputs, with a ``"task"`` key first.

    ``classification``: ``scores`` are ``(n, k)`` logits, the prediction is the
    argmax. ``multi_label``: ``(n, k)`` logits, a label is on where
    ``sigmoid(logit) > threshold``. ``regression``: ``(n,)`` or ``(n, 1)``
    predictions; ``labels`` is ignored. Without ``labels``, classes are named
    ``"0"``, ``"1"``, ...

    >>> compute_metrics("multi_label", [[1, 0], [0, 1]], [[3.0, -2.0], [0.5, 0.2]])["subset_accuracy"]
    0.5
    >>> compute_metrics("regression", [1.0, 2.0], [[1.5], [2.5]])["mae"]
    0.5
    """
    task = normalize_task(task)
    if task == "regression":
        return {"task": task, **regression_metrics(y_true, scores)}
    if task == "classification":
        return {"task": task, **classification_metrics_from_logits(y_true, scores, labels)}
    return {"task": task, **multilabel_metrics_from_logits(y_true, scores, labels, threshold)}
