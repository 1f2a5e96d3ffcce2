"""Figures of a fine-tuning run: learning curves, the confusion matrix, the layer sweep.

Each figure is drawn on a bare matplotlib ``Figure`` with an Agg canvas and
written as a PNG under a temporary name, then renamed, so a killed run never
leaves half an image. matplotlib is imported inside :func:`new_figure`, so
importing this module costs nothing until a figure is drawn.

>>> import tempfile
>>> figure = new_figure(4.0, 3.0)
>>> figure.subplots().plot([1, 2], [3, 1])  # doctest: +ELLIPSIS
[...]
>>> save_png(figure, Path(tempfile.mkdtemp()) / "line.png").name
'line.png'
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from bertforge.errors import BertforgeError
from bertforge.evaluation.records import is_metric, is_number, sorted_sweep_rows
from bertforge.files import replacing


def new_figure(width: float, height: float):
    """A matplotlib ``Figure`` of ``width`` x ``height`` inches, laid out with constrained layout."""
    # An Agg canvas on a bare Figure: no pyplot, no global backend switch, no window,
    # and nothing left open in a long training process.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_png(figure, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Write ``figure`` to ``path`` as a PNG, atomically (its folder is made if need be)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as temporary:
        figure.savefig(temporary, format="png", dpi=dpi)
    return path


def _short(label: str, width: int = 24) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


_X_KEYS = ("step", "epoch")


def learning_curve_series(history: list[dict]) -> tuple[str, dict[str, tuple[list[float], list[float]]]]:
    """The x-axis name and, per metric (:func:`~bertforge.evaluation.records.is_metric`:
    counters such as ``tokens`` or ``val_num_examples`` are left out), the (x, y) points
    where it was logged.

    >>> rows = [{"step": 10, "train_loss": 0.9, "tokens": 640},
    ...         {"step": 20, "val_loss": 0.6, "val_accuracy": 0.75, "val_num_examples": 40}]
    >>> x_name, series = learning_curve_series(rows)
    >>> x_name, sorted(series), series["val_accuracy"]
    ('step', ['train_loss', 'val_accuracy', 'val_loss'], ([20.0], [0.75]))
    """
    x_key = next((key for key in _X_KEYS if all(is_number(row.get(key)) for row in history)), None)
    series: dict[str, tuple[list[float], list[float]]] = {}
    for index, row in enumerate(history):
        x = float(row[x_key]) if x_key else float(index + 1)
        for key, value in row.items():
            if not is_metric(key) or not is_number(value) or not math.isfinite(value):
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
    """Plot every metric in ``history`` against the step; ``None`` if there is none.
    Counters and clocks (step, epoch, tokens, seconds, ``val_num_examples``...) are not
    curves to read: :func:`learning_curve_series` says which keys are plotted.

    Series of one quantity (``train_loss`` and ``val_loss``; ``train_accuracy`` and
    ``val_accuracy``) share a panel; every other series gets its own.

    >>> import tempfile
    >>> rows = [{"step": 10, "train_loss": 0.9}, {"step": 20, "train_loss": 0.5, "val_loss": 0.6}]
    >>> plot_learning_curves(rows, Path(tempfile.mkdtemp()) / "curves.png").name
    'curves.png'
    """
    x_name, series = learning_curve_series(list(history or []))
    if not series:
        return None
    panels: dict[str, list[str]] = {}
    for key in series:
        panels.setdefault(_panel_name(key), []).append(key)

    columns = min(2, len(panels))
    rows = math.ceil(len(panels) / columns)
    figure = new_figure(5.5 * columns, 3.4 * rows)
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
    return save_png(figure, path)


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
    figure = new_figure(side + 1.2, side)
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
    return save_png(figure, path, dpi=100 if k > 30 else 120)


def _layer_caption(layers) -> str:
    text = str(layers)
    if text == "1":
        return "1 layer"
    return f"{text} layers"


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
    ordered = sorted_sweep_rows(rows, metric, ("train_seconds",))
    seconds = [float(row["train_seconds"]) for row in ordered]
    values = [float(row[metric]) for row in ordered]

    figure = new_figure(6.5, 4.5)
    axis = figure.subplots()
    axis.plot(seconds, values, "-o", color="tab:blue", markersize=7)
    for row, x, y in zip(ordered, seconds, values):
        caption = _layer_caption(row["fine_tune_layers"])
        if is_number(row.get("examples_per_second")):
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
    return save_png(figure, path)
