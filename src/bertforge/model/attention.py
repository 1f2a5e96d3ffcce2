"""Which attention kernel runs: the one choice, for every token or for a selection.

Self-attention projects its inputs (``model/bert.py``) and hands the result here.
Three kernels compute the same thing, each where it is fastest:

- training on a CPU, with dropout: rows grouped by length with a written-out
  backward and cheap dropout masks (``fast/grouped_attention.py``), which skips
  most of the padding;
- on a GPU in half precision without dropout, when the row starts are known
  without a device sync: a variable-length flash kernel on the token list, so the
  padding never comes back;
- otherwise: torch's ``scaled_dot_product_attention`` on the padded
  ``(batch, length)`` grid, with a key mask.

Each takes either every token as a query (``queries`` None) or only the
``queries`` selection, whose keys and values still cover the whole row. A token
list filled to a fixed size (``Unpadding.fill_to``) always takes the padded grid:
its padding tokens are masked out there as keys, which the other two kernels,
made for the real tokens only, would not do.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bertforge.model.fast.dropout import draws_own_masks
from bertforge.model.fast.grouped_attention import AttentionPlan, GroupedAttention
from bertforge.model.layout import TokenLayout, TokenSelection

try:  # flash-attention on variable-length rows, in recent torch builds with CUDA
    from torch.nn.attention.varlen import varlen_attn as _varlen_attn
except ImportError:  # pragma: no cover - older torch
    _varlen_attn = None

HALF_PRECISION = (torch.float16, torch.bfloat16)


def attend(projected: torch.Tensor, query_states: torch.Tensor | None, layout: TokenLayout,
           queries: TokenSelection | None, heads: int, dropout_p: float) -> torch.Tensor:
    """Multi-head attention over the token list.

    ``projected``: ``(tokens, 3 * hidden)`` queries, keys and values of every token
    when ``queries`` is None; else ``(tokens, 2 * hidden)`` keys and values, with
    ``query_states`` ``(selected, hidden)`` the queries of the ``queries`` tokens.
    Returns ``(tokens or selected, hidden)``.

    >>> layout = TokenLayout.from_mask(torch.tensor([[1, 1, 0], [1, 1, 1]]), 2, 3)
    >>> qkv = torch.randn(5, 3 * 8)  # five real tokens, two heads of four
    >>> tuple(attend(qkv, None, layout, None, heads=2, dropout_p=0.0).shape)
    (5, 8)
    """
    if layout.filled:
        return _padded(projected, query_states, layout, queries, heads, dropout_p)
    if dropout_p and draws_own_masks(projected):
        return GroupedAttention.apply(projected, query_states, _plan(layout, queries), heads, dropout_p)
    if not dropout_p and projected.dtype in HALF_PRECISION and _variable_length_ready(layout, projected):
        return _variable_length(projected, query_states, layout, queries, heads)
    return _padded(projected, query_states, layout, queries, heads, dropout_p)


def _plan(layout: TokenLayout, queries: TokenSelection | None) -> AttentionPlan:
    """The rows grouped by length, for every token or for the ``queries`` selection:
    made once per batch, since every layer attends over the same rows."""
    key = None if queries is None else id(queries)
    if key not in layout.plans:
        layout.plans[key] = AttentionPlan.build(layout.row_starts(), None if queries is None else queries.cu_seqlens)
    return layout.plans[key]


def _variable_length_ready(layout: TokenLayout, tokens: torch.Tensor) -> bool:
    """Whether the variable-length kernel can run: on a GPU, with torch's kernel
    present, when the row starts are known without reading the mask back."""
    return (_varlen_attn is not None and layout.cu_seqlens is not None and tokens.is_cuda
            and layout.max_seqlen is not None)


def _variable_length(projected, query_states, layout: TokenLayout, queries: TokenSelection | None,
                     heads: int) -> torch.Tensor:
    """Attention on the token list itself: the padding never comes back."""
    if queries is None:
        q, k, v = projected.view(projected.shape[0], 3, heads, -1).unbind(1)
        query_starts, longest_query = layout.cu_seqlens, layout.max_seqlen
    else:
        k, v = projected.view(projected.shape[0], 2, heads, -1).unbind(1)
        q = query_states.view(query_states.shape[0], heads, -1)
        query_starts, longest_query = queries.cu_seqlens, queries.width
    context = _varlen_attn(q, k, v, query_starts, layout.cu_seqlens, longest_query, layout.max_seqlen)
    return context.reshape(q.shape[0], -1)


def _padded(projected, query_states, layout: TokenLayout, queries: TokenSelection | None, heads: int,
            dropout_p: float) -> torch.Tensor:
    """Attention on the padded ``(batch, length)`` grid, padded keys masked out."""
    parts = 3 if queries is None else 2
    grid = layout.pad(projected).view(layout.batch, layout.length, parts, heads, -1)
    grid = grid.permute(2, 0, 3, 1, 4).unbind(0)  # each (batch, heads, length, head_size)
    if queries is None:
        q, k, v = grid
    else:
        k, v = grid
        q = queries.to_grid(query_states).view(layout.batch, queries.width, heads, -1).transpose(1, 2)
    context = F.scaled_dot_product_attention(q, k, v, attn_mask=layout.key_mask, dropout_p=dropout_p)
    context = context.transpose(1, 2).reshape(layout.batch, q.shape[2], -1)
    return layout.unpad(context) if queries is None else queries.from_grid(context)
