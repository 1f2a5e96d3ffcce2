r"""The pretraining corpus: files -> documents -> sentences -> sentence pairs.

A corpus is plain UTF-8 text in files, folders or glob patterns (``.gz`` files
are read as they are). A blank line ends a document, a heading line like
``= Title =`` starts one, or (``doc_per_line``) every line is one. Inside a
document the text is one sentence per line (``"sentences"``), or prose split into
sentences with `pysbd <https://github.com/nipunsadvilkar/pySBD>`_, either wrapped
over lines (``"prose"``) or one paragraph per line (``"paragraphs"``, never split
across a line break); ``"auto"`` picks one per file (see
:func:`~bertforge.data.sentences.detect_text_format`).
Next-sentence prediction wants consecutive sentences of one document, which is
what :func:`sentence_pairs` gives.

Everything streams: :func:`read_documents` is a generator that reads a block at
a time and keeps a few chunks in flight, so a corpus far larger than memory
reads in one pass (a document is held whole), in time that grows with its length. Bad input raises :class:`~bertforge.errors.BertforgeError`
with one line that names the file and what to do.

>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> _ = (folder / "poe.txt").write_text(
...     "Mr. Poe wrote tales. Dr. Templeton read them.\n\nThe raven spoke. It said one word.\n")
>>> documents = list(read_documents([folder], text_format="prose", workers=1))
>>> documents
[['Mr. Poe wrote tales.', 'Dr. Templeton read them.'], ['The raven spoke.', 'It said one word.']]
>>> list(sentence_pairs(documents))
[('Mr. Poe wrote tales.', 'Dr. Templeton read them.'), ('The raven spoke.', 'It said one word.')]
"""

from __future__ import annotations

import glob
import gzip
import os
import re
import zlib
from collections import deque
from itertools import pairwise
from pathlib import Path
from typing import Iterable, Iterator, NoReturn

# split_sentences and split_clauses are re-exported: this module is where the README
# (and so users) import them from. _segmenter is the worker pool's initializer.
from bertforge.data.sentences import (_segmenter, detect_text_format, is_heading, prose_pieces, split_clauses,
                                      split_piece, split_sentences)
from bertforge.data.workers import worker_pool
from bertforge.errors import BertforgeError

__all__ = [
    "TEXT_FORMATS",
    "corpus_files",
    "read_documents",
    "count_documents",
    "check_documents",
    "split_sentences",
    "split_clauses",
    "sentence_pairs",
]

TEXT_FORMATS = ("auto", "sentences", "prose", "paragraphs")

# "auto" looks at this many non-blank lines at the top of each file.
SNIFF_LINES = 2000
# Characters of text per task sent to a worker process, and tasks in flight per
# worker: enough to keep every worker busy, few enough to bound the memory used.
CHUNK_CHARS = 32_000
TASKS_PER_WORKER = 4

_GLOB_CHARACTERS = re.compile(r"[*?\[]")
# The first bytes of compressed formats, to name the format when such a file is read as text.
_COMPRESSED_MAGIC = {b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"PK\x03\x04": "zip",
                     b"\x28\xb5\x2f\xfd": "zstd", b"\x1f\x8b": "gzip"}


def _fail(name: str, what: str, fix: str) -> NoReturn:
    """Raise the one-line error: ``name: what; fix``."""
    raise BertforgeError(f"{name}: {what}; {fix}")


# --------------------------------------------------------------------------- finding files


