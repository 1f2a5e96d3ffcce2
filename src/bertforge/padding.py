"""Remove padding before the dense work, put it back for attention.

In a padded batch most of the compute in a BERT layer is in the dense
projections and the feed-forward block, which work token by token. Running them
on the real tokens only (a ``(tokens, hidden)`` matrix) skips the padding
entirely; attention alone needs the ``(batch, length)`` layout back. These
helpers are the two moves, kept in one place so the fast path stays visible.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch


@dataclass(frozen=True)
class Unpadding:
    """Where the real tokens of a padded batch sit.

    Made from a mask on the CPU (as a data pipeline does), it also holds the
    cumulative sequence lengths that variable-length attention kernels take, so
    the model needs nothing from the GPU that would make it wait.

    >>> mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    >>> layout = Unpadding.from_mask(mask)
    >>> x = torch.arange(6.0).reshape(2, 3, 1)
    >>> layout.unpad(x).flatten().tolist()
    [0.0, 1.0, 3.0, 4.0, 5.0]
    >>> layout.pad(layout.unpad(x)).flatten().tolist()
    [0.0, 1.0, 0.0, 3.0, 4.0, 5.0]
    >>> layout.cu_seqlens.tolist(), layout.max_seqlen
    ([0, 2, 5], 3)
    """

    indices: torch.Tensor  # flat positions of the real tokens in batch * length
    batch: int
    length: int
    cu_seqlens: torch.Tensor | None = None  # int32 (batch + 1,): where each row starts among the tokens
    max_seqlen: int | None = None

    @classmethod
    def from_mask(cls, mask: torch.Tensor) -> "Unpadding":
        """From a (batch, length) mask of 1s then 0s per row (right padding)."""
        batch, length = mask.shape
        indices = torch.nonzero(mask.reshape(-1), as_tuple=True)[0]
        if mask.device.type != "cpu":  # lengths would have to be read back from the device
            return cls(indices=indices, batch=batch, length=length)
        lengths = mask.sum(dim=1, dtype=torch.int32)
        cu_seqlens = torch.zeros(batch + 1, dtype=torch.int32)
        torch.cumsum(lengths, dim=0, out=cu_seqlens[1:])
        return cls(indices=indices, batch=batch, length=length, cu_seqlens=cu_seqlens,
                   max_seqlen=int(lengths.max()) if batch else 0)

    def to(self, device, non_blocking: bool = False) -> "Unpadding":
        move = (lambda t: None if t is None else t.to(device, non_blocking=non_blocking))
        return replace(self, indices=move(self.indices), cu_seqlens=move(self.cu_seqlens))

    def unpad(self, padded: torch.Tensor) -> torch.Tensor:
        """``(batch, length, ...)`` -> ``(tokens, ...)``."""
        flat = padded.reshape(self.batch * self.length, *padded.shape[2:])
        return flat.index_select(0, self.indices)

    def pad(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(tokens, ...)`` -> ``(batch, length, ...)`` with zeros at the padding."""
        flat = tokens.new_zeros(self.batch * self.length, *tokens.shape[1:])
        flat = flat.index_copy(0, self.indices, tokens)
        return flat.reshape(self.batch, self.length, *tokens.shape[1:])
