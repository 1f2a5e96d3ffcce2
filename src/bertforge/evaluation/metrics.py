"""Metrics, reports and plots for fine-tuning runs.

Everything here works on numpy arrays of labels and raw model outputs, so the
training loop, ``bertforge evaluate`` and the layer sweep share one definition of
"accuracy" and one report layout. The metric functions return plain Python
numbers (JSON-ready); the report writers put ``metrics.json``, ``report.md`` and
PNG plots in a run directory, each file written under a temporary name and
renamed, so a killed run never leaves half a file behind.

scikit-learn, scipy and matplotlib are imported inside the functions that need
them: ``import bertforge.evaluation.metrics`` stays cheap for code that only wants
:func:`primary_metric`.

>>> import numpy as np
>>> logits = np.array([[2.0, 0.1], [0.3, 1.5], [1.0, 0.2]])
>>> metrics = compute_metrics("classification", [0, 1, 1], logits, labels=["ham", "spam"])
>>> metrics["accuracy"], metrics["confusion_matrix"]
(0.6666666666666666, [[1, 0], [1, 1]])
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from bertforge.data.labeled import PROBLEM_TYPES, TASKS
from bertforge.errors import BertforgeError
from bertforge.files import replacing, write_text_atomically

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


# --------------------------------------------------------------------------- tasks

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


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    from scipy.special import expit  # stable for large |logits|

    return expit(logits)


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

    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2:
        raise BertforgeError(f"{task} scores must be (examples, labels) logits, got shape {scores.shape}")
    _check_not_empty("scores", scores)
    _check_finite("scores", scores)
    names = _check_labels(labels, scores.shape[1])
    if task == "classification":
        return {"task": task, **classification_metrics(y_true, scores.argmax(axis=1), names)}
    if not 0.0 < threshold < 1.0:
        raise BertforgeError(f"threshold must be a probability between 0 and 1, got {threshold}")
    predicted = (_sigmoid(scores) > threshold).astype(np.int64)
    return {"task": task, **multilabel_metrics(y_true, predicted, names)}


# --------------------------------------------------------------------------- terminal summary

def _fmt(value, spec: str = ".3f") -> str:
    return "n/a" if value is None else format(value, spec)


def _weakest_classes(per_class: dict, count: int = 3) -> str:
    seen = [(name, stats["f1"]) for name, stats in per_class.items() if stats.get("support", 0) > 0]
    if len(seen) < 3:  # with two classes the headline numbers already say it all
        return ""
    weakest = sorted(seen, key=lambda item: item[1])[:min(count, len(seen) - 1)]
    return "lowest F1: " + ", ".join(f"{name} {f1:.3f}" for name, f1 in weakest)


def format_summary(metrics: dict, task: str | None = None) -> str:
    """A few lines for the terminal.

    >>> m = classification_metrics([0, 0, 1, 2], [0, 1, 1, 2], labels=["a", "b", "c"])
    >>> print(format_summary(m, "classification"))
    accuracy 0.750  macro-F1 0.778  weighted-F1 0.750  (n=4)
    lowest F1: a 0.667, b 0.667
    """
    task = normalize_task(task or metrics.get("task") or _infer_task(metrics))
    count = f"  (n={metrics['num_examples']})" if "num_examples" in metrics else ""
    if task == "classification":
        lines = [f"accuracy {_fmt(metrics.get('accuracy'))}  macro-F1 {_fmt(metrics.get('macro_f1'))}  "
                 f"weighted-F1 {_fmt(metrics.get('weighted_f1'))}{count}"]
        lines.append(_weakest_classes(metrics.get("per_class", {})))
    elif task == "multi_label":
        lines = [f"micro-F1 {_fmt(metrics.get('micro_f1'))}  macro-F1 {_fmt(metrics.get('macro_f1'))}  "
                 f"subset-accuracy {_fmt(metrics.get('subset_accuracy'))}  "
                 f"hamming-loss {_fmt(metrics.get('hamming_loss'), '.4f')}{count}"]
        lines.append(_weakest_classes(metrics.get("per_class", {})))
    else:
        lines = [f"mse {_fmt(metrics.get('mse'), '.4g')}  rmse {_fmt(metrics.get('rmse'), '.4g')}  "
                 f"mae {_fmt(metrics.get('mae'), '.4g')}{count}",
                 f"pearson {_fmt(metrics.get('pearson'))}  spearman {_fmt(metrics.get('spearman'))}  "
                 f"r2 {_fmt(metrics.get('r2'))}"]
    return "\n".join(line for line in lines if line)


def _infer_task(metrics: dict) -> str:
    if "confusion_matrix" in metrics or "accuracy" in metrics:
        return "classification"
    if "subset_accuracy" in metrics or "hamming_loss" in metrics:
        return "multi_label"
    if "mse" in metrics:
        return "regression"
    raise BertforgeError("cannot tell the task from these metrics: pass task='classification', "
                         "'multi_label' or 'regression'")


# --------------------------------------------------------------------------- safe writing

def _jsonable(value):
    """Plain JSON types: numpy scalars and arrays unwrapped, NaN and infinity as null."""
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Path):
        return str(value)
    raise BertforgeError(f"cannot write a {type(value).__name__} to metrics.json: "
                         "metrics must be numbers, strings, lists or dicts")


def write_metrics_json(path: str | os.PathLike, metrics: dict) -> Path:
    """Write ``metrics`` as indented JSON, atomically; NaN becomes ``null``.

    >>> import json, tempfile
    >>> path = write_metrics_json(Path(tempfile.mkdtemp()) / "metrics.json", {"accuracy": np.float32(0.5)})
    >>> json.loads(path.read_text())
    {'accuracy': 0.5}
    """
    path = Path(path)
    text = json.dumps(_jsonable(metrics), indent=2, allow_nan=False) + "\n"
    return write_text_atomically(path, text)


# --------------------------------------------------------------------------- plots

def _new_figure(width: float, height: float):
    # An Agg canvas on a bare Figure: no pyplot, no global backend switch, no window,
    # and nothing left open in a long training process.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save_png(figure, path: str | os.PathLike, dpi: int = 110) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as temporary:
        figure.savefig(temporary, format="png", dpi=dpi)
    return path


def _short(label: str, width: int = 24) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


_X_KEYS = ("step", "epoch")


def _numeric_series(history: list[dict]) -> tuple[str, dict[str, tuple[list[float], list[float]]]]:
    """The x-axis name and, per numeric key, the (x, y) points where it was logged."""
    x_key = next((key for key in _X_KEYS if all(_is_number(row.get(key)) for row in history)), None)
    series: dict[str, tuple[list[float], list[float]]] = {}
    for index, row in enumerate(history):
        x = float(row[x_key]) if x_key else float(index + 1)
        for key, value in row.items():
            if key in _X_KEYS or not _is_number(value) or not math.isfinite(value):
                continue  # validation metrics appear only on some rows; skip the gaps
            xs, ys = series.setdefault(key, ([], []))
            xs.append(x)
            ys.append(float(value))
    return x_key or "record", series


def _panel_name(key: str) -> str:
    # Put train_/val_ versions of one quantity on one axis; every loss shares one axis.
    if "loss" in key:
        return "loss"
    for prefix in ("train_", "val_", "eval_", "test_"):
        if key.startswith(prefix):
            return key[len(prefix):]
    return key


def plot_learning_curves(history: list[dict], path: str | os.PathLike) -> Path | None:
    """Plot every numeric series in ``history`` against the step; ``None`` if there is none.

    Series of one quantity (``train_loss`` and ``val_loss``; ``train_accuracy`` and
    ``val_accuracy``) share a panel; every other series gets its own.

    >>> import tempfile
    >>> rows = [{"step": 10, "train_loss": 0.9}, {"step": 20, "train_loss": 0.5, "val_loss": 0.6}]
    >>> plot_learning_curves(rows, Path(tempfile.mkdtemp()) / "curves.png").name
    'curves.png'
    """
    x_name, series = _numeric_series(list(history or []))
    if not series:
        return None
    panels: dict[str, list[str]] = {}
    for key in series:
        panels.setdefault(_panel_name(key), []).append(key)

    columns = min(2, len(panels))
    rows = math.ceil(len(panels) / columns)
    figure = _new_figure(5.5 * columns, 3.4 * rows)
    axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).ravel()
    for axis, (panel, keys) in zip(axes, panels.items()):
        for key in keys:
            xs, ys = series[key]
            axis.plot(xs, ys, marker="o" if len(xs) <= 30 else None, markersize=3, label=key)
        axis.set_title(panel)
        axis.set_xlabel(x_name)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    for axis in axes[len(panels):]:
        axis.set_visible(False)
    return _save_png(figure, path)


def plot_confusion_matrix(matrix, labels: Sequence, path: str | os.PathLike,
                          title: str = "Confusion matrix") -> Path:
    """Heat map normalised per true class, each cell annotated with its count.

    Rows are true classes, columns predictions. Figure and font sizes follow the
    class count so up to about 50 classes stay readable; past 60 the counts are
    left out, past 100 the tick labels too.

    >>> import tempfile
    >>> plot_confusion_matrix([[5, 1], [0, 4]], ["ham", "spam"], Path(tempfile.mkdtemp()) / "cm.png").name
    'cm.png'
    """
    counts = np.asarray(matrix, dtype=np.int64)
    names = [str(label) for label in labels]
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.shape[0] != len(names):
        raise BertforgeError(f"confusion matrix of shape {counts.shape} does not fit {len(names)} labels")
    k = len(names)
    row_totals = counts.sum(axis=1, keepdims=True)
    # A class with no true examples gets an empty row, not a division by zero.
    fractions = np.divide(counts, row_totals, out=np.zeros(counts.shape), where=row_totals > 0)

    side = min(4.5 + 0.32 * k, 22.0)
    figure = _new_figure(side + 1.2, side)
    axis = figure.subplots()
    image = axis.imshow(fractions, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    figure.colorbar(image, ax=axis, fraction=0.046, pad=0.02, label="fraction of the true class")

    tick_size = max(7.0, min(10.0, 300.0 / k))
    if k <= 100:
        ticks = np.arange(k)
        short = [_short(name) for name in names]
        axis.set_xticks(ticks, short, rotation=45 if k <= 12 else 90,
                        ha="right" if k <= 12 else "center", fontsize=tick_size)
        axis.set_yticks(ticks, short, fontsize=tick_size)
    if k <= 60:
        cell_size = max(6.0, min(10.0, 240.0 / k))
        for row, column in zip(*np.nonzero(counts)):
            axis.text(column, row, str(counts[row, column]), ha="center", va="center", fontsize=cell_size,
                      color="white" if fractions[row, column] > 0.5 else "black")
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(title)
    return _save_png(figure, path, dpi=100 if k > 30 else 120)


def _layer_order(layers) -> tuple:
    text = str(layers)
    if text.isdigit():
        return (0, int(text), text)
    return (1 if text == "all" else 2, 0, text)


def _layer_caption(layers) -> str:
    text = str(layers)
    if text == "1":
        return "1 layer"
    return f"{text} layers"


def _check_sweep_rows(rows: Sequence[dict], metric: str, needed: tuple[str, ...]) -> list[dict]:
    if not rows:
        raise BertforgeError("the layer sweep has no results to show: run at least one setting")
    for index, row in enumerate(rows):
        missing = [key for key in ("fine_tune_layers", metric, *needed) if key not in row]
        if missing:
            raise BertforgeError(f"sweep row {index} lacks {', '.join(missing)}: every row needs "
                                 f"fine_tune_layers, {metric} and {', '.join(needed) or 'train_seconds'}")
    return sorted(rows, key=lambda row: _layer_order(row["fine_tune_layers"]))


def plot_sweep(rows: Sequence[dict], path: str | os.PathLike, metric: str = "accuracy") -> Path:
    """Test ``metric`` against training time, one annotated point per layer setting.

    The points are joined in order of fine-tuned layers (numbers, then ``"all"``),
    so the plot reads as the trade-off: more layers, more time, (usually) better.

    >>> import tempfile
    >>> rows = [{"fine_tune_layers": "0", "train_seconds": 30.0, "examples_per_second": 900.0, "accuracy": 0.88},
    ...         {"fine_tune_layers": "all", "train_seconds": 240.0, "examples_per_second": 110.0, "accuracy": 0.97}]
    >>> plot_sweep(rows, Path(tempfile.mkdtemp()) / "sweep.png").name
    'sweep.png'
    """
    ordered = _check_sweep_rows(rows, metric, ("train_seconds",))
    seconds = [float(row["train_seconds"]) for row in ordered]
    values = [float(row[metric]) for row in ordered]

    figure = _new_figure(6.5, 4.5)
    axis = figure.subplots()
    axis.plot(seconds, values, "-o", color="tab:blue", markersize=7)
    for row, x, y in zip(ordered, seconds, values):
        caption = _layer_caption(row["fine_tune_layers"])
        if _is_number(row.get("examples_per_second")):
            caption += f"\n{row['examples_per_second']:.0f} ex/s"
        axis.annotate(caption, (x, y), textcoords="offset points", xytext=(6, 6), fontsize=8)
    positive = [s for s in seconds if s > 0]
    if len(positive) == len(seconds) and max(positive) / min(positive) > 30:
        axis.set_xscale("log")  # a frozen encoder can train many times faster than a full one
    axis.margins(x=0.15, y=0.15)
    axis.set_xlabel("training time (s)")
    axis.set_ylabel(f"test {metric}")
    axis.set_title(f"{metric} vs. training time by fine-tuned layers")
    axis.grid(alpha=0.3)
    return _save_png(figure, path)


def sweep_table(rows: Sequence[dict], metric: str = "accuracy") -> str:
    """A markdown table of the layer sweep, in order of fine-tuned layers.

    >>> rows = [{"fine_tune_layers": "all", "train_seconds": 240.0, "examples_per_second": 110.0, "accuracy": 0.97},
    ...         {"fine_tune_layers": "0", "train_seconds": 30.0, "examples_per_second": 900.0, "accuracy": 0.88}]
    >>> print(sweep_table(rows))
    | fine-tuned layers | accuracy | train time (s) | examples/s | time vs. fastest |
    |---|---|---|---|---|
    | 0 | 0.8800 | 30.0 | 900.0 | 1.00x |
    | all | 0.9700 | 240.0 | 110.0 | 8.00x |
    """
    ordered = _check_sweep_rows(rows, metric, ())
    times = [row.get("train_seconds") for row in ordered]
    fastest = min((t for t in times if _is_number(t) and t > 0), default=None)
    lines = [f"| fine-tuned layers | {metric} | train time (s) | examples/s | time vs. fastest |",
             "|---|---|---|---|---|"]
    for row, seconds in zip(ordered, times):
        ratio = f"{seconds / fastest:.2f}x" if fastest and _is_number(seconds) else "n/a"
        lines.append(f"| {_md(row['fine_tune_layers'])} | {_fmt(row[metric], '.4f')} | "
                     f"{_fmt(seconds, '.1f')} | {_fmt(row.get('examples_per_second'), '.1f')} | {ratio} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- report

def _md(value) -> str:
    """A value made safe for a markdown table cell."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def _headline_table(metrics: dict) -> list[str]:
    lines = ["| metric | value |", "|---|---|"]
    for key, value in metrics.items():
        if _is_number(value):
            shown = str(int(value)) if isinstance(value, (int, np.integer)) else _fmt(float(value), ".4f")
            lines.append(f"| {_md(key)} | {shown} |")
        elif value is None:
            lines.append(f"| {_md(key)} | n/a |")
    return lines


