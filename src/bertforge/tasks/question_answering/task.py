"""Extractive question answering as a task: the answer to a question is a span of its passage.

Questions and passages come from SQuAD JSON or flat rows (``data/questions``). Each
question is read with its passage in overlapping windows of pieces
(``text/question_windows.py``); the head gives every piece a start and an end logit,
and the best span over all of a passage's windows (``spans.py``) is the answer, cut
from the passage exactly as written. Where training has questions with no answer
(SQuAD v2.0), a window without the answer learns to point at ``[CLS]`` and a question
gets no answer when its no-answer score beats its best span's by more than
``null_threshold``, which fine-tuning sets to the value that scores best on the
validation questions. Without such questions (v1.1), windows that miss the answer are
left out of training, as Google's recipe does, and every question gets an answer.

>>> task = QuestionAnsweringTask()
>>> task.describe()
'question-answering, every question answered (SQuAD v1.1 style), 20 best, answers up to 30 pieces'
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np

from bertforge.data.questions import QuestionData, looks_like_questions, read_questions, read_unanswered
from bertforge.errors import BertforgeError
from bertforge.tasks.base import RequestField, Split, Task
from bertforge.tasks.question_answering.metrics import squad_scores, summary_line
from bertforge.tasks.question_answering.report import write_report
from bertforge.tasks.question_answering.spans import answers_of, best_spans
from bertforge.text.question_windows import QuestionWindows, encode_questions

KIND = "question-answering"
WORST_MISSES = 25
_CSV_FIELDS = ("id", "question", "answer", "start", "end", "score", "probability")


class QuestionAnsweringTask(Task):
    """Answers as spans of the passage; ``null_threshold`` None: every question has one."""

    kinds = (KIND, "question_answering", "qa")
    architectures = ("ForQuestionAnswering",)
    outputs_per_token = True
    examples_name = "questions"
    decoding_options = ("n_best", "max_answer_length", "null_threshold")

    def __init__(self, null_threshold: float | None = None, n_best: int = 20, max_answer_length: int = 30,
                 threshold_given: bool = False):
        self.null_threshold = null_threshold
        self.n_best = n_best
        self.max_answer_length = max_answer_length
        self.threshold_given = threshold_given  # set by the user: validation does not tune it
        self._check()

    def _check(self) -> None:
        for name in ("n_best", "max_answer_length"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise BertforgeError(f"--{name.replace('_', '-')} must be a whole number of at least 1, got {value!r}")
        if self.null_threshold is not None and not math.isfinite(float(self.null_threshold)):
            raise BertforgeError(f"--null-threshold must be a finite number, got {self.null_threshold!r}")

    @property
    def kind(self) -> str:
        return KIND

    @property
    def allows_no_answer(self) -> bool:
        """Whether a question may get no answer (the model learned SQuAD v2.0 style data)."""
        return self.null_threshold is not None

    # -- reading ------------------------------------------------------------------------

    @classmethod
    def claims(cls, source: Any) -> bool:
        return looks_like_questions(source)

    @classmethod
    def read(cls, source: Any, columns: dict[str, Any]) -> QuestionData:
        return read_questions(source, columns.get("text_column"), columns.get("text_pair_column"))

    @classmethod
    def read_unlabeled(cls, source: Any, columns: dict[str, Any]) -> QuestionData:
        # Questions need their passages, so there are no plain lines here: the keys given now, else
        # the keys training read (the reader names the keys a file has when it lacks them).
        trained = columns.get("trained_columns") or {}
        keys = (columns.get(key) or trained.get(key) for key in ("text_column", "text_pair_column"))
        return read_unanswered(source, *keys)

    @classmethod
    def fit(cls, train: QuestionData, kind: str | None = None, null_threshold: float | None = None,
            n_best: int = 20, max_answer_length: int = 30, **options: Any) -> "QuestionAnsweringTask":
        threshold = null_threshold if null_threshold is not None else (0.0 if train.has_unanswerable else None)
        return cls(threshold, n_best, max_answer_length, threshold_given=null_threshold is not None)

    @classmethod
    def windows(cls, mode: str, stride: int | None, aggregate: str) -> QuestionWindows:
        if mode not in ("truncate", "sliding-window") or aggregate != "mean":
            raise BertforgeError("question answering always reads long passages in overlapping windows; drop "
                                 "--long-text and --window-aggregate (--doc-stride sets the step)")
        return QuestionWindows(stride)

    @classmethod
    def windows_from_dict(cls, values: dict[str, Any] | None) -> QuestionWindows:
        return QuestionWindows.from_dict(values)

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any], config: dict[str, Any]) -> "QuestionAnsweringTask":
        # A reader from elsewhere has no bertforge.json: every question is answered unless
        # --null-threshold says otherwise.
        return cls(metadata.get("null_threshold"), int(metadata.get("n_best", 20)),
                   int(metadata.get("max_answer_length", 30)), bool(metadata.get("null_threshold_given")))

    def from_texts(self, texts: Sequence[str], text_pairs: Sequence[str] | None = None) -> QuestionData:
        if text_pairs is None:
            raise BertforgeError("a question answering model needs a passage for every question; give the "
                                 "questions with their contexts (text_pairs)")
        if len(text_pairs) != len(texts):
            raise BertforgeError(f"{len(texts)} questions but {len(text_pairs)} contexts; give one context per question")
        if len(texts) == 0:
            return QuestionData([], [], [], None, [], "<questions>")
        return read_unanswered([(question, context) for question, context in zip(texts, text_pairs)])

    def metadata(self) -> dict[str, Any]:
        return {"task": KIND, "null_threshold": self.null_threshold, "null_threshold_given": self.threshold_given,
                "n_best": self.n_best, "max_answer_length": self.max_answer_length}

    def hold_out(self, examples: QuestionData, fraction: float, seed: int) -> tuple[QuestionData, QuestionData]:
        # Whole passages go to one side: questions about one passage share most of their
        # input, so splitting them would score validation on passages training has read.
        passages = list(dict.fromkeys(examples.contexts))
        if len(passages) < 2:
            raise BertforgeError(f"{examples.path}: all questions are about one passage, too few to hold {fraction:g} "
                                 "of them out; pass --val or --val-fraction 0")
        order = np.random.default_rng(seed).permutation(len(passages))
        size = min(len(passages) - 1, max(1, round(len(passages) * fraction)))
        held = {passages[i] for i in order[:size]}
        keep = [i for i, context in enumerate(examples.contexts) if context not in held]
        return examples.subset(keep), examples.subset([i for i, context in enumerate(examples.contexts)
                                                       if context in held])

    def describe(self) -> str:
        answers = ("questions may have no answer (SQuAD v2.0 style)" if self.allows_no_answer
                   else "every question answered (SQuAD v1.1 style)")
        return f"{KIND}, {answers}, {self.n_best} best, answers up to {self.max_answer_length} pieces"

    def set_decoding(self, **options: Any) -> None:
        """``n_best``, ``max_answer_length`` and ``null_threshold`` for predicting (None: as saved);
        a threshold given to a model that answers every question lets it answer nothing."""
        super().set_decoding(**options)
        if options.get("null_threshold") is not None:
            self.threshold_given = True
        self._check()

    # -- examples -> features -----------------------------------------------------------

    def encode(self, name: str, examples: QuestionData, tokenizer, max_length: int, long_text: QuestionWindows,
               labeled: bool = True, unknown: str = "error") -> Split:
        answers = examples.answers if labeled else None
        features = encode_questions(tokenizer, examples.questions, examples.contexts, max_length, long_text,
                                    answers=answers, where=examples.where)
        return Split(name, examples, features, examples.reference_texts if answers is not None else None)

    def training_rows(self, split: Split) -> Split:
        """Without questions that have no answer, windows that miss the answer teach nothing
        true (they would point at ``[CLS]``): training leaves them out."""
        labels = split.features.labels
        if self.allows_no_answer or labels is None:
            return split
        keep = np.flatnonzero(labels[:, 0] > 0)
        if not len(keep):
            raise BertforgeError(f"{split.examples.path}: no window holds an answer; check answer_start, or pass a "
                                 "larger --max-seq-length")
        rows = split.features
        features = type(rows)(rows.input_ids[keep], rows.input_mask[keep], rows.segment_ids[keep], labels[keep],
                              owner=rows.row_owner[keep], examples=rows.num_examples,
                              char_offsets=rows.char_offsets[keep])
        return Split(split.name, split.examples, features, split.targets, split.dropped)

    def texts(self, examples: QuestionData) -> tuple[list[str], list[str]]:
        return list(examples.questions), list(examples.contexts)

    # -- head and loss ------------------------------------------------------------------

    def build_model(self, model_dir, config):
        from bertforge.io.load import load_pretrained
        from bertforge.model.heads import BertForQuestionAnswering

        return load_pretrained(model_dir, BertForQuestionAnswering, config=config, id2label={0: "start", 1: "end"})

    def load_model(self, model_dir):
        from bertforge.io.load import load_pretrained
        from bertforge.model.heads import BertForQuestionAnswering

        model = load_pretrained(model_dir, BertForQuestionAnswering)
        if any(name.startswith("qa_outputs.") for name in model.load_report.missing):
            raise BertforgeError(f"{model_dir}: has no trained question answering head; fine-tune it first with "
                                 "bertforge finetune --task question-answering")
        return model

    def trainable(self, model, fine_tune_layers, train: Split, class_weights: str | None = None):
        from bertforge.tasks.question_answering.trainable import TrainableReader

        if class_weights:
            raise BertforgeError("--class-weights does not apply to question answering; drop it")
        return TrainableReader(model, fine_tune_layers)

    def head_outputs(self, model, input_ids, input_mask, segment_ids):
        import torch

        out = model(input_ids, input_mask, segment_ids)
        return torch.stack([out.start_logits, out.end_logits], dim=-1)

    def output_width(self) -> int:
        return 2

    # -- outputs -> predictions, metrics, report ----------------------------------------

    def fold(self, outputs: np.ndarray, features, long_text) -> np.ndarray:
        if outputs.size == 0:
            return np.empty((features.num_examples, 1 + self.n_best, 3))
        return best_spans(outputs[..., 0], outputs[..., 1], features.char_offsets, features.row_owner,
                          features.num_examples, self.n_best, self.max_answer_length)

    def decode(self, outputs: np.ndarray, examples: QuestionData | None = None) -> list[dict[str, Any]]:
        """One ``{"answer", "start", "end", "score", "probability", "n_best"}`` per question:
        the answer's exact text in the passage and its character offsets (``""`` and None
        for no answer; then ``null_score_diff`` says by how much the no-answer score won)."""
        if examples is None:
            raise BertforgeError("answers need the passages they come from; use Predictor.predict")
        return [answers_of(spans, context, self.null_threshold) for spans, context in zip(outputs, examples.contexts)]

    def metrics(self, targets, outputs: np.ndarray, examples: QuestionData | None = None) -> dict[str, Any]:
        if examples is None:
            raise BertforgeError("question answering scores need the passages; pass the examples")
        # The best non-empty answers, and how far the no-answer score is above them: what
        # the threshold decides on, and what its search on v2.0 questions reads.
        answers = [answers_of(spans, context, None)["answer"] for spans, context in zip(outputs, examples.contexts)]
        diffs = [float(spans[0, 0] - spans[1, 0]) if np.isfinite(spans[1, 0]) else math.inf for spans in outputs]
        predictions = answers if self.null_threshold is None else [
            "" if diff > self.null_threshold else answer for answer, diff in zip(answers, diffs)]
        version = "2.0" if self.allows_no_answer or any(not refs for refs in targets) else "1.1"
        extra = {"answers": answers, "no_answer_diffs": diffs} if version == "2.0" else {}
        result = squad_scores(targets, predictions, version, worst=WORST_MISSES, **extra)
        result["null_threshold"] = self.null_threshold
        for error in result.get("errors", []):
            error["text"] = examples.questions[error["question"]]
            error["id"] = examples.ids[error["question"]]
        return result

    def calibrate(self, validation: dict[str, Any]) -> None:
        """The no-answer threshold that scored the best F1 on the validation questions, unless
        one was given."""
        if self.allows_no_answer and not self.threshold_given and validation.get("best_f1_threshold") is not None:
            self.null_threshold = float(validation["best_f1_threshold"])

    @classmethod
    def metric_for(cls, kind: str) -> tuple[str, bool]:
        return "f1", True

    def summary(self, metrics: dict[str, Any]) -> str:
        return summary_line(metrics)

    def write_report(self, out: Path, metrics: dict[str, Any], history: Sequence[dict] | None, title: str) -> None:
        write_report(out, metrics, list(history) if history else None, title)

    def check_output(self, output: str | None) -> None:
        if output is not None and not output.lower().endswith((".jsonl", ".json", ".ndjson", ".csv")):
            raise BertforgeError(f"{output}: answers are written as JSONL (with the n best) or CSV; name the "
                                 "output *.jsonl or *.csv")

    def write_predictions(self, examples: QuestionData, predictions: list[dict[str, Any]], output: str | None) -> None:
        """JSONL, one question a line (``id``, ``question``, the answer, its offsets, score and
        ``n_best``), or CSV of the answers alone."""
        self.check_output(output)
        records = [{"id": identifier, "question": question, **prediction}
                   for identifier, question, prediction in zip(examples.ids, examples.questions, predictions)]
        if output is not None and output.lower().endswith(".csv"):
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=_CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
            writer.writeheader()
            writer.writerows(records)
            text = buffer.getvalue()
        else:
            text = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
        if output is None:
            print(text, end="")
            return
        from bertforge.files import replacing

        with replacing(Path(output)) as temporary:
            temporary.write_text(text, encoding="utf-8")

    # -- the service and export ---------------------------------------------------------

    request_fields = (
        RequestField("questions", "texts", "the questions", item="question"),
        RequestField("contexts", "texts", "the passage each question is about, one per question", item="context"),
    )
    prediction_fields = (
        RequestField("answer", "value", "the answer, exactly as the passage writes it; empty for no answer", str),
        RequestField("start", "value", "the answer's first character in the passage (None for no answer)", int | None),
        RequestField("end", "value", "one past the answer's last character (None for no answer)", int | None),
        RequestField("score", "value", "start + end logit of the answer", float | None),
        RequestField("probability", "value", "the answer's share among the n best", float | None),
        RequestField("null_score_diff", "value", "no-answer score minus the best answer's (models that may "
                                                 "answer nothing)", float | None),
        RequestField("n_best", "value", "the best answers: text, start, end, score, probability",
                     list[dict[str, Any]]),
    )
    request_example: ClassVar[dict[str, Any]] = {
        "questions": ["Which team won Super Bowl 50?"],
        "contexts": ["The American Football Conference (AFC) champion Denver Broncos defeated the National "
                     "Football Conference (NFC) champion Carolina Panthers 24-10 to earn their third Super Bowl title."]}

    def info(self) -> dict[str, Any]:
        return {"task": KIND, "no_answer": self.allows_no_answer, "null_threshold": self.null_threshold,
                "n_best": self.n_best, "max_answer_length": self.max_answer_length}

    def request_examples(self, body: dict[str, Any]) -> list[tuple[str, str]]:
        return list(zip(body["questions"], body["contexts"]))

    def predict_examples(self, predictor, examples: list[tuple[str, str]], batch_size: int) -> list[dict[str, Any]]:
        return predictor.predict([q for q, _ in examples], [c for _, c in examples], batch_size=batch_size)

    def exportable(self, model):
        from bertforge.tasks.question_answering.trainable import ExportableReader

        return ExportableReader(model)

    def output_difference(self, expected: np.ndarray, got: np.ndarray) -> float:
        """The largest difference of a score: each question's no-answer score and its best
        span's, that span's score looked up among the other side's spans (infinite when
        the other side does not have it among its n best)."""
        if len(expected) == 0:
            return 0.0
        worst = float(np.max(np.abs(expected[:, 0, 0] - got[:, 0, 0])))
        for mine, theirs in zip(expected, got):
            if not np.isfinite(mine[1, 0]):
                continue
            same = np.flatnonzero((theirs[1:, 1] == mine[1, 1]) & (theirs[1:, 2] == mine[1, 2]))
            worst = max(worst, float(abs(theirs[1 + same[0], 0] - mine[1, 0])) if len(same) else math.inf)
        return worst

    def export_agreement(self, expected: np.ndarray, got: np.ndarray) -> float:
        """Share of questions whose answer (span, or no answer) is the same."""
        if len(expected) == 0:
            return 1.0
        before = [answers_of(spans, "", self.null_threshold) for spans in expected]
        after = [answers_of(spans, "", self.null_threshold) for spans in got]
        return float(np.mean([(a["start"], a["end"]) == (b["start"], b["end"]) for a, b in zip(before, after)]))

