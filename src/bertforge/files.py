"""Writing files so that a kill at any moment leaves the old file or the new one, never half of one."""

from __future__ import annotations

import os
import pickle
import re
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


# The temporary files ``replacing`` makes: ``.NAME.PID.HEX.tmp``; a killed writer leaves them.
TEMPORARY_PATTERN = re.compile(r"\..+\.\d+\.[0-9a-f]{8}\.tmp")


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


def make_readable(path: str | os.PathLike) -> Path:
    """Give ``path`` the permissions a new file gets here (0644 under the usual umask).

    Some writers (safetensors among them) create files readable by their owner alone,
    which a service running under another account cannot open.

    >>> import tempfile, stat
    >>> target = Path(tempfile.mkdtemp()) / "weights"
    >>> _ = target.write_bytes(b"")
    >>> target.chmod(0o600)
    >>> stat.S_IMODE(make_readable(target).stat().st_mode) == 0o666 & ~_UMASK
    True
    """
    path = Path(path)
    path.chmod(0o666 & ~_UMASK)
    return path


def _read_umask() -> int:
    # The only way to read it is to set it: done once, at import, before any thread writes files.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def unreadable_reason(error: BaseException) -> str:
    """Why a weight or checkpoint file could not be read, in a few words for a one-line error.

    A pickle holding more than tensors is refused by name, never with the reader's own
    advice to load it without ``weights_only``: unpickling runs whatever code it names.

    >>> unreadable_reason(pickle.UnpicklingError("Weights only load failed. ..."))
    'it holds Python objects besides tensors, which are never unpickled since they can run code'
    >>> unreadable_reason(ValueError("header too large\\nmore"))
    'header too large'
    """
    if isinstance(error, pickle.UnpicklingError):
        return "it holds Python objects besides tensors, which are never unpickled since they can run code"
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
