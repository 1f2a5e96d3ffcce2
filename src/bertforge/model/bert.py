"""The BERT network, top to bottom: embeddings, self-attention, feed-forward, block,
encoder, pooler, and the model that strings them together.

Parameter names follow the standard BERT layout (``embeddings.word_embeddings``,
``encoder.layer.N.attention.self.query``...), so checkpoints from Google, Hugging
Face or this package load without renaming. The task heads live in ``heads.py``.

Speed comes from computing only what is read:
- the encoder works on the real tokens only: padding is removed once after the
  mask is read, and restored only around attention (``layout.py``);
- when only the pooled output is read (classifiers), the last layer computes
  the [CLS] token alone, and under a masked-LM loss only the labelled tokens
  (``TokenSelection``);
- attention picks the fastest kernel for the device and the step (``attention.py``);
- on a CPU, dropout masks come from 16-bit lanes of 64-bit random words
  (``fast/dropout.py``) and the word-embedding gradient is added into a kept
  buffer (``fast/word_lookup.py``).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from bertforge.errors import BertforgeError
from bertforge.model.attention import attend
from bertforge.model.config import BertConfig
from bertforge.model.fast.dropout import Dropout
from bertforge.model.fast.word_lookup import look_up_words
from bertforge.model.layout import TokenLayout, TokenSelection, Unpadding


def activation(name: str):
    """The function ``config.hidden_act`` names.

    >>> activation("relu")(torch.tensor([-1.0, 2.0])).tolist()
    [0.0, 2.0]
    """
    if name == "gelu":
        return F.gelu
    if name in ("gelu_new", "gelu_pytorch_tanh"):
        return lambda x: F.gelu(x, approximate="tanh")
    if name == "relu":
        return F.relu
    return F.silu  # "silu" / "swish"; BertConfig rejects anything else


def as_ids(tensor) -> torch.Tensor | None:
    """Ids, masks and labels as int64, from any integer dtype (numpy's int32, TF-style int64...).

    >>> as_ids([[2, 5, 3]]).dtype
    torch.int64
    """
    if tensor is None:
        return None
    if not isinstance(tensor, torch.Tensor):
        tensor = torch.as_tensor(tensor)
    if tensor.is_floating_point():
        raise BertforgeError(f"ids and masks must be integers, got {tensor.dtype}")
    return tensor.long()


class BertEmbeddings(nn.Module):
    """Word + position + segment embeddings, normalised, for the real tokens only."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)
        # The word gradient written straight into .grad (fast/word_lookup.py); off under
        # data-parallel training, where it must pass through autograd's hooks.
        self.direct_word_grad = True

    def forward(self, input_ids: torch.Tensor, segment_ids: torch.Tensor, layout: TokenLayout) -> torch.Tensor:
        # Positions are absolute within each row, so they are made before the padding goes.
        positions = torch.arange(layout.length, device=input_ids.device).expand(layout.batch, -1)
        ids, segments, positions = (layout.unpad(t) for t in (input_ids, segment_ids, positions))
        words = look_up_words(self.word_embeddings, ids, self.direct_word_grad)
        x = words + self.position_embeddings(positions) + self.token_type_embeddings(segments)
        return self.dropout(self.LayerNorm(x))


class BertSelfAttention(nn.Module):
    """Multi-head self-attention: project to queries, keys and values, then attend."""

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
        # One matrix product for q, k and v (or k and v): the weights stay separate so
        # the checkpoint names are standard, the work is fused.
        if queries is None:
            weight = torch.cat([self.query.weight, self.key.weight, self.value.weight])
            bias = torch.cat([self.query.bias, self.key.bias, self.value.bias])
            projected, query_states = F.linear(tokens, weight, bias), None
        else:
            weight = torch.cat([self.key.weight, self.value.weight])
            bias = torch.cat([self.key.bias, self.value.bias])
            projected = F.linear(tokens, weight, bias)
            query_states = self.query(tokens.index_select(0, queries.flat))
        dropout = self.dropout_p if self.training else 0.0
        return attend(projected, query_states, layout, queries, self.num_heads, dropout)


class BertSelfOutput(nn.Module):
    """After attention: project, dropout, add the residual, LayerNorm (post-LN, as in the original BERT)."""

    def __init__(self, config: BertConfig, in_features: int | None = None):
        super().__init__()
        self.dense = nn.Linear(in_features or config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout.add(self.dense(x), residual))


class BertAttention(nn.Module):
    """Self-attention and its output projection, around a residual connection."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.self = BertSelfAttention(config)
        self.output = BertSelfOutput(config)

    def forward(self, tokens: torch.Tensor, layout: TokenLayout, queries: TokenSelection | None = None) -> torch.Tensor:
        residual = tokens if queries is None else tokens.index_select(0, queries.flat)
        return self.output(self.self(tokens, layout, queries), residual)


class BertIntermediate(nn.Module):
    """The feed-forward block's widening half: hidden -> intermediate, then the activation."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = activation(config.hidden_act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.dense(x))


class BertOutput(BertSelfOutput):
    """The feed-forward block's narrowing half: intermediate -> hidden, dropout, residual, LayerNorm."""

    def __init__(self, config: BertConfig):
        super().__init__(config, config.intermediate_size)


class EncoderLayer(nn.Module):
    """One transformer block: attention, then the feed-forward block, on the token list.

    >>> config = BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1,
    ...                     num_attention_heads=2, intermediate_size=16)
    >>> layout = TokenLayout.from_mask(torch.tensor([[1, 1, 0]]), 1, 3)  # two real tokens
    >>> tuple(EncoderLayer(config).eval()(torch.randn(2, 8), layout).shape)
    (2, 8)
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertOutput(config)

    def forward(self, tokens: torch.Tensor, layout: TokenLayout, queries: TokenSelection | None = None) -> torch.Tensor:
        """Outputs for all tokens, or for the ``queries`` tokens only (see BertSelfAttention)."""
        attended = self.attention(tokens, layout, queries)
        return self.output(self.intermediate(attended), attended)


class BertEncoder(nn.Module):
    """The stack of blocks."""

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


class EncoderOutput(NamedTuple):
    """What :class:`BertModel` returns."""

    sequence_output: torch.Tensor | None  # (batch, length, hidden); zeros at padded positions
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

    def prepare_for_data_parallel(self) -> "PreTrainedBert":
        """Route this model's word-embedding gradient through autograd, where
        DistributedDataParallel's hooks average it (the direct gradient of
        ``fast/word_lookup.py`` bypasses them). Other models are left as they are.

        >>> model = BertModel(BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1,
        ...                              num_attention_heads=2, intermediate_size=16))
        >>> model.prepare_for_data_parallel().embeddings.direct_word_grad
        False
        """
        for module in self.modules():
            if isinstance(module, BertEmbeddings):
                module.direct_word_grad = False
        return self

    @classmethod
    def from_pretrained(cls, path, **kwargs):
        """Load a model directory (or Hub id); see :func:`bertforge.load_pretrained`."""
        from bertforge.io.load import load_pretrained

        return load_pretrained(path, cls, **kwargs)

    def save_pretrained(self, directory, **kwargs):
        """Write a standard model directory; see :func:`bertforge.save_pretrained`."""
        from bertforge.io.model_dir import save_pretrained

        return save_pretrained(self, directory, **kwargs)


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

    # The steps are public so BertLayer can run frozen blocks apart from trainable
    # ones and cache what the frozen ones produce, and the heads can read the
    # encoder's token list before the padding comes back.

    def layout(self, input_ids, input_mask=None, segment_ids=None, unpadding: Unpadding | None = None):
        """Validate the inputs and work out the token layout: ``(ids, segments, layout)``."""
        input_ids = as_ids(input_ids)
        if input_ids.dim() != 2:
            raise BertforgeError(f"input_ids must be (batch, length), got shape {tuple(input_ids.shape)}")
        batch, length = input_ids.shape
        self.config.check_sequence_length(length)
        # The id check reads the tensor: free on CPU, a stall on a GPU. The jobs check
        # that the tokenizer fits the model when they load both (check_vocabulary).
        segment_ids = torch.zeros_like(input_ids) if segment_ids is None else as_ids(segment_ids).to(input_ids.device)
        input_mask = None if input_mask is None else as_ids(input_mask).to(input_ids.device)
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

    def finish(self, tokens: torch.Tensor, layout: TokenLayout) -> EncoderOutput:
        """Restore the padded layout and apply the pooler."""
        sequence_output = layout.pad(tokens)
        pooled = self.pooler(sequence_output[:, 0]) if self.pooler is not None else None
        return EncoderOutput(sequence_output, pooled)

    def forward(self, input_ids, input_mask=None, segment_ids=None, *, pooled_only: bool = False,
                attention_mask=None, token_type_ids=None, unpadding: Unpadding | None = None) -> EncoderOutput:
        """``pooled_only`` skips the sequence output (it comes back None) and computes
        the last layer for [CLS] alone: the fast path for sentence classifiers.
        ``attention_mask`` / ``token_type_ids``: the names transformers users type.
        ``unpadding``: the layout of ``input_mask`` worked out ahead on the CPU."""
        tokens, layout = self.encode(input_ids, input_mask, segment_ids, pooled_only=pooled_only,
                                     attention_mask=attention_mask, token_type_ids=token_type_ids,
                                     unpadding=unpadding)
        if pooled_only and self.pooler is not None:
            return EncoderOutput(None, self.pooler(tokens))
        return self.finish(tokens, layout)

    def encode(self, input_ids, input_mask=None, segment_ids=None, *, pooled_only: bool = False,
               attention_mask=None, token_type_ids=None, unpadding: Unpadding | None = None):
        """The encoder's output as a token list ``(tokens, hidden)`` with its layout,
        before padding is restored (with ``pooled_only``, each row's first token alone)."""
        input_mask = input_mask if input_mask is not None else attention_mask
        segment_ids = segment_ids if segment_ids is not None else token_type_ids
        input_ids, segment_ids, layout = self.layout(input_ids, input_mask, segment_ids, unpadding)
        tokens = self.embeddings(input_ids, segment_ids, layout)
        first_token_only = pooled_only and self.pooler is not None
        return self.encoder(tokens, layout, first_token_only=first_token_only), layout


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (only those that train, with ``trainable_only``).

    >>> count_parameters(nn.Linear(4, 2))
    10
    """
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


__all__ = ["BertModel", "PreTrainedBert", "EncoderOutput", "count_parameters"]
