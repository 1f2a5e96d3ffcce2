"""Token classification as a task: a tag per word (named entities, parts of speech, PII).

Tags are learned from the training file alone, in its scheme (IOB1 is learned as IOB2,
whose every entity starts with ``B-``), and saved with the model. Words are split into
word pieces, the tag goes on the first piece (``text/word_windows.py``), sentences
longer than the window are read in overlapping windows of words, and predictions are
read back per word, repaired so that no entity starts inside itself, then turned into
entities with character offsets into the text.

>>> task = TokenClassificationTask(["O", "B-PER", "I-PER"], "iob2")
>>> task.describe()
'token-classification, 3 tags (iob2), 1 entity type'
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np
from scipy.special import softmax

from bertforge.constants import IGNORE_INDEX
from bertforge.data.labeled.messages import show
from bertforge.data.tagged import TaggedData, looks_tagged, read_tagged, read_untagged
from bertforge.data.tagged.schemes import OUTSIDE, convert, entities, repair, split_tag
from bertforge.errors import BertforgeError
from bertforge.tasks.base import RequestField, Split, Task
from bertforge.tasks.token_classification.metrics import entity_metrics, summary_line
from bertforge.tasks.token_classification.report import write_report
from bertforge.text.word_windows import WordWindows, encode_words, fold_words

KIND = "token-classification"


class TokenClassificationTask(Task):
    """One tag per word, in one tag scheme (``iob2``, ``bioes`` or ``plain``)."""

    kinds = (KIND, "token_classification", "ner")
    architectures = ("ForTokenClassification",)
    outputs_per_token = True
    examples_name = "sentences"

    def __init__(self, tags: Sequence[str], scheme: str, label_all_pieces: bool = False):
        self.tags = list(tags)
        self.scheme = scheme
        self.label_all_pieces = label_all_pieces
        self.tag_ids = {tag: index for index, tag in enumerate(self.tags)}

    @property
    def labels(self) -> list[str]:
        """The tag names, in the order of the head's outputs."""
        return list(self.tags)

    @property
    def kind(self) -> str:
        return KIND

    @property
    def entity_types(self) -> list[str]:
        return sorted({split_tag(tag)[1] for tag in self.tags if tag != OUTSIDE})

    # -- reading ------------------------------------------------------------------------

    @classmethod
    def claims(cls, source: Any) -> bool:
        return looks_tagged(source)

    @classmethod
    def read(cls, source: Any, columns: dict[str, Any]) -> TaggedData:
        return read_tagged(source, tag_column=columns.get("tag_column"))  # "-" is stdin there

    @classmethod
    def read_unlabeled(cls, source: Any, columns: dict[str, Any]) -> TaggedData:
        return read_untagged(source, text_column=columns.get("text_column"), trained=columns.get("trained_columns"))

    @classmethod
    def fit(cls, train: TaggedData, kind: str | None = None, tag_scheme: str | None = None,
            label_all_pieces: bool = False, **options: Any) -> "TokenClassificationTask":
        scheme = tag_scheme or ("iob2" if train.scheme == "iob1" else train.scheme)
        _check_conversion(train, scheme)
        seen = {tag for sentence in train.tags for tag in _converted(sentence, train.scheme, scheme)}
        # Every tag of each type the scheme can write, so that a repaired prediction (an I-X
        # that starts an entity becomes B-X) and the later pieces of a word (I-X under
        # --label-all-pieces) always have a tag of the head's to be.
        prefixes = {"iob2": "BI", "bioes": "BIES"}.get(scheme, "")
        seen |= {f"{prefix}-{kind}" for kind in {split_tag(tag)[1] for tag in seen if tag != OUTSIDE}
                 for prefix in prefixes}
        tags = [OUTSIDE] + sorted(seen - {OUTSIDE}, key=lambda tag: (split_tag(tag)[1], "BIES".find(split_tag(tag)[0])))
        return cls(tags, scheme, label_all_pieces)

    @classmethod
    def windows(cls, mode: str, stride: int | None, aggregate: str) -> WordWindows:
        if mode not in ("truncate", "sliding-window") or aggregate != "mean":
            raise BertforgeError("token classification always reads long sentences in overlapping windows of "
                                 "words; drop --long-text and --window-aggregate (--stride sets the step)")
        return WordWindows(stride)

    @classmethod
    def windows_from_dict(cls, values: dict[str, Any] | None) -> WordWindows:
        return WordWindows.from_dict(values)

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any], config: dict[str, Any]) -> "TokenClassificationTask":
        if "tags" in metadata:
            return cls(metadata["tags"], metadata["tag_scheme"], bool(metadata.get("label_all_pieces")))
        # A tagger from elsewhere: its config.json names the tags; their prefixes say the scheme.
        id2label = config.get("id2label") or {}
        tags = [str(id2label.get(str(i), id2label.get(i, f"LABEL_{i}"))) for i in range(len(id2label))]
        prefixes = {split_tag(tag)[0] for tag in tags} - {OUTSIDE}
        if "" in prefixes and len(prefixes) > 1:
            odd = next(tag for tag in tags if split_tag(tag)[0] == "")
            raise BertforgeError(f"config.json: the tag {show(odd)} fits no scheme beside B-/I- tags (IOB1, IOB2, "
                                 "BIOES or plain labels are read); rename the tags in id2label")
        scheme = ("plain" if not prefixes or prefixes == {""} else "bioes" if prefixes & {"E", "S"}
                  else "iob1" if "B" not in prefixes else "iob2")
        return cls(tags, scheme)

    def from_texts(self, texts: Sequence[str], text_pairs: Sequence[str] | None = None) -> TaggedData:
        if text_pairs is not None:
            raise BertforgeError("a token classification model tags single texts; drop the second texts")
        if len(texts) == 0:
            return TaggedData([], None, [], [], [], "<texts>")
        return read_untagged(list(texts))

    def metadata(self) -> dict[str, Any]:
        return {"task": KIND, "tags": self.tags, "tag_scheme": self.scheme, "label_all_pieces": self.label_all_pieces}

    def hold_out(self, examples: TaggedData, fraction: float, seed: int) -> tuple[TaggedData, TaggedData]:
        order = np.random.default_rng(seed).permutation(len(examples))
        size = max(1, round(len(examples) * fraction))
        if size >= len(examples):
            raise BertforgeError(f"{examples.path}: {len(examples)} sentences are too few to hold {fraction:g} "
                                 "of them out; pass --val or a smaller --val-fraction")
        return examples.subset(sorted(order[size:])), examples.subset(sorted(order[:size]))

    def describe(self) -> str:
        types = len(self.entity_types)
        return (f"{KIND}, {len(self.tags)} tags ({self.scheme}), "
                f"{types} {'entity type' if types == 1 else 'entity types'}")

    # -- examples -> features -----------------------------------------------------------

    def encode(self, name: str, examples: TaggedData, tokenizer, max_length: int, long_text: WordWindows,
               labeled: bool = True, unknown: str = "error") -> Split:
        tag_ids, dropped = None, 0
        if labeled and examples.tags is not None:
            _check_conversion(examples, self.scheme)
            tag_ids, keep = self._tag_ids(examples, unknown)
            dropped = len(examples) - len(keep)
            if dropped:
                examples = examples.subset(keep)
        if len(examples) == 0:
            raise BertforgeError(f"{examples.path}: no sentences left to use; check the file and its tags")
        continuation = self._continuation_ids() if self.label_all_pieces else None
        features = encode_words(tokenizer, examples.words, max_length, long_text, tags=tag_ids,
                                continuation=continuation)
        targets = None
        if tag_ids is not None:
            targets = np.full((len(tag_ids), max(map(len, tag_ids))), IGNORE_INDEX, dtype=np.int64)
            for row, ids in enumerate(tag_ids):
                targets[row, :len(ids)] = ids
        return Split(name, examples, features, targets, dropped)

    def _tag_ids(self, examples: TaggedData, unknown: str) -> tuple[list[list[int]], list[int]]:
        ids, keep = [], []
        for index, sentence in enumerate(examples.tags):
            tags = _converted(sentence, examples.scheme, self.scheme)
            unseen = next((word for word, tag in enumerate(tags) if tag not in self.tag_ids), None)
            if unseen is None:
                ids.append([self.tag_ids[tag] for tag in tags])
                keep.append(index)
            elif unknown != "drop":
                raise BertforgeError(
                    f"{examples.where(index, unseen)}: tag {show(tags[unseen])} never appears in the training data "
                    f"(tags: {', '.join(self.tags[:12])}{'...' if len(self.tags) > 12 else ''}); fix the tag, "
                    "add examples of it to training, or pass --unknown-labels drop")
        return ids, keep

    def _continuation_ids(self) -> list[int]:
        return [self.tag_ids.get(_continuation(tag), index) for index, tag in enumerate(self.tags)]

    def texts(self, examples: TaggedData) -> tuple[list[str], None]:
        return list(examples.texts), None

    # -- head and loss ------------------------------------------------------------------

    def build_model(self, model_dir, config):
        from bertforge.io.load import load_pretrained
        from bertforge.model.heads import BertForTokenClassification

        return load_pretrained(model_dir, BertForTokenClassification, config=config,
                               id2label=dict(enumerate(self.tags)))

    def load_model(self, model_dir):
        from bertforge.io.load import load_pretrained
        from bertforge.model.heads import BertForTokenClassification

        model = load_pretrained(model_dir, BertForTokenClassification)
        if any(name.startswith("classifier.") for name in model.load_report.missing):
            raise BertforgeError(f"{model_dir}: has no trained tagging head; fine-tune it first with "
                                 "bertforge finetune --task token-classification")
        return model

    def trainable(self, model, fine_tune_layers, train: Split, class_weights: str | None = None):
        from bertforge.tasks.token_classification.trainable import TrainableTagger, balanced_tag_weights

        weights = balanced_tag_weights(train.features.labels, len(self.tags)) if class_weights else None
        return TrainableTagger(model, fine_tune_layers, weights)

    def head_outputs(self, model, input_ids, input_mask, segment_ids):
        return model(input_ids, input_mask, segment_ids).logits

    def output_width(self) -> int:
        return len(self.tags)

    # -- outputs -> predictions, metrics, report ----------------------------------------

    def fold(self, outputs: np.ndarray, features, long_text) -> np.ndarray:
        return fold_words(outputs, features)

    def predicted_tags(self, outputs: np.ndarray, lengths: Sequence[int]) -> list[list[str]]:
        """Each sentence's tags, repaired: an entity never starts with ``I-`` (or, in
        BIOES, never ends without ``E-``/``S-``)."""
        best = outputs.argmax(axis=-1) if outputs.size else np.zeros(outputs.shape[:2], dtype=np.int64)
        return [repair([self.tags[i] for i in best[row, :length]], self.scheme) for row, length in enumerate(lengths)]

    def decode(self, outputs: np.ndarray, examples: TaggedData | None = None) -> list[dict[str, Any]]:
        """One ``{"words", "tags", "entities"}`` per sentence; an entity is ``{"text",
        "label", "start", "end", "score"}`` with character offsets into the sentence's text
        and the mean probability of its words' tags."""
        if examples is None:
            raise BertforgeError("token predictions need the sentences they come from; use Predictor.predict")
        lengths = [len(words) for words in examples.words]
        # A word's score is the probability of the tag the head chose, before any repair.
        chosen_probability = softmax(outputs, axis=-1).max(axis=-1) if outputs.size else outputs
        results = []
        for row, tags in enumerate(self.predicted_tags(outputs, lengths)):
            text, offsets = examples.texts[row], examples.offsets[row]
            chosen = chosen_probability[row, :len(tags)].tolist()
            found = [{"text": text[offsets[start][0]:offsets[end - 1][1]], "label": label,
                      "start": offsets[start][0], "end": offsets[end - 1][1],
                      "score": round(float(np.mean(chosen[start:end])), 6)}
                     for label, start, end in entities(tags, self.scheme)]
            results.append({"words": list(examples.words[row]), "tags": tags, "entities": found})
        return results

    def metrics(self, targets: np.ndarray, outputs: np.ndarray, examples: TaggedData | None = None) -> dict[str, Any]:
        lengths = (targets != IGNORE_INDEX).sum(axis=1)
        gold = [[self.tags[i] for i in row[:length]] for row, length in zip(targets, lengths)]
        result = entity_metrics(gold, self.predicted_tags(outputs, lengths), self.scheme)
        if examples is not None:  # the report shows the worst sentences with their words
            for error in result.get("errors", []):
                error["words"] = list(examples.words[error["sentence"]])
        return result

    @classmethod
    def metric_for(cls, kind: str) -> tuple[str, bool]:
        return "f1", True

    def summary(self, metrics: dict[str, Any]) -> str:
        return summary_line(metrics)

    def write_report(self, out: Path, metrics: dict[str, Any], history: Sequence[dict] | None, title: str) -> None:
        sentences = {error["sentence"]: error["words"] for error in metrics.get("errors", []) if "words" in error}
        write_report(out, metrics, list(history) if history else None, title, sentences=sentences or None)

    def check_output(self, output: str | None) -> None:
        if output is not None and not output.lower().endswith((".jsonl", ".json", ".ndjson")):
            raise BertforgeError(f"{output}: token predictions are written as JSONL; name the output *.jsonl")

    def write_predictions(self, examples: TaggedData, predictions: list[dict[str, Any]], output: str | None) -> None:
        """JSONL, one sentence a line: ``text``, ``words``, ``tags`` and ``entities``."""
        self.check_output(output)
        lines = (json.dumps({"text": text, **prediction}, ensure_ascii=False)
                 for text, prediction in zip(examples.texts, predictions))
        if output is None:
            for line in lines:
                print(line)
            return
        from bertforge.files import replacing

        with replacing(Path(output)) as temporary:
            temporary.write_text("".join(line + "\n" for line in lines), encoding="utf-8")

    # -- the service and export ---------------------------------------------------------

    request_fields = (RequestField("texts", "texts", "the texts to tag", item="text"),)
    prediction_fields = (
        RequestField("words", "value", "the words of the text, as the model read them", list[str]),
        RequestField("tags", "value", "one tag per word", list[str]),
        RequestField("entities", "value", "the entities: text, label, start and end character offsets, score",
                     list[dict[str, Any]]),
    )
    request_example: ClassVar[dict[str, Any]] = {"texts": ["Empire State Building = ESB . Pretty bad storm here"]}

    def info(self) -> dict[str, Any]:
        return {"task": KIND, "labels": self.tags, "tag_scheme": self.scheme}

    def request_examples(self, body: dict[str, Any]) -> list[str]:
        return list(body["texts"])

    def predict_examples(self, predictor, examples: list[str], batch_size: int) -> list[dict[str, Any]]:
        return predictor.predict(examples, batch_size=batch_size)

    def exportable(self, model):
        from bertforge.tasks.token_classification.trainable import ExportableTagger

        return ExportableTagger(model)

    def export_agreement(self, expected: np.ndarray, got: np.ndarray) -> float:
        """Share of words whose predicted tag is the same."""
        words = np.abs(expected).sum(axis=-1) > 0  # past a sentence's end the folded outputs are zeros
        if not words.any():
            return 1.0
        return float(np.mean(expected.argmax(-1)[words] == got.argmax(-1)[words]))


def _converted(tags: Sequence[str], source: str | None, target: str) -> list[str]:
    return list(tags) if source in (None, target) else convert(tags, source, target)


def _continuation(tag: str) -> str:
    """The tag the later pieces of a word learn under ``--label-all-pieces``: a ``B-`` word's
    other pieces are inside the entity (``fit`` makes sure the head has that tag)."""
    prefix, kind = split_tag(tag)
    return f"I-{kind}" if prefix == "B" else tag


def _check_conversion(data: TaggedData, scheme: str) -> None:
    plain = {data.scheme == "plain", scheme == "plain"}
    if len(plain) == 2 and data.tags and any(tag != OUTSIDE for sentence in data.tags for tag in sentence):
        raise BertforgeError(f"{data.path}: its tags are {data.scheme} but the model uses {scheme}; plain labels "
                             "and B-/I- tags do not mix, so give files with the same kind of tags")
