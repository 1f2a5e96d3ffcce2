"""What a BERT costs, counted from its config: FLOPs per token and parameters.

One count, read by the MFU figures of the benchmarks and by the cost estimates of
``bertforge estimate``, so both rest on the same arithmetic.
"""

from __future__ import annotations

from bertforge.model.config import BertConfig

# BERT's recipe labels 15% of the positions; the decoder runs only there (in
# Google's implementation and in ours), so only that share of its cost counts.
DEFAULT_MLM_FRACTION = 0.15


def forward_flops_per_token(config: BertConfig, seq_len: int,
                            mlm_fraction: float = DEFAULT_MLM_FRACTION) -> float:
    """Forward-pass FLOPs per token of BERT pretraining (one multiply-add = 2 FLOPs).

    Counted, with h hidden, i intermediate, L layers, V vocabulary, S sequence length:

    - per encoder layer: the query, key, value and output projections (4 x 2h^2),
      the two feed-forward matrices (2 x 2hi), the attention scores Q.K^T (2Sh) and
      the attention-weighted sum of the values (2Sh);
    - the masked-LM head on the ``mlm_fraction`` of positions that carry a label:
      its transform (2h^2) and the decoder to the vocabulary (2hV). 0.15 is BERT's
      recipe and what this package computes; pass 1.0 for code that decodes every
      position.

    Not counted: embedding lookups, biases, LayerNorm, GELU, softmax, dropout, the
    pooler and next-sentence classifier (2h^2 + 4h once per sequence: under 0.1%
    at length 128), and the optimizer update.

    >>> config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2,
    ...                     num_attention_heads=4, intermediate_size=64)
    >>> forward_flops_per_token(config, 16, mlm_fraction=0.0)  # 2 x (8192 + 8192 + 2048)
    36864.0
    """
    h, i, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    projections = 4 * 2 * h * h
    feed_forward = 2 * 2 * h * i
    attention = 2 * 2 * seq_len * h
    mlm_head = 2 * h * h + 2 * h * config.vocab_size
    return float(layers * (projections + feed_forward + attention) + mlm_fraction * mlm_head)


def training_flops_per_token(config: BertConfig, seq_len: int,
                             mlm_fraction: float = DEFAULT_MLM_FRACTION) -> float:
    """Forward + backward FLOPs per token: 3 x :func:`forward_flops_per_token`.

    The backward pass costs twice the forward: one product for the gradient of the
    inputs, one for the gradient of the weights.

    >>> config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2,
    ...                     num_attention_heads=4, intermediate_size=64)
    >>> training_flops_per_token(config, 16, mlm_fraction=0.0)
    110592.0
    """
    return 3.0 * forward_flops_per_token(config, seq_len, mlm_fraction)


def model_flops_per_token(config: BertConfig, length: int) -> float:
    """Forward+backward FLOPs per token of the encoder alone (6N plus attention), for MFU figures.

    >>> config = BertConfig.preset("base")
    >>> model_flops_per_token(config, 128) == training_flops_per_token(config, 128, mlm_fraction=0.0)
    True
    """
    return training_flops_per_token(config, length, mlm_fraction=0.0)


def pretraining_parameters(config: BertConfig) -> int:
    """Parameters of :class:`bertforge.BertForPreTraining` (the decoder shares the embedding matrix).

    >>> pretraining_parameters(BertConfig.preset("base"))
    110106428
    """
    h, i, vocab = config.hidden_size, config.intermediate_size, config.vocab_size
    embeddings = (vocab + config.max_position_embeddings + config.type_vocab_size) * h + 2 * h
    layer = 4 * (h * h + h) + (h * i + i) + (i * h + h) + 2 * 2 * h
    pooler = h * h + h
    heads = (h * h + h) + 2 * h + vocab + (2 * h + 2)  # transform, its LayerNorm, decoder bias, next sentence
    return embeddings + config.num_hidden_layers * layer + pooler + heads
