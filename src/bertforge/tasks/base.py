"""The task seam: what a fine-tuning task tells the jobs, the predictor, the service and export.

A task is one folder under ``tasks/`` with one :class:`Task` subclass. The jobs
(``apps/finetune.py``, ``apps/predictor.py``), the service and export call only the
methods below and never name a task; a new task (word tagging, question answering)
plugs in by providing them and registering in ``tasks/__init__.py``.

The flow a task takes part in::

    source --read--> examples --fit--> Task (its label space)
    examples --encode--> Split (examples, Features, targets)
    Task.build_model + Task.trainable --> the module the training loop runs (its output has .loss)
    model outputs per row --fold--> per example --decode--> predictions; --metrics--> scores; --report-->
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np

from bertforge.errors import BertforgeError
from bertforge.text.features import Features


@dataclass
class Split:
    """One split of a task's examples, encoded: what training and evaluation read.

    ``features`` holds one row per text or window (with the rows' training targets in
    ``features.labels``); ``targets`` are the examples' own targets, what metrics compare
    with the folded outputs.
    """

    name: str
    examples: Any
    features: Features
    targets: np.ndarray | None
    dropped: int = 0  # examples left out because their labels were never seen in training


@dataclass(frozen=True)
class RequestField:
    """One field of the service's request or prediction body: its JSON type and meaning.

    ``kind`` is one of ``"texts"`` (a list of non-blank strings, one per item, checked
    against the server's limits), ``"optional texts"`` (the same, may be left out) or
    ``"value"`` (anything JSON, described by ``annotation``)."""

    name: str
    kind: str
    description: str
    annotation: Any = None
    item: str = "item"  # what one entry is called in messages ("text", "pair text")


class Task(ABC):
    """A fine-tuning task. One object per run or per model directory: it carries what
    training learned about the labels (:meth:`fit`, saved by :meth:`metadata`, read back
    by :meth:`from_metadata`)."""

    #: The values of ``--task`` and of ``bertforge.json``'s ``task`` that mean this task.
    kinds: ClassVar[tuple[str, ...]] = ()
    #: How ``config.json``'s ``architectures`` of a model with this task's head end
    #: (e.g. ``ForSequenceClassification``), for model directories from elsewhere.
    architectures: ClassVar[tuple[str, ...]] = ()
    #: Whether the head gives outputs per token ``(rows, length, width)`` rather than per row.
    outputs_per_token: ClassVar[bool] = False
    #: What one example is called in messages ("rows", "sentences").
    examples_name: ClassVar[str] = "rows"

    # -- reading ------------------------------------------------------------------------

    @classmethod
    def claims(cls, source: Any) -> bool:
        """Whether a training source without ``--task`` is this task's data (a cheap look at
        its start); the default task need not claim anything."""
        return False

    @classmethod
    @abstractmethod
    def read(cls, source: Any, columns: dict[str, Any]) -> Any:
        """Labeled examples from a file path, ``-``/stdin, a DataFrame or in-memory rows."""

    @classmethod
    @abstractmethod
    def read_unlabeled(cls, source: Any, columns: dict[str, Any]) -> Any:
        """Examples to predict (no labels needed) from the same kinds of source. ``columns``
        holds the columns given now and, under ``trained_columns``, those training read: for a
        table that has them, never to make plain lines a table."""

    @classmethod
    @abstractmethod
    def fit(cls, train: Any, kind: str | None = None, **options: Any) -> "Task":
        """The task with its label space learned from the training examples only."""

    @classmethod
    def saved_in(cls, metadata: dict[str, Any], config: dict[str, Any]) -> bool:
        """Whether a model directory (``bertforge.json``, ``config.json``) holds this task's head:
        its ``task`` is one of :attr:`kinds`, or its ``architectures`` end as :attr:`architectures`."""
        return metadata.get("task") in cls.kinds or any(
            str(name).endswith(cls.architectures) for name in config.get("architectures") or ())

    @classmethod
    @abstractmethod
    def from_metadata(cls, metadata: dict[str, Any], config: dict[str, Any]) -> "Task":
        """The task a model directory was fine-tuned for (``bertforge.json``, ``config.json``)."""

    @abstractmethod
    def from_texts(self, texts: Sequence[str], text_pairs: Sequence[str] | None = None) -> Any:
        """Unlabeled examples from texts given in memory (a request, a Python call)."""

    @abstractmethod
    def metadata(self) -> dict[str, Any]:
        """What ``bertforge.json`` records so :meth:`from_metadata` can rebuild this task."""

    @abstractmethod
    def hold_out(self, examples: Any, fraction: float, seed: int) -> tuple[Any, Any]:
        """``(train, validation)``: a share of the training examples kept aside, when no
        validation file is given (stratified by label where labels allow)."""

    @property
    @abstractmethod
    def kind(self) -> str:
        """Which of :attr:`kinds` this object is (what ``bertforge.json`` records as ``task``)."""

    #: The settings of :meth:`decode` a user may change on a loaded model (``--n-best``...).
    decoding_options: ClassVar[tuple[str, ...]] = ()

    def set_decoding(self, **options: Any) -> None:
        """Change how outputs become predictions (None leaves a setting as saved); an option
        this task does not take is an error."""
        for name, value in options.items():
            if value is None:
                continue
            if name not in self.decoding_options:
                raise BertforgeError(f"--{name.replace('_', '-')} does not apply to a {self.kind} model")
            setattr(self, name, value)

    @property
    def labels(self) -> list[str] | None:
        """The names of the task's labels (classes, tags), when it has a fixed set."""
        return None

    @abstractmethod
    def describe(self) -> str:
        """One line for the user, e.g. ``single_label, 6 classes``."""

    def guess_note(self) -> str | None:
        """The line that says how :meth:`fit` told the kind from the training data when no kind
        was given, where the guess is worth saying (numbers read as a score, or as classes) and
        how to override it; None for the plain "detected" line."""
        return None

    # -- examples -> features -----------------------------------------------------------

    @classmethod
    @abstractmethod
    def windows(cls, mode: str, stride: int | None, aggregate: str) -> Any:
        """How this task reads examples longer than the model's window, from the
        ``--long-text``, ``--stride`` and ``--window-aggregate`` settings (checked here)."""

    @classmethod
    @abstractmethod
    def windows_from_dict(cls, values: dict[str, Any] | None) -> Any:
        """That setting back from what ``bertforge.json`` recorded (its ``to_dict()``)."""

    @abstractmethod
    def encode(self, name: str, examples: Any, tokenizer, max_length: int, long_text,
               labeled: bool = True, unknown: str = "error") -> Split:
        """Examples -> model rows; with ``labeled``, their targets (labels training never
        saw: ``unknown="error"`` fails naming the row, ``"drop"`` leaves them out)."""

    def training_rows(self, split: Split) -> Split:
        """The rows of the training split the model learns from (all of them, unless a task
        leaves some out)."""
        return split

    @abstractmethod
    def texts(self, examples: Any) -> tuple[list[str], list[str] | None]:
        """The texts (and second texts) the examples hold: what the predictor runs on."""

    # -- head and loss ------------------------------------------------------------------

    @abstractmethod
    def build_model(self, model_dir: str | Path, config):
        """The pretrained encoder with this task's head, ready to fine-tune."""

    @abstractmethod
    def load_model(self, model_dir: str | Path):
        """A fine-tuned model directory's network, head included (fails in one line without it)."""

    @abstractmethod
    def trainable(self, model, fine_tune_layers, train: Split, class_weights: str | None = None):
        """The module the training loop runs: ``forward(**batch)`` returns an output with
        ``.loss``; ``outputs(input_ids, input_mask, segment_ids, frozen_tokens=None)`` the
        head's raw outputs per row; ``layerwise_groups(learning_rate, decay, weight_decay)``
        optimizer groups whose rate shrinks layer by layer down from the head; ``.model``
        the network to save; ``.encoder`` its ``BertLayer`` (for the frozen-layer cache)."""

    @abstractmethod
    def head_outputs(self, model, input_ids, input_mask, segment_ids):
        """The head's raw outputs per row from a loaded model (:meth:`load_model`)."""

    @abstractmethod
    def output_width(self) -> int:
        """How many numbers the head gives per row (checked against a loaded model)."""

    # -- outputs -> predictions, metrics, report ----------------------------------------

    @abstractmethod
    def fold(self, outputs: np.ndarray, features: Features, long_text) -> np.ndarray:
        """Per-row outputs -> one per example (the windows of a long text combined)."""

    @abstractmethod
    def decode(self, outputs: np.ndarray, examples: Any = None) -> list[dict[str, Any]]:
        """Per-example outputs -> one JSON-ready prediction each."""

    @abstractmethod
    def metrics(self, targets: np.ndarray, outputs: np.ndarray, examples: Any = None) -> dict[str, Any]:
        """Scores of per-example outputs against the targets (``examples``, when given, for
        what a report shows of the errors)."""

    def calibrate(self, validation: dict[str, Any]) -> None:
        """Set what the validation scores tune (a decision threshold) before the test split
        is scored and the model saved; most tasks tune nothing."""

    @classmethod
    @abstractmethod
    def metric_for(cls, kind: str) -> tuple[str, bool]:
        """The metric early stopping and best-epoch selection follow for ``kind``, and whether
        higher is better."""

    @property
    def primary_metric(self) -> tuple[str, bool]:
        """This task's :meth:`metric_for` its own kind."""
        return self.metric_for(self.kind)

    @abstractmethod
    def summary(self, metrics: dict[str, Any]) -> str:
        """The metrics in one line for the terminal."""

    @abstractmethod
    def write_report(self, out: Path, metrics: dict[str, Any], history: Sequence[dict] | None, title: str) -> None:
        """``report.md`` (and its plots) in ``out``."""

    def check_output(self, output: str | None) -> None:
        """Fail before any work when :meth:`write_predictions` cannot write ``output``."""

    @abstractmethod
    def write_predictions(self, examples: Any, predictions: list[dict[str, Any]], output: str | None) -> None:
        """Predictions as CSV or JSONL (by the output's extension; stdout as JSONL when None)."""

    # -- the service and export ---------------------------------------------------------

    #: The fields of a ``POST /predict`` body, and of one prediction in the answer. The first
    #: request field says how many items a request holds; the others give one entry per item.
    request_fields: ClassVar[tuple[RequestField, ...]] = ()
    prediction_fields: ClassVar[tuple[RequestField, ...]] = ()
    request_example: ClassVar[dict[str, Any]] = {}

    @abstractmethod
    def info(self) -> dict[str, Any]:
        """What the service's ``/health`` shows of the task (its kind, its labels)."""

    @abstractmethod
    def request_examples(self, body: dict[str, Any]) -> list[Any]:
        """A checked request body -> one example per item (see :attr:`request_fields`)."""

    @abstractmethod
    def predict_examples(self, predictor, examples: list[Any], batch_size: int) -> list[dict[str, Any]]:
        """Predictions for the items of one service batch (a batch may mix kinds of item)."""

    @abstractmethod
    def exportable(self, model):
        """The network as a graph-friendly module for ONNX: ``(ids, mask, segments) -> outputs``."""

    def output_difference(self, expected: np.ndarray, got: np.ndarray) -> float:
        """The largest difference between two runs' outputs per example (the export check's
        logit difference)."""
        return float(np.abs(got - expected).max()) if len(expected) else 0.0

    @abstractmethod
    def export_agreement(self, expected: np.ndarray, got: np.ndarray) -> float:
        """The share of predictions an exported graph gets the same as the PyTorch model."""
