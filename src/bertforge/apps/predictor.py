"""A fine-tuned model directory, ready to predict and evaluate, whatever its task.

``bertforge finetune`` writes a standard model directory plus ``bertforge.json``
(task, labels, max length, columns). :class:`Predictor` opens it again, finds its
task (``tasks/``) and turns texts into predictions, or a labeled file into metrics.
A folder written by ``bertforge export`` runs through ONNX Runtime instead.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

# Nothing here imports torch at module level: a folder written by bertforge export runs with
# ONNX Runtime alone (torch costs 2.5 s to import, and a deployment may not install it).
from bertforge.apps.inference import default_device, run_batched
from bertforge.errors import BertforgeError
from bertforge.io.model_paths import resolve_model_dir
from bertforge.io.onnx import ONNX_FILE, OnnxClassifierModel
from bertforge.model.config import check_vocabulary
from bertforge.tasks import Task, fine_tuned, task_for_model
from bertforge.text.features import Features
from bertforge.text.long_text import LongText
from bertforge.text.tokenizer import Tokenizer

BATCH_SIZE = 128
ONNX_BATCH_SIZE = 32


class Predictor:
    """Predict with, and evaluate, a model directory written by ``bertforge finetune``,
    or a folder written by ``bertforge export`` (run by ONNX Runtime)::

        clf = Predictor.load("runs/trec")
        clf.predict(["Who wrote The Raven ?"])[0]["label"]          # 'HUM'
        clf.evaluate("trec/test.csv")["accuracy"]                     # 0.966

    Texts longer than ``max_seq_length`` are read as ``long_text`` says, by default
    as the model was fine-tuned (see :mod:`bertforge.text.long_text`).
    """

    def __init__(self, model, tokenizer: Tokenizer, task: Task, max_seq_length: int = 256,
                 columns: dict | None = None, device: str | None = None, metadata: dict | None = None,
                 long_text: LongText | None = None):
        # An exported folder runs through ONNX Runtime on the CPU; a PyTorch model goes to the device.
        if isinstance(model, OnnxClassifierModel):
            self.device, self.model = "cpu", model
        else:
            self.device = default_device(device)
            self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.task = task
        self.max_seq_length = max_seq_length
        self.columns = columns or {}
        self.metadata = metadata or {}
        # How texts longer than max_seq_length are read: as the model was trained, unless told otherwise.
        # The command line says it as a LongText; the task reads it as its own setting.
        if isinstance(long_text, LongText):
            long_text = task.windows(long_text.mode, long_text.stride, long_text.aggregate)
        self.long_text = long_text or task.windows_from_dict(self.metadata.get("long_text"))

    @property
    def encoder(self):
        """The label encoder of a classification model (what ``bertforge.json`` saved)."""
        return getattr(self.task, "encoder", None)

    @property
    def threshold(self) -> float:
        """Multi-label models: a label is predicted above this probability (0.5 unless set)."""
        return getattr(self.task, "threshold", 0.5)

    @threshold.setter
    def threshold(self, value: float) -> None:
        self.task.threshold = value

    @classmethod
    def load(cls, path: str | Path, device: str | None = None, long_text: LongText | None = None) -> "Predictor":
        """Open a fine-tuned model directory, or an exported one; ``long_text`` overrides the
        way the model was trained to read long texts."""
        directory = resolve_model_dir(path)
        metadata, config = model_files(directory)
        exported = (directory / ONNX_FILE).is_file()  # written by bertforge export
        if exported and not fine_tuned(metadata, {}):
            raise BertforgeError(f"{directory}: has {ONNX_FILE} but no bertforge.json with its labels; "
                                 "export the model again with bertforge export")
        task = task_for_model(metadata, config)
        model = OnnxClassifierModel(directory / ONNX_FILE) if exported else task.load_model(directory)
        width = model.num_labels if exported else getattr(model, "num_labels", None)
        if width is not None and task.output_width() != width:
            raise BertforgeError(
                f"{directory}: the label list has {task.output_width()} entries but the model outputs "
                f"{width}; the folder mixes files of two models"
            )
        tokenizer = Tokenizer.from_pretrained(directory)
        if not exported:
            check_vocabulary(tokenizer.vocab_size, model.config, str(directory))
        return cls(model, tokenizer, task, max_seq_length=int(metadata.get("max_seq_length", 256)),
                   columns=metadata.get("columns"), device=device, metadata=metadata, long_text=long_text)

    # -- predicting ---------------------------------------------------------------------

    def scores(self, texts: Sequence[str], text_pairs: Sequence[str] | None = None,
               batch_size: int | None = None, progress: bool = False) -> np.ndarray:
        """Raw model outputs (logits; for regression the head's standardised values, which
        :meth:`describe` puts back on the targets' scale), one row per text.

        ``batch_size`` defaults to what runs fastest on a CPU: 128 rows for PyTorch
        (it drops the padding), 32 for ONNX Runtime (it computes on the padding)."""
        return self._outputs(self.task.from_texts(texts, text_pairs), batch_size, progress)

    def _outputs(self, examples, batch_size: int | None, progress: bool) -> np.ndarray:
        if len(examples) == 0:
            shape = (0, 0) if self.task.outputs_per_token else (0,)
            return np.empty((*shape, self.task.output_width()), dtype=np.float32)
        rows = self.task.encode("predict", examples, self.tokenizer, self.max_seq_length, self.long_text,
                                labeled=False).features
        return self.run(rows, batch_size, progress)

    def run(self, rows: Features, batch_size: int | None = None, progress: bool = False) -> np.ndarray:
        """The head's outputs per example for encoded rows (the windows of a text folded)."""
        exported = isinstance(self.model, OnnxClassifierModel)
        batch_size = batch_size or (ONNX_BATCH_SIZE if exported else BATCH_SIZE)
        model, task = self.model, self.task
        run = model if exported else (lambda i, m, s: task.head_outputs(model, i, m, s))
        raw = run_batched(run, rows.input_ids, rows.input_mask, rows.segment_ids, batch_size=batch_size,
                          device=None if exported else self.device, progress=progress,
                          per_token=task.outputs_per_token)
        return task.fold(raw, rows, self.long_text)

    def predict(self, texts: Sequence[str], text_pairs: Sequence[str] | None = None,
                batch_size: int | None = None, progress: bool = False) -> list[dict[str, Any]]:
        """One prediction per text, as the task describes it (for classification:
        ``label`` and ``probabilities`` by label)."""
        return self.predict_examples(self.task.from_texts(texts, text_pairs), batch_size, progress)

    def predict_examples(self, examples, batch_size: int | None = None, progress: bool = False) -> list[dict[str, Any]]:
        """One prediction per example the task read (``task.read_unlabeled``, ``task.from_texts``)."""
        return self.task.decode(self._outputs(examples, batch_size, progress), examples)

    def describe(self, scores: np.ndarray) -> list[dict[str, Any]]:
        """Raw outputs per text (:meth:`scores`) as the task's predictions."""
        return self.task.decode(scores)

    def predict_file(self, source: str, output: str | None = None, text_column: str | None = None,
                     text_pair_column: str | None = None, batch_size: int | None = None,
                     progress: bool = True) -> int:
        """Predict every text of ``source`` (a file or ``-`` for stdin) into ``output``
        (CSV or JSONL by its extension; stdout as JSONL when omitted). Returns the row count.

        The columns given here are read; else those training read, where ``source`` is a
        table that has them (plain lines are one text each whatever training read)."""
        self.task.check_output(output)
        refuse_same_file(source, output)
        # Kept apart, not merged: a reader tells a table from plain lines by the columns given
        # now, and uses training's only where the table has them.
        data = self.task.read_unlabeled(source, {
            "text_column": text_column, "text_pair_column": text_pair_column,
            "trained_columns": {key: self.columns.get(key) for key in ("text_column", "text_pair_column")}})
        rows = self.predict_examples(data, batch_size=batch_size, progress=progress and output is not None)
        self.task.write_predictions(data, rows, output)
        return len(rows)

    # -- evaluating ---------------------------------------------------------------------

    def evaluate(self, path, unknown: str = "error", batch_size: int | None = None,
                 **columns) -> dict[str, Any]:
        """Metrics of the model on a labeled file (labels unseen in training: error or drop).

        The file is read as training read its files (``bertforge.json``'s columns); ``columns``
        (``text_column``, ``label_column``, ``label_columns``, ``label_separator``, ``delimiter``...)
        override that for a file laid out differently."""
        given = {k: v for k, v in columns.items() if v}
        saved = {k: v for k, v in self.columns.items() if v is not None}
        # One label layout at a time: a label column (or a separator, which splits one) given now
        # replaces the 0/1 label columns training read, and 0/1 columns given now replace its label column.
        replaced = {"label_column": ("label_columns",), "label_separator": ("label_columns",),
                    "label_columns": ("label_column",)}
        for key in given:
            for old in replaced.get(key, ()):
                saved.pop(old, None)
        columns = {**saved, **given}
        split = self.task.encode("evaluate", self.task.read(path, columns), self.tokenizer, self.max_seq_length,
                                 self.long_text, unknown=unknown)
        metrics = self.task.metrics(split.targets, self.run(split.features, batch_size), split.examples)
        metrics["dropped_rows"] = split.dropped
        return metrics


#: The name a classification user knows it by.
Classifier = Predictor


def refuse_same_file(source: str, output: str | None) -> None:
    """Predictions never replace the file they are made from (its labels and other columns).

    >>> import tempfile
    >>> texts = Path(tempfile.mkdtemp()) / "texts.csv"
    >>> _ = texts.write_text("text\\nhello\\n")
    >>> try:
    ...     refuse_same_file(str(texts), str(texts))
    ... except BertforgeError as error:
    ...     print(str(error).split(": ", 1)[1])
    is the input file too (--output); write the predictions to another file, or its texts and labels are lost
    """
    if output is None or source == "-" or not Path(output).exists() or not Path(source).exists():
        return
    if Path(output).resolve() == Path(source).resolve() or os.path.samefile(output, source):
        raise BertforgeError(f"{output}: is the input file too (--output); write the predictions to another file, "
                             "or its texts and labels are lost")


def model_files(directory: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """A model directory's ``bertforge.json`` and ``config.json`` (empty where absent):
    what says which task, if any, fine-tuned it."""
    return (_read_json(directory / "bertforge.json", "re-export the model"),
            _read_json(directory / "config.json", "re-save the model"))


def _read_json(path: Path, fix: str) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BertforgeError(f"{path}: not valid JSON ({error}); {fix}") from None
    return values if isinstance(values, dict) else {}


__all__ = ["Classifier", "Predictor", "model_files"]
