"""A pretraining corpus tokenized once into memory-mapped token shards.

Each shard is a folder-less triple of files inside one cache folder:

- ``shard-NNNNN.tokens``: every token id of its documents, back to back
  (``uint16`` when the vocabulary fits, else ``uint32``);
- ``shard-NNNNN.sentences.npy``: where each sentence starts in the tokens (one
  more entry than sentences, so sentence ``i`` is ``tokens[s[i]:s[i + 1]]``);
- ``shard-NNNNN.documents.npy``: where each document starts in the sentences.

Training reads them through ``numpy.memmap``, so only the pages a batch touches
are in memory and a corpus far larger than memory trains with flat memory. The
folder's name is a hash of the corpus files (path, size, modification time), the
tokenizer and the reading options: running again on the same corpus and
vocabulary finds the folder and skips tokenization. The folder is built under a
temporary name and renamed when complete, so a killed build is never reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from bertforge.errors import BertforgeError
from bertforge.data.corpus import corpus_files, read_documents

FORMAT_VERSION = 2  # 2: headings end documents, lone CRs end lines, paragraph-per-line files
SHARD_TOKENS = 1 << 25  # ~32M tokens (64 MB as uint16) per shard: many shards for ranks to share
TOKENIZE_SENTENCES = 16384  # sentences sent to the tokenizer at once (it runs them in parallel)


@dataclass(frozen=True)
class Shard:
    """One memory-mapped shard: tokens plus sentence and document boundaries.

    >>> shard = Shard(np.arange(7), np.array([0, 3, 5, 7]), np.array([0, 2, 3]))
    >>> shard.n_documents, shard.n_sentences, shard.document_token_range(1)
    (2, 3, (5, 7))
    """

    tokens: np.ndarray
    sentence_starts: np.ndarray  # int64, n_sentences + 1 offsets into tokens
    document_starts: np.ndarray  # int64, n_documents + 1 offsets into sentences

    @property
    def n_documents(self) -> int:
        return len(self.document_starts) - 1

    @property
    def n_sentences(self) -> int:
        return len(self.sentence_starts) - 1

    @property
    def n_tokens(self) -> int:
        return int(self.sentence_starts[-1])

    def document_token_range(self, document: int) -> tuple[int, int]:
        first, last = self.document_starts[document], self.document_starts[document + 1]
        return int(self.sentence_starts[first]), int(self.sentence_starts[last])


@dataclass
class ShardSet:
    """All shards of one tokenized corpus, with the facts recorded when it was built."""

    directory: Path
    shards: list[Shard]
    meta: dict
    reading: str = ""  # how fast the corpus was read and tokenized, when it was just now

    @property
    def n_tokens(self) -> int:
        return sum(shard.n_tokens for shard in self.shards)

    @property
    def n_sentences(self) -> int:
        return sum(shard.n_sentences for shard in self.shards)

    @property
    def n_documents(self) -> int:
        return sum(shard.n_documents for shard in self.shards)

    def describe(self) -> str:
        return (f"{self.n_documents:,} documents, {self.n_sentences:,} sentences, {self.n_tokens:,} tokens "
                f"in {len(self.shards)} shard(s) at {self.directory}" + (f"; {self.reading}" if self.reading else ""))


def default_cache_dir() -> Path:
    """``$BERTFORGE_CACHE``, else ``$XDG_CACHE_HOME/bertforge``, else ``~/.cache/bertforge``."""
    if os.environ.get("BERTFORGE_CACHE"):
        return Path(os.environ["BERTFORGE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "bertforge"


def shard_key(files: Sequence[Path], tokenizer, text_format: str, split_clauses: bool,
              doc_per_line: bool = False) -> str:
    """A hash naming what the shards hold: the same inputs give the same key."""
    digest = hashlib.sha256()
    options = {"format": FORMAT_VERSION, "text_format": text_format, "split_clauses": split_clauses,
               "doc_per_line": doc_per_line}
    digest.update(json.dumps(options).encode())
    for file in files:
        stat = file.stat()
        digest.update(f"{file.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    digest.update(tokenizer.backend.to_str().encode())
    return digest.hexdigest()[:20]


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16) if vocab_size <= 1 << 16 else np.dtype(np.uint32)


class _ShardWriter:
    """Appends tokenized documents to shard files, starting a new shard when one is full."""

    def __init__(self, directory: Path, dtype: np.dtype, shard_tokens: int):
        self.directory, self.dtype, self.shard_tokens = directory, dtype, shard_tokens
        self.names: list[str] = []
        self.handle = None
        self.longest_sentence = 0

    def _open(self) -> None:
        name = f"shard-{len(self.names):05d}"
        self.names.append(name)
        self.handle = open(self.directory / f"{name}.tokens", "wb")
        self.sentence_lengths: list[int] = []
        self.document_sizes: list[int] = []
        self.tokens_written = 0

    def add(self, document: list[list[int]]) -> None:
        if self.handle is None:
            self._open()
        lengths = [len(ids) for ids in document]
        flat = np.fromiter((i for ids in document for i in ids), dtype=self.dtype, count=sum(lengths))
        self.handle.write(flat.tobytes())
        self.sentence_lengths.extend(lengths)
        self.document_sizes.append(len(document))
        self.tokens_written += len(flat)
        self.longest_sentence = max(self.longest_sentence, max(lengths))
        if self.tokens_written >= self.shard_tokens:  # shards end at a document boundary
            self._close()

    def _close(self) -> None:
        self.handle.close()
        self.handle = None
        name = self.names[-1]
        np.save(self.directory / f"{name}.sentences.npy", _offsets(self.sentence_lengths))
        np.save(self.directory / f"{name}.documents.npy", _offsets(self.document_sizes))

    def finish(self) -> list[str]:
        if self.handle is not None:
            self._close()
        return self.names


def _offsets(sizes: list[int]) -> np.ndarray:
    offsets = np.zeros(len(sizes) + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    return offsets


def _tokenized_documents(documents: Iterable[list[str]], tokenizer) -> Iterable[list[list[int]]]:
    """Documents of token-id lists; sentences that give no token are dropped, then empty documents."""
    pending: list[list[str]] = []
    size = 0

    def flush():
        flat = [sentence for document in pending for sentence in document]
        ids = iter(tokenizer.token_ids(flat))
        for document in pending:
            tokenized = [sentence_ids for sentence_ids in (next(ids) for _ in document) if sentence_ids]
            if tokenized:
                yield tokenized

    for document in documents:
        pending.append(document)
        size += len(document)
        if size >= TOKENIZE_SENTENCES:
            yield from flush()
            pending, size = [], 0
    if pending:
        yield from flush()


def build_shards(corpus: Sequence[str | os.PathLike] | str | os.PathLike, tokenizer, cache_dir=None,
                 text_format: str = "auto", split_clauses: bool = False, workers: int | None = None,
                 shard_tokens: int = SHARD_TOKENS, progress: bool = False, doc_per_line: bool = False) -> ShardSet:
    """Tokenize ``corpus`` into shards under ``cache_dir``, or reuse the shards made before.

    The reading options are those of :func:`~bertforge.data.corpus.read_documents`.
    A set just built says in ``reading`` (and so in :meth:`ShardSet.describe`) how
    many megabytes of files it read per second.

    >>> import tempfile
    >>> from bertforge.text.tokenizer import Tokenizer
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.txt").write_text("The cat sat.\\nIt slept.\\n\\nA dog ran far.\\n")
    >>> tok = Tokenizer.train(["the cat sat it slept a dog ran far"] * 5, vocab_size=60)
    >>> shards = build_shards(folder / "a.txt", tok, cache_dir=folder / "cache")
    >>> shards.n_documents, shards.n_sentences
    (2, 3)
    >>> build_shards(folder / "a.txt", tok, cache_dir=folder / "cache").directory == shards.directory
    True
    """
    paths = [corpus] if isinstance(corpus, (str, os.PathLike)) else list(corpus)
    files = corpus_files(paths)
    described = ", ".join(str(p) for p in paths)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "shards"
    target = root / shard_key(files, tokenizer, text_format, split_clauses, doc_per_line)
    if (target / "meta.json").is_file():
        return open_shards(target)

    root.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=".building-", dir=root))
    try:
        writer = _ShardWriter(building, token_dtype(tokenizer.vocab_size), shard_tokens)
        started = time.perf_counter()
        documents = read_documents(paths, text_format=text_format, split_clauses=split_clauses, workers=workers,
                                   doc_per_line=doc_per_line)
        from tqdm.auto import tqdm

        # closing: whatever stops the loop (bad input, Ctrl+C) ends the splitting processes now.
        with closing(documents), tqdm(desc="tokenizing corpus", unit=" docs", disable=not progress) as bar:
            for document in _tokenized_documents(documents, tokenizer):
                writer.add(document)
                bar.update(1)
        seconds = time.perf_counter() - started
        megabytes = sum(file.stat().st_size for file in files) / 1e6
        names = writer.finish()
        if not names:
            raise BertforgeError(f"{described}: no sentences found; pass text files with prose "
                                 "or one sentence per line")
        if writer.longest_sentence <= 1:
            raise BertforgeError(f"{described}: no sentence is longer than one token; pretraining needs "
                                 "sentences of several words")
        meta = {"format": FORMAT_VERSION, "shards": names, "files": [str(f) for f in files],
                "text_format": text_format, "split_clauses": split_clauses, "doc_per_line": doc_per_line,
                "vocab_size": tokenizer.vocab_size, "dtype": writer.dtype.name,
                "longest_sentence": writer.longest_sentence}
        (building / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        try:
            building.rename(target)
        except OSError:
            if not (target / "meta.json").is_file():  # not merely another process finishing first
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    shards = open_shards(target)
    shards.reading = (f"read and tokenized {megabytes:,.1f} MB of files in {seconds:,.1f} s "
                      f"({megabytes / max(seconds, 1e-9):,.2f} MB/s)")
    return shards


def open_shards(directory: str | os.PathLike) -> ShardSet:
    """Open the shards in ``directory`` read-only (memory-mapped)."""
    directory = Path(directory)
    try:
        meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise BertforgeError(f"{directory}: not a shard folder ({error}); build it again with "
                             "bertforge pretrain, or delete it") from None
    if meta.get("format") != FORMAT_VERSION:
        raise BertforgeError(f"{directory}: shards of format {meta.get('format')}, this version reads "
                             f"{FORMAT_VERSION}; delete the folder to rebuild it")
    dtype = np.dtype(meta["dtype"])
    shards = []
    for name in meta["shards"]:
        sentences = np.load(directory / f"{name}.sentences.npy")
        documents = np.load(directory / f"{name}.documents.npy")
        count = int(sentences[-1])
        tokens = np.memmap(directory / f"{name}.tokens", dtype=dtype, mode="r", shape=(count,))
        shards.append(Shard(tokens, sentences, documents))
    return ShardSet(directory, shards, meta)
