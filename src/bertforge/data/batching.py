"""Batches that waste little on padding.

Texts of similar length go in the same batch, and each batch is cut to its own
longest sequence (dynamic padding) instead of a fixed ``max_seq_length``. For short
texts such as questions or SMS this removes most of the work; the encoder's
unpadding (``model/layout.py``) removes the rest.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np


def sequence_lengths(input_mask: np.ndarray) -> np.ndarray:
    """Real tokens per row of a ``(n, length)`` 0/1 mask."""
    return np.asarray(input_mask).sum(axis=1)


def length_grouped_batches(lengths, batch_size: int, shuffle: bool = False, seed: int | None = None,
                           group_size: int = 64) -> list[np.ndarray]:
    """Index arrays, one per batch, grouping similar lengths.

    Without ``shuffle`` (inference) every batch comes from one global sort by
    length. With ``shuffle`` (training) the order is random, then sorted within
    windows of ``group_size`` batches, and the batches themselves shuffled: most
    of the padding saving, with randomness left in what goes together.

    >>> lengths = [5, 30, 6, 29, 7, 31]
    >>> [batch.tolist() for batch in length_grouped_batches(lengths, batch_size=2)]
    [[0, 2], [4, 3], [1, 5]]
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    lengths = np.asarray(lengths)
    if not shuffle:
        order = np.argsort(lengths, kind="stable")
        return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(lengths))
    window = batch_size * group_size
    for start in range(0, len(order), window):
        chunk = order[start:start + window]
        order[start:start + window] = chunk[np.argsort(lengths[chunk], kind="stable")]
    batches = [order[start:start + batch_size] for start in range(0, len(order), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def trim_to_longest(*arrays: np.ndarray, input_mask: np.ndarray) -> tuple[np.ndarray, ...]:
    """Cut ``(batch, length)`` arrays to the batch's longest real sequence.

    >>> ids = np.array([[2, 5, 3, 0, 0], [2, 3, 0, 0, 0]])
    >>> trim_to_longest(ids, input_mask=(ids != 0))[0].tolist()
    [[2, 5, 3], [2, 3, 0]]
    """
    mask = np.asarray(input_mask)
    used = mask.any(axis=0)
    longest = int(np.flatnonzero(used)[-1]) + 1 if used.any() else 1
    return tuple(np.asarray(array)[:, :longest] for array in arrays)


def iterate_batches(input_ids: np.ndarray, input_mask: np.ndarray, segment_ids: np.ndarray, batch_size: int,
                    shuffle: bool = False, seed: int | None = None) -> Iterator[tuple[np.ndarray, ...]]:
    """``(indices, input_ids, input_mask, segment_ids)`` per length-grouped, dynamically padded batch.

    >>> ids = np.array([[2, 5, 6, 3], [2, 3, 0, 0], [2, 7, 3, 0]])
    >>> [(rows.tolist(), batch.shape) for rows, batch, _, _ in iterate_batches(ids, ids != 0, ids * 0, 2)]
    [([1, 2], (2, 3)), ([0], (1, 4))]
    """
    lengths = sequence_lengths(input_mask)
    for rows in length_grouped_batches(lengths, batch_size, shuffle=shuffle, seed=seed):
        mask = input_mask[rows]
        yield (rows, *trim_to_longest(input_ids[rows], mask, segment_ids[rows], input_mask=mask))
