"""Print a model directory's size, weights report and per-block trainable counts."""

from __future__ import annotations

import argparse

from bertforge.cli.options import layers
from bertforge.errors import UsageError

NAME = "inspect"
SUMMARY = "describe a model directory"
EPILOG = "example: bertforge inspect ./all-MiniLM-L6-v2 --fine-tune-layers 2"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The model directory, and what ``BertLayer`` would train in it.

    >>> parser = argparse.ArgumentParser()
    >>> add_arguments(parser)
    >>> args = parser.parse_args(["./bert", "--fine-tune-layers", "2"])
    >>> args.model, args.fine_tune_layers, args.output
    ('./bert', 2, 'pooled')
    """
    parser.add_argument("model", help="model directory")
    parser.add_argument("--fine-tune-layers", type=layers, help="show what BertLayer would train: N or 'all'")
    parser.add_argument("--output", default="pooled", choices=["sequence", "pooled", "cls", "mean"],
                        help="with --fine-tune-layers: what the BertLayer returns")


def run(args: argparse.Namespace) -> int:
    """Load the model and print its sizes, its weights report and, when asked, the layer summary."""
    from bertforge.io.load import load_pretrained
    from bertforge.model.layer import BertLayer
    from bertforge.model.bert import count_parameters

    model = load_pretrained(args.model)
    config = model.config
    depth = config.num_hidden_layers
    if args.fine_tune_layers not in (None, "all") and args.fine_tune_layers > depth:  # a range the model sets
        raise UsageError(f"--fine-tune-layers {args.fine_tune_layers} is more than the model's {depth} layers; "
                         f"pass 0 to {depth}, or all")
    print(f"model: {args.model}")
    print(f"layers {config.num_hidden_layers}, hidden {config.hidden_size}, heads {config.num_attention_heads}, "
          f"intermediate {config.intermediate_size}, vocab {config.vocab_size}, "
          f"positions {config.max_position_embeddings}")
    print(f"parameters: {count_parameters(model):,}")
    print(f"weights: {model.load_report}")
    if args.fine_tune_layers is not None:
        BertLayer(model, fine_tune_layers=args.fine_tune_layers, output=args.output).summary()
    return 0
