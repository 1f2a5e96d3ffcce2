"""What a run writes for people: the terminal summary, ``metrics.json`` and ``report.md``.

The report is markdown: the summary, a table of headline metrics, per-class
scores, the confusion matrix, the training history and the sweep, with the
figures of :mod:`bertforge.evaluation.plots` beside it. Every file is written
under a temporary name and renamed, so a killed run never leaves half a file
behind.

>>> import tempfile
>>> from bertforge.evaluation.metrics import classification_metrics
>>> metrics = classification_metrics([0, 1, 1], [0, 1, 0], labels=["neg", "pos"])
>>> print(format_summary(metrics))
accuracy 0.667  macro-F1 0.667  weighted-F1 0.667  (n=3)
>>> sorted(write_report(tempfile.mkdtemp(), metrics))
['confusion_matrix', 'metrics', 'report']
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from bertforge.errors import BertforgeError
from bertforge.evaluation.plots import plot_confusion_matrix, plot_learning_curves
from bertforge.evaluation.records import is_number, sorted_sweep_rows
from bertforge.files import write_text_atomically


# --------------------------------------------------------------------------- terminal summary

def format_number(value, spec: str = ".3f") -> str:
    """A metric for a report; ``n/a`` when it is missing."""
    return "n/a" if value is None else format(value, spec)


def _weakest_classes(per_class: dict, count: int = 3) -> str:
    seen = [(name, stats["f1"]) for name, stats in per_class.items() if stats.get("support", 0) > 0]
    if len(seen) < 3:  # with two classes the headline numbers already say it all
        return ""
    weakest = sorted(seen, key=lambda item: item[1])[:min(count, len(seen) - 1)]
    return "lowest F1: " + ", ".join(f"{name} {f1:.3f}" for name, f1 in weakest)


def _classification_lines(metrics: dict, count: str) -> list[str]:
    return [f"accuracy {format_number(metrics.get('accuracy'))}  macro-F1 {format_number(metrics.get('macro_f1'))}  "
            f"weighted-F1 {format_number(metrics.get('weighted_f1'))}{count}",
            _weakest_classes(metrics.get("per_class", {}))]


def _multi_label_lines(metrics: dict, count: str) -> list[str]:
    return [f"micro-F1 {format_number(metrics.get('micro_f1'))}  macro-F1 {format_number(metrics.get('macro_f1'))}  "
            f"subset-accuracy {format_number(metrics.get('subset_accuracy'))}  "
            f"hamming-loss {format_number(metrics.get('hamming_loss'), '.4f')}{count}",
            _weakest_classes(metrics.get("per_class", {}))]


def _regression_lines(metrics: dict, count: str) -> list[str]:
    return [f"mse {format_number(metrics.get('mse'), '.4g')}  rmse {format_number(metrics.get('rmse'), '.4g')}  "
            f"mae {format_number(metrics.get('mae'), '.4g')}{count}",
            f"pearson {format_number(metrics.get('pearson'))}  spearman {format_number(metrics.get('spearman'))}  "
            f"r2 {format_number(metrics.get('r2'))}"]


# The summary of each kind of metrics, by the name its metrics carry under "task".
_SUMMARIES = {"classification": _classification_lines, "multi_label": _multi_label_lines,
              "regression": _regression_lines}


def format_summary(metrics: dict, task: str | None = None) -> str:
    """A few lines for the terminal.

    ``task`` (``"classification"``, ``"multi_label"`` or ``"regression"``) picks
    the layout; without it, the metrics' own ``"task"`` does, or their keys.

    >>> from bertforge.evaluation.metrics import classification_metrics
    >>> m = classification_metrics([0, 0, 1, 2], [0, 1, 1, 2], labels=["a", "b", "c"])
    >>> print(format_summary(m, "classification"))
    accuracy 0.750  macro-F1 0.778  weighted-F1 0.750  (n=4)
    lowest F1: a 0.667, b 0.667
    """
    task = task or metrics.get("task") or _infer_task(metrics)
    if task not in _SUMMARIES:
        raise BertforgeError(f"unknown task {task!r}: use one of {', '.join(_SUMMARIES)}")
    count = f"  (n={metrics['num_examples']})" if "num_examples" in metrics else ""
    return "\n".join(line for line in _SUMMARIES[task](metrics, count) if line)


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

def jsonable(value):
    """Plain JSON types: numpy scalars and arrays unwrapped, NaN and infinity as null."""
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
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
    text = json.dumps(jsonable(metrics), indent=2, allow_nan=False) + "\n"
    return write_text_atomically(path, text)


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
    ordered = sorted_sweep_rows(rows, metric)
    times = [row.get("train_seconds") for row in ordered]
    fastest = min((t for t in times if is_number(t) and t > 0), default=None)
    lines = [f"| fine-tuned layers | {metric} | train time (s) | examples/s | time vs. fastest |",
             "|---|---|---|---|---|"]
    for row, seconds in zip(ordered, times):
        ratio = f"{seconds / fastest:.2f}x" if fastest and is_number(seconds) else "n/a"
        lines.append(f"| {markdown_cell(row['fine_tune_layers'])} | {format_number(row[metric], '.4f')} | "
                     f"{format_number(seconds, '.1f')} | {format_number(row.get('examples_per_second'), '.1f')} | {ratio} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- report

def markdown_cell(value) -> str:
    """A value made safe for a markdown table cell."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def named_metrics_table(metrics: dict, names: Sequence[tuple[str, str]], spec: str = ".4f") -> list[str]:
    """A ``| metric | value |`` table of the ``(key, name)`` rows whose value is a number
    (whole numbers as they are, others with ``spec``); missing ones are left out.

    >>> named_metrics_table({"f1": 0.81234, "total": 9, "x": None}, [("f1", "F1"), ("total", "questions"), ("x", "X")])
    ['| metric | value |', '|---|---|', '| F1 | 0.8123 |', '| questions | 9 |']
    """
    lines = ["| metric | value |", "|---|---|"]
    for key, name in names:
        value = metrics.get(key)
        if not is_number(value):
            continue
        shown = str(int(value)) if isinstance(value, (int, np.integer)) else format_number(float(value), spec)
        lines.append(f"| {name} | {shown} |")
    return lines


