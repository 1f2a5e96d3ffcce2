"""Print the model's top predictions for each [MASK] in a text."""

from __future__ import annotations

import argparse

from bertforge.cli.options import COUNT

NAME = "fill-mask"
SUMMARY = "show a model's predictions for [MASK] tokens"
EPILOG = 'example: bertforge fill-mask --model runs/poe-bert "The [MASK] of Amontillado"'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The pretrained model, the masked text and how many predictions to show.

    >>> parser = argparse.ArgumentParser()
    >>> add_arguments(parser)
    >>> args = parser.parse_args(["--model", "runs/poe-bert", "The [MASK] of Amontillado"])
    >>> args.text, args.top_k
    ('The [MASK] of Amontillado', 5)
    """
    parser.add_argument("--model", required=True, help="pretrained model directory")
    parser.add_argument("text", help="text with one or more [MASK]")
    parser.add_argument("--top-k", type=COUNT, default=5, help="predictions shown per [MASK]")


def run(args: argparse.Namespace) -> int:
    """Print one line per [MASK]: its top tokens with their probabilities."""
    from bertforge.apps.fill_mask import FillMask

    filler = FillMask.load(args.model)
    for index, options in enumerate(filler(args.text, top_k=args.top_k), 1):
        listed = "  ".join(f"{p.token} {p.probability:.3f}" for p in options)
        print(f"[MASK] {index}: {listed}")
    return 0
