"""Timing real pretraining steps on this machine, for an estimate from measured tokens per second."""

from __future__ import annotations

import math
import time
from typing import Sequence

from bertforge.apps.estimate.devices import default_torch_device
from bertforge.apps.estimate.parse import split_values, whole_number
from bertforge.apps.estimate.plan import DEFAULT_SEQ_LEN, Phase, check_length
from bertforge.errors import UsageError
from bertforge.model.config import BertConfig
from bertforge.model.flops import DEFAULT_MLM_FRACTION


def _random_batch(config: BertConfig, batch_size: int, seq_len: int, mlm_fraction: float, device):
    """Full-length rows of random ids, with exactly the MLM share of positions labelled,
    so the timed work is the work :func:`~bertforge.model.flops.training_flops_per_token` counts."""
    import torch

    from bertforge.model.layout import TokenSelection

    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, config.vocab_size, (batch_size, seq_len), generator=generator)
    segments = (torch.arange(seq_len) >= seq_len // 2).long().expand(batch_size, -1) % config.type_vocab_size
    labelled = max(1, round(mlm_fraction * seq_len))
    chosen = torch.rand(batch_size, seq_len, generator=generator).argsort(dim=1)[:, :labelled]
    labels = torch.full_like(ids, -100).scatter(1, chosen, ids.gather(1, chosen))
    pair_labels = torch.randint(0, 2, (batch_size,), generator=generator)
    # The labelled tokens are located on the CPU, as the data pipeline does, so a
    # GPU step never waits to read them back.
    selection = TokenSelection.for_predictions(torch.nonzero(labels.reshape(-1) != -100, as_tuple=True)[0],
                                                torch.arange(batch_size + 1) * seq_len, include_first=True)
    return tuple(t.to(device) for t in (ids, segments, labels, pair_labels)) + (selection.to(device),)


def measure_tokens_per_second(config: BertConfig, batch_size: int = 8, seq_len: int = DEFAULT_SEQ_LEN,
                              steps: int = 5, device: str | None = None, *, warmup: int = 2,
                              mlm_fraction: float = DEFAULT_MLM_FRACTION) -> float:
    """Tokens per second of real pretraining steps of ``config`` on one device of this machine.

    Each step is :class:`bertforge.BertForPreTraining` forward (masked LM + next
    sentence) and backward, then a fused AdamW update: bf16 autocast on CUDA, fp32
    on the CPU. ``warmup`` steps run first and are not timed. ``device`` defaults
    to ``cuda`` when there is one.

    >>> tiny = BertConfig.preset("tiny", vocab_size=1000)
    >>> measure_tokens_per_second(tiny, batch_size=2, seq_len=16, steps=1, device="cpu", warmup=1) > 0
    True
    """
    import torch

    from bertforge.model.heads import BertForPreTraining

    batch_size, seq_len = whole_number(batch_size, "batch size"), whole_number(seq_len, "sequence length")
    steps = whole_number(steps, "measured steps")
    check_length(config, seq_len)
    target = torch.device(device or default_torch_device())
    torch.manual_seed(0)
    model = BertForPreTraining(config).to(target).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    ids, segments, labels, pair_labels, selection = _random_batch(config, batch_size, seq_len, mlm_fraction, target)

    def step() -> None:
        with torch.autocast(target.type, dtype=torch.bfloat16, enabled=target.type == "cuda"):
            loss = model(ids, None, segments, masked_lm_labels=labels, next_sentence_label=pair_labels,
                         prediction_tokens=selection).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(warmup):
        step()
    _synchronize(target)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    _synchronize(target)
    return batch_size * seq_len * steps / (time.perf_counter() - started)


def measure_phases(config: BertConfig, phases: Sequence[Phase], devices: int = 1, batch_size: str | None = None,
                   steps: int = 5, hours: float | None = None,
                   mlm_fraction: float = DEFAULT_MLM_FRACTION) -> tuple[dict[int, float], str]:
    """Time each sequence length the phases use, on one device here: ``({seq_len: tokens/s}, how)``.

    A device runs its share of the batch: the phase's (or ``batch_size``'s) sequences
    per step divided by ``devices``; without either, 8 per device on a CPU, 32 on a GPU.

    >>> tiny = BertConfig.preset("tiny", vocab_size=1000)
    >>> rates, how = measure_phases(tiny, [Phase(1e6, 16, 100, 4)], devices=2, steps=1)
    >>> sorted(rates), "batch 2 x 16 per device, 1 timed step" in how
    ([16], True)
    """
    if hours is not None:
        raise UsageError("give a known duration (--hours) or a measurement (--measure), not both")
    if not phases:
        raise UsageError("--measure needs the token count: --tokens 3.3e9, or --steps N --batch-size B")
    devices = whole_number(devices, "devices")
    target = default_torch_device()
    given = [whole_number(value, "--batch-size") for value in split_values(batch_size)]
    rates, batches = {}, {}
    for phase in phases:
        if phase.seq_len in rates:
            continue
        total = phase.batch_size or (given[0] if given else None)
        per_device = max(1, math.ceil(total / devices)) if total else (32 if target == "cuda" else 8)
        rates[phase.seq_len] = measure_tokens_per_second(config, per_device, phase.seq_len, steps, target,
                                                         mlm_fraction=mlm_fraction)
        batches[phase.seq_len] = per_device
    sizes = ", ".join(f"{batch} x {length}" for length, batch in batches.items())
    precision = "bf16 autocast" if target == "cuda" else "fp32"
    timed = f"{steps} timed step{'s' if steps != 1 else ''}"
    return rates, f"{target}, {precision}, batch {sizes} per device, {timed} after 2 warm-up"


def _synchronize(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


__all__ = ["measure_phases", "measure_tokens_per_second"]
