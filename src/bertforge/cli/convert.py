"""Convert a TensorFlow BERT into a standard model directory: Google's original checkpoints
(bert_config.json, vocab.txt, bert_model.ckpt.*), TF Hub TF1 modules (tfhub_module.pb) and
TF2 SavedModels of the TF Model Garden's BertEncoder. Needs the tensorflow extra."""

from __future__ import annotations

import argparse

from bertforge.cli.options import COUNT

NAME = "convert"
SUMMARY = "turn a TensorFlow BERT into a model directory"
EPILOG = "example: bertforge convert uncased_L-12_H-768_A-12 --out bert-base-uncased"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The TensorFlow folder, the directory to write, and what the folder may not say itself.

    >>> parser = argparse.ArgumentParser()
    >>> add_arguments(parser)
    >>> args = parser.parse_args(["hub_module", "--out", "bert", "--uncased", "--heads", "12"])
    >>> args.cased, args.uncased, args.heads
    (False, True, 12)
    """
    parser.add_argument("source", help="Google checkpoint folder, TF Hub TF1 module or TF2 SavedModel folder")
    parser.add_argument("--out", required=True, help="model directory to write")
    case = parser.add_mutually_exclusive_group()
    case.add_argument("--cased", action="store_true", help="keep case (overrides what the model declares)")
    case.add_argument("--uncased", action="store_true", help="lower-case text (overrides what the model declares)")
    parser.add_argument("--heads", type=COUNT, help="attention heads, for TF1 Hub modules that do not record them")
    parser.add_argument("--vocab", help="vocab.txt to use when the folder has none")


def run(args: argparse.Namespace) -> int:
    """Convert ``args.source`` into ``args.out`` and print what was read and written."""
    from bertforge.io.tensorflow import convert

    do_lower_case = True if args.uncased else False if args.cased else None
    result = convert(args.source, args.out, do_lower_case=do_lower_case, num_attention_heads=args.heads,
                     vocab_file=args.vocab)
    print(result.summary())
    return 0