def _per_class_table(per_class: dict) -> list[str]:
    lines = ["| label | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for label, stats in per_class.items():
        lines.append(f"| {_md(label)} | {_fmt(stats.get('precision'), '.4f')} | {_fmt(stats.get('recall'), '.4f')} "
                     f"| {_fmt(stats.get('f1'), '.4f')} | {stats.get('support', '')} |")
    return lines


def _confusion_table(matrix: list[list[int]], labels: list[str]) -> list[str]:
    header = "| true \\ predicted | " + " | ".join(_md(label) for label in labels) + " |"
    lines = [header, "|---" * (len(labels) + 1) + "|"]
    for label, row in zip(labels, matrix):
        lines.append(f"| **{_md(label)}** | " + " | ".join(str(count) for count in row) + " |")
    return lines


def _history_table(history: list[dict], limit: int = 30) -> list[str]:
    # One row per epoch (its last record) keeps a long run's table short.
    if all("epoch" in row for row in history):
        last_of_epoch = {row["epoch"]: row for row in history}
        history = list(last_of_epoch.values())
    history = history[-limit:]
    keys = [key for key in dict.fromkeys(k for row in history for k in row)
            if any(_is_number(row.get(key)) for row in history)]
    if not keys:
        return []
    lines = ["| " + " | ".join(_md(key) for key in keys) + " |", "|---" * len(keys) + "|"]
    for row in history:
        cells = []
        for key in keys:
            value = row.get(key)
            if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
                cells.append(str(int(value)))
            elif _is_number(value):
                cells.append(_fmt(float(value), ".4g"))
            else:
                cells.append("")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _report_markdown(title: str, metrics: dict, history: list[dict] | None, labels: list[str] | None,
                     images: dict[str, Path]) -> str:
    lines = [f"# {title}", ""]
    task = metrics.get("task")
    if task is None:
        try:
            task = _infer_task(metrics)
        except BertforgeError:
            task = None
    if task:
        lines += ["```", format_summary(metrics, task), "```", ""]
    lines += ["## Metrics", "", *_headline_table(metrics), ""]
    if metrics.get("per_class"):
        lines += ["## Per class", "", *_per_class_table(metrics["per_class"]), ""]
    if metrics.get("confusion_matrix") and labels:
        lines += ["## Confusion matrix", "", "Rows are true classes, columns predictions.", "",
                  *_confusion_table(metrics["confusion_matrix"], labels), ""]
        if "confusion_matrix" in images:
            lines += [f"![Confusion matrix]({images['confusion_matrix'].name})", ""]
    if history:
        table = _history_table(history)
        if table or "learning_curves" in images:
            lines += ["## Training", ""]
        if table:
            lines += [*table, ""]
        if "learning_curves" in images:
            lines += [f"![Learning curves]({images['learning_curves'].name})", ""]
    return "\n".join(lines)


def write_report(out_dir: str | os.PathLike, metrics: dict, history: list[dict] | None = None,
                 labels: Sequence | None = None, title: str = "bertforge evaluation") -> dict[str, Path]:
    """Write ``metrics.json``, ``report.md`` and the plots into ``out_dir``.

    Returns the written paths keyed ``"metrics"``, ``"report"`` and, when there is
    something to draw, ``"confusion_matrix"`` (metrics holding a confusion matrix)
    and ``"learning_curves"`` (a history with numeric series). ``labels`` defaults
    to the keys of ``metrics["per_class"]``. ``report.md`` is written last, so it
    never links to a plot that is not there yet.

    >>> import tempfile
    >>> m = classification_metrics([0, 1, 1], [0, 1, 0], labels=["neg", "pos"])
    >>> paths = write_report(tempfile.mkdtemp(), m, history=[{"step": 1, "train_loss": 0.7}])
    >>> sorted(paths)
    ['confusion_matrix', 'learning_curves', 'metrics', 'report']
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics = _jsonable(metrics)  # fails here, before any file is touched
    names = [str(label) for label in labels] if labels is not None else list(metrics.get("per_class", {}))
    matrix = metrics.get("confusion_matrix")
    if matrix and names and len(names) != len(matrix):
        raise BertforgeError(f"got {len(names)} labels for a {len(matrix)}-class confusion matrix: "
                             "pass the labels in class-id order")

    paths: dict[str, Path] = {"metrics": write_metrics_json(out_dir / "metrics.json", metrics)}
    images: dict[str, Path] = {}
    if matrix and names:
        images["confusion_matrix"] = plot_confusion_matrix(matrix, names, out_dir / "confusion_matrix.png")
    if history:
        curves = plot_learning_curves(history, out_dir / "learning_curves.png")
        if curves is not None:
            images["learning_curves"] = curves
    paths.update(images)
    paths["report"] = write_text_atomically(out_dir / "report.md",
                                             _report_markdown(title, metrics, history, names, images))
    return paths
