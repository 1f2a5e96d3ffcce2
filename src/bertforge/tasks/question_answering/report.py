"""The report of a question answering run: ``report.md``, ``metrics.json`` and the learning curves.

A summary line, the scores (with the splits by whether a question has an answer, for
SQuAD v2.0 rules), the training history, and the worst misses: each question with its
prediction and its reference answers. Files are written atomically; ``report.md`` comes
last, so it never links to a plot that is not there.

>>> import tempfile
>>> from bertforge.tasks.question_answering.metrics import squad_scores
>>> metrics = squad_scores([["Denver Broncos"]], ["Carolina"], worst=5)
>>> metrics["errors"][0]["text"] = "Who won?"
>>> path = write_report(tempfile.mkdtemp(), metrics, None, "SQuAD")
>>> print(path.read_text().split("## Worst misses")[1].strip())
Questions are numbered from 0 in file order, as in metrics.json.
<BLANKLINE>
| # | question | predicted | references | F1 |
|---|---|---|---|---|
| 0 | Who won? | Carolina | Denver Broncos | 0.00 |
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bertforge.evaluation.plots import plot_learning_curves
from bertforge.evaluation.report import (
    jsonable,
    markdown_cell,
    named_metrics_table,
    training_section,
    write_metrics_json,
)
from bertforge.files import write_text_atomically
from bertforge.tasks.question_answering.metrics import summary_line

_HEADLINE = (
    ("exact_match", "exact match (%)"),
    ("f1", "F1 (%)"),
    ("total", "questions"),
    ("has_answer_exact_match", "exact match, questions with an answer (%)"),
    ("has_answer_f1", "F1, questions with an answer (%)"),
    ("has_answer_total", "questions with an answer"),
    ("no_answer_exact_match", "exact match, questions without (%)"),
    ("no_answer_total", "questions without an answer"),
    ("best_f1", "best F1 over no-answer thresholds (%)"),
    ("best_f1_threshold", "its no-answer threshold"),
    ("best_exact_match", "best exact match over thresholds (%)"),
    ("null_threshold", "no-answer threshold used"),
)


def _headline_table(metrics: dict) -> list[str]:
    return named_metrics_table(metrics, _HEADLINE, ".2f")


def _miss_lines(errors: list[dict]) -> list[str]:
    lines = ["Questions are numbered from 0 in file order, as in metrics.json.", "",
             "| # | question | predicted | references | F1 |", "|---|---|---|---|---|"]
    for row in errors:
        references = " / ".join(markdown_cell(text) for text in row.get("references") or []) or "(no answer)"
        predicted = markdown_cell(row.get("prediction")) if row.get("prediction") else "(no answer)"
        lines.append(f"| {row['question']} | {markdown_cell(row.get('text', ''))} | {predicted} | {references} "
                     f"| {row['f1']:.2f} |")
    return lines


def _report_markdown(title: str, metrics: dict, history: list[dict] | None, curves: Path | None) -> str:
    lines = [f"# {title}", ""]
    if all(key in metrics for key in ("exact_match", "f1", "total", "version")):
        lines += ["```", summary_line(metrics), "```", ""]
    lines += ["## Scores", "", "Exact match and F1 as the official SQuAD evaluation computes them "
              f"(v{metrics.get('version', '1.1')} rules), in percent.", "", *_headline_table(metrics), ""]
    if metrics.get("errors"):
        lines += ["## Worst misses", "", *_miss_lines(metrics["errors"]), ""]
    if history:
        lines += training_section(history, curves)
    return "\n".join(lines)


def write_report(out: str | os.PathLike, metrics: dict[str, Any], history: list[dict] | None, title: str) -> Path:
    """Write ``report.md``, ``metrics.json`` and (with a history) ``learning_curves.png`` into ``out``;
    the report's path. ``metrics`` is what
    :func:`~bertforge.tasks.question_answering.metrics.squad_scores` returns, its
    ``errors`` with each question's ``text``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    metrics = jsonable(metrics)  # fails here, before any file is touched
    write_metrics_json(out / "metrics.json", metrics)
    curves = plot_learning_curves(history, out / "learning_curves.png") if history else None
    return write_text_atomically(out / "report.md", _report_markdown(title, metrics, history, curves))
