"""Run an exported ``model.onnx`` through ONNX Runtime: ids in, logits out.

:class:`OnnxClassifierModel` stands where the PyTorch network stands in
:class:`bertforge.apps.predictor.Classifier` when a folder was written by
``bertforge export``; ONNX Runtime is the optional ``onnx`` extra.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from bertforge.errors import BertforgeError

ONNX_FILE = "model.onnx"
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT_NAME = "logits"


def require(module: str, purpose: str):
    """Import an optional dependency, or fail with the extra that brings it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise BertforgeError(f"{purpose} needs {module}, part of the onnx extra: "
                             "pip install 'bertforge[onnx]'") from None


class OnnxClassifierModel:
    """An ONNX Runtime session over an exported classifier graph.

    Called with numpy ``(batch, length)`` integer arrays ``(input_ids, input_mask,
    segment_ids)`` it returns float32 logits ``(batch, num_labels)``, or ``(batch, length,
    num_labels)`` for a word tagger. ``threads``
    caps ONNX Runtime's intra-op threads (default: its own choice, the physical cores).

    >>> OnnxClassifierModel("no/such/model.onnx")
    Traceback (most recent call last):
    ...
    bertforge.errors.BertforgeError: no/such/model.onnx: not found; pass a folder written by bertforge export
    """

    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        path = Path(path)
        if not path.is_file():
            raise BertforgeError(f"{path}: not found; pass a folder written by bertforge export")
        ort = require("onnxruntime", "running an exported model")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        # Idle worker threads sleep instead of spinning: on a CPU shared with a tokenizer,
        # a web server or other jobs, spinning threads steal the cores the work needs.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # ONNX Runtime raises its own types for unreadable graphs
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise BertforgeError(f"{path}: not a readable ONNX model ({reason}); export the model again") from None
        inputs = [node.name for node in self.session.get_inputs()]
        if tuple(inputs) != INPUT_NAMES:
            raise BertforgeError(f"{path}: takes inputs {inputs}, not {list(INPUT_NAMES)}; "
                                 "it was not written by bertforge export")
        self.path = path
        width = self.session.get_outputs()[0].shape[-1]
        self.num_labels = width if isinstance(width, int) else None

    def __call__(self, input_ids: np.ndarray, input_mask: np.ndarray, segment_ids: np.ndarray) -> np.ndarray:
        feed = {name: np.ascontiguousarray(array, dtype=np.int64)
                for name, array in zip(INPUT_NAMES, (input_ids, input_mask, segment_ids))}
        return self.session.run([OUTPUT_NAME], feed)[0]


__all__ = ["ONNX_FILE", "INPUT_NAMES", "OnnxClassifierModel", "require"]
