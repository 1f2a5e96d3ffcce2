"""Data-parallel training across processes, on ``torch.distributed``.

``torchrun --nproc-per-node N -m bertforge pretrain ...`` starts N processes
and sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; :func:`setup` joins them
into one group (gloo on CPU, NCCL on GPUs). Without torchrun every helper here
is a no-op for a single process, so the training loop calls them
unconditionally.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn

from bertforge.errors import BertforgeError

# Lowest first: when processes disagree the highest wins, so a run that reached its end
# ends rather than stopping on a signal one process received.
STOP_REASONS = ("interrupted", "early_stopping", "max_steps", "time_budget")


def active() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device: str | None) -> torch.device:
    """Join the process group torchrun describes, and pick this process's device.

    ``device`` None means: this process's GPU when there are GPUs, else the CPU.
    """
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    chosen = torch.device(device)
    if not launched_by_torchrun():
        return chosen
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if chosen.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise BertforgeError(f"process {local_rank} has no GPU of its own ({torch.cuda.device_count()} "
                                 "visible); start at most one process per GPU")
        chosen = torch.device("cuda", local_rank)
        torch.cuda.set_device(chosen)
    if not active():
        dist.init_process_group(backend="nccl" if chosen.type == "cuda" else "gloo")
    return chosen


def teardown() -> None:
    if active():
        dist.destroy_process_group()


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """DistributedDataParallel around ``model`` (already on ``device``)."""
    from torch.nn.parallel import DistributedDataParallel

    # A fast path that writes a gradient straight into ``.grad`` (the BERT word
    # embeddings' lookup) bypasses autograd's accumulation, which is where DDP hooks
    # in to average gradients: each module that has one turns it off for itself.
    # Asked by name, not by type, so the loop stays free of the model layer; every
    # submodule is asked, since the job may wrap a BERT inside a module of its own.
    for module in model.modules():
        prepare = getattr(module, "prepare_for_data_parallel", None)
        if callable(prepare):
            prepare()
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def barrier() -> None:
    if active():
        dist.barrier()


def _collective_device() -> torch.device:
    """NCCL reduces tensors on this process's GPU, gloo on the CPU."""
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def sum_over_processes(values: list[float]) -> list[float]:
    """Element-wise sum of ``values`` over all processes (the values themselves alone)."""
    if not active():
        return [float(v) for v in values]
    tensor = torch.tensor([float(v) for v in values], dtype=torch.float64, device=_collective_device())
    dist.all_reduce(tensor)
    return tensor.tolist()


def sum_counts_over_processes(counts: list, device: torch.device) -> torch.Tensor:
    """The counts (ints, or 0-d tensors on ``device``) summed over all processes, as one
    float tensor on ``device``; no host sync on a GPU, so it can sit between forward and backward."""
    tensor = torch.stack([torch.as_tensor(count, dtype=torch.float32, device=device) for count in counts])
    if active():
        dist.all_reduce(tensor)
    return tensor


def agree_on_stop(reason: str | None) -> str | None:
    """Every process stops if any wants to (each has its own clock), with one reason."""
    if not active():
        return reason
    code = 0 if reason is None else STOP_REASONS.index(reason) + 1
    tensor = torch.tensor([code], dtype=torch.int64, device=_collective_device())
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    agreed = int(tensor.item())
    return STOP_REASONS[agreed - 1] if agreed else None
