"""Turn texts from a file (CSV, TSV, JSONL or one text per line) or stdin into sentence
embeddings, written as .npy (one array), .jsonl (text and embedding per line) or .parquet
(text and embedding columns)."""

from __future__ import annotations

import argparse
import sys

from bertforge.cli.options import COUNT, Number, add_long_text, add_pooling, long_text
from bertforge.errors import BertforgeError

NAME = "embed"
SUMMARY = "turn texts into sentence embeddings"
EPILOG = "example: bertforge embed --model ./all-MiniLM-L6-v2 --normalize trec/test.csv --out trec.npy"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The model, the texts, the output file and how the vectors are made.

    >>> parser = argparse.ArgumentParser()
    >>> add_arguments(parser)
    >>> args = parser.parse_args(["--model", "bert", "texts.csv", "--out", "vectors.npy", "--normalize"])
    >>> args.pooling, args.normalize, args.batch_size, args.device
    ('mean', True, 64, 'cpu')
    """
    parser.add_argument("--model", required=True, help="model directory")
    parser.add_argument("input", help="file of texts (CSV, TSV, JSONL or plain lines), or - for stdin")
    parser.add_argument("--out", required=True, help="output file: .npy, .jsonl or .parquet")
    parser.add_argument("--text-column", help="name or 0-based position of the text column")
    add_pooling(parser, help="mean of the tokens, the [CLS] state, or the pooler output")
    parser.add_argument("--normalize", action="store_true", help="scale every vector to unit length")
    parser.add_argument("--batch-size", type=COUNT, default=64, help="texts per model run")
    # The windows of a long text are averaged into its one vector: no --window-aggregate to choose.
    add_long_text(parser, aggregate=False)
    parser.add_argument("--max-length", type=Number(low=3, whole=True),  # [CLS], one token, [SEP]
                        help="window in tokens (default: the model's positions, at most 512)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 ...")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary")


def run(args: argparse.Namespace) -> int:
    """Read the texts, embed them and write the vectors; the cheap checks come before the model is read."""
    from bertforge.data.labeled import read_texts
    from bertforge.apps.embedding import Embedder, check_output_path, save_embeddings

    out = check_output_path(args.out)  # a wrong suffix should fail before the model is read
    data = read_texts(sys.stdin if args.input == "-" else args.input, text_column=args.text_column)
    if not data.texts:
        raise BertforgeError(f"{data.path}: no texts found; give one text per line or a text column")
    embedder = Embedder.load(args.model, pooling=args.pooling, normalize=args.normalize,
                             max_length=args.max_length, device=args.device, batch_size=args.batch_size,
                             long_text=long_text(args))
    vectors = embedder.encode(data.texts, progress=not args.quiet)
    save_embeddings(out, data.texts, vectors)
    if not args.quiet:
        print(f"{len(vectors)} embeddings of dimension {vectors.shape[1]} written to {out}")
    return 0
