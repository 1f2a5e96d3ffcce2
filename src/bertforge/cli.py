"""The ``bertforge`` command.

Subcommands in the manner of ``git``: each has ``--help`` with an example. Exit
codes: 0 on success, 1 when a job fails, 2 on bad usage. Errors are one line on
stderr; ``--debug`` shows the traceback as well.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback

from . import __version__
from .errors import BertforgeError


def cmd_inspect(args: argparse.Namespace) -> int:
    """Print a model directory's size, weights report and per-block trainable counts."""
    from .checkpoints import load_pretrained
    from .layer import BertLayer
    from .model import count_parameters

    model = load_pretrained(args.model)
    config = model.config
    print(f"model: {args.model}")
    print(f"layers {config.num_hidden_layers}, hidden {config.hidden_size}, heads {config.num_attention_heads}, "
          f"intermediate {config.intermediate_size}, vocab {config.vocab_size}, "
          f"positions {config.max_position_embeddings}")
    print(f"parameters: {count_parameters(model):,}")
    print(f"weights: {model.load_report}")
    if args.fine_tune_layers is not None:
        BertLayer(model, fine_tune_layers=args.fine_tune_layers, output=args.output).summary()
    return 0


def cmd_tokenize(args: argparse.Namespace) -> int:
    """Print the WordPiece tokens and the features of one text (or a pair)."""
    from .features import InputExample, convert_single_example
    from .tokenization import Tokenizer

    tokenizer = Tokenizer.from_pretrained(args.model)
    example = InputExample(args.text, text_b=args.text_b)
    input_ids, input_mask, segment_ids, _ = convert_single_example(tokenizer, example, args.max_seq_length)
    real = sum(input_mask)
    print(json.dumps({
        "tokens": tokenizer.convert_ids_to_tokens(input_ids[:real]),
        "input_ids": input_ids, "input_mask": input_mask, "segment_ids": segment_ids,
    }))
    return 0


def _layers(value: str):
    return value if value == "all" else int(value)