def training_section(history: list[dict] | None, curves: Path | None) -> list[str]:
    """The ``## Training`` lines of a report: the history table and the learning curves'
    plot, when there are any.

    >>> training_section(None, None)
    []
    """
    table = history_table(history) if history else []
    if not table and curves is None:
        return []
    lines = ["## Training", ""]
    if table:
        lines += [*table, ""]
    if curves is not None:
        lines += [f"![Learning curves]({curves.name})", ""]
    return lines


def _headline_table(metrics: dict) -> list[str]:
    lines = ["| metric | value |", "|---|---|"]
    for key, value in metrics.items():
        if is_number(value):
            shown = str(int(value)) if isinstance(value, (int, np.integer)) else format_number(float(value), ".4f")
            lines.append(f"| {markdown_cell(key)} | {shown} |")
        elif value is None:
            lines.append(f"| {markdown_cell(key)} | n/a |")
    return lines


def _per_class_table(per_class: dict) -> list[str]:
    lines = ["| label | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for label, stats in per_class.items():
        lines.append(f"| {markdown_cell(label)} | {format_number(stats.get('precision'), '.4f')} | {format_number(stats.get('recall'), '.4f')} "
                     f"| {format_number(stats.get('f1'), '.4f')} | {stats.get('support', '')} |")
    return lines


def confusion_table(matrix: list[list[int]], labels: list[str]) -> list[str]:
    """A confusion matrix as markdown table lines, true labels down, predicted across."""
    header = "| true \\ predicted | " + " | ".join(markdown_cell(label) for label in labels) + " |"
    lines = [header, "|---" * (len(labels) + 1) + "|"]
    for label, row in zip(labels, matrix):
        lines.append(f"| **{markdown_cell(label)}** | " + " | ".join(str(count) for count in row) + " |")
    return lines


def history_table(history: list[dict], limit: int = 30) -> list[str]:
    """The training history as markdown table lines."""
    # One row per epoch (its last record) keeps a long run's table short.
    if all("epoch" in row for row in history):
        last_of_epoch = {row["epoch"]: row for row in history}
        history = list(last_of_epoch.values())
    history = history[-limit:]
    keys = [key for key in dict.fromkeys(k for row in history for k in row)
            if any(is_number(row.get(key)) for row in history)]
    if not keys:
        return []
    lines = ["| " + " | ".join(markdown_cell(key) for key in keys) + " |", "|---" * len(keys) + "|"]
    for row in history:
        cells = []
        for key in keys:
            value = row.get(key)
            if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
                cells.append(str(int(value)))
            elif is_number(value):
                cells.append(format_number(float(value), ".4g"))
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
                  *confusion_table(metrics["confusion_matrix"], labels), ""]
        if "confusion_matrix" in images:
            lines += [f"![Confusion matrix]({images['confusion_matrix'].name})", ""]
    if history:
        table = history_table(history)
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
    >>> from bertforge.evaluation.metrics import classification_metrics
    >>> m = classification_metrics([0, 1, 1], [0, 1, 0], labels=["neg", "pos"])
    >>> paths = write_report(tempfile.mkdtemp(), m, history=[{"step": 1, "train_loss": 0.7}])
    >>> sorted(paths)
    ['confusion_matrix', 'learning_curves', 'metrics', 'report']
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics = jsonable(metrics)  # fails here, before any file is touched
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