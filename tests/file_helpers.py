"""Small helpers of the reading tests: write a file as given, and take a one-line error."""

from pathlib import Path

import pytest

from bertforge.errors import BertforgeError


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    """``content`` into ``tmp_path / name``, byte for byte (no newline translation)."""
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8", newline="")
    else:
        path.write_bytes(content)
    return path


def error_of(call, *args, **kwargs) -> str:
    """The message of the BertforgeError that ``call`` raises, checked to be one line."""
    with pytest.raises(BertforgeError) as caught:
        call(*args, **kwargs)
    message = str(caught.value)
    assert "\n" not in message and "\r" not in message, message
    return message
