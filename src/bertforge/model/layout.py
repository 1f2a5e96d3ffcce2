"""Remove padding before the dense work, put it back for attention.

In a padded batch most of the compute in a BERT layer is in the dense
projections and the feed-forward block, which work token by token. Running them
on the real tokens only (a ``(tokens, hidden)`` matrix) skips the padding
entirely; attention alone needs the ``(batch, length)`` layout back. The moves
live here, in one place, so the fast path stays visible: ``Unpadding`` (where the
real tokens sit), ``TokenLayout`` (how a batch flows through the encoder) and
``TokenSelection`` (the tokens a last layer computes when only some are read).

Both can also be made to a fixed size (``Unpadding.fill_to``, ``TokenSelection``'s
``capacity``), padded with entries that never reach a loss, so a compiled step sees
the same shapes batch after batch and a CUDA graph can replay it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F


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
    # The token list goes on past the real tokens with padding positions (see fill_to):
    # cu_seqlens covers the real ones, attention masks the rest out as keys.
    filled: bool = False

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

    def fill_to(self, size: int) -> "Unpadding":
        """This layout with ``size`` tokens: the real ones, then padding positions.

        A fixed token count per batch keeps a compiled step's shapes. The padding
        tokens go through the token-wise layers, but attention masks them out as
        keys and nothing reads their outputs, so the loss and the gradients are
        those of the real tokens alone. A batch without padding stays as it is.
        Made on the CPU, as ``from_mask`` is.

        >>> layout = Unpadding.from_mask(torch.tensor([[1, 1, 0, 0], [1, 0, 0, 0]]))
        >>> filled = layout.fill_to(5)
        >>> filled.indices.tolist(), filled.cu_seqlens.tolist(), filled.max_seqlen, filled.filled
        ([0, 1, 4, 2, 3], [0, 2, 3], 4, True)
        """
        grid, real = self.batch * self.length, self.indices.numel()
        if real == grid:
            return self
        if not real <= size <= grid:
            raise ValueError(f"a layout of {real} real tokens in a {self.batch} x {self.length} batch "
                             f"cannot be filled to {size}")
        taken = torch.zeros(grid, dtype=torch.bool)
        taken[self.indices] = True
        fillers = torch.nonzero(~taken, as_tuple=True)[0][:size - real]
        # max_seqlen is the batch's width, not its longest row: one number per shape,
        # so a compiled step does not specialise on it.
        return replace(self, indices=torch.cat([self.indices, fillers]), max_seqlen=self.length, filled=True)

    def to(self, device, non_blocking: bool = False) -> "Unpadding":
        move = (lambda t: _moved(t, device, non_blocking))
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


@dataclass(frozen=True)
class TokenSelection:
    """The tokens a last layer has to compute, when only some outputs are read.

    A masked-LM loss reads the last layer at the masked tokens (and at [CLS] for a
    sentence-pair head): the last layer still needs keys and values of every
    token, but queries, the attention output and the feed-forward block only for
    these, about a sixth of the tokens. The selection lays them out as a
    ``(batch, width)`` grid of queries (``slots``), and, for variable-length
    kernels, as cumulative counts per row.

    >>> row_starts = torch.tensor([0, 4, 7])  # two rows: tokens 0-3 and 4-6
    >>> picked = TokenSelection.for_predictions(torch.tensor([2, 5, 6]), row_starts, include_first=True)
    >>> picked.flat.tolist(), picked.width, picked.slots.tolist()
    ([0, 2, 4, 5, 6], 3, [0, 1, 3, 4, 5])
    >>> picked.labelled.tolist(), picked.firsts.tolist()
    ([1, 3, 4], [0, 2])

    With a ``capacity``, the labelled list has that many entries whatever the batch:
    the real ones, then fillers that point at token 0 (a first row's [CLS], which
    never carries a label), so their targets are ignored by the loss:

    >>> fixed = TokenSelection.for_predictions(torch.tensor([2, 5, 6]), row_starts, include_first=True,
    ...                                        capacity=4, width=4)
    >>> fixed.flat.tolist(), fixed.labelled.tolist(), fixed.width, int(fixed.labelled_count)
    ([0, 2, 4, 5, 6, 0], [1, 3, 4, 5], 4, 3)
    """

    flat: torch.Tensor  # (M,) token-list indices, ascending (so row by row), then any fillers
    slots: torch.Tensor  # (M,) place of each in the (batch * width) query grid
    batch: int
    width: int  # most tokens selected in one row (or the fixed width asked for)
    cu_seqlens: torch.Tensor  # int32 (batch + 1,): selected tokens per row, cumulative (fillers not counted)
    labelled: torch.Tensor | None = None  # indices into ``flat`` of the labelled tokens, in their order
    firsts: torch.Tensor | None = None  # indices into ``flat`` of each row's first token
    # With fillers: the number of real labelled tokens, a 0-d tensor (on the device with the
    # rest, so a loss weighed by it needs no sync); None when every labelled entry is real.
    labelled_count: torch.Tensor | None = None

    @classmethod
    def for_predictions(cls, labelled: torch.Tensor, row_starts: torch.Tensor, include_first: bool,
                        capacity: int | None = None, width: int | None = None) -> "TokenSelection":
        """The labelled tokens (ascending token-list indices), and each row's first
        token when ``include_first``. ``row_starts``: where each row starts among the
        tokens, with the total at the end. Reads one number back (the width), so a
        data pipeline makes it on the CPU.

        ``capacity`` fills the labelled list up to that many entries and ``width``
        sets the query grid's width (both grown when the batch needs more), so
        that batches of one size share their shapes."""
        row_starts = row_starts.long()
        batch = len(row_starts) - 1
        firsts = row_starts[:-1]
        labelled = labelled.long()
        flat = torch.unique(torch.cat([labelled, firsts]) if include_first else labelled)
        rows = torch.searchsorted(row_starts[1:], flat, right=True)
        counts = torch.bincount(rows, minlength=batch)
        before = torch.cumsum(counts, 0) - counts
        fill = 0 if capacity is None else max(0, capacity - len(labelled))
        width = max(1, int(counts.max()) if batch else 1, width or 1,
                    -(-(len(flat) + fill) // max(1, batch)))  # room in the grid for the fillers too
        slots = rows * width + (torch.arange(len(flat), device=flat.device) - before[rows])
        cu_seqlens = torch.zeros(batch + 1, dtype=torch.int32, device=flat.device)
        torch.cumsum(counts, 0, out=cu_seqlens[1:])
        picked = torch.searchsorted(flat, labelled)
        chosen_firsts = torch.searchsorted(flat, firsts) if include_first else None
        if capacity is None:
            return cls(flat, slots, batch, width, cu_seqlens, picked, chosen_firsts)
        # Fillers take the grid's free places (each query its own), and read token 0.
        free = torch.ones(batch * width, dtype=torch.bool, device=flat.device)
        free[slots] = False
        filler_slots = torch.nonzero(free, as_tuple=True)[0][:fill]
        filler_picks = len(flat) + torch.arange(fill, device=flat.device)
        return cls(torch.cat([flat, flat.new_zeros(fill)]), torch.cat([slots, filler_slots]), batch, width,
                   cu_seqlens, torch.cat([picked, filler_picks]), chosen_firsts,
                   torch.tensor(len(labelled), dtype=torch.int64))

    @classmethod
    def first_of_rows(cls, firsts: torch.Tensor) -> "TokenSelection":
        """Each row's first token alone ([CLS]: all a pooled output needs)."""
        batch = firsts.shape[0]  # not len(): that would fix the batch size in an exported graph
        order = torch.arange(batch, device=firsts.device)
        cu_seqlens = torch.arange(batch + 1, dtype=torch.int32, device=firsts.device)
        return cls(firsts, order, batch, 1, cu_seqlens, None, order)

    def to(self, device, non_blocking: bool = False) -> "TokenSelection":
        move = (lambda t: _moved(t, device, non_blocking))
        return replace(self, flat=move(self.flat), slots=move(self.slots), cu_seqlens=move(self.cu_seqlens),
                       labelled=move(self.labelled), firsts=move(self.firsts),
                       labelled_count=move(self.labelled_count))

    def to_grid(self, rows: torch.Tensor) -> torch.Tensor:
        """``(M, hidden)`` -> ``(batch, width, hidden)``, zeros in the empty places."""
        grid = rows.new_zeros(self.batch * self.width, *rows.shape[1:])
        return grid.index_copy(0, self.slots, rows).view(self.batch, self.width, *rows.shape[1:])

    def from_grid(self, grid: torch.Tensor) -> torch.Tensor:
        """``(batch, width, ...)`` -> ``(M, ...)``."""
        return grid.reshape(self.batch * self.width, *grid.shape[2:]).index_select(0, self.slots)


