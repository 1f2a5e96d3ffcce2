"""Metrics of a classifier's predictions: single-label, multi-label and regression.

Everything here works on numpy arrays of labels and predictions (or raw logits),
so the training loop, ``bertforge evaluate`` and the layer sweep share one
definition of "accuracy". The functions return plain Python numbers (JSON-ready)
and check their input, failing in one line that says what to pass instead.

scikit-learn and scipy are imported inside the functions that need them, and
neither torch nor matplotlib is imported at all: ``import
bertforge.evaluation.metrics`` stays cheap.

>>> import numpy as np
>>> logits = np.array([[2.0, 0.1], [0.3, 1.5], [1.0, 0.2]])
>>> metrics = classification_metrics_from_logits([0, 1, 1], logits, labels=["ham", "spam"])
>>> metrics["accuracy"], metrics["confusion_matrix"]
(0.6666666666666666, [[1, 0], [1, 1]])
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from bertforge.errors import BertforgeError


# --------------------------------------------------------------------------- input checks

def _check_labels(labels: Sequence | None, num_classes: int) -> list[str]:
    if labels is None:
        return [str(i) for i in range(num_classes)]
    names = [str(label) for label in labels]
    if len(names) != num_classes:
        raise BertforgeError(f"got {len(names)} labels for {num_classes} classes: pass one label per model output")
    if len(set(names)) != len(names):
        duplicates = sorted({name for name in names if names.count(name) > 1})
        raise BertforgeError(f"labels are not unique ({', '.join(duplicates)}): each class needs its own name")
    return names


def _check_not_empty(name: str, array: np.ndarray) -> None:
    if array.shape[0] == 0:
        raise BertforgeError(f"{name} is empty: metrics need at least one example")


def _check_same_length(first: np.ndarray, second: np.ndarray, names=("y_true", "y_pred")) -> None:
    if first.shape[0] != second.shape[0]:
        raise BertforgeError(f"{names[0]} has {first.shape[0]} examples but {names[1]} has {second.shape[0]}: "
                             "pass predictions for exactly the evaluated examples")


def _whole_numbers(array: np.ndarray) -> bool:
    # Labels often arrive as floats (0.0, 1.0) from a CSV reader; whole numbers are fine.
    return bool(np.issubdtype(array.dtype, np.floating) and np.all(np.isfinite(array))
                and np.all(array == np.round(array)))


def _as_class_ids(name: str, values, num_classes: int) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise BertforgeError(f"{name} must be a 1-D array of class ids, got shape {array.shape}")
    _check_not_empty(name, array)
    if not np.issubdtype(array.dtype, np.integer) and not _whole_numbers(array):
        raise BertforgeError(f"{name} must hold integer class ids, got dtype {array.dtype}: encode labels first")
    array = array.astype(np.int64)
    bad = array[(array < 0) | (array >= num_classes)]
    if bad.size:
        raise BertforgeError(f"{name} holds class id {int(bad[0])} but only {num_classes} labels were given "
                             f"(ids 0..{num_classes - 1}): pass every label the model was trained on")
    return array


def _as_indicator(name: str, values) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 2:
        raise BertforgeError(f"{name} must be a 2-D (examples, labels) 0/1 array, got shape {array.shape}")
    _check_not_empty(name, array)
    if not np.isin(array, (0, 1)).all():
        raise BertforgeError(f"{name} must hold only 0 and 1 (one column per label)")
    return array.astype(np.int64)


def _as_real_vector(name: str, values) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise BertforgeError(f"{name} must have shape (n,) or (n, 1) for regression, got {array.shape}")
    _check_not_empty(name, array)
    return array


def _check_finite(name: str, array: np.ndarray) -> None:
    if not np.all(np.isfinite(array)):
        raise BertforgeError(f"{name} contains NaN or infinity: training diverged; "
                             "lower the learning rate or train in fp32")


# --------------------------------------------------------------------------- metrics

def _per_class(labels: list[str], precision, recall, f1, support) -> dict[str, dict[str, float | int]]:
    return {
        label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for label, p, r, f, s in zip(labels, precision, recall, f1, support)
    }


def _macro_f1(f1: np.ndarray, active: np.ndarray) -> float:
    # Average over the classes seen in y_true or y_pred only (scikit-learn's default
    # label set): a class that no example has and no prediction names says nothing
    # about the model, and counting it as F1 = 0 would punish a small test set.
    return float(np.mean(f1[active])) if active.any() else 0.0


def classification_metrics(y_true, y_pred, labels: Sequence) -> dict[str, Any]:
    """Single-label metrics from class ids, with every class of ``labels`` reported.

    ``per_class`` and the confusion matrix (rows true, columns predicted) follow the
    order of ``labels`` and include classes absent from ``y_true``; ``macro_f1``
    averages over the classes that occur in ``y_true`` or ``y_pred``.

    >>> m = classification_metrics([0, 0, 1, 2], [0, 1, 1, 2], labels=["a", "b", "c"])
    >>> m["accuracy"], round(m["macro_f1"], 4), m["confusion_matrix"]
    (0.75, 0.7778, [[1, 1, 0], [0, 1, 0], [0, 0, 1]])
    >>> m["per_class"]["b"]
    {'precision': 0.5, 'recall': 1.0, 'f1': 0.6666666666666666, 'support': 1}
    """
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    if labels is None or len(labels) == 0:
        raise BertforgeError("classification metrics need the list of labels, in class-id order")
    names = _check_labels(labels, len(labels))
    y_true = _as_class_ids("y_true", y_true, len(names))
    y_pred = _as_class_ids("y_pred", y_pred, len(names))
    _check_same_length(y_true, y_pred)

    ids = list(range(len(names)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=ids, average=None, zero_division=0)
    active = np.isin(ids, y_true) | np.isin(ids, y_pred)
    return {
        "num_examples": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": _macro_f1(f1, active),
        "micro_f1": float(f1_score(y_true, y_pred, labels=ids, average="micro", zero_division=0)),
        "weighted_f1": float(f1_score(y_true, y_pred, labels=ids, average="weighted", zero_division=0)),
        "per_class": _per_class(names, precision, recall, f1, support),
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=ids).tolist(),
    }


def multilabel_metrics(y_true, y_pred, labels: Sequence | None = None) -> dict[str, Any]:
    """Multi-label metrics from ``(n, k)`` 0/1 arrays (one column per label).

    ``subset_accuracy`` counts rows whose labels all match; ``hamming_loss`` is the
    fraction of wrong cells; ``macro_f1`` averages over labels that occur in
    ``y_true`` or ``y_pred``.

    >>> m = multilabel_metrics([[1, 0], [1, 1]], [[1, 0], [1, 0]], labels=["x", "y"])
    >>> m["subset_accuracy"], m["hamming_loss"], round(m["micro_f1"], 4)
    (0.5, 0.25, 0.8)
    """
    from sklearn.metrics import accuracy_score, f1_score, hamming_loss, precision_recall_fscore_support

    y_true = _as_indicator("y_true", y_true)
    y_pred = _as_indicator("y_pred", y_pred)
    _check_same_length(y_true, y_pred)
    if y_true.shape[1] != y_pred.shape[1]:
        raise BertforgeError(f"y_true has {y_true.shape[1]} label columns but y_pred has {y_pred.shape[1]}")
    names = _check_labels(labels, y_true.shape[1])

    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, average=None, zero_division=0)
    active = (y_true.sum(axis=0) > 0) | (y_pred.sum(axis=0) > 0)
    return {
        "num_examples": int(len(y_true)),
        "micro_f1": float(f1_score(y_true, y_pred, average="micro", zero_division=0)),
        "macro_f1": _macro_f1(f1, active),
        "subset_accuracy": float(accuracy_score(y_true, y_pred)),
        "hamming_loss": float(hamming_loss(y_true, y_pred)),
        "per_class": _per_class(names, precision, recall, f1, support),
    }


def _correlation(kind: str, a: np.ndarray, b: np.ndarray) -> float | None:
    # A correlation with a constant series is undefined (scipy warns and returns nan):
    # report None so metrics.json holds null rather than an invalid NaN.
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    from scipy import stats

    statistic = (stats.pearsonr if kind == "pearson" else stats.spearmanr)(a, b)[0]
    return float(statistic) if math.isfinite(statistic) else None


def regression_metrics(y_true, y_pred) -> dict[str, Any]:
    """Error and correlation metrics for real-valued predictions.

    ``pearson``, ``spearman`` and ``r2`` are ``None`` where undefined (a constant
    series, or a single example).

    >>> m = regression_metrics([1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 4.0])
    >>> m["mse"], m["mae"], round(m["pearson"], 4), round(m["r2"], 4)
    (0.5, 0.5, 0.8, 0.6)
    >>> regression_metrics([1.0, 2.0], [3.0, 3.0])["pearson"] is None
    True
    """
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    y_true = _as_real_vector("y_true", y_true)
    y_pred = _as_real_vector("y_pred", y_pred)
    _check_same_length(y_true, y_pred)
    _check_finite("y_true", y_true)
    _check_finite("y_pred", y_pred)

    mse = float(mean_squared_error(y_true, y_pred))
    # R^2 divides by the variance of y_true; scikit-learn would quietly report 0 or 1.
    r2 = float(r2_score(y_true, y_pred)) if len(y_true) > 1 and np.ptp(y_true) > 0 else None
    return {
        "num_examples": int(len(y_true)),
        "mse": mse,
        "rmse": math.sqrt(mse),
        "mae": float(mean_absolute_error(y_true, y_pred)),
        "pearson": _correlation("pearson", y_true, y_pred),
        "spearman": _correlation("spearman", y_true, y_pred),
        "r2": r2,
    }


# --------------------------------------------------------------------------- from logits

def _sigmoid(logits: np.ndarray) -> np.ndarray:
    from scipy.special import expit  # stable for large |logits|

    return expit(logits)


def _logit_matrix(kind: str, scores, labels: Sequence | None) -> tuple[np.ndarray, list[str]]:
    """``(n, k)`` logits as float64, checked, with one name per column."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2:
        raise BertforgeError(f"{kind} scores must be (examples, labels) logits, got shape {scores.shape}")
    _check_not_empty("scores", scores)
    _check_finite("scores", scores)
    return scores, _check_labels(labels, scores.shape[1])


