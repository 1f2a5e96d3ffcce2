r"""What a file that is not UTF-8 most likely is, and the fix for each case.

Readers decode strictly, so that a wrong encoding is reported instead of read as
noise. A file can fail for different reasons that need different fixes: it is
UTF-16 (as Windows tools save "Unicode" text), it is compressed or binary, or it
is text in an 8-bit encoding such as latin-1. UTF-16 of plain ASCII text is even
valid UTF-8, every other byte a NUL, so it is told apart by that pattern before
decoding. :func:`decode_utf8` decodes or raises :class:`EncodingProblem` with the
line of the first bad byte; :func:`file_encoding_problem` finds the same in a file
too large to hold in memory.

>>> decode_utf8("caf\u00e9\n".encode())
'café\n'
>>> try:
...     decode_utf8("text,label\nhi,a\n".encode("utf-16-le"), example="in.csv")
... except EncodingProblem as problem:
...     print(problem.what)
...     print(problem.fix)
the file is UTF-16 (little-endian, without a byte-order mark), not UTF-8
re-save the file as UTF-8 (for example: iconv -f utf-16le -t utf-8 in.csv > out.csv)
"""

from __future__ import annotations

import codecs
import os

# Byte-order marks, the longer first: UTF-32 LE's starts with UTF-16 LE's.
_BYTE_ORDER_MARKS = ((codecs.BOM_UTF32_LE, "UTF-32", "utf-32"), (codecs.BOM_UTF32_BE, "UTF-32", "utf-32"),
                     (codecs.BOM_UTF16_LE, "UTF-16", "utf-16"), (codecs.BOM_UTF16_BE, "UTF-16", "utf-16"))
_COMPRESSED = {b"\x1f\x8b": "gzip", b"PK\x03\x04": "zip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz",
               b"\x28\xb5\x2f\xfd": "zstd"}
SNIFF_BYTES = 4096
_TEXT_CONTROLS = frozenset(b"\t\n\r\f\v\x1b")


class EncodingProblem(ValueError):
    """Why bytes are not UTF-8 text: ``line`` of the first bad byte (None when the whole
    file is in another encoding), ``what`` was found and the ``fix``."""

    def __init__(self, line: int | None, what: str, fix: str):
        super().__init__(what)
        self.line, self.what, self.fix = line, what, fix


def _resave(source: str, example: str) -> str:
    _, suffix = os.path.splitext(example)
    return f"re-save the file as UTF-8 (for example: iconv -f {source} -t utf-8 {example} > out{suffix})"


def _wide(head: bytes, example: str) -> EncodingProblem | None:
    """UTF-16 or UTF-32, by its byte-order mark or, without one, by NULs at every other byte."""
    for mark, name, source in _BYTE_ORDER_MARKS:
        if head.startswith(mark):
            return EncodingProblem(None, f"the file is {name} (it starts with a byte-order mark), not UTF-8",
                                   _resave(source, example))
    half = len(head) // 2
    if half < 2:
        return None
    even_nuls, odd_nuls = head[0:2 * half:2].count(0), head[1:2 * half:2].count(0)
    # ASCII text in UTF-16 has a NUL in one byte of every pair and almost never in the other.
    for nuls, others, order, source in ((odd_nuls, even_nuls, "little-endian", "utf-16le"),
                                        (even_nuls, odd_nuls, "big-endian", "utf-16be")):
        if nuls >= 0.3 * half and others <= 0.02 * half:
            return EncodingProblem(None, f"the file is UTF-16 ({order}, without a byte-order mark), not UTF-8",
                                   _resave(source, example))
    return None


def _binary(head: bytes) -> EncodingProblem | None:
    """Compressed or binary data, which no re-encoding turns into text."""
    for magic, kind in _COMPRESSED.items():
        if head.startswith(magic):
            return EncodingProblem(None, f"looks {kind}-compressed, not text", "decompress it and pass the text")
    sample = head[:SNIFF_BYTES]
    controls = sum(1 for byte in sample if byte < 32 and byte not in _TEXT_CONTROLS)
    if sample and (0 in sample or controls > 0.1 * len(sample)):
        return EncodingProblem(None, "holds binary data (NUL and control bytes), not text", "pass a text file")
    return None


def decode_utf8(data: bytes, example: str = "in.txt") -> str:
    """``data`` decoded strictly, a leading UTF-8 byte-order mark kept (callers drop it as they
    do for text); otherwise :class:`EncodingProblem`. ``example`` names the file in the fix.

    Lines count as editors and ``csv`` count them (``\\n``, ``\\r\\n`` and ``\\r`` each end one).

    >>> try:
    ...     decode_utf8(b"fine\\ncaf\\xe9\\n")
    ... except EncodingProblem as problem:
    ...     print(problem.line, problem.what)
    2 byte 0xe9 at column 4 is not UTF-8
    """
    wide = _wide(data[:SNIFF_BYTES], example)
    if wide is not None:
        raise wide
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        binary = _binary(data[:SNIFF_BYTES])
        if binary is not None:
            raise binary from None
        before = data[:error.start].decode("utf-8")
        line = before.count("\n") + before.count("\r") - before.count("\r\n") + 1
        column = error.start - max(data.rfind(b"\n", 0, error.start), data.rfind(b"\r", 0, error.start))
        raise EncodingProblem(line, f"byte 0x{data[error.start]:02x} at column {column} is not UTF-8",
                              _resave("latin1", example)) from None


def head_encoding_problem(head: bytes, example: str = "in.txt") -> EncodingProblem | None:
    """What the start of a file shows at once: UTF-16 or UTF-32 (valid UTF-8 or not).

    >>> head_encoding_problem("the cat".encode("utf-16")).what
    'the file is UTF-16 (it starts with a byte-order mark), not UTF-8'
    >>> head_encoding_problem(b"the cat") is None
    True
    """
    return _wide(head, example)


def file_encoding_problem(path: str | os.PathLike, example: str = "in.txt",
                          chunk_bytes: int = 1 << 20) -> EncodingProblem | None:
    """The first reason a file is not UTF-8 text, read in chunks; None when it is.

    The line is found by counting ``\\n``; the byte offset is given as well, as a
    large file is easier to inspect at an offset than at a column.

    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile(suffix=".txt", delete=False) as file:
    ...     _ = file.write(b"the cat\\nthe caf\\xe9\\n")
    >>> print(file_encoding_problem(file.name).what)
    byte 0xe9 at byte offset 15 is not UTF-8
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    with open(path, "rb") as file:
        head = file.read(SNIFF_BYTES)
        first = _wide(head, example)
        if first is not None:
            return first
        lines, consumed, chunk = 1, 0, head
        while chunk:
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as error:
                binary = _binary(head)
                if binary is not None:
                    return binary
                seen = error.object[:error.start]  # the bytes held back from the last chunk, then this one
                offset = consumed + len(chunk) - len(error.object) + error.start
                return EncodingProblem(lines + seen.count(b"\n"),
                                       f"byte 0x{error.object[error.start]:02x} at byte offset {offset} is not UTF-8",
                                       _resave("latin1", example))
            lines += chunk.count(b"\n")
            consumed += len(chunk)
            chunk = file.read(chunk_bytes)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return EncodingProblem(lines, f"the file ends inside a character, at byte offset {consumed}",
                               _resave("latin1", example))
    return None
