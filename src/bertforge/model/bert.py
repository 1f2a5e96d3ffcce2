"""The BERT network: embeddings, encoder, pooler, and the task heads.

Parameter names follow the standard BERT layout (``embeddings.word_embeddings``,
``encoder.layer.N.attention.self.query``, ``cls.predictions...``), so checkpoints
from Google, Hugging Face or this package load without renaming.

Speed comes from computing only what is read:
- the encoder works on the real tokens only: padding is removed once after the
  mask is read, and restored only around attention (see ``padding.py``);
- the masked-LM decoder, the largest matrix in pretraining, runs only at the
  positions that carry a label;
- when only the pooled output is read (classifiers), the last layer computes
  the [CLS] token alone;
- the word-embedding gradient is added into a kept buffer rather than a fresh
  vocabulary-sized tensor per step (``_WordLookup``);
- training on a CPU, attention with dropout runs on rows grouped by length with a
  written-out backward (``grouped_attention.py``), and dropout masks come from
  16-bit lanes of 64-bit random words.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from bertforge.model.config import BertConfig
from bertforge.errors import BertforgeError
from bertforge.model.fast.grouped_attention import AttentionPlan, GroupedAttention, keep_mask
from bertforge.model.layout import TokenSelection, Unpadding

IGNORE_INDEX = -100  # label value for positions without a target (as in torch's losses)

try:  # flash-attention on variable-length rows, in recent torch builds with CUDA
    from torch.nn.attention.varlen import varlen_attn as _varlen_attn
except ImportError:  # pragma: no cover - older torch
    _varlen_attn = None


def activation(name: str):
    if name == "gelu":
        return F.gelu
    if name in ("gelu_new", "gelu_pytorch_tanh"):
        return lambda x: F.gelu(x, approximate="tanh")
    if name == "relu":
        return F.relu
    return F.silu  # "silu" / "swish"; BertConfig rejects anything else


@dataclass
class TokenLayout:
    """How a batch is laid out while it flows through the encoder.

    ``unpadding`` is None when the batch has no padding; then tokens are simply the
    flattened batch and attention needs no mask.
    """

    batch: int
    length: int
    unpadding: Unpadding | None
    key_mask: torch.Tensor | None  # (batch, 1, 1, length), True where a key may be attended
    cu_seqlens: torch.Tensor | None = None  # set when known without a device sync (see Unpadding)
    max_seqlen: int | None = None
    _plans: dict = field(default_factory=dict, repr=False, compare=False)  # attention plans, made once

    @classmethod
    def from_mask(cls, input_mask: torch.Tensor | None, batch: int, length: int,
                  unpadding: Unpadding | None = None) -> "TokenLayout":
        """``unpadding`` made ahead from the same mask (on the CPU, by the data
        pipeline) saves reading the mask back from a GPU."""
        if unpadding is not None:
            if unpadding.indices.numel() == batch * length:
                return cls(batch, length, None, None, unpadding.cu_seqlens, unpadding.max_seqlen)
            mask = input_mask.bool() if input_mask is not None else None
            return cls(batch, length, unpadding, None if mask is None else mask[:, None, None, :],
                       unpadding.cu_seqlens, unpadding.max_seqlen)
        if input_mask is None or bool(input_mask.all()):
            return cls(batch, length, None, None)
        mask = input_mask.bool()
        unpadding = Unpadding.from_mask(mask)
        return cls(batch, length, unpadding, mask[:, None, None, :], unpadding.cu_seqlens, unpadding.max_seqlen)

    def unpad(self, padded: torch.Tensor) -> torch.Tensor:
        if self.unpadding is None:
            return padded.reshape(self.batch * self.length, *padded.shape[2:])
        return self.unpadding.unpad(padded)

    def pad(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.unpadding is None:
            return tokens.reshape(self.batch, self.length, *tokens.shape[1:])
        return self.unpadding.pad(tokens)

    def padded_positions(self, token_positions: torch.Tensor) -> torch.Tensor:
        """Token-list indices -> flat ``batch * length`` positions."""
        if self.unpadding is None:
            return token_positions
        return self.unpadding.indices.index_select(0, token_positions)

    def variable_length_attention(self, tokens: torch.Tensor) -> bool:
        """Whether attention can run on the token list with a variable-length kernel:
        on a GPU, in half precision, when the row starts are known."""
        return (_varlen_attn is not None and self.cu_seqlens is not None and tokens.is_cuda
                and self.max_seqlen is not None)

    def attention_plan(self, queries: TokenSelection | None = None) -> AttentionPlan:
        """The rows grouped by length for attention on the CPU (``grouped_attention.py``),
        for every token or for the ``queries`` selection; made once per batch."""
        key = None if queries is None else id(queries)
        if key not in self._plans:
            self._plans[key] = AttentionPlan.build(self.row_starts(), None if queries is None else queries.cu_seqlens)
        return self._plans[key]

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


# -- dropout ----------------------------------------------------------------------------


def _draws_own_masks(x: torch.Tensor) -> bool:
    """Whether dropout takes its masks from ``keep_mask``, and attention with dropout
    runs on rows grouped by length (``GroupedAttention``, which skips the padding):
    in eager mode on a CPU. GPUs have torch's fused kernels; under ``torch.compile``
    the numpy draw would break the graph and its seed would be guarded on, so every
    step would compile again."""
    return x.device.type == "cpu" and not torch.compiler.is_compiling()


def _scaled_keep_mask(x: torch.Tensor, p: float) -> torch.Tensor:
    """``1 / (1 - p)`` with probability ``1 - p``, else 0, shaped like ``x``: drawn
    from 16-bit lanes of 64-bit random words (``grouped_attention.keep_mask``), since
    the CPU's per-element Bernoulli draws were 14% of a small BERT's training step."""
    keep = keep_mask(tuple(x.shape), p, x.device)
    return torch.where(keep, torch.tensor(1.0 / (1.0 - p), dtype=x.dtype), torch.tensor(0.0, dtype=x.dtype))


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """``F.dropout``, with cheaper random masks on the CPU (see ``_draws_own_masks``).

    >>> x = torch.ones(10_000)
    >>> kept = dropout(x, 0.1, training=True)
    >>> round(float((kept == 0).float().mean()), 1), round(float(kept.max()), 4)
    (0.1, 1.1111)
    """
    if not training or p == 0.0:
        return x
    if not _draws_own_masks(x):
        return F.dropout(x, p, True)
    return x * _scaled_keep_mask(x, p)  # one multiply each way; the mask is what backward keeps


class Dropout(nn.Dropout):
    """``nn.Dropout`` through :func:`dropout`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)

    def add(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """``residual + self(x)``: on a CPU one pass (``addcmul``) instead of two."""
        if not self.training or self.p == 0.0 or not _draws_own_masks(x):
            return self(x) + residual
        return torch.addcmul(residual, x, _scaled_keep_mask(x, self.p))


# -- the backbone ---------------------------------------------------------------------


class _WordLookup(torch.autograd.Function):
    """Embedding lookup whose backward adds straight into ``weight.grad``.

    The standard backward allocates a dense gradient the size of the whole
    vocabulary matrix on every step: for a 30k x 384 table that costs ~25 ms on a
    2-core CPU against ~4 ms for zeroing a kept buffer and adding the looked-up
    rows. The result equals the standard gradient (the padding row gets none, as
    with ``padding_idx``). It bypasses autograd's gradient accumulation, so hooks
    on that parameter (DDP's reducer) would not see it: set
    ``BertEmbeddings.direct_word_grad = False`` for data-parallel training. Under
    ``torch.compile`` the standard lookup is traced instead.
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


class BertEmbeddings(nn.Module):
    """Word + position + segment embeddings, normalised."""

    # Off for data-parallel training, where the gradient must pass through autograd hooks.
    direct_word_grad = True

    def __init__(self, config: BertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: torch.Tensor, segment_ids: torch.Tensor, layout: TokenLayout) -> torch.Tensor:
        # Look up only the real tokens; positions are absolute within each row.
        positions = torch.arange(layout.length, device=input_ids.device).expand(layout.batch, -1)
        ids, segments, positions = (layout.unpad(t) for t in (input_ids, segment_ids, positions))
        table = self.word_embeddings
        # Not under torch.compile: a backward that writes .grad itself cannot be traced,
        # and the compiled embedding backward needs no such help.
        if (self.direct_word_grad and table.padding_idx is not None and table.weight.requires_grad
                and torch.is_grad_enabled() and not torch.compiler.is_compiling()):
            words = _WordLookup.apply(table.weight, ids, table.padding_idx)
        else:
            words = table(ids)
        x = words + self.position_embeddings(positions) + self.token_type_embeddings(segments)
        return self.dropout(self.LayerNorm(x))


class BertSelfAttention(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_size = config.head_size
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout_p = config.attention_probs_dropout_prob

    def forward(self, tokens: torch.Tensor, layout: TokenLayout, queries: TokenSelection | None = None) -> torch.Tensor:
        """Attention output for every token, or with ``queries`` for those tokens
        only: keys and values still cover the whole row."""
        dropout = self.dropout_p if self.training else 0.0
        if queries is None:
            # One matrix product for q, k and v: the weights stay separate so the
            # checkpoint names are standard, the work is fused.
            weight = torch.cat([self.query.weight, self.key.weight, self.value.weight])
            bias = torch.cat([self.query.bias, self.key.bias, self.value.bias])
            qkv = F.linear(tokens, weight, bias)
            if dropout and _draws_own_masks(qkv):
                return GroupedAttention.apply(qkv, None, layout.attention_plan(), self.num_heads, dropout)
            if (not dropout and qkv.dtype in (torch.float16, torch.bfloat16)
                    and layout.variable_length_attention(qkv)):
                # The padding never comes back: attention runs on the token list.
                q, k, v = qkv.view(-1, 3, self.num_heads, self.head_size).unbind(1)
                context = _varlen_attn(q, k, v, layout.cu_seqlens, layout.cu_seqlens,
                                       layout.max_seqlen, layout.max_seqlen)
                return context.reshape(tokens.shape[0], -1)
            qkv = layout.pad(qkv)
            qkv = qkv.view(layout.batch, layout.length, 3, self.num_heads, self.head_size)
            q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (batch, heads, length, head_size)
            context = F.scaled_dot_product_attention(q, k, v, attn_mask=layout.key_mask, dropout_p=dropout)
            return layout.unpad(context.transpose(1, 2).reshape(layout.batch, layout.length, -1))
        weight = torch.cat([self.key.weight, self.value.weight])
        bias = torch.cat([self.key.bias, self.value.bias])
        kv = F.linear(tokens, weight, bias)
        q = self.query(tokens.index_select(0, queries.flat))
        if dropout and _draws_own_masks(kv):
            return GroupedAttention.apply(kv, q, layout.attention_plan(queries), self.num_heads, dropout)
        if (not dropout and kv.dtype in (torch.float16, torch.bfloat16) and layout.variable_length_attention(kv)):
            k, v = kv.view(-1, 2, self.num_heads, self.head_size).unbind(1)
            context = _varlen_attn(q.view(-1, self.num_heads, self.head_size), k, v, queries.cu_seqlens,
                                   layout.cu_seqlens, queries.width, layout.max_seqlen)
            return context.reshape(q.shape[0], -1)
        kv = layout.pad(kv).view(layout.batch, layout.length, 2, self.num_heads, self.head_size)
        k, v = kv.permute(2, 0, 3, 1, 4).unbind(0)
        grid = queries.to_grid(q).view(layout.batch, queries.width, self.num_heads, self.head_size)
        context = F.scaled_dot_product_attention(grid.transpose(1, 2), k, v, attn_mask=layout.key_mask,
                                                 dropout_p=dropout)
        return queries.from_grid(context.transpose(1, 2).reshape(layout.batch, queries.width, -1))


class BertSelfOutput(nn.Module):
    """Projection, dropout, residual and LayerNorm after a sub-block."""

    def __init__(self, config: BertConfig, in_features: int):
        super().__init__()
        self.dense = nn.Linear(in_features, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout.add(self.dense(x), residual))


class BertAttention(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.self = BertSelfAttention(config)
        self.output = BertSelfOutput(config, config.hidden_size)

    def forward(self, tokens: torch.Tensor, layout: TokenLayout, queries: TokenSelection | None = None) -> torch.Tensor:
        residual = tokens if queries is None else tokens.index_select(0, queries.flat)
        return self.output(self.self(tokens, layout, queries), residual)


class BertIntermediate(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = activation(config.hidden_act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.dense(x))


class EncoderLayer(nn.Module):
    """One transformer block (post-LayerNorm, as in the original BERT)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertSelfOutput(config, config.intermediate_size)

    def forward(self, tokens: torch.Tensor, layout: TokenLayout, queries: TokenSelection | None = None) -> torch.Tensor:
        """Outputs for all tokens, or for the ``queries`` tokens only (see BertSelfAttention)."""
        attended = self.attention(tokens, layout, queries)
        return self.output(self.intermediate(attended), attended)


class BertEncoder(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.layer = nn.ModuleList(EncoderLayer(config) for _ in range(config.num_hidden_layers))

    def forward(self, tokens: torch.Tensor, layout: TokenLayout, start: int = 0, stop: int | None = None,
                first_token_only: bool = False, last_layer_tokens: TokenSelection | None = None):
        """Run blocks ``start:stop``. The last block can compute only the tokens whose
        output is read: each row's first token with ``first_token_only`` (all a
        pooled output needs, at about a third of that block's cost), or the
        ``last_layer_tokens`` selection (masked-LM targets); it then returns those
        rows alone, in selection order."""
        if first_token_only:
            last_layer_tokens = TokenSelection.first_of_rows(layout.first_tokens().to(tokens.device))
        blocks = self.layer[start:stop]
        for index, block in enumerate(blocks):
            last = index == len(blocks) - 1
            tokens = block(tokens, layout, last_layer_tokens if last else None)
        return tokens


class BertPooler(nn.Module):
    """tanh(dense(hidden state of [CLS])): the sentence vector next-sentence prediction trains."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, first_token_states: torch.Tensor) -> torch.Tensor:
        """``(batch, hidden)`` states of each row's first token -> pooled vectors."""
        return torch.tanh(self.dense(first_token_states))


class BertOutput(NamedTuple):
    sequence_output: torch.Tensor  # (batch, length, hidden); zeros at padded positions
    pooled_output: torch.Tensor | None  # (batch, hidden)


class PreTrainedBert(nn.Module):
    """What every network here shares: a config, weight init, and the checkpoint verbs."""

    config: BertConfig

    def init_weights(self) -> None:
        std = self.config.initializer_range
        seen = set()  # a tied matrix (the MLM decoder) is initialised once, as an embedding
        for module in self.modules():
            weight = getattr(module, "weight", None)
            if weight is None or id(weight) in seen:
                continue
            seen.add(id(weight))
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=std)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, std=std)
                if module.padding_idx is not None:
                    with torch.no_grad():
                        module.weight[module.padding_idx].zero_()
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    @classmethod
    def from_pretrained(cls, path, **kwargs):
        """Load a model directory (or Hub id); see :func:`bertforge.load_pretrained`."""
        from bertforge.io.model_dir import load_pretrained

        return load_pretrained(path, cls, **kwargs)

    def save_pretrained(self, directory, **kwargs):
        """Write a standard model directory; see :func:`bertforge.save_pretrained`."""
        from bertforge.io.model_dir import save_pretrained

        return save_pretrained(self, directory, **kwargs)


