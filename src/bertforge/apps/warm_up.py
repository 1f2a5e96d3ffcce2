"""An untimed pass through what a timed training run is about to do.

The first run in a process pays one-time costs that have nothing to do with its
setting: the metrics' first evaluation imports scikit-learn (and with it pandas
and scipy, about a thousand modules), and the first forward and backward pass
sets up the kernels and the allocator. In a layer sweep that charged the first
point about two seconds: order ``0,1`` timed 0 layers at 4.2 s and 1 layer at
2.1 s, order ``1,0`` the reverse. Each point therefore runs this pass first.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Callable

import torch
from torch import nn

from bertforge.training.arguments import resolve_precision


def warm_up(trainable: nn.Module, batch: dict, device: torch.device, precision: str = "fp32",
            evaluate: Callable[[nn.Module], object] | None = None) -> None:
    """One training forward and backward pass on ``batch`` and, when given,
    ``evaluate(trainable)``; weights, gradients, random state and train/eval mode
    are left as they were, so the run that follows ends as it would without it.

    >>> model = nn.Linear(2, 1)
    >>> class Step(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.model = model
    ...     def forward(self, x):
    ...         return type("Output", (), {"loss": self.model(x).sum()})()
    >>> before = model.weight.clone()
    >>> warm_up(Step(), {"x": torch.ones(3, 2)}, torch.device("cpu"))
    >>> torch.equal(model.weight, before), model.weight.grad is None
    (True, True)
    """
    was_training = trainable.training
    batch = {key: value.to(device) if isinstance(value, torch.Tensor) else value for key, value in batch.items()}
    autocast = (torch.autocast(device_type=device.type, dtype=torch.bfloat16)
                if resolve_precision(precision, device) == "bf16" else nullcontext())
    # Dropout draws from the global generators: the run must draw the same masks after this.
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        trainable.train()
        with autocast:
            loss = trainable(**batch).loss
        loss.backward()
        trainable.zero_grad(set_to_none=True)
        if evaluate is not None:
            evaluate(trainable)
    trainable.train(was_training)
