"""Attention with dropout for training on a CPU: rows grouped by length.

Rows of a packed pretraining batch differ a lot in length (on Poe at 128 tokens a
twentieth of them hold 46 tokens or fewer), so attention over the padded
``(batch, length)`` grid spends about a third of its work on padding. Here the
rows are sorted by length and cut into a few groups, each padded only to its own
longest row (``AttentionPlan``); attention runs group by group, one batched
matrix product per step, and the outputs go straight back to the token list.

The backward pass is written out (``GroupedAttention``) so that the dropout mask
is kept as bytes, the padding mask and the 1/sqrt(d) scale fold into the
matrix products, and nothing the size of the score matrices is copied: together
about a quarter less time than autograd through the same steps on the full grid,
before the padding saved. GPUs keep torch's fused kernels (``model/attention.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from bertforge.model.fast.dropout import keep_mask
from bertforge.model.fast.softmax_backward import softmax_backward

# The cost of one more group in the plan, in units of (query x key) products of one
# row: measured on a 2-core CPU (BERT 4x256, Poe at 128 tokens), ~25 more kernel
# calls forward and backward cost about as much as attention over three full rows;
# plans then have about three groups.
GROUP_OVERHEAD = 50_000


@dataclass(frozen=True)
class _Group:
    """Rows attended together, padded to the longest of them."""

    rows: int
    query_length: int  # query slots per row
    key_length: int  # key slots per row
    key_gather: torch.Tensor  # (rows * key_length,) key-token index of each slot; padding repeats a real key
    key_slots: torch.Tensor  # the slots that hold real keys ...
    key_tokens: torch.Tensor  # ... and which keys they hold
    query_gather: torch.Tensor  # (rows * query_length,) the same for queries
    query_slots: torch.Tensor
    query_tokens: torch.Tensor
    key_bias: torch.Tensor  # (rows, 1, key_length): 0 at real keys, -inf at padding


@dataclass(frozen=True)
class AttentionPlan:
    """How the rows of a batch are grouped for :class:`GroupedAttention`.

    ``key_starts``: where each row's tokens start in the token list, with the total
    at the end (``cu_seqlens``). ``query_starts``: the same for the queries when
    only some tokens ask (the last layer under a masked-LM loss); rows without a
    query are left out. Rows are sorted by length and cut where the padding saved
    is worth another group (``GROUP_OVERHEAD``).

    >>> lengths = torch.tensor([30, 120] * 8)  # 16 rows, half short
    >>> plan = AttentionPlan.build(torch.cat([torch.zeros(1), lengths.cumsum(0)]))
    >>> [(group.rows, group.key_length) for group in plan.groups]
    [(8, 120), (8, 30)]
    """

    groups: tuple[_Group, ...]
    queries: int  # query tokens in all
    keys: int  # key tokens in the planned rows

    @classmethod
    def build(cls, key_starts: torch.Tensor, query_starts: torch.Tensor | None = None) -> "AttentionPlan":
        key_starts = key_starts.cpu().numpy().astype(np.int64)
        key_lengths = np.diff(key_starts)
        self_attention = query_starts is None
        query_starts = key_starts if self_attention else query_starts.cpu().numpy().astype(np.int64)
        query_counts = np.diff(query_starts)
        rows = np.flatnonzero((query_counts > 0) & (key_lengths > 0))
        rows = rows[np.argsort(-key_lengths[rows], kind="stable")]
        groups = []
        for begin, end in _cut(key_lengths[rows], query_counts[rows]):
            picked = rows[begin:end]
            key_length = int(key_lengths[picked].max())
            query_length = int(query_counts[picked].max())
            key_gather, key_slots, key_tokens = _slots(key_starts[picked], key_lengths[picked], key_length)
            if self_attention:
                query_gather, query_slots, query_tokens = key_gather, key_slots, key_tokens
            else:
                query_gather, query_slots, query_tokens = _slots(
                    query_starts[picked], query_counts[picked], query_length)
            bias = np.where(np.arange(key_length)[None, :] < key_lengths[picked][:, None], 0.0, -np.inf)
            groups.append(_Group(
                len(picked), query_length, key_length, *(torch.from_numpy(a) for a in (
                    key_gather, key_slots, key_tokens, query_gather, query_slots, query_tokens)),
                torch.from_numpy(bias.astype(np.float32)[:, None, :])))
        return cls(tuple(groups), int(query_counts[rows].sum()), int(key_lengths[rows].sum()))


def _cut(key_lengths: np.ndarray, query_counts: np.ndarray) -> list[tuple[int, int]]:
    """Split rows sorted by key length (longest first) into runs of least total cost:
    rows x longest key x (most queries + a little for the copies), plus the overhead."""
    count = len(key_lengths)
    best = np.zeros(count + 1)
    start = np.zeros(count + 1, dtype=np.int64)
    for end in range(1, count + 1):
        begins = np.arange(end)
        # The most queries in rows begin..end-1, for every begin at once.
        most_queries = np.maximum.accumulate(query_counts[:end][::-1])[::-1]
        costs = best[:end] + (end - begins) * key_lengths[:end] * (most_queries + 16.0) + GROUP_OVERHEAD
        start[end] = int(np.argmin(costs))
        best[end] = costs[start[end]]
    runs, end = [], count
    while end > 0:
        runs.append((int(start[end]), end))
        end = int(start[end])
    return runs[::-1]


def _slots(starts: np.ndarray, lengths: np.ndarray, width: int):
    """Grid slots of rows padded to ``width``: the token each slot reads (padding reads
    the row's last token, masked or discarded later), and the real slots with their tokens."""
    offsets = np.arange(width)[None, :]
    gather = (starts[:, None] + np.minimum(offsets, lengths[:, None] - 1)).reshape(-1)
    real = (offsets < lengths[:, None]).reshape(-1)
    slots = np.flatnonzero(real)
    return gather, slots, gather[slots]


def _heads_first(tokens: torch.Tensor, parts: int, heads: int) -> torch.Tensor:
    """``(tokens, parts * heads * d)`` -> ``(parts, heads, tokens, d)``, contiguous."""
    count = tokens.shape[0]
    # One 3-d transpose: copying through a 4-d permute is several times slower on a CPU.
    moved = tokens.view(count, parts * heads, -1).transpose(0, 1).contiguous()
    return moved.view(parts, heads, count, -1)


def _tokens_first(heads_first: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`_heads_first`."""
    parts, heads, count, size = heads_first.shape
    return heads_first.view(parts * heads, count, size).transpose(0, 1).reshape(count, parts * heads * size)


class GroupedAttention(torch.autograd.Function):
    """Multi-head attention with dropout on the probabilities, over an :class:`AttentionPlan`.

    ``keys_values``: ``(tokens, 2 * hidden)`` keys then values, or ``(tokens, 3 * hidden)``
    queries, keys, values when ``queries`` is None (self-attention over every token).
    ``queries``: ``(query tokens, hidden)``. Returns ``(query tokens, hidden)``.

    >>> plan = AttentionPlan.build(torch.tensor([0, 3, 5]))
    >>> qkv = torch.randn(5, 3 * 8, requires_grad=True)
    >>> out = GroupedAttention.apply(qkv, None, plan, 2, 0.1)
    >>> out.sum().backward()
    >>> tuple(out.shape), tuple(qkv.grad.shape)
    ((5, 8), (5, 24))
    """

    @staticmethod
    def forward(ctx, keys_values, queries, plan: AttentionPlan, heads: int, p: float):
        self_attention = queries is None
        parts = 3 if self_attention else 2
        source = _heads_first(keys_values, parts, heads)  # (parts, heads, tokens, d)
        query_source = None if self_attention else _heads_first(queries, 1, heads)[0]
        size = source.shape[-1]
        scale, keep_scale = size ** -0.5, 1.0 / (1.0 - p)
        context = source.new_empty(heads, plan.queries, size)
        saved = []
        for group in plan.groups:
            grid = source.index_select(2, group.key_gather)  # (parts, heads, rows * key_length, d)
            k = grid[parts - 2].view(heads * group.rows, group.key_length, size)
            v = grid[parts - 1].view(heads * group.rows, group.key_length, size)
            if self_attention:
                q = grid[0].view(heads * group.rows, group.query_length, size)
            else:
                q = query_source.index_select(1, group.query_gather).view(
                    heads * group.rows, group.query_length, size)
            bias = group.key_bias.to(q.dtype).repeat(heads, 1, 1)  # row r of head h at h * rows + r
            probs = torch.baddbmm(bias, q, k.transpose(1, 2), alpha=scale).softmax(dim=-1)
            if p:
                keep = keep_mask(probs.shape, p, probs.device)
                dropped = torch.where(keep, probs, 0.0)  # not probs * keep: that converts the mask first
            else:
                keep, dropped = None, probs
            out = torch.bmm(dropped, v).view(heads, group.rows * group.query_length, size)
            if p:
                out = out * keep_scale
            context.index_copy_(1, group.query_tokens, out.index_select(1, group.query_slots))
            saved += [q, k, v, probs, keep, dropped]
        ctx.save_for_backward(*saved)
        ctx.plan, ctx.heads, ctx.parts, ctx.p = plan, heads, parts, p
        ctx.scale, ctx.keep_scale = scale, keep_scale
        ctx.token_counts = (keys_values.shape[0], 0 if self_attention else queries.shape[0])
        return _tokens_first(context[None])

    @staticmethod
    def backward(ctx, grad_context):
        plan, heads, parts, p = ctx.plan, ctx.heads, ctx.parts, ctx.p
        keys, query_count = ctx.token_counts
        size = grad_context.shape[1] // heads
        grad = _heads_first(grad_context, 1, heads)[0]  # (heads, query tokens, d)
        # Keys of rows without queries get no gradient; otherwise every key is written below.
        grad_source = (grad_context.new_empty if plan.keys == keys else grad_context.new_zeros)(
            parts, heads, keys, size)
        grad_queries = None if parts == 3 else grad_context.new_zeros(heads, query_count, size)
        saved = ctx.saved_tensors
        for index, group in enumerate(plan.groups):
            q, k, v, probs, keep, dropped = saved[6 * index:6 * index + 6]
            out_grad = grad_context.new_zeros(heads, group.rows * group.query_length, size)
            out_grad.index_copy_(1, group.query_slots, grad.index_select(1, group.query_tokens))
            out_grad = out_grad.view(heads * group.rows, group.query_length, size)
            if p:
                out_grad = out_grad * ctx.keep_scale
            grids = grad_context.new_empty(parts, heads * group.rows, group.key_length, size)
            torch.bmm(dropped.transpose(1, 2), out_grad, out=grids[parts - 1])
            grad_probs = torch.bmm(out_grad, v.transpose(1, 2))
            if keep is not None:
                grad_probs = torch.where(keep, grad_probs, 0.0)
            grad_scores = softmax_backward(grad_probs, probs)
            torch.bmm(grad_scores.transpose(1, 2), q, out=grids[parts - 2]).mul_(ctx.scale)
            if parts == 3:
                torch.bmm(grad_scores, k, out=grids[0]).mul_(ctx.scale)
            else:
                grad_q = torch.bmm(grad_scores, k).mul_(ctx.scale)
                grad_queries.index_copy_(1, group.query_tokens, grad_q.view(
                    heads, group.rows * group.query_length, size).index_select(1, group.query_slots))
            keyed = grids.view(parts, heads, group.rows * group.key_length, size)
            grad_source.index_copy_(2, group.key_tokens, keyed.index_select(2, group.key_slots))
        grad_keys_values = _tokens_first(grad_source)
        grad_query_tokens = None if grad_queries is None else _tokens_first(grad_queries[None])
        return grad_keys_values, grad_query_tokens, None, None, None
