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
        layers = args.fine_tune_layers if args.fine_tune_layers == "all" else int(args.fine_tune_layers)
        BertLayer(model, fine_tune_layers=layers, output=args.output).summary()
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
    inspect.add_argument("--fine-tune-layers", help="show what BertLayer would train: N or 'all'")
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


if __name__ == "__main__":
    sys.exit(main())
