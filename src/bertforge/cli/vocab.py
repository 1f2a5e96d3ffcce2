"""Train a WordPiece vocabulary on a corpus; writes vocab.txt and tokenizer.json with the BERT special tokens."""

from __future__ import annotations

import argparse

from bertforge.cli.options import COUNT

NAME = "vocab"
SUMMARY = "train a WordPiece vocabulary on a corpus"
EPILOG = "example: bertforge vocab poe.txt --vocab-size 8000 --cased --out runs/poe-vocab"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The corpus, the vocabulary's size and casing, and where it goes.

    >>> parser = argparse.ArgumentParser()
    >>> add_arguments(parser)
    >>> args = parser.parse_args(["poe.txt", "--vocab-size", "8000", "--cased", "--out", "runs/poe-vocab"])
    >>> args.corpus, args.vocab_size, args.cased, args.min_frequency
    (['poe.txt'], 8000, True, 2)
    """
    parser.add_argument("corpus", nargs="+", help="text files, folders or globs (.gz too)")
    parser.add_argument("--vocab-size", type=COUNT, default=30522,
                        help="tokens in the vocabulary, special tokens and single characters included")
    parser.add_argument("--cased", action="store_true", help="keep upper case (default: lower-case everything)")
    parser.add_argument("--min-frequency", type=COUNT, default=2,
                        help="times a pair must occur for the trainer to merge it")
    parser.add_argument("--out", required=True, help="directory for vocab.txt and tokenizer.json")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Train the vocabulary, save it and print its size."""
    from bertforge.data.corpus import corpus_files, read_documents
    from bertforge.text.tokenizer import Tokenizer

    files = corpus_files(args.corpus)
    plain = all(f.suffix != ".gz" for f in files)
    # Plain files go to the tokenizers library whole (it reads them in parallel);
    # compressed ones are streamed through the corpus reader.
    source = [str(f) for f in files] if plain else (
        " ".join(sentences) for sentences in read_documents(args.corpus, text_format="sentences"))
    tokenizer = Tokenizer.train(source, vocab_size=args.vocab_size, lowercase=not args.cased,
                                min_frequency=args.min_frequency, show_progress=not args.quiet)
    out = tokenizer.save(args.out)
    print(f"vocabulary: {tokenizer.vocab_size:,} tokens ({'cased' if args.cased else 'uncased'}) -> {out}")
    return 0
