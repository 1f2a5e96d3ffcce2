"""Reading a pretraining corpus: sentence splitting and tokenization throughput, before and after.

Two corpora:

* the Works of Poe (2.85 MB, prose wrapped over lines, a blank line between paragraphs);
* a synthetic corpus of one paragraph per line, no blank line, CRLF line ends (the
  layout of WikiText), made of Poe's paragraphs repeated to ``--synthetic-mb``
  megabytes (10 by default).

"Before" is the reader as it was: each document's lines joined and handed to
``pysbd.Segmenter`` in pieces cut only outside quotes (a copy of that code is
below). On the synthetic corpus the whole file was one document and a quotation
left open by a paragraph meant no cut for the rest of it, so its time grows with
the square of the length: it is measured on prefixes of 25, 50 and 100 kB only.
"After" is ``read_documents`` (one process, so MB/s is per core) and
``build_shards`` (split and tokenized, ``--workers`` processes, wall clock). On a
1 MB prefix of the synthetic corpus the reader is also run with every piece handed
to pysbd's ``Segmenter`` (no shortcut for plain paragraphs, no one-scan abbreviation
lookup), and its sentences are compared with the reader's.

    python benchmarks/bench_corpus.py [--synthetic-mb 10] [--workers 2]
"""

import argparse
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

DATA_DIR = Path(os.environ.get("BERTFORGE_DATA", Path(__file__).resolve().parent.parent.parent / "shared" / "data"))


# --------------------------------------------------------------------------- the reader as it was


def old_split_sentences(text: str, segmenter) -> list[str]:
    """The splitter as it was: pysbd's Segmenter on pieces cut only outside quotes, no bound."""
    from bertforge.data.sentences import MAX_SEGMENT_CHARS, _glued_length, _safe_cuts

    text = " ".join(text.split())
    pieces = [text]
    if len(text) > MAX_SEGMENT_CHARS:
        pieces, start, candidate = [], 0, None
        for cut in _safe_cuts(text) + [len(text)]:
            if cut - start > MAX_SEGMENT_CHARS:
                end = candidate if candidate is not None and candidate > start else cut
                if end < len(text):
                    pieces.append(text[start:end])
                    start = end
            candidate = cut
        pieces.append(text[start:])
    spans, start = [], 0
    for piece in pieces:
        for segment in segmenter.segment(piece):
            segment = segment.strip()
            found = text.find(segment, start) if segment else -1
            if found < 0:
                continue
            start = found + len(segment)
            glued = _glued_length(text[spans[-1][0]:spans[-1][1]], segment) if spans else 0
            if glued:
                spans[-1][1] = found + glued
            if glued < len(segment):
                spans.append([start - len(segment[glued:].lstrip()), start])
    return [text[begin:end] for begin, end in spans]


def old_read(path: Path, segmenter) -> list[list[str]]:
    """Documents as the old reader made them from prose: runs of non-blank lines, joined."""
    documents, block = [], []
    for line in path.read_text(encoding="utf-8").removeprefix("\ufeff").splitlines():
        if line.strip():
            block.append(line.strip())
        elif block:
            documents.append(old_split_sentences(" ".join(block), segmenter))
            block = []
    if block:
        documents.append(old_split_sentences(" ".join(block), segmenter))
    return [document for document in documents if document]


# --------------------------------------------------------------------------- measuring


def timed(call):
    wall, cpu = time.perf_counter(), time.process_time()
    result = call()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def synthetic(poe: Path, megabytes: float, folder: Path) -> Path:
    text = poe.read_text(encoding="utf-8").removeprefix("\ufeff")
    paragraphs = [" ".join(block.split()) for block in re.split(r"\n\s*\n", text) if block.strip()]
    lines, size, target = [], 0, megabytes * 1e6
    while size < target:
        for paragraph in paragraphs:
            lines.append(paragraph)
            size += len(paragraph.encode("utf-8")) + 2
            if size >= target:
                break
    path = folder / "paragraphs.txt"
    path.write_bytes("\r\n".join(lines).encode("utf-8") + b"\r\n")
    return path