def _moved(tensor: torch.Tensor | None, device, non_blocking: bool) -> torch.Tensor | None:
    """``tensor`` on ``device``; from the CPU to a GPU without waiting, through pinned memory
    (a copy from pageable memory can make the host wait for the device)."""
    if tensor is None:
        return None
    if non_blocking and tensor.device.type == "cpu" and torch.device(device).type == "cuda":
        tensor = tensor.pin_memory()
    return tensor.to(device, non_blocking=non_blocking)


@dataclass
class TokenLayout:
    """How a batch is laid out while it flows through the encoder.

    ``unpadding`` is None when the batch has no padding; then tokens are simply the
    flattened batch and attention needs no mask.

    >>> layout = TokenLayout.from_mask(torch.tensor([[1, 1, 0], [1, 1, 1]]), 2, 3)
    >>> tokens = layout.unpad(torch.arange(6.0).reshape(2, 3))
    >>> tokens.tolist(), layout.pad(tokens).tolist()
    ([0.0, 1.0, 3.0, 4.0, 5.0], [[0.0, 1.0, 0.0], [3.0, 4.0, 5.0]])
    >>> layout.row_starts().tolist(), layout.first_tokens().tolist()
    ([0, 2, 5], [0, 2])
    """

    batch: int
    length: int
    unpadding: Unpadding | None
    key_mask: torch.Tensor | None  # (batch, 1, 1, length), True where a key may be attended
    cu_seqlens: torch.Tensor | None = None  # set when known without a device sync (see Unpadding)
    max_seqlen: int | None = None
    filled: bool = False  # the token list holds padding positions too (Unpadding.fill_to)
    # Attention plans for this batch (model/attention.py), made once and read by every layer.
    plans: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_mask(cls, input_mask: torch.Tensor | None, batch: int, length: int,
                  unpadding: Unpadding | None = None) -> "TokenLayout":
        """``unpadding`` made ahead from the same mask (on the CPU, by the data
        pipeline) saves reading the mask back from a GPU."""
        if unpadding is not None:
            if unpadding.indices.numel() == batch * length and not unpadding.filled:
                return cls(batch, length, None, None, unpadding.cu_seqlens, unpadding.max_seqlen)
            mask = input_mask.bool() if input_mask is not None else None
            return cls(batch, length, unpadding, None if mask is None else mask[:, None, None, :],
                       unpadding.cu_seqlens, unpadding.max_seqlen, unpadding.filled)
        if input_mask is None or bool(input_mask.all()):
            return cls(batch, length, None, None)
        mask = input_mask.bool()
        unpadding = Unpadding.from_mask(mask)
        return cls(batch, length, unpadding, mask[:, None, None, :], unpadding.cu_seqlens, unpadding.max_seqlen)

    def unpad(self, padded: torch.Tensor) -> torch.Tensor:
        """``(batch, length, ...)`` -> ``(tokens, ...)``."""
        if self.unpadding is None:
            return padded.reshape(self.batch * self.length, *padded.shape[2:])
        return self.unpadding.unpad(padded)

    def pad(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(tokens, ...)`` -> ``(batch, length, ...)`` with zeros at the padding."""
        if self.unpadding is None:
            return tokens.reshape(self.batch, self.length, *tokens.shape[1:])
        return self.unpadding.pad(tokens)

    def padded_positions(self, token_positions: torch.Tensor) -> torch.Tensor:
        """Token-list indices -> flat ``batch * length`` positions."""
        if self.unpadding is None:
            return token_positions
        return self.unpadding.indices.index_select(0, token_positions)

    def row_starts(self, device=None) -> torch.Tensor:
        """Where each row starts in the token list, with the total at the end (``cu_seqlens``)."""
        if self.cu_seqlens is not None:
            starts = self.cu_seqlens
        elif self.unpadding is None:
            starts = torch.arange(self.batch + 1, device=device) * self.length
        else:
            counts = torch.bincount(self.unpadding.indices // self.length, minlength=self.batch)
            starts = F.pad(torch.cumsum(counts, 0), (1, 0))
        return starts if device is None else starts.to(device)

    def first_tokens(self) -> torch.Tensor:
        """Index of each row's first real token in the unpadded token list."""
        if self.cu_seqlens is not None:
            return self.cu_seqlens[:-1].long()
        starts = torch.arange(self.batch) * self.length
        if self.unpadding is None:
            return starts
        starts = starts.to(self.unpadding.indices.device)
        return torch.searchsorted(self.unpadding.indices, starts)
