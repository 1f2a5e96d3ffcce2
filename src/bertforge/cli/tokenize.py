"""Print the WordPiece tokens and the features of one text (or a pair)."""

from __future__ import annotations

import argparse
import json

from bertforge.cli.options import Number

NAME = "tokenize"
SUMMARY = "show the tokens and features of a text"
EPILOG = 'example: bertforge tokenize ./all-MiniLM-L6-v2 "How far is it from Denver to Aspen ?"'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """A vocabulary's folder, a text, an optional second text and the feature length.

    >>> parser = argparse.ArgumentParser()
    >>> add_arguments(parser)
    >>> args = parser.parse_args(["./bert", "Who?", "Poe."])
    >>> args.text, args.text_b, args.max_seq_length
    ('Who?', 'Poe.', 32)
    """
    parser.add_argument("model", help="model directory (or a folder with vocab.txt)")
    parser.add_argument("text", help="the text (the first of a pair)")
    parser.add_argument("text_b", nargs="?", default=None, help="second text of a pair")
    # [CLS], one word piece and [SEP]: the shortest features that keep any of the text.
    parser.add_argument("--max-seq-length", type=Number(low=3, whole=True), default=32,
                        help="feature length: longer texts are truncated, shorter ones padded")


def run(args: argparse.Namespace) -> int:
    """Print one JSON line: the real tokens, then the padded input ids, mask and segments."""
    from bertforge.text.features import InputExample, convert_single_example
    from bertforge.text.tokenizer import Tokenizer

    tokenizer = Tokenizer.from_pretrained(args.model)
    example = InputExample(args.text, text_b=args.text_b)
    input_ids, input_mask, segment_ids, _ = convert_single_example(tokenizer, example, args.max_seq_length)
    real = sum(input_mask)
    print(json.dumps({
        "tokens": tokenizer.convert_ids_to_tokens(input_ids[:real]),
        "input_ids": input_ids, "input_mask": input_mask, "segment_ids": segment_ids,
    }))
    return 0