def _as_ids(tensor: torch.Tensor | None) -> torch.Tensor | None:
    """Accept any integer dtype (numpy's int32, TF-style int64...) for ids and masks."""
    if tensor is None:
        return None
    if not isinstance(tensor, torch.Tensor):
        tensor = torch.as_tensor(tensor)
    if tensor.is_floating_point():
        raise BertforgeError(f"ids and masks must be integers, got {tensor.dtype}")
    return tensor.long()


class BertModel(PreTrainedBert):
    """The BERT encoder: ``(input_ids, input_mask, segment_ids)`` -> sequence and pooled outputs.

    >>> config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2,
    ...                     num_attention_heads=4, intermediate_size=64)
    >>> model = BertModel(config).eval()
    >>> ids = torch.tensor([[2, 7, 9, 3], [2, 5, 3, 0]])
    >>> out = model(ids, input_mask=(ids != 0))
    >>> tuple(out.sequence_output.shape), tuple(out.pooled_output.shape)
    ((2, 4, 32), (2, 32))
    """

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True):
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None
        self.init_weights()

    # The three steps are public so BertLayer can run frozen blocks apart from
    # trainable ones, and cache what the frozen ones produce.

    def layout(self, input_ids, input_mask=None, segment_ids=None, unpadding: Unpadding | None = None):
        """Validate the inputs and work out the token layout: ``(ids, segments, layout)``."""
        input_ids = _as_ids(input_ids)
        if input_ids.dim() != 2:
            raise BertforgeError(f"input_ids must be (batch, length), got shape {tuple(input_ids.shape)}")
        batch, length = input_ids.shape
        self.config.check_sequence_length(length)
        # The id check reads the tensor: free on CPU, a stall on a GPU. The jobs check
        # that the tokenizer fits the model when they load both (check_vocabulary).
        segment_ids = torch.zeros_like(input_ids) if segment_ids is None else _as_ids(segment_ids).to(input_ids.device)
        input_mask = None if input_mask is None else _as_ids(input_mask).to(input_ids.device)
        if input_ids.device.type == "cpu" and not torch.compiler.is_compiling() and input_ids.numel():
            for name, values, size in (("token id", input_ids, self.config.vocab_size),
                                       ("segment id", segment_ids, self.config.type_vocab_size)):
                low, high = int(values.min()), int(values.max())
                if low < 0 or high >= size:
                    raise BertforgeError(
                        f"{name} {low if low < 0 else high} is outside the model's range 0..{size - 1}; "
                        "use the tokenizer that belongs to this model"
                    )
        for name, tensor in (("input_mask", input_mask), ("segment_ids", segment_ids)):
            if tensor is not None and tensor.shape != input_ids.shape:
                raise BertforgeError(
                    f"{name} has shape {tuple(tensor.shape)} but input_ids has {tuple(input_ids.shape)}"
                )
        return input_ids, segment_ids, TokenLayout.from_mask(input_mask, batch, length, unpadding)

    def finish(self, tokens: torch.Tensor, layout: TokenLayout) -> BertOutput:
        """Restore the padded layout and apply the pooler."""
        sequence_output = layout.pad(tokens)
        pooled = self.pooler(sequence_output[:, 0]) if self.pooler is not None else None
        return BertOutput(sequence_output, pooled)

    def forward(self, input_ids, input_mask=None, segment_ids=None, *, pooled_only: bool = False,
                attention_mask=None, token_type_ids=None, unpadding: Unpadding | None = None) -> BertOutput:
        """``pooled_only`` skips the sequence output (it comes back None) and computes
        the last layer for [CLS] alone: the fast path for sentence classifiers.
        ``unpadding``: the layout of ``input_mask`` worked out ahead on the CPU."""
        tokens, layout = self.encode(input_ids, input_mask, segment_ids, pooled_only=pooled_only,
                                     attention_mask=attention_mask, token_type_ids=token_type_ids,
                                     unpadding=unpadding)
        if pooled_only and self.pooler is not None:
            return BertOutput(None, self.pooler(tokens))
        return self.finish(tokens, layout)

    def encode(self, input_ids, input_mask=None, segment_ids=None, *, pooled_only: bool = False,
               attention_mask=None, token_type_ids=None, unpadding: Unpadding | None = None):
        """The encoder's output as a token list ``(tokens, hidden)`` with its layout,
        before padding is restored: what the pretraining heads read."""
        # attention_mask / token_type_ids: the names transformers users type.
        input_mask = input_mask if input_mask is not None else attention_mask
        segment_ids = segment_ids if segment_ids is not None else token_type_ids
        input_ids, segment_ids, layout = self.layout(input_ids, input_mask, segment_ids, unpadding)
        tokens = self.embeddings(input_ids, segment_ids, layout)
        first_token_only = pooled_only and self.pooler is not None
        return self.encoder(tokens, layout, first_token_only=first_token_only), layout