def cmd_finetune(args: argparse.Namespace) -> int:
    """Fine-tune a classifier on labeled files and write a model directory with metrics and plots."""
    from .training.finetune import FineTuneSettings, finetune, sweep_layers

    settings = FineTuneSettings(
        train=args.train, val=args.val, test=args.test, model=args.model, out=args.out,
        text_column=args.text_column, label_column=args.label_column, text_pair_column=args.text_pair_column,
        label_columns=args.label_columns.split(",") if args.label_columns else None, delimiter=args.delimiter,
        task=args.task, label_separator=args.label_separator, unknown_labels=args.unknown_labels,
        val_fraction=args.val_fraction, fine_tune_layers=args.fine_tune_layers,
        layerwise_lr_decay=args.layerwise_lr_decay, epochs=args.epochs, batch_size=args.batch_size,
        eval_batch_size=args.eval_batch_size, learning_rate=args.learning_rate, weight_decay=args.weight_decay,
        warmup_ratio=args.warmup_ratio, max_grad_norm=args.max_grad_norm or None,
        gradient_accumulation=args.gradient_accumulation, max_seq_length=args.max_seq_length,
        early_stopping_patience=args.early_stopping, class_weights=args.class_weights,
        frozen_cache=not args.no_frozen_cache, precision=args.precision, seed=args.seed, device=args.device,
        resume=args.resume, keep_checkpoint=args.keep_checkpoint, checkpoint_every=args.checkpoint_every,
        progress=not args.quiet,
    )
    if args.sweep_layers:
        try:
            values = [_layers(value.strip()) for value in args.sweep_layers.split(",")]
        except ValueError:
            raise BertforgeError(f"--sweep-layers {args.sweep_layers!r}: give numbers or 'all', e.g. 0,1,2,4,all") from None
        sweep_layers(settings, values)
    else:
        finetune(settings)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Metrics of a fine-tuned model on a labeled file; with --out, a report with plots too."""
    from .classifier import Classifier
    from .evaluation import format_summary, write_report

    classifier = Classifier.load(args.model, device=args.device)
    metrics = classifier.evaluate(args.data, unknown=args.unknown_labels, batch_size=args.batch_size,
                                  text_column=args.text_column, label_column=args.label_column,
                                  text_pair_column=args.text_pair_column)
    if metrics["dropped_rows"]:
        print(f"{args.data}: dropped {metrics['dropped_rows']} rows whose labels training never saw")
    print(format_summary(metrics))
    if args.out:
        labels = list(classifier.encoder.id2label.values()) if classifier.encoder.task != "regression" else None
        write_report(args.out, metrics, labels=labels, title=f"bertforge evaluation: {args.data}")
        print(f"report in {args.out}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """Label texts from a file (CSV, JSONL or one text per line) or stdin; CSV or JSONL out."""
    from .classifier import Classifier

    classifier = Classifier.load(args.model, device=args.device)
    count = classifier.predict_file(args.input, args.output, text_column=args.text_column,
                                    text_pair_column=args.text_pair_column, batch_size=args.batch_size,
                                    progress=not args.quiet)
    if args.output:
        print(f"{count} predictions written to {args.output}", file=sys.stderr)
    return 0


def _add_column_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--text-column", help="name or 0-based position of the text column")
    parser.add_argument("--text-pair-column", help="second text, for pair tasks")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bertforge", description="BERT on your own data.",
        epilog="example: bertforge inspect ./my-bert --fine-tune-layers 2",
    )
    parser.add_argument("--version", action="version", version=f"bertforge {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    inspect = commands.add_parser(
        "inspect", help="describe a model directory",
        description=cmd_inspect.__doc__, epilog="example: bertforge inspect ./all-MiniLM-L6-v2 --fine-tune-layers 2",
    )
    inspect.add_argument("model", help="model directory")
    inspect.add_argument("--fine-tune-layers", type=_layers, help="show what BertLayer would train: N or 'all'")
    inspect.add_argument("--output", default="pooled", choices=["sequence", "pooled", "cls", "mean"])
    inspect.set_defaults(run=cmd_inspect)

    tokenize = commands.add_parser(
        "tokenize", help="show the tokens and features of a text",
        description=cmd_tokenize.__doc__,
        epilog='example: bertforge tokenize ./all-MiniLM-L6-v2 "How far is it from Denver to Aspen ?"',
    )
    tokenize.add_argument("model", help="model directory (or a folder with vocab.txt)")
    tokenize.add_argument("text")
    tokenize.add_argument("text_b", nargs="?", default=None, help="second text of a pair")
    tokenize.add_argument("--max-seq-length", type=int, default=32)
    tokenize.set_defaults(run=cmd_tokenize)

    finetune = commands.add_parser(
        "finetune", help="fine-tune a classifier on labeled files", description=cmd_finetune.__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        epilog="example: bertforge finetune --train trec/train.csv --test trec/test.csv "
               "--model ./all-MiniLM-L6-v2 --out runs/trec --fine-tune-layers 2 --epochs 3",
    )
    files = finetune.add_argument_group("data")
    files.add_argument("--train", required=True, help="labeled training file (CSV, TSV or JSONL)")
    files.add_argument("--val", help="validation file; without it --val-fraction of train is held out")
    files.add_argument("--test", help="test file, scored once at the end")
    _add_column_options(files)
    files.add_argument("--label-column", help="name or position of the label column")
    files.add_argument("--label-columns", help="several 0/1 label columns, comma-separated (multi-label)")
    files.add_argument("--label-separator", help="labels joined by this in one cell (multi-label)")
    files.add_argument("--delimiter", help="field delimiter (detected when omitted)")
    files.add_argument("--task", choices=["classification", "multi_label", "regression"],
                       help="override the task detected from the labels")
    files.add_argument("--unknown-labels", choices=["error", "drop"], default="error",
                       help="validation/test labels training never saw")
    files.add_argument("--val-fraction", type=float, default=0.1, help="held out of train when --val is absent")
    model = finetune.add_argument_group("model and training")
    model.add_argument("--model", required=True, help="pretrained model directory")
    model.add_argument("--out", required=True, help="output directory (a model directory when done)")
    model.add_argument("--fine-tune-layers", type=_layers, default="all", help="top N encoder layers that train, or all")
    model.add_argument("--layerwise-lr-decay", type=float, help="learning-rate factor per layer going down, e.g. 0.9")
    model.add_argument("--sweep-layers", help="fine-tune once per value, e.g. 0,1,2,4,all, and plot metric vs time")
    model.add_argument("--epochs", type=int, default=3)
    model.add_argument("--batch-size", type=int, default=32)
    model.add_argument("--eval-batch-size", type=int, default=128)
    model.add_argument("--learning-rate", type=float, default=5e-5)
    model.add_argument("--weight-decay", type=float, default=0.01)
    model.add_argument("--warmup-ratio", type=float, default=0.1)
    model.add_argument("--max-grad-norm", type=float, default=1.0, help="0 turns clipping off")
    model.add_argument("--gradient-accumulation", type=int, default=1)
    model.add_argument("--max-seq-length", type=int, default=256)
    model.add_argument("--early-stopping", type=int, metavar="PATIENCE", help="stop after this many evaluations without improvement")
    model.add_argument("--class-weights", choices=["balanced"], help="weigh classes inversely to their frequency")
    model.add_argument("--no-frozen-cache", action="store_true", help="recompute the frozen layers every epoch")
    model.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    model.add_argument("--seed", type=int, default=0)
    model.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    model.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    model.add_argument("--checkpoint-every", type=int, metavar="STEPS", help="checkpoint this often (default: each epoch)")
    model.add_argument("--keep-checkpoint", action="store_true", help="keep the resumable checkpoint after a finished run")
    model.add_argument("--quiet", action="store_true", help="no progress bars or summaries")
    finetune.set_defaults(run=cmd_finetune)

    evaluate = commands.add_parser(
        "evaluate", help="score a fine-tuned model on a labeled file", description=cmd_evaluate.__doc__,
        epilog="example: bertforge evaluate --model runs/trec --data trec/test.csv --out runs/trec-eval",
    )
    evaluate.add_argument("--model", required=True, help="directory written by bertforge finetune")
    evaluate.add_argument("--data", required=True, help="labeled file")
    evaluate.add_argument("--out", help="write metrics.json, report.md and plots here")
    _add_column_options(evaluate)
    evaluate.add_argument("--label-column")
    evaluate.add_argument("--unknown-labels", choices=["error", "drop"], default="error")
    evaluate.add_argument("--batch-size", type=int, default=128)
    evaluate.add_argument("--device")
    evaluate.set_defaults(run=cmd_evaluate)

    predict = commands.add_parser(
        "predict", help="label texts with a fine-tuned model", description=cmd_predict.__doc__,
        epilog="example: cat questions.txt | bertforge predict --model runs/trec - > labels.jsonl",
    )
    predict.add_argument("--model", required=True, help="directory written by bertforge finetune")
    predict.add_argument("input", help="file of texts (CSV, JSONL or plain lines), or - for stdin")
    predict.add_argument("--output", help="CSV or JSONL file (by extension); stdout as JSONL when omitted")
    _add_column_options(predict)
    predict.add_argument("--batch-size", type=int, default=128)
    predict.add_argument("--device")
    predict.add_argument("--quiet", action="store_true")
    predict.set_defaults(run=cmd_predict)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except BertforgeError as error:
        if args.debug:
            traceback.print_exc()
        print(f"bertforge: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bertforge: interrupted", file=sys.stderr)
        return 1
    except Exception as error:  # a failure nobody foresaw: still one line, the details on request
        if args.debug:
            traceback.print_exc()
        reason = str(error).splitlines()[0] if str(error) else ""
        print(f"bertforge: error: {type(error).__name__}: {reason} (rerun with --debug for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
