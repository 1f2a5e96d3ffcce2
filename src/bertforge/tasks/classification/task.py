"""Sentence classification as a task: single-label, multi-label, regression, text pairs.

Labels are learned from the training file alone (:class:`LabelEncoder`) and saved
with the model, regression's target scale with them: the head learns standardised
targets, and every output is put back on the targets' scale before it is decoded or
scored. Long texts are read as one setting says (``text/long_text.py``), and
the windows of a text are folded back into one prediction per text.

>>> task = ClassificationTask.fit(["ham", "spam", "ham"])
>>> task.describe(), task.decode(np.array([[2.0, 0.0]]))[0]["label"]
('classification, 2 classes', 'ham')
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from scipy.special import expit, softmax

from bertforge.data.labeled import LabelEncoder, LabeledData, read_labeled, read_texts, stratified_split
from bertforge.data.labeled.labels import PROBLEM_TYPES, TASKS, numbers_note
from bertforge.errors import BertforgeError
from bertforge.evaluation.report import format_summary, write_report
from bertforge.tasks.base import RequestField, Split, Task
from bertforge.tasks.classification.metrics import compute_metrics, primary_metric
from bertforge.tasks.classification.predictions import write_predictions
from bertforge.text.long_text import LongText, combine, encode_windows

#: The kinds of labels this task reads, as ``--task`` and ``bertforge.json`` name them, and
#: as ``transformers``' ``problem_type`` does.
KINDS = TASKS + tuple(name for name in PROBLEM_TYPES.values() if name not in TASKS)


class ClassificationTask(Task):
    """One label (or several, or a number) per text or text pair."""

    kinds = KINDS
    architectures = ("ForSequenceClassification",)

    def __init__(self, encoder: LabelEncoder, threshold: float = 0.5, text_pairs: bool | None = None):
        self.encoder = encoder
        self.threshold = threshold  # multi-label: a label is predicted above this probability
        self.text_pairs = text_pairs  # trained on text pairs; None: not known (a model from elsewhere)
        self._guess: str | None = None  # how numeric training labels were read, when no --task said

    @property
    def labels(self) -> list[str]:
        """The class names, in the order of the head's outputs."""
        return list(self.encoder.id2label.values())

    @property
    def kind(self) -> str:
        return self.encoder.task

    # -- reading ------------------------------------------------------------------------

    @classmethod
    def read(cls, source: Any, columns: dict[str, Any]) -> LabeledData:
        # The settings name the columns of every task; a file of texts reads these.
        names = ("text_column", "label_column", "text_pair_column", "label_columns", "delimiter",
                 "drop_missing_labels", "label_separator")
        return read_labeled(source, **{name: columns[name] for name in names if name in columns})

    @classmethod
    def read_unlabeled(cls, source: Any, columns: dict[str, Any]) -> LabeledData:
        # The training columns read a table that has them; plain lines stay one text each.
        given = {key: columns.get(key) for key in ("text_column", "text_pair_column")}
        return read_texts(sys.stdin if source == "-" else source, **given, trained=columns.get("trained_columns"))

    @classmethod
    def fit(cls, train: Any, kind: str | None = None, label_separator: str | None = None,
            **options: Any) -> "ClassificationTask":
        task = cls(LabelEncoder.fit(train, task=kind, label_separator=label_separator),
                   text_pairs=getattr(train, "text_pairs", None) is not None)
        if kind is None:
            task._guess = numbers_note(train, label_separator)
        return task

    def guess_note(self) -> str | None:
        return self._guess

    @classmethod
    def saved_in(cls, metadata: dict[str, Any], config: dict[str, Any]) -> bool:
        return "label_encoder" in metadata or any(
            str(name).endswith(cls.architectures) for name in config.get("architectures") or ())

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any], config: dict[str, Any]) -> "ClassificationTask":
        # A classifier from elsewhere has no bertforge.json: its config.json names the labels.
        return cls(LabelEncoder.from_dict(metadata["label_encoder"] if "label_encoder" in metadata else config))

    def from_texts(self, texts: Sequence[str], text_pairs: Sequence[str] | None = None) -> LabeledData:
        return LabeledData(list(texts), None, None if text_pairs is None else list(text_pairs),
                           list(range(1, len(texts) + 1)), "<texts>")

    def metadata(self) -> dict[str, Any]:
        # text_pairs lets the service refuse pairs sent to a model that never read any.
        pairs = {} if self.text_pairs is None else {"text_pairs": self.text_pairs}
        return {"task": self.encoder.task, "label_encoder": self.encoder.to_dict(), **pairs}

    def hold_out(self, examples: LabeledData, fraction: float, seed: int) -> tuple[LabeledData, LabeledData]:
        keep, held_out = stratified_split(examples.labels, fraction, seed=seed, task=self.kind)
        return examples.subset(keep), examples.subset(held_out)

    def describe(self) -> str:
        size = f", {self.encoder.num_labels} classes" if self.kind != "regression" else ""
        return f"{self.kind}{size}"

    # -- examples -> features -----------------------------------------------------------

    @classmethod
    def windows(cls, mode: str, stride: int | None, aggregate: str) -> LongText:
        return LongText(mode, stride, aggregate)

    @classmethod
    def windows_from_dict(cls, values: dict[str, Any] | None) -> LongText:
        return LongText.from_dict(values)

    def encode(self, name: str, examples: LabeledData, tokenizer, max_length: int, long_text: LongText,
               labeled: bool = True, unknown: str = "error") -> Split:
        targets, dropped = None, 0
        if labeled and examples.labels is not None:
            if self.kind != "multi_label":
                _refuse_label_lists(examples, self.kind)
            encoded = self.encoder.encode(examples, unknown=unknown)
            dropped = int(encoded.dropped)
            if encoded.dropped:
                examples = examples.subset(encoded.kept)
            targets = encoded.targets
        if len(examples) == 0:
            raise BertforgeError(f"{examples.path}: no rows left to use; check the file and the label column")
        features = encode_windows(tokenizer, examples.texts, examples.text_pairs, max_length, long_text)
        if targets is not None:  # every window of a text learns the text's label, standardised for regression
            learned = self.encoder.standardize(targets)
            features = features.with_labels(learned if features.owner is None else learned[features.owner])
        return Split(name, examples, features, targets, dropped)

    def texts(self, examples: LabeledData) -> tuple[list[str], list[str] | None]:
        return list(examples.texts), None if examples.text_pairs is None else list(examples.text_pairs)

    # -- head and loss ------------------------------------------------------------------

    def build_model(self, model_dir, config):
        from bertforge.io.load import load_pretrained
        from bertforge.model.heads import BertForSequenceClassification

        return load_pretrained(model_dir, BertForSequenceClassification, config=config,
                               id2label=self.encoder.id2label, problem_type=self.encoder.problem_type)

    def load_model(self, model_dir):
        from bertforge.io.load import load_pretrained
        from bertforge.model.heads import BertForSequenceClassification

        model = load_pretrained(model_dir, BertForSequenceClassification)
        if any(name.startswith("classifier.") for name in model.load_report.missing):
            raise BertforgeError(f"{model_dir}: has no trained classifier head; fine-tune it first with "
                                 "bertforge finetune")
        return model

    def trainable(self, model, fine_tune_layers, train: Split, class_weights: str | None = None):
        from bertforge.tasks.classification.trainable import TrainableClassifier, balanced_loss_weights

        weights = balanced_loss_weights(train.targets, self.encoder) if class_weights else None
        return TrainableClassifier(model, fine_tune_layers, weights)

    def head_outputs(self, model, input_ids, input_mask, segment_ids):
        return model(input_ids, input_mask, segment_ids).logits

    def output_width(self) -> int:
        return self.encoder.num_labels

    # -- outputs -> predictions, metrics, report ----------------------------------------

    def fold(self, outputs: np.ndarray, features, long_text: LongText) -> np.ndarray:
        return combine(outputs, features, long_text.aggregate)

    def decode(self, outputs: np.ndarray, examples: Any = None) -> list[dict[str, Any]]:
        """One ``{"label", "probabilities"}`` per text (``label`` alone for regression, on the
        targets' scale)."""
        names = self.labels
        if self.kind == "regression":
            values = self.encoder.unstandardize(outputs.reshape(len(outputs), -1)[:, 0])
            return [{"label": float(value)} for value in values]
        if self.kind == "multi_label":
            return [{"label": [names[j] for j in np.flatnonzero(row > self.threshold)],
                     "probabilities": {name: round(float(p), 6) for name, p in zip(names, row)}}
                    for row in expit(outputs)]
        return [{"label": names[int(row.argmax())],
                 "probabilities": {name: round(float(p), 6) for name, p in zip(names, row)}}
                for row in softmax(outputs, axis=-1)]

    def metrics(self, targets: np.ndarray, outputs: np.ndarray, examples: Any = None) -> dict[str, Any]:
        return compute_metrics(self.kind, targets, self.encoder.unstandardize(outputs), self.labels,
                               threshold=self.threshold)

    @classmethod
    def metric_for(cls, kind: str) -> tuple[str, bool]:
        return primary_metric(kind)

    def summary(self, metrics: dict[str, Any]) -> str:
        return format_summary(metrics, self.kind)

    def write_report(self, out: Path, metrics: dict[str, Any], history: Sequence[dict] | None, title: str) -> None:
        write_report(out, metrics, history=history, labels=self.labels if self.kind != "regression" else None,
                     title=title)

    def write_predictions(self, examples: LabeledData, predictions: list[dict[str, Any]],
                          output: str | None) -> None:
        write_predictions(examples, predictions, output)

    # -- the service and export ---------------------------------------------------------

    request_fields = (
        RequestField("texts", "texts", "the texts to label", item="text"),
        RequestField("text_pairs", "optional texts", "second texts, one per text, for a model fine-tuned on pairs",
                     item="pair text"),
    )
    prediction_fields = (
        RequestField("label", "value", "the label; a list for multi-label models; a number for regression",
                     str | list[str] | float),
        RequestField("probabilities", "value", "probability of every label", dict[str, float] | None),
    )
    request_example = {"texts": ["Who wrote The Raven ?", "How far is it from Denver to Aspen ?"]}

    def info(self) -> dict[str, Any]:
        return {"task": self.kind, **({"labels": self.labels} if self.kind != "regression" else {})}

    def request_examples(self, body: dict[str, Any]) -> list[tuple[str, str | None]]:
        pairs = body.get("text_pairs")
        texts = body["texts"]
        return list(zip(texts, pairs if pairs is not None else [None] * len(texts)))

    def predict_examples(self, predictor, examples: list[tuple[str, str | None]],
                         batch_size: int) -> list[dict[str, Any]]:
        results: list[dict[str, Any] | None] = [None] * len(examples)
        # A batch may mix single texts and pairs; each kind is one model run.
        for with_pairs in (False, True):
            rows = [i for i, (_, pair) in enumerate(examples) if (pair is not None) == with_pairs]
            if not rows:
                continue
            texts = [examples[i][0] for i in rows]
            pairs = [examples[i][1] for i in rows] if with_pairs else None
            for i, prediction in zip(rows, predictor.predict(texts, pairs, batch_size=batch_size)):
                results[i] = prediction
        return results

    def exportable(self, model):
        from bertforge.tasks.classification.trainable import ExportableClassifier

        return ExportableClassifier(model)

    def export_agreement(self, expected: np.ndarray, got: np.ndarray) -> float:
        """Share of texts whose predicted label is the same (for regression: outputs within 1e-3,
        on the standardised scale the head gives, so a thousandth of the targets' spread)."""
        if len(expected) == 0:
            return 1.0
        if self.kind == "regression":
            return float(np.mean(np.abs(got - expected).max(axis=1) <= 1e-3))
        before = [row["label"] for row in self.decode(expected)]
        after = [row["label"] for row in self.decode(got)]
        return float(np.mean([a == b for a, b in zip(before, after)]))


def _refuse_label_lists(examples: LabeledData, kind: str) -> None:
    """Several labels in a row (a separator, 0/1 columns, a JSON list) for a model that
    takes one: said as such, rather than as a label training never saw."""
    row = next((i for i, label in enumerate(examples.labels) if isinstance(label, tuple)), None)
    if row is None:
        return
    names = ", ".join(examples.labels[row]) or "none"
    raise BertforgeError(f"{examples.path}: {examples.unit} {examples.lines[row]}: the label holds several names "
                         f"({names}), but a {kind} model takes one label per row; leave out --label-separator "
                         "and --label-columns (they read multi-label files), or give one label per row")
