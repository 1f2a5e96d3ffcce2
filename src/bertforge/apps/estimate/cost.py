"""The estimate itself: a run's FLOPs, then its time and cost from the hours, a measurement or a datasheet."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from bertforge.apps.estimate.devices import Device, get_device
from bertforge.apps.estimate.parse import parse_price, positive_number, whole_number
from bertforge.apps.estimate.plan import DEFAULT_SEQ_LEN, Phase, as_phases
from bertforge.errors import BertforgeError, UsageError
from bertforge.model.config import BertConfig
from bertforge.model.flops import DEFAULT_MLM_FRACTION, pretraining_parameters, training_flops_per_token

# The share of the dense peak a training run is assumed to turn into model FLOPs
# when nothing is measured: 40% is what this project aims at for a tuned bf16
# pretraining run (BENCHMARKS.md), a middle figure for large dense models. Our own
# uncompiled BERT-base step measured about 20% of an H100's peak there, and small
# models reach far less (their matrices cannot fill the tensor cores), so the
# default is optimistic for them: prefer --measure.
DEFAULT_UTILIZATION = 0.4


@dataclass(frozen=True)
class Estimate:
    """The answer: what the run computes, how long it takes, what it costs.

    ``basis`` says where the time came from: ``"datasheet"`` (peak x assumed
    utilisation), ``"measured"`` (tokens/s timed here) or ``"hours"`` (given).
    ``utilization`` is the assumed one, or the one the measurement or the hours
    imply (None when the device has no known peak: ``peak_known``, the CPU's).
    ``tokens_per_second`` is for all devices together; ``measured`` holds the timed
    tokens/s of one device by sequence length. ``cost`` is ``(low, high)``.

    >>> run = estimate_run(BertConfig.preset("base"), 1e9, device="h100")
    >>> run.basis, run.flops_per_token == training_flops_per_token(BertConfig.preset("base"), 128)
    ('datasheet', True)
    """

    model: dict[str, Any]
    device: str
    device_description: str
    precision: str
    devices: int
    peak_flops: float
    basis: str
    hours: float
    device_hours: float
    phases: tuple[Phase, ...] = ()
    mlm_fraction: float = DEFAULT_MLM_FRACTION
    tokens: float | None = None
    flops: float | None = None
    utilization: float | None = None
    tokens_per_second: float | None = None
    measured: dict[int, float] | None = None
    price: tuple[float, float] | None = None
    cost: tuple[float, float] | None = None
    peak_known: bool = True

    @property
    def flops_per_token(self) -> float | None:
        return self.flops / self.tokens if self.flops is not None and self.tokens else None

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["phases"] = [phase._asdict() for phase in self.phases]
        values["flops_per_token"] = self.flops_per_token
        return values


def _model_summary(config: BertConfig, name: str | None) -> dict[str, Any]:
    return {"name": name, "layers": config.num_hidden_layers, "hidden": config.hidden_size,
            "heads": config.num_attention_heads, "intermediate": config.intermediate_size,
            "vocab_size": config.vocab_size, "max_positions": config.max_position_embeddings,
            "parameters": pretraining_parameters(config)}


def estimate_run(config: BertConfig, tokens: float | str | Sequence[Phase | tuple] | None,
                 device: str | Device = "h100", devices: int = 1, utilization: float = DEFAULT_UTILIZATION,
                 price: float | str | tuple[float, float] | None = None, hours: float | None = None, *,
                 seq_len: int = DEFAULT_SEQ_LEN, mlm_fraction: float = DEFAULT_MLM_FRACTION,
                 tokens_per_second: float | Mapping[int, float] | None = None,
                 name: str | None = None) -> Estimate:
    """FLOPs, time and cost of pretraining ``config`` on ``tokens`` with ``devices`` x ``device``.

    ``tokens`` is a count at ``seq_len``, or a list of :class:`Phase` (or
    ``(tokens, seq_len)`` pairs) for a run whose length changes. The time comes
    from ``hours`` when given; else from ``tokens_per_second`` (one device, a
    number or ``{seq_len: tokens/s}``, e.g. from
    :func:`~bertforge.apps.estimate.measure.measure_tokens_per_second`);
    else from the device's peak x ``utilization``. ``price`` is per device-hour:
    a number, ``(low, high)`` or ``"4.50-8.00"``.

    >>> config = BertConfig.preset("base")
    >>> one = estimate_run(config, 3.3e9, device="a100", devices=1, utilization=0.5)
    >>> eight = estimate_run(config, 3.3e9, device="a100", devices=8, utilization=0.5, price=2.0)
    >>> round(one.hours / eight.hours, 6), round(eight.device_hours, 1), round(eight.cost[0], 2)
    (8.0, 3.2, 6.41)
    """
    spec = get_device(device)
    devices = whole_number(devices, "devices")
    utilization = positive_number(utilization, "utilization")
    if utilization > 1:
        raise UsageError(f"utilization is a fraction of the peak, at most 1, got {utilization}")
    if not 0 <= mlm_fraction <= 1:
        raise UsageError(f"mlm_fraction must be between 0 and 1, got {mlm_fraction}")
    phases = as_phases(config, tokens, seq_len)
    prices = parse_price(price) if price is not None else None
    if hours is not None:
        hours = positive_number(hours, "hours")
        if tokens_per_second is not None:
            raise UsageError("give a known duration (--hours) or a measurement (--measure), not both")
    elif not phases:
        raise UsageError("give the token count (--tokens 3.3e9, or --steps N --batch-size B) "
                         "or a known duration (--hours)")

    total_tokens = sum(phase.tokens for phase in phases) if phases else None
    flops = sum(phase.tokens * training_flops_per_token(config, phase.seq_len, mlm_fraction)
                for phase in phases) if phases else None
    measured = None
    if hours is not None:
        basis, seconds = "hours", hours * 3600
    elif tokens_per_second is not None:
        measured = _per_length(tokens_per_second, phases)
        basis = "measured"
        seconds = sum(phase.tokens / (devices * measured[phase.seq_len]) for phase in phases)
    else:
        basis, seconds = "datasheet", flops / (devices * spec.peak_flops * utilization)
    if basis != "datasheet":
        # Against a placeholder peak the share would be a number about the placeholder.
        known = flops is not None and spec.peak_known
        utilization = flops / (devices * spec.peak_flops * seconds) if known else None
    device_hours = devices * seconds / 3600
    return Estimate(
        model=_model_summary(config, name), device=spec.name, device_description=spec.description,
        precision=spec.precision, devices=devices, peak_flops=spec.peak_flops, basis=basis,
        hours=seconds / 3600, device_hours=device_hours, phases=phases, mlm_fraction=mlm_fraction,
        tokens=total_tokens, flops=flops, utilization=utilization,
        tokens_per_second=total_tokens / seconds if total_tokens else None, measured=measured,
        price=prices, cost=(device_hours * prices[0], device_hours * prices[1]) if prices else None,
        peak_known=spec.peak_known,
    )


def _per_length(tokens_per_second: float | Mapping[int, float], phases: tuple[Phase, ...]) -> dict[int, float]:
    if isinstance(tokens_per_second, Mapping):
        rates = {int(length): float(rate) for length, rate in tokens_per_second.items()}
    else:
        rates = {phase.seq_len: float(tokens_per_second) for phase in phases}
    for phase in phases:
        if phase.seq_len not in rates:
            raise BertforgeError(f"no measured tokens/s for sequence length {phase.seq_len}")
        positive_number(rates[phase.seq_len], "measured tokens/s")
    return rates


__all__ = ["DEFAULT_UTILIZATION", "Estimate", "estimate_run"]
