"""Fine-tune a classifier, a word tagger or a question answerer on labeled files and write a model directory with metrics and plots."""

from __future__ import annotations

import argparse

from bertforge.cli.options import (
    add_answers,
    add_columns,
    add_long_text,
    add_optimizer,
    add_tag_column,
    add_unknown_labels,
    layers,
    long_text,
)
from bertforge.errors import UsageError

NAME = "finetune"
SUMMARY = "fine-tune a classifier, a word tagger or a question answerer on labeled files"
EPILOG = ("example: bertforge finetune --train trec/train.csv --test trec/test.csv "
          "--model ./all-MiniLM-L6-v2 --out runs/trec --fine-tune-layers 2 --epochs 3; "
          "a word tagger: bertforge finetune --train wnut17/train.conll --val wnut17/dev.conll --test wnut17/test.conll "
          "--model ./all-MiniLM-L6-v2 --out runs/wnut17 --epochs 3 --learning-rate 1e-4; "
          "a question answerer: bertforge finetune --train squad/train.json --test squad/test.json "
          "--model ./all-MiniLM-L6-v2 --out runs/squad --max-seq-length 384 --epochs 2 --learning-rate 1e-4")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``FineTuneSettings``, one each.

    The defaults are written here as well as on the settings, because reading them
    from ``bertforge.apps.finetune`` would import torch for every ``--help``;
    ``tests/test_cli.py`` holds the two equal. The numbers' ranges are the settings'
    own checks (exit 2 before any file is read), so they are not written twice either.

    >>> parser = argparse.ArgumentParser()
    >>> add_arguments(parser)
    >>> args = parser.parse_args(["--train", "train.csv", "--model", "bert", "--out", "run"])
    >>> args.fine_tune_layers, args.epochs, args.learning_rate
    ('all', 3, 5e-05)
    """
    files = parser.add_argument_group("data")
    files.add_argument("--train", required=True,
                       help="labeled training file: CSV, TSV or JSONL of texts; CoNLL or JSONL of tagged words")
    files.add_argument("--val", help="validation file; without it --val-fraction of train is held out")
    files.add_argument("--test", help="test file, scored once at the end")
    add_columns(files)
    files.add_argument("--label-column", help="name or position of the label column")
    files.add_argument("--label-columns", help="several 0/1 label columns, comma-separated (multi-label)")
    files.add_argument("--label-separator", help="labels joined by this in one cell (multi-label)")
    files.add_argument("--delimiter", help="field delimiter (detected when omitted)")
    files.add_argument("--task", choices=["classification", "multi_label", "regression", "token-classification",
                                          "question-answering"],
                       help="override the task detected from the data")
    add_tag_column(files)
    files.add_argument("--tag-scheme", choices=["iob2", "bioes"],
                       help="token classification: the tag scheme the model learns (default: the file's; IOB1 as iob2)")
    files.add_argument("--label-all-pieces", action="store_true",
                       help="token classification: every word piece learns its word's tag, not the first alone")
    add_answers(files, saved=False)
    add_unknown_labels(files, help="validation/test labels training never saw")
    files.add_argument("--drop-missing-labels", action="store_true",
                       help="skip rows whose label is empty, n/a, #N/A, nan or null (with a note) instead of failing")
    files.add_argument("--val-fraction", type=float, default=0.1, help="held out of train when --val is absent")
    model = parser.add_argument_group("model and training")
    model.add_argument("--model", required=True, help="pretrained model directory")
    model.add_argument("--out", required=True, help="output directory (a model directory when done)")
    model.add_argument("--fine-tune-layers", type=layers, default="all", help="top N encoder layers that train, or all")
    model.add_argument("--layerwise-lr-decay", type=float, help="learning-rate factor per layer going down, e.g. 0.9")
    model.add_argument("--sweep-layers", help="fine-tune once per value, e.g. 0,1,2,4,all, and plot metric vs time")
    model.add_argument("--epochs", type=int, default=3, help="passes over the training data")
    model.add_argument("--batch-size", type=int, default=32, help="training examples per step")
    model.add_argument("--eval-batch-size", type=int, default=128, help="examples per model run when scoring")
    add_optimizer(model, learning_rate=5e-5, warmup_ratio=0.1)
    model.add_argument("--max-seq-length", type=int, default=256,
                       help="window in word pieces, [CLS] and [SEP] included; at most the model's positions")
    add_long_text(model)
    model.add_argument("--early-stopping", type=int, metavar="PATIENCE",
                       help="stop after this many evaluations without improvement")
    model.add_argument("--class-weights", choices=["balanced"], help="weigh classes inversely to their frequency")
    model.add_argument("--no-frozen-cache", action="store_true", help="recompute the frozen layers every epoch")
    model.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                       help="bf16: autocast to bfloat16 (for GPUs that have it)")
    model.add_argument("--seed", type=int, default=0, help="the head's initial weights, the shuffling and the "
                                                           "held-out split")
    model.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    model.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    model.add_argument("--checkpoint-every", type=int, metavar="STEPS", help="checkpoint this often (default: each epoch)")
    model.add_argument("--overwrite", action="store_true",
                       help="replace what --out holds (an earlier model, even --model itself) with this run's model")
    model.add_argument("--keep-checkpoint", action="store_true", help="keep the resumable checkpoint after a finished run")
    model.add_argument("--quiet", action="store_true", help="no progress bars or summaries")


def settings(args: argparse.Namespace):
    """The ``FineTuneSettings`` the options ask for."""
    from bertforge.apps.finetune import FineTuneSettings
    from bertforge.text.long_text import LongText

    text = long_text(args) or LongText()
    return FineTuneSettings.of(
        train=args.train, val=args.val, test=args.test, model=args.model, out=args.out,
        text_column=args.text_column, label_column=args.label_column, text_pair_column=args.text_pair_column,
        label_columns=args.label_columns.split(",") if args.label_columns else None, delimiter=args.delimiter,
        task=args.task, label_separator=args.label_separator, unknown_labels=args.unknown_labels,
        drop_missing_labels=args.drop_missing_labels,
        tag_column=args.tag_column, tag_scheme=args.tag_scheme, label_all_pieces=args.label_all_pieces,
        n_best=args.n_best, max_answer_length=args.max_answer_length, null_threshold=args.null_threshold,
        val_fraction=args.val_fraction, fine_tune_layers=args.fine_tune_layers,
        layerwise_lr_decay=args.layerwise_lr_decay, epochs=args.epochs, batch_size=args.batch_size,
        eval_batch_size=args.eval_batch_size, learning_rate=args.learning_rate, weight_decay=args.weight_decay,
        warmup_ratio=args.warmup_ratio, max_grad_norm=args.max_grad_norm or None,
        gradient_accumulation=args.gradient_accumulation, max_seq_length=args.max_seq_length,
        long_text=text.mode, stride=text.stride, window_aggregate=text.aggregate,
        early_stopping_patience=args.early_stopping, class_weights=args.class_weights,
        frozen_cache=not args.no_frozen_cache, precision=args.precision, seed=args.seed, device=args.device,
        resume=args.resume, overwrite=args.overwrite, keep_checkpoint=args.keep_checkpoint, checkpoint_every=args.checkpoint_every,
        progress=not args.quiet,
    )


def sweep_values(text: str) -> list[int | str]:
    """The ``--sweep-layers`` values.

    >>> sweep_values("0, 2,all")
    [0, 2, 'all']
    """
    try:
        return [layers(value.strip()) for value in text.split(",")]
    except argparse.ArgumentTypeError:
        raise UsageError(f"--sweep-layers {text!r}: give numbers or 'all', e.g. 0,1,2,4,all") from None


def run(args: argparse.Namespace) -> int:
    """Fine-tune once, or once per ``--sweep-layers`` value."""
    from bertforge.apps.finetune import run_finetune, sweep_layers

    job = settings(args)
    if args.sweep_layers:
        sweep_layers(job, sweep_values(args.sweep_layers))
    else:
        run_finetune(job)
    return 0