def corpus_files(paths) -> list[Path]:
    """The files of a corpus, in reading order, from files, folders and glob patterns.

    ``paths`` is one entry or a list. A folder gives every regular file under it,
    hidden files and folders (a leading ``.``) left out, sorted by their path
    inside the folder. A pattern (``*``, ``?``, ``[...]``, ``**`` for any depth)
    gives its matches sorted; a folder among them counts as a folder. A file named
    twice is read once, where it first appears. A path that does not exist, a
    pattern that matches nothing and a folder with no files are errors, so a typo
    cannot silently shrink the corpus.

    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> for name in ("b.txt", "a/2.txt", "a/1.txt.gz", "a/.hidden", "c.md"):
    ...     (root / name).parent.mkdir(parents=True, exist_ok=True)
    ...     _ = (root / name).write_bytes(b"")
    >>> [str(p.relative_to(root)) for p in corpus_files([root / "*.txt", root])]
    ['b.txt', 'a/1.txt.gz', 'a/2.txt', 'c.md']
    """
    entries = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not entries:
        raise BertforgeError("no corpus files were given; pass text files, folders or patterns like 'data/*.txt'")
    files, seen = [], set()
    for entry in entries:
        for path in _expand(entry):
            key = os.path.realpath(path)
            if key not in seen:
                seen.add(key)
                files.append(path)
    return files


def _expand(entry) -> list[Path]:
    """The files that one entry names; never empty."""
    name = os.fspath(entry)
    path = Path(name)
    if path.is_dir():
        files = _folder_files(path)
    elif path.is_file():
        files = [path]
    elif path.exists():
        # A pipe would block the reader until something writes to it; a device is not a corpus.
        _fail(name, "is not a regular file or folder (a pipe, socket or device)", "save the text to a file first")
    elif _GLOB_CHARACTERS.search(name):  # only a path that is not there is a pattern: a name may hold [
        matches = sorted(glob.glob(name, recursive=True))
        if not matches:
            _fail(name, "no such file or folder (the pattern matches nothing)",
                  "check the pattern and the current folder")
        files = [file for match in map(Path, matches)
                 for file in (_folder_files(match) if match.is_dir() else [match] if match.is_file() else [])]
    else:
        _fail(name, "no such file or folder", "check the path and the current folder")
    if not files:
        _fail(name, "no files to read there (hidden files are skipped)", "put the corpus text files in it")
    return files


def _folder_files(folder: Path) -> list[Path]:
    """Regular, non-hidden files under ``folder``, sorted by their path inside it.

    Links to folders are not followed, so a link back up the tree cannot loop."""
    found = []
    for parent, folders, names in os.walk(folder):
        folders[:] = [name for name in folders if not name.startswith(".")]
        found.extend(Path(parent, name) for name in names if not name.startswith("."))
    return sorted((path for path in found if path.is_file()), key=lambda path: path.relative_to(folder).parts)


# --------------------------------------------------------------------------- reading lines


