"""Where a model directory is: a local folder, a file inside one, or a Hub model id.

Knows nothing of torch, so a folder written by ``bertforge export`` opens with ONNX
Runtime alone. The readers of the weights (``bertforge.io.model_dir``) need torch;
finding the folder does not.

>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> _ = (folder / "config.json").write_text("{}")
>>> resolve_model_dir(folder) == folder, resolve_model_dir(folder / "config.json") == folder
(True, True)
>>> resolve_model_dir("./no/such/folder")
Traceback (most recent call last):
...
bertforge.errors.BertforgeError: ./no/such/folder: no such model directory; pass a folder with config.json and model weights
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from bertforge.errors import BertforgeError


def resolve_model_dir(path: str | os.PathLike) -> Path:
    """A local model directory, or a Hub model id fetched when that is possible."""
    local = Path(path).expanduser()
    if local.is_dir():
        return local
    if local.is_file():  # a file of the folder (its config.json, say): the folder
        return local.parent
    text = str(path)
    looks_like_hub_id = re.fullmatch(r"[\w.-]+(/[\w.-]+)?", text) is not None and not text.startswith(".")
    if not looks_like_hub_id:
        raise BertforgeError(f"{text}: no such model directory; pass a folder with config.json and model weights")
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise BertforgeError(
            f"{text}: not a local directory; pass a local model directory, or install "
            "'bertforge[hub]' to fetch Hub model ids when online"
        ) from None
    try:
        return Path(snapshot_download(text, allow_patterns=["*.json", "*.txt", "*.safetensors"]))
    except Exception as error:  # network, auth, or unknown id: the user's fix is the same
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise BertforgeError(
            f"{text}: could not fetch from the Hub ({reason}); pass a local model directory"
        ) from None


__all__ = ["resolve_model_dir"]