def prefix(path: Path, size: int, folder: Path) -> Path:
    data = path.read_bytes()[:size]
    cut = folder / f"prefix-{size}.txt"
    cut.write_bytes(data[:data.rfind(b"\r\n") + 2])
    return cut


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic-mb", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    poe = DATA_DIR / "poe" / "poe.txt"
    if not poe.is_file():
        sys.exit(f"real data not found at {poe}: place the shared data folder beside the checkout")

    import pysbd

    from bertforge.data.corpus import read_documents
    from bertforge.data.shards import build_shards
    from bertforge.text.tokenizer import Tokenizer

    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, pysbd {pysbd.__version__ if hasattr(pysbd, '__version__') else ''}")
    folder = Path(tempfile.mkdtemp(prefix="bench-corpus-"))
    segmenter = pysbd.Segmenter(language="en", clean=False)
    tokenizer = Tokenizer.train(poe.read_text(encoding="utf-8").splitlines(), vocab_size=8000)
    rows = []

    def row(corpus, what, path, seconds, cpu, documents):
        megabytes = path.stat().st_size / 1e6
        rows.append((corpus, what, megabytes, seconds, megabytes / seconds, megabytes / cpu if cpu else None,
                     documents))
        print(f"  {corpus:<24} {what:<40} {megabytes:8.3f} MB {seconds:8.1f} s {megabytes / seconds:7.3f} MB/s",
              flush=True)

    # Poe: the same documents before and after.
    old, seconds, cpu = timed(lambda: old_read(poe, segmenter))
    row("poe", "before: pysbd Segmenter, 1 process", poe, seconds, cpu, len(old))
    new, seconds, cpu = timed(lambda: list(read_documents(poe, text_format="prose", workers=1)))
    row("poe", "after: read_documents, 1 process", poe, seconds, cpu, len(new))
    same = new == old
    shards, seconds, cpu = timed(lambda: build_shards(poe, tokenizer, cache_dir=folder / "poe-shards",
                                                     workers=args.workers))
    row("poe", f"after: build_shards (split + tokenize), {args.workers} workers", poe, seconds, None,
        shards.n_documents)

    # A paragraph per line, CRLF, no blank line: the old reader on prefixes only.
    big = synthetic(poe, args.synthetic_mb, folder)
    for size in (25_000, 50_000, 100_000):
        part = prefix(big, size, folder)
        documents, seconds, cpu = timed(lambda: old_read(part, segmenter))
        row(f"paragraphs {size // 1000} kB", "before: pysbd Segmenter, 1 process", part, seconds, cpu, len(documents))
        documents, seconds, cpu = timed(lambda: list(read_documents(part, workers=1)))
        row(f"paragraphs {size // 1000} kB", "after: read_documents, 1 process", part, seconds, cpu, len(documents))
    part = prefix(big, 1_000_000, folder)
    documents, seconds, cpu = timed(lambda: list(read_documents(part, workers=1)))
    row("paragraphs 1 MB", "after: read_documents, 1 process", part, seconds, cpu, len(documents))
    # The same reader with every piece handed to pysbd (no plain-paragraph shortcut, no
    # abbreviation lookup): the sentences must be the same.
    from bertforge.data import sentences

    class PysbdOnly:
        def segment(self, text):
            return [sentence.strip() for sentence in segmenter.segment(text) if sentence.strip()]

    fast_segmenter = sentences._segmenter
    sentences._segmenter = lambda: PysbdOnly()
    try:
        reference, seconds, cpu = timed(lambda: list(read_documents(part, workers=1)))
    finally:
        sentences._segmenter = fast_segmenter
    row("paragraphs 1 MB", "pysbd Segmenter only, 1 process", part, seconds, cpu, len(reference))
    same_synthetic = reference == documents
    shards, seconds, cpu = timed(lambda: build_shards(big, tokenizer, cache_dir=folder / "big-shards",
                                                     workers=args.workers))
    row(f"paragraphs {args.synthetic_mb:g} MB", f"after: build_shards (split + tokenize), {args.workers} workers",
        big, seconds, None, shards.n_documents)

    print()
    print("| corpus | path | MB | seconds | MB/s | MB per CPU-second |")
    print("|---|---|---:|---:|---:|---:|")
    for corpus, what, megabytes, seconds, rate, per_cpu, _ in rows:
        print(f"| {corpus} | {what} | {megabytes:.3f} | {seconds:.1f} | {rate:.3f} | "
              f"{'' if per_cpu is None else f'{per_cpu:.3f}'} |")
    by = {(corpus, what.split(":")[0]): rate for corpus, what, _, _, rate, _, _ in rows if "1 process" in what}
    print()
    print(f"Poe, same documents before and after: {same}")
    print(f"paragraphs 1 MB, same sentences as pysbd alone: {same_synthetic}")
    from bertforge.data.segmenter import plain_sentences

    text = poe.read_text(encoding="utf-8").removeprefix("\ufeff")
    paragraphs = [" ".join(block.split()) for block in re.split(r"\n\s*\n", text) if block.strip()]
    plain = sum(len(paragraph) for paragraph in paragraphs if plain_sentences(paragraph) is not None)
    print(f"Poe, share of characters in plain paragraphs (cut without pysbd): "
          f"{plain / sum(map(len, paragraphs)):.1%}")
    for corpus in ("poe", "paragraphs 25 kB", "paragraphs 50 kB", "paragraphs 100 kB"):
        print(f"ratio after/before, {corpus}, 1 process: {by[(corpus, 'after')] / by[(corpus, 'before')]:.2f}x")


if __name__ == "__main__":
    main()
