"""Label texts from a file (CSV, JSONL or one text per line) or stdin; CSV or JSONL out."""

from __future__ import annotations

import argparse
import sys

from bertforge.cli.options import add_answers, add_columns, add_inference, long_text

NAME = "predict"
SUMMARY = "label texts with a fine-tuned model"
EPILOG = "example: cat questions.txt | bertforge predict --model runs/trec - > labels.jsonl"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The model, the texts and where their labels go.

    >>> parser = argparse.ArgumentParser()
    >>> add_arguments(parser)
    >>> args = parser.parse_args(["--model", "runs/trec", "-", "--output", "labels.csv"])
    >>> args.input, args.output, args.batch_size
    ('-', 'labels.csv', None)
    """
    parser.add_argument("--model", required=True, help="directory written by bertforge finetune or export")
    parser.add_argument("input", nargs="?",
                        help="file of texts (CSV, JSONL, plain lines; CoNLL for a tagger), or - for stdin")
    parser.add_argument("--text", action="append", help="a text to label instead of a file (repeatable)")
    parser.add_argument("--output", help="CSV or JSONL file (by extension); stdout as JSONL when omitted")
    add_columns(parser)
    add_inference(parser)
    add_answers(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Write one prediction per text; with ``--output``, say on stderr how many."""
    from bertforge.apps.predictor import Predictor

    if (args.input is None) == (args.text is None):
        print("bertforge predict: error: give a file of texts (or - for stdin) or --text, not both", file=sys.stderr)
        return 2  # bad usage, as argparse's own errors
    predictor = Predictor.load(args.model, device=args.device, long_text=long_text(args))
    predictor.task.set_decoding(n_best=args.n_best, max_answer_length=args.max_answer_length,
                                null_threshold=args.null_threshold)
    if args.text:
        predictor.task.check_output(args.output)
        examples = predictor.task.from_texts(args.text)
        predictor.task.write_predictions(examples, predictor.predict_examples(examples, args.batch_size),
                                         args.output)
        return 0
    count = predictor.predict_file(args.input, args.output, text_column=args.text_column,
                                   text_pair_column=args.text_pair_column, batch_size=args.batch_size,
                                   progress=not args.quiet)
    if args.output:
        print(f"{count} predictions written to {args.output}", file=sys.stderr)
    return 0
