"""Run a model over many examples fast: length-sorted batches, dynamic padding, no graph.

torch is imported only for a PyTorch forward: an exported graph (``device=None``) runs on
numpy arrays, and a deployment of it need not install torch.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Callable

import numpy as np
from tqdm.auto import tqdm

from bertforge.data.batching import iterate_batches

if TYPE_CHECKING:
    import torch


def default_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` as a torch device; None: a GPU when there is one, else the CPU.

    >>> str(default_device("cpu"))
    'cpu'
    """
    import torch

    return torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))


def run_batched(forward: Callable[..., torch.Tensor], input_ids: np.ndarray, input_mask: np.ndarray,
                segment_ids: np.ndarray, batch_size: int = 128, device: str | torch.device | None = "cpu",
                progress: bool = False, description: str = "predicting", per_token: bool = False) -> np.ndarray:
    """``forward(ids, mask, segments) -> (batch, ...)`` over all rows, results in the input order.

    The forward gets torch tensors on ``device``, or with ``device=None`` the numpy
    arrays themselves (an ONNX Runtime session takes those). ``per_token``: the forward
    gives ``(batch, length, ...)`` for batches cut to their longest row, put back at the
    rows' full length (zeros past it).

    >>> ids = np.array([[2, 5, 3, 0], [2, 3, 0, 0], [2, 5, 6, 3]])
    >>> run_batched(lambda i, m, s: m.sum(1, keepdim=True).float(), ids, ids != 0, ids * 0, batch_size=2).ravel()
    array([3., 2., 4.], dtype=float32)
    """
    if device is None:
        to_device, mode = None, contextlib.nullcontext()
    else:
        import torch

        def to_device(array: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(array)).to(device)

        mode = torch.inference_mode()
    with mode:
        return _run(forward, to_device, input_ids, input_mask, segment_ids, batch_size, progress, description,
                    per_token)


def _run(forward, to_device, input_ids, input_mask, segment_ids, batch_size, progress, description,
         per_token) -> np.ndarray:
    outputs: np.ndarray | None = None
    total = -(-len(input_ids) // batch_size)
    batches = iterate_batches(input_ids, input_mask, segment_ids, batch_size)
    for rows, ids, mask, segments in tqdm(batches, total=total, disable=not progress, desc=description, unit="batch"):
        if to_device is None:
            result = np.asarray(forward(ids, mask, segments), dtype=np.float32)
        else:
            result = forward(*(to_device(a) for a in (ids, mask, segments)))
            result = result.float().cpu().numpy()
        if outputs is None:
            shape = (input_ids.shape[1], *result.shape[2:]) if per_token else result.shape[1:]
            outputs = (np.zeros if per_token else np.empty)((len(input_ids), *shape), dtype=np.float32)
        if per_token:
            outputs[rows, :result.shape[1]] = result
        else:
            outputs[rows] = result
    return outputs if outputs is not None else np.empty((0,), dtype=np.float32)
