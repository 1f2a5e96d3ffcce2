"""Writing files so that a kill at any moment leaves the old file or the new one, never half of one."""

from __future__ import annotations

import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def replacing(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` when the block succeeds.

    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "weights.bin"
    >>> with replacing(target) as temporary:
    ...     _ = temporary.write_bytes(b"new")
    >>> target.read_bytes(), sorted(p.name for p in target.parent.iterdir())
    (b'new', ['weights.bin'])
    """
    path = Path(path)
    # Same directory, so os.replace is an atomic rename on one file system.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


@contextmanager
def replacing_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty folder beside ``path``; put it in place of ``path`` when the block
    succeeds (an earlier folder there is moved aside first and removed last). A failed
    or killed block leaves ``path`` as it was.

    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "model"
    >>> with replacing_folder(target) as staging:
    ...     _ = (staging / "config.json").write_text("{}")
    >>> sorted(p.name for p in target.iterdir()), sorted(p.name for p in target.parent.iterdir())
    (['config.json'], ['model'])
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.parent / f".{path.name}.partial-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        yield staging
        earlier = None
        if path.exists():
            earlier = path.parent / f".{path.name}.old-{uuid.uuid4().hex[:8]}"
            path.rename(earlier)
        try:
            staging.rename(path)
        except OSError:
            if earlier is not None:
                earlier.rename(path)  # the earlier folder goes back where it was
            raise
        if earlier is not None:
            shutil.rmtree(earlier, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_text_atomically(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` as UTF-8 through a temporary file, flushed to disk before the rename.

    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "config.json"
    >>> write_text_atomically(target, "{}\\n").read_text()
    '{}\\n'
    """
    path = Path(path)
    with replacing(path) as temporary:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    return path