# -- heads ------------------------------------------------------------------------------


class BertPredictionHeadTransform(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.act = activation(config.hidden_act)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.act(self.dense(x)))


class BertLMPredictionHead(nn.Module):
    """Masked-LM head; its decoder shares its matrix with the word embeddings."""

    def __init__(self, config: BertConfig, word_embeddings: nn.Embedding):
        super().__init__()
        self.transform = BertPredictionHeadTransform(config)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.decoder.weight = word_embeddings.weight
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self.transform(x), self.decoder.weight, self.bias)


class BertPreTrainingHeads(nn.Module):
    def __init__(self, config: BertConfig, word_embeddings: nn.Embedding):
        super().__init__()
        self.predictions = BertLMPredictionHead(config, word_embeddings)
        self.seq_relationship = nn.Linear(config.hidden_size, 2)


class BertOnlyMLMHead(nn.Module):
    def __init__(self, config: BertConfig, word_embeddings: nn.Embedding):
        super().__init__()
        self.predictions = BertLMPredictionHead(config, word_embeddings)


@dataclass
class HeadOutput:
    """What a head returns. ``prediction_logits`` covers every position when no
    MLM labels are given, and only the labelled positions (``masked_positions``)
    when they are."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None  # classification / regression
    prediction_logits: torch.Tensor | None = None  # masked LM
    seq_relationship_logits: torch.Tensor | None = None  # next sentence / sentence order
    mlm_loss: torch.Tensor | None = None
    pair_loss: torch.Tensor | None = None
    masked_positions: torch.Tensor | None = None
    sequence_output: torch.Tensor | None = None
    pooled_output: torch.Tensor | None = None


def _prediction_tokens(layout: TokenLayout, labels: torch.Tensor, positions: torch.Tensor | None,
                       include_first: bool) -> TokenSelection:
    """The tokens the heads read: the labelled ones (and [CLS] for a pair head).

    ``positions`` (token-list indices of the labelled tokens) come from the data
    pipeline; without them they are found here, which on a GPU waits for it."""
    if positions is None:
        positions = torch.nonzero(labels != IGNORE_INDEX, as_tuple=True)[0]
    return TokenSelection.for_predictions(positions, layout.row_starts(labels.device), include_first)


def _masked_lm_loss(head: BertLMPredictionHead, hidden: torch.Tensor, targets: torch.Tensor):
    logits = head(hidden)
    return logits, F.cross_entropy(logits.float(), targets)


class _PretrainingBase(PreTrainedBert):
    """The shared forward of the masked-LM models.

    With labels, the last layer and the MLM decoder run only at the labelled
    tokens (and [CLS] when a pair head reads it): exact, since nothing else
    reaches the loss, and it saves most of the last layer and of the decoder.
    Without labels, every position gets logits.
    """

    pair_head = False

    def _forward(self, input_ids, input_mask, segment_ids, masked_lm_labels, masked_lm_positions,
                 prediction_tokens, aliases) -> tuple:
        masked_lm_labels = masked_lm_labels if masked_lm_labels is not None else aliases.pop("labels", None)
        input_mask = input_mask if input_mask is not None else aliases.pop("attention_mask", None)
        segment_ids = segment_ids if segment_ids is not None else aliases.pop("token_type_ids", None)
        ids, segments, layout = self.bert.layout(input_ids, input_mask, segment_ids, aliases.pop("unpadding", None))
        tokens = self.bert.embeddings(ids, segments, layout)
        if masked_lm_labels is None:
            tokens = self.bert.encoder(tokens, layout)
            first = tokens.index_select(0, layout.first_tokens().to(tokens.device)) if self.pair_head else None
            sequence_output = layout.pad(tokens)
            return self.cls.predictions(sequence_output), None, None, first, sequence_output
        labels = layout.unpad(_as_ids(masked_lm_labels).to(tokens.device))
        selection = prediction_tokens
        if selection is not None and self.pair_head and selection.firsts is None:
            # Made for a model without a pair head: add [CLS], which the pooler reads.
            masked_lm_positions, selection = selection.flat.index_select(0, selection.labelled), None
        if selection is None:
            selection = _prediction_tokens(layout, labels, masked_lm_positions, self.pair_head)
        selected = self.bert.encoder(tokens, layout, last_layer_tokens=selection)
        positions = selection.flat.index_select(0, selection.labelled)
        logits, loss = _masked_lm_loss(self.cls.predictions, selected.index_select(0, selection.labelled),
                                       labels.index_select(0, positions))
        first = selected.index_select(0, selection.firsts) if self.pair_head else None
        return logits, loss, layout.padded_positions(positions), first, None


class BertForPreTraining(_PretrainingBase):
    """BERT with the masked-LM and next-sentence heads of the original pretraining.

    >>> config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2,
    ...                     num_attention_heads=4, intermediate_size=64)
    >>> model = BertForPreTraining(config)
    >>> ids = torch.tensor([[2, 7, 4, 3, 8, 3]])
    >>> labels = torch.tensor([[-100, -100, 9, -100, -100, -100]])
    >>> out = model(ids, masked_lm_labels=labels, next_sentence_label=torch.tensor([1]))
    >>> tuple(out.prediction_logits.shape), out.loss.shape
    ((1, 100), torch.Size([]))
    """

    pair_head = True

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.bert = BertModel(config)
        self.cls = BertPreTrainingHeads(config, self.bert.embeddings.word_embeddings)
        self.init_weights()
        self.cls.predictions.decoder.weight = self.bert.embeddings.word_embeddings.weight

    def forward(self, input_ids, input_mask=None, segment_ids=None, masked_lm_labels=None,
                next_sentence_label=None, masked_lm_positions=None, prediction_tokens=None, **aliases) -> HeadOutput:
        """``masked_lm_positions`` / ``prediction_tokens``: where the labelled tokens
        sit, worked out ahead by the data pipeline (see ``PretrainingBatches``)."""
        prediction_logits, mlm_loss, positions, first, sequence_output = self._forward(
            input_ids, input_mask, segment_ids, masked_lm_labels, masked_lm_positions, prediction_tokens, aliases)
        pooled = self.bert.pooler(first)
        pair_logits = self.cls.seq_relationship(pooled)
        pair_loss = None
        if next_sentence_label is not None:
            pair_loss = F.cross_entropy(pair_logits.float(), _as_ids(next_sentence_label).reshape(-1))
        losses = [loss for loss in (mlm_loss, pair_loss) if loss is not None]
        return HeadOutput(
            loss=sum(losses) if losses else None, prediction_logits=prediction_logits,
            seq_relationship_logits=pair_logits, mlm_loss=mlm_loss, pair_loss=pair_loss,
            masked_positions=positions, sequence_output=sequence_output, pooled_output=pooled,
        )


class BertForMaskedLM(_PretrainingBase):
    """BERT with the masked-LM head only (no pooler, as in RoBERTa-style pretraining).

    >>> config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1,
    ...                     num_attention_heads=4, intermediate_size=64)
    >>> logits = BertForMaskedLM(config)(torch.tensor([[2, 4, 3]])).prediction_logits
    >>> tuple(logits.shape)
    (1, 3, 100)
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.bert = BertModel(config, add_pooling_layer=False)
        self.cls = BertOnlyMLMHead(config, self.bert.embeddings.word_embeddings)
        self.init_weights()
        self.cls.predictions.decoder.weight = self.bert.embeddings.word_embeddings.weight

    def forward(self, input_ids, input_mask=None, segment_ids=None, masked_lm_labels=None,
                masked_lm_positions=None, prediction_tokens=None, **aliases) -> HeadOutput:
        aliases.pop("next_sentence_label", None)  # batches made for a pair objective also fit here
        logits, loss, positions, _, sequence_output = self._forward(
            input_ids, input_mask, segment_ids, masked_lm_labels, masked_lm_positions, prediction_tokens, aliases)
        return HeadOutput(loss=loss, prediction_logits=logits, mlm_loss=loss,
                          masked_positions=positions, sequence_output=sequence_output)