def classification_metrics_from_logits(y_true, scores, labels: Sequence | None = None) -> dict[str, Any]:
    """:func:`classification_metrics` of ``(n, k)`` logits, the prediction being the argmax.

    Without ``labels``, classes are named ``"0"``, ``"1"``, ...

    >>> classification_metrics_from_logits([1, 0], [[0.2, 0.9], [0.1, 0.4]])["accuracy"]
    0.5
    """
    scores, names = _logit_matrix("classification", scores, labels)
    return classification_metrics(y_true, scores.argmax(axis=1), names)


def multilabel_metrics_from_logits(y_true, scores, labels: Sequence | None = None,
                                   threshold: float = 0.5) -> dict[str, Any]:
    """:func:`multilabel_metrics` of ``(n, k)`` logits: a label is on where ``sigmoid(logit) > threshold``.

    >>> multilabel_metrics_from_logits([[1, 0], [0, 1]], [[3.0, -2.0], [0.5, 0.2]])["subset_accuracy"]
    0.5
    """
    scores, names = _logit_matrix("multi_label", scores, labels)
    if not 0.0 < threshold < 1.0:
        raise BertforgeError(f"threshold must be a probability between 0 and 1, got {threshold}")
    predicted = (_sigmoid(scores) > threshold).astype(np.int64)
    return multilabel_metrics(y_true, predicted, names)
