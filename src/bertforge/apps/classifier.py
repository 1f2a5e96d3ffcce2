"""A fine-tuned classifier directory, ready to predict and evaluate.

``bertforge finetune`` writes a standard model directory plus ``bertforge.json``
(task, label encoder, max length, columns). :class:`Classifier` opens it again and
turns texts into labels and probabilities, or a labeled file into metrics.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from scipy.special import expit, softmax

from bertforge.io.model_dir import load_pretrained, resolve_model_dir
from bertforge.data.labeled import LabelEncoder, LabeledData, read_labeled, read_texts
from bertforge.errors import BertforgeError
from bertforge.evaluation.metrics import compute_metrics
from bertforge.apps.inference import run_batched
from bertforge.text.long_text import LongText, combine, encode_windows
from bertforge.model.bert import BertForSequenceClassification, check_vocabulary
from bertforge.io.onnx import ONNX_FILE, OnnxClassifierModel
from bertforge.text.tokenizer import Tokenizer

BATCH_SIZE = 128
ONNX_BATCH_SIZE = 32


class Classifier:
    """Predict with, and evaluate, a model directory written by ``bertforge finetune``,
    or a folder written by ``bertforge export`` (run by ONNX Runtime)::

        clf = Classifier.load("runs/trec")
        clf.predict(["Who wrote The Raven ?"])[0]["label"]          # 'HUM'
        clf.evaluate("trec/test.csv")["accuracy"]                     # 0.966

    Texts longer than ``max_seq_length`` are read as ``long_text`` says, by default
    as the model was fine-tuned (see :mod:`bertforge.text.long_text`).
    """

    def __init__(self, model: BertForSequenceClassification | OnnxClassifierModel, tokenizer: Tokenizer,
                 encoder: LabelEncoder, max_seq_length: int = 256, columns: dict | None = None,
                 device: str | None = None, threshold: float = 0.5, metadata: dict | None = None,
                 long_text: LongText | None = None):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        # An exported folder runs through ONNX Runtime on the CPU; a PyTorch model goes to the device.
        self.model = model if isinstance(model, OnnxClassifierModel) else model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.encoder = encoder
        self.max_seq_length = max_seq_length
        self.columns = columns or {}
        self.threshold = threshold
        self.metadata = metadata or {}
        # How texts longer than max_seq_length are read: as the model was trained, unless told otherwise.
        self.long_text = long_text or LongText.from_dict(self.metadata.get("long_text"))

    @classmethod
    def load(cls, path: str | Path, device: str | None = None, long_text: LongText | None = None) -> "Classifier":
        directory = resolve_model_dir(path)
        metadata_path = directory / "bertforge.json"
        metadata: dict[str, Any] = {}
        if metadata_path.is_file():
            try:
                metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as error:
                raise BertforgeError(f"{metadata_path}: not valid JSON ({error}); re-export the model") from None
        if (directory / ONNX_FILE).is_file():  # written by bertforge export
            model = OnnxClassifierModel(directory / ONNX_FILE)
            if "label_encoder" not in metadata:
                raise BertforgeError(f"{directory}: has {ONNX_FILE} but no bertforge.json with its labels; "
                                     "export the model again with bertforge export")
        else:
            model = load_pretrained(directory, BertForSequenceClassification)
            if any(name.startswith("classifier.") for name in model.load_report.missing):
                raise BertforgeError(
                    f"{directory}: has no trained classifier head; fine-tune it first with bertforge finetune"
                )
        if "label_encoder" in metadata:
            encoder = LabelEncoder.from_dict(metadata["label_encoder"])
        else:  # a classifier from elsewhere: its config.json names the labels
            encoder = LabelEncoder.from_dict(json.loads((directory / "config.json").read_text(encoding="utf-8")))
        if model.num_labels is not None and encoder.num_labels != model.num_labels:
            raise BertforgeError(
                f"{directory}: the label list has {encoder.num_labels} entries but the model outputs "
                f"{model.num_labels}; the folder mixes files of two models"
            )
        tokenizer = Tokenizer.from_pretrained(directory)
        if not isinstance(model, OnnxClassifierModel):
            check_vocabulary(tokenizer.vocab_size, model.config, str(directory))
        return cls(model, tokenizer, encoder,
                   max_seq_length=int(metadata.get("max_seq_length", 256)), columns=metadata.get("columns"),
                   device=device, metadata=metadata, long_text=long_text)

    # -- predicting ---------------------------------------------------------------------

    def scores(self, texts: Sequence[str], text_pairs: Sequence[str] | None = None,
               batch_size: int | None = None, progress: bool = False) -> np.ndarray:
        """Raw model outputs (logits, or values for regression), one row per text.

        ``batch_size`` defaults to what runs fastest on a CPU: 128 rows for PyTorch
        (it drops the padding), 32 for ONNX Runtime (it computes on the padding)."""
        batch_size = batch_size or (ONNX_BATCH_SIZE if isinstance(self.model, OnnxClassifierModel) else BATCH_SIZE)
        if len(texts) == 0:
            return np.empty((0, self.encoder.num_labels), dtype=np.float32)
        rows = encode_windows(self.tokenizer, list(texts), None if text_pairs is None else list(text_pairs),
                              self.max_seq_length, self.long_text)
        model = self.model
        if isinstance(model, OnnxClassifierModel):
            raw = run_batched(model, rows.input_ids, rows.input_mask, rows.segment_ids,
                              batch_size=batch_size, device=None, progress=progress)
        else:
            raw = run_batched(lambda i, m, s: model(i, m, s).logits, rows.input_ids, rows.input_mask,
                              rows.segment_ids, batch_size=batch_size, device=self.device, progress=progress)
        return combine(raw, rows, self.long_text.aggregate)

    def predict(self, texts: Sequence[str], text_pairs: Sequence[str] | None = None,
                batch_size: int | None = None, progress: bool = False) -> list[dict[str, Any]]:
        """One dict per text: ``label`` and, for classification, ``probabilities`` by label."""
        return self.describe(self.scores(texts, text_pairs, batch_size, progress))

    def describe(self, scores: np.ndarray) -> list[dict[str, Any]]:
        task, names = self.encoder.task, list(self.encoder.id2label.values())
        if task == "regression":
            return [{"label": float(value)} for value in scores.reshape(len(scores), -1)[:, 0]]
        if task == "multi_label":
            probabilities = expit(scores)
            return [{"label": [names[j] for j in np.flatnonzero(row > self.threshold)],
                     "probabilities": {name: round(float(p), 6) for name, p in zip(names, row)}}
                    for row in probabilities]
        probabilities = softmax(scores, axis=-1)
        return [{"label": names[int(row.argmax())],
                 "probabilities": {name: round(float(p), 6) for name, p in zip(names, row)}}
                for row in probabilities]

    def predict_file(self, source: str, output: str | None = None, text_column: str | None = None,
                     text_pair_column: str | None = None, batch_size: int | None = None,
                     progress: bool = True) -> int:
        """Predict every text of ``source`` (a file or ``-`` for stdin) into ``output``
        (CSV or JSONL by its extension; stdout as JSONL when omitted). Returns the row count."""
        data = read_texts(sys.stdin if source == "-" else source,
                          text_column=text_column or self.columns.get("text_column"),
                          text_pair_column=text_pair_column or self.columns.get("text_pair_column"))
        rows = self.predict(data.texts, data.text_pairs, batch_size=batch_size, progress=progress and output is not None)
        write_predictions(data, rows, output)
        return len(rows)

    # -- evaluating ---------------------------------------------------------------------

    def evaluate(self, path: str, unknown: str = "error", batch_size: int | None = None,
                 **columns) -> dict[str, Any]:
        """Metrics of the model on a labeled file (labels unseen in training: error or drop)."""
        columns = {**{k: v for k, v in self.columns.items() if v is not None}, **{k: v for k, v in columns.items() if v}}
        data = read_labeled(path, **columns)
        encoded = self.encoder.encode(data, unknown=unknown)
        if encoded.dropped:
            data = data.subset(encoded.kept)
        scores = self.scores(data.texts, data.text_pairs, batch_size=batch_size)
        metrics = compute_metrics(self.encoder.task, encoded.targets, scores, list(self.encoder.id2label.values()),
                                  threshold=self.threshold)
        metrics["dropped_rows"] = int(encoded.dropped)
        return metrics


def write_predictions(data: LabeledData, rows: list[dict], output: str | None) -> None:
    """CSV (``text,label,p_<label>...``) or JSONL, chosen by the output's extension."""
    as_csv = output is not None and output.lower().endswith((".csv", ".tsv"))
    handle = sys.stdout if output is None else open(output, "w", encoding="utf-8", newline="")
    try:
        if as_csv:
            writer = csv.writer(handle, delimiter="\t" if output.lower().endswith(".tsv") else ",")
            names = list(rows[0].get("probabilities", {})) if rows else []
            writer.writerow(["text", "label"] + [f"p_{name}" for name in names])
            for text, row in zip(data.texts, rows):
                label = row["label"]
                label = "|".join(label) if isinstance(label, list) else label
                writer.writerow([text, label] + [row["probabilities"][name] for name in names])
        else:
            for text, row in zip(data.texts, rows):
                handle.write(json.dumps({"text": text, **row}, ensure_ascii=False) + "\n")
    finally:
        if handle is not sys.stdout:
            handle.close()


__all__ = ["Classifier", "write_predictions"]