class BertForSequenceClassification(PreTrainedBert):
    """BERT + dropout + a linear layer on the pooled output.

    ``config.problem_type`` picks the loss: ``single_label_classification``
    (cross-entropy, the default), ``multi_label_classification`` (binary
    cross-entropy per label) or ``regression`` (mean squared error).

    >>> config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1,
    ...                     num_attention_heads=4, intermediate_size=64,
    ...                     id2label={0: "ham", 1: "spam"})
    >>> out = BertForSequenceClassification(config)(torch.tensor([[2, 4, 3]]), labels=torch.tensor([1]))
    >>> tuple(out.logits.shape), out.loss.ndim
    ((1, 2), 0)
    """

    def __init__(self, config: BertConfig, num_labels: int | None = None):
        super().__init__()
        self.config = config
        self.num_labels = num_labels or (1 if config.problem_type == "regression" else config.num_labels)
        self.bert = BertModel(config)
        dropout = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = Dropout(dropout)
        self.classifier = nn.Linear(config.hidden_size, self.num_labels)
        self.init_weights()

    def forward(self, input_ids, input_mask=None, segment_ids=None, labels=None, **aliases) -> HeadOutput:
        _, pooled = self.bert(input_ids, input_mask, segment_ids, pooled_only=True, **aliases)
        logits = self.classifier(self.dropout(pooled))
        loss = None if labels is None else self.loss(logits, labels)
        return HeadOutput(loss=loss, logits=logits, pooled_output=pooled)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return classifier_loss(logits, labels, self.config.problem_type)