def _lines(path: Path) -> Iterator[str]:
    """The lines of one file, decoded strictly as UTF-8, without their line breaks (LF, CRLF or CR).

    Bytes are split on ``\\n`` before decoding (a UTF-8 character never holds that
    byte), so a decoding error is placed exactly at its line and byte offset."""
    name = str(path)
    compressed = name.endswith(".gz")
    offset = 0
    try:
        with (gzip.open(path, "rb") if compressed else open(path, "rb")) as handle:
            for number, raw in enumerate(handle, start=1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as error:
                    _fail_encoding(name, number, offset + error.start, raw[error.start], compressed, raw)
                line = line.removeprefix("\ufeff") if number == 1 else line
                line = line.rstrip("\n").removesuffix("\r")
                if "\r" in line:  # old Mac line ends: a file of them is otherwise one line
                    yield from line.split("\r")
                else:
                    yield line
                offset += len(raw)
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        _fail(name, f"not a valid gzip file ({error})",
              "re-create it with gzip, or decompress it and pass the text file")
    except IsADirectoryError:
        _fail(name, "is a folder, not a file", "pass the folder itself to read every file in it")
    except PermissionError:
        _fail(name, "permission denied", "make the file readable or copy it somewhere readable")
    except FileNotFoundError:
        _fail(name, "no such file (it went away while the corpus was read)", "check the path")
    except OSError as error:
        _fail(name, f"cannot be read ({error.strerror or error})", "pass a regular text file")


def _fail_encoding(name: str, line: int, offset: int, byte: int, compressed: bool, raw: bytes) -> NoReturn:
    where = "of the uncompressed text " if compressed else ""
    found = next((kind for magic, kind in _COMPRESSED_MAGIC.items() if raw.startswith(magic)), None)
    if line == 1 and found and not compressed:
        _fail(name, f"looks {found}-compressed, not text", "decompress it (gzip files are read when named .gz)")
    _fail(name, f"line {line}: byte 0x{byte:02x} at byte offset {offset} {where}is not UTF-8",
          "convert the file to UTF-8 (for example: iconv -f latin1 -t utf-8 in.txt > out.txt)")


def _blocks(lines: Iterable[str]) -> Iterator[list[str]]:
    """Documents as runs of lines, stripped: a blank line (or one of only whitespace) ends one,
    a top-level heading (``= Title =``) starts one; heading lines are not text."""
    block: list[str] = []
    for line in lines:
        line = line.strip()
        level = is_heading(line) if line[:1] == "=" else 0
        if line and not level:
            block.append(line)
        elif block and (not line or level == 1):
            yield block
            block = []
    if block:
        yield block


def _file_blocks(path: Path, text_format: str, doc_per_line: bool) -> Iterator[tuple[str, list[str]]]:
    """``(format, lines)`` for each document of one file, the format decided first for ``"auto"``."""
    lines = _lines(path)
    if text_format == "auto":
        sample, non_blank = [], 0
        for line in lines:
            sample.append(line)
            non_blank += bool(line.strip())
            if non_blank >= SNIFF_LINES:
                break
        text_format = detect_text_format(sample)
        lines = _chain(sample, lines)
    for block in _blocks(lines):
        if doc_per_line:
            for line in block:
                yield text_format, [line]
        else:
            yield text_format, block


def _chain(first: list[str], rest: Iterator[str]) -> Iterator[str]:
    yield from first
    yield from rest


def _units(text_format: str, block: list[str]) -> list[str]:
    """What one document is split as: its lines (one sentence each), or pieces of prose.

    Wrapped prose is joined and cut at sentence ends beyond doubt; a paragraph per
    line is cut the same way line by line, because a sentence never goes on across
    a line break there: no piece is longer than a line or MAX_PIECE_CHARS, and so
    the work grows with the length of the corpus, whatever its layout."""
    if text_format == "sentences":
        return [" ".join(line.split()) for line in block]
    if text_format == "prose":
        return prose_pieces(" ".join(block))
    return [piece for line in block for piece in prose_pieces(line)]


def _chunks(files: list[Path], text_format: str,
            doc_per_line: bool) -> Iterator[tuple[bool, list[str], list[bool]]]:
    """``(is prose, units, starts a document)`` tasks of about CHUNK_CHARS characters.

    A long document is spread over several tasks, so a corpus that is one
    document still keeps every worker busy."""
    units: list[str] = []
    firsts: list[bool] = []
    size, chunk_prose = 0, False
    try:
        for path in files:
            for found_format, block in _file_blocks(path, text_format, doc_per_line):
                prose = found_format != "sentences"
                first = True
                for unit in _units(found_format, block):
                    if units and (prose != chunk_prose or size >= CHUNK_CHARS):
                        yield chunk_prose, units, firsts
                        units, firsts, size = [], [], 0
                    units.append(unit)
                    firsts.append(first)
                    chunk_prose, first = prose, False
                    size += len(unit)
    except BertforgeError:
        # Bad input further on: the documents read before it still count.
        if units:
            yield chunk_prose, units, firsts
        raise
    if units:
        yield chunk_prose, units, firsts


# --------------------------------------------------------------------------- documents


def read_documents(paths, text_format: str = "auto", split_clauses: bool = False,
                   workers: int | None = None, doc_per_line: bool = False) -> Iterator[list[str]]:
    """Documents of a corpus in file order, each a list of sentences (stripped, never empty).

    ``paths`` is what :func:`corpus_files` takes. A blank line ends a document, and
    a top-level heading line (``= Title =``, wiki style) starts one; heading lines
    of any level (``= = Section = =``) are left out. With ``doc_per_line`` every
    line is a document. ``text_format`` is ``"sentences"`` (one per line),
    ``"prose"`` (wrapped over lines: the lines of a document are joined and split
    with :func:`split_sentences`), ``"paragraphs"`` (one paragraph per line, each
    split on its own) or ``"auto"`` (decided per file by
    :func:`~bertforge.data.sentences.detect_text_format` on its first 2,000
    non-blank lines). Lines may end in LF, CRLF or CR. Whitespace runs inside a
    sentence become one space. With ``split_clauses`` every sentence is cut further
    by :func:`split_clauses`.

    Prose is split by ``workers`` processes (default: one per CPU; ``1`` splits in
    this process), in order, with a few chunks in flight, so memory stays bounded
    and the output is the same for any number of workers. The workers end with this
    process, however it ends. The files are found (and the arguments checked) at
    the call; they are read as documents are taken. A corpus with no sentence at
    all is an error.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "lines.txt"
    >>> _ = path.write_text("It was dark.\\nThe bells rang.\\n\\n  \\nNevermore, quoth the raven.\\n")
    >>> documents = read_documents(path, split_clauses=True, workers=1)
    >>> next(documents), next(documents)
    (['It was dark.', 'The bells rang.'], ['Nevermore,', 'quoth the raven.'])
    >>> _ = path.write_bytes(b" = Usher = \\r\\nI saw it. It fell.\\r\\n = Morella = \\r\\nShe died.\\r\\n")
    >>> list(read_documents(path, workers=1))
    [['I saw it.', 'It fell.'], ['She died.']]
    """
    if text_format not in TEXT_FORMATS:
        raise BertforgeError(f"text_format={text_format!r} is not a choice; pass one of {', '.join(TEXT_FORMATS)}")
    workers = (os.cpu_count() or 1) if workers is None else workers
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise BertforgeError(f"workers={workers!r} is not a count of processes; pass 1 or more (1: no extra process)")
    files = corpus_files(paths)
    return _documents(files, text_format, split_clauses, workers, doc_per_line)


def _documents(files: list[Path], text_format: str, clauses: bool, workers: int,
               doc_per_line: bool) -> Iterator[list[str]]:
    found = False
    document: list[str] = []
    try:
        for firsts, split in _in_order(_chunks(files, text_format, doc_per_line), clauses, workers):
            for first, sentences in zip(firsts, split):
                if first and document:
                    found = True
                    yield document
                    document = []
                document.extend(sentences)
    except BertforgeError:
        if document:  # complete: a document's units are sent only once its end was read
            yield document
        raise
    if document:
        found = True
        yield document
    if not found:
        _fail(_where(files), "no sentences found, the corpus is empty or blank", "pass files that hold text")


def _where(files: list[Path]) -> str:
    return str(files[0]) if len(files) == 1 else f"{len(files)} files ({files[0]}, ...)"


#: How a corpus marks where one document ends and the next begins, for error messages.
DOCUMENT_MARKS = ("put a blank line between documents, or a heading line like '= Title =' at the top of each, "
                  "or pass --doc-per-line when every line is a document")


def count_documents(paths, doc_per_line: bool = False, limit: int | None = None) -> int:
    """How many documents the corpus at ``paths`` holds (up to ``limit``), without splitting a sentence.

    Documents end where :func:`read_documents` ends them, so this is quick (it
    reads lines, no more) and stops as soon as it has counted ``limit``.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "c.txt"
    >>> _ = path.write_text("One. Two.\\nThree.\\n\\nFour.\\n")
    >>> count_documents(path), count_documents(path, doc_per_line=True), count_documents(path, limit=1)
    (2, 3, 1)
    """
    count = 0
    for path in corpus_files(paths):
        for block in _blocks(_lines(path)):
            count += len(block) if doc_per_line else 1
            if limit is not None and count >= limit:
                return limit
    return count


def check_documents(paths, needed: int, purpose: str, doc_per_line: bool = False, otherwise: str = "") -> None:
    """Fail with one line naming the corpus files unless they hold ``needed`` documents.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "one.txt"
    >>> _ = path.write_text("One. Two.\\nThree.\\n")
    >>> check_documents(path, 2, "next-sentence prediction")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    bertforge.errors.BertforgeError: .../one.txt: next-sentence prediction needs at least 2 documents, found 1; put a blank line ...
    """
    found = count_documents(paths, doc_per_line=doc_per_line, limit=needed)
    if not found:
        _fail(_where(corpus_files(paths)), "no sentences found, the corpus is empty or blank", "pass files that hold text")
    if found < needed:
        fix = DOCUMENT_MARKS + (f"; {otherwise}" if otherwise else "")
        _fail(_where(corpus_files(paths)), f"{purpose} needs at least {needed} documents, found {found}", fix)


class _Done:
    """A result that is already there, in the shape of a pool's AsyncResult."""

    def __init__(self, value):
        self.value = value

    def ready(self) -> bool:
        return True

    def get(self):
        return self.value


def _in_order(chunks: Iterator[tuple[bool, list[str], list[bool]]], clauses: bool,
              workers: int) -> Iterator[tuple[list[bool], list[list[str]]]]:
    """``(starts a document, sentences)`` per unit of each chunk, in order; prose goes to a
    pool when workers > 1.

    ``Pool.imap`` would keep order too, but it pulls its input as fast as it can,
    that is the whole corpus into memory when the workers are slower than the
    reading. Here at most ``TASKS_PER_WORKER * workers`` chunks are in flight, and
    the next chunk is read only when the oldest one has been handed on. Lines with
    one sentence each are cheap and never leave this process."""
    pending: deque = deque()
    pool = None
    limit = TASKS_PER_WORKER * workers
    try:
        try:
            for prose, units, firsts in chunks:
                if prose and workers > 1:
                    pool = pool or _start_pool(workers)
                    pending.append((firsts, pool.apply_async(_chunk_documents, (prose, units, clauses))))
                else:
                    pending.append((firsts, _Done(_chunk_documents(prose, units, clauses))))
                while pending and (len(pending) >= limit or pending[0][1].ready()):
                    firsts, result = pending.popleft()
                    yield firsts, result.get()
        except BertforgeError:
            # Bad input further on: hand over everything read before it, then report it.
            while pending:
                firsts, result = pending.popleft()
                yield firsts, result.get()
            raise
        while pending:
            firsts, result = pending.popleft()
            yield firsts, result.get()
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()


def _start_pool(workers: int):
    # The workers run only module-level functions (the one below and those of
    # bertforge.data.sentences), so any start method works ("fork" on Linux, "spawn"
    # on macOS and Windows).
    return worker_pool(workers, initializer=_segmenter)


def _chunk_documents(prose: bool, units: list[str], clauses: bool) -> list[list[str]]:
    """The sentences of each unit of a chunk (run in a worker process for prose)."""
    split = []
    for unit in units:
        sentences = split_piece(unit) if prose else [unit] if unit else []
        if clauses:
            sentences = [clause for sentence in sentences for clause in split_clauses(sentence)]
        split.append(sentences)
    return split


def sentence_pairs(documents: Iterable[list[str]]) -> Iterator[tuple[str, str]]:
    """Consecutive sentences ``(s0, s1), (s1, s2), ...`` of each document; never across documents.

    >>> list(sentence_pairs([["a", "b", "c"], ["d"], ["e", "f"]]))
    [('a', 'b'), ('b', 'c'), ('e', 'f')]
    """
    for document in documents:
        yield from pairwise(document)
