"""Printing an estimate: the two-column table ``bertforge estimate`` shows."""

from __future__ import annotations

from bertforge.apps.estimate.cost import Estimate


def format_count(value: float) -> str:
    """A count the way :func:`~bertforge.apps.estimate.parse.parse_count` reads it.

    >>> format_count(42_598_400_000), format_count(3.3e6), format_count(512)
    ('42.6B', '3.3M', '512')
    """
    for suffix, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}" if value >= 1 else f"{value:.3g}"


def _money(value: float) -> str:
    return f"${value:,.0f}" if value >= 100 else f"${value:,.2f}"


def _duration(hours: float) -> str:
    if hours < 1:
        return f"{hours * 60:.1f} min"
    return f"{hours:,.1f} h" + (f" ({hours / 24:,.1f} days)" if hours >= 48 else "")


def _describe_tokens(estimate: Estimate) -> str:
    phases = estimate.phases
    if len(phases) == 1 and phases[0].steps is None:
        return f"{format_count(estimate.tokens)} at length {phases[0].seq_len}"
    parts = [f"{phase.steps:,} steps x {phase.batch_size:,} x {phase.seq_len}" if phase.steps is not None
             else f"{format_count(phase.tokens)} at length {phase.seq_len}" for phase in phases]
    return f"{format_count(estimate.tokens)} = " + " + ".join(parts)


def format_estimate(estimate: Estimate, measurement: str | None = None) -> str:
    """The estimate as a two-column table; ``measurement`` describes how tokens/s were timed.

    >>> from bertforge.apps.estimate.cost import estimate_run
    >>> from bertforge.model.config import BertConfig
    >>> table = format_estimate(estimate_run(BertConfig.preset("base"), None, hours=10, price=2.0))
    >>> print(table.splitlines()[-1])
    cost          $20.00
    """
    model = estimate.model
    rows = [("model", f"{model['name'] or 'custom'}: {model['layers']} layers, hidden {model['hidden']}, "
                      f"{model['heads']} heads, intermediate {model['intermediate']}, vocab {model['vocab_size']} "
                      f"({model['parameters']:,} parameters)")]
    if estimate.tokens is not None:
        rows.append(("tokens", _describe_tokens(estimate)))
        where = ("all positions" if estimate.mlm_fraction == 1
                 else f"{estimate.mlm_fraction:.0%} of positions")
        rows.append(("FLOPs", f"{estimate.flops:.3g} to train ({estimate.flops_per_token:.3g} per token = "
                              f"3 x forward; MLM decoder on {where})"))
    rows.append(("device", _describe_device(estimate)))
    rows += _timing_rows(estimate, measurement)
    rows += [("device-hours", _number(estimate.device_hours)), ("wall-clock", _duration(estimate.hours))]
    if estimate.price is not None:
        low, high = estimate.price
        price = f"${low:,.2f}" if low == high else f"${low:,.2f} - ${high:,.2f}"
        cost = _money(estimate.cost[0]) if low == high else f"{_money(estimate.cost[0])} - {_money(estimate.cost[1])}"
        rows += [("price", f"{price} per device-hour"), ("cost", cost)]
    width = max(len(label) for label, _ in rows) + 2
    return "\n".join(f"{label:<{width}}{value}" for label, value in rows)


def _peak(estimate: Estimate) -> str:
    precision = f"{estimate.precision} " if estimate.precision else ""
    return f"{estimate.peak_flops / 1e12:,.4g} TFLOP/s {precision}dense peak"


def _describe_device(estimate: Estimate) -> str:
    """The device row. A placeholder peak (the CPU's) is shown only where the time rests on it."""
    if estimate.peak_known or estimate.basis == "datasheet":
        return f"{estimate.devices} x {estimate.device}: {estimate.device_description}, {_peak(estimate)} each"
    timed = "timed on this machine" if estimate.basis == "measured" else "duration given"
    return (f"{estimate.devices} x {estimate.device}: {timed}; no datasheet peak, so no utilisation "
            "(give one with --peak-tflops)")


def _timing_rows(estimate: Estimate, measurement: str | None) -> list[tuple[str, str]]:
    rows = []
    if estimate.basis == "hours":
        rows.append(("duration", f"{estimate.hours:g} h, given"))
        throughput, utilisation = "implied by the hours", "of peak, implied by the hours"
    elif estimate.basis == "measured":
        rates = [f"{rate:,.0f} at length {length}" for length, rate in sorted(estimate.measured.items())]
        rows.append(("measured", "tokens/s per device: " + ", ".join(rates)
                     + (f" ({measurement})" if measurement else "")))
        throughput = "measured, assuming it scales linearly with devices"
        utilisation = f"of the {_peak(estimate)}, implied by the measurement"
    else:
        throughput, utilisation = "from peak x utilisation", "of peak, assumed"
    if estimate.tokens_per_second is not None:
        rows.append(("throughput", f"{estimate.tokens_per_second:,.0f} tokens/s, {throughput}"))
    if estimate.utilization is not None:
        note = " (above the peak: check the device or the hours)" if estimate.utilization > 1 else ""
        rows.append(("utilisation", f"{estimate.utilization:.1%} {utilisation}{note}"))
    return rows


__all__ = ["format_count", "format_estimate"]
