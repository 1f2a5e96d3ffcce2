"""The report of a token classification run: ``report.md``, ``metrics.json`` and the learning curves.

It reads the way the classification report does (summary, headline table,
per-type table, confusion matrix, training history) and adds the sentences
with the most entity errors, each shown with its words and the entities that
were missed or wrongly predicted. Files are written atomically; ``report.md``
comes last, so it never links to a plot that is not there.

>>> import tempfile
>>> from bertforge.tasks.token_classification.metrics import entity_metrics
>>> metrics = entity_metrics([["B-PER", "O", "B-LOC"]], [["B-PER", "O", "O"]], "iob2")
>>> path = write_report(tempfile.mkdtemp(), metrics, None, "NER", sentences=[["Ann", "in", "Oslo"]])
>>> sorted(p.name for p in path.parent.iterdir())
['metrics.json', 'report.md']
>>> print(path.read_text().split("## Worst errors")[1].strip())
Sentences are numbered from 0, as in metrics.json.
<BLANKLINE>
### Sentence 0
<BLANKLINE>
> Ann in Oslo
<BLANKLINE>
- missed (gold only): Oslo [LOC]
- spurious (predicted only): none
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from bertforge.evaluation.plots import plot_learning_curves
from bertforge.evaluation.report import (
    confusion_table,
    format_number,
    jsonable,
    markdown_cell,
    named_metrics_table,
    training_section,
    write_metrics_json,
)
from bertforge.files import write_text_atomically
from bertforge.tasks.token_classification.metrics import summary_line

# The headline rows: the metrics key and how the table names it.
_HEADLINE = (
    ("precision", "entity precision (micro)"),
    ("recall", "entity recall (micro)"),
    ("f1", "entity F1 (micro)"),
    ("macro_f1", "entity F1 (macro over types)"),
    ("token_accuracy", "token accuracy"),
    ("entities", "gold entities"),
    ("predicted_entities", "predicted entities"),
    ("correct_entities", "correct entities"),
    ("sentences", "sentences"),
    ("words", "words"),
)
# Characters that would turn words of a sentence into markdown markup.
_MARKUP = str.maketrans({char: "\\" + char for char in "\\`*_[]<>|"})


def _text(words: Sequence[str]) -> str:
    return " ".join(words).translate(_MARKUP)


def _headline_table(metrics: dict) -> list[str]:
    return named_metrics_table(metrics, _HEADLINE, ".4f")


def _per_type_table(per_type: dict) -> list[str]:
    lines = ["| type | precision | recall | F1 | support | predicted |", "|---|---|---|---|---|---|"]
    for kind, stats in per_type.items():
        lines.append(f"| {markdown_cell(kind)} | {format_number(stats.get('precision'), '.4f')} | {format_number(stats.get('recall'), '.4f')} "
                     f"| {format_number(stats.get('f1'), '.4f')} | {stats.get('support', '')} | {stats.get('predicted', '')} |")
    return lines


def _entity_list(found: list, words: Sequence[str] | None) -> str:
    if not found:
        return "none"
    shown = []
    for kind, start, end in found:
        where = _text(words[start:end]) if words is not None else f"words {start}-{end - 1}"
        shown.append(f"{where} [{markdown_cell(kind)}]")
    return ", ".join(shown)


def _error_lines(errors: list[dict], sentences: Sequence[Sequence[str]] | None) -> list[str]:
    lines = ["Sentences are numbered from 0, as in metrics.json.", ""]
    for row in errors:
        index = row["sentence"]
        words = row.get("words")  # the task adds each error sentence's words
        if words is None and sentences is not None and 0 <= index < len(sentences):
            words = sentences[index]
        lines += [f"### Sentence {index}", ""]
        if words is not None:
            lines += [f"> {_text(words)}", ""]
        lines += [f"- missed (gold only): {_entity_list(row.get('missed', []), words)}",
                  f"- spurious (predicted only): {_entity_list(row.get('spurious', []), words)}", ""]
    return lines


def _report_markdown(title: str, metrics: dict, history: list[dict] | None,
                     sentences: Sequence[Sequence[str]] | None, curves: Path | None) -> str:
    lines = [f"# {title}", ""]
    if all(key in metrics for key in ("f1", "precision", "recall", "entities", "token_accuracy")):
        lines += ["```", summary_line(metrics), "```", ""]
    lines += ["## Metrics", "", *_headline_table(metrics), ""]
    if metrics.get("per_type"):
        lines += ["## Per type", "", *_per_type_table(metrics["per_type"]), ""]
    confusion = metrics.get("confusion") or {}
    if confusion.get("matrix") and len(confusion["labels"]) > 1:
        lines += ["## Confusion matrix", "",
                  "Rows are gold entity types, columns the type predicted over exactly the same words; "
                  "`none` is no entity there (its row: predicted entities over words no gold entity spans).", "",
                  *confusion_table(confusion["matrix"], confusion["labels"]), ""]
    if metrics.get("errors"):
        lines += ["## Worst errors", "", *_error_lines(metrics["errors"], sentences)]
    if history:
        lines += training_section(history, curves)
    return "\n".join(lines)


def write_report(out: str | os.PathLike, metrics: dict[str, Any], history: list[dict] | None, title: str,
                 sentences: list[list[str]] | None = None) -> Path:
    """Write ``report.md``, ``metrics.json`` and (with a history) ``learning_curves.png`` into ``out``; the report's path.

    ``metrics`` is what :func:`~bertforge.tasks.token_classification.metrics.entity_metrics`
    returns, perhaps with a ``"training"`` dict of run facts (kept in
    ``metrics.json``); ``sentences``, the words of each sentence, lets the error
    list show the text of each sentence and of each entity.

    >>> import tempfile
    >>> from bertforge.tasks.token_classification.metrics import entity_metrics
    >>> m = entity_metrics([["B-PER"]], [["B-PER"]], "iob2")
    >>> write_report(tempfile.mkdtemp(), m, [{"step": 1, "train_loss": 0.7}], "NER").name
    'report.md'
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    metrics = jsonable(metrics)  # fails here, before any file is touched
    write_metrics_json(out / "metrics.json", metrics)
    curves = plot_learning_curves(history, out / "learning_curves.png") if history else None
    return write_text_atomically(out / "report.md", _report_markdown(title, metrics, history, sentences, curves))