def classifier_loss(logits: torch.Tensor, labels: torch.Tensor, problem_type: str | None,
                    weights: torch.Tensor | None = None) -> torch.Tensor:
    """The loss ``problem_type`` calls for; ``weights`` are per-class (cross-entropy)
    or per-label positive weights (binary cross-entropy).

    >>> round(classifier_loss(torch.zeros(2, 3), torch.tensor([0, 2]), None).item(), 4)  # log(3)
    1.0986
    """
    if problem_type == "regression":
        return F.mse_loss(logits.float().squeeze(-1), labels.float().reshape(-1))
    if problem_type == "multi_label_classification":
        return F.binary_cross_entropy_with_logits(logits.float(), labels.float(), pos_weight=weights)
    return F.cross_entropy(logits.float(), _as_ids(labels).reshape(-1), weight=weights)


def check_vocabulary(tokenizer_size: int, config: BertConfig, where: str) -> None:
    """A tokenizer with more ids than the embedding table would index past its end."""
    if tokenizer_size > config.vocab_size:
        raise BertforgeError(
            f"{where}: the vocabulary has {tokenizer_size} tokens but the model's embeddings hold "
            f"{config.vocab_size}; the vocab does not belong to this model"
        )


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (only those that train, with ``trainable_only``).

    >>> count_parameters(nn.Linear(4, 2))
    10
    """
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def model_flops_per_token(config: BertConfig, length: int) -> float:
    """Forward+backward FLOPs per token of the encoder (6N plus attention), for MFU figures."""
    h, layers = config.hidden_size, config.num_hidden_layers
    dense = 2 * (4 * h * h + 2 * h * config.intermediate_size) * layers
    attention = 2 * 2 * length * h * layers
    return 3.0 * (dense + attention)


__all__ = [
    "BertModel", "BertForPreTraining", "BertForMaskedLM", "BertForSequenceClassification",
    "BertOutput", "HeadOutput", "TokenLayout", "IGNORE_INDEX", "count_parameters", "check_vocabulary",
    "classifier_loss",
    "model_flops_per_token",
]
