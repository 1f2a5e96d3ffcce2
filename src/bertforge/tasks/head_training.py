"""What the tasks' heads share in training and export: learning rates by layer, balanced
loss weights, and the encoder's forward on padded batches for a graph."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from bertforge.model.layout import TokenLayout
from bertforge.training.loop import decay_groups


def layerwise_groups(head: nn.Module, bert, learning_rate: float, decay: float, weight_decay: float) -> list[dict]:
    """Optimizer groups whose learning rate shrinks by ``decay`` per layer going down from
    the ``head`` (which, with the pooler, gets the full rate) to the embeddings."""
    depth = bert.config.num_hidden_layers
    parts = [(head, 0), (bert.embeddings, depth + 1)]
    if bert.pooler is not None:
        parts.append((bert.pooler, 0))
    parts += [(block, depth - index) for index, block in enumerate(bert.encoder.layer)]
    return [group for module, distance in parts
            for group in decay_groups(module, weight_decay, learning_rate * decay ** distance)]


def balanced_weights(counts: np.ndarray) -> torch.Tensor:
    """Per-class loss weights from class counts, so that every class weighs as much in the
    loss as the others: ``total / (classes * count)`` (a class never seen counts once).

    >>> balanced_weights(np.array([3, 1])).tolist()
    [0.6666666865348816, 2.0]
    """
    return torch.tensor(counts.sum() / (len(counts) * np.maximum(counts, 1)), dtype=torch.float32)


def padded_encoding(bert, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor,
                    first_token_only: bool = False) -> torch.Tensor:
    """The encoder's output on a padded batch with no branch that depends on the data: attention
    reads the mask instead of dropping padding by index lists (which would fix shapes a graph
    must keep open). ``(batch * length, hidden)``, or ``(batch, hidden)`` for each row's first
    token alone."""
    batch, length = input_ids.shape
    layout = TokenLayout(batch, length, None, attention_mask.bool()[:, None, None, :])
    tokens = bert.embeddings(input_ids, token_type_ids, layout)
    return bert.encoder(tokens, layout, first_token_only=first_token_only)
