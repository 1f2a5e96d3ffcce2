"""Word-embedding lookup whose backward adds straight into ``weight.grad``.

The standard backward allocates a dense gradient the size of the whole vocabulary
matrix on every step: for a 30k x 384 table that costs ~25 ms on a 2-core CPU
against ~4 ms for zeroing a kept buffer and adding the looked-up rows. The result
equals the standard gradient (the padding row gets none, as with ``padding_idx``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class WordLookup(torch.autograd.Function):
    """``F.embedding(ids, weight)`` whose backward writes into a kept ``weight.grad``.

    It bypasses autograd's gradient accumulation, so hooks on that parameter
    (DDP's reducer) would not see it: data-parallel training turns it off
    (``PreTrainedBert.prepare_for_data_parallel``).

    >>> table = nn.Embedding(5, 2, padding_idx=0)
    >>> ids = torch.tensor([0, 3, 3])
    >>> WordLookup.apply(table.weight, ids, 0).sum().backward()
    >>> table.weight.grad[:, 0].tolist()  # [PAD] gets none, token 3 two rows' worth
    [0.0, 0.0, 0.0, 2.0, 0.0]
    """

    @staticmethod
    def forward(ctx, weight: torch.Tensor, ids: torch.Tensor, padding_idx: int):
        ctx.save_for_backward(ids)
        ctx.weight, ctx.padding_idx = weight, padding_idx
        return F.embedding(ids, weight)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        (ids,) = ctx.saved_tensors
        weight = ctx.weight
        if weight.grad is None:
            buffer = getattr(weight, "_reused_grad", None)
            if buffer is None or buffer.shape != weight.shape or buffer.dtype != weight.dtype:
                buffer = torch.zeros_like(weight)
                weight._reused_grad = buffer
            else:
                buffer.zero_()
            weight.grad = buffer
        keep = (ids != ctx.padding_idx).unsqueeze(-1).to(grad_output.dtype)
        weight.grad.index_add_(0, ids, (grad_output * keep).to(weight.grad.dtype))
        return None, None, None


def look_up_words(table: nn.Embedding, ids: torch.Tensor, direct_grad: bool = True) -> torch.Tensor:
    """``table(ids)``, through :class:`WordLookup` when its gradient would be made:
    with ``direct_grad``, a padding row, a table that trains, and not under
    ``torch.compile`` (a backward that writes ``.grad`` itself cannot be traced, and
    the compiled embedding backward needs no such help).

    >>> table = nn.Embedding(5, 2, padding_idx=0)
    >>> torch.equal(look_up_words(table, torch.tensor([1, 4])), table(torch.tensor([1, 4])))
    True
    """
    if (direct_grad and table.padding_idx is not None and table.weight.requires_grad
            and torch.is_grad_enabled() and not torch.compiler.is_compiling()):
        return WordLookup.apply(table.weight, ids, table.padding_idx)
    return table(ids)
