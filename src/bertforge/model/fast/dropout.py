"""Dropout with cheaper random masks on a CPU.

Torch draws one Bernoulli number per element, which was 14% of a small BERT's
training step on a 2-core CPU. Here one 64-bit random word gives four 16-bit
lanes, each compared with the rate: about a tenth of that cost. GPUs keep torch's
fused dropout, and so does code under ``torch.compile`` (see :func:`draws_own_masks`).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def keep_mask(shape: tuple[int, ...], p: float, device=None) -> torch.Tensor:
    """A boolean mask, False with probability ``p`` (to 1/65536), True otherwise.

    One 64-bit random word gives four 16-bit lanes. On a CPU the words come from
    numpy's SFC64, seeded by one draw from torch's generator (so ``torch.manual_seed``
    and saved RNG states still decide every mask): together about a tenth of the
    cost of torch's per-element Bernoulli draws.

    >>> mask = keep_mask((100_000,), 0.1)
    >>> round(1 - float(mask.float().mean()), 2)
    0.1
    """
    count = int(np.prod(shape))
    words = (count + 3) // 4
    if device is None or torch.device(device).type == "cpu":
        seed = int(torch.empty((), dtype=torch.int64).random_())
        lanes = torch.from_numpy(np.random.SFC64(seed).random_raw(words).view(np.int16))
    else:
        # All 64 bits: random_() alone draws 0..2**63-1, which would leave one lane non-negative.
        lanes = torch.empty(words, dtype=torch.int64, device=device).random_(-2**63, None).view(torch.int16)
    return lanes[:count].view(shape) >= -32768 + round(p * 65536)  # lanes: uniform over -32768..32767


def draws_own_masks(x: torch.Tensor) -> bool:
    """Whether dropout on ``x`` takes its masks from :func:`keep_mask`, and attention
    with dropout runs on rows grouped by length (``grouped_attention.py``, which
    skips the padding): in eager mode on a CPU. GPUs have torch's fused kernels;
    under ``torch.compile`` the numpy draw would break the graph and its seed would
    be guarded on, so every step would compile again.

    >>> draws_own_masks(torch.ones(3))
    True
    """
    return x.device.type == "cpu" and not torch.compiler.is_compiling()


def _scaled_keep_mask(x: torch.Tensor, p: float) -> torch.Tensor:
    """``1 / (1 - p)`` with probability ``1 - p``, else 0, shaped like ``x``."""
    keep = keep_mask(tuple(x.shape), p, x.device)
    return torch.where(keep, torch.tensor(1.0 / (1.0 - p), dtype=x.dtype), torch.tensor(0.0, dtype=x.dtype))


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """``F.dropout``, with cheaper random masks on the CPU (see :func:`draws_own_masks`).

    >>> x = torch.ones(10_000)
    >>> kept = dropout(x, 0.1, training=True)
    >>> round(float((kept == 0).float().mean()), 1), round(float(kept.max()), 4)
    (0.1, 1.1111)
    """
    if not training or p == 0.0:
        return x
    if not draws_own_masks(x):
        return F.dropout(x, p, True)
    return x * _scaled_keep_mask(x, p)  # one multiply each way; the mask is what backward keeps


class Dropout(nn.Dropout):
    """``nn.Dropout`` through :func:`dropout`, with a fused residual add.

    >>> layer = Dropout(0.5).eval()
    >>> layer.add(torch.ones(2), torch.ones(2)).tolist()
    [2.0, 2.0]
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)

    def add(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """``residual + self(x)``: on a CPU one pass (``addcmul``) instead of two."""
        if not self.training or self.p == 0.0 or not draws_own_masks(x):
            return self(x) + residual
        return torch.addcmul(residual, x, _scaled_keep_mask(x, self.p))
